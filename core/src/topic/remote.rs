//! Other nodes' contributions to a topic (cluster mode).
//!
//! Each remote node's part of a topic is kept apart, so that a node that goes away is
//! removed as a unit. Distinct users stay exact across nodes: a key hash counts once
//! however many nodes (this one included) hold it.
//!
//! A remote entry is known by its sender's ref only inside its node's part; clients see it
//! under a ref this node assigns, so refs of different nodes (and this node's own) can
//! never meet, whatever a peer picks. Maps keyed by values a peer chooses (its refs, its
//! key hashes) use a randomly keyed hasher, so a peer cannot pile them into one bucket.

use super::{Entry, Topic, Users, ANONYMOUS};
use crate::format::phoenix::RemoteEntries;
use crate::format::{Change, WireEntry};
use crate::hash::{HashMap, HashSet};
use std::collections::hash_map::RandomState;

/// Every remote node's part of one topic.
#[derive(Default)]
pub(crate) struct Remote {
    parts: Vec<(u32, Part)>,
    /// Key hash → number of remote nodes holding it.
    holders: HashMap<u64, u32, RandomState>,
    /// (node, sender's ref) → this node's ref, for remote entries that left since the last
    /// poll: a later join names the sender's ref as its `phx_ref_prev`.
    left: HashMap<(u32, u64), u64, RandomState>,
    /// Hashes held remotely and not locally: what remote nodes add to `users`.
    pub only_remote: u64,
    /// Sums over the parts.
    pub viewers: u64,
    pub connections: u64,
}

/// One remote node's part of a topic.
#[derive(Default)]
struct Part {
    viewers: u64,
    connections: u64,
    /// Key hash → presences with that key on the node (always 1 in counts format).
    users: HashMap<u64, u32, RandomState>,
    /// Phoenix format: the node's entries by the sender's ref, each with its key hash;
    /// `Entry::phx_ref` is the ref this node assigned.
    entries: HashMap<u64, (Box<Entry>, u64), RandomState>,
}

impl Part {
    fn size(&self) -> usize {
        usize::try_from(self.connections)
            .unwrap_or(usize::MAX)
            .max(self.users.len())
    }

    fn is_empty(&self) -> bool {
        self.viewers == 0
            && self.connections == 0
            && self.users.is_empty()
            && self.entries.is_empty()
    }
}

impl Remote {
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    pub fn local_user_appeared(&mut self, h: u64) {
        if self.holders.contains_key(&h) {
            self.only_remote -= 1;
        }
    }

    pub fn local_user_left(&mut self, h: u64) {
        if self.holders.contains_key(&h) {
            self.only_remote += 1;
        }
    }

    /// Leaves are published: a later join can no longer name them.
    pub fn forget_leaves(&mut self) {
        self.left.clear();
        if self.left.capacity() > 64 {
            self.left.shrink_to_fit();
        }
    }

    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let mut bytes = self.parts.capacity() * size_of::<(u32, Part)>()
            + self.holders.allocation_size()
            + self.left.allocation_size();
        for (_, p) in &self.parts {
            bytes += p.users.allocation_size()
                + p.entries.allocation_size()
                + p.entries
                    .values()
                    .map(|(e, _)| e.heap_bytes())
                    .sum::<usize>();
        }
        bytes
    }

    fn part_index(&mut self, node: u32) -> usize {
        match self.parts.iter().position(|(n, _)| *n == node) {
            Some(i) => i,
            None => {
                self.parts.push((node, Part::default()));
                self.parts.len() - 1
            }
        }
    }

    /// A remote node now holds `h`.
    fn hold(&mut self, h: u64, local: &Users) {
        let n = self.holders.entry(h).or_insert(0);
        *n += 1;
        if *n == 1 && !local.contains_key(&h) {
            self.only_remote += 1;
        }
    }

    /// A remote node no longer holds `h`.
    fn release(&mut self, h: u64, local: &Users) {
        if let Some(n) = self.holders.get_mut(&h) {
            *n -= 1;
            if *n == 0 {
                self.holders.remove(&h);
                if !local.contains_key(&h) {
                    self.only_remote -= 1;
                }
            }
        }
    }
}

