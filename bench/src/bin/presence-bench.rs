//! Timing driver of `make bench` (see bench/run.py, which runs it and merges its output).
//! Every command prints JSON lines (see `presence_bench::out`).

use presence_bench::args::{self, Args};
use presence_bench::fanout::{self, Mode};
use presence_bench::floor::{self, Floor};
use presence_bench::measure::{rotate, thread_cpu, time_calls};
use presence_bench::out::{ns_per, rate, Record};
use presence_bench::redis_patterns::{self as rp, Pattern};
use presence_bench::workload::Workload;
use presence_bench::{engine, META};
use presence_core::{Engine, Envelope, Format, ReadyBatch};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: presence-bench COMMAND [--option value ...]
  track_untrack --n N --topics T --runs R     engine (counts, phoenix) and the HashMap floor
  threads       --n N --topics T --runs R     1 and 2 threads, disjoint and shared topics
  poll          --total T --changed A,B,.. --totals A,B,.. --fixed-changed K --runs R
  hot           --n N --calls C --runs R      counts and list of one topic of N presences
  many          --held A,B,.. --ask K --calls C --runs R   counts of K topics asked at once,
                by counts_many and by a loop of counts, with A, B, .. topics held
  host          --total T --changed A,B,.. --state-n N --runs R   the host path: poll_diff and
                ready messages per changed topic, state of one phoenix topic of N presences
  fanout        --subscribers A,B,.. --churn A,B,.. --seconds S
  redis         --url URL --n N --topics T --rt-n M --batch B --runs R
  check         --n N --topics T --anonymous-every K [--url URL]";

fn main() {
    let args = Args::from_env(USAGE);
    match args.command.as_str() {
        "track_untrack" => track_untrack(&args),
        "threads" => threads(&args),
        "poll" => poll(&args),
        "hot" => hot(&args),
        "many" => many(&args),
        "host" => host(&args),
        "fanout" => fanout_cmd(&args),
        "redis" => redis_cmd(&args),
        "check" => check(&args),
        other => args::fail(USAGE, &format!("unknown command {other:?}")),
    }
}

/// One track-all-then-untrack-all run: (2N calls) / time, and each phase's ns per call.
#[derive(Clone, Copy)]
struct Phases {
    ops: f64,
    track_ns: f64,
    untrack_ns: f64,
}

impl Phases {
    fn new(calls: usize, track: Duration, untrack: Duration) -> Phases {
        Phases {
            ops: rate(2 * calls, track + untrack),
            track_ns: ns_per(calls, track),
            untrack_ns: ns_per(calls, untrack),
        }
    }
}

/// Emits a track_untrack record with its per-phase figures.
fn emit_phases(rec: Record, runs: &[Phases]) {
    let pick = |f: fn(&Phases) -> f64| json!(runs.iter().map(f).collect::<Vec<f64>>());
    rec.field("track_ns_per_op", pick(|p| p.track_ns))
        .field("untrack_ns_per_op", pick(|p| p.untrack_ns))
        .emit(&runs.iter().map(|p| p.ops).collect::<Vec<f64>>());
}

fn time_engine(w: &Workload, conns: &[u32], format: Format) -> Phases {
    let e = engine(format);
    let meta = (format == Format::Phoenix).then_some(META);
    let t = Instant::now();
    w.track_engine(&e, conns, meta);
    let track = t.elapsed();
    let t = Instant::now();
    w.untrack_engine(&e, conns);
    let untrack = t.elapsed();
    assert_eq!(e.stats().presences, 0);
    drop(e.poll_diff());
    Phases::new(conns.len(), track, untrack)
}

fn time_floor(w: &Workload, conns: &[u32]) -> Phases {
    let mut f = Floor::default();
    let t = Instant::now();
    floor::track_all(&mut f, w, conns);
    let track = t.elapsed();
    let t = Instant::now();
    floor::untrack_all(&mut f, w, conns);
    let untrack = t.elapsed();
    assert_eq!(f.topics(), 0);
    Phases::new(conns.len(), track, untrack)
}

