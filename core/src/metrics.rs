//! The engine's figures (`Stats`, and in cluster mode `ClusterStats`) in the Prometheus
//! text exposition format (version 0.0.4), for a host's `/metrics` endpoint.
//!
//! This is the one place they are rendered: the C ABI and the bindings pass the text on.
//! `METRICS` lists every family with its type, labels and help; rendering walks it, and
//! `make header` writes the README's table of metrics from it.

use crate::cluster::ClusterStats;
use crate::config::Format;
use crate::shared::Stats;
use std::fmt::Write;

/// The type of a metric family, as its `# TYPE` line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Only grows (until the engine is created again); its name ends in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
}

impl MetricKind {
    /// `"counter"` or `"gauge"`.
    pub const fn name(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        }
    }
}

/// One metric family of [`Engine::metrics`](crate::Engine::metrics).
#[derive(Clone, Copy, Debug)]
pub struct Metric {
    /// The family's name; a counter's ends in `_total`.
    pub name: &'static str,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// The names of its labels, if it has any.
    pub labels: &'static [&'static str],
    /// Its `# HELP` text.
    pub help: &'static str,
    source: Source,
}

impl Metric {
    /// Whether the family appears in cluster mode only.
    pub const fn cluster_only(&self) -> bool {
        matches!(self.source, Source::Cluster(_))
    }
}

/// What a family's samples are made of.
#[derive(Clone, Copy, Debug)]
enum Source {
    Engine(fn(&EngineFigures<'_>, &mut Samples<'_>)),
    Cluster(fn(&ClusterStats, &mut Samples<'_>)),
}

/// The figures of every engine.
struct EngineFigures<'a> {
    stats: &'a Stats,
    format: Format,
}

/// Writes the sample lines of one family.
struct Samples<'a> {
    name: &'static str,
    out: &'a mut String,
}

impl Samples<'_> {
    fn value(&mut self, v: u64) {
        self.labelled(&[], v);
    }

    fn labelled(&mut self, labels: &[(&str, &str)], v: u64) {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (name, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(name);
                self.out.push_str("=\"");
                escape(value, true, self.out);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {v}");
    }
}

