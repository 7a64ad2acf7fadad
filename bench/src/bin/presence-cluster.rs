//! Cluster driver of `make bench` (see bench/run.py): three engines in three OS processes,
//! sharing presence over a real redis-server with the built-in Redis link.
//!
//! The commands other than `node` coordinate: they start this same binary three times as
//! `presence-cluster node ...` (a stand-in for a server process, driven over stdin like
//! examples/cluster/node.rs) and print JSON lines (see `presence_bench::out`). Node
//! processes take their times from `CLOCK_MONOTONIC`, the same clock in every process, so
//! "tracked on a at t0, seen on b at t1" subtracts across processes.

use presence_bench::args::{self, Args};
use presence_bench::cluster::{cluster_engine, Churn, Event};
use presence_bench::measure::{now_ns, thread_cpu};
use presence_bench::out::Record;
use presence_bench::rng::Rng;
use presence_bench::workload::Workload;
use presence_bench::META;
use presence_core::{Engine, Format};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: presence-cluster COMMAND [--option value ...]
  converge --url URL --tick-ms T --changes K [--seed S]
      time from a track on node a until nodes b and c report the new counts
  down     --url URL --tick-ms T --down-after-ms D --reps R
      time until a and b drop node c after kill -9, stop_redis, cluster_leave
  wire     --url URL --format counts|phoenix --presences N --topics T --rates A,B,..
           --seconds S [--tick-ms T]
      bytes and messages each node publishes under churn, beside per-event replication
  ingest   --entries N [--reps R]
      phoenix format, in one process: time to ingest a node's snapshot of N entries of one
      topic into an engine holding N local entries of that topic
  check    --url URL --n N --topics T --anonymous-every K
      exact converged counts (make test-bench): join, kill -9, restart, leave, untrack
  node     --node NAME --url URL --channel CH [--format F] [--tick-ms T]
           [--down-after-ms D] [--snapshot-interval-ms S]
      one node process, driven over stdin (see `serve`)";

fn main() {
    let args = Args::from_env(USAGE);
    match args.command.as_str() {
        "converge" => converge(&args),
        "down" => down(&args),
        "wire" => wire(&args),
        "ingest" => ingest(&args),
        "check" => check(&args),
        "node" => serve(&args),
        other => args::fail(USAGE, &format!("unknown command {other:?}")),
    }
}

/// A fresh receiver holding `n` local entries in one topic, and a fresh sender's first
/// snapshot of `n` entries of that topic (split to fit `max_message_bytes`); the time is
/// that of `cluster_ingest` over all its parts.
fn ingest(a: &Args) {
    let n = a.usize("entries", 32_768) as u64;
    let reps = a.usize("reps", 5);
    let (mut runs, mut cpu_ms) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        let receiver = cluster_engine(Format::Phoenix, "receiver", 250, 3_000, 30_000);
        let sender = cluster_engine(
            Format::Phoenix,
            &format!("sender-{rep}"),
            250,
            3_000,
            30_000,
        );
        for i in 0..n {
            receiver
                .track("hot", i, Some(&format!("local-{i}")), Some(META))
                .expect("track");
            sender
                .track("hot", i, Some(&format!("remote-{i}")), Some(META))
                .expect("track");
        }
        let parts = sender.cluster_tick().expect("tick");
        let (t, cpu) = (Instant::now(), thread_cpu());
        for m in &parts {
            receiver.cluster_ingest(m).expect("ingest");
        }
        runs.push(t.elapsed().as_secs_f64() * 1e3);
        cpu_ms.push((thread_cpu() - cpu).as_nanos() as f64 / 1e6);
        assert_eq!(receiver.counts("hot").expect("counts").connections, 2 * n);
    }
    Record::new("cluster_ingest", "phoenix-snapshot", "ms")
        .params(json!({"entries": n, "local_entries": n}))
        .field("cpu_ms", json!(cpu_ms))
        .emit(&runs);
}

