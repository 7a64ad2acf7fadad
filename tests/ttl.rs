//! Presences with a time to live: expiry at the deadline (on a manual clock), renewal of
//! every topic of a connection by one touch, untracks, the leave in both formats, the
//! wake-up descriptor turning readable on the system clock with no poll, and a cluster
//! of two engines over the own-bus calls where the presence expires on one node and
//! leaves on the other.

use presence_core::{ClusterConfig, Config, Counts, Engine, ErrorKind, Format, ManualClock};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn manual(format: Format) -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    let config = Config {
        format,
        ..Config::default()
    };
    (Engine::with_clock(config, clock.clone()).unwrap(), clock)
}

fn c(viewers: u64, users: u64, connections: u64) -> Counts {
    Counts {
        viewers,
        users,
        connections,
    }
}

/// The topics of a poll with their payloads.
fn poll(engine: &Engine) -> Vec<(String, Value)> {
    engine
        .poll_diff()
        .iter()
        .map(|d| (d.topic.to_owned(), serde_json::from_str(d.payload).unwrap()))
        .collect()
}

#[test]
fn a_presence_leaves_at_its_deadline_and_not_before() {
    let (engine, clock) = manual(Format::Counts);
    engine
        .track_ttl("inbox", 1, Some("alice"), None, ms(1000))
        .unwrap();
    engine.track("inbox", 2, None, None).unwrap();
    assert_eq!(poll(&engine).len(), 1);
    clock.advance(ms(999));
    assert!(poll(&engine).is_empty(), "1 ms before its deadline");
    assert_eq!(engine.counts("inbox").unwrap(), c(1, 1, 2));
    clock.advance(ms(1));
    let diffs = poll(&engine);
    assert_eq!(diffs.len(), 1);
    assert_eq!(diffs[0].1["leaves"]["users"]["count"], 1);
    assert_eq!(engine.counts("inbox").unwrap(), c(1, 0, 1));
    assert_eq!(engine.stats().presences, 1, "the socket's presence stays");
    clock.advance(ms(100_000));
    assert!(poll(&engine).is_empty());
    assert_eq!(engine.touch(1), 0, "the expired presence is gone");
}

#[test]
fn one_touch_renews_every_topic_of_the_connection_by_its_own_ttl() {
    let (engine, clock) = manual(Format::Counts);
    engine
        .track_ttl("a", 7, Some("bob"), None, ms(1000))
        .unwrap();
    engine
        .track_ttl("b", 7, Some("bob"), None, ms(3000))
        .unwrap();
    engine.track("c", 7, Some("bob"), None).unwrap();
    engine.track_ttl("a", 8, None, None, ms(1000)).unwrap();
    poll(&engine);
    clock.advance(ms(900));
    assert_eq!(engine.touch(7), 2, "its two TTL presences, not the third");
    clock.advance(ms(900));
    // conn 8 expired at 1000; conn 7's are due at 1900 and 3900 now.
    let diffs = poll(&engine);
    assert_eq!(diffs.len(), 1);
    assert_eq!(diffs[0].0, "a");
    assert_eq!(engine.counts("a").unwrap(), c(0, 1, 1));
    clock.advance(ms(100));
    assert_eq!(poll(&engine)[0].0, "a", "bob leaves a at 1900");
    clock.advance(ms(3000));
    assert_eq!(poll(&engine)[0].0, "b", "and b at 3900");
    assert_eq!(engine.counts("c").unwrap(), c(0, 1, 1), "c has no ttl");
    assert_eq!(engine.stats().presences, 1);
}

