//! The leave grace and the occupancy marks of a poll: a reload (a leave, then the same
//! key back within the window) sends nothing in either format; a leave without a rejoin
//! comes out at the first poll after the window, with the wake-up descriptor readable
//! then; a topic's passage between empty and not empty is marked in the poll, and a
//! reload does not vacate. In a cluster the grace applies on the node that owns the
//! presence: the other nodes see neither the leave nor the rejoin.

mod support;

use presence_core::{
    ClusterConfig, Config, Counts, Engine, Format, ManualClock, Occupancy, TopicDiff,
};
use serde_json::Value;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;
use support::bus::round;
use support::{phoenix_state, sync_diff, SeedReducer};

const GRACE: u64 = 5_000;

fn engine(format: Format) -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    let config = Config {
        format,
        leave_grace_ms: GRACE,
        ..Config::default()
    };
    let engine = Engine::with_clock(config, clock.clone()).unwrap();
    (engine, clock)
}

fn c(viewers: u64, users: u64, connections: u64) -> Counts {
    Counts {
        viewers,
        users,
        connections,
    }
}

/// The topics of a poll with their occupancy, as the JSON array has them too.
fn occupancies(engine: &Engine) -> Vec<(String, Occupancy)> {
    let batch = engine.poll_diff();
    let json: Value = serde_json::from_str(batch.json()).unwrap();
    batch
        .iter()
        .zip(json.as_array().unwrap())
        .map(|(d, env)| {
            assert_eq!(
                env.get("occupancy").and_then(Value::as_str),
                d.occupancy.name()
            );
            (d.topic.to_owned(), d.occupancy)
        })
        .collect()
}

fn payload(d: &TopicDiff<'_>) -> Value {
    serde_json::from_str(d.payload).unwrap()
}

#[test]
fn a_reload_within_the_window_sends_nothing_in_counts_format() {
    let (e, clock) = engine(Format::Counts);
    e.track("video:1", 1, Some("alice"), None).unwrap();
    e.track("video:1", 2, None, None).unwrap();
    assert_eq!(e.poll_diff().len(), 1);
    let mut reducer = SeedReducer::default();
    reducer.set(&serde_json::from_str(&e.list("video:1").unwrap().json).unwrap());

    // Both reload: each leaves, and a new connection comes back, alice under her key and
    // the viewer as a new anonymous connection.
    e.untrack_conn(1);
    e.untrack("video:1", 2).unwrap();
    assert_eq!(
        e.counts("video:1").unwrap(),
        c(1, 1, 2),
        "held leaves still count"
    );
    clock.advance(Duration::from_millis(GRACE - 1));
    e.track("video:1", 3, Some("alice"), None).unwrap();
    e.track("video:1", 4, None, None).unwrap();
    assert_eq!(e.counts("video:1").unwrap(), c(1, 1, 2));
    assert!(e.poll_diff().is_empty(), "a reload makes no diff at all");
    clock.advance(Duration::from_millis(GRACE));
    assert!(
        e.poll_diff().is_empty(),
        "nothing was left held to come out later"
    );
    assert_eq!(e.stats().presences, 2);

    // The new connections are the presences now: their leaves are held in turn.
    e.untrack_conn(3);
    assert!(e.poll_diff().is_empty());
    clock.advance(Duration::from_millis(GRACE));
    let batch = e.poll_diff();
    let d = batch.get(0).unwrap();
    reducer.diff(&payload(&d));
    assert_eq!((reducer.viewers, reducer.users), (1, 0));
    assert_eq!(d.counts, c(1, 0, 1));
}

#[test]
fn a_rejoin_with_a_time_to_live_takes_the_held_presence_over_and_expires_by_it() {
    let (e, clock) = engine(Format::Counts);
    e.track("inbox", 1, Some("alice"), None).unwrap();
    assert_eq!(e.poll_diff().len(), 1);
    e.untrack_conn(1);
    e.track_ttl(
        "inbox",
        2,
        Some("alice"),
        None,
        Duration::from_millis(1_000),
    )
    .unwrap();
    assert!(
        e.poll_diff().is_empty(),
        "the rejoin took the held presence over"
    );
    assert_eq!(
        e.touch(2),
        1,
        "the taken-over presence has its time to live"
    );
    clock.advance(Duration::from_millis(999));
    assert!(e.poll_diff().is_empty());
    clock.advance(Duration::from_millis(1));
    let batch = e.poll_diff();
    assert_eq!(batch.len(), 1, "alice left at the deadline");
    assert_eq!(batch.get(0).unwrap().counts, c(0, 0, 0));
    assert_eq!(e.stats().presences, 0);
    assert_eq!(e.touch(2), 0);
}

