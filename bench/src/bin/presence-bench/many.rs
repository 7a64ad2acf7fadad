//! `many`: the counts of K topics asked at once (an HTTP "GET /channels?info=user_count"),
//! by `counts_many` and by a loop of `counts`, per topic asked, with more and more topics
//! held: what a batch read costs should follow what is asked, not what is held.

use presence_bench::args::Args;
use presence_bench::engine;
use presence_bench::measure::time_calls;
use presence_bench::out::{ns_per, Record};
use presence_bench::workload::Workload;
use presence_core::Format;
use serde_json::json;
use std::hint::black_box;

pub fn run(a: &Args) {
    let (held, ask, calls, runs) = (
        a.list("held", &[1_000, 100_000]),
        a.usize("ask", 100),
        a.usize("calls", 20_000),
        a.usize("runs", 5),
    );
    for &t in &held {
        // Two connections of one user per topic, so every topic asked is held.
        let w = Workload::standard(2 * t, t);
        let e = engine(Format::Counts);
        w.track_engine(&e, &w.all(), None);
        drop(e.poll_diff());
        // Topics spread over the whole set, so the asked ones are not neighbours in memory.
        let asked: Vec<String> = (0..ask)
            .map(|k| w.name_of_topic(k * t / ask).to_owned())
            .collect();
        let batch = e.counts_many(&asked).expect("counts_many");
        let looped: Vec<_> = asked.iter().map(|n| e.counts(n).expect("counts")).collect();
        assert_eq!(batch, looped, "the batch reads what single reads read");
        assert!(batch.iter().all(|c| c.connections == 2));
        let mut many_ns = Vec::with_capacity(runs);
        let mut loop_ns = Vec::with_capacity(runs);
        for _ in 0..runs {
            let d = time_calls(calls, || {
                black_box(e.counts_many(black_box(&asked)).expect("counts_many"));
            });
            many_ns.push(ns_per(calls * ask, d));
            let d = time_calls(calls, || {
                for n in black_box(&asked) {
                    black_box(e.counts(n).expect("counts"));
                }
            });
            loop_ns.push(ns_per(calls * ask, d));
        }
        let params = json!({"held": t, "ask": ask});
        Record::new("counts_many", "rust-counts-loop", "ns")
            .params(params.clone())
            .emit(&loop_ns);
        Record::new("counts_many", "rust-counts-many", "ns")
            .params(params)
            .baseline("rust-counts-loop")
            .emit(&many_ns);
    }
}
