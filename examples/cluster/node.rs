//! A cluster node driven over stdin: a stand-in for a server process, used by the
//! multi-process tests and handy for trying a cluster by hand.
//!
//! ```text
//! cargo run --example cluster-node -- --node a --redis redis://127.0.0.1:6379/ [--format phoenix]
//!   track <topic> <conn> [key]   untrack <topic> <conn>   untrack_conn <conn>
//!   fill <topics> <per_topic>    (per_topic users in each of topics fill:0.., conns from 1M)
//!   counts <topic>               poll                     stats           quit
//!   stop_redis                   (answers how long the stop took)
//! ```
//! Each command answers one JSON line on stdout. `quit` leaves the cluster cleanly.

use presence_core::{ClusterConfig, Config, Engine, Format};
use std::io::{BufRead, Write};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut config = Config::default();
    let mut cluster = ClusterConfig::new("node", "presence-engine demo cluster secret");
    let (mut redis, mut channel) = ("redis://127.0.0.1:6379/".to_owned(), "presence".to_owned());
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--node" => cluster.node = value(),
            "--secret" => cluster.secret = value(),
            "--redis" => redis = value(),
            "--channel" => channel = value(),
            "--format" => {
                config.format = if value() == "phoenix" {
                    Format::Phoenix
                } else {
                    Format::Counts
                }
            }
            "--tick-ms" => cluster.tick_ms = value().parse().expect("--tick-ms is a number"),
            "--down-after-ms" => {
                cluster.down_after_ms = value().parse().expect("--down-after-ms is a number")
            }
            "--stale-after-ms" => {
                cluster.stale_after_ms = value().parse().expect("--stale-after-ms is a number")
            }
            "--snapshot-interval-ms" => {
                cluster.snapshot_interval_ms =
                    value().parse().expect("--snapshot-interval-ms is a number")
            }
            other => panic!("unknown flag {other}"),
        }
    }
    config.cluster = Some(cluster);
    let engine = Engine::new(config).expect("valid config");
    engine
        .start_redis(&redis, &channel)
        .expect("Redis link starts");

    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin is readable");
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["track", topic, conn, rest @ ..] => {
                result(engine.track(topic, parse(conn), rest.first().copied(), None))
            }
            ["untrack", topic, conn] => result(engine.untrack(topic, parse(conn))),
            ["fill", topics, per_topic] => {
                let node = &engine.cluster_stats().expect("cluster mode").node;
                let mut conn = 1_000_000;
                let mut out = Ok(());
                for t in 0..parse(topics) {
                    for u in 0..parse(per_topic) {
                        conn += 1;
                        let key = format!("{node}-{u}");
                        out = out.and(engine.track(&format!("fill:{t}"), conn, Some(&key), None));
                    }
                }
                result(out)
            }
            ["poll"] => format!("{{\"diffs\":{}}}", engine.poll_diff().len()),
            ["untrack_conn", conn] => {
                format!("{{\"removed\":{}}}", engine.untrack_conn(parse(conn)))
            }
            ["counts", topic] => {
                let c = engine.counts(topic).expect("valid topic");
                format!(
                    "{{\"viewers\":{},\"users\":{},\"connections\":{}}}",
                    c.viewers, c.users, c.connections
                )
            }
            ["stats"] => {
                let s = engine.cluster_stats().expect("cluster mode");
                format!(
                    "{{\"nodes\":{},\"incarnation\":{},\"messages_sent\":{},\"bytes_sent\":{},\"messages_received\":{},\"bytes_received\":{},\"snapshots_sent\":{},\"nodes_dropped\":{},\"stale_nodes\":{},\"link_up\":{},\"rejected\":{}}}",
                    s.nodes,
                    s.incarnation,
                    s.messages_sent,
                    s.bytes_sent,
                    s.messages_received,
                    s.bytes_received,
                    s.snapshots_sent,
                    s.nodes_dropped,
                    s.stale_nodes,
                    s.link_up,
                    s.rejected_unauthenticated + s.rejected_malformed + s.rejected_oversized + s.rejected_replayed
                )
            }
            ["stop_redis"] => {
                let started = std::time::Instant::now();
                let stopped = engine.stop_redis();
                format!(
                    "{{\"stopped\":{stopped},\"ms\":{}}}",
                    started.elapsed().as_millis()
                )
            }
            ["quit"] => break,
            _ => format!("{{\"error\":\"unknown command {line:?}\"}}"),
        };
        let mut out = stdout.lock();
        writeln!(out, "{answer}")
            .and_then(|_| out.flush())
            .expect("stdout is writable");
    }
    // Dropping the engine publishes this node's departure and stops the link.
}

fn parse(conn: &str) -> u64 {
    conn.parse().expect("conn is a number")
}

fn result(r: presence_core::Result<()>) -> String {
    match r {
        Ok(()) => "{\"ok\":true}".into(),
        Err(e) => format!("{{\"ok\":false,\"error\":{:?}}}", e.message()),
    }
}
