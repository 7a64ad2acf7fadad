//! Model-based test: long random sequences of operations, checked against a plain
//! reference model and against the format's real client logic after every poll.
//!
//! After every poll, for every topic: the client that started from `list()` and applied
//! every polled diff holds exactly the engine's new `list()`, the engine's counts equal
//! the model's, and seqs have no gaps. A topic's occupancy change is the one between the
//! client's state before the diff and after it.
//!
//! With a leave grace (on a manual clock, so the sequence is deterministic) the model holds
//! each leave until its due time, a track of the same key in the topic takes the oldest
//! held one back, and the due leaves are made at the next poll.

mod support;

use presence_core::{Clock, Config, Counts, Engine, ErrorKind, Format, ManualClock};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use support::replay::{Clients, Expected};
use support::Rng;

const TOPICS: &[&str] = &["video:1", "video:2", "room:\"quoted\"", "é:ünï"];
const KEYS: &[&str] = &["alice", "bob", "carol", "dave\\slash"];

/// What the host did, as plainly as possible.
#[derive(Default)]
struct Model {
    /// (topic, conn) → (key, meta JSON)
    presences: HashMap<(String, u64), (Option<String>, Value)>,
    /// (topic, conn) → the meta's text as the engine keeps it (trimmed), which is what a
    /// phoenix rejoin compares.
    texts: HashMap<(String, u64), String>,
    /// Leaves held for the grace, in the order they came: (topic, key, meta, due, text).
    held: Vec<(String, Option<String>, Value, u64, String)>,
}

impl Model {
    /// Every presence that counts: tracked, or held.
    fn present<'a>(
        &'a self,
        topic: &'a str,
    ) -> impl Iterator<Item = (&'a Option<String>, &'a Value)> {
        let tracked = self
            .presences
            .iter()
            .filter(move |((t, _), _)| t == topic)
            .map(|(_, (k, m))| (k, m));
        let held = self
            .held
            .iter()
            .filter(move |(t, ..)| t == topic)
            .map(|(_, k, m, ..)| (k, m));
        tracked.chain(held)
    }

    /// A track of `key` in `topic` takes back a held presence of that key: in phoenix
    /// format the oldest with its meta among the key's oldest 32, else the oldest.
    fn take_back(&mut self, topic: &str, key: Option<&str>, text: Option<&str>) {
        let of_key: Vec<usize> = (0..self.held.len())
            .filter(|&i| self.held[i].0 == topic && self.held[i].1.as_deref() == key)
            .collect();
        let same = text.and_then(|text| of_key.iter().take(32).find(|&&i| self.held[i].4 == text));
        if let Some(&i) = same.or(of_key.first()) {
            self.held.remove(i);
        }
    }

    /// Holds the presence of (topic, conn), which the engine just let go, until `due`.
    fn hold(&mut self, topic: &str, conn: u64, due: u64) {
        let k = (topic.to_owned(), conn);
        let (key, meta) = self.presences.remove(&k).unwrap();
        let text = self.texts.remove(&k).unwrap();
        self.held.push((topic.to_owned(), key, meta, due, text));
    }
}

impl Expected for Model {
    fn counts(&self, topic: &str) -> Counts {
        let mut c = Counts::default();
        let mut users = HashSet::new();
        for (key, _) in self.present(topic) {
            {
                c.connections += 1;
                match key {
                    Some(k) => {
                        users.insert(k.clone());
                    }
                    None => c.viewers += 1,
                }
            }
        }
        c.users = users.len() as u64;
        c
    }

    fn listing(&self, topic: &str, viewers_key: &str) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (key, meta) in self.present(topic) {
            {
                out.entry(key.clone().unwrap_or_else(|| viewers_key.to_owned()))
                    .or_default()
                    .push(meta.to_string());
            }
        }
        out.values_mut().for_each(|v| v.sort());
        out
    }
}

fn random_meta(rng: &mut Rng) -> Option<String> {
    match rng.below(4) {
        0 => None,
        1 => Some("{}".into()),
        2 => Some(format!("{{\"status\":\"s{}\"}}", rng.below(3))),
        _ => Some(format!(
            " {{ \"n\" : {}, \"tags\": [\"a\", {{\"b\": null}}] }} ",
            rng.below(5)
        )),
    }
}

fn run(format: Format, seed: u64, steps: usize) {
    run_with_grace(format, seed, steps, 0)
}

