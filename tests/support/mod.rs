//! Shared by the integration tests: a seeded random source, the two client-side judges
//! of the wire formats, written as their real clients behave, the model tests' replay of
//! polls through them (`replay`), and an in-test cluster bus (`bus`).

#![allow(dead_code)]

pub mod bus;
pub mod replay;

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// SplitMix64: small, seeded, and good enough to drive random operation sequences.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The seed's Redux reducer, as CaptainFact wrote it: `PRESENCE/SET` merges the state,
/// `PRESENCE/DIFF` does `count + joins.X.count - leaves.X.count` for each group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeedReducer {
    pub viewers: i64,
    pub users: i64,
}

impl SeedReducer {
    pub fn set(&mut self, state: &Value) {
        let keys: Vec<&String> = state
            .as_object()
            .expect("state is an object")
            .keys()
            .collect();
        assert_eq!(
            keys.len(),
            2,
            "an Immutable Record takes no other keys: {state}"
        );
        self.viewers = state["viewers"]["count"].as_i64().expect("viewers.count");
        self.users = state["users"]["count"].as_i64().expect("users.count");
    }
    pub fn diff(&mut self, diff: &Value) {
        for group in ["viewers", "users"] {
            let joins = diff["joins"][group]["count"].as_i64().expect("joins count");
            let leaves = diff["leaves"][group]["count"]
                .as_i64()
                .expect("leaves count");
            let slot = if group == "viewers" {
                &mut self.viewers
            } else {
                &mut self.users
            };
            *slot += joins - leaves;
        }
    }
}

/// phoenix.js `Presence.syncDiff`: joins first (a joined key's metas replace the old
/// ones, old metas whose refs are not in the join are kept in front), then leaves (remove
/// metas by `phx_ref`; a key with no metas left is deleted).
pub fn sync_diff(state: &mut BTreeMap<String, Vec<Value>>, diff: &Value) {
    for (key, presence) in diff["joins"].as_object().expect("joins") {
        let mut metas: Vec<Value> = presence["metas"].as_array().expect("metas").clone();
        if let Some(current) = state.get(key) {
            let joined: Vec<&Value> = metas.iter().map(|m| &m["phx_ref"]).collect();
            let kept: Vec<Value> = current
                .iter()
                .filter(|m| !joined.contains(&&m["phx_ref"]))
                .cloned()
                .collect();
            metas = kept.into_iter().chain(metas).collect();
        }
        state.insert(key.clone(), metas);
    }
    for (key, presence) in diff["leaves"].as_object().expect("leaves") {
        let Some(current) = state.get_mut(key) else {
            continue;
        };
        let left: Vec<&Value> = presence["metas"]
            .as_array()
            .expect("metas")
            .iter()
            .map(|m| &m["phx_ref"])
            .collect();
        current.retain(|m| !left.contains(&&m["phx_ref"]));
        if current.is_empty() {
            state.remove(key);
        }
    }
}

/// A phoenix state payload as key → metas, metas sorted by `phx_ref` so that two states
/// compare equal whatever order their metas came in.
pub fn phoenix_state(payload: &Value) -> BTreeMap<String, Vec<Value>> {
    let mut out = BTreeMap::new();
    for (key, presence) in payload.as_object().expect("state object") {
        out.insert(
            key.clone(),
            presence["metas"].as_array().expect("metas").clone(),
        );
    }
    normalize(&mut out);
    out
}

pub fn normalize(state: &mut BTreeMap<String, Vec<Value>>) {
    for metas in state.values_mut() {
        metas.sort_by(|a, b| a["phx_ref"].as_str().cmp(&b["phx_ref"].as_str()));
    }
}

/// A meta without the engine's ref fields, for comparing with what the host tracked.
pub fn host_meta(meta: &Value) -> Value {
    let mut m: Map<String, Value> = meta.as_object().expect("meta object").clone();
    m.remove("phx_ref");
    m.remove("phx_ref_prev");
    Value::Object(m)
}