/// Track all N connections, then untrack them all; (2N calls) / time.
fn track_untrack(a: &Args) {
    let (n, topics, runs) = (
        a.usize("n", 1_000_000),
        a.usize("topics", 1000),
        a.usize("runs", 5),
    );
    let w = Workload::standard(n, topics);
    let all = w.all();
    let [floor_runs, counts_runs, phoenix_runs] = rotate(
        runs,
        [
            &mut || time_floor(&w, &all),
            &mut || time_engine(&w, &all, Format::Counts),
            &mut || time_engine(&w, &all, Format::Phoenix),
        ],
    );
    let params = json!({"n": n, "topics": topics});
    let rec = |imp: &str| Record::new("track_untrack", imp, "ops/s").params(params.clone());
    emit_phases(rec("rust-floor"), &floor_runs);
    emit_phases(rec("rust-engine").baseline("rust-floor"), &counts_runs);
    emit_phases(
        rec("rust-engine-phoenix")
            .baseline("rust-floor")
            .field("meta", json!(META)),
        &phoenix_runs,
    );
}

/// Runs `work(part, phase)` on one thread per part: every thread does phase 0 (track) on
/// its part, all meet at a barrier, then phase 1 (untrack); returns the wall time of both.
fn run_threads(parts: &[Vec<u32>], work: &(dyn Fn(usize, &[u32], bool) + Sync)) -> Duration {
    let barrier = Barrier::new(parts.len() + 1);
    std::thread::scope(|s| {
        for (k, part) in parts.iter().enumerate() {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                work(k, part, true);
                barrier.wait();
                work(k, part, false);
                barrier.wait();
            });
        }
        barrier.wait();
        let t = Instant::now();
        barrier.wait();
        barrier.wait();
        t.elapsed()
    })
}

/// The same work split over threads sharing one engine; (2N calls) / wall time.
fn time_threads(w: &Workload, parts: &[Vec<u32>]) -> f64 {
    let e = engine(Format::Counts);
    let elapsed = run_threads(parts, &|_, part, track| {
        if track {
            w.track_engine(&e, part, None);
        } else {
            w.untrack_engine(&e, part);
        }
    });
    assert_eq!(e.stats().presences, 0);
    drop(e.poll_diff());
    rate(2 * w.n, elapsed)
}

/// The control: the same split, each thread with a floor of its own (no shared state at
/// all), which shows how much a second thread can add on this machine during this run.
fn time_floor_threads(w: &Workload, parts: &[Vec<u32>]) -> f64 {
    let floors: Vec<std::sync::Mutex<Floor>> = parts.iter().map(|_| Default::default()).collect();
    let elapsed = run_threads(parts, &|k, part, track| {
        // Each thread locks only its own floor, once per phase: no contention.
        let mut f = floors[k].lock().expect("not poisoned");
        if track {
            floor::track_all(&mut f, w, part);
        } else {
            floor::untrack_all(&mut f, w, part);
        }
    });
    rate(2 * w.n, elapsed)
}

