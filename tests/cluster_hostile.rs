//! Cluster mode against peers that hold the secret but send what no honest node sends:
//! claims that overflow, sequence numbers at the end of their range, names this node
//! refuses locally, refs chosen to meet this node's own, snapshots that never end. Every
//! such message is refused whole, and the receiver's state stays what its own clients
//! and its honest peers make it. Also: nodes that come back after being dropped, and what
//! a reader of the bus can learn from counts-format hashes.

mod support;

use presence_core::cluster::wire::{self, Body, Change, Message, TopicChange, WireEntry};
use presence_core::{ClusterConfig, Config, Counts, Engine, ErrorKind, Format};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use support::bus::round;
use support::{normalize, phoenix_state, sync_diff};

const SECRET: &str = "a test secret of some length";

fn engine(name: &str, format: Format, tweak: impl FnOnce(&mut Config)) -> Engine {
    let mut cluster = ClusterConfig::new(name, SECRET);
    cluster.tick_ms = 20;
    cluster.down_after_ms = 300;
    let mut config = Config {
        format,
        cluster: Some(cluster),
        ..Config::default()
    };
    tweak(&mut config);
    Engine::new(config).unwrap()
}

fn node(name: &str, format: Format) -> Engine {
    engine(name, format, |_| {})
}

fn c(viewers: u64, users: u64, connections: u64) -> Counts {
    Counts {
        viewers,
        users,
        connections,
    }
}

/// A peer that signs whatever it is told to send.
struct Forger {
    node: String,
    format: Format,
    incarnation: u64,
    seq: u64,
}

impl Forger {
    fn new(node: &str, format: Format) -> Forger {
        Forger {
            node: node.into(),
            format,
            incarnation: 1,
            seq: 0,
        }
    }

    fn at(&self, seq: u64, body: Body) -> Vec<u8> {
        let msg = Message {
            format: self.format,
            node: self.node.clone(),
            incarnation: self.incarnation,
            seq,
            body,
        };
        wire::encode(&msg, SECRET.as_bytes())
    }

    fn send(&mut self, body: Body) -> Vec<u8> {
        self.seq += 1;
        self.at(self.seq, body)
    }

    /// A whole snapshot in one part.
    fn snapshot(&mut self, topics: Vec<TopicChange>) -> Vec<u8> {
        self.send(Body::Snapshot {
            part: 0,
            last: true,
            topics,
        })
    }
}

fn counts(topic: &str, viewers: u64, connections: u64, added: Vec<u64>) -> TopicChange {
    TopicChange {
        topic: topic.into(),
        change: Change::Counts {
            viewers,
            connections,
            added,
            removed: vec![],
        },
    }
}

fn phoenix(topic: &str, joins: &[(u64, Option<&str>)], leaves: Vec<u64>) -> TopicChange {
    TopicChange {
        topic: topic.into(),
        change: Change::Phoenix {
            joins: joins
                .iter()
                .map(|&(phx_ref, key)| WireEntry {
                    phx_ref,
                    prev_ref: 0,
                    key: key.map(Into::into),
                    meta: "{}".into(),
                })
                .collect(),
            leaves,
        },
    }
}

fn list(e: &Engine, topic: &str) -> BTreeMap<String, Vec<Value>> {
    phoenix_state(&serde_json::from_str(&e.list(topic).unwrap().json).unwrap())
}

/// What a phoenix.js client that started from the first state sees after every poll.
fn follow(e: &Engine, client: &mut BTreeMap<String, Vec<Value>>) {
    for d in e.poll_diff().iter() {
        sync_diff(client, &serde_json::from_str(d.payload).unwrap());
    }
    normalize(client);
}

/// The ref a phoenix payload shows, as the number behind its 11 base64url characters.
fn ref_number(s: &str) -> u64 {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    s.bytes().fold(0u64, |n, ch| {
        (n << 6) | ALPHABET.iter().position(|&x| x == ch).unwrap() as u64
    })
}

