//! Several threads track, untrack and disconnect on shared topics while another polls.
//! Nothing may be lost or repeated: per topic, the polled diffs add up to the final
//! counts, seqs arrive without gaps, and the final counts equal the threads' own records.
//! With a leave grace, the poller moves a manual clock as it polls, so that held leaves
//! fall due (and keys come back to take them over) while the workers run.

mod support;

use presence_core::{Config, Counts, Engine, Format, ManualClock};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{sync_diff, Rng, SeedReducer};

const TOPICS: usize = 8;
const THREADS: u64 = 4;
const CONNS_PER_THREAD: u64 = 64;
/// Steps per worker; PRESENCE_STRESS_STEPS lowers it for slow instrumented runs (TSan).
fn steps() -> usize {
    std::env::var("PRESENCE_STRESS_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000)
}

fn topic(i: u64) -> String {
    format!("shared:{}", i % TOPICS as u64)
}

/// Runs the workers and a poller; returns what each thread left tracked, and the
/// poller's client per topic.
fn hammer(format: Format) {
    hammer_with_grace(format, 0)
}

fn hammer_with_grace(format: Format, grace: u64) {
    let clock = Arc::new(ManualClock::default());
    let config = Config {
        format,
        shards: 4,
        leave_grace_ms: grace,
        ..Config::default()
    };
    let engine = Engine::with_clock(config, clock.clone()).unwrap();
    let done = AtomicBool::new(false);
    let (left, polled) = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let engine = &engine;
                s.spawn(move || {
                    // Each thread owns its conns, so it alone knows where they are.
                    let mut rng = Rng(t + 1);
                    let mut mine: HashMap<(String, u64), Option<String>> = HashMap::new();
                    for _ in 0..steps() {
                        let conn = t * CONNS_PER_THREAD + rng.below(CONNS_PER_THREAD);
                        let topic = topic(rng.below(TOPICS as u64));
                        match rng.below(10) {
                            0..=4 => {
                                // Keys are shared between threads: distinct users span them.
                                let key = rng.chance(70).then(|| format!("user{}", rng.below(40)));
                                let ok = engine.track(&topic, conn, key.as_deref(), None).is_ok();
                                assert_eq!(ok, !mine.contains_key(&(topic.clone(), conn)));
                                mine.entry((topic, conn)).or_insert(key);
                            }
                            5..=8 => {
                                let ok = engine.untrack(&topic, conn).is_ok();
                                assert_eq!(ok, mine.remove(&(topic, conn)).is_some());
                            }
                            _ => {
                                let n = engine.untrack_conn(conn);
                                let before = mine.len();
                                mine.retain(|(_, c), _| *c != conn);
                                assert_eq!(n, before - mine.len());
                            }
                        }
                    }
                    mine
                })
            })
            .collect();
        let poller = s.spawn(|| {
            let mut counts: HashMap<String, (SeedReducer, u64)> = HashMap::new();
            let mut lists: HashMap<String, std::collections::BTreeMap<String, Vec<Value>>> =
                HashMap::new();
            let mut seqs: HashMap<String, u64> = HashMap::new();
            let mut polls = 0usize;
            let mut drain = |last: bool| {
                let batch = engine.poll_diff();
                for d in batch.iter() {
                    let seq = seqs.entry(d.topic.to_owned()).or_insert(0);
                    // seq 1 again means the topic emptied, was dropped and came back.
                    assert!(
                        d.seq == *seq + 1 || d.seq == 1,
                        "seq of {} jumped from {} to {}",
                        d.topic,
                        seq,
                        d.seq
                    );
                    *seq = d.seq;
                    polls += 1;
                    let payload: Value = serde_json::from_str(d.payload).unwrap();
                    match format {
                        Format::Counts => {
                            let entry = counts.entry(d.topic.to_owned()).or_default();
                            entry.0.diff(&payload);
                            entry.1 = d.counts.connections;
                        }
                        Format::Phoenix => {
                            sync_diff(lists.entry(d.topic.to_owned()).or_default(), &payload)
                        }
                    }
                }
                last
            };
            while !done.load(Ordering::Acquire) {
                drain(false);
                clock.advance(Duration::from_millis(1));
                std::thread::yield_now();
            }
            // Every leave still held falls due.
            clock.advance(Duration::from_millis(grace));
            drain(true);
            assert!(
                polls > TOPICS * 4,
                "the poller ran alongside the workers ({polls} diffs)"
            );
            (counts, lists)
        });
        let mut left: HashMap<(String, u64), Option<String>> = HashMap::new();
        for w in workers {
            left.extend(w.join().unwrap());
        }
        done.store(true, Ordering::Release);
        (left, poller.join().unwrap())
    });
    let (counts, lists) = polled;
    for i in 0..TOPICS as u64 {
        let t = topic(i);
        let mut want = Counts::default();
        let mut users = HashSet::new();
        for ((tt, _), key) in &left {
            if *tt == t {
                want.connections += 1;
                match key {
                    Some(k) => {
                        users.insert(k.clone());
                    }
                    None => want.viewers += 1,
                }
            }
        }
        want.users = users.len() as u64;
        assert_eq!(engine.counts(&t).unwrap(), want, "final counts of {t}");
        match format {
            Format::Counts => {
                // A change of connections alone (a second tab) sends no diff, so the
                // last diff's connections total may be stale; viewers and users add up.
                let (r, _) = counts.get(&t).copied().unwrap_or_default();
                assert_eq!(
                    (r.viewers as u64, r.users as u64),
                    (want.viewers, want.users),
                    "diffs of {t} add up"
                );
            }
            Format::Phoenix => {
                let empty = Default::default();
                let l = lists.get(&t).unwrap_or(&empty);
                let conns: usize = l.values().map(Vec::len).sum();
                assert_eq!(conns as u64, want.connections, "synced list of {t}");
                let listed: Value = serde_json::from_str(&engine.list(&t).unwrap().json).unwrap();
                assert_eq!(support::phoenix_state(&listed), {
                    let mut l = l.clone();
                    support::normalize(&mut l);
                    l
                });
            }
        }
    }
    assert_eq!(engine.stats().presences, left.len() as u64);
}

#[test]
fn counts_survive_concurrent_tracking_and_polling() {
    hammer(Format::Counts);
}

#[test]
fn phoenix_lists_survive_concurrent_tracking_and_polling() {
    hammer(Format::Phoenix);
}

#[test]
fn held_leaves_survive_concurrent_tracking_and_polling() {
    hammer_with_grace(Format::Counts, 20);
    hammer_with_grace(Format::Phoenix, 20);
}