fn threads(a: &Args) {
    let (n, topics, runs) = (
        a.usize("n", 1_000_000),
        a.usize("topics", 1000),
        a.usize("runs", 5),
    );
    let w = Workload::standard(n, topics);
    let all = w.all();
    let split = |f: &dyn Fn(usize) -> bool| -> Vec<Vec<u32>> {
        let (x, y): (Vec<u32>, Vec<u32>) = all.iter().partition(|&&i| f(i as usize));
        vec![x, y]
    };
    // Disjoint: each thread owns half the topics. Shared: the two tabs of every user go
    // to different threads, so both threads work on every topic.
    let disjoint = split(&|i| w.topic(i).is_multiple_of(2));
    let shared = split(&|i| i.is_multiple_of(2));
    let one = vec![all.clone()];
    let [r1, rd, rs, f1, f2] = rotate(
        runs,
        [
            &mut || time_threads(&w, &one),
            &mut || time_threads(&w, &disjoint),
            &mut || time_threads(&w, &shared),
            &mut || time_floor_threads(&w, &one),
            &mut || time_floor_threads(&w, &disjoint),
        ],
    );
    let params = json!({"n": n, "topics": topics});
    let rec = |imp: &str, threads: usize| {
        Record::new("threads", imp, "ops/s")
            .params(params.clone())
            .field("threads", json!(threads))
    };
    rec("engine-1-thread", 1).emit(&r1);
    rec("engine-2-threads-disjoint", 2)
        .baseline("engine-1-thread")
        .emit(&rd);
    rec("engine-2-threads-shared", 2)
        .baseline("engine-1-thread")
        .emit(&rs);
    rec("floor-1-thread", 1).emit(&f1);
    rec("floor-2-threads-independent", 2)
        .baseline("floor-1-thread")
        .emit(&f2);
}

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