fn refused(e: &Engine, msg: &[u8]) {
    let err = e.cluster_ingest(msg).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
}

#[test]
fn a_node_dropped_and_heard_again_shows_its_entries_at_once() {
    for format in [Format::Phoenix, Format::Counts] {
        let fast = |name: &str| {
            let mut cluster = ClusterConfig::new(name, SECRET);
            cluster.tick_ms = 10;
            cluster.down_after_ms = 200;
            Engine::new(Config {
                format,
                cluster: Some(cluster),
                ..Config::default()
            })
            .unwrap()
        };
        let (a, b) = (fast("a"), fast("b"));
        a.track("t", 1, Some("alice"), None).unwrap();
        for _ in 0..3 {
            round(&[&a, &b]);
        }
        b.poll_diff();
        assert_eq!(b.counts("t").unwrap(), c(0, 1, 1), "{format:?}");
        // b keeps ticking while a stays silent: after down_after_ms of that, a is dropped.
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while b.cluster_stats().unwrap().nodes_dropped == 0 && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
            b.cluster_tick().unwrap();
        }
        assert_eq!(b.cluster_stats().unwrap().nodes_dropped, 1, "{format:?}");
        assert_eq!(b.counts("t").unwrap(), c(0, 0, 0), "{format:?}");
        for _ in 0..6 {
            round(&[&a, &b]);
        }
        assert_eq!(b.counts("t").unwrap(), c(0, 1, 1), "{format:?}");
        if format == Format::Phoenix {
            assert_eq!(list(&b, "t").keys().collect::<Vec<_>>(), ["alice"]);
        }
    }
}

#[test]
fn overflowing_counts_claims_are_refused_and_local_state_stays_exact() {
    let b = node("b", Format::Counts);
    b.track("room", 1, None, None).unwrap();
    let mut evil = Forger::new("evil", Format::Counts);
    refused(
        &b,
        &evil.snapshot(vec![counts("room", u64::MAX, u64::MAX, vec![])]),
    );
    // Viewers beyond connections, and connections beyond max_presences.
    refused(&b, &evil.snapshot(vec![counts("room", 5, 4, vec![])]));
    refused(
        &b,
        &evil.snapshot(vec![counts("room", 0, 10_000_001, vec![])]),
    );
    // Two claims, each within u64 but together beyond it.
    let mut other = Forger::new("other", Format::Counts);
    refused(
        &b,
        &other.snapshot(vec![counts("room", 1 << 63, 1 << 63, vec![])]),
    );
    assert_eq!(b.counts("room").unwrap(), c(1, 0, 1));
    let batch = b.poll_diff();
    let d = batch.iter().next().expect("the local join is reported");
    assert_eq!(d.counts, c(1, 0, 1));
    assert_eq!(b.cluster_stats().unwrap().rejected_malformed, 4);

    // A claim within the bounds is taken.
    b.cluster_ingest(&evil.snapshot(vec![counts("room", 3, 4, vec![7])]))
        .unwrap();
    assert_eq!(b.counts("room").unwrap(), c(4, 1, 5));
}

#[test]
fn a_sequence_number_at_the_end_of_its_range_is_refused_and_the_peer_can_still_leave() {
    for format in [Format::Counts, Format::Phoenix] {
        let b = node("b", format);
        let mut evil = Forger::new("evil", format);
        let topic = match format {
            Format::Counts => counts("room", 0, 1, vec![42]),
            Format::Phoenix => phoenix("room", &[(5, Some("mallory"))], vec![]),
        };
        b.cluster_ingest(&evil.snapshot(vec![topic.clone()]))
            .unwrap();
        assert_eq!(b.counts("room").unwrap(), c(0, 1, 1));
        for last in [false, true] {
            refused(
                &b,
                &evil.at(
                    u64::MAX,
                    Body::Snapshot {
                        part: 0,
                        last,
                        topics: vec![topic.clone()],
                    },
                ),
            );
        }
        refused(&b, &evil.at(u64::MAX, Body::Heartbeat));
        assert_eq!(b.cluster_stats().unwrap().nodes, 1);
        b.cluster_ingest(&evil.send(Body::Leave)).unwrap();
        assert_eq!(b.counts("room").unwrap(), c(0, 0, 0), "{format:?}");
        assert_eq!(b.cluster_stats().unwrap().nodes, 0);
    }
}

