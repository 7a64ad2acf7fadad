//! The first step of ingest: a message's bytes become a `Message` whose every claim is
//! within this node's bounds, or a refusal counted in the stats. Nothing here changes
//! the node or the engine.

use super::wire::{self, Body, Message, Reject};
use super::ClusterStats;
use crate::config::ClusterConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::shared::Shared;
use std::collections::HashSet;

/// Checks size and tag, then decodes; counts a refusal in `stats`.
pub(super) fn decode(
    cfg: &ClusterConfig,
    stats: &mut ClusterStats,
    bytes: &[u8],
) -> Result<Message> {
    wire::decode(bytes, cfg.secret.as_bytes(), cfg.max_message_bytes).map_err(|r| match r {
        Reject::Oversized => refuse(&mut stats.rejected_oversized, "message is too large"),
        Reject::Unauthenticated => refuse(
            &mut stats.rejected_unauthenticated,
            "message failed authentication",
        ),
        Reject::Malformed => refuse(&mut stats.rejected_malformed, "message is malformed"),
    })
}

/// Checks everything a message claims against this node's own bounds, as for local
/// input: sequence numbers, topic names and keys (non-empty, no NUL, within the byte
/// limits, no key equal to `viewers_key`), metas, and counts (viewers within connections,
/// connections within `max_presences`). Metas are trimmed as local ones are. A delta
/// names each topic once.
pub(super) fn check_message(shared: &Shared, msg: &mut Message) -> Result<()> {
    let malformed =
        |why: &str| Error::new(ErrorKind::Rejected, format!("message is malformed: {why}"));
    // Requests and departures carry no format-specific body.
    let neutral = matches!(
        msg.body,
        Body::SnapshotRequest { .. } | Body::Leave | Body::Heartbeat
    );
    if msg.format != shared.config.format && !neutral {
        return Err(malformed("of the other wire format"));
    }
    if msg.seq == u64::MAX {
        // No sender gets there, and nothing could follow it.
        return Err(malformed("sequence number out of range"));
    }
    let (topics, delta) = match &mut msg.body {
        Body::Delta(topics) => (topics, true),
        Body::Snapshot { topics, .. } | Body::SnapshotFor { topics, .. } => (topics, false),
        _ => return Ok(()),
    };
    let mut named = HashSet::new();
    for t in topics.iter_mut() {
        shared
            .check_topic(&t.topic)
            .map_err(|e| malformed(e.message()))?;
        if delta && !named.insert(t.topic.clone()) {
            return Err(malformed("a delta names a topic twice"));
        }
        t.change.check(shared).map_err(|why| malformed(&why))?;
    }
    Ok(())
}

/// A peer's claims are bounded as local input is.
impl crate::format::Bounds for Shared {
    fn max_presences(&self) -> usize {
        self.config.max_presences
    }

    fn check_key(&self, key: &str) -> std::result::Result<(), String> {
        Shared::check_key(self, key).map_err(|e| e.message().to_owned())
    }

    fn check_meta<'m>(&self, meta: &'m str) -> std::result::Result<&'m str, String> {
        Shared::check_meta(self, Some(meta)).map_err(|e| e.message().to_owned())
    }
}

/// An error of kind `Rejected`, counted in `counter`.
pub(super) fn refuse(counter: &mut u64, why: &str) -> Error {
    *counter += 1;
    Error::new(ErrorKind::Rejected, why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Format};
    use crate::format::Change;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn counts(topic: &str, viewers: u64, connections: u64) -> wire::TopicChange {
        wire::TopicChange {
            topic: topic.into(),
            change: Change::Counts {
                viewers,
                connections,
                added: Vec::new(),
                removed: Vec::new(),
            },
        }
    }

    fn delta(topics: Vec<wire::TopicChange>) -> Message {
        Message {
            format: Format::Counts,
            node: "b".into(),
            incarnation: 1,
            seq: 1,
            body: Body::Delta(topics),
        }
    }

    fn engine_state() -> Shared {
        Shared::new(Config::default(), None).unwrap()
    }

    #[test]
    fn decoding_counts_each_refusal_by_its_cause() {
        let cfg = ClusterConfig::new("a", SECRET);
        let mut stats = ClusterStats::default();
        let bytes = wire::encode(&delta(vec![counts("t", 0, 1)]), SECRET.as_bytes());
        assert!(decode(&cfg, &mut stats, &bytes).is_ok());

        let mut forged = bytes.clone();
        *forged.last_mut().unwrap() ^= 1;
        let e = decode(&cfg, &mut stats, &forged).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert_eq!(stats.rejected_unauthenticated, 1);

        let small = ClusterConfig {
            max_message_bytes: bytes.len() - 1,
            ..cfg
        };
        decode(&small, &mut stats, &bytes).unwrap_err();
        assert_eq!(stats.rejected_oversized, 1);
        assert_eq!(stats.rejected_malformed, 0);
    }

    #[test]
    fn claims_beyond_this_nodes_bounds_are_malformed() {
        let shared = engine_state();
        assert!(check_message(&shared, &mut delta(vec![counts("t", 1, 2)])).is_ok());
        for (msg, why) in [
            (delta(vec![counts("t", 3, 2)]), "counts out of bounds"),
            (
                delta(vec![counts("t", 0, 1), counts("t", 0, 2)]),
                "names a topic twice",
            ),
            (delta(vec![counts("", 0, 1)]), "topic must not be empty"),
            (
                Message {
                    format: Format::Phoenix,
                    ..delta(vec![])
                },
                "of the other wire format",
            ),
            (
                Message {
                    seq: u64::MAX,
                    ..delta(vec![])
                },
                "sequence number out of range",
            ),
        ] {
            let mut msg = msg;
            let e = check_message(&shared, &mut msg).unwrap_err();
            assert!(e.message().contains(why), "{} vs {why}", e.message());
        }
    }

    #[test]
    fn messages_without_a_format_pass_either_format() {
        let shared = engine_state();
        let mut msg = Message {
            format: Format::Phoenix,
            body: Body::Heartbeat,
            ..delta(vec![])
        };
        assert!(check_message(&shared, &mut msg).is_ok());
    }
}