fn poll(a: &Args) {
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

/// A plain tracker's `list`: the room as a map of connection -> (key, meta), grouped
/// and serialised with serde_json into the Phoenix shape on every call.
fn naive_list(room: &HashMap<u64, (String, Value)>) -> String {
    let mut grouped: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for (conn, (key, meta)) in room {
        let mut m = meta.clone();
        m["phx_ref"] = json!(conn.to_string());
        grouped.entry(key).or_default().push(m);
    }
    let state: serde_json::Map<String, Value> = grouped
        .into_iter()
        .map(|(k, metas)| (k.to_owned(), json!({ "metas": metas })))
        .collect();
    serde_json::to_string(&state).expect("serialisable")
}

fn hot(a: &Args) {
    let (n, calls, runs) = (
        a.usize("n", 100_000),
        a.usize("calls", 1_000_000),
        a.usize("runs", 5),
    );
    let w = Workload::standard(n, 1);
    let all = w.all();
    let topic = w.name_of_topic(0).to_owned();
    let counts_engine = engine(Format::Counts);
    w.track_engine(&counts_engine, &all, None);
    drop(counts_engine.poll_diff());
    let phoenix_engine = engine(Format::Phoenix);
    w.track_engine(&phoenix_engine, &all, Some(META));
    drop(phoenix_engine.poll_diff());
    let mut f = Floor::default();
    floor::track_all(&mut f, &w, &all);
    let meta: Value = serde_json::from_str(META).expect("meta parses");
    let room: HashMap<u64, (String, Value)> = all
        .iter()
        .map(|&i| {
            let key = w.key(i as usize).expect("keyed").to_owned();
            (u64::from(i), (key, meta.clone()))
        })
        .collect();
    let expected = counts_engine.counts(&topic).expect("counts");
    assert_eq!(expected.connections, n as u64);
    assert_eq!(expected, f.counts(0));
    let list_calls = (calls / 100).max(1);
    let mut out: [Vec<f64>; 6] = Default::default();
    for _ in 0..runs {
        let t = time_calls(calls, || {
            black_box(counts_engine.counts(black_box(&topic)).expect("counts"));
        });
        out[0].push(ns_per(calls, t));
        let t = time_calls(calls, || {
            black_box(f.counts(black_box(0)));
        });
        out[1].push(ns_per(calls, t));
        let t = time_calls(list_calls, || {
            black_box(counts_engine.list(black_box(&topic)).expect("list"));
        });
        out[2].push(ns_per(list_calls, t) / 1e3);
        let t = Instant::now();
        let state = phoenix_engine.list(&topic).expect("list");
        out[3].push(t.elapsed().as_secs_f64() * 1e6);
        assert!(state.json.len() > n * 20, "the list holds every presence");
        let t = Instant::now();
        let naive = naive_list(&room);
        out[4].push(t.elapsed().as_secs_f64() * 1e6);
        assert!(naive.len() > n * 20);
        out[5].push(state.json.len() as f64);
    }
    let params = json!({"presences": n});
    Record::new("counts_hot", "rust-floor", "ns")
        .params(params.clone())
        .emit(&out[1]);
    Record::new("counts_hot", "rust-engine", "ns")
        .params(params.clone())
        .baseline("rust-floor")
        .emit(&out[0]);
    Record::new("list_hot", "naive-serde-phoenix", "us")
        .params(params.clone())
        .emit(&out[4]);
    Record::new("list_hot", "rust-engine-phoenix", "us")
        .params(params.clone())
        .baseline("naive-serde-phoenix")
        .field("bytes", json!(out[5].first().copied().unwrap_or(0.0)))
        .emit(&out[3]);
    Record::new("list_hot", "rust-engine-counts", "us")
        .params(params)
        .emit(&out[2]);
}

/// Counts of K topics asked at once (an HTTP "GET /channels?info=user_count"), by
/// `counts_many` and by a loop of `counts`, per topic asked, with more and more topics
/// held: what a batch read costs should follow what is asked, not what is held.
fn many(a: &Args) {
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

/// Timed in thread CPU time: these figures are compared with the Python and Node drivers'
/// across three processes on two cores shared with other work, where the time a poll
/// spent on a CPU is what it costs, whereas its wall time also counts whatever else ran
/// meanwhile.
///
/// The host path, per changed topic: `total` topics of one presence each (phoenix: with
/// the small meta), `k` of them changed by one more presence (key "v"), then one poll
/// timed in thread CPU time, the state restored off the clock. `rust-poll_diff` is
/// `Engine::poll_diff` (the baseline), `rust-ready-event` `Engine::poll_ready`: the same
/// poll with every message rendered in the event envelope, into one [`ReadyBatch`] reused
/// from poll to poll. The Python and Node drivers time
/// their fast and dict paths on the same workload (`--host`). Then the state of one
/// phoenix topic of `state-n` presences (the standard workload's keys and meta):
/// `Engine::list`, and the whole `presence_state` message.
fn host(a: &Args) {
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

fn fanout_cmd(a: &Args) {
    let seconds = a.usize("seconds", 30) as u64;
    let modes = [
        ("per-event-phoenix", Format::Phoenix, Mode::PerEvent),
        ("per-event-counts", Format::Counts, Mode::PerEvent),
        ("coalesced-phoenix", Format::Phoenix, Mode::Coalesced),
        ("coalesced-counts", Format::Counts, Mode::Coalesced),
    ];
    for subscribers in a.list("subscribers", &[100, 1_000, 10_000, 100_000]) {
        for churn in a.list("churn", &[1, 10, 100, 1_000, 10_000]) {
            let params = json!({"subscribers": subscribers, "churn": churn, "seconds": seconds});
            for (imp, format, mode) in modes {
                let p = fanout::simulate(format, mode, subscribers, churn as u64, seconds);
                let rec = |bench: &str, unit: &str| {
                    let r = Record::new(bench, imp, unit)
                        .params(params.clone())
                        .field("events_per_s", json!(p.events))
                        .field("empty_msgs_per_s", json!(p.empty));
                    if imp == "per-event-phoenix" {
                        r
                    } else {
                        r.baseline("per-event-phoenix")
                    }
                };
                rec("fanout", "msgs/s").emit(&[p.messages]);
                rec("fanout_bytes", "bytes/s").emit(&[p.bytes]);
            }
        }
    }
}

fn redis_url(a: &Args) -> &str {
    a.str("url")
        .unwrap_or_else(|| args::fail(USAGE, "--url redis://127.0.0.1:PORT/ is required"))
}

fn redis_cmd(a: &Args) {
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
fn check(a: &Args) {
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
