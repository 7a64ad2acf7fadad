//! The output formats: what a topic keeps beyond its counts, how it renders diffs and
//! states, and how a node replicates its part of a topic. Everything that differs between
//! formats is here, one module per format behind `FormatState`; the rest of the engine
//! asks the topic's `TopicState` or the engine's `Format`, never which format it is.
//!
//! A format is registered in this file alone: its variant of `Format` (name and wire id),
//! of `TopicState`, of `PeerState` and of `Change`, and one arm in each `match` below.
//! Other nodes' parts of a topic are kept in two halves: the counting every format shares
//! (viewers, connections, users across nodes: `topic/remote.rs`, seen from here through
//! `PeerCounts` and `PeerCountsMut`) and what the format keeps beyond it (its `PeerState`).
//! The format merges a peer's `Change` into both, and tells how large it leaves the peer's
//! part (`TopicState::merge`, `TopicState::size_after`).

pub(crate) mod counts;
mod interface;
pub(crate) mod phoenix;

use crate::codec::Reader;
use crate::hash::{ConnBuild, PrehashedBuild};
use crate::hash::{HashMap, HashSet};
use phoenix::HeldEntries;
use serde::{Deserialize, Serialize};

pub(crate) use interface::{Bounds, FormatPeers, FormatState, PeerCounts, PeerCountsMut};
pub use phoenix::WireEntry;

/// The three numbers of a topic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Counts {
    /// Anonymous presences (no key).
    pub viewers: u64,
    /// Distinct keys.
    pub users: u64,
    /// All presences.
    pub connections: u64,
}

/// The keyed hash value that stands for "no key". A real key hashing to it is moved to 1.
pub(crate) const ANONYMOUS: u64 = 0;

/// Local changes not yet sent to other nodes (cluster mode only). Adds and removes of the
/// same thing within one tick cancel, as joins and leaves do within a poll.
#[derive(Default)]
pub(crate) struct Outbox {
    /// Queued in its shard's tick list.
    pub queued: bool,
    /// Counts format: keyed hashes of users that appeared on / left this node.
    pub added: HashSet<u64, PrehashedBuild>,
    pub removed: HashSet<u64, PrehashedBuild>,
    /// Phoenix format: refs that joined (ref → conn) and refs that left.
    pub joined: HashMap<u64, u64, ConnBuild>,
    pub left: HashSet<u64, ConnBuild>,
}

/// Which wire format the engine renders. Serde's names (`rename_all`) are the
/// modules' `NAME`s, which a unit test checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Anonymous counts only: `{"viewers":{"count":V},"users":{"count":U}}`. No key or meta
    /// is kept, let alone sent.
    #[default]
    Counts,
    /// Phoenix `presence_state` / `presence_diff` lists with `phx_ref` metas.
    Phoenix,
}

impl Format {
    /// Every format, in the order of their wire ids.
    pub const ALL: &'static [Format] = &[Format::Counts, Format::Phoenix];

    /// The name the configuration's `format` and the metrics' `format` label use.
    pub fn name(self) -> &'static str {
        match self {
            Format::Counts => counts::NAME,
            Format::Phoenix => phoenix::NAME,
        }
    }

    /// The format named `name`.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// The format byte of a cluster message: nodes of different formats refuse each
    /// other's topic changes.
    pub(crate) fn wire_id(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_wire_id(id: u8) -> Option<Format> {
        Format::ALL.get(usize::from(id)).copied()
    }

    /// Whether lists name presences by key, the anonymous ones under the configured
    /// `viewers_key`: that key is then reserved, and must fit `max_key_bytes`.
    pub(crate) fn lists_keys(self) -> bool {
        matches!(self, Format::Phoenix)
    }

    /// What a topic keeps for this format when it is created.
    pub(crate) fn new_state(self) -> TopicState {
        match self {
            Format::Counts => TopicState::Counts(counts::State),
            Format::Phoenix => TopicState::Phoenix(phoenix::State::default()),
        }
    }

    /// The state of a topic that holds nothing: what `list` answers for an unknown topic.
    pub(crate) fn write_empty_state(self, out: &mut String) {
        match self {
            Format::Counts => counts::State::write_empty_state(out),
            Format::Phoenix => phoenix::State::write_empty_state(out),
        }
    }
}

/// The format's part of one topic.
pub(crate) enum TopicState {
    Counts(counts::State),
    Phoenix(phoenix::State),
}

/// Calls the same method on whichever format's state `$state` holds.
macro_rules! dispatch {
    ($state:expr, $s:ident => $call:expr) => {
        match $state {
            TopicState::Counts($s) => $call,
            TopicState::Phoenix($s) => $call,
        }
    };
}