#[test]
fn a_touch_after_the_deadline_does_not_revive_the_presence() {
    let (engine, clock) = manual(Format::Counts);
    engine.track_ttl("a", 1, None, None, ms(500)).unwrap();
    engine.track_ttl("b", 1, None, None, ms(2000)).unwrap();
    poll(&engine);
    clock.advance(ms(500));
    assert_eq!(engine.touch(1), 1, "b renewed, a past its deadline");
    assert_eq!(
        engine.counts("a").unwrap(),
        c(0, 0, 0),
        "a left at the touch"
    );
    assert_eq!(engine.pending_topics(), 1);
    let diffs = poll(&engine);
    assert_eq!(diffs.len(), 1);
    assert_eq!(diffs[0].1["leaves"]["viewers"]["count"], 1);
}

#[test]
fn untracked_ttl_presences_never_expire_later() {
    let (engine, clock) = manual(Format::Counts);
    engine.track_ttl("a", 1, None, None, ms(100)).unwrap();
    engine.track_ttl("b", 1, None, None, ms(100)).unwrap();
    engine.track_ttl("a", 2, None, None, ms(100)).unwrap();
    engine.untrack("a", 1).unwrap();
    assert_eq!(engine.untrack_conn(2), 1);
    // The same pairs tracked again without a ttl: the old deadlines must not reach them.
    engine.track("a", 1, None, None).unwrap();
    engine.track("a", 2, None, None).unwrap();
    poll(&engine);
    clock.advance(ms(100));
    let diffs = poll(&engine);
    assert_eq!(diffs.len(), 1, "only b's ttl presence expired");
    assert_eq!(diffs[0].0, "b");
    assert_eq!(engine.counts("a").unwrap(), c(2, 0, 2));
    assert_eq!(engine.touch(1), 0);
}

#[test]
fn an_expired_presence_leaves_a_phoenix_list_with_its_ref() {
    let (engine, clock) = manual(Format::Phoenix);
    engine
        .track_ttl(
            "room",
            3,
            Some("carol"),
            Some(r#"{"device":"phone"}"#),
            ms(50),
        )
        .unwrap();
    let join = poll(&engine);
    let r = join[0].1["joins"]["carol"]["metas"][0]["phx_ref"].clone();
    clock.advance(ms(50));
    let leave = poll(&engine);
    let metas = &leave[0].1["leaves"]["carol"]["metas"];
    assert_eq!(metas[0]["phx_ref"], r);
    assert_eq!(metas[0]["device"], "phone");
    assert_eq!(engine.list("room").unwrap().json, "{}");
}

#[test]
fn the_expired_count_counts_expiries_only() {
    let (engine, clock) = manual(Format::Counts);
    let expired = |engine: &Engine| engine.stats().expired;
    engine.track_ttl("a", 1, None, None, ms(500)).unwrap();
    engine.track_ttl("b", 1, None, None, ms(500)).unwrap();
    engine.track_ttl("a", 2, None, None, ms(500)).unwrap();
    engine.track_ttl("a", 3, None, None, ms(500)).unwrap();
    engine.track("a", 4, None, None).unwrap();
    poll(&engine);
    // Renewals, untracks and a connection's untrack remove nothing by expiry.
    clock.advance(ms(400));
    assert_eq!(engine.touch(1), 2);
    engine.untrack("a", 2).unwrap();
    assert_eq!(engine.untrack_conn(4), 1);
    poll(&engine);
    assert_eq!(expired(&engine), 0);
    // At 500 conn 3's deadline passes (conn 1's is at 900 now): one expiry at the poll.
    clock.advance(ms(100));
    assert_eq!(poll(&engine).len(), 1);
    assert_eq!(expired(&engine), 1);
    // A touch that comes too late expires both of conn 1's presences.
    clock.advance(ms(400));
    assert_eq!(engine.touch(1), 0);
    assert_eq!(expired(&engine), 3);
    assert_eq!(engine.stats().presences, 0);
    // Nothing is counted twice, however often the engine polls afterwards.
    clock.advance(ms(10_000));
    poll(&engine);
    assert_eq!(expired(&engine), 3);
}

#[test]
fn a_ttl_out_of_range_is_refused_and_changes_nothing() {
    let (engine, _) = manual(Format::Counts);
    for ttl in [
        Duration::ZERO,
        Duration::from_micros(999),
        ms(30 * 86_400_000 + 1),
    ] {
        let e = engine.track_ttl("a", 1, None, None, ttl).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.message().contains("ttl"), "{e}");
    }
    assert_eq!(engine.stats().presences, 0);
    engine.track_ttl("a", 1, None, None, ms(10)).unwrap();
    let e = engine.track_ttl("a", 1, None, None, ms(10)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyTracked);
    let e = engine.track("a", 1, None, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyTracked);
}

