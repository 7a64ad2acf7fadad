//! The clients of the model tests: one per topic, started from `list()` and fed every
//! polled diff as the format's real client applies it. After every poll each must hold
//! exactly what the engine lists, and what the test's model of the host says.

use super::{host_meta, normalize, phoenix_state, sync_diff, SeedReducer};
use presence_core::{Counts, DiffBatch, Engine, Format, Occupancy};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

/// What a test's model of the host says a topic holds.
pub trait Expected {
    fn counts(&self, topic: &str) -> Counts;
    /// key → sorted metas without their refs: the topic's phoenix list.
    fn listing(&self, topic: &str, viewers_key: &str) -> BTreeMap<String, Vec<String>>;
}

/// A client of one topic.
pub enum Client {
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

    pub fn is_empty(&self) -> bool {
        match self {
            Client::Counts(r) => *r == SeedReducer::default(),
            Client::Phoenix(s) => s.is_empty(),
        }
    }

    /// Applies the diff `payload` of `topic`, which must be minimal: it changes what the
    /// client shows, and in phoenix format it leaves refs the client holds, joins refs it
    /// does not, and names in `phx_ref_prev` a ref of the same key leaving in it.
    fn apply(&mut self, topic: &str, payload: &Value) {
        match self {
            Client::Counts(r) => {
                // Only what clients show counts as a change: a second tab of a user
                // already present sends nothing.
                let before = *r;
                r.diff(payload);
                assert!(
                    *r != before,
                    "a diff that changes nothing a client shows, for {topic}"
                );
            }
            Client::Phoenix(s) => {
                let held: HashSet<&str> = s
                    .values()
                    .flatten()
                    .filter_map(|m| m["phx_ref"].as_str())
                    .collect();
                let refs = |side: &str| -> Vec<String> {
                    payload[side]
                        .as_object()
                        .unwrap()
                        .values()
                        .flat_map(|p| p["metas"].as_array().unwrap().iter())
                        .map(|m| m["phx_ref"].as_str().unwrap().to_owned())
                        .collect()
                };
                let (joins, leaves) = (refs("joins"), refs("leaves"));
                assert!(
                    !joins.is_empty() || !leaves.is_empty(),
                    "an empty diff was sent for {topic}"
                );
                assert!(
                    leaves.iter().all(|r| held.contains(r.as_str())),
                    "a leave of a ref the client never saw"
                );
                assert!(
                    joins.iter().all(|r| !held.contains(r.as_str())),
                    "a join of a ref the client holds"
                );
                for (key, p) in payload["joins"].as_object().unwrap() {
                    for m in p["metas"].as_array().unwrap() {
                        if let Some(prev) = m.get("phx_ref_prev") {
                            let left = payload["leaves"][key]["metas"]
                                .as_array()
                                .is_some_and(|ms| ms.iter().any(|l| l["phx_ref"] == *prev));
                            assert!(left, "phx_ref_prev {prev} of {key} names no leave");
                        }
                    }
                }
                sync_diff(s, payload);
                normalize(s);
            }
        }
    }
}

/// Every topic's client, with the seq of the last diff it applied.
pub struct Clients {
    viewers_key: String,
    topics: Vec<String>,
    clients: HashMap<String, (Client, u64)>,
}

impl Clients {
    /// A client for each of `topics`, started from the engine's `list()`.
    pub fn new(engine: &Engine, topics: &[&str]) -> Clients {
        let config = engine.config();
        let clients = topics
            .iter()
            .map(|t| {
                let state = engine.list(t).unwrap();
                let json: Value = serde_json::from_str(&state.json).unwrap();
                (
                    t.to_string(),
                    (Client::new(config.format, &json), state.seq),
                )
            })
            .collect();
        Clients {
            viewers_key: config.viewers_key.clone(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            clients,
        }
    }

    /// Applies a poll's diffs. Each topic comes once, with the seq after its client's
    /// (or 1 after the topic was dropped, which applies to the empty state); the poll's
    /// JSON holds the same diffs; the occupancy is the change between the client's state
    /// before the diff and after it.
    pub fn apply(&mut self, batch: &DiffBatch, step: usize) {
        let whole: Value = serde_json::from_str(batch.json()).expect("poll is valid JSON");
        assert_eq!(whole.as_array().unwrap().len(), batch.len());
        let mut seen = HashSet::new();
        for (d, env) in batch.iter().zip(whole.as_array().unwrap()) {
            assert!(seen.insert(d.topic.to_owned()), "topic twice in one poll");
            assert_eq!(env["topic"], d.topic);
            assert_eq!(env["seq"], d.seq);
            let payload: Value = serde_json::from_str(d.payload).unwrap();
            assert_eq!(env["payload"], payload, "the envelope embeds the payload");
            let (client, seq) = self.clients.get_mut(d.topic).expect("known topic");
            assert!(
                d.seq == *seq + 1 || (d.seq == 1 && client.is_empty()),
                "seq gap on {} at step {step}",
                d.topic
            );
            *seq = d.seq;
            let was_occupied = !client.is_empty();
            client.apply(d.topic, &payload);
            let occupancy = match (was_occupied, !client.is_empty()) {
                (false, true) => Occupancy::Occupied,
                (true, false) => Occupancy::Vacated,
                _ => Occupancy::Unchanged,
            };
            assert_eq!(
                d.occupancy, occupancy,
                "occupancy of {} at step {step}",
                d.topic
            );
            match occupancy.name() {
                Some(name) => assert_eq!(env["occupancy"], name),
                None => assert!(env.get("occupancy").is_none(), "{env}"),
            }
        }
    }

    /// After a poll, for every topic: the engine's counts are the model's, and the client
    /// holds the engine's `list()` at the same seq, which shows what the model holds.
    pub fn check(&mut self, engine: &Engine, model: &impl Expected, step: usize) {
        for t in &self.topics {
            let want = model.counts(t);
            assert_eq!(
                engine.counts(t).unwrap(),
                want,
                "counts of {t} at step {step}"
            );
            let state = engine.list(t).unwrap();
            let listed: Value = serde_json::from_str(&state.json).unwrap();
            let (client, seq) = self.clients.get_mut(t).unwrap();
            if state.seq == 0 && *seq != 0 {
                // The topic emptied and was dropped; its clients were told so.
                assert!(
                    client.is_empty(),
                    "{t} was dropped while clients saw it non-empty"
                );
                *seq = 0;
            }
            assert_eq!(state.seq, *seq, "list seq of {t}");
            match &*client {
                Client::Counts(r) => {
                    assert_eq!(
                        (r.viewers as u64, r.users as u64),
                        (want.viewers, want.users),
                        "reducer of {t} at step {step}"
                    );
                    let mut fresh = SeedReducer::default();
                    fresh.set(&listed);
                    assert_eq!(&fresh, r, "list of {t} equals the reduced state");
                }
                Client::Phoenix(s) => {
                    assert_eq!(
                        s,
                        &phoenix_state(&listed),
                        "synced client of {t} equals list at step {step}"
                    );
                    let synced: BTreeMap<String, Vec<String>> = s
                        .iter()
                        .map(|(k, metas)| {
                            let mut v: Vec<String> =
                                metas.iter().map(|m| host_meta(m).to_string()).collect();
                            v.sort();
                            (k.clone(), v)
                        })
                        .collect();
                    assert_eq!(
                        synced,
                        model.listing(t, &self.viewers_key),
                        "metas of {t} at step {step}"
                    );
                    let users = s.keys().filter(|k| **k != self.viewers_key).count() as u64;
                    assert_eq!(users, want.users);
                }
            }
        }
    }
}
