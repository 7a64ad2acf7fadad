//! Model-based test of presences with a time to live, on a manual clock: long random
//! sequences of tracks (with and without a ttl), touches, untracks and clock steps,
//! checked after every poll against a plain model in which a presence past its deadline
//! leaves at the next poll or touch of its connection.
//!
//! After every poll, for every topic: the client that started from `list()` and applied
//! every polled diff holds exactly the engine's new `list()`, the engine's counts equal
//! the model's, seqs have no gaps, diffs are minimal and occupancy changes are marked
//! (the replay of `tests/model.rs`, in `support/replay.rs`).

mod support;

use presence_core::{Config, Counts, Engine, ErrorKind, Format, ManualClock};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use support::replay::{Clients, Expected};
use support::Rng;

const TOPICS: &[&str] = &["video:1", "video:2", "é:ünï"];
const KEYS: &[&str] = &["alice", "bob", "carol"];

struct Presence {
    key: Option<String>,
    meta: Value,
    /// (ttl, deadline) in ms, for a TTL presence.
    ttl: Option<(u64, u64)>,
}

/// What the host did, and what time did.
#[derive(Default)]
struct Model {
    presences: HashMap<(String, u64), Presence>,
    now: u64,
}

impl Model {
    /// A poll: every presence past its deadline leaves.
    fn expire(&mut self) {
        let now = self.now;
        self.presences
            .retain(|_, p| p.ttl.is_none_or(|(_, deadline)| deadline > now));
    }

    /// A touch of `conn`: its TTL presences past their deadline leave, the others renew.
    fn touch(&mut self, conn: u64) -> usize {
        let now = self.now;
        let mut renewed = 0;
        self.presences.retain(|(_, c), p| match &mut p.ttl {
            Some((ttl, deadline)) if *c == conn => {
                if *deadline <= now {
                    return false;
                }
                *deadline = now + *ttl;
                renewed += 1;
                true
            }
            _ => true,
        });
        renewed
    }
}

impl Expected for Model {
    fn counts(&self, topic: &str) -> Counts {
        let mut c = Counts::default();
        let mut users = HashSet::new();
        for ((t, _), p) in &self.presences {
            if t == topic {
                c.connections += 1;
                match &p.key {
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
        for ((t, _), p) in &self.presences {
            if t == topic {
                out.entry(p.key.clone().unwrap_or_else(|| viewers_key.to_owned()))
                    .or_default()
                    .push(p.meta.to_string());
            }
        }
        out.values_mut().for_each(|v| v.sort());
        out
    }
}

fn run(format: Format, seed: u64, steps: usize) {
    let config = Config {
        format,
        max_topics: 64,
        ..Config::default()
    };
    let clock = Arc::new(ManualClock::default());
    let engine = Engine::with_clock(config, clock.clone()).unwrap();
    let mut model = Model::default();
    let mut rng = Rng(seed);
    let mut clients = Clients::new(&engine, TOPICS);
    let (mut expiries, mut renewals) = (0, 0);
    for step in 0..steps {
        let topic = TOPICS[rng.below(TOPICS.len() as u64) as usize];
        let conn = rng.below(10);
        match rng.below(100) {
            0..=29 => {
                let key = rng
                    .chance(60)
                    .then(|| KEYS[rng.below(KEYS.len() as u64) as usize]);
                let meta = rng
                    .chance(50)
                    .then(|| format!("{{\"n\":{}}}", rng.below(4)));
                // Ttls of a few clock steps, some of them a single tick or less.
                let ttl = rng.chance(70).then(|| 1 + rng.below(60));
                let result = match ttl {
                    Some(ms) => engine.track_ttl(
                        topic,
                        conn,
                        key,
                        meta.as_deref(),
                        Duration::from_millis(ms),
                    ),
                    None => engine.track(topic, conn, key, meta.as_deref()),
                };
                let k = (topic.to_owned(), conn);
                if model.presences.contains_key(&k) {
                    assert_eq!(result.unwrap_err().kind(), ErrorKind::AlreadyTracked);
                } else {
                    result.unwrap();
                    let meta = serde_json::from_str(meta.as_deref().unwrap_or("{}")).unwrap();
                    let ttl = ttl.map(|t| (t, model.now + t));
                    model.presences.insert(
                        k,
                        Presence {
                            key: key.map(str::to_owned),
                            meta,
                            ttl,
                        },
                    );
                }
            }
            30..=44 => {
                let result = engine.untrack(topic, conn);
                match model.presences.remove(&(topic.to_owned(), conn)) {
                    Some(_) => result.unwrap(),
                    None => assert_eq!(result.unwrap_err().kind(), ErrorKind::NotTracked),
                }
            }
            45..=49 => {
                let expected = model.presences.keys().filter(|(_, c)| *c == conn).count();
                model.presences.retain(|(_, c), _| *c != conn);
                assert_eq!(engine.untrack_conn(conn), expected);
            }
            50..=54 => {
                let meta = format!("{{\"m\":{}}}", rng.below(3));
                let result = engine.update(topic, conn, Some(&meta));
                match model.presences.get_mut(&(topic.to_owned(), conn)) {
                    Some(p) => {
                        result.unwrap();
                        p.meta = serde_json::from_str(&meta).unwrap();
                    }
                    None => assert_eq!(result.unwrap_err().kind(), ErrorKind::NotTracked),
                }
            }
            55..=69 => {
                let before = model.presences.len();
                let want = model.touch(conn);
                expiries += before - model.presences.len();
                renewals += want;
                assert_eq!(engine.touch(conn), want, "touch of {conn} at step {step}");
            }
            70..=84 => {
                let by = rng.below(25);
                clock.advance(Duration::from_millis(by));
                model.now += by;
            }
            _ => {
                let before = model.presences.len();
                model.expire();
                expiries += before - model.presences.len();
                let batch = engine.poll_diff();
                clients.apply(&batch, step);
                clients.check(&engine, &model, step);
                assert_eq!(engine.stats().presences, model.presences.len() as u64);
            }
        }
    }
    assert!(
        expiries > steps / 100 && renewals > steps / 100,
        "the sequence exercised expiry ({expiries}) and renewal ({renewals})"
    );
    // Every TTL presence leaves once time runs on, and the rest by their untracks.
    clock.advance(Duration::from_secs(1));
    engine.poll_diff();
    model.now += 1000;
    model.expire();
    assert_eq!(engine.stats().presences, model.presences.len() as u64);
    for conn in 0..10 {
        engine.untrack_conn(conn);
    }
    engine.poll_diff();
    assert_eq!(engine.stats().topics, 0);
}

#[test]
fn counts_format_with_ttl_matches_the_model() {
    for seed in 0..12 {
        run(Format::Counts, seed, 5_000);
    }
}

#[test]
fn phoenix_format_with_ttl_matches_the_model_and_phoenix_sync_diff() {
    for seed in 100..112 {
        run(Format::Phoenix, seed, 5_000);
    }
}
