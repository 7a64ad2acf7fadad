//! `poll`: the time of one `poll_diff` as a function of how many topics changed (the
//! total held fixed), then of how many topics are held (the changed fixed): a poll should
//! cost what changed, not what is held.

use presence_bench::args::Args;
use presence_bench::engine;
use presence_bench::out::Record;
use presence_core::{Engine, Format};
use serde_json::json;
use std::hint::black_box;
use std::time::Instant;

/// An engine holding `total` topics of one presence each, polled clean.
fn topics_engine(total: usize) -> (Engine, Vec<String>) {
    let e = engine(Format::Counts);
    let names: Vec<String> = (0..total).map(|j| format!("p{j}")).collect();
    for (j, name) in names.iter().enumerate() {
        e.track(name, j as u64, Some("u"), None).expect("track");
    }
    drop(e.poll_diff());
    (e, names)
}

/// Changes `k` of the topics (one more presence each, spread over all shards), then
/// times one `poll_diff` (including dropping its batch); restores the state after.
fn time_poll(e: &Engine, names: &[String], k: usize) -> f64 {
    let total = names.len();
    let extra = total as u64;
    let chosen: Vec<usize> = (0..k).map(|i| i * total / k).collect();
    for &j in &chosen {
        e.track(&names[j], extra + j as u64, Some("v"), None)
            .expect("track");
    }
    let t = Instant::now();
    let len = {
        let batch = e.poll_diff();
        black_box(batch.json().len());
        batch.len()
    };
    let elapsed = t.elapsed();
    assert_eq!(len, k, "one diff per changed topic");
    for &j in &chosen {
        e.untrack(&names[j], extra + j as u64).expect("untrack");
    }
    drop(e.poll_diff());
    elapsed.as_secs_f64() * 1e6
}

pub fn run(a: &Args) {
    let runs = a.usize("runs", 5);
    let total = a.usize("total", 100_000);
    let changed = a.list("changed", &[1, 10, 100, 1_000, 10_000, 100_000]);
    let (e, names) = topics_engine(total);
    let mut series: Vec<Vec<f64>> = vec![Vec::new(); changed.len()];
    for _ in 0..runs {
        for (s, &k) in series.iter_mut().zip(&changed) {
            s.push(time_poll(&e, &names, k.min(total)));
        }
    }
    drop((e, names));
    for (s, &k) in series.iter().zip(&changed) {
        Record::new("poll_changed", "rust-engine", "us")
            .params(json!({"total_topics": total}))
            .x(k.min(total) as u64)
            .emit(s);
    }
    let fixed = a.usize("fixed-changed", 100);
    for total in a.list("totals", &[1_000, 10_000, 100_000, 1_000_000]) {
        let (e, names) = topics_engine(total);
        let s: Vec<f64> = (0..runs)
            .map(|_| time_poll(&e, &names, fixed.min(total)))
            .collect();
        Record::new("poll_total", "rust-engine", "us")
            .params(json!({"changed": fixed}))
            .x(total as u64)
            .emit(&s);
    }
}
