//! Model-based test of presences with a time to live, on a manual clock: long random
//! sequences of tracks (with and without a ttl), touches, untracks and clock steps,
//! checked after every poll against a plain model in which a presence past its deadline
//! leaves at the next poll or touch of its connection.
//!
//! After every poll, for every topic: the client that started from `list()` and applied
//! every polled diff holds exactly the engine's new `list()`, the engine's counts equal
//! the model's, and seqs have no gaps.

mod support;

use presence_core::{Config, Counts, Engine, ErrorKind, Format, ManualClock};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use support::{host_meta, normalize, phoenix_state, sync_diff, Rng, SeedReducer};

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

enum Client {
    Counts(SeedReducer),
    Phoenix(BTreeMap<String, Vec<Value>>),
}

impl Client {
    fn new(format: Format, state: &Value) -> Client {
        match format {
            Format::Counts => {
                let mut r = SeedReducer::default();
                r.set(state);
                Client::Counts(r)
            }
            Format::Phoenix => Client::Phoenix(phoenix_state(state)),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Client::Counts(r) => *r == SeedReducer::default(),
            Client::Phoenix(s) => s.is_empty(),
        }
    }

    fn apply(&mut self, payload: &Value) {
        match self {
            Client::Counts(r) => r.diff(payload),
            Client::Phoenix(s) => {
                sync_diff(s, payload);
                normalize(s);
            }
        }
    }
}

fn run(format: Format, seed: u64, steps: usize) {
    let config = Config {
        format,
        max_topics: 64,
        ..Config::default()
    };
    let viewers_key = config.viewers_key.clone();
    let clock = Arc::new(ManualClock::default());
    let engine = Engine::with_clock(config, clock.clone()).unwrap();
    let mut model = Model::default();
    let mut rng = Rng(seed);
    let mut clients: HashMap<&str, (Client, u64)> = HashMap::new();
    for t in TOPICS {
        let state = engine.list(t).unwrap();
        let json: Value = serde_json::from_str(&state.json).unwrap();
        clients.insert(t, (Client::new(format, &json), state.seq));
    }
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
                let mut seen = HashSet::new();
                for d in batch.iter() {
                    assert!(seen.insert(d.topic.to_owned()), "topic twice in one poll");
                    let payload: Value = serde_json::from_str(d.payload).unwrap();
                    let (client, seq) = clients.get_mut(d.topic).expect("known topic");
                    assert!(
                        d.seq == *seq + 1 || (d.seq == 1 && client.is_empty()),
                        "seq gap on {} at step {step}",
                        d.topic
                    );
                    *seq = d.seq;
                    client.apply(&payload);
                }
                for t in TOPICS {
                    let want = model.counts(t);
                    assert_eq!(engine.counts(t).unwrap(), want, "{t} at step {step}");
                    let state = engine.list(t).unwrap();
                    let listed: Value = serde_json::from_str(&state.json).unwrap();
                    let (client, seq) = clients.get_mut(t).unwrap();
                    if state.seq == 0 && *seq != 0 {
                        assert!(client.is_empty(), "{t} dropped while shown non-empty");
                        *seq = 0;
                    }
                    assert_eq!(state.seq, *seq, "list seq of {t}");
                    match &*client {
                        Client::Counts(r) => {
                            assert_eq!(
                                (r.viewers as u64, r.users as u64),
                                (want.viewers, want.users)
                            );
                            let mut fresh = SeedReducer::default();
                            fresh.set(&listed);
                            assert_eq!(&fresh, r, "list of {t} equals the reduced state");
                        }
                        Client::Phoenix(s) => {
                            assert_eq!(s, &phoenix_state(&listed), "{t} at step {step}");
                            let synced: BTreeMap<String, Vec<String>> = s
                                .iter()
                                .map(|(k, metas)| {
                                    let mut v: Vec<String> =
                                        metas.iter().map(|m| host_meta(m).to_string()).collect();
                                    v.sort();
                                    (k.clone(), v)
                                })
                                .collect();
                            assert_eq!(synced, model.listing(t, &viewers_key), "{t} at {step}");
                        }
                    }
                }
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
