//! Cluster mode over the host's own bus (an in-test bus here): what an idle node sends,
//! how a pause of this node differs from the silence of a peer, and who pays for the
//! snapshots a cold node needs.

mod support;

use presence_core::{ClusterConfig, Config, Counts, Engine, Format};
use std::time::{Duration, Instant};
use support::bus::round;

const SECRET: &str = "a test secret of some length";
const DOWN_AFTER_MS: u64 = 300;

fn node(name: &str) -> Engine {
    let mut cluster = ClusterConfig::new(name, SECRET);
    cluster.tick_ms = 20;
    cluster.down_after_ms = DOWN_AFTER_MS;
    Engine::new(Config {
        format: Format::Counts,
        cluster: Some(cluster),
        ..Config::default()
    })
    .unwrap()
}

fn c(viewers: u64, users: u64, connections: u64) -> Counts {
    Counts {
        viewers,
        users,
        connections,
    }
}

#[test]
fn an_idle_tick_sends_one_message() {
    let (a, b) = (node("a"), node("b"));
    a.track("video:1", 1, Some("alice"), None).unwrap();
    for _ in 0..5 {
        round(&[&a, &b]);
    }
    assert_eq!(b.counts("video:1").unwrap(), c(0, 1, 1));
    for _ in 0..3 {
        assert_eq!(
            a.cluster_tick().unwrap().len(),
            1,
            "a heartbeat, and nothing else"
        );
    }
    // A tick with changes sends them, and no heartbeat besides.
    a.track("video:1", 2, None, None).unwrap();
    assert_eq!(a.cluster_tick().unwrap().len(), 1);
}

#[test]
fn a_pause_of_this_node_is_not_the_silence_of_its_peers() {
    let (a, b) = (node("a"), node("b"));
    b.track("video:1", 1, Some("bob"), None).unwrap();
    for _ in 0..5 {
        round(&[&a, &b]);
    }
    assert_eq!(a.counts("video:1").unwrap(), c(0, 1, 1));
    a.poll_diff();

    // Neither node runs for twice down_after (a suspended host; or a host that stops
    // ticking while its bus is down). a's first tick afterwards keeps b, whose messages
    // it has not read yet.
    std::thread::sleep(Duration::from_millis(2 * DOWN_AFTER_MS));
    a.cluster_tick().unwrap();
    assert_eq!(a.counts("video:1").unwrap(), c(0, 1, 1));
    assert_eq!(a.cluster_stats().unwrap().nodes_dropped, 0);
    for _ in 0..5 {
        round(&[&a, &b]);
    }
    assert!(a.poll_diff().is_empty(), "a's clients saw b leave");

    // But a peer that stays silent once a runs again is dropped down_after later.
    let start = Instant::now();
    while a.counts("video:1").unwrap() != c(0, 0, 0) {
        a.cluster_tick().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "b was never dropped"
        );
    }
    assert!(start.elapsed() >= Duration::from_millis(DOWN_AFTER_MS - 40));
    assert_eq!(a.cluster_stats().unwrap().nodes_dropped, 1);
}

#[test]
fn a_cold_node_is_sent_one_snapshot_per_node_which_the_others_ignore() {
    let (a, b, d) = (node("a"), node("b"), node("d"));
    for i in 0..2000 {
        a.track("big", i, Some(&format!("a-{i}")), None).unwrap();
        b.track("big", i, Some(&format!("b-{i}")), None).unwrap();
    }
    for _ in 0..5 {
        round(&[&a, &b]);
    }
    assert_eq!(a.counts("big").unwrap(), c(0, 4000, 4000));
    a.poll_diff();
    b.poll_diff();
    let sent = |e: &Engine| e.cluster_stats().unwrap().bytes_sent;
    let (a0, b0) = (sent(&a), sent(&b));

    // d arrives empty: a and b each send it one snapshot, addressed to d. Over a host's
    // own bus every node receives it; only d applies it.
    let mut rounds = 0;
    while d.counts("big").unwrap() != c(0, 4000, 4000) {
        round(&[&a, &b, &d]);
        rounds += 1;
        assert!(rounds < 10, "d did not converge");
    }
    for _ in 0..3 {
        round(&[&a, &b, &d]);
    }
    let one_snapshot = 2000 * 8;
    for (name, e, before) in [("a", &a, a0), ("b", &b, b0)] {
        let s = e.cluster_stats().unwrap();
        let cost = sent(e) - before;
        assert!(
            cost > one_snapshot && cost < 2 * one_snapshot,
            "{name} sent {cost} bytes: one snapshot ({one_snapshot} bytes of hashes) and heartbeats"
        );
        assert_eq!(s.rejected_replayed + s.rejected_malformed, 0, "{s:?}");
        assert!(e.poll_diff().is_empty(), "{name}'s clients saw a change");
        assert_eq!(e.counts("big").unwrap(), c(0, 4000, 4000));
    }
    let s = d.cluster_stats().unwrap();
    assert_eq!((s.nodes, s.snapshot_requests_sent), (2, 2), "{s:?}");
}