impl TopicState {
    /// What this format keeps of other nodes' parts of the topic, before the first peer
    /// change.
    pub(crate) fn new_peers(&self) -> PeerState {
        match self {
            TopicState::Counts(_) => PeerState::Counts(counts::Peers),
            TopicState::Phoenix(_) => PeerState::Phoenix(phoenix::Peers::default()),
        }
    }

    /// Merges `change` from `node` (with `replace`, a snapshot: it is the node's whole
    /// part) into the format's `peers` and the shared `counts`. `key_hash` hashes a key of
    /// an arriving presence, `fresh` gives this node's refs. Returns whether the node
    /// still has a part here. The caller has checked the change's claims (`Change::check`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn merge(
        &mut self,
        peers: &mut PeerState,
        counts: &mut impl PeerCountsMut,
        node: u32,
        change: Change,
        replace: bool,
        key_hash: &dyn Fn(&str) -> u64,
        fresh: &mut dyn FnMut() -> u64,
    ) -> bool {
        match (self, peers, change) {
            (
                TopicState::Counts(_),
                PeerState::Counts(_),
                Change::Counts {
                    viewers,
                    connections,
                    added,
                    removed,
                },
            ) => counts::merge(
                counts,
                node,
                viewers,
                connections,
                &added,
                &removed,
                replace,
            ),
            (TopicState::Phoenix(s), PeerState::Phoenix(p), Change::Phoenix { joins, leaves }) => {
                s.merge(p, counts, node, joins, &leaves, replace, key_hash, fresh)
            }
            // A message is of the engine's format (checked on arrival) and a topic's peer
            // state is made by its own format: nothing to merge.
            _ => counts.settle(node),
        }
    }

    /// What `counts.size(node)` will be after `merge` with these arguments: the limits
    /// are checked on it before anything is merged.
    pub(crate) fn size_after(
        &self,
        peers: Option<&PeerState>,
        counts: &impl PeerCounts,
        node: u32,
        change: &Change,
        replace: bool,
    ) -> usize {
        match (self, change) {
            (
                TopicState::Counts(_),
                Change::Counts {
                    connections,
                    added,
                    removed,
                    ..
                },
            ) => counts::size_after(counts, node, *connections, added, removed, replace),
            (TopicState::Phoenix(_), Change::Phoenix { joins, leaves }) => {
                let peers = peers.and_then(PeerState::phoenix);
                phoenix::Peers::size_after(peers, node, joins, leaves, replace)
            }
            // As in `merge`: a change of another format merges nothing.
            _ => counts.size(node),
        }
    }

    /// `node` is gone: what the format keeps of its part leaves through the next poll.
    /// The shared counting of its part is removed by the caller afterwards.
    pub(crate) fn drop_peer(
        &mut self,
        peers: &mut PeerState,
        counts: &mut impl PeerCountsMut,
        node: u32,
    ) {
        match (self, peers) {
            (TopicState::Phoenix(s), PeerState::Phoenix(p)) => s.drop_peer(p, counts, node),
            // The counts format keeps nothing beyond the counting, and a topic's peer
            // state is made by its own format (`new_peers`).
            (TopicState::Counts(_), _) | (TopicState::Phoenix(_), _) => {}
        }
    }
}

/// What a format keeps of other nodes' parts of one topic beyond the counting every
/// format shares (cluster mode). It lives beside that counting, in the topic's remote
/// part, from a peer's first change until no peer holds a part and `is_empty`.
pub(crate) enum PeerState {
    Counts(counts::Peers),
    Phoenix(phoenix::Peers),
}

impl PeerState {
    fn phoenix(&self) -> Option<&phoenix::Peers> {
        match self {
            PeerState::Phoenix(p) => Some(p),
            _ => None,
        }
    }
}

impl FormatPeers for PeerState {
    fn is_empty(&self) -> bool {
        match self {
            PeerState::Counts(p) => p.is_empty(),
            PeerState::Phoenix(p) => p.is_empty(),
        }
    }

    fn forget_leaves(&mut self) {
        match self {
            PeerState::Counts(p) => p.forget_leaves(),
            PeerState::Phoenix(p) => p.forget_leaves(),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            PeerState::Counts(p) => p.heap_bytes(),
            PeerState::Phoenix(p) => p.heap_bytes(),
        }
    }
}

impl FormatState for TopicState {
    #[inline]
    fn join(
        &mut self,
        conn: u64,
        key: Option<&str>,
        meta: &str,
        new_ref: impl FnOnce() -> u64,
        outbox: Option<&mut Outbox>,
    ) {
        dispatch!(self, s => s.join(conn, key, meta, new_ref, outbox))
    }

    #[inline]
    fn leave(&mut self, conn: u64, outbox: Option<&mut Outbox>) {
        dispatch!(self, s => s.leave(conn, outbox))
    }

