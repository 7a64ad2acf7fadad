//! `converge`: how long a change on one node takes to reach the two others, the delay a
//! user on another server sees; at the tick given (the default 250 ms, and 50 ms).

use crate::coordinator::{at, check_rejections, one, start_cluster, timed, Setup};
use crate::ms;
use presence_bench::args::Args;
use presence_bench::out::Record;
use presence_bench::rng::Rng;
use serde_json::json;
use std::time::Duration;

/// Convergence: a change on a (a track or an untrack in one topic), timed until b and c
/// both report the new counts. A random wait of up to one tick before each change spreads
/// the changes over the phase of a's tick, as real changes are.
pub fn run(a: &Args) {
    let tick = a.usize("tick-ms", 250) as u64;
    let changes = a.usize("changes", 60);
    let setup = Setup {
        url: a.required("url", crate::USAGE).to_owned(),
        channel: format!("bench-converge-{tick}-{}", std::process::id()),
        format: "counts",
        tick_ms: tick,
        down_after_ms: 3000,
        snapshot_ms: 30_000,
    };
    let mut nodes = start_cluster(&["a", "b", "c"], &setup);
    let [na, nb, nc] = &mut nodes[..] else {
        unreachable!()
    };
    let mut rng = Rng::new(a.usize("seed", 42) as u64 ^ tick);
    let topic = "room:converge";
    let mut present: Vec<(u64, bool)> = Vec::new(); // (conn, anonymous)
    let (mut both, mut first) = (Vec::new(), Vec::new());
    // Change 0 only warms up (every node in sync); it is not counted.
    for k in 0..=changes as u64 {
        std::thread::sleep(Duration::from_micros(rng.below(tick as usize * 1000) as u64));
        let line = if k % 3 == 2 {
            let (conn, _) = present.swap_remove(rng.below(present.len()));
            format!("untrack {topic} {conn}")
        } else {
            let anonymous = k % 4 == 1;
            present.push((k, anonymous));
            if anonymous {
                format!("track {topic} {k}")
            } else {
                format!("track {topic} {k} user{k}")
            }
        };
        let viewers = present.iter().filter(|p| p.1).count() as u64;
        let n = present.len() as u64;
        let want = one(topic, [viewers, n - viewers, n]);
        let took = timed(&mut [nb, nc], &want, 20 * tick + 5000, || at(&na.ok(&line)));
        if k > 0 {
            both.push(ms(*took.iter().max().expect("two nodes")));
            first.push(ms(*took.iter().min().expect("two nodes")));
        }
    }
    let params = json!({"tick_ms": tick, "nodes": 3, "format": "counts"});
    Record::new("cluster_converge", "redis-3-nodes", "ms")
        .params(params)
        .field("first_ms", json!(first))
        .emit(&both);
    check_rejections(&mut nodes);
}
