//! `Engine::metrics`: the Prometheus text format of `stats()` and `cluster_stats()`, read
//! back by a strict parser of the exposition format and compared with them, on one node
//! and on the nodes of a cluster (over an in-test bus).

mod support;

use presence_core::{ClusterConfig, Config, Engine, Format, MetricKind, METRICS};
use std::collections::BTreeMap;
use support::bus::echoed_round;

/// One family: its type, and its samples by their labels (`name="value"` pairs, sorted).
#[derive(Debug, Default)]
struct Family {
    kind: String,
    help: String,
    samples: BTreeMap<Vec<(String, String)>, u64>,
}

/// Parses the text format, failing on anything a scraper would refuse or that this
/// engine must not write: a sample before its family's HELP and TYPE, a family seen twice,
/// a sample of another name, a label value with a bad escape, a line without a newline.
fn parse(text: &str) -> BTreeMap<String, Family> {
    assert!(text.ends_with('\n'), "the text ends with a line feed");
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(
                !families.contains_key(name),
                "{name} appears twice in\n{text}"
            );
            families.insert(
                name.to_owned(),
                Family {
                    help: help.to_owned(),
                    ..Family::default()
                },
            );
            current = Some(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert_eq!(Some(name), current.as_deref(), "TYPE right after HELP");
            let f = families.get_mut(name).unwrap();
            assert!(f.kind.is_empty() && f.samples.is_empty());
            f.kind = kind.to_owned();
        } else {
            assert!(!line.starts_with('#'), "an unexpected comment: {line}");
            let name = current.as_deref().expect("a sample after its HELP");
            let (series, value) = line.rsplit_once(' ').expect("series value");
            let value: u64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
            let labels = match series.strip_prefix(name) {
                Some("") => Vec::new(),
                Some(rest) => labels(
                    rest.strip_prefix('{')
                        .and_then(|r| r.strip_suffix('}'))
                        .unwrap_or_else(|| panic!("{line}: labels in braces")),
                ),
                None => panic!("{line}: a sample of another family than {name}"),
            };
            let f = families.get_mut(name).unwrap();
            assert!(!f.kind.is_empty(), "{line}: a sample before TYPE");
            assert!(
                f.samples.insert(labels, value).is_none(),
                "{line}: a series twice"
            );
        }
    }
    families
}

/// `a="x",b="y\"z"` into sorted pairs, undoing the escapes.
fn labels(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while chars.peek().is_some() {
        let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "{text}");
        let mut value = String::new();
        loop {
            match chars.next().expect("a closing quote") {
                '"' => break,
                '\\' => match chars.next() {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    other => panic!("a bad escape {other:?} in {text}"),
                },
                c => value.push(c),
            }
        }
        out.push((name, value));
        match chars.next() {
            None => break,
            Some(',') => {}
            Some(c) => panic!("{c:?} after a label value in {text}"),
        }
    }
    out.sort();
    out
}

fn value(families: &BTreeMap<String, Family>, name: &str) -> u64 {
    labelled(families, name, &[])
}

fn labelled(families: &BTreeMap<String, Family>, name: &str, want: &[(&str, &str)]) -> u64 {
    let f = families
        .get(name)
        .unwrap_or_else(|| panic!("no family {name}"));
    let mut key: Vec<(String, String)> = want
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    key.sort();
    *f.samples
        .get(&key)
        .unwrap_or_else(|| panic!("{name} has no series {want:?}: {f:?}"))
}

/// Each family of the text is one of `METRICS` with its type and help, in its order.
fn check_families(families: &BTreeMap<String, Family>, text: &str, cluster: bool) {
    let expected: Vec<&str> = METRICS
        .iter()
        .filter(|m| cluster || !m.cluster_only())
        .map(|m| m.name)
        .collect();
    let in_text: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(in_text, expected);
    for m in METRICS.iter().filter(|m| cluster || !m.cluster_only()) {
        let f = &families[m.name];
        let kind = match m.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        };
        assert_eq!(f.kind, kind, "{}", m.name);
        assert_eq!(f.help, m.help, "{}", m.name);
        for labels in f.samples.keys() {
            let mut names: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
            let mut declared = m.labels.to_vec();
            names.sort_unstable();
            declared.sort_unstable();
            assert_eq!(names, declared, "{}", m.name);
        }
    }
}

