//! How the drivers measure: the clocks they read and the order in which they run the
//! implementations they compare.
//!
//! Thread CPU time is the cost figure wherever wall time would mislead: the bench machine's
//! cores are shared with other work, and a wall clock also counts whatever ran meanwhile.
//! `CLOCK_MONOTONIC` is the one clock every process of the machine reads alike, so that
//! the cluster's node processes can subtract each other's times.

use std::time::{Duration, Instant};

fn clock_ns(clock: libc::clockid_t, name: &str) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clocks used here exist on Linux.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime({name})");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU time of the calling thread (user and system: page faults count).
pub fn thread_cpu() -> Duration {
    Duration::from_nanos(clock_ns(
        libc::CLOCK_THREAD_CPUTIME_ID,
        "CLOCK_THREAD_CPUTIME_ID",
    ))
}

/// Nanoseconds of `CLOCK_MONOTONIC`: a time taken in one process and a time taken in
/// another subtract.
pub fn now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC, "CLOCK_MONOTONIC")
}

/// Runs the closures of `jobs` once each per run, starting each run at a different
/// one, so that no implementation always goes first (caches, neighbours' load).
pub fn rotate<T, const K: usize>(runs: usize, jobs: [&mut dyn FnMut() -> T; K]) -> [Vec<T>; K] {
    let mut out: [Vec<T>; K] = std::array::from_fn(|_| Vec::with_capacity(runs));
    for r in 0..runs {
        for k in 0..K {
            let j = (r + k) % K;
            out[j].push(jobs[j]());
        }
    }
    out
}

/// The wall time of `calls` calls of `f`.
pub fn time_calls(calls: usize, mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..calls {
        f();
    }
    t.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clocks_move_forward() {
        let (a, cpu) = (now_ns(), thread_cpu());
        std::thread::sleep(Duration::from_millis(2));
        assert!(now_ns() >= a + 2_000_000);
        // Spinning spends CPU time; the deadline is generous as the cores are shared.
        let deadline = Instant::now() + Duration::from_secs(10);
        while thread_cpu() - cpu < Duration::from_millis(1) && Instant::now() < deadline {
            std::hint::black_box(0);
        }
        let spent = thread_cpu() - cpu;
        assert!(spent >= Duration::from_millis(1), "{spent:?}");
    }

    #[test]
    fn rotate_starts_each_run_at_a_different_job() {
        let order = std::cell::RefCell::new(Vec::new());
        let [a, b, c] = rotate(
            4,
            [
                &mut || order.borrow_mut().push('a'),
                &mut || order.borrow_mut().push('b'),
                &mut || order.borrow_mut().push('c'),
            ],
        );
        assert_eq!((a.len(), b.len(), c.len()), (4, 4, 4));
        assert_eq!(
            order.into_inner().iter().collect::<String>(),
            "abcbcacababc"
        );
    }
}
