//! What this node publishes: its changes since the last tick and its full state, read
//! from the topic shards, cut into message-sized pieces.

use super::wire::{self, TopicChange};
use crate::shard::lock;
use crate::shared::Shared;
use crate::topic::Topic;
use std::sync::atomic::Ordering;

/// This node's changes since the last tick, topic by topic (vacant topics are dropped),
/// and with `state`, every topic where this node has presences, in full, as of those
/// changes: each shard is read in one hold of its lock, so that no change falls between
/// the two or appears in both.
pub(super) fn collect(
    shared: &Shared,
    state: bool,
) -> (Vec<TopicChange>, Option<Vec<TopicChange>>) {
    let mut out = Vec::new();
    let mut full = state.then(Vec::new);
    for shard in shared.topics.iter() {
        let mut topics = lock(shard);
        drain_shard(&mut topics, shared, &mut out);
        if let Some(full) = &mut full {
            for slot in topics.slots() {
                if let Some(change) = topics.get(slot).and_then(full_change) {
                    full.push(change);
                }
            }
        }
    }
    (out, full)
}

/// A topic's whole local part, or `None` where this node has no presence in it.
fn full_change(t: &Topic) -> Option<TopicChange> {
    Some(TopicChange {
        topic: t.name().to_string(),
        change: t.full_change()?,
    })
}

/// Drains one shard's outboxes into `out`.
fn drain_shard(topics: &mut crate::shard::TopicShard, shared: &Shared, out: &mut Vec<TopicChange>) {
    for slot in std::mem::take(&mut topics.outbox) {
        let Some(t) = topics.get_mut(slot) else {
            continue;
        };
        if let Some(change) = t.drain_outbox() {
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

/// Every topic where this node has presences, in full; clears all outboxes, since the
/// snapshot supersedes what they held.
pub(super) fn collect_snapshot(shared: &Shared) -> Vec<TopicChange> {
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
            if let Some(change) = full_change(t) {
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

/// Halves a change until each piece fits in `budget` bytes.
pub(super) fn split(t: TopicChange, budget: usize) -> Vec<TopicChange> {
    if wire::topic_size(&t) <= budget || t.change.items() <= 1 {
        return vec![t];
    }
    let halves = t.change.halves();
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