    fn update(
        &mut self,
        conn: u64,
        meta: &str,
        new_ref: impl FnOnce() -> u64,
        outbox: Option<&mut Outbox>,
    ) -> bool {
        dispatch!(self, s => s.update(conn, meta, new_ref, outbox))
    }

    fn hold(&mut self, conn: u64) -> Option<Box<phoenix::Entry>> {
        dispatch!(self, s => s.hold(conn))
    }

    fn take_back(
        &mut self,
        conn: u64,
        held: Option<Box<phoenix::Entry>>,
        meta: &str,
        new_ref: impl FnOnce() -> u64,
        outbox: Option<&mut Outbox>,
    ) -> bool {
        dispatch!(self, s => s.take_back(conn, held, meta, new_ref, outbox))
    }

    fn leave_held(&mut self, held: Option<Box<phoenix::Entry>>, outbox: Option<&mut Outbox>) {
        dispatch!(self, s => s.leave_held(held, outbox))
    }

    #[inline]
    fn changed(&self, published: Counts, now: Counts) -> bool {
        dispatch!(self, s => s.changed(published, now))
    }

    fn write_diff(
        &mut self,
        out: &mut String,
        published: Counts,
        now: Counts,
        peers: Option<&PeerState>,
        held: Option<&dyn HeldEntries>,
        viewers_key: &str,
    ) {
        dispatch!(self, s => s.write_diff(out, published, now, peers, held, viewers_key))
    }

    fn write_state(
        &self,
        out: &mut String,
        published: Counts,
        peers: Option<&PeerState>,
        held: Option<&dyn HeldEntries>,
        viewers_key: &str,
    ) {
        dispatch!(self, s => s.write_state(out, published, peers, held, viewers_key))
    }

    fn write_empty_state(_out: &mut String) {
        unreachable!("asked of a `Format`, which knows which format it is")
    }

    #[inline]
    fn is_settled(&self) -> bool {
        dispatch!(self, s => s.is_settled())
    }

    fn heap_bytes(&self, held: Option<&dyn HeldEntries>) -> usize {
        dispatch!(self, s => s.heap_bytes(held))
    }

    fn full_change(
        &self,
        local: Counts,
        users: impl Iterator<Item = u64>,
        held: Option<&dyn HeldEntries>,
    ) -> Change {
        dispatch!(self, s => s.full_change(local, users, held))
    }

    fn drain_outbox(
        &self,
        o: &mut Outbox,
        local: Counts,
        held: Option<&dyn HeldEntries>,
    ) -> Change {
        dispatch!(self, s => s.drain_outbox(o, local, held))
    }
}

/// The sender's contribution to a topic, in the engine's format: what nodes replicate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Counts format: absolute viewer and connection counts on the sender, and the keyed
    /// hashes of users that appeared on it (`added`) or left it (`removed`). In a
    /// snapshot, `added` is the full set and `removed` is empty.
    Counts {
        viewers: u64,
        connections: u64,
        added: Vec<u64>,
        removed: Vec<u64>,
    },
    /// Phoenix format: entries that joined (in a snapshot: all entries) and refs that left.
    Phoenix {
        joins: Vec<WireEntry>,
        leaves: Vec<u64>,
    },
}

impl Change {
    /// The format this change is of.
    pub fn format(&self) -> Format {
        match self {
            Change::Counts { .. } => Format::Counts,
            Change::Phoenix { .. } => Format::Phoenix,
        }
    }

