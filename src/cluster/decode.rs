//! The first step of ingest: a message's bytes become a `Message` whose every claim is
//! within this node's bounds, or a refusal counted in the stats. Nothing here changes
//! the node or the engine.

use super::wire::{self, Body, Change, Message, Reject};
use super::ClusterStats;
use crate::config::{ClusterConfig, Format};
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
    let phoenix = shared.config.format == Format::Phoenix;
    // Requests and departures carry no format-specific body.
    let neutral = matches!(
        msg.body,
        Body::SnapshotRequest { .. } | Body::Leave | Body::Heartbeat
    );
    if msg.phoenix != phoenix && !neutral {
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
        match &mut t.change {
            Change::Counts {
                viewers,
                connections,
                ..
            } => {
                if viewers > connections || *connections > shared.config.max_presences as u64 {
                    return Err(malformed("counts out of bounds"));
                }
            }
            Change::Phoenix { joins, .. } => {
                for w in joins {
                    if let Some(k) = &w.key {
                        shared.check_key(k).map_err(|e| malformed(e.message()))?;
                    }
                    let trimmed = shared
                        .check_meta(Some(&w.meta))
                        .map_err(|e| malformed(e.message()))?;
                    if trimmed.len() != w.meta.len() {
                        w.meta = trimmed.to_owned();
                    }
                }
            }
        }
    }
    Ok(())
}

/// An error of kind `Rejected`, counted in `counter`.
pub(super) fn refuse(counter: &mut u64, why: &str) -> Error {
    *counter += 1;
    Error::new(ErrorKind::Rejected, why)
}
