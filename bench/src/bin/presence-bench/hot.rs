//! `hot`: reads of one topic of N presences, as a busy room is read: its counts (the
//! engine against the floor) and its list, in the phoenix format against a plain
//! tracker that groups and serialises its map with serde_json on every call, and in the
//! counts format.

use presence_bench::args::Args;
use presence_bench::floor::{self, Floor};
use presence_bench::measure::time_calls;
use presence_bench::out::{ns_per, Record};
use presence_bench::workload::Workload;
use presence_bench::{engine, META};
use presence_core::Format;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::time::Instant;

/// A plain tracker's `list`: the room as a map of connection -> (key, meta), grouped
/// and serialised with serde_json into the Phoenix shape on every call.
fn naive_list(room: &HashMap<u64, (String, Value)>) -> String {
    let mut grouped: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for (conn, (key, meta)) in room {
        let mut m = meta.clone();
        m["phx_ref"] = json!(conn.to_string());
        grouped.entry(key).or_default().push(m);
    }
    let state: serde_json::Map<String, Value> = grouped
        .into_iter()
        .map(|(k, metas)| (k.to_owned(), json!({ "metas": metas })))
        .collect();
    serde_json::to_string(&state).expect("serialisable")
}

pub fn run(a: &Args) {
    let (n, calls, runs) = (
        a.usize("n", 100_000),
        a.usize("calls", 1_000_000),
        a.usize("runs", 5),
    );
    let w = Workload::standard(n, 1);
    let all = w.all();
    let topic = w.name_of_topic(0).to_owned();
    let counts_engine = engine(Format::Counts);
    w.track_engine(&counts_engine, &all, None);
    drop(counts_engine.poll_diff());
    let phoenix_engine = engine(Format::Phoenix);
    w.track_engine(&phoenix_engine, &all, Some(META));
    drop(phoenix_engine.poll_diff());
    let mut f = Floor::default();
    floor::track_all(&mut f, &w, &all);
    let meta: Value = serde_json::from_str(META).expect("meta parses");
    let room: HashMap<u64, (String, Value)> = all
        .iter()
        .map(|&i| {
            let key = w.key(i as usize).expect("keyed").to_owned();
            (u64::from(i), (key, meta.clone()))
        })
        .collect();
    let expected = counts_engine.counts(&topic).expect("counts");
    assert_eq!(expected.connections, n as u64);
    assert_eq!(expected, f.counts(0));
    let list_calls = (calls / 100).max(1);
    let mut out: [Vec<f64>; 6] = Default::default();
    for _ in 0..runs {
        let t = time_calls(calls, || {
            black_box(counts_engine.counts(black_box(&topic)).expect("counts"));
        });
        out[0].push(ns_per(calls, t));
        let t = time_calls(calls, || {
            black_box(f.counts(black_box(0)));
        });
        out[1].push(ns_per(calls, t));
        let t = time_calls(list_calls, || {
            black_box(counts_engine.list(black_box(&topic)).expect("list"));
        });
        out[2].push(ns_per(list_calls, t) / 1e3);
        let t = Instant::now();
        let state = phoenix_engine.list(&topic).expect("list");
        out[3].push(t.elapsed().as_secs_f64() * 1e6);
        assert!(state.json.len() > n * 20, "the list holds every presence");
        let t = Instant::now();
        let naive = naive_list(&room);
        out[4].push(t.elapsed().as_secs_f64() * 1e6);
        assert!(naive.len() > n * 20);
        out[5].push(state.json.len() as f64);
    }
    let params = json!({"presences": n});
    Record::new("counts_hot", "rust-floor", "ns")
        .params(params.clone())
        .emit(&out[1]);
    Record::new("counts_hot", "rust-engine", "ns")
        .params(params.clone())
        .baseline("rust-floor")
        .emit(&out[0]);
    Record::new("list_hot", "naive-serde-phoenix", "us")
        .params(params.clone())
        .emit(&out[4]);
    Record::new("list_hot", "rust-engine-phoenix", "us")
        .params(params.clone())
        .baseline("naive-serde-phoenix")
        .field("bytes", json!(out[5].first().copied().unwrap_or(0.0)))
        .emit(&out[3]);
    Record::new("list_hot", "rust-engine-counts", "us")
        .params(params)
        .emit(&out[2]);
}
