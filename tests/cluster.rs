//! Cluster mode in one process: engines exchange messages through an in-test bus, which
//! can lose, replay or forge messages. Checks convergence (distinct users across nodes
//! included), gap recovery, down detection, restarts, clean leaves and every refusal.

mod support;

use presence_core::{ClusterConfig, Config, Counts, Engine, ErrorKind, Format};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use support::bus::{lossy_round, round, settle};
use support::{normalize, phoenix_state, sync_diff, Rng};

const SECRET: &str = "a test secret of some length";

fn node(name: &str, format: Format) -> Engine {
    node_with(name, format, |_| {})
}

fn node_with(name: &str, format: Format, tweak: impl FnOnce(&mut ClusterConfig)) -> Engine {
    let mut cluster = ClusterConfig::new(name, SECRET);
    cluster.tick_ms = 20;
    cluster.down_after_ms = 300;
    tweak(&mut cluster);
    Engine::new(Config {
        format,
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
fn three_nodes_converge_to_exact_counts_with_users_counted_once() {
    for format in [Format::Counts, Format::Phoenix] {
        let (a, b, n3) = (node("a", format), node("b", format), node("c", format));
        let nodes = [&a, &b, &n3];
        settle(&nodes);
        // alice on all three nodes, bob on two, anonymous viewers everywhere.
        a.track("video:1", 1, Some("alice"), None).unwrap();
        a.track("video:1", 2, None, None).unwrap();
        b.track("video:1", 1, Some("alice"), None).unwrap();
        b.track("video:1", 2, Some("bob"), None).unwrap();
        n3.track("video:1", 7, Some("alice"), None).unwrap();
        n3.track("video:1", 8, Some("bob"), None).unwrap();
        n3.track("video:1", 9, None, None).unwrap();
        n3.track("video:2", 9, None, None).unwrap();
        round(&nodes);
        for n in nodes {
            assert_eq!(n.counts("video:1").unwrap(), c(2, 2, 7), "{format:?}");
            assert_eq!(n.counts("video:2").unwrap(), c(1, 0, 1));
        }
        // alice leaves node a: still present on b and c.
        a.untrack_conn(1);
        round(&nodes);
        for n in nodes {
            assert_eq!(n.counts("video:1").unwrap(), c(2, 2, 6));
        }
        b.untrack_conn(1);
        n3.untrack_conn(7);
        round(&nodes);
        for n in nodes {
            assert_eq!(
                n.counts("video:1").unwrap(),
                c(2, 1, 4),
                "alice gone everywhere"
            );
        }
    }
}

#[test]
fn remote_changes_come_out_of_poll_diff_and_phoenix_lists_show_every_node() {
    let (a, b) = (node("a", Format::Phoenix), node("b", Format::Phoenix));
    settle(&[&a, &b]);
    let mut client: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let apply = |n: &Engine, client: &mut BTreeMap<String, Vec<Value>>| {
        for d in n.poll_diff().iter() {
            sync_diff(client, &serde_json::from_str(d.payload).unwrap());
        }
        normalize(client);
    };
    apply(&a, &mut client);
    b.track("room", 5, Some("bob"), Some(r#"{"status":"online"}"#))
        .unwrap();
    a.track("room", 1, Some("alice"), None).unwrap();
    round(&[&a, &b]);
    apply(&a, &mut client);
    let listed = phoenix_state(&serde_json::from_str(&a.list("room").unwrap().json).unwrap());
    assert_eq!(client, listed);
    assert_eq!(client.keys().collect::<Vec<_>>(), ["alice", "bob"]);
    assert_eq!(client["bob"][0]["status"], "online");

    // b's own clients have seen bob's first meta, so the update names it as phx_ref_prev
    // on b, and a (whose clients saw it too) passes that on.
    b.poll_diff();
    b.update("room", 5, Some(r#"{"status":"away"}"#)).unwrap();
    round(&[&a, &b]);
    let batch = a.poll_diff();
    let d = batch
        .iter()
        .next()
        .expect("the remote update is a diff here");
    assert!(d.payload.contains("phx_ref_prev"), "{}", d.payload);
    sync_diff(&mut client, &serde_json::from_str(d.payload).unwrap());
    normalize(&mut client);
    assert_eq!(
        client,
        phoenix_state(&serde_json::from_str(&a.list("room").unwrap().json).unwrap())
    );
    assert_eq!(client["bob"][0]["status"], "away");
}

#[test]
fn lost_messages_are_detected_and_healed_by_snapshots() {
    for format in [Format::Counts, Format::Phoenix] {
        let nodes = [node("a", format), node("b", format), node("c", format)];
        let refs: Vec<&Engine> = nodes.iter().collect();
        settle(&refs);
        // What each node holds itself: (node, topic, conn) → key.
        let mut truth: BTreeMap<(usize, String, u64), Option<String>> = BTreeMap::new();
        let mut rng = Rng(7);
        for step in 0..300u64 {
            let i = rng.below(3) as usize;
            let conn = rng.below(20);
            let topic = format!("t{}", rng.below(4));
            if rng.chance(60) {
                let key = rng.chance(70).then(|| format!("u{}", rng.below(10)));
                if nodes[i].track(&topic, conn, key.as_deref(), None).is_ok() {
                    truth.insert((i, topic, conn), key);
                }
            } else {
                nodes[i].untrack_conn(conn);
                truth.retain(|(n, _, c), _| !(*n == i && *c == conn));
            }
            if step % 5 == 0 {
                // A lossy bus: a third of the messages never arrive.
                lossy_round(&refs, |_| rng.chance(33));
            }
        }
        // Then a reliable bus: gaps are seen, snapshots requested and applied.
        for _ in 0..12 {
            round(&refs);
        }
        let requests: u64 = nodes
            .iter()
            .map(|n| n.cluster_stats().unwrap().snapshot_requests_sent)
            .sum();
        assert!(requests > 0, "the losses were noticed");
        for t in 0..4 {
            let topic = format!("t{t}");
            let mut want = Counts::default();
            let mut users = HashSet::new();
            for ((_, tt, _), key) in &truth {
                if *tt == topic {
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
            for n in &nodes {
                assert_eq!(n.counts(&topic).unwrap(), want, "{format:?} {topic}");
            }
        }
    }
}

#[test]
fn a_silent_node_is_dropped_and_its_presences_leave_through_poll() {
    let (a, b) = (node("a", Format::Counts), node("b", Format::Counts));
    settle(&[&a, &b]);
    b.track("video:1", 1, Some("bob"), None).unwrap();
    b.track("video:1", 2, None, None).unwrap();
    round(&[&a, &b]);
    assert_eq!(a.counts("video:1").unwrap(), c(1, 1, 2));
    a.poll_diff();
    // b goes silent (crashed); a keeps ticking.
    let start = std::time::Instant::now();
    while a.counts("video:1").unwrap() != c(0, 0, 0) {
        a.cluster_tick().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "b was never dropped"
        );
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300),
        "dropped after down_after, not before ({elapsed:?})"
    );
    let batch = a.poll_diff();
    let d = batch.iter().next().expect("the drop is a diff");
    assert!(
        d.payload
            .contains(r#""leaves":{"viewers":{"count":1},"users":{"count":1}}"#),
        "{}",
        d.payload
    );
    assert_eq!(a.cluster_stats().unwrap().nodes_dropped, 1);
    assert_eq!(a.cluster_stats().unwrap().nodes, 0);
}

#[test]
fn a_restarted_node_replaces_its_old_incarnation_at_once() {
    let a = node("a", Format::Counts);
    let b1 = node("b", Format::Counts);
    settle(&[&a, &b1]);
    b1.track("video:1", 1, Some("bob"), None).unwrap();
    b1.track("video:1", 2, Some("bob2"), None).unwrap();
    round(&[&a, &b1]);
    assert_eq!(a.counts("video:1").unwrap().users, 2);
    drop(b1); // crashed without a goodbye
    std::thread::sleep(Duration::from_millis(2)); // a later incarnation
    let b2 = node("b", Format::Counts);
    b2.track("video:1", 1, Some("bob"), None).unwrap();
    round(&[&a, &b2]);
    assert_eq!(
        a.counts("video:1").unwrap(),
        c(0, 1, 1),
        "b's old presences are gone at once"
    );
}

#[test]
fn a_clean_leave_drops_the_node_immediately() {
    let (a, b) = (node("a", Format::Counts), node("b", Format::Counts));
    settle(&[&a, &b]);
    b.track("video:1", 1, None, None).unwrap();
    round(&[&a, &b]);
    assert_eq!(a.counts("video:1").unwrap().viewers, 1);
    let goodbye = b.cluster_leave().unwrap();
    a.cluster_ingest(&goodbye).unwrap();
    assert_eq!(a.counts("video:1").unwrap().viewers, 0);
    assert!(
        b.cluster_tick().unwrap().is_empty(),
        "a node that left publishes nothing"
    );
    // A replay of any of b's old messages cannot bring it back.
    assert_eq!(
        a.cluster_ingest(&goodbye).unwrap_err().kind(),
        ErrorKind::Rejected
    );
}

#[test]
fn forged_tampered_truncated_oversized_and_replayed_messages_are_refused() {
    let (a, b) = (
        node("a", Format::Counts),
        node_with("b", Format::Counts, |c| c.max_message_bytes = 20_000),
    );
    settle(&[&a, &b]);
    b.track("video:1", 1, Some("bob"), None).unwrap();
    let msgs = b.cluster_tick().unwrap();
    let msg = &msgs[0];
    let before = a.counts("video:1").unwrap();

    let forger = Engine::new(Config {
        cluster: Some(ClusterConfig::new("b", "another secret entirely!")),
        ..Config::default()
    })
    .unwrap();
    forger.track("video:1", 1, Some("mallory"), None).unwrap();
    for forged in forger.cluster_tick().unwrap() {
        assert_eq!(
            a.cluster_ingest(&forged).unwrap_err().kind(),
            ErrorKind::Rejected
        );
    }
    let mut tampered = msg.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0x40;
    assert!(a.cluster_ingest(&tampered).is_err());
    assert!(a.cluster_ingest(&msg[..msg.len() - 1]).is_err());
    assert!(a.cluster_ingest(&[]).is_err());
    assert!(a.cluster_ingest(&vec![0u8; 300 * 1024]).is_err());
    assert_eq!(
        a.counts("video:1").unwrap(),
        before,
        "nothing refused was merged"
    );

    a.cluster_ingest(msg).unwrap();
    assert_eq!(a.counts("video:1").unwrap().users, 1);
    assert_eq!(
        a.cluster_ingest(msg).unwrap_err().kind(),
        ErrorKind::Rejected,
        "a replay"
    );
    let s = a.cluster_stats().unwrap();
    assert!(s.rejected_unauthenticated >= 3, "{s:?}");
    assert_eq!(s.rejected_oversized, 1, "{s:?}");
    assert_eq!(s.rejected_replayed, 1, "{s:?}");

    // A single node has no cluster calls.
    let single = Engine::new(Config::default()).unwrap();
    assert_eq!(
        single.cluster_tick().unwrap_err().kind(),
        ErrorKind::NoCluster
    );
    assert_eq!(
        single.cluster_ingest(msg).unwrap_err().kind(),
        ErrorKind::NoCluster
    );
}

#[test]
fn arbitrary_bytes_never_crash_or_grow_the_engine() {
    let a = node("a", Format::Phoenix);
    let b = node("b", Format::Phoenix);
    b.track("room", 1, Some("bob"), Some(r#"{"x":[1,2,3]}"#))
        .unwrap();
    let samples = b.cluster_tick().unwrap();
    let mut rng = Rng(99);
    let base = a.stats().bytes;
    for i in 0..20_000 {
        let mut bytes: Vec<u8> = if i % 2 == 0 {
            (0..rng.below(400)).map(|_| rng.next() as u8).collect()
        } else {
            let mut m = samples[0].clone();
            for _ in 0..=rng.below(4) {
                let at = rng.below(m.len() as u64) as usize;
                m[at] ^= 1 + (rng.below(255) as u8);
            }
            m
        };
        if i % 7 == 0 {
            bytes.truncate(rng.below(bytes.len() as u64 + 1) as usize);
        }
        if bytes == samples[0] {
            bytes.push(0); // two mutations cancelled out: still not the original
        }
        assert!(a.cluster_ingest(&bytes).is_err());
    }
    let s = a.cluster_stats().unwrap();
    assert_eq!(s.rejected_unauthenticated + s.rejected_oversized, 20_000);
    assert_eq!(a.stats().bytes, base, "refused bytes leave no trace");
}

#[test]
fn counts_format_never_puts_a_user_id_or_meta_on_the_wire() {
    let (a, b) = (node("a", Format::Counts), node("b", Format::Counts));
    settle(&[&a, &b]);
    a.track(
        "video:1",
        1,
        Some("alice-the-user-id"),
        Some(r#"{"secret_meta":"s3cr3t"}"#),
    )
    .unwrap();
    a.update("video:1", 1, Some(r#"{"secret_meta":"other"}"#))
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.extend(round(&[&a, &b]));
    }
    a.untrack_conn(1);
    seen.extend(round(&[&a, &b]));
    let leave = a.cluster_leave().unwrap();
    seen.push(leave);
    assert!(seen.len() >= 4);
    for msg in &seen {
        for needle in [&b"alice"[..], b"secret_meta", b"s3cr3t"] {
            assert!(
                !msg.windows(needle.len()).any(|w| w == needle),
                "a raw id or meta travelled"
            );
        }
    }
    assert!(
        seen.iter().any(|m| m.windows(7).any(|w| w == b"video:1")),
        "the topic does travel"
    );
}

#[test]
fn large_snapshots_are_split_and_reassembled() {
    let small = |c: &mut ClusterConfig| c.max_message_bytes = 16 * 1024;
    let (a, b) = (
        node_with("a", Format::Counts, small),
        node_with("b", Format::Counts, small),
    );
    for i in 0..10_000u64 {
        a.track("hot", i, Some(&format!("user{i}")), None).unwrap();
    }
    let mut sizes = HashSet::new();
    for _ in 0..2 {
        for msg in a.cluster_tick().unwrap() {
            sizes.insert(msg.len() <= 16 * 1024);
            b.cluster_ingest(&msg).unwrap();
        }
        for msg in b.cluster_tick().unwrap() {
            a.cluster_ingest(&msg).unwrap();
        }
    }
    assert_eq!(sizes, HashSet::from([true]));
    assert_eq!(b.counts("hot").unwrap(), c(0, 10_000, 10_000));
    assert!(a.cluster_stats().unwrap().messages_sent > 5);
}

#[test]
fn a_node_cannot_make_another_hold_more_than_its_limit() {
    let small = |n: &str| {
        let mut cluster = ClusterConfig::new(n, SECRET);
        cluster.tick_ms = 20;
        cluster.down_after_ms = 300;
        Engine::new(Config {
            max_presences: 50,
            cluster: Some(cluster),
            ..Config::default()
        })
        .unwrap()
    };
    let a = small("a");
    let big = node("big", Format::Counts); // allowed 10M presences itself
    for i in 0..200u64 {
        big.track(&format!("t{}", i % 3), i, Some(&format!("u{i}")), None)
            .unwrap();
    }
    let refused = big
        .cluster_tick()
        .unwrap()
        .iter()
        .filter(|m| a.cluster_ingest(m).is_err())
        .count();
    assert!(refused >= 1);
    assert!(a.counts("t0").unwrap().users <= 50);
    assert_eq!(a.cluster_stats().unwrap().nodes, 0, "the node was dropped");
}
