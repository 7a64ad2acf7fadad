//! The second step of ingest: whether a message's sender is admitted (its incarnation and
//! sequence number are new, there is room for one more node), and what this node knows of
//! each peer.

use super::assemble::Staging;
use super::wire::{Body, Message};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// What this node knows of another.
pub(super) struct Peer {
    /// Short id used in topics' remote parts; never reused.
    pub id: u32,
    pub incarnation: u64,
    pub last_seq: u64,
    /// True while every message since the last applied snapshot arrived in order.
    pub in_sync: bool,
    pub last_heard: Instant,
    /// Ticks to wait before asking this peer for a snapshot again.
    pub request_wait: u32,
    pub staging: Option<Staging>,
    /// Topics where this peer has a part.
    pub topics: HashSet<String>,
    /// Users and entries this peer holds over all its parts, bounded by `max_presences`.
    pub held: usize,
}

impl Peer {
    /// A node heard of for the first time, known as `id` in topics' remote parts.
    pub fn new(id: u32, incarnation: u64) -> Peer {
        Peer {
            id,
            incarnation,
            last_seq: 0,
            in_sync: false,
            last_heard: Instant::now(),
            request_wait: 0,
            staging: None,
            topics: HashSet::new(),
            held: 0,
        }
    }
}

/// How a sender is admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Admission {
    /// A peer already known, in its current incarnation.
    Known,
    /// A node not known yet (or known only as departed, in an older incarnation).
    New,
    /// A known peer that restarted: its old incarnation's presences are gone.
    Restarted,
}

/// Why a sender is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// A replay, a duplicate, or a message of a departed incarnation.
    Replayed(&'static str),
    /// A new node beyond `max_nodes`.
    TooManyNodes,
}

/// Decides whether the sender of `msg` is admitted, knowing the live `peers` and the
/// departed nodes' tombstones (`gone`: incarnation and last seq). Changes nothing: the
/// caller acts on the answer, so a refused message leaves no trace.
pub(super) fn admit(
    peers: &HashMap<String, Peer>,
    gone: &HashMap<String, (u64, u64)>,
    max_nodes: usize,
    msg: &Message,
) -> Result<Admission, Refusal> {
    // A snapshot for this node carries the seq of the sender's message before it.
    let addressed = matches!(msg.body, Body::SnapshotFor { .. });
    if let Some(&(inc, seq)) = gone.get(&msg.node) {
        if msg.incarnation < inc || (msg.incarnation == inc && msg.seq <= seq) {
            return Err(Refusal::Replayed("message of a node that left"));
        }
    }
    match peers.get(&msg.node) {
        Some(p)
            if msg.incarnation < p.incarnation
                || (msg.incarnation == p.incarnation
                    && (msg.seq < p.last_seq || (msg.seq == p.last_seq && !addressed))) =>
        {
            Err(Refusal::Replayed("message replayed or out of date"))
        }
        Some(p) if msg.incarnation > p.incarnation => Ok(Admission::Restarted),
        Some(_) => Ok(Admission::Known),
        None if peers.len() >= max_nodes => Err(Refusal::TooManyNodes),
        None => Ok(Admission::New),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(node: &str, incarnation: u64, seq: u64) -> Message {
        Message {
            format: crate::config::Format::Counts,
            node: node.into(),
            incarnation,
            seq,
            body: Body::Heartbeat,
        }
    }

    fn known(incarnation: u64, last_seq: u64) -> HashMap<String, Peer> {
        let mut peer = Peer::new(1, incarnation);
        peer.last_seq = last_seq;
        HashMap::from([("b".to_string(), peer)])
    }

    #[test]
    fn a_known_peer_is_admitted_with_a_later_seq_only() {
        let peers = known(5, 10);
        let none = HashMap::new();
        assert_eq!(
            admit(&peers, &none, 8, &from("b", 5, 11)),
            Ok(Admission::Known)
        );
        for seq in [9, 10] {
            assert!(matches!(
                admit(&peers, &none, 8, &from("b", 5, seq)),
                Err(Refusal::Replayed(_))
            ));
        }
        assert!(matches!(
            admit(&peers, &none, 8, &from("b", 4, 99)),
            Err(Refusal::Replayed(_))
        ));
    }

    #[test]
    fn a_snapshot_for_this_node_may_repeat_the_last_seq() {
        let peers = known(5, 10);
        let mut msg = from("b", 5, 10);
        msg.body = Body::SnapshotFor {
            target: "a".into(),
            part: 0,
            last: true,
            topics: Vec::new(),
        };
        assert_eq!(
            admit(&peers, &HashMap::new(), 8, &msg),
            Ok(Admission::Known)
        );
    }

    #[test]
    fn a_later_incarnation_is_a_restart() {
        let peers = known(5, 10);
        assert_eq!(
            admit(&peers, &HashMap::new(), 8, &from("b", 6, 1)),
            Ok(Admission::Restarted)
        );
    }

    #[test]
    fn a_departed_incarnation_stays_refused() {
        let gone = HashMap::from([("b".to_string(), (5, 10))]);
        let none = HashMap::new();
        assert!(matches!(
            admit(&none, &gone, 8, &from("b", 5, 10)),
            Err(Refusal::Replayed(_))
        ));
        assert_eq!(
            admit(&none, &gone, 8, &from("b", 5, 11)),
            Ok(Admission::New)
        );
        assert_eq!(admit(&none, &gone, 8, &from("b", 6, 1)), Ok(Admission::New));
    }

    #[test]
    fn a_new_node_beyond_max_nodes_is_refused() {
        let peers = known(5, 10);
        let none = HashMap::new();
        assert_eq!(
            admit(&peers, &none, 1, &from("c", 1, 1)),
            Err(Refusal::TooManyNodes)
        );
        assert_eq!(
            admit(&peers, &none, 1, &from("b", 5, 11)),
            Ok(Admission::Known)
        );
        assert_eq!(
            admit(&peers, &none, 2, &from("c", 1, 1)),
            Ok(Admission::New)
        );
    }
}
