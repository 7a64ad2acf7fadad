//! `node`: one node process of the cluster benchmarks, a stand-in for a server process
//! (like examples/cluster/node.rs), started and driven over stdin by the other commands.
//! Its answers carry `CLOCK_MONOTONIC` times, so that the coordinator can subtract a time
//! taken on one node from a time taken on another.

use crate::format_of;
use presence_bench::args::Args;
use presence_bench::cluster::{cluster_engine, Churn, Event};
use presence_bench::measure::now_ns;
use presence_bench::META;
use presence_core::{Engine, Format};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One node: an engine with the Redis link, a poller thread standing in for the host's
/// poll loop (every 100 ms, output discarded), and commands on stdin, one JSON answer each:
///
/// ```text
/// track T C [K]  untrack T C  untrack_conn C      -> {"ok":..,"at":ns}
/// expect MS {"topic":[v,u,c],..}                  -> waits until the counts are exactly these
/// peers N MS                                       -> waits until N other nodes are live
/// digest TOPICS                                    -> a hash of the counts of t0..t{TOPICS-1}
/// populate N TOPICS USERS SEED                     -> tracks the churn's initial presences
/// churn RATE SECONDS                               -> joins+leaves at RATE/s, with traffic figures
/// stats   leave   leave_direct   quit
/// ```
pub fn serve(a: &Args) {
    let name = a.required("node", crate::USAGE).to_owned();
    let url = a.required("url", crate::USAGE).to_owned();
    let channel = a.required("channel", crate::USAGE).to_owned();
    let format = format_of(a.str("format").unwrap_or("counts"));
    let tick_ms = a.usize("tick-ms", 250) as u64;
    let down_after_ms = a.usize("down-after-ms", 3000) as u64;
    let snapshot_ms = a.usize("snapshot-interval-ms", 30_000) as u64;
    let meta = (format == Format::Phoenix).then_some(META);
    let engine = Arc::new(cluster_engine(
        format,
        &name,
        tick_ms,
        down_after_ms,
        snapshot_ms,
    ));
    engine
        .start_redis(&url, &channel)
        .expect("Redis link starts");
    // The host's own bus connection, for `leave_direct`.
    let mut bus = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection())
        .expect("connects to redis-server");
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (engine, stop) = (Arc::clone(&engine), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                drop(engine.poll_diff());
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let mut churn: Option<Churn> = None;

    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin is readable");
        let words: Vec<&str> = line.splitn(3, ' ').collect();
        let answer = match words.as_slice() {
            ["track", topic, rest] => {
                let mut it = rest.split(' ');
                let conn = parse(it.next().unwrap_or(""));
                let key = it.next();
                let at = now_ns();
                let r = engine.track(topic, conn, key, meta);
                json!({"ok": r.is_ok(), "at": at})
            }
            ["untrack", topic, conn] => {
                let at = now_ns();
                let r = engine.untrack(topic, parse(conn));
                json!({"ok": r.is_ok(), "at": at})
            }
            ["untrack_conn", conn] => {
                let at = now_ns();
                json!({"ok": true, "removed": engine.untrack_conn(parse(conn)), "at": at})
            }
            ["expect", timeout, spec] => expect(&engine, parse(timeout), spec),
            ["peers", n, timeout] => {
                let (n, deadline) = (parse(n), Instant::now() + millis(timeout));
                loop {
                    let live = engine.cluster_stats().expect("cluster mode").nodes;
                    if live == n || Instant::now() > deadline {
                        break json!({"ok": live == n, "nodes": live});
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            ["digest", topics] => {
                let (mut h, mut total) = (0xcbf2_9ce4_8422_2325u64, 0);
                for t in 0..parse(topics) {
                    let c = engine.counts(&format!("t{t}")).expect("valid topic");
                    total += c.connections;
                    for v in [c.viewers, c.users, c.connections] {
                        h = (h ^ v).wrapping_mul(0x0000_0100_0000_01b3);
                    }
                }
                json!({"digest": h.to_string(), "connections": total})
            }
            ["populate", ..] => {
                let v: Vec<usize> = line.split(' ').skip(1).map(|w| parse(w) as usize).collect();
                let [n, topics, users, seed] = v[..] else {
                    panic!("populate N TOPICS USERS SEED, got {line:?}")
                };
                let mut c = Churn::new(&name, n, topics, users, seed as u64);
                c.populate(&engine, meta);
                let held = c.present().len();
                churn = Some(c);
                json!({"ok": true, "presences": held})
            }
            ["churn", rate, seconds] => {
                let c = churn.as_mut().expect("populate before churn");
                run_churn(
                    &engine,
                    c,
                    format,
                    &name,
                    meta,
                    tick_ms,
                    parse(rate),
                    seconds.parse().expect("seconds"),
                )
            }
            ["stats"] => {
                let s = engine.cluster_stats().expect("cluster mode");
                json!({
                    "nodes": s.nodes, "incarnation": s.incarnation,
                    "messages_sent": s.messages_sent, "bytes_sent": s.bytes_sent,
                    "messages_received": s.messages_received,
                    "rejected": s.rejected_unauthenticated + s.rejected_malformed
                        + s.rejected_oversized + s.rejected_replayed,
                    "snapshots_sent": s.snapshots_sent,
                    "snapshot_requests_sent": s.snapshot_requests_sent,
                    "nodes_dropped": s.nodes_dropped,
                })
            }
            ["leave"] => {
                // The Redis link's own goodbye (presence_redis_stop).
                let at = now_ns();
                let was = engine.stop_redis();
                json!({"ok": was, "at": at, "done": now_ns()})
            }
            ["leave_direct"] => {
                // The host publishes cluster_leave itself on its bus, then stops the link.
                let at = now_ns();
                let msg = engine.cluster_leave().expect("cluster mode");
                let r = redis::cmd("PUBLISH")
                    .arg(&channel)
                    .arg(msg)
                    .query::<i64>(&mut bus);
                let sent = now_ns();
                engine.stop_redis();
                json!({"ok": r.is_ok(), "at": at, "done": sent})
            }
            ["quit"] => break,
            _ => json!({"error": format!("unknown command {line:?}")}),
        };
        let mut out = stdout.lock();
        writeln!(out, "{answer}")
            .and_then(|_| out.flush())
            .expect("stdout is writable");
    }
    stop.store(true, Ordering::Relaxed);
    poller.join().expect("poller");
    // Dropping the engine stops the link, which publishes this node's departure.
}

fn parse(s: &str) -> u64 {
    s.trim()
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

fn millis(s: &str) -> Duration {
    Duration::from_millis(parse(s))
}

/// Waits until every topic of `spec` has exactly the counts given, polling every 0.2 ms.
fn expect(engine: &Engine, timeout_ms: u64, spec: &str) -> Value {
    let want: BTreeMap<String, [u64; 3]> = serde_json::from_str(spec).expect("expect spec");
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        let at = now_ns();
        let mut seen = Map::new();
        let mut all = true;
        for (topic, w) in &want {
            let c = engine.counts(topic).expect("valid topic");
            let got = [c.viewers, c.users, c.connections];
            all &= got == *w;
            seen.insert(topic.clone(), json!(got));
        }
        if all || Instant::now() > deadline {
            return json!({"ok": all, "at": at, "seen": seen});
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Applies joins and leaves at `rate` per second for `seconds`, then waits one tick so the
/// last changes are published, and reports what the node published meanwhile beside what
/// per-event replication would have published for the same events.
#[allow(clippy::too_many_arguments)]
fn run_churn(
    engine: &Engine,
    churn: &mut Churn,
    format: Format,
    node: &str,
    meta: Option<&str>,
    tick_ms: u64,
    rate: u64,
    seconds: f64,
) -> Value {
    let before = engine.cluster_stats().expect("cluster mode");
    let (mut events, mut joins, mut per_event_bytes) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    let span = Duration::from_secs_f64(seconds);
    loop {
        let elapsed = start.elapsed();
        let due = (rate as f64 * elapsed.min(span).as_secs_f64()) as u64;
        while events < due {
            let ev = churn.step(engine, meta);
            joins += matches!(ev, Event::Join(_)) as u64;
            per_event_bytes += churn.per_event_message(&ev, meta).len() as u64;
            events += 1;
        }
        if elapsed >= span {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let elapsed = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(tick_ms + 30));
    let after = engine.cluster_stats().expect("cluster mode");
    let span = start.elapsed().as_secs_f64();
    let (snapshot_bytes, snapshot_messages) = churn.snapshot_size(format, node, meta);
    json!({
        "ok": true, "seconds": elapsed, "span": span, "events": events, "joins": joins,
        "bytes_sent": after.bytes_sent - before.bytes_sent,
        "messages_sent": after.messages_sent - before.messages_sent,
        "snapshots_sent": after.snapshots_sent - before.snapshots_sent,
        "snapshot_requests_sent": after.snapshot_requests_sent - before.snapshot_requests_sent,
        "per_event_bytes": per_event_bytes,
        "snapshot_bytes": snapshot_bytes, "snapshot_messages": snapshot_messages,
        "presences": churn.present().len(),
    })
}