impl Arrival {
    /// A checked entry from the wire, with the keyed hash of its key.
    fn new(w: WireEntry, key_hash: impl Fn(&str) -> u64) -> Arrival {
        let key_hash = w.key.as_deref().map_or(ANONYMOUS, key_hash);
        Arrival {
            entry: Entry {
                key: w.key.map(Into::into),
                meta: w.meta.into(),
                phx_ref: w.phx_ref,
                prev_ref: w.prev_ref,
            },
            key_hash,
        }
    }
}

impl RemoteEntries for Remote {
    fn entry(&self, node: u32, sent_ref: u64) -> Option<&Entry> {
        let part = &self.parts.iter().find(|(n, _)| *n == node)?.1;
        part.entries.get(&sent_ref).map(|(e, _)| &**e)
    }

    fn entries(&self) -> Box<dyn Iterator<Item = &Entry> + '_> {
        Box::new(
            self.parts
                .iter()
                .flat_map(|(_, p)| p.entries.values().map(|(e, _)| &**e)),
        )
    }
}

/// A phoenix entry arriving from another node, with the keyed hash of its key.
pub(crate) struct Arrival {
    pub entry: Entry,
    pub key_hash: u64,
}

impl Topic {
    /// Merges `change` into `node`'s part (with `replace`, a snapshot: it is the node's
    /// whole part). `key_hash` hashes a key of an arriving entry, `fresh` gives this node's
    /// refs. Returns whether the node still has a part here. The caller has checked the
    /// change's claims (`Change::check`).
    pub fn apply_remote(
        &mut self,
        node: u32,
        change: Change,
        replace: bool,
        key_hash: impl Fn(&str) -> u64,
        fresh: &mut dyn FnMut() -> u64,
    ) -> bool {
        match change {
            Change::Counts {
                viewers,
                connections,
                added,
                removed,
            } => self.apply_remote_counts(node, viewers, connections, &added, &removed, replace),
            Change::Phoenix { joins, leaves } => {
                let arrivals = joins
                    .into_iter()
                    .map(|w| Arrival::new(w, &key_hash))
                    .collect();
                self.apply_remote_phoenix(node, arrivals, &leaves, replace, fresh)
            }
        }
    }

    /// What `remote_part_size(node)` will be after `apply_remote` with these arguments.
    pub fn remote_size_after(&self, node: u32, change: &Change, replace: bool) -> usize {
        match change {
            Change::Counts {
                connections,
                added,
                removed,
                ..
            } => self.remote_counts_size_after(node, *connections, added, removed, replace),
            Change::Phoenix { joins, leaves } => {
                let refs: Vec<u64> = joins.iter().map(|w| w.phx_ref).collect();
                self.remote_phoenix_size_after(node, &refs, leaves, replace)
            }
        }
    }

