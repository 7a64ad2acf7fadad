//! `down`: how long the survivors take to drop a node's presences when it dies
//! (`kill -9`, detected after `down_after_ms` of silence) and when it leaves cleanly
//! (through the Redis link's stop, or by publishing `cluster_leave` itself): how long a
//! crashed server's users stay shown online.

use crate::coordinator::{
    at, check_rejections, expect_line, one, start_cluster, timed, Node, Setup,
};
use crate::ms;
use presence_bench::args::Args;
use presence_bench::measure::now_ns;
use presence_bench::out::Record;
use presence_bench::rng::Rng;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// Down detection: c (3 presences, one of its users also on a) is killed with SIGKILL,
/// or leaves through `stop_redis`, or publishes `cluster_leave` itself; timed until a and
/// b both report the counts without c. A fresh c starts for every repetition.
pub fn run(a: &Args) {
    let tick = a.usize("tick-ms", 250) as u64;
    let down_after = a.usize("down-after-ms", 3000) as u64;
    let reps = a.usize("reps", 5);
    let setup = Setup {
        url: a.required("url", crate::USAGE).to_owned(),
        channel: format!("bench-down-{tick}-{down_after}-{}", std::process::id()),
        format: "counts",
        tick_ms: tick,
        down_after_ms: down_after,
        snapshot_ms: 30_000,
    };
    let topic = "room:down";
    let mut nodes = start_cluster(&["a", "b"], &setup);
    nodes[0].ok(&format!("track {topic} 1 alice"));
    nodes[1].ok(&format!("track {topic} 1"));
    let with_c = one(topic, [2, 2, 5]); // viewers: b's and c's; users: alice, carol
    let without_c = one(topic, [1, 1, 2]);
    let mut rng = Rng::new(tick ^ down_after);
    let mut results: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for how in ["kill-9", "stop_redis", "cluster_leave"] {
        for _ in 0..reps {
            // A random start puts c's ticks at a random phase of the survivors' ticks (a
            // rep ends at a survivor's tick, so starting at once would align them).
            std::thread::sleep(Duration::from_micros(rng.below(tick as usize * 1000) as u64));
            let mut c = Node::start("c", &setup);
            c.ok("peers 2 20000");
            for cmd in ["1 carol", "2", "3 alice"] {
                c.ok(&format!("track {topic} {cmd}"));
            }
            let line = expect_line(20 * tick + 5000, &with_c);
            for n in nodes.iter_mut().chain([&mut c]) {
                n.ok(&line);
            }
            std::thread::sleep(Duration::from_micros(rng.below(tick as usize * 1000) as u64));
            let [na, nb] = &mut nodes[..] else {
                unreachable!()
            };
            let took = timed(
                &mut [na, nb],
                &without_c,
                down_after + 10_000,
                || match how {
                    "kill-9" => {
                        let t0 = now_ns();
                        c.kill9();
                        t0
                    }
                    "stop_redis" => at(&c.ok("leave")),
                    _ => at(&c.ok("leave_direct")),
                },
            );
            results
                .entry(how)
                .or_default()
                .push(ms(*took.iter().max().expect("two nodes")));
        }
    }
    let params = json!({"tick_ms": tick, "down_after_ms": down_after, "nodes": 3});
    for (how, runs) in results {
        Record::new("cluster_down", how, "ms")
            .params(params.clone())
            .emit(&runs);
    }
    check_rejections(&mut nodes);
}
