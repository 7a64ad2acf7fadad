//! Batch reads: `counts_many` gives, for each topic asked, what `counts` gives, on one node
//! and across a cluster, and refuses a bad name as `counts` does, naming its position.

mod support;

use presence_core::{ClusterConfig, Config, Counts, Engine, ErrorKind, Format};
use support::bus::settle;
use support::Rng;

fn c(viewers: u64, users: u64, connections: u64) -> Counts {
    Counts {
        viewers,
        users,
        connections,
    }
}

#[test]
fn each_topic_gets_what_counts_gives_unknown_ones_zeros() {
    for format in [Format::Counts, Format::Phoenix] {
        let engine = Engine::new(Config {
            format,
            ..Config::default()
        })
        .unwrap();
        let mut rng = Rng(7);
        for conn in 0..2000u64 {
            let topic = format!("t{}", rng.below(40));
            let key = rng.chance(70).then(|| format!("u{}", rng.below(300)));
            let _ = engine.track(&topic, conn, key.as_deref(), None);
            if rng.chance(20) {
                engine.untrack_conn(rng.below(conn + 1));
            }
            if rng.chance(2) {
                engine.poll_diff();
            }
        }
        // Known topics, unknown ones, and repeats, in an order of their own.
        let asked: Vec<String> = (0..200)
            .map(|_| format!("t{}", rng.below(60)))
            .chain(["nowhere".to_owned(), "t0".to_owned()])
            .collect();
        let many = engine.counts_many(&asked).unwrap();
        assert_eq!(many.len(), asked.len());
        for (topic, got) in asked.iter().zip(&many) {
            assert_eq!(*got, engine.counts(topic).unwrap(), "{topic} ({format:?})");
        }
        assert_eq!(many[asked.len() - 2], Counts::default());
        assert!(many.iter().any(|c| c.connections > 0));
    }
}

#[test]
fn no_topics_give_no_counts() {
    let engine = Engine::new(Config::default()).unwrap();
    assert_eq!(engine.counts_many::<&str>(&[]).unwrap(), []);
}

#[test]
fn the_counts_are_live_not_as_of_the_last_poll() {
    let engine = Engine::new(Config::default()).unwrap();
    engine.track("a", 1, Some("alice"), None).unwrap();
    engine.poll_diff();
    engine.track("a", 2, None, None).unwrap();
    engine.track("b", 2, Some("bob"), None).unwrap();
    assert_eq!(
        engine.counts_many(&["a", "b", "c"]).unwrap(),
        [c(1, 1, 2), c(0, 1, 1), c(0, 0, 0)]
    );
    engine.untrack_conn(2);
    assert_eq!(
        engine
            .counts_many(&["b".to_owned(), "a".to_owned()])
            .unwrap(),
        [c(0, 0, 0), c(0, 1, 1)]
    );
}

#[test]
fn a_bad_name_fails_the_call_and_is_named_by_its_position() {
    let engine = Engine::new(Config {
        max_topic_bytes: 8,
        ..Config::default()
    })
    .unwrap();
    engine.track("a", 1, None, None).unwrap();
    let cases: [(&[&str], ErrorKind, usize); 4] = [
        (&["a", "b", ""], ErrorKind::InvalidArgument, 2),
        (&["a\0b", "a"], ErrorKind::InvalidArgument, 0),
        (&["a", "much-too-long"], ErrorKind::TooLong, 1),
        // The first bad name is the error, whatever follows it.
        (&["a", "", "much-too-long"], ErrorKind::InvalidArgument, 1),
    ];
    for (topics, kind, index) in cases {
        let e = engine.counts_many(topics).unwrap_err();
        assert_eq!(e.kind(), kind, "{topics:?}: {e}");
        assert_eq!(e.index(), Some(index), "{topics:?}: {e}");
        assert!(
            e.message().starts_with(&format!("topics[{index}]: ")),
            "{topics:?}: {e}"
        );
        // The same refusal as a call of `counts` on that name, with the same kind.
        assert_eq!(engine.counts(topics[index]).unwrap_err().kind(), kind);
    }
    // Errors of calls on one item carry no position.
    assert_eq!(engine.counts("").unwrap_err().index(), None);
}

const SECRET: &str = "a test secret of some length";

fn node(name: &str) -> Engine {
    Engine::new(Config {
        cluster: Some(ClusterConfig::new(name, SECRET)),
        ..Config::default()
    })
    .unwrap()
}

#[test]
fn a_cluster_engine_counts_the_whole_cluster() {
    let (a, b) = (node("a"), node("b"));
    a.track("video:1", 1, Some("alice"), None).unwrap();
    a.track("video:1", 2, None, None).unwrap();
    b.track("video:1", 1, Some("alice"), None).unwrap();
    b.track("video:1", 2, Some("bob"), None).unwrap();
    b.track("video:2", 3, None, None).unwrap();
    settle(&[&a, &b]);
    let asked = ["video:1", "video:2", "video:3"];
    let want = [c(1, 2, 4), c(1, 0, 1), c(0, 0, 0)];
    for n in [&a, &b] {
        let many = n.counts_many(&asked).unwrap();
        assert_eq!(many, want);
        for (topic, got) in asked.iter().zip(&many) {
            assert_eq!(*got, n.counts(topic).unwrap());
        }
    }
    // b leaves: its presences go from a's answer at once.
    let bye = b.cluster_leave().unwrap();
    a.cluster_ingest(&bye).unwrap();
    assert_eq!(
        a.counts_many(&asked).unwrap(),
        [c(1, 1, 2), c(0, 0, 0), c(0, 0, 0)]
    );
}