fn format_of(name: &str) -> Format {
    match name {
        "counts" => Format::Counts,
        "phoenix" => Format::Phoenix,
        other => args::fail("", &format!("--format counts|phoenix, got {other:?}")),
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

// ---------------------------------------------------------------------------------------
// The node process

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
fn serve(a: &Args) {
    let name = a.required("node", USAGE).to_owned();
    let url = a.required("url", USAGE).to_owned();
    let channel = a.required("channel", USAGE).to_owned();
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

// ---------------------------------------------------------------------------------------
// The coordinator's side

/// A node process.
struct Node {
    name: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// How a cluster's nodes are configured.
#[derive(Clone)]
struct Setup {
    url: String,
    channel: String,
    format: &'static str,
    tick_ms: u64,
    down_after_ms: u64,
    snapshot_ms: u64,
}

impl Node {
    fn start(name: &str, s: &Setup) -> Node {
        let exe = std::env::current_exe().expect("own path");
        let mut child = Command::new(exe)
            .arg("node")
            .args(["--node", name, "--url", &s.url, "--channel", &s.channel])
            .args(["--format", s.format])
            .args(["--tick-ms", &s.tick_ms.to_string()])
            .args(["--down-after-ms", &s.down_after_ms.to_string()])
            .args(["--snapshot-interval-ms", &s.snapshot_ms.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starts a node process");
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Node {
            name: name.to_owned(),
            child,
            stdin,
            stdout,
        }
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}")
            .and_then(|_| self.stdin.flush())
            .unwrap_or_else(|e| panic!("node {}: {line}: {e}", self.name));
    }

    fn recv(&mut self) -> Value {
        let mut answer = String::new();
        self.stdout
            .read_line(&mut answer)
            .unwrap_or_else(|e| panic!("node {}: {e}", self.name));
        serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("node {}: {answer:?}: {e}", self.name))
    }

    fn ask(&mut self, line: &str) -> Value {
        self.send(line);
        self.recv()
    }

    /// Sends a command that must succeed.
    fn ok(&mut self, line: &str) -> Value {
        let v = self.ask(line);
        assert_eq!(v["ok"], true, "node {}: {line} -> {v}", self.name);
        v
    }

    fn kill9(mut self) {
        self.child.kill().expect("SIGKILL"); // no goodbye
        self.child.wait().expect("reaped");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `names` and waits until each sees all the others.
fn start_cluster(names: &[&str], s: &Setup) -> Vec<Node> {
    let mut nodes: Vec<Node> = names.iter().map(|n| Node::start(n, s)).collect();
    let others = names.len() - 1;
    for n in &mut nodes {
        n.ok(&format!("peers {others} 20000"));
    }
    nodes
}

fn expect_line(timeout_ms: u64, want: &BTreeMap<String, [u64; 3]>) -> String {
    format!(
        "expect {timeout_ms} {}",
        serde_json::to_string(want).expect("json")
    )
}

fn one(topic: &str, c: [u64; 3]) -> BTreeMap<String, [u64; 3]> {
    BTreeMap::from([(topic.to_owned(), c)])
}

fn at(v: &Value) -> u64 {
    v["at"].as_u64().expect("an `at` time")
}

/// Sends `expect` to every node of `nodes`, runs `act` (which returns the start time), and
/// returns the delay until each node saw the counts.
fn timed(
    nodes: &mut [&mut Node],
    want: &BTreeMap<String, [u64; 3]>,
    timeout_ms: u64,
    act: impl FnOnce() -> u64,
) -> Vec<u64> {
    let line = expect_line(timeout_ms, want);
    for n in nodes.iter_mut() {
        n.send(&line);
    }
    let t0 = act();
    nodes
        .iter_mut()
        .map(|n| {
            let v = n.recv();
            assert_eq!(v["ok"], true, "node {} did not converge: {v}", n.name);
            at(&v).saturating_sub(t0)
        })
        .collect()
}

/// Convergence: a change on a (a track or an untrack in one topic), timed until b and c
/// both report the new counts. A random wait of up to one tick before each change spreads
/// the changes over the phase of a's tick, as real changes are.
fn converge(a: &Args) {
    let tick = a.usize("tick-ms", 250) as u64;
    let changes = a.usize("changes", 60);
    let setup = Setup {
        url: a.required("url", USAGE).to_owned(),
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

/// Down detection: c (3 presences, one of its users also on a) is killed with SIGKILL,
/// or leaves through `stop_redis`, or publishes `cluster_leave` itself; timed until a and
/// b both report the counts without c. A fresh c starts for every repetition.
fn down(a: &Args) {
    let tick = a.usize("tick-ms", 250) as u64;
    let down_after = a.usize("down-after-ms", 3000) as u64;
    let reps = a.usize("reps", 5);
    let setup = Setup {
        url: a.required("url", USAGE).to_owned(),
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

/// Wire cost: each of three nodes holds about `presences` presences over the same
/// `topics` topics and applies `rate` joins+leaves per second; what each publishes (from
/// its cluster stats) beside what per-event replication would publish for the same events.
/// Periodic snapshots are switched off during the runs and accounted for separately: the
/// size of a snapshot of what the node holds, divided by the default 30 s interval.
fn wire(a: &Args) {
    let format = a.str("format").unwrap_or("counts");
    let fmt = format_of(format);
    let tick = a.usize("tick-ms", 250) as u64;
    let (presences, topics) = (a.usize("presences", 10_000), a.usize("topics", 1000));
    let seconds = a.usize("seconds", 10);
    let setup = Setup {
        url: a.required("url", USAGE).to_owned(),
        channel: format!("bench-wire-{format}-{}", std::process::id()),
        format: if fmt == Format::Phoenix {
            "phoenix"
        } else {
            "counts"
        },
        tick_ms: tick,
        down_after_ms: 3000,
        snapshot_ms: 3_600_000,
    };
    let names = ["a", "b", "c"];
    let mut nodes = start_cluster(&names, &setup);
    for (k, n) in nodes.iter_mut().enumerate() {
        // A user pool shared by the nodes: two tabs per user on average, some on two nodes.
        n.ok(&format!(
            "populate {presences} {topics} {} {}",
            presences / 2,
            1000 + k
        ));
    }
    settle(&mut nodes, topics);
    let default_snapshot_ms = 30_000.0;
    for rate in a.list("rates", &[10, 100, 1000, 10_000]) {
        for n in nodes.iter_mut() {
            n.send(&format!("churn {rate} {seconds}"));
        }
        let outs: Vec<Value> = nodes.iter_mut().map(|n| n.recv()).collect();
        settle(&mut nodes, topics);
        let f = |k: &str| -> Vec<f64> {
            outs.iter()
                .map(|o| o[k].as_f64().expect("number"))
                .collect()
        };
        // Events and bytes per second of churn; messages per second of the whole stats
        // window (the churn and the one tick after it that publishes its last changes).
        let (secs, spans, events) = (f("seconds"), f("span"), f("events"));
        let per = |k: &str, d: &[f64]| -> Vec<f64> {
            f(k).iter().zip(d).map(|(v, s)| v / s).collect::<Vec<_>>()
        };
        let per_s = |k: &str| per(k, &secs);
        let snap_bytes: Vec<f64> = f("snapshot_bytes")
            .iter()
            .map(|b| b * 1000.0 / default_snapshot_ms)
            .collect();
        let params = json!({"format": format, "rate": rate, "presences": presences,
                            "topics": topics, "tick_ms": tick, "nodes": 3});
        let snapshots_in_window: f64 = f("snapshots_sent").iter().sum();
        Record::new("cluster_wire", &format!("engine-{format}"), "bytes/s")
            .params(params.clone())
            .baseline(&format!("per-event-{format}"))
            .field("msgs_per_s", json!(per("messages_sent", &spans)))
            .field("snapshot_bytes_per_s", json!(snap_bytes))
            .field("snapshot_bytes", json!(f("snapshot_bytes")))
            .field("snapshot_messages", json!(f("snapshot_messages")))
            .field("events_per_s", json!(per_s("events")))
            .field("snapshots_in_window", json!(snapshots_in_window))
            .field(
                "snapshot_requests_in_window",
                json!(f("snapshot_requests_sent").iter().sum::<f64>()),
            )
            .emit(&per_s("bytes_sent"));
        Record::new("cluster_wire", &format!("per-event-{format}"), "bytes/s")
            .params(params)
            .field("msgs_per_s", json!(per_s("events")))
            .field("events", json!(events))
            .emit(&per_s("per_event_bytes"));
    }
    check_rejections(&mut nodes);
}

/// Waits until every node reports the same counts for every topic (the cluster has
/// converged); panics after 30 s.
fn settle(nodes: &mut [Node], topics: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen: Vec<Value> = nodes
            .iter_mut()
            .map(|n| n.ask(&format!("digest {topics}")))
            .collect();
        if seen.windows(2).all(|w| w[0] == w[1]) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no convergence in 30 s: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Exits with an error if any node refused a message: a benchmark cluster sees no forgery.
fn check_rejections(nodes: &mut [Node]) {
    for n in nodes {
        let s = n.ask("stats");
        if s["rejected"].as_u64() != Some(0) {
            eprintln!("error: node {} refused messages: {s}", n.name);
            std::process::exit(1);
        }
    }
}

/// The correctness check of `make test-bench`, in both formats: the standard check
/// workload (connection i on node i % 3, so a user's two tabs are on two nodes) must reach
/// the exact counts on every node; then kill -9 of a (partial), a restart of a with its
/// connections (tracked), a clean leave of a (partial), and b and c untracking everything
/// (empty). Each node prints the counts it reached (or held when 20 s ran out) as a check
/// line; run.py compares them with the workload's expected counts. No timing is asserted.
fn check(a: &Args) {
    let (n, topics) = (a.usize("n", 2001), a.usize("topics", 7));
    let w = Workload::with_anonymous(n, topics, a.usize("anonymous-every", 5));
    let names: Vec<String> = (0..w.used_topics())
        .map(|t| w.name_of_topic(t).to_owned())
        .collect();
    let expected = |conns: &mut dyn Iterator<Item = usize>| -> BTreeMap<String, [u64; 3]> {
        let mut per: BTreeMap<String, (u64, BTreeSet<usize>, u64)> = names
            .iter()
            .map(|t| (t.clone(), (0, BTreeSet::new(), 0)))
            .collect();
        for i in conns {
            let e = per.get_mut(w.topic_name(i)).expect("topic");
            match w.user_id(i) {
                None => e.0 += 1,
                Some(u) => {
                    e.1.insert(u as usize);
                }
            }
            e.2 += 1;
        }
        per.into_iter()
            .map(|(t, (v, u, c))| (t, [v, u.len() as u64, c]))
            .collect()
    };
    let tracked = expected(&mut (0..n));
    let partial = expected(&mut (0..n).filter(|i| i % 3 != 0));
    let empty = expected(&mut std::iter::empty());
    let line = |i: usize| match w.key(i) {
        Some(k) => format!("track {} {i} {k}", w.topic_name(i)),
        None => format!("track {} {i}", w.topic_name(i)),
    };
    for format in ["counts", "phoenix"] {
        let setup = Setup {
            url: a.required("url", USAGE).to_owned(),
            channel: format!("bench-check-{format}-{}", std::process::id()),
            format,
            tick_ms: 50,
            down_after_ms: 1000,
            snapshot_ms: 30_000,
        };
        let imp = format!("cluster-{format}");
        let report = |nodes: &mut [&mut Node],
                      phase: &str,
                      step: &str,
                      want: &BTreeMap<String, [u64; 3]>| {
            let l = expect_line(20_000, want);
            for node in nodes.iter_mut() {
                node.send(&l);
            }
            for node in nodes.iter_mut() {
                let v = node.recv();
                println!(
                    "{}",
                    json!({"check": "counts", "impl": imp, "phase": phase,
                           "node": node.name, "step": step, "topics": v["seen"]})
                );
            }
        };
        let mut nodes = start_cluster(&["a", "b", "c"], &setup);
        for i in 0..n {
            nodes[i % 3].ok(&line(i));
        }
        {
            let [na, nb, nc] = &mut nodes[..] else {
                unreachable!()
            };
            report(&mut [na, nb, nc], "tracked", "joined", &tracked);
        }
        let mut it = nodes.into_iter();
        let (na, mut nb, mut nc) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        na.kill9();
        report(&mut [&mut nb, &mut nc], "partial", "a killed", &partial);
        let mut na = Node::start("a", &setup);
        na.ok("peers 2 20000");
        for i in (0..n).step_by(3) {
            na.ok(&line(i));
        }
        report(
            &mut [&mut na, &mut nb, &mut nc],
            "tracked",
            "a restarted",
            &tracked,
        );
        na.ok("leave");
        report(&mut [&mut nb, &mut nc], "partial", "a left", &partial);
        drop(na);
        for i in 0..n {
            let node = if i % 3 == 1 { &mut nb } else { &mut nc };
            if i % 3 != 0 {
                node.ok(&format!("untrack {} {i}", w.topic_name(i)));
            }
        }
        report(&mut [&mut nb, &mut nc], "empty", "all untracked", &empty);
        check_rejections(&mut [nb, nc]);
    }
}
