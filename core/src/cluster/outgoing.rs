//! What this node publishes: its changes since the last tick and its full state, read
//! from the topic shards, cut into message-sized pieces.

use super::wire::{self, Change, TopicChange, WireEntry};
use crate::shard::lock;
use crate::shared::Shared;
use crate::topic::{Entry, Topic};
use std::sync::atomic::Ordering;

/// This node's changes since the last tick, topic by topic (vacant topics are dropped),
/// and with `state`, every topic where this node has presences, in full, as of those
/// changes: each shard is read in one hold of its lock, so that no change falls between
/// the two or appears in both.
pub(super) fn collect(
    shared: &Shared,
    phoenix: bool,
    state: bool,
) -> (Vec<TopicChange>, Option<Vec<TopicChange>>) {
    let mut out = Vec::new();
    let mut full = state.then(Vec::new);
    for shard in shared.topics.iter() {
        let mut topics = lock(shard);
        drain_shard(&mut topics, shared, phoenix, &mut out);
        if let Some(full) = &mut full {
            for slot in topics.slots() {
                if let Some(change) = topics.get(slot).and_then(|t| full_change(t, phoenix)) {
                    full.push(change);
                }
            }
        }
    }
    (out, full)
}

/// A topic's whole local part, or `None` where this node has no presence in it.
fn full_change(t: &Topic, phoenix: bool) -> Option<TopicChange> {
    if t.local_counts().connections == 0 {
        return None;
    }
    let local = t.local_counts();
    let change = if phoenix {
        Change::Phoenix {
            joins: t.local_entries().map(wire_entry).collect(),
            leaves: Vec::new(),
        }
    } else {
        Change::Counts {
            viewers: local.viewers,
            connections: local.connections,
            added: t.local_users().collect(),
            removed: Vec::new(),
        }
    };
    Some(TopicChange {
        topic: t.name().to_string(),
        change,
    })
}

/// Drains one shard's outboxes into `out`.
fn drain_shard(
    topics: &mut crate::shard::TopicShard,
    shared: &Shared,
    phoenix: bool,
    out: &mut Vec<TopicChange>,
) {
    for slot in std::mem::take(&mut topics.outbox) {
        let Some(t) = topics.get_mut(slot) else {
            continue;
        };
        if let Some(change) = drain_outbox(t, phoenix) {
            out.push(TopicChange {
                topic: t.name().to_string(),
                change,
            });
        }
        if t.is_vacant() && !t.is_dirty() {
            topics.remove(slot);
            shared.topic_count.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn drain_outbox(t: &mut Topic, phoenix: bool) -> Option<Change> {
    let mut o = t.take_outbox()?;
    let local = t.local_counts();
    Some(if phoenix {
        let joins = o
            .joined
            .drain()
            .filter_map(|(r, conn)| t.local_entry(conn, r).map(wire_entry))
            .collect();
        Change::Phoenix {
            joins,
            leaves: o.left.drain().collect(),
        }
    } else {
        Change::Counts {
            viewers: local.viewers,
            connections: local.connections,
            added: o.added.drain().collect(),
            removed: o.removed.drain().collect(),
        }
    })
}

/// Every topic where this node has presences, in full; clears all outboxes, since the
/// snapshot supersedes what they held.
pub(super) fn collect_snapshot(shared: &Shared, phoenix: bool) -> Vec<TopicChange> {
    let mut out = Vec::new();
    for shard in shared.topics.iter() {
        let mut topics = lock(shard);
        let queued = std::mem::take(&mut topics.outbox);
        for slot in topics.slots() {
            let Some(t) = topics.get_mut(slot) else {
                continue;
            };
            // The snapshot supersedes what the outbox held.
            t.take_outbox();
            if let Some(change) = full_change(t, phoenix) {
                out.push(change);
            }
        }
        for slot in queued {
            if topics
                .get(slot)
                .is_some_and(|t| t.is_vacant() && !t.is_dirty())
            {
                topics.remove(slot);
                shared.topic_count.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
    out
}

fn wire_entry(e: &Entry) -> WireEntry {
    WireEntry {
        phx_ref: e.phx_ref,
        prev_ref: e.prev_ref,
        key: e.key.as_deref().map(str::to_owned),
        meta: e.meta.to_string(),
    }
}

/// Halves a change until each piece fits in `budget` bytes.
pub(super) fn split(t: TopicChange, budget: usize) -> Vec<TopicChange> {
    if wire::topic_size(&t) <= budget || change_items(&t.change) <= 1 {
        return vec![t];
    }
    let halves = match t.change {
        Change::Counts {
            viewers,
            connections,
            mut added,
            mut removed,
        } => {
            let (a2, r2) = (
                added.split_off(added.len() / 2),
                removed.split_off(removed.len() / 2),
            );
            [
                Change::Counts {
                    viewers,
                    connections,
                    added,
                    removed,
                },
                Change::Counts {
                    viewers,
                    connections,
                    added: a2,
                    removed: r2,
                },
            ]
        }
        Change::Phoenix {
            mut joins,
            mut leaves,
        } => {
            let (j2, l2) = (
                joins.split_off(joins.len() / 2),
                leaves.split_off(leaves.len() / 2),
            );
            [
                Change::Phoenix { joins, leaves },
                Change::Phoenix {
                    joins: j2,
                    leaves: l2,
                },
            ]
        }
    };
    halves
        .into_iter()
        .flat_map(|change| {
            split(
                TopicChange {
                    topic: t.topic.clone(),
                    change,
                },
                budget,
            )
        })
        .collect()
}

fn change_items(c: &Change) -> usize {
    match c {
        Change::Counts { added, removed, .. } => added.len() + removed.len(),
        Change::Phoenix { joins, leaves } => joins.len() + leaves.len(),
    }
}