#[test]
fn a_leave_without_a_rejoin_comes_out_when_its_window_ends() {
    let (e, clock) = engine(Format::Counts);
    e.track("video:1", 1, Some("alice"), None).unwrap();
    e.track("video:1", 2, Some("bob"), None).unwrap();
    e.poll_diff();
    e.untrack("video:1", 1).unwrap();
    assert_eq!(e.pending_topics(), 0);
    clock.advance(Duration::from_millis(GRACE - 1));
    assert!(e.poll_diff().is_empty());
    assert_eq!(e.counts("video:1").unwrap(), c(0, 2, 2));
    clock.advance(Duration::from_millis(1));
    assert_eq!(e.pending_topics(), 1, "a due leave is something to poll");
    // A connection is free at once: the same id may track another topic.
    e.track("video:2", 1, None, None).unwrap();
    let batch = e.poll_diff();
    let d = batch.iter().find(|d| d.topic == "video:1").unwrap();
    assert_eq!(d.counts, c(0, 1, 1));
    assert_eq!(
        payload(&d),
        serde_json::json!({"joins":{"viewers":{"count":0},"users":{"count":0}},
                           "leaves":{"viewers":{"count":0},"users":{"count":1}}})
    );
    assert_eq!(e.pending_topics(), 0);
    assert_eq!(e.stats().presences, 2);
    // A second tab of a user still there leaves nothing to see, held or not.
    e.track("video:1", 5, Some("bob"), None).unwrap();
    e.untrack("video:1", 5).unwrap();
    clock.advance(Duration::from_millis(GRACE));
    assert!(e.poll_diff().iter().all(|d| d.topic != "video:1"));
}

#[test]
fn a_key_that_rejoins_takes_its_oldest_leave_and_the_other_leaves_stay_due() {
    let (e, clock) = engine(Format::Counts);
    for conn in 1..=3 {
        e.track("video:1", conn, None, None).unwrap();
    }
    e.poll_diff();
    e.untrack("video:1", 1).unwrap();
    clock.advance(Duration::from_millis(1_000));
    e.untrack("video:1", 2).unwrap();
    e.untrack("video:1", 3).unwrap();
    // Viewers are alike: the one nearest its due time is taken, the others keep theirs.
    e.track("video:1", 4, None, None).unwrap();
    assert_eq!(e.counts("video:1").unwrap(), c(3, 0, 3));
    clock.advance(Duration::from_millis(GRACE - 1_000));
    assert!(e.poll_diff().is_empty());
    e.track("video:1", 5, None, None).unwrap();
    clock.advance(Duration::from_millis(1_000));
    assert_eq!(e.poll_diff().get(0).unwrap().counts, c(2, 0, 2));
    assert_eq!(e.counts("video:1").unwrap(), c(2, 0, 2));
}