#[test]
fn a_remote_entry_keyed_with_the_viewers_key_is_refused() {
    // Two nodes whose viewers_key differ: a's user "viewers" is b's group of anonymous
    // viewers.
    let a = engine("a", Format::Phoenix, |c| c.viewers_key = "guests".into());
    let b = node("b", Format::Phoenix);
    a.track("room", 1, Some("viewers"), None).unwrap();
    a.track("lobby", 2, Some("alice"), None).unwrap();
    b.track("room", 9, None, None).unwrap();
    for msg in a.cluster_tick().unwrap() {
        refused(&b, &msg);
    }
    assert_eq!(b.counts("room").unwrap(), c(1, 0, 1));
    assert_eq!(b.counts("lobby").unwrap(), c(0, 0, 0), "refused whole");
    b.poll_diff();
    assert_eq!(list(&b, "room")["viewers"].len(), 1);

    // A forged one, under b's own viewers_key, is refused the same way.
    let mut evil = Forger::new("evil", Format::Phoenix);
    refused(
        &b,
        &evil.snapshot(vec![phoenix("room", &[(3, Some("viewers"))], vec![])]),
    );
    assert_eq!(b.counts("room").unwrap(), c(1, 0, 1));
}

#[test]
fn a_message_with_one_topic_over_the_bounds_is_refused_whole() {
    let a = node("a", Format::Counts);
    let b = engine("b", Format::Counts, |c| c.max_topic_bytes = 8);
    a.track("short", 1, Some("alice"), None).unwrap();
    a.track("a-topic-longer-than-eight", 2, Some("bob"), None)
        .unwrap();
    let msgs = a.cluster_tick().unwrap();
    assert_eq!(msgs.len(), 1, "one snapshot part holds both topics");
    refused(&b, &msgs[0]);
    assert_eq!(b.counts("short").unwrap(), c(0, 0, 0));
    assert_eq!(b.stats().topics, 0);
    assert_eq!(b.cluster_stats().unwrap().rejected_malformed, 1);

    // So is a delta, even from a peer in sync.
    let b = node("b2", Format::Counts);
    let mut evil = Forger::new("evil", Format::Counts);
    b.cluster_ingest(&evil.snapshot(vec![])).unwrap();
    let long = "x".repeat(300);
    refused(
        &b,
        &evil.send(Body::Delta(vec![
            counts("fine", 0, 1, vec![1]),
            counts(&long, 0, 1, vec![2]),
        ])),
    );
    assert_eq!(b.counts("fine").unwrap(), c(0, 0, 0));
}

#[test]
fn a_node_over_max_presences_is_refused_once_and_dropped() {
    let a = engine("a", Format::Counts, |c| c.max_presences = 100);
    let big = node("big", Format::Counts);
    a.track("mine", 1, Some("me"), None).unwrap();
    for i in 0..200u64 {
        big.track(&format!("t{}", i % 3), i, Some(&format!("u{i}")), None)
            .unwrap();
    }
    let msgs = big.cluster_tick().unwrap();
    assert_eq!(msgs.len(), 1);
    refused(&a, &msgs[0]);
    let s = a.cluster_stats().unwrap();
    assert_eq!(s.rejected_malformed, 1, "{s:?}");
    assert_eq!((s.nodes, s.nodes_dropped), (0, 1), "{s:?}");
    assert_eq!(a.counts("t0").unwrap(), c(0, 0, 0));
    assert_eq!(a.counts("mine").unwrap(), c(0, 1, 1));

    // A delta that would take an in-sync peer over the limit goes the same way.
    let mut evil = Forger::new("evil", Format::Counts);
    a.cluster_ingest(&evil.snapshot(vec![counts("x", 0, 80, vec![])]))
        .unwrap();
    assert_eq!(a.counts("x").unwrap(), c(0, 0, 80));
    refused(
        &a,
        &evil.send(Body::Delta(vec![counts("y", 0, 30, vec![])])),
    );
    assert_eq!(a.counts("x").unwrap(), c(0, 0, 0), "the sender is dropped");
    assert_eq!(a.counts("y").unwrap(), c(0, 0, 0));
    assert_eq!(a.cluster_stats().unwrap().rejected_malformed, 2);
}