#[test]
fn many_connections_expire_in_deadline_order() {
    let (engine, clock) = manual(Format::Counts);
    for conn in 0..1000u64 {
        let topic = format!("t{}", conn % 10);
        engine
            .track_ttl(&topic, conn, None, None, ms(1 + conn))
            .unwrap();
    }
    poll(&engine);
    for step in 1..=1000u64 {
        clock.advance(ms(1));
        engine.poll_diff();
        assert_eq!(engine.stats().presences, 1000 - step, "at {step} ms");
    }
    assert_eq!(engine.stats().topics, 0);
}

/// Waits up to `limit` for `fd` to turn readable.
fn readable_within(fd: i32, limit: Duration) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd.
    unsafe { libc::poll(&mut p, 1, limit.as_millis() as i32) == 1 }
}

#[test]
fn on_the_system_clock_an_expiry_wakes_the_descriptor_without_a_poll() {
    let engine = Engine::new(Config::default()).unwrap();
    engine.track_ttl("inbox", 1, None, None, ms(60)).unwrap();
    engine.poll_diff();
    let fd = engine.wakeup_fd();
    let start = Instant::now();
    assert!(!readable_within(fd, ms(0)), "nothing to poll yet");
    assert!(
        readable_within(fd, Duration::from_secs(10)),
        "the expiry wakes the host"
    );
    assert!(start.elapsed() >= ms(50), "not long before the deadline");
    assert_eq!(engine.pending_topics(), 1, "the timer removed it already");
    assert_eq!(engine.counts("inbox").unwrap(), c(0, 0, 0));
    assert_eq!(engine.poll_diff().len(), 1);
    // A touched presence stays past its first deadline.
    engine.track_ttl("inbox", 2, None, None, ms(1000)).unwrap();
    engine.poll_diff();
    for _ in 0..3 {
        std::thread::sleep(ms(100));
        assert_eq!(engine.touch(2), 1);
    }
    assert_eq!(engine.counts("inbox").unwrap().viewers, 1);
    assert!(readable_within(fd, Duration::from_secs(10)));
    assert_eq!(engine.counts("inbox").unwrap().viewers, 0);
}

fn node(name: &str, clock: Arc<ManualClock>) -> Engine {
    let mut cluster = ClusterConfig::new(name, "a test secret of some length");
    cluster.tick_ms = 20;
    let config = Config {
        cluster: Some(cluster),
        ..Config::default()
    };
    Engine::with_clock(config, clock).unwrap()
}

fn deliver(from: &Engine, to: &Engine) {
    for msg in from.cluster_tick().unwrap() {
        to.cluster_ingest(&msg).unwrap();
    }
}

