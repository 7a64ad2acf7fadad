//! `check` (part of `run.py --check`): the counts of every topic, as the engine (live, and
//! as its polls published them), the floor and, given `--url`, each Redis pattern see them
//! after the same three phases; `run.py` compares them with the workload's expected
//! counts. No timing.

use presence_bench::args::Args;
use presence_bench::engine;
use presence_bench::floor::{self, Floor};
use presence_bench::redis_patterns::{self as rp, Pattern};
use presence_bench::workload::Workload;
use presence_core::Format;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Prints one phase of the correctness check: every topic's counts as one impl sees them
/// (`null` for a count the impl does not keep).
fn print_check(imp: &str, phase: &str, topics: &[String], counts: &[[Option<u64>; 3]]) {
    let map: serde_json::Map<String, Value> = topics
        .iter()
        .zip(counts)
        .map(|(t, c)| (t.clone(), json!(c)))
        .collect();
    println!(
        "{}",
        json!({"check": "counts", "impl": imp, "phase": phase, "topics": map})
    );
}

fn full(c: presence_core::Counts) -> [Option<u64>; 3] {
    [Some(c.viewers), Some(c.users), Some(c.connections)]
}

/// The correctness check of `make test`: the engine (live counts, and the counts its
/// polls published), the floor and the Redis patterns after the same three phases.
pub fn run(a: &Args) {
    let (n, topics) = (a.usize("n", 2001), a.usize("topics", 7));
    let w = Workload::with_anonymous(n, topics, a.usize("anonymous-every", 5));
    let names: Vec<String> = (0..w.used_topics())
        .map(|t| w.name_of_topic(t).to_owned())
        .collect();
    let all = w.all();
    let third: Vec<u32> = all.iter().copied().filter(|i| i % 3 == 0).collect();
    let rest: Vec<u32> = all.iter().copied().filter(|i| i % 3 != 0).collect();
    let phases: [(&str, &[u32], bool); 3] = [
        ("tracked", &all, true),
        ("partial", &third, false),
        ("empty", &rest, false),
    ];

    let e = engine(Format::Counts);
    let mut published: HashMap<String, presence_core::Counts> = HashMap::new();
    let mut f = Floor::default();
    for (phase, conns, join) in phases {
        if join {
            w.track_engine(&e, conns, None);
            floor::track_all(&mut f, &w, conns);
        } else {
            w.untrack_engine(&e, conns);
            floor::untrack_all(&mut f, &w, conns);
        }
        let live: Vec<_> = w.engine_counts(&e).into_iter().map(full).collect();
        print_check("rust-engine", phase, &names, &live);
        for d in e.poll_diff().iter() {
            published.insert(d.topic.to_owned(), d.counts);
        }
        let polled: Vec<_> = names
            .iter()
            .map(|t| full(published.get(t).copied().unwrap_or_default()))
            .collect();
        print_check("rust-engine-poll", phase, &names, &polled);
        let fl: Vec<_> = (0..names.len() as u32).map(|t| full(f.counts(t))).collect();
        print_check("rust-floor", phase, &names, &fl);
    }
    let Some(url) = a.str("url") else { return };
    let mut con = rp::connect(url).expect("connects to redis-server");
    let keys = rp::Keys::new(&w);
    for p in Pattern::ALL {
        for (suffix, batch) in [("", 1), ("-pipelined", 100)] {
            rp::flush(&mut con).expect("FLUSHDB");
            let imp = format!("redis-{}{suffix}", p.name());
            for (phase, conns, join) in phases {
                rp::apply(&mut con, p, &keys, &w, conns, join, batch).expect("redis events");
                let c: Vec<_> = rp::connections(&mut con, p, &keys)
                    .expect("redis counts")
                    .into_iter()
                    .map(|c| [None, None, Some(c)])
                    .collect();
                print_check(&imp, phase, &names, &c);
            }
        }
    }
    rp::flush(&mut con).expect("FLUSHDB");
}