fn run_with_grace(format: Format, seed: u64, steps: usize, grace: u64) {
    let config = Config {
        format,
        max_topics: 64,
        leave_grace_ms: grace,
        ..Config::default()
    };
    let phoenix = format == Format::Phoenix;
    let clock = Arc::new(ManualClock::default());
    let engine = Engine::with_clock(config, clock.clone()).unwrap();
    let mut model = Model::default();
    let mut rng = Rng(seed);
    let mut clients = Clients::new(&engine, TOPICS);
    let mut polls_with_changes = 0;
    for step in 0..steps {
        let topic = TOPICS[rng.below(TOPICS.len() as u64) as usize];
        let conn = rng.below(12);
        if grace > 0 && rng.chance(15) {
            if rng.chance(50) {
                clock.advance(Duration::from_millis(rng.below(grace)));
                continue;
            }
            // A reload: a presence leaves and its key comes back on another connection,
            // with the same meta or, sometimes, another one.
            let mut present: Vec<(String, u64)> = model.presences.keys().cloned().collect();
            present.sort();
            if present.is_empty() {
                continue;
            }
            let (topic, conn) = present[rng.below(present.len() as u64) as usize].clone();
            let key = model.presences[&(topic.clone(), conn)].0.clone();
            let text = if rng.chance(70) {
                model.texts[&(topic.clone(), conn)].clone()
            } else {
                random_meta(&mut rng).unwrap_or_else(|| "{}".into())
            };
            engine.untrack(&topic, conn).unwrap();
            model.hold(&topic, conn, clock.now_ms() + grace);
            let new_conn = 12 + rng.below(4);
            let result = engine.track(&topic, new_conn, key.as_deref(), Some(&text));
            let k = (topic.clone(), new_conn);
            if let std::collections::hash_map::Entry::Vacant(slot) = model.presences.entry(k) {
                result.unwrap();
                slot.insert((key.clone(), serde_json::from_str(&text).unwrap()));
                model.take_back(&topic, key.as_deref(), phoenix.then_some(text.trim()));
                model
                    .texts
                    .insert((topic.clone(), new_conn), text.trim().to_owned());
            } else {
                assert_eq!(result.unwrap_err().kind(), ErrorKind::AlreadyTracked);
            }
            continue;
        }
        match rng.below(100) {
            0..=39 => {
                let key = rng
                    .chance(60)
                    .then(|| KEYS[rng.below(KEYS.len() as u64) as usize]);
                let meta = random_meta(&mut rng);
                let meta_text = meta.clone().unwrap_or_else(|| "{}".into());
                let result = engine.track(topic, conn, key, meta.as_deref());
                let k = (topic.to_owned(), conn);
                if let std::collections::hash_map::Entry::Vacant(slot) = model.presences.entry(k) {
                    result.unwrap();
                    let meta: Value =
                        serde_json::from_str(meta.as_deref().unwrap_or("{}")).unwrap();
                    slot.insert((key.map(str::to_owned), meta));
                    let text = meta_text.trim();
                    if grace > 0 {
                        model.take_back(topic, key, phoenix.then_some(text));
                    }
                    model
                        .texts
                        .insert((topic.to_owned(), conn), text.to_owned());
                } else {
                    assert_eq!(result.unwrap_err().kind(), ErrorKind::AlreadyTracked);
                }
            }
            40..=64 => {
                let result = engine.untrack(topic, conn);
                if model.presences.contains_key(&(topic.to_owned(), conn)) {
                    result.unwrap();
                    model.hold(topic, conn, clock.now_ms() + grace);
                    if grace == 0 {
                        model.held.clear();
                    }
                } else {
                    assert_eq!(result.unwrap_err().kind(), ErrorKind::NotTracked);
                }
            }
            65..=74 => {
                let mut leaving: Vec<String> = model
                    .presences
                    .keys()
                    .filter(|(_, c)| *c == conn)
                    .map(|(t, _)| t.clone())
                    .collect();
                leaving.sort();
                assert_eq!(engine.untrack_conn(conn), leaving.len());
                for t in &leaving {
                    model.hold(t, conn, clock.now_ms() + grace);
                }
                if grace == 0 {
                    model.held.clear();
                }
            }
            75..=84 => {
                let meta = random_meta(&mut rng);
                let result = engine.update(topic, conn, meta.as_deref());
                match model.presences.get_mut(&(topic.to_owned(), conn)) {
                    Some(entry) => {
                        result.unwrap();
                        let text = meta.as_deref().unwrap_or("{}");
                        entry.1 = serde_json::from_str(text).unwrap();
                        model
                            .texts
                            .insert((topic.to_owned(), conn), text.trim().to_owned());
                    }
                    None => assert_eq!(result.unwrap_err().kind(), ErrorKind::NotTracked),
                }
            }
            _ => {
                let now = clock.now_ms();
                model.held.retain(|(_, _, _, due, _)| *due > now);
                let batch = engine.poll_diff();
                clients.apply(&batch, step);
                polls_with_changes += usize::from(!batch.is_empty());
                clients.check(&engine, &model, step);
            }
        }
    }
    assert!(
        polls_with_changes > steps / 40,
        "the sequence exercised the diffs ({polls_with_changes} polls)"
    );
    // Once everything is gone and polled, the engine holds no topic.
    for conn in 0..16 {
        engine.untrack_conn(conn);
    }
    clock.advance(Duration::from_millis(grace));
    engine.poll_diff();
    assert_eq!(engine.stats().topics, 0);
    assert_eq!(engine.stats().presences, 0);
}

#[test]
fn counts_format_matches_the_model_and_the_seed_reducer() {
    for seed in 0..20 {
        run(Format::Counts, seed, 5_000);
    }
}

#[test]
fn phoenix_format_matches_the_model_and_phoenix_sync_diff() {
    for seed in 100..120 {
        run(Format::Phoenix, seed, 5_000);
    }
}

#[test]
fn counts_format_with_a_leave_grace_matches_the_model_and_the_seed_reducer() {
    for seed in 200..210 {
        run_with_grace(Format::Counts, seed, 5_000, 1_000);
    }
}

#[test]
fn phoenix_format_with_a_leave_grace_matches_the_model_and_phoenix_sync_diff() {
    for seed in 300..310 {
        run_with_grace(Format::Phoenix, seed, 5_000, 1_000);
    }
}