#[test]
fn a_single_node_shows_its_stats_and_its_polls() {
    let engine = Engine::new(Config {
        format: Format::Phoenix,
        ..Config::default()
    })
    .unwrap();
    let text = engine.metrics();
    let families = parse(&text);
    check_families(&families, &text, false);
    assert!(!text.contains("presence_cluster"), "{text}");
    assert_eq!(
        labelled(
            &families,
            "presence_info",
            &[("version", presence_core::VERSION), ("format", "phoenix")]
        ),
        1
    );
    assert_eq!(value(&families, "presence_polls_total"), 0);

    for conn in 0..30u64 {
        engine
            .track(&format!("room:{}", conn % 4), conn, Some("u"), None)
            .unwrap();
    }
    engine.poll_diff();
    engine.untrack_conn(0);
    engine.untrack_conn(4);
    engine.poll_diff();
    engine.poll_diff(); // an empty poll counts too
    engine.track("room:9", 99, None, None).unwrap();

    let text = engine.metrics();
    let s = engine.stats();
    let families = parse(&text);
    assert_eq!(s.polls, 3);
    assert_eq!(value(&families, "presence_polls_total"), s.polls);
    assert_eq!(value(&families, "presence_topics"), s.topics);
    assert_eq!(value(&families, "presence_presences"), s.presences);
    assert_eq!(value(&families, "presence_heap_bytes"), s.bytes);
    assert_eq!(
        value(&families, "presence_topics_pending"),
        s.topics_pending
    );
    assert_eq!((s.topics, s.presences, s.topics_pending), (5, 29, 1));
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
fn a_cluster_node_shows_its_cluster_stats() {
    let (a, b, c) = (node("a"), node("b\"\\ \n"), node("c"));
    a.track("video:1", 1, Some("alice"), None).unwrap();
    b.track("video:1", 1, Some("bob"), None).unwrap();
    c.track("video:2", 1, None, None).unwrap();
    for _ in 0..3 {
        echoed_round(&[&a, &b, &c]);
    }
    assert!(a.cluster_ingest(b"not a message of the cluster").is_err());
    assert!(a.cluster_ingest(&[0; 300_000]).is_err());
    // c leaves: a drops it at once.
    let bye = c.cluster_leave().unwrap();
    a.cluster_ingest(&bye).unwrap();
    a.poll_diff();

    for (n, name) in [(&a, "a"), (&b, "b\"\\ \n")] {
        let text = n.metrics();
        let cs = n.cluster_stats().unwrap();
        let s = n.stats();
        let families = parse(&text);
        check_families(&families, &text, true);
        let incarnation = cs.incarnation.to_string();
        assert_eq!(
            labelled(
                &families,
                "presence_cluster_info",
                &[("node", name), ("incarnation", &incarnation)]
            ),
            1
        );
        assert_eq!(value(&families, "presence_cluster_link_up"), 1);
        assert_eq!(
            labelled(&families, "presence_cluster_nodes", &[("state", "live")]),
            cs.nodes - cs.stale_nodes
        );
        assert_eq!(
            labelled(&families, "presence_cluster_nodes", &[("state", "stale")]),
            cs.stale_nodes
        );
        for (family, want) in [
            ("presence_cluster_nodes_dropped_total", cs.nodes_dropped),
            ("presence_cluster_messages_sent_total", cs.messages_sent),
            ("presence_cluster_sent_bytes_total", cs.bytes_sent),
            (
                "presence_cluster_messages_received_total",
                cs.messages_received,
            ),
            ("presence_cluster_received_bytes_total", cs.bytes_received),
            ("presence_cluster_snapshots_sent_total", cs.snapshots_sent),
            (
                "presence_cluster_snapshot_requests_sent_total",
                cs.snapshot_requests_sent,
            ),
            ("presence_topics", s.topics),
            ("presence_presences", s.presences),
            ("presence_polls_total", s.polls),
        ] {
            assert_eq!(value(&families, family), want, "{family}");
        }
        for (cause, want) in [
            ("unauthenticated", cs.rejected_unauthenticated),
            ("malformed", cs.rejected_malformed),
            ("oversized", cs.rejected_oversized),
            ("replayed", cs.rejected_replayed),
        ] {
            assert_eq!(
                labelled(
                    &families,
                    "presence_cluster_messages_rejected_total",
                    &[("cause", cause)]
                ),
                want,
                "{cause}"
            );
        }
    }
    // What happened shows in a's figures.
    let families = parse(&a.metrics());
    assert_eq!(
        labelled(&families, "presence_cluster_nodes", &[("state", "live")]),
        1
    );
    assert_eq!(value(&families, "presence_cluster_nodes_dropped_total"), 1);
    assert_eq!(value(&families, "presence_polls_total"), 1);
    assert!(value(&families, "presence_cluster_messages_received_total") >= 9);
    for (cause, want) in [("unauthenticated", 1), ("oversized", 1), ("replayed", 0)] {
        assert_eq!(
            labelled(
                &families,
                "presence_cluster_messages_rejected_total",
                &[("cause", cause)]
            ),
            want,
            "{cause}"
        );
    }
    // A node counts its own presences; its counts are the cluster's.
    assert_eq!(value(&families, "presence_presences"), 1);
    assert_eq!(a.counts("video:1").unwrap().users, 2);
}

#[test]
fn expiries_show_in_their_counter() {
    let clock = std::sync::Arc::new(presence_core::ManualClock::default());
    let engine = Engine::with_clock(Config::default(), clock.clone()).unwrap();
    let ttl = std::time::Duration::from_millis(100);
    for conn in 0..5u64 {
        engine.track_ttl("inbox", conn, None, None, ttl).unwrap();
    }
    engine.untrack("inbox", 0).unwrap();
    assert_eq!(
        value(&parse(&engine.metrics()), "presence_expired_total"),
        0
    );
    clock.advance(ttl);
    engine.poll_diff();
    let text = engine.metrics();
    let families = parse(&text);
    check_families(&families, &text, false);
    assert_eq!(engine.stats().expired, 4);
    assert_eq!(value(&families, "presence_expired_total"), 4);
}
