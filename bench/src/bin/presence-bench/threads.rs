//! `threads`: the track_untrack work on one engine from one thread and from two, with the
//! two threads on disjoint topics and on shared ones; beside it, the floor on one and two
//! threads with nothing shared, the control of how much a second thread can add on this
//! machine during this run.

use presence_bench::args::Args;
use presence_bench::engine;
use presence_bench::floor::{self, Floor};
use presence_bench::measure::rotate;
use presence_bench::out::{rate, Record};
use presence_bench::workload::Workload;
use presence_core::Format;
use serde_json::json;
use std::sync::Barrier;
use std::time::{Duration, Instant};

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

pub fn run(a: &Args) {
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
