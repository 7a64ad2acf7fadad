//! The third step of ingest: a snapshot arrives in parts, one message each; they are
//! staged until the last one, so that the sender's state replaces the old one whole.
//! Staging is bounded by this node's `max_presences` and `max_topics`.

use super::wire::{Change, TopicChange, WireEntry};
use crate::config::Config;
use std::collections::HashMap;

/// A snapshot being received part by part. It lives until its last part, or until the
/// sender sends anything else, and is bounded by this node's `max_presences` (its
/// `items`) and `max_topics`.
#[derive(Default)]
pub(super) struct Staging {
    next_seq: u64,
    next_part: u32,
    /// The presences the staged topics hold (see `weight`).
    items: usize,
    /// Their heap bytes, counted in the engine's `stats().bytes`.
    pub bytes: usize,
    topics: HashMap<String, Change>,
}

/// Where a snapshot stands after one of its parts.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Staged {
    /// Staged; more parts follow.
    Partial,
    /// A part that continues nothing staged (a lost part): nothing is staged, and the
    /// sender's state is unknown until its next snapshot.
    Gap,
    /// The last part: the sender's whole state, to merge in place of the old one.
    Whole(Vec<TopicChange>),
}

/// Stages one snapshot part (`part` of a snapshot sent with `seq`; `addressed` parts,
/// for this node alone, share one seq). Refuses a snapshot over this node's limits.
pub(super) fn stage(
    staging: &mut Option<Staging>,
    limits: &Config,
    seq: u64,
    addressed: bool,
    part: u32,
    last: bool,
    topics: Vec<TopicChange>,
) -> Result<Staged, &'static str> {
    let continues = staging
        .as_ref()
        .is_some_and(|s| s.next_seq == seq && s.next_part == part);
    if part == 0 {
        *staging = Some(Staging::default());
    } else if !continues {
        *staging = None;
        return Ok(Staged::Gap);
    }
    let s = staging.as_mut().expect("started or continued above");
    // `seq` is below u64::MAX (checked with the message); a part number that wraps
    // continues nothing, as part 0 starts afresh.
    s.next_seq = seq + u64::from(!addressed);
    s.next_part = part.wrapping_add(1);
    for t in topics {
        s.add(t);
    }
    if s.items > limits.max_presences {
        return Err("a node holds more than max_presences");
    }
    if s.topics.len() > limits.max_topics {
        return Err("a node holds more than max_topics topics");
    }
    if !last {
        return Ok(Staged::Partial);
    }
    let s = staging.take().expect("checked above");
    Ok(Staged::Whole(
        s.topics
            .into_iter()
            .map(|(topic, change)| TopicChange { topic, change })
            .collect(),
    ))
}

/// A change that leaves the sender with no part in a topic where it had none.
pub(super) fn holds_nothing(c: &Change) -> bool {
    match c {
        // Viewers are within connections (checked with the message).
        Change::Counts {
            connections, added, ..
        } => *connections == 0 && added.iter().all(|h| *h == crate::topic::ANONYMOUS),
        Change::Phoenix { joins, .. } => joins.is_empty(),
    }
}

/// The presences a staged change holds, as `Topic::remote_part_size` counts them (an
/// upper bound: repeats count).
fn weight(c: &Change) -> usize {
    match c {
        Change::Counts {
            connections, added, ..
        } => usize::try_from(*connections)
            .unwrap_or(usize::MAX)
            .max(added.len()),
        Change::Phoenix { joins, .. } => joins.len(),
    }
}

/// Heap bytes of what a staged change keeps of a piece (a snapshot's `removed` and
/// `leaves` are not kept).
fn staged_bytes(c: &Change) -> usize {
    match c {
        Change::Counts { added, .. } => added.len() * std::mem::size_of::<u64>(),
        Change::Phoenix { joins, .. } => joins
            .iter()
            .map(|w| {
                std::mem::size_of::<WireEntry>()
                    + w.key.as_ref().map_or(0, String::len)
                    + w.meta.len()
            })
            .sum(),
    }
}

impl Staging {
    /// Folds a snapshot piece into the staged snapshot (a large topic arrives in pieces).
    fn add(&mut self, t: TopicChange) {
        if holds_nothing(&t.change) {
            return;
        }
        let TopicChange { topic, change } = t;
        self.bytes += staged_bytes(&change);
        let old = match self.topics.get(&topic) {
            Some(c) => weight(c),
            None => {
                self.bytes += std::mem::size_of::<(String, Change)>() + topic.len();
                0
            }
        };
        let staged = self.topics.entry(topic).or_insert_with(|| match change {
            Change::Counts { .. } => Change::Counts {
                viewers: 0,
                connections: 0,
                added: Vec::new(),
                removed: Vec::new(),
            },
            Change::Phoenix { .. } => Change::Phoenix {
                joins: Vec::new(),
                leaves: Vec::new(),
            },
        });
        match (&mut *staged, change) {
            (
                Change::Counts {
                    viewers,
                    connections,
                    added,
                    ..
                },
                Change::Counts {
                    viewers: v,
                    connections: c,
                    added: a,
                    ..
                },
            ) => {
                *viewers = v;
                *connections = c;
                added.extend(a);
            }
            (Change::Phoenix { joins, .. }, Change::Phoenix { joins: j, .. }) => joins.extend(j),
            // A message is of one format, checked on arrival.
            _ => {}
        }
        self.items = self.items - old + weight(staged);
    }
}