#[test]
fn a_phoenix_rejoin_with_the_same_meta_keeps_its_ref_and_sends_nothing() {
    let (e, clock) = engine(Format::Phoenix);
    e.track("room", 1, Some("alice"), Some(r#"{"device":"phone"}"#))
        .unwrap();
    e.track("room", 2, None, None).unwrap();
    e.poll_diff();
    let before = e.list("room").unwrap();
    let mut client = phoenix_state(&serde_json::from_str(&before.json).unwrap());

    e.untrack("room", 1).unwrap();
    e.untrack("room", 2).unwrap();
    e.track("room", 3, Some("alice"), Some(r#"{"device":"phone"}"#))
        .unwrap();
    e.track("room", 4, None, None).unwrap();
    assert!(e.poll_diff().is_empty());
    assert_eq!(
        e.list("room").unwrap(),
        before,
        "the same refs, the same metas"
    );

    // Another meta on the way back is an update of the presence clients hold: one
    // diff, where alice's new meta joins with phx_ref_prev naming the one that leaves.
    e.untrack("room", 3).unwrap();
    e.track("room", 5, Some("alice"), Some(r#"{"device":"laptop"}"#))
        .unwrap();
    let batch = e.poll_diff();
    let d = batch.get(0).unwrap();
    assert_eq!(d.occupancy, Occupancy::Unchanged);
    let p = payload(&d);
    let joined = &p["joins"]["alice"]["metas"][0];
    let left = &p["leaves"]["alice"]["metas"][0];
    assert_eq!(joined["device"], "laptop");
    assert_eq!(joined["phx_ref_prev"], left["phx_ref"]);
    assert_eq!(p["leaves"].as_object().unwrap().len(), 1);
    sync_diff(&mut client, &p);
    assert_eq!(
        client,
        phoenix_state(&serde_json::from_str(&e.list("room").unwrap().json).unwrap())
    );
    clock.advance(Duration::from_millis(GRACE));
    assert!(e.poll_diff().is_empty());
}

#[test]
fn a_phoenix_presence_that_leaves_unpolled_and_rejoins_is_one_join() {
    let (e, clock) = engine(Format::Phoenix);
    e.track("room", 1, Some("alice"), None).unwrap();
    e.untrack("room", 1).unwrap();
    e.track("room", 2, Some("alice"), None).unwrap();
    let batch = e.poll_diff();
    let p = payload(&batch.get(0).unwrap());
    assert_eq!(p["joins"]["alice"]["metas"].as_array().unwrap().len(), 1);
    assert_eq!(p["leaves"], serde_json::json!({}));
    // Left unpolled and never back: the join and its leave cancel, nothing is sent.
    e.track("other", 1, Some("bob"), None).unwrap();
    e.untrack("other", 1).unwrap();
    clock.advance(Duration::from_millis(GRACE));
    assert!(e.poll_diff().is_empty());
    assert_eq!(e.stats().topics, 1);
}

#[test]
fn occupancy_marks_the_passage_between_empty_and_not_empty() {
    let (e, clock) = engine(Format::Counts);
    e.track("a", 1, Some("alice"), None).unwrap();
    e.track("b", 2, None, None).unwrap();
    let mut got = occupancies(&e);
    got.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        got,
        [
            ("a".to_owned(), Occupancy::Occupied),
            ("b".to_owned(), Occupancy::Occupied)
        ]
    );
    e.track("a", 3, None, None).unwrap();
    assert_eq!(occupancies(&e), [("a".to_owned(), Occupancy::Unchanged)]);
    // A reload does not vacate; nor does a vacate and a return within one poll window.
    e.untrack("b", 2).unwrap();
    e.track("b", 4, None, None).unwrap();
    assert!(occupancies(&e).is_empty());
    e.untrack_conn(1);
    e.untrack_conn(3);
    assert!(occupancies(&e).is_empty(), "held, so still occupied");
    clock.advance(Duration::from_millis(GRACE));
    assert_eq!(occupancies(&e), [("a".to_owned(), Occupancy::Vacated)]);
    assert_eq!(e.stats().topics, 1, "a vacated topic is dropped");
    e.track("a", 5, None, None).unwrap();
    assert_eq!(occupancies(&e), [("a".to_owned(), Occupancy::Occupied)]);
}

#[test]
fn without_a_grace_a_leave_is_published_at_once_and_occupancy_is_marked_alike() {
    let e = Engine::new(Config {
        format: Format::Phoenix,
        ..Config::default()
    })
    .unwrap();
    e.track("a", 1, Some("alice"), None).unwrap();
    assert_eq!(occupancies(&e), [("a".to_owned(), Occupancy::Occupied)]);
    e.untrack("a", 1).unwrap();
    e.track("a", 2, Some("alice"), None).unwrap();
    let batch = e.poll_diff();
    let p = payload(&batch.get(0).unwrap());
    assert_eq!(batch.get(0).unwrap().occupancy, Occupancy::Unchanged);
    assert_eq!(p["leaves"]["alice"]["metas"].as_array().unwrap().len(), 1);
    e.untrack("a", 2).unwrap();
    assert_eq!(occupancies(&e), [("a".to_owned(), Occupancy::Vacated)]);
}

fn readable(fd: RawFd, timeout_ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd.
    unsafe { libc::poll(&mut p, 1, timeout_ms) == 1 }
}

/// On the system clock the wake-up descriptor turns readable when a held leave is due,
/// with no call to the engine in between: an event-loop host learns of it.
#[test]
fn the_wakeup_descriptor_turns_readable_when_a_held_leave_is_due() {
    let e = Engine::new(Config {
        leave_grace_ms: 200,
        ..Config::default()
    })
    .unwrap();
    let fd = e.wakeup_fd();
    e.track("a", 1, None, None).unwrap();
    assert!(readable(fd, 0));
    assert_eq!(e.poll_diff().len(), 1);
    assert!(!readable(fd, 0));
    let left = std::time::Instant::now();
    e.untrack("a", 1).unwrap();
    assert!(readable(fd, 10_000), "readable once the leave is due");
    assert!(left.elapsed().as_millis() >= 199);
    let batch = e.poll_diff();
    assert_eq!(batch.get(0).unwrap().occupancy, Occupancy::Vacated);
    assert!(
        !readable(fd, 0),
        "the poll drains it, with nothing more held"
    );

    // A leave taken over before its time leaves no wake-up behind once polled.
    e.track("a", 2, None, None).unwrap();
    e.poll_diff();
    e.untrack("a", 2).unwrap();
    e.track("a", 3, None, None).unwrap();
    assert!(
        readable(fd, 10_000),
        "the held row still wakes the host once"
    );
    assert!(e.poll_diff().is_empty());
    assert!(!readable(fd, 400), "and only once");
}

const SECRET: &str = "a test secret of some length";

fn cluster_node(name: &str, format: Format, clock: &Arc<ManualClock>) -> Engine {
    let mut cluster = ClusterConfig::new(name, SECRET);
    cluster.tick_ms = 20;
    cluster.down_after_ms = 10_000;
    let config = Config {
        format,
        leave_grace_ms: GRACE,
        cluster: Some(cluster),
        ..Config::default()
    };
    Engine::with_clock(config, clock.clone()).unwrap()
}

/// The grace applies where the presence lives: a leave on one node and the rejoin on the
/// same node reach no other node, and a leave without a rejoin reaches them (and their
/// clients, and their occupancy) only when its window ends.
#[test]
fn in_a_cluster_the_owning_node_holds_the_leave() {
    for format in [Format::Counts, Format::Phoenix] {
        let clock = Arc::new(ManualClock::default());
        let (a, b) = (
            cluster_node("a", format, &clock),
            cluster_node("b", format, &clock),
        );
        for _ in 0..3 {
            round(&[&a, &b]);
        }
        a.track("video:1", 1, Some("alice"), None).unwrap();
        a.track("video:1", 2, None, None).unwrap();
        round(&[&a, &b]);
        assert_eq!(
            occupancies(&b),
            [("video:1".to_owned(), Occupancy::Occupied)]
        );
        a.poll_diff();
        let state_on_b = b.list("video:1").unwrap();

        a.untrack_conn(1);
        a.untrack_conn(2);
        round(&[&a, &b]);
        a.track("video:1", 3, Some("alice"), None).unwrap();
        a.track("video:1", 4, None, None).unwrap();
        round(&[&a, &b]);
        clock.advance(Duration::from_millis(GRACE));
        round(&[&a, &b]);
        assert!(a.poll_diff().is_empty(), "{format:?} on a");
        assert!(b.poll_diff().is_empty(), "{format:?} on b");
        assert_eq!(b.list("video:1").unwrap(), state_on_b);
        assert_eq!(b.counts("video:1").unwrap(), c(1, 1, 2));

        // A node that starts while a leave is held gets the presence in its snapshot.
        a.untrack_conn(3);
        let late = cluster_node("late", format, &clock);
        for _ in 0..3 {
            round(&[&a, &b, &late]);
        }
        assert_eq!(late.counts("video:1").unwrap(), c(1, 1, 2), "{format:?}");
        // Each node reports what it sees: to the new node the topic was never occupied.
        assert_eq!(
            occupancies(&late),
            [("video:1".to_owned(), Occupancy::Occupied)]
        );
        assert!(b.poll_diff().is_empty());

        clock.advance(Duration::from_millis(GRACE));
        round(&[&a, &b, &late]);
        assert_eq!(a.poll_diff().len(), 1);
        round(&[&a, &b, &late]);
        for n in [&b, &late] {
            let batch = n.poll_diff();
            let d = batch.get(0).unwrap();
            assert_eq!((d.counts, d.occupancy), (c(1, 0, 1), Occupancy::Unchanged));
        }
        a.untrack_conn(4);
        clock.advance(Duration::from_millis(GRACE));
        a.poll_diff();
        round(&[&a, &b, &late]);
        for n in [&b, &late] {
            let got = occupancies(n);
            assert_eq!(
                got,
                [("video:1".to_owned(), Occupancy::Vacated)],
                "{format:?}"
            );
        }
    }
}