#[test]
fn in_a_cluster_the_presence_expires_on_its_node_and_leaves_on_the_other() {
    let (ca, cb) = (
        Arc::new(ManualClock::default()),
        Arc::new(ManualClock::default()),
    );
    let (a, b) = (node("a", ca.clone()), node("b", cb.clone()));
    a.track_ttl("video:1", 1, Some("alice"), None, ms(1000))
        .unwrap();
    b.track("video:1", 5, Some("bob"), None).unwrap();
    for _ in 0..2 {
        deliver(&a, &b);
        deliver(&b, &a);
    }
    assert_eq!(b.counts("video:1").unwrap(), c(0, 2, 2));
    b.poll_diff();
    // b's clock runs far ahead: b never expires a's presence itself.
    cb.advance(ms(10_000));
    deliver(&b, &a);
    assert!(b.poll_diff().is_empty());
    assert_eq!(b.counts("video:1").unwrap(), c(0, 2, 2));
    // On a, the deadline passes: its tick carries the leave.
    ca.advance(ms(1000));
    deliver(&a, &b);
    assert_eq!(a.counts("video:1").unwrap(), c(0, 1, 1));
    assert_eq!(b.counts("video:1").unwrap(), c(0, 1, 1));
    let diffs = poll(&b);
    assert_eq!(diffs.len(), 1);
    assert_eq!(diffs[0].1["leaves"]["users"]["count"], 1);
    // A touch on b of a's connection renews nothing there.
    assert_eq!(b.touch(1), 0);
    // Each node counts the expiries it made: a's leave reached b as a change, no expiry.
    assert_eq!((a.stats().expired, b.stats().expired), (1, 0));
}

#[test]
fn threads_tracking_touching_and_untracking_while_the_timer_expires() {
    let engine = Arc::new(Engine::new(Config::default()).unwrap());
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let e = Arc::clone(&engine);
            std::thread::spawn(move || {
                let mut x = w + 1;
                for step in 0..20_000u64 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let conn = w * 1000 + x % 50;
                    let topic = ["a", "b", "c"][(x >> 8) as usize % 3];
                    match (x >> 16) % 8 {
                        0..=3 => {
                            let _ = e.track_ttl(topic, conn, None, None, ms(1 + (x >> 24) % 20));
                        }
                        4 => {
                            e.touch(conn);
                        }
                        5 => {
                            let _ = e.untrack(topic, conn);
                        }
                        6 => {
                            e.untrack_conn(conn);
                        }
                        _ => {
                            if step % 64 == 0 {
                                e.poll_diff();
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert!(!engine.is_poisoned());
    // Every presence had a time to live: the timer removes the last ones by itself.
    let start = Instant::now();
    while engine.stats().presences > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            engine.stats()
        );
        std::thread::sleep(ms(5));
    }
    engine.poll_diff();
    assert_eq!(engine.stats().topics, 0);
}

#[test]
fn first_ttl_tracks_racing_from_threads_leave_the_timer_running() {
    // Each engine starts its timer at its first `track_ttl`: several threads making that
    // first call at once must leave one timer thread running, which expires every
    // presence with no poll.
    for round in 0..40 {
        let engine = Arc::new(Engine::new(Config::default()).unwrap());
        let start = Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8u64)
            .map(|conn| {
                let (e, start) = (Arc::clone(&engine), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    e.track_ttl("race", conn, None, None, ms(1)).unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let start = Instant::now();
        while engine.stats().presences > 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "round {round}: {:?}",
                engine.stats()
            );
            std::thread::sleep(ms(1));
        }
    }
}

#[test]
fn whoever_sees_an_expiry_sees_it_counted() {
    // The timer expires a tick's presences shard by shard; a reader that sees some gone
    // must find them in `expired` already, whatever the pass has still to do.
    let engine = Engine::new(Config::default()).unwrap();
    let n = 20_000u64;
    for round in 0..4u64 {
        for conn in 0..n {
            engine
                .track_ttl("room", round * n + conn, None, None, ms(50))
                .unwrap();
        }
        let before = round * n;
        let start = Instant::now();
        loop {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "round {round}: the timer did not expire every presence"
            );
            let left = engine.counts("room").unwrap().connections;
            let expired = engine.stats().expired;
            assert!(
                expired - before >= n - left,
                "round {round}: {} gone, {} counted",
                n - left,
                expired - before
            );
            if left == 0 {
                break;
            }
        }
        assert_eq!(engine.stats().expired, before + n);
    }
}