    /// Appends the change's encoding (see `cluster/wire.rs`).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Change::Counts {
                viewers,
                connections,
                added,
                removed,
            } => counts::put_change(out, *viewers, *connections, added, removed),
            Change::Phoenix { joins, leaves } => phoenix::put_change(out, joins, leaves),
        }
    }

    /// Reads a change of `format`.
    pub(crate) fn decode(format: Format, r: &mut Reader<'_>) -> Option<Change> {
        match format {
            Format::Counts => counts::read_change(r),
            Format::Phoenix => phoenix::read_change(r),
        }
    }

    /// The same change with nothing in it: where the pieces of a snapshot are merged.
    pub(crate) fn empty(format: Format) -> Change {
        match format {
            Format::Counts => Change::Counts {
                viewers: 0,
                connections: 0,
                added: Vec::new(),
                removed: Vec::new(),
            },
            Format::Phoenix => Change::Phoenix {
                joins: Vec::new(),
                leaves: Vec::new(),
            },
        }
    }

    /// How many items a message splits the change by.
    pub(crate) fn items(&self) -> usize {
        match self {
            Change::Counts { added, removed, .. } => added.len() + removed.len(),
            Change::Phoenix { joins, leaves } => joins.len() + leaves.len(),
        }
    }

    /// Cuts the change in two, each half a change that applies alone.
    pub(crate) fn halves(self) -> [Change; 2] {
        match self {
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
        }
    }

    /// Whether the change leaves the sender with no part in a topic where it had none.
    pub(crate) fn holds_nothing(&self) -> bool {
        match self {
            // Viewers are within connections (checked with the message).
            Change::Counts {
                connections, added, ..
            } => *connections == 0 && added.iter().all(|h| *h == ANONYMOUS),
            Change::Phoenix { joins, .. } => joins.is_empty(),
        }
    }

    /// The presences a staged change holds, as `Topic::remote_part_size` counts them (an
    /// upper bound: repeats count).
    pub(crate) fn weight(&self) -> usize {
        match self {
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
    pub(crate) fn staged_bytes(&self) -> usize {
        match self {
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

    /// Checks what the change claims against this node's own bounds, as for local input;
    /// trims metas as local ones are. The error says why it is refused.
    pub(crate) fn check(&mut self, bounds: &dyn Bounds) -> Result<(), String> {
        match self {
            Change::Counts {
                viewers,
                connections,
                ..
            } => counts::check(*viewers, *connections, bounds),
            Change::Phoenix { joins, .. } => phoenix::check(joins, bounds),
        }
    }

    /// Folds the next piece of the same topic's snapshot into this one.
    pub(crate) fn absorb(&mut self, piece: Change) {
        match (self, piece) {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_wire_ids_round_trip() {
        for (i, f) in Format::ALL.iter().enumerate() {
            assert_eq!(Format::from_name(f.name()), Some(*f));
            assert_eq!(usize::from(f.wire_id()), i);
            assert_eq!(Format::from_wire_id(f.wire_id()), Some(*f));
            assert_eq!(Change::empty(*f).format(), *f);
            assert_eq!(
                serde_json::to_value(f).unwrap(),
                serde_json::Value::from(f.name())
            );
            assert_eq!(
                serde_json::from_value::<Format>(f.name().into()).unwrap(),
                *f
            );
        }
        assert_eq!(Format::from_wire_id(Format::ALL.len() as u8), None);
    }

    fn state_of(state: &TopicState) -> String {
        let mut out = String::new();
        state.write_state(&mut out, Counts::default(), None, None, "anon");
        out
    }

    /// A join and its leave within one poll window cancel: nothing to render, nothing
    /// kept, in every format.
    #[test]
    fn a_join_and_its_leave_cancel() {
        for f in Format::ALL {
            let mut s = f.new_state();
            let mut next = 10;
            s.join(
                1,
                Some("alice"),
                "{}",
                || {
                    next += 1;
                    next
                },
                None,
            );
            s.leave(1, None);
            assert!(s.is_settled(), "{f:?}");
            assert!(!s.changed(Counts::default(), Counts::default()), "{f:?}");
            let mut empty = String::new();
            f.write_empty_state(&mut empty);
            assert_eq!(state_of(&s), empty, "{f:?}");
        }
    }

    /// After `write_diff` the state is settled, and the state renders what the diff
    /// told clients.
    #[test]
    fn a_diff_settles_the_state() {
        for f in Format::ALL {
            let mut s = f.new_state();
            let now = Counts {
                viewers: 1,
                users: 0,
                connections: 1,
            };
            s.join(1, None, "{\"a\":1}", || 7, None);
            assert!(s.changed(Counts::default(), now), "{f:?}");
            let mut diff = String::new();
            s.write_diff(&mut diff, Counts::default(), now, None, None, "anon");
            assert!(s.is_settled(), "{f:?}");
            let mut state = String::new();
            s.write_state(&mut state, now, None, None, "anon");
            let diff: serde_json::Value = serde_json::from_str(&diff).unwrap();
            let state: serde_json::Value = serde_json::from_str(&state).unwrap();
            assert_eq!(diff["joins"], state, "{f:?}");
        }
    }

    /// What a node sends of a topic decodes to the same change.
    #[test]
    fn changes_round_trip_through_their_encoding() {
        for f in Format::ALL {
            let mut s = f.new_state();
            let mut outbox = Outbox::default();
            s.join(1, Some("k"), "{\"a\":1}", || 5, Some(&mut outbox));
            let local = Counts {
                viewers: 0,
                users: 1,
                connections: 1,
            };
            for change in [
                s.full_change(local, [9].into_iter(), None),
                s.drain_outbox(&mut outbox, local, None),
            ] {
                assert_eq!(change.format(), *f);
                assert!(!change.holds_nothing(), "{f:?}");
                let mut bytes = Vec::new();
                change.encode(&mut bytes);
                let mut r = Reader::new(&bytes);
                assert_eq!(Change::decode(*f, &mut r), Some(change), "{f:?}");
                assert_eq!(r.left(), 0);
            }
        }
    }
}
