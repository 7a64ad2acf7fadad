//! `redis`: the Redis counting patterns a host would otherwise use, against the
//! redis-server `run.py` starts: joins and leaves pipelined and one round trip each, and
//! the memory each pattern holds per presence (`INFO used_memory`). Their baseline is the
//! engine's `track_untrack` figure of the same workload.

use presence_bench::args::{self, Args};
use presence_bench::out::{rate, Record};
use presence_bench::redis_patterns::{self as rp, Pattern};
use presence_bench::workload::Workload;
use serde_json::json;
use std::time::Instant;

fn redis_url(a: &Args) -> &str {
    a.str("url")
        .unwrap_or_else(|| args::fail(crate::USAGE, "--url redis://127.0.0.1:PORT/ is required"))
}

pub fn run(a: &Args) {
    let url = redis_url(a);
    let (n, topics, runs) = (
        a.usize("n", 1_000_000),
        a.usize("topics", 1000),
        a.usize("runs", 3),
    );
    let rt_n = a.usize("rt-n", 50_000).min(n);
    let batch = a.usize("batch", 1000);
    let (w, w_rt) = (
        Workload::standard(n, topics),
        Workload::standard(rt_n, topics),
    );
    let (all, all_rt) = (w.all(), w_rt.all());
    let (keys, keys_rt) = (rp::Keys::new(&w), rp::Keys::new(&w_rt));
    let mut con = rp::connect(url).expect("connects to redis-server");
    let mut pipelined: [Vec<f64>; 2] = Default::default();
    let mut round_trip: [Vec<f64>; 2] = Default::default();
    let mut memory: [Vec<f64>; 2] = Default::default();
    for _ in 0..runs {
        for (k, p) in Pattern::ALL.into_iter().enumerate() {
            rp::flush(&mut con).expect("FLUSHDB");
            let before = rp::used_memory(&mut con).expect("INFO");
            let t = Instant::now();
            rp::apply(&mut con, p, &keys, &w, &all, true, batch).expect("joins");
            let tracking = t.elapsed();
            let held = rp::used_memory(&mut con).expect("INFO");
            let t = Instant::now();
            rp::apply(&mut con, p, &keys, &w, &all, false, batch).expect("leaves");
            pipelined[k].push(rate(2 * n, tracking + t.elapsed()));
            memory[k].push(held.saturating_sub(before) as f64 / n as f64);
            rp::flush(&mut con).expect("FLUSHDB");
            let t = Instant::now();
            rp::apply(&mut con, p, &keys_rt, &w_rt, &all_rt, true, 1).expect("joins");
            rp::apply(&mut con, p, &keys_rt, &w_rt, &all_rt, false, 1).expect("leaves");
            round_trip[k].push(rate(2 * rt_n, t.elapsed()));
        }
    }
    rp::flush(&mut con).expect("FLUSHDB");
    let params = json!({"n": n, "topics": topics});
    for (k, p) in Pattern::ALL.into_iter().enumerate() {
        let name = format!("redis-{}", p.name());
        Record::new("track_untrack", &format!("{name}-pipelined"), "ops/s")
            .params(params.clone())
            .baseline("rust-engine")
            .field("batch", json!(batch))
            .emit(&pipelined[k]);
        Record::new("track_untrack", &name, "ops/s")
            .params(json!({"n": rt_n, "topics": topics}))
            .baseline("rust-engine")
            .field("baseline_params", params.clone())
            .emit(&round_trip[k]);
        Record::new("memory", &name, "bytes/presence")
            .params(params.clone())
            .field("source", json!("INFO used_memory"))
            .emit(&memory[k]);
    }
}