    /// Counts format: sets `node`'s part. With `replace` (a snapshot) `added` is the full
    /// set of its users; otherwise users are added and removed. Returns whether the node
    /// still has a part here. The caller has checked the claims (`viewers <= connections`,
    /// both within this node's limits).
    fn apply_remote_counts(
        &mut self,
        node: u32,
        viewers: u64,
        connections: u64,
        added: &[u64],
        removed: &[u64],
        replace: bool,
    ) -> bool {
        let remote = self.remote.get_or_insert_with(Box::default);
        let i = remote.part_index(node);
        let part = &mut remote.parts[i].1;
        let (old_viewers, old_connections) = (part.viewers, part.connections);
        part.viewers = viewers;
        part.connections = connections;
        let mut gone: Vec<u64> = Vec::new();
        let mut new: Vec<u64> = Vec::new();
        if replace {
            let keep: HashSet<u64, RandomState> = added.iter().copied().collect();
            part.users.retain(|h, _| {
                let stay = keep.contains(h);
                if !stay {
                    gone.push(*h);
                }
                stay
            });
        } else {
            gone.extend(removed.iter().filter(|h| part.users.remove(*h).is_some()));
        }
        for &h in added {
            if h != ANONYMOUS && part.users.insert(h, 1).is_none() {
                new.push(h);
            }
        }
        let empty = part.is_empty();
        // The parts' claims are bounded, so the sums stay far below u64::MAX; saturating
        // keeps a mistake in those bounds from wrapping counts to nonsense.
        remote.viewers = remote
            .viewers
            .saturating_sub(old_viewers)
            .saturating_add(viewers);
        remote.connections = remote
            .connections
            .saturating_sub(old_connections)
            .saturating_add(connections);
        for h in gone {
            remote.release(h, &self.users);
        }
        for h in new {
            remote.hold(h, &self.users);
        }
        if empty {
            self.remove_part(node);
        }
        !empty
    }

    /// Phoenix format: applies `node`'s joins and leaves, both named by the sender's refs.
    /// With `replace` (a snapshot) `joins` is the node's full list: entries it no longer
    /// names leave, entries already known stay untouched, new ones join. Each new entry
    /// gets a ref of this node from `fresh`. Returns whether the node still has a part here.
    fn apply_remote_phoenix(
        &mut self,
        node: u32,
        joins: Vec<Arrival>,
        leaves: &[u64],
        replace: bool,
        fresh: &mut dyn FnMut() -> u64,
    ) -> bool {
        let mut leaving: Vec<u64> = leaves.to_vec();
        if replace {
            let named: HashSet<u64, RandomState> = joins.iter().map(|a| a.entry.phx_ref).collect();
            if let Some(part) = self.part(node) {
                leaving.extend(part.entries.keys().filter(|r| !named.contains(*r)));
            }
        }
        for r in leaving {
            self.remote_leave(node, r);
        }
        for mut a in joins {
            let sent_ref = a.entry.phx_ref;
            if self
                .part(node)
                .is_some_and(|p| p.entries.contains_key(&sent_ref))
            {
                continue;
            }
            // The sender names the ref its own clients last saw; here `phx_ref_prev` may
            // only name a ref this node's clients saw, which leaves in this same diff.
            let prev = self
                .remote
                .as_ref()
                .and_then(|r| r.left.get(&(node, a.entry.prev_ref)).copied())
                .filter(|p| self.state.phoenix().is_some_and(|s| s.leaves(*p)));
            a.entry.prev_ref = prev.unwrap_or(0);
            a.entry.phx_ref = fresh();
            self.remote_join(node, sent_ref, a);
        }
        let empty = self.part(node).is_none_or(Part::is_empty);
        if empty {
            self.remove_part(node);
        }
        !empty
    }

    /// Removes everything `node` contributed; its entries leave through the next poll.
    pub fn drop_remote_node(&mut self, node: u32) {
        let refs: Vec<u64> = self
            .part(node)
            .map(|p| p.entries.keys().copied().collect())
            .unwrap_or_default();
        for r in refs {
            self.remote_leave(node, r);
        }
        self.apply_remote_counts(node, 0, 0, &[], &[], true);
    }

    /// How many presences `node` holds here: what bounds a peer's memory. In counts
    /// format, its claimed connections or, if more, the users it sent; in phoenix format,
    /// its entries (`connections` counts them, and users never outnumber them).
    pub fn remote_part_size(&self, node: u32) -> usize {
        self.part(node).map_or(0, Part::size)
    }

