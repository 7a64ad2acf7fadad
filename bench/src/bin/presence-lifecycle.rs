//! Lifecycle driver of `make bench`: presences with a time to live.
//!
//! `expiry`: H presences held, each with a time to live, deadlines one every 1000/R ms
//! (R expiring per second of engine time). The engine runs on a manual clock moved one
//! 10 ms tick at a time; the time measured is that of expiring the tick's presences
//! (`Engine::expire_due`, what the timer thread and each poll run), divided by the
//! presences expired. The poll that publishes them runs off the clock. Baseline: the same
//! presences tracked without a time to live and untracked by the host, as many per tick, in
//! the same order. Also a `touch` of a held connection (one TTL presence), per call.
//!
//! `memory`: bytes held per presence with and without a time to live, same workload, on
//! the counting allocator. The allocator counts in every command of this binary, so the
//! timings carry its relaxed atomic add per allocation; both sides of each ratio do.

use presence_bench::alloc::Counting;
use presence_bench::args::{self, Args};
use presence_bench::out::{ns_per, Record};
use presence_bench::workload::Workload;
use presence_core::{Config, Engine, ManualClock};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: Counting = Counting;

const USAGE: &str = "usage: presence-lifecycle expiry --held H[,H...] --rate R --seconds S --topics T --runs K\n       presence-lifecycle memory --n N --topics T --runs K";

/// The engine's tick (`TICK_MS` in core/src/ttl.rs): the step the clock moves by.
const TICK: Duration = Duration::from_millis(10);

/// The time to live of connection `i`: the first expires after one second, then `rate`
/// per second.
fn ttl_of(i: usize, rate: usize) -> Duration {
    Duration::from_millis(1000 + (i as u64 * 1000) / rate as u64)
}

fn engine_on(clock: Arc<ManualClock>) -> Engine {
    let config = Config {
        max_topics: 4_000_000,
        max_presences: 40_000_000,
        ..Config::default()
    };
    Engine::with_clock(config, clock).expect("benchmark config is valid")
}

fn track_ttl_all(w: &Workload, e: &Engine, rate: usize) {
    for i in 0..w.n {
        e.track_ttl(w.topic_name(i), i as u64, w.key(i), None, ttl_of(i, rate))
            .expect("track succeeds");
    }
}

struct Expiry {
    ns_per_expiry: f64,
    ns_per_untrack: f64,
    ns_per_touch: f64,
}

fn expiry_run(w: &Workload, rate: usize, seconds: usize) -> Expiry {
    let ticks = seconds * 1000 / TICK.as_millis() as usize;
    // Connections due by the end of tick k: those whose time to live is at most
    // 999 + 10 (k + 1) ms, with the clock starting at 999 (time to live grows with i).
    let mut due_by = Vec::with_capacity(ticks);
    let mut i = 0;
    for k in 0..ticks {
        let end = 999 + TICK.as_millis() as u64 * (k as u64 + 1);
        while i < w.n && ttl_of(i, rate).as_millis() as u64 <= end {
            i += 1;
        }
        due_by.push(i);
    }
    let expected = due_by[ticks - 1];
    assert!(expected < w.n, "the run expires part of what is held");

    let clock = Arc::new(ManualClock::at(0));
    let e = engine_on(clock.clone());
    track_ttl_all(w, &e, rate);
    drop(e.poll_diff());
    clock.advance(Duration::from_millis(999));
    let (mut expired, mut timed) = (0, Duration::ZERO);
    for _ in 0..ticks {
        clock.advance(TICK);
        let t = Instant::now();
        expired += e.expire_due();
        timed += t.elapsed();
        drop(e.poll_diff());
    }
    assert_eq!(expired, expected, "every deadline passed, and no other");
    assert_eq!(e.stats().presences as usize, w.n - expected);
    // Touches of held connections, spread over what is left.
    let touches = (w.n - expected).min(100_000);
    let stride = (w.n - expected) / touches;
    let t = Instant::now();
    for k in 0..touches {
        let renewed = e.touch((expected + k * stride) as u64);
        debug_assert_eq!(renewed, 1);
    }
    let touch = t.elapsed();
    assert_eq!(e.touch(expected as u64), 1);
    drop(e);

    // The baseline: the host untracks the same connections, as many per tick.
    let base = engine_on(Arc::new(ManualClock::at(0)));
    w.track_engine(&base, &w.all(), None);
    drop(base.poll_diff());
    let (mut untracked, mut untrack) = (0, Duration::ZERO);
    for &upto in &due_by {
        let t = Instant::now();
        for i in untracked..upto {
            base.untrack(w.topic_name(i), i as u64)
                .expect("untrack succeeds");
        }
        untrack += t.elapsed();
        untracked = upto;
        drop(base.poll_diff());
    }
    assert_eq!(base.stats().presences as usize, w.n - expected);
    Expiry {
        ns_per_expiry: ns_per(expired, timed),
        ns_per_untrack: ns_per(untracked, untrack),
        ns_per_touch: ns_per(touches, touch),
    }
}