/// The exposition format's escapes: a backslash and a line feed in help texts, and also
/// a double quote in label values (a node name may hold any of them).
fn escape(text: &str, quote: bool, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

const fn counter(name: &'static str, help: &'static str, source: Source) -> Metric {
    Metric {
        name,
        kind: MetricKind::Counter,
        labels: &[],
        help,
        source,
    }
}

const fn gauge(name: &'static str, help: &'static str, source: Source) -> Metric {
    Metric {
        name,
        kind: MetricKind::Gauge,
        labels: &[],
        help,
        source,
    }
}

/// Every metric family, in the order `Engine::metrics` writes them. Those of the cluster
/// (`cluster_only`) appear for a cluster engine only.
pub const METRICS: &[Metric] = &[
    Metric {
        name: "presence_info",
        kind: MetricKind::Gauge,
        labels: &["version", "format"],
        help: "Always 1; its labels name the library version and the wire format.",
        source: Source::Engine(|f, s| {
            s.labelled(
                &[("version", crate::VERSION), ("format", f.format.name())],
                1,
            );
        }),
    },
    gauge(
        "presence_topics",
        "Topics held; a topic is dropped at the poll after its last presence leaves.",
        Source::Engine(|f, s| s.value(f.stats.topics)),
    ),
    gauge(
        "presence_presences",
        "Presences tracked on this node (other nodes count theirs).",
        Source::Engine(|f, s| s.value(f.stats.presences)),
    ),
    gauge(
        "presence_heap_bytes",
        "Estimated heap bytes of the engine's tables and strings, cluster snapshots being \
         received included.",
        Source::Engine(|f, s| s.value(f.stats.bytes)),
    ),
    gauge(
        "presence_topics_pending",
        "Topics changed since the last poll: how many entries the next poll may return.",
        Source::Engine(|f, s| s.value(f.stats.topics_pending)),
    ),
    counter(
        "presence_polls_total",
        "Polls taken, empty ones included.",
        Source::Engine(|f, s| s.value(f.stats.polls)),
    ),
    counter(
        "presence_expired_total",
        "Presences with a time to live that this node removed because it ran out (untracks \
         and renewals are not counted).",
        Source::Engine(|f, s| s.value(f.stats.expired)),
    ),
    Metric {
        name: "presence_cluster_info",
        kind: MetricKind::Gauge,
        labels: &["node", "incarnation"],
        help: "Always 1; its labels name this node and its incarnation, which changes when \
               the node restarts or rejoins.",
        source: Source::Cluster(|c, s| {
            let incarnation = c.incarnation.to_string();
            s.labelled(&[("node", &c.node), ("incarnation", &incarnation)], 1);
        }),
    },
    gauge(
        "presence_cluster_link_up",
        "1 while this node can hear the bus; 0 while its Redis link is connecting, down or \
         unresponsive (always 1 over the host's own bus).",
        Source::Cluster(|c, s| s.value(u64::from(c.link_up))),
    ),
    Metric {
        name: "presence_cluster_nodes",
        kind: MetricKind::Gauge,
        labels: &["state"],
        help: "Other nodes held: live, or stale (kept from before this node's Redis link \
               went down, until it is back or stale_after_ms has passed).",
        source: Source::Cluster(|c, s| {
            s.labelled(&[("state", "live")], c.nodes.saturating_sub(c.stale_nodes));
            s.labelled(&[("state", "stale")], c.stale_nodes);
        }),
    },
    counter(
        "presence_cluster_nodes_dropped_total",
        "Nodes dropped: silent for down_after_ms, held stale past stale_after_ms, or gone \
         after announcing their departure.",
        Source::Cluster(|c, s| s.value(c.nodes_dropped)),
    ),
    counter(
        "presence_cluster_messages_sent_total",
        "Replication messages this node handed out to publish.",
        Source::Cluster(|c, s| s.value(c.messages_sent)),
    ),
    counter(
        "presence_cluster_sent_bytes_total",
        "Bytes of the replication messages this node handed out.",
        Source::Cluster(|c, s| s.value(c.bytes_sent)),
    ),
    counter(
        "presence_cluster_messages_received_total",
        "Replication messages this node was given, its own echoes and refused ones included.",
        Source::Cluster(|c, s| s.value(c.messages_received)),
    ),
    counter(
        "presence_cluster_received_bytes_total",
        "Bytes of the replication messages this node was given.",
        Source::Cluster(|c, s| s.value(c.bytes_received)),
    ),
    Metric {
        name: "presence_cluster_messages_rejected_total",
        kind: MetricKind::Counter,
        labels: &["cause"],
        help: "Replication messages refused, by cause: unauthenticated (the HMAC did not \
               match), malformed (undecodable, of the other format, or over a bound), \
               oversized (over max_message_bytes), replayed (a sequence number or \
               incarnation already seen).",
        source: Source::Cluster(|c, s| {
            s.labelled(&[("cause", "unauthenticated")], c.rejected_unauthenticated);
            s.labelled(&[("cause", "malformed")], c.rejected_malformed);
            s.labelled(&[("cause", "oversized")], c.rejected_oversized);
            s.labelled(&[("cause", "replayed")], c.rejected_replayed);
        }),
    },
    counter(
        "presence_cluster_snapshots_sent_total",
        "Full snapshots this node sent: its first, the periodic ones, and those peers asked \
         for.",
        Source::Cluster(|c, s| s.value(c.snapshots_sent)),
    ),
    counter(
        "presence_cluster_snapshot_requests_sent_total",
        "Snapshot requests this node sent after a gap in a peer's messages.",
        Source::Cluster(|c, s| s.value(c.snapshot_requests_sent)),
    ),
];

/// The text of every family of `METRICS` that applies: those of the cluster only when
/// `cluster` is given.
pub(crate) fn render(format: Format, stats: &Stats, cluster: Option<&ClusterStats>) -> String {
    let engine = EngineFigures { stats, format };
    let mut out = String::with_capacity(4096);
    for m in METRICS {
        if m.cluster_only() && cluster.is_none() {
            continue;
        }
        out.push_str("# HELP ");
        out.push_str(m.name);
        out.push(' ');
        escape(m.help, false, &mut out);
        out.push('\n');
        let _ = writeln!(out, "# TYPE {} {}", m.name, m.kind.name());
        let mut samples = Samples {
            name: m.name,
            out: &mut out,
        };
        match (m.source, cluster) {
            (Source::Engine(f), _) => f(&engine, &mut samples),
            (Source::Cluster(f), Some(c)) => f(c, &mut samples),
            (Source::Cluster(_), None) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> Stats {
        Stats {
            topics: 3,
            presences: 7,
            bytes: 4096,
            topics_pending: 2,
            polls: 5,
            expired: 6,
        }
    }

    /// The sample lines of `text`, without the comments.
    fn samples(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn a_single_node_has_the_engine_families_only() {
        let text = render(Format::Counts, &stats(), None);
        assert_eq!(
            samples(&text),
            [
                &format!(
                    "presence_info{{version=\"{}\",format=\"counts\"}} 1",
                    crate::VERSION
                ) as &str,
                "presence_topics 3",
                "presence_presences 7",
                "presence_heap_bytes 4096",
                "presence_topics_pending 2",
                "presence_polls_total 5",
                "presence_expired_total 6",
            ]
        );
        assert!(!text.contains("presence_cluster"), "{text}");
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn each_family_has_its_help_and_type_before_its_samples() {
        let cluster = ClusterStats {
            node: "a".into(),
            ..ClusterStats::default()
        };
        let text = render(Format::Phoenix, &stats(), Some(&cluster));
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        for m in METRICS {
            assert!(
                lines[i].starts_with(&format!("# HELP {} ", m.name)),
                "{m:?}"
            );
            assert_eq!(lines[i + 1], format!("# TYPE {} {}", m.name, m.kind.name()));
            i += 2;
            let mut n = 0;
            while i < lines.len() && !lines[i].starts_with('#') {
                let name = lines[i].split(['{', ' ']).next().unwrap();
                assert_eq!(name, m.name, "a sample of {} under {}", name, m.name);
                i += 1;
                n += 1;
            }
            assert!(n > 0, "{} has no sample", m.name);
        }
        assert_eq!(i, lines.len());
    }

    #[test]
    fn names_follow_the_prometheus_conventions() {
        let mut names: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len(), "a family name is repeated");
        for m in METRICS {
            assert!(m.name.starts_with("presence_"), "{}", m.name);
            assert!(
                m.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                m.name
            );
            assert_eq!(
                m.name.ends_with("_total"),
                m.kind == MetricKind::Counter,
                "{}: counters, and only they, end in _total",
                m.name
            );
            assert!(!m.help.is_empty() && !m.help.contains('\n'), "{}", m.name);
        }
    }

    #[test]
    fn cluster_figures_map_to_their_families() {
        let cluster = ClusterStats {
            node: "web-1".into(),
            incarnation: u64::MAX,
            nodes: 5,
            stale_nodes: 2,
            link_up: false,
            messages_sent: 11,
            bytes_sent: 1100,
            messages_received: 13,
            bytes_received: 1300,
            rejected_unauthenticated: 1,
            rejected_malformed: 2,
            rejected_oversized: 3,
            rejected_replayed: 4,
            snapshots_sent: 6,
            snapshot_requests_sent: 8,
            nodes_dropped: 9,
        };
        let text = render(Format::Counts, &stats(), Some(&cluster));
        let s = samples(&text);
        for want in [
            "presence_cluster_info{node=\"web-1\",incarnation=\"18446744073709551615\"} 1",
            "presence_cluster_link_up 0",
            "presence_cluster_nodes{state=\"live\"} 3",
            "presence_cluster_nodes{state=\"stale\"} 2",
            "presence_cluster_nodes_dropped_total 9",
            "presence_cluster_messages_sent_total 11",
            "presence_cluster_sent_bytes_total 1100",
            "presence_cluster_messages_received_total 13",
            "presence_cluster_received_bytes_total 1300",
            "presence_cluster_messages_rejected_total{cause=\"unauthenticated\"} 1",
            "presence_cluster_messages_rejected_total{cause=\"malformed\"} 2",
            "presence_cluster_messages_rejected_total{cause=\"oversized\"} 3",
            "presence_cluster_messages_rejected_total{cause=\"replayed\"} 4",
            "presence_cluster_snapshots_sent_total 6",
            "presence_cluster_snapshot_requests_sent_total 8",
        ] {
            assert!(s.contains(&want), "no {want:?} in\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let cluster = ClusterStats {
            node: "a\"b\\c\nd".into(),
            ..ClusterStats::default()
        };
        let text = render(Format::Counts, &stats(), Some(&cluster));
        assert!(
            text.contains("presence_cluster_info{node=\"a\\\"b\\\\c\\nd\",incarnation=\"0\"} 1\n"),
            "{text}"
        );
        let mut help = String::new();
        escape("a \\ and a\nnew line, \"quoted\"", false, &mut help);
        assert_eq!(help, "a \\\\ and a\\nnew line, \"quoted\"");
    }
}
