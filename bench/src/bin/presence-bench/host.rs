//! `host`: what a host's poll loop pays per changed topic, `poll_diff` against
//! `poll_ready` with every message rendered, and what a join's `presence_state` costs.
//!
//! Timed in thread CPU time: these figures are compared with the Python and Node drivers'
//! across three processes on two cores shared with other work, where the time a poll
//! spent on a CPU is what it costs, whereas its wall time also counts whatever else ran
//! meanwhile.

use presence_bench::args::Args;
use presence_bench::measure::{rotate, thread_cpu};
use presence_bench::out::Record;
use presence_bench::workload::Workload;
use presence_bench::{engine, META};
use presence_core::{Envelope, Format, ReadyBatch};
use serde_json::json;
use std::hint::black_box;

/// The host path, per changed topic: `total` topics of one presence each (phoenix: with
/// the small meta), `k` of them changed by one more presence (key "v"), then one poll
/// timed in thread CPU time, the state restored off the clock. `rust-poll_diff` is
/// `Engine::poll_diff` (the baseline), `rust-ready-event` `Engine::poll_ready`: the same
/// poll with every message rendered in the event envelope, into one [`ReadyBatch`] reused
/// from poll to poll. The Python and Node drivers time
/// their fast and dict paths on the same workload (`--host`). Then the state of one
/// phoenix topic of `state-n` presences (the standard workload's keys and meta):
/// `Engine::list`, and the whole `presence_state` message.
pub fn run(a: &Args) {
    let runs = a.usize("runs", 5);
    let total = a.usize("total", 10_000);
    let changed = a.list("changed", &[1_000, 10_000]);
    for (format, name) in [(Format::Counts, "counts"), (Format::Phoenix, "phoenix")] {
        let e = engine(format);
        let meta = (format == Format::Phoenix).then_some(META);
        let names: Vec<String> = (0..total).map(|j| format!("p{j}")).collect();
        for (j, n) in names.iter().enumerate() {
            e.track(n, j as u64, Some("u"), meta).expect("track");
        }
        drop(e.poll_diff());
        for &k in &changed {
            let k = k.min(total);
            let chosen: Vec<usize> = (0..k).map(|i| i * total / k).collect();
            // One batch for every poll, as a host keeps it: its memory is reused.
            let ready_batch = std::cell::RefCell::new(ReadyBatch::default());
            let timed = |ready: bool| {
                for &j in &chosen {
                    e.track(&names[j], (total + j) as u64, Some("v"), meta)
                        .expect("track");
                }
                let t = thread_cpu();
                let n = if ready {
                    let mut batch = ready_batch.borrow_mut();
                    e.poll_ready(Some(&Envelope::Event), &mut batch);
                    black_box(batch.text().len());
                    batch.len()
                } else {
                    let batch = e.poll_diff();
                    black_box(batch.json().len());
                    batch.len()
                };
                let ns = (thread_cpu() - t).as_nanos() as f64 / k as f64;
                assert_eq!(n, k, "one diff per changed topic");
                for &j in &chosen {
                    e.untrack(&names[j], (total + j) as u64).expect("untrack");
                }
                drop(e.poll_diff());
                ns
            };
            let [poll, ready] = rotate(runs, [&mut || timed(false), &mut || timed(true)]);
            let params = json!({"format": name, "changed": k, "total_topics": total});
            Record::new("host_diff", "rust-poll_diff", "ns")
                .params(params.clone())
                .emit(&poll);
            Record::new("host_diff", "rust-ready-event", "ns")
                .params(params)
                .baseline("rust-poll_diff")
                .emit(&ready);
        }
    }
    let n = a.usize("state-n", 10_000);
    let w = Workload::standard(n, 1);
    let e = engine(Format::Phoenix);
    w.track_engine(&e, &w.all(), Some(META));
    drop(e.poll_diff());
    let topic = w.name_of_topic(0);
    let timed = |message: bool| {
        let t = thread_cpu();
        let len = if message {
            let state = e.list(topic).expect("list");
            Envelope::Event.state_message(topic, &state).len()
        } else {
            e.list(topic).expect("list").json.len()
        };
        let us = (thread_cpu() - t).as_secs_f64() * 1e6;
        assert!(len > n * 20, "the state holds every presence");
        us
    };
    let [list, message] = rotate(runs, [&mut || timed(false), &mut || timed(true)]);
    let params = json!({"presences": n, "topic": topic});
    Record::new("host_state", "rust-list", "us")
        .params(params.clone())
        .emit(&list);
    Record::new("host_state", "rust-state-message", "us")
        .params(params)
        .baseline("rust-list")
        .emit(&message);
}