fn expiry(a: &Args) {
    let held = a.list("held", &[100_000, 1_000_000]);
    let (rate, seconds, topics, runs) = (
        a.usize("rate", 1000),
        a.usize("seconds", 10),
        a.usize("topics", 1000),
        a.usize("runs", 5),
    );
    for h in held {
        let w = Workload::standard(h, topics);
        let mut out: [Vec<f64>; 3] = Default::default();
        for _ in 0..runs {
            let r = expiry_run(&w, rate, seconds);
            out[0].push(r.ns_per_expiry);
            out[1].push(r.ns_per_untrack);
            out[2].push(r.ns_per_touch);
        }
        let params = json!({"held": h, "topics": topics, "rate": rate, "seconds": seconds});
        let rec = |imp: &str| Record::new("lifecycle", imp, "ns/call").params(params.clone());
        rec("untrack").emit(&out[1]);
        rec("expiry").baseline("untrack").emit(&out[0]);
        rec("touch").baseline("untrack").emit(&out[2]);
    }
}

/// Heap bytes per presence of an engine holding the workload, after its first poll, and
/// its `stats().bytes` per presence.
fn held_bytes(w: &Workload, ttl: bool) -> (f64, f64) {
    let before = Counting::live();
    let e = engine_on(Arc::new(ManualClock::at(0)));
    if ttl {
        track_ttl_all(w, &e, 1000);
    } else {
        w.track_engine(&e, &w.all(), None);
    }
    drop(e.poll_diff());
    let held = Counting::live() - before;
    let stats = e.stats();
    assert_eq!(stats.presences as usize, w.n);
    drop(e);
    (held as f64 / w.n as f64, stats.bytes as f64 / w.n as f64)
}

fn memory(a: &Args) {
    let (n, topics, runs) = (
        a.usize("n", 1_000_000),
        a.usize("topics", 1000),
        a.usize("runs", 3),
    );
    let w = Workload::standard(n, topics);
    let mut out: [Vec<f64>; 4] = Default::default();
    for _ in 0..runs {
        let (held, est) = held_bytes(&w, false);
        out[0].push(held);
        out[1].push(est);
        let (held, est) = held_bytes(&w, true);
        out[2].push(held);
        out[3].push(est);
    }
    let params = json!({"n": n, "topics": topics});
    let rec =
        |imp: &str| Record::new("lifecycle_memory", imp, "bytes/presence").params(params.clone());
    rec("no-ttl")
        .field("stats_bytes", json!(out[1]))
        .emit(&out[0]);
    rec("ttl")
        .baseline("no-ttl")
        .field("stats_bytes", json!(out[3]))
        .emit(&out[2]);
}

fn main() {
    let a = Args::from_env(USAGE);
    match a.command.as_str() {
        "expiry" => expiry(&a),
        "memory" => memory(&a),
        other => args::fail(USAGE, &format!("unknown command {other:?}")),
    }
}
