//! Other nodes' entries of a topic (cluster mode), and the merge of their changes.
//!
//! A peer's entry is known by its sender's ref only inside that node's entries; clients
//! see it under a ref this node assigns, so refs of different nodes (and this node's own)
//! can never meet, whatever a peer picks. The counting of those entries (viewers,
//! connections, users across nodes) is the topic's, shared by every format: the merge
//! tells it of each entry that joins or leaves. Maps keyed by values a peer chooses (its
//! refs) use a randomly keyed hasher, so a peer cannot pile them into one bucket.

use super::{Entry, Loc, Pending, State, WireEntry};
use crate::format::{FormatPeers, PeerCountsMut, ANONYMOUS};
use crate::hash::{HashMap, HashSet};
use std::collections::hash_map::RandomState;

/// One node's entries by the sender's ref, each with the keyed hash of its key;
/// `Entry::phx_ref` is the ref this node assigned.
type NodeEntries = HashMap<u64, (Box<Entry>, u64), RandomState>;

/// What the phoenix format keeps of other nodes' parts of a topic.
#[derive(Default)]
pub(crate) struct Peers {
    nodes: Vec<(u32, NodeEntries)>,
    /// (node, sender's ref) → this node's ref, for entries that left since the last poll:
    /// a later join names the sender's ref as its `phx_ref_prev`.
    left: HashMap<(u32, u64), u64, RandomState>,
}

impl Peers {
    /// The entry `node` sent under its ref `sent_ref`.
    pub fn entry(&self, node: u32, sent_ref: u64) -> Option<&Entry> {
        self.node(node)?.get(&sent_ref).map(|(e, _)| &**e)
    }

    /// Every node's entries.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.nodes
            .iter()
            .flat_map(|(_, m)| m.values().map(|(e, _)| &**e))
    }

    fn node(&self, node: u32) -> Option<&NodeEntries> {
        self.nodes.iter().find(|(n, _)| *n == node).map(|(_, m)| m)
    }

    fn node_mut(&mut self, node: u32) -> &mut NodeEntries {
        let i = match self.nodes.iter().position(|(n, _)| *n == node) {
            Some(i) => i,
            None => {
                // A topic is shared by a few nodes, which join it one at a time: an exact
                // capacity keeps a topic with one peer at one map.
                self.nodes.reserve_exact(1);
                self.nodes.push((node, NodeEntries::default()));
                self.nodes.len() - 1
            }
        };
        &mut self.nodes[i].1
    }

    fn remove(&mut self, node: u32, sent_ref: u64) -> Option<(Box<Entry>, u64)> {
        let (_, m) = self.nodes.iter_mut().find(|(n, _)| *n == node)?;
        m.remove(&sent_ref)
    }

    /// Drops `node`'s map once it holds nothing.
    fn prune(&mut self, node: u32) {
        self.nodes.retain(|(n, m)| *n != node || !m.is_empty());
    }

    /// What the part of `node` will count (`PeerCounts::size`) after `State::merge` with
    /// the joins' and leaves' refs: its entries.
    pub fn size_after(
        peers: Option<&Peers>,
        node: u32,
        joins: &[WireEntry],
        leaves: &[u64],
        replace: bool,
    ) -> usize {
        let empty = NodeEntries::default();
        let entries = match (replace, peers.and_then(|p| p.node(node))) {
            (false, Some(m)) => m,
            _ => &empty,
        };
        let gone: HashSet<u64, RandomState> = leaves
            .iter()
            .copied()
            .filter(|r| entries.contains_key(r))
            .collect();
        let fresh: HashSet<u64, RandomState> = joins
            .iter()
            .map(|w| w.phx_ref)
            .filter(|r| !entries.contains_key(r) || gone.contains(r))
            .collect();
        entries.len() - gone.len() + fresh.len()
    }
}

impl FormatPeers for Peers {
    fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.left.is_empty()
    }

    fn forget_leaves(&mut self) {
        self.left.clear();
        if self.left.capacity() > 64 {
            self.left.shrink_to_fit();
        }
    }

    fn heap_bytes(&self) -> usize {
        let mut bytes = self.nodes.capacity() * std::mem::size_of::<(u32, NodeEntries)>()
            + self.left.allocation_size();
        for (_, m) in &self.nodes {
            bytes += m.allocation_size() + m.values().map(|(e, _)| e.heap_bytes()).sum::<usize>();
        }
        bytes
    }
}

impl State {
    /// Applies `node`'s joins and leaves, both named by the sender's refs. With `replace`
    /// (a snapshot) `joins` is the node's full list: entries it no longer names leave,
    /// entries already known stay untouched, new ones join. Each new entry gets a ref of
    /// this node from `fresh`; `key_hash` hashes its key. Returns whether the node still
    /// has a part here.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::format) fn merge(
        &mut self,
        peers: &mut Peers,
        counts: &mut impl PeerCountsMut,
        node: u32,
        joins: Vec<WireEntry>,
        leaves: &[u64],
        replace: bool,
        key_hash: &dyn Fn(&str) -> u64,
        fresh: &mut dyn FnMut() -> u64,
    ) -> bool {
        let mut leaving: Vec<u64> = leaves.to_vec();
        if replace {
            let named: HashSet<u64, RandomState> = joins.iter().map(|w| w.phx_ref).collect();
            if let Some(m) = peers.node(node) {
                leaving.extend(m.keys().filter(|r| !named.contains(*r)));
            }
        }
        for r in leaving {
            self.peer_left(peers, counts, node, r);
        }
        for w in joins {
            let sent_ref = w.phx_ref;
            if peers.node(node).is_some_and(|m| m.contains_key(&sent_ref)) {
                continue;
            }
            // The sender names the ref its own clients last saw; here `phx_ref_prev` may
            // only name a ref this node's clients saw, which leaves in this same diff.
            let prev = peers
                .left
                .get(&(node, w.prev_ref))
                .copied()
                .filter(|p| self.leaves(*p));
            let h = w.key.as_deref().map_or(ANONYMOUS, key_hash);
            let entry = Entry {
                key: w.key.map(Into::into),
                meta: w.meta.into(),
                phx_ref: fresh(),
                prev_ref: prev.unwrap_or(0),
            };
            counts.joined(node, h);
            self.pending
                .insert(entry.phx_ref, Pending::Joined(Loc::Remote(node, sent_ref)));
            peers.node_mut(node).insert(sent_ref, (Box::new(entry), h));
        }
        peers.prune(node);
        counts.settle(node)
    }

    /// Every entry of `node` leaves through the next poll.
    pub(in crate::format) fn drop_peer(
        &mut self,
        peers: &mut Peers,
        counts: &mut impl PeerCountsMut,
        node: u32,
    ) {
        let refs: Vec<u64> = peers
            .node(node)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default();
        for r in refs {
            self.peer_left(peers, counts, node, r);
        }
        peers.prune(node);
    }

    fn peer_left(
        &mut self,
        peers: &mut Peers,
        counts: &mut impl PeerCountsMut,
        node: u32,
        sent_ref: u64,
    ) {
        let Some((entry, h)) = peers.remove(node, sent_ref) else {
            return;
        };
        counts.left(node, h);
        peers.left.insert((node, sent_ref), entry.phx_ref);
        self.note_leave(entry);
    }
}