#[test]
fn unfinished_snapshots_are_bounded_counted_and_discarded() {
    let b = engine("b", Format::Counts, |c| c.max_topics = 100);
    let base = b.stats().bytes;
    let mut evil = Forger::new("evil", Format::Counts);
    let many = |from: usize, n: usize, connections: u64| -> Vec<TopicChange> {
        (from..from + n)
            .map(|i| counts(&format!("topic-{i}"), 0, connections, vec![]))
            .collect()
    };
    // Parts of topics that hold nothing stage nothing.
    for part in 0..50u32 {
        let msg = evil.send(Body::Snapshot {
            part,
            last: false,
            topics: many(part as usize * 1000, 1000, 0),
        });
        b.cluster_ingest(&msg).unwrap();
    }
    assert!(b.stats().bytes - base < 4096, "{}", b.stats().bytes - base);

    // Staged topics count in the engine's bytes, up to max_topics.
    b.cluster_ingest(&evil.send(Body::Snapshot {
        part: 0,
        last: false,
        topics: many(0, 60, 1),
    }))
    .unwrap();
    let staged = b.stats().bytes - base;
    assert!(staged > 60 * 8, "{staged}");
    refused(
        &b,
        &evil.send(Body::Snapshot {
            part: 1,
            last: false,
            topics: many(60, 60, 1),
        }),
    );
    assert_eq!(b.stats().bytes, base, "the staging went with the sender");
    assert_eq!(b.stats().topics, 0);

    // Anything but the next part ends a snapshot unfinished.
    let mut other = Forger::new("other", Format::Counts);
    b.cluster_ingest(&other.send(Body::Snapshot {
        part: 0,
        last: false,
        topics: many(0, 10, 1),
    }))
    .unwrap();
    assert!(b.stats().bytes > base);
    b.cluster_ingest(&other.send(Body::Heartbeat)).unwrap();
    assert_eq!(b.stats().bytes, base);
}

#[test]
fn a_peer_cannot_make_its_ref_meet_one_of_this_node() {
    let b = node("b", Format::Phoenix);
    let mut client = BTreeMap::new();
    b.track("room", 1, Some("probe"), None).unwrap();
    follow(&b, &mut client);
    let probe = ref_number(client["probe"][0]["phx_ref"].as_str().unwrap());
    // The peer names the ref b gives its next local presence.
    let mut evil = Forger::new("evil", Format::Phoenix);
    b.cluster_ingest(&evil.snapshot(vec![phoenix(
        "room",
        &[(probe + 1, Some("mallory"))],
        vec![],
    )]))
    .unwrap();
    b.track("room", 2, Some("alice"), None).unwrap();
    follow(&b, &mut client);
    assert_eq!(client, list(&b, "room"));
    assert_eq!(
        client.keys().collect::<Vec<_>>(),
        ["alice", "mallory", "probe"]
    );
    let refs: HashSet<&str> = client
        .values()
        .flatten()
        .map(|m| m["phx_ref"].as_str().unwrap())
        .collect();
    assert_eq!(refs.len(), 3, "{client:?}");

    // Both leave in one poll window: both leaves reach the clients.
    b.cluster_ingest(&evil.send(Body::Delta(vec![phoenix("room", &[], vec![probe + 1])])))
        .unwrap();
    b.untrack("room", 2).unwrap();
    follow(&b, &mut client);
    assert_eq!(client.keys().collect::<Vec<_>>(), ["probe"], "no ghost");
    assert_eq!(client, list(&b, "room"));
    assert_eq!(b.counts("room").unwrap(), c(0, 1, 1));
}

