//! The third step of ingest: a snapshot arrives in parts, one message each; they are
//! staged until the last one, so that the sender's state replaces the old one whole.
//! Staging is bounded by this node's `max_presences` and `max_topics`.

use super::wire::{Change, TopicChange};
use crate::config::Config;
use std::collections::HashMap;

/// A snapshot being received part by part. It lives until its last part, or until the
/// sender sends anything else, and is bounded by this node's `max_presences` (its
/// `items`) and `max_topics`.
#[derive(Default)]
pub(super) struct Staging {
    next_seq: u64,
    next_part: u32,
    /// The presences the staged topics hold (see `Change::weight`).
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

impl Staging {
    /// Folds a snapshot piece into the staged snapshot (a large topic arrives in pieces).
    fn add(&mut self, t: TopicChange) {
        if t.change.holds_nothing() {
            return;
        }
        let TopicChange { topic, change } = t;
        self.bytes += change.staged_bytes();
        let old = match self.topics.get(&topic) {
            Some(c) => c.weight(),
            None => {
                self.bytes += std::mem::size_of::<(String, Change)>() + topic.len();
                0
            }
        };
        let staged = self
            .topics
            .entry(topic)
            .or_insert_with(|| Change::empty(change.format()));
        staged.absorb(change);
        self.items = self.items - old + staged.weight();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(staged: Staged) -> Vec<(String, u64, Vec<u64>)> {
        let Staged::Whole(topics) = staged else {
            panic!("not whole: {staged:?}");
        };
        let mut out: Vec<_> = topics
            .into_iter()
            .map(|t| match t.change {
                Change::Counts {
                    connections, added, ..
                } => (t.topic, connections, added),
                Change::Phoenix { .. } => unreachable!(),
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn parts_in_order_make_the_whole_state() {
        let limits = Config::default();
        let mut s = None;
        let part0 = vec![
            TopicChange::users("a", 2, &[1]),
            TopicChange::users("b", 1, &[]),
        ];
        assert_eq!(
            stage(&mut s, &limits, 7, false, 0, false, part0),
            Ok(Staged::Partial)
        );
        // The rest of topic `a` arrives in the next part.
        let got = stage(
            &mut s,
            &limits,
            8,
            false,
            1,
            true,
            vec![TopicChange::users("a", 2, &[2])],
        );
        assert_eq!(
            whole(got.unwrap()),
            [
                ("a".to_string(), 2, vec![1, 2]),
                ("b".to_string(), 1, vec![])
            ]
        );
        assert!(s.is_none(), "the staging is handed over whole");
    }

    #[test]
    fn parts_for_this_node_alone_share_one_seq() {
        let limits = Config::default();
        let mut s = None;
        stage(
            &mut s,
            &limits,
            7,
            true,
            0,
            false,
            vec![TopicChange::users("a", 1, &[])],
        )
        .unwrap();
        let got = stage(&mut s, &limits, 7, true, 1, true, vec![]).unwrap();
        assert_eq!(whole(got), [("a".to_string(), 1, vec![])]);
    }

    #[test]
    fn a_lost_part_drops_what_was_staged() {
        let limits = Config::default();
        let mut s = None;
        stage(
            &mut s,
            &limits,
            7,
            false,
            0,
            false,
            vec![TopicChange::users("a", 1, &[])],
        )
        .unwrap();
        assert_eq!(
            stage(&mut s, &limits, 9, false, 2, true, vec![]),
            Ok(Staged::Gap)
        );
        assert!(s.is_none());
        assert_eq!(
            stage(&mut s, &limits, 10, false, 1, true, vec![]),
            Ok(Staged::Gap),
            "nothing to continue"
        );
    }

    #[test]
    fn a_snapshot_over_the_limits_is_refused() {
        let limits = Config {
            max_presences: 3,
            max_topics: 2,
            ..Config::default()
        };
        let mut s = None;
        let over = vec![TopicChange::users("a", 4, &[])];
        assert!(stage(&mut s, &limits, 1, false, 0, true, over).is_err());
        let many = vec![
            TopicChange::users("a", 1, &[]),
            TopicChange::users("b", 1, &[]),
            TopicChange::users("c", 1, &[]),
        ];
        assert!(stage(&mut s, &limits, 2, false, 0, true, many).is_err());
        let fits = vec![
            TopicChange::users("a", 1, &[]),
            TopicChange::users("b", 2, &[5, 6]),
        ];
        assert!(stage(&mut s, &limits, 3, false, 0, true, fits).is_ok());
    }

    #[test]
    fn staging_skips_topics_that_hold_nothing_and_counts_bytes() {
        let mut s = Staging::default();
        s.add(TopicChange::users("empty", 0, &[]));
        assert!(s.topics.is_empty() && s.bytes == 0);
        s.add(TopicChange::users("a", 1, &[9]));
        assert_eq!(s.items, 1);
        assert!(s.bytes > std::mem::size_of::<u64>());
    }
}