    /// What `remote_part_size` will be after `apply_remote_counts` with these arguments.
    fn remote_counts_size_after(
        &self,
        node: u32,
        connections: u64,
        added: &[u64],
        removed: &[u64],
        replace: bool,
    ) -> usize {
        let empty = HashMap::default();
        let users = match (replace, self.part(node)) {
            (false, Some(p)) => &p.users,
            _ => &empty,
        };
        let gone: HashSet<u64, RandomState> = removed
            .iter()
            .copied()
            .filter(|h| users.contains_key(h))
            .collect();
        let mut fresh: HashSet<u64, RandomState> = HashSet::default();
        for &h in added {
            if h != ANONYMOUS && (!users.contains_key(&h) || gone.contains(&h)) {
                fresh.insert(h);
            }
        }
        let n = users.len() - gone.len() + fresh.len();
        n.max(usize::try_from(connections).unwrap_or(usize::MAX))
    }

    /// What `remote_part_size` will be after `apply_remote_phoenix` with these refs.
    fn remote_phoenix_size_after(
        &self,
        node: u32,
        joins: &[u64],
        leaves: &[u64],
        replace: bool,
    ) -> usize {
        let empty = HashMap::default();
        let entries = match (replace, self.part(node)) {
            (false, Some(p)) => &p.entries,
            _ => &empty,
        };
        let gone: HashSet<u64, RandomState> = leaves
            .iter()
            .copied()
            .filter(|r| entries.contains_key(r))
            .collect();
        let fresh: HashSet<u64, RandomState> = joins
            .iter()
            .copied()
            .filter(|r| !entries.contains_key(r) || gone.contains(r))
            .collect();
        entries.len() - gone.len() + fresh.len()
    }

    fn part(&self, node: u32) -> Option<&Part> {
        self.remote
            .as_ref()?
            .parts
            .iter()
            .find(|(n, _)| *n == node)
            .map(|(_, p)| p)
    }

    fn remove_part(&mut self, node: u32) {
        if let Some(remote) = &mut self.remote {
            remote.parts.retain(|(n, _)| *n != node);
            if remote.parts.is_empty() && remote.left.is_empty() {
                self.remote = None;
            }
        }
    }

    fn remote_join(&mut self, node: u32, sent_ref: u64, a: Arrival) {
        let remote = self.remote.get_or_insert_with(Box::default);
        let i = remote.part_index(node);
        let part = &mut remote.parts[i].1;
        let phx_ref = a.entry.phx_ref;
        let anonymous = a.entry.key.is_none();
        let mut first = false;
        if anonymous {
            part.viewers += 1;
        } else {
            let n = part.users.entry(a.key_hash).or_insert(0);
            *n += 1;
            first = *n == 1;
        }
        part.connections += 1;
        part.entries
            .insert(sent_ref, (Box::new(a.entry), a.key_hash));
        remote.connections += 1;
        if anonymous {
            remote.viewers += 1;
        }
        if first {
            remote.hold(a.key_hash, &self.users);
        }
        if let Some(s) = self.state.phoenix_mut() {
            s.remote_joined(phx_ref, node, sent_ref);
        }
    }

    fn remote_leave(&mut self, node: u32, sent_ref: u64) {
        let Some(remote) = &mut self.remote else {
            return;
        };
        let Some((_, part)) = remote.parts.iter_mut().find(|(n, _)| *n == node) else {
            return;
        };
        let Some((entry, h)) = part.entries.remove(&sent_ref) else {
            return;
        };
        part.connections -= 1;
        remote.connections -= 1;
        let mut last = false;
        if entry.key.is_none() {
            part.viewers -= 1;
            remote.viewers -= 1;
        } else if let Some(n) = part.users.get_mut(&h) {
            *n -= 1;
            if *n == 0 {
                part.users.remove(&h);
                last = true;
            }
        }
        if last {
            remote.release(h, &self.users);
        }
        remote.left.insert((node, sent_ref), entry.phx_ref);
        if let Some(s) = self.state.phoenix_mut() {
            s.note_leave(entry);
        }
    }
}