#[test]
fn two_peers_may_use_the_same_refs() {
    let b = node("b", Format::Phoenix);
    let mut client = BTreeMap::new();
    let (mut x, mut y) = (
        Forger::new("x", Format::Phoenix),
        Forger::new("y", Format::Phoenix),
    );
    b.cluster_ingest(&x.snapshot(vec![phoenix("room", &[(7, Some("xavier"))], vec![])]))
        .unwrap();
    b.cluster_ingest(&y.snapshot(vec![phoenix("room", &[(7, Some("yvonne"))], vec![])]))
        .unwrap();
    follow(&b, &mut client);
    assert_eq!(client.keys().collect::<Vec<_>>(), ["xavier", "yvonne"]);
    assert_eq!(b.counts("room").unwrap(), c(0, 2, 2));
    b.cluster_ingest(&x.send(Body::Delta(vec![phoenix("room", &[], vec![7])])))
        .unwrap();
    follow(&b, &mut client);
    assert_eq!(client.keys().collect::<Vec<_>>(), ["yvonne"]);
    assert_eq!(client, list(&b, "room"));
}

#[test]
fn names_with_nul_are_refused_from_peers_and_from_the_host() {
    let b = node("b", Format::Phoenix);
    let mut evil = Forger::new("evil", Format::Phoenix);
    refused(
        &b,
        &evil.snapshot(vec![
            phoenix("fine", &[(1, Some("alice"))], vec![]),
            phoenix("a\0b", &[(2, Some("bob"))], vec![]),
        ]),
    );
    refused(
        &b,
        &evil.snapshot(vec![phoenix("fine", &[(3, Some("al\0ice"))], vec![])]),
    );
    assert_eq!(b.counts("fine").unwrap(), c(0, 0, 0));
    assert_eq!(b.stats().topics, 0);
    for err in [
        b.track("a\0b", 1, None, None).unwrap_err(),
        b.track("t", 1, Some("al\0ice"), None).unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    }
}

/// The keyed hashes of users a counts-format message adds, per topic.
fn added_hashes(msgs: &[Vec<u8>]) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for m in msgs {
        let msg = wire::decode(m, SECRET.as_bytes(), 1 << 20).unwrap();
        let topics = match msg.body {
            Body::Delta(t) | Body::Snapshot { topics: t, .. } => t,
            _ => continue,
        };
        for t in topics {
            if let Change::Counts { added, .. } = t.change {
                out.entry(t.topic).or_default().extend(added);
            }
        }
    }
    out
}

#[test]
fn a_bus_reader_cannot_follow_a_user_across_topics() {
    let (a, b) = (node("a", Format::Counts), node("b", Format::Counts));
    a.track("room:1", 1, Some("alice"), None).unwrap();
    a.track("room:2", 1, Some("alice"), None).unwrap();
    b.track("room:2", 5, Some("alice"), None).unwrap();
    b.track("room:2", 6, Some("bob"), None).unwrap();
    let sent = a.cluster_tick().unwrap();
    let hashes = added_hashes(&sent);
    assert_eq!(hashes["room:1"].len(), 1);
    assert_eq!(hashes["room:2"].len(), 1);
    assert_ne!(hashes["room:1"], hashes["room:2"]);
    // Within a topic the hash is the same on every node: alice counts once.
    for m in &sent {
        b.cluster_ingest(m).unwrap();
    }
    for m in b.cluster_tick().unwrap() {
        a.cluster_ingest(&m).unwrap();
    }
    assert_eq!(b.counts("room:2").unwrap(), c(0, 2, 3));
    assert_eq!(a.counts("room:2").unwrap(), c(0, 2, 3));
    assert_eq!(a.counts("room:1").unwrap(), c(0, 1, 1));
}
