//! Other nodes' contributions to a topic (cluster mode).
//!
//! Each remote node's part of a topic is kept apart, so that a node that goes away is
//! removed as a unit. A part is counted here the same way in every format: its viewers,
//! its connections and its users by keyed hash. Distinct users stay exact across nodes: a
//! key hash counts once however many nodes (this one included) hold it. What a format
//! keeps of the parts beyond that counting is its `PeerState`, kept beside it, and the
//! merge of a peer's change is the format's (`format/`), which drives the counting
//! through `PeerCountsMut`. Maps keyed by values a peer chooses (its key hashes) use a
//! randomly keyed hasher, so a peer cannot pile them into one bucket.

use super::{Topic, Users, ANONYMOUS};
use crate::format::{Change, FormatPeers, PeerCounts, PeerCountsMut, PeerState};
use crate::hash::HashMap;
use std::collections::hash_map::RandomState;

/// Every remote node's part of one topic.
pub(crate) struct Remote {
    /// The counting every format shares.
    pub counts: Parts,
    /// What the format keeps beyond it.
    pub format: PeerState,
}

/// The counting of every remote node's part of one topic.
#[derive(Default)]
pub(crate) struct Parts {
    parts: Vec<(u32, Part)>,
    /// Key hash → number of remote nodes holding it.
    holders: HashMap<u64, u32, RandomState>,
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
}

impl Part {
    fn size(&self) -> usize {
        usize::try_from(self.connections)
            .unwrap_or(usize::MAX)
            .max(self.users.len())
    }

    fn is_empty(&self) -> bool {
        self.viewers == 0 && self.connections == 0 && self.users.is_empty()
    }
}

impl Remote {
    /// No node has a part here.
    pub fn is_empty(&self) -> bool {
        self.counts.parts.is_empty()
    }

    /// Nothing is kept: neither a node's part nor anything of the format's.
    fn is_spent(&self) -> bool {
        self.is_empty() && self.format.is_empty()
    }

    #[inline]
    pub fn local_user_appeared(&mut self, h: u64) {
        if self.counts.holders.contains_key(&h) {
            self.counts.only_remote -= 1;
        }
    }

    #[inline]
    pub fn local_user_left(&mut self, h: u64) {
        if self.counts.holders.contains_key(&h) {
            self.counts.only_remote += 1;
        }
    }

    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let c = &self.counts;
        c.parts.capacity() * size_of::<(u32, Part)>()
            + c.holders.allocation_size()
            + c.parts
                .iter()
                .map(|(_, p)| p.users.allocation_size())
                .sum::<usize>()
            + self.format.heap_bytes()
    }
}

impl Parts {
    fn part(&self, node: u32) -> Option<&Part> {
        self.parts.iter().find(|(n, _)| *n == node).map(|(_, p)| p)
    }

    fn part_mut(&mut self, node: u32) -> &mut Part {
        let i = match self.parts.iter().position(|(n, _)| *n == node) {
            Some(i) => i,
            None => {
                self.parts.push((node, Part::default()));
                self.parts.len() - 1
            }
        };
        &mut self.parts[i].1
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

    /// Removes `node`'s part, whatever it holds.
    fn remove(&mut self, node: u32, local: &Users) {
        let Some(i) = self.parts.iter().position(|(n, _)| *n == node) else {
            return;
        };
        let (_, part) = self.parts.remove(i);
        self.viewers = self.viewers.saturating_sub(part.viewers);
        self.connections = self.connections.saturating_sub(part.connections);
        for h in part.users.into_keys() {
            self.release(h, local);
        }
    }
}

impl PeerCounts for Parts {
    fn size(&self, node: u32) -> usize {
        self.part(node).map_or(0, Part::size)
    }

    fn users(&self, node: u32) -> usize {
        self.part(node).map_or(0, |p| p.users.len())
    }

    fn holds(&self, node: u32, h: u64) -> bool {
        self.part(node).is_some_and(|p| p.users.contains_key(&h))
    }
}

/// The counting of the remote parts as a format's merge changes it, with this node's
/// users, which decide whether a remote user adds to the topic's.
struct Counting<'a> {
    parts: &'a mut Parts,
    local: &'a Users,
}

impl PeerCountsMut for Counting<'_> {
    fn set_totals(&mut self, node: u32, viewers: u64, connections: u64) {
        let part = self.parts.part_mut(node);
        let old = (part.viewers, part.connections);
        part.viewers = viewers;
        part.connections = connections;
        // The parts' claims are bounded, so the sums stay far below u64::MAX; saturating
        // keeps a mistake in those bounds from wrapping counts to nonsense.
        let p = &mut *self.parts;
        p.viewers = p.viewers.saturating_sub(old.0).saturating_add(viewers);
        p.connections = p
            .connections
            .saturating_sub(old.1)
            .saturating_add(connections);
    }

    fn add_user(&mut self, node: u32, h: u64) {
        if self.parts.part_mut(node).users.insert(h, 1).is_none() {
            self.parts.hold(h, self.local);
        }
    }

    fn remove_user(&mut self, node: u32, h: u64) {
        if self.parts.part_mut(node).users.remove(&h).is_some() {
            self.parts.release(h, self.local);
        }
    }

    fn retain_users(&mut self, node: u32, keep: &dyn Fn(u64) -> bool) {
        let mut gone = Vec::new();
        self.parts.part_mut(node).users.retain(|h, _| {
            let stay = keep(*h);
            if !stay {
                gone.push(*h);
            }
            stay
        });
        for h in gone {
            self.parts.release(h, self.local);
        }
    }

    fn joined(&mut self, node: u32, h: u64) {
        let part = self.parts.part_mut(node);
        part.connections += 1;
        let mut first = false;
        if h == ANONYMOUS {
            part.viewers += 1;
        } else {
            let n = part.users.entry(h).or_insert(0);
            *n += 1;
            first = *n == 1;
        }
        self.parts.connections += 1;
        if h == ANONYMOUS {
            self.parts.viewers += 1;
        }
        if first {
            self.parts.hold(h, self.local);
        }
    }

    fn left(&mut self, node: u32, h: u64) {
        let Some((_, part)) = self.parts.parts.iter_mut().find(|(n, _)| *n == node) else {
            return;
        };
        part.connections -= 1;
        self.parts.connections -= 1;
        let mut last = false;
        if h == ANONYMOUS {
            part.viewers -= 1;
            self.parts.viewers -= 1;
        } else if let Some(n) = part.users.get_mut(&h) {
            *n -= 1;
            if *n == 0 {
                part.users.remove(&h);
                last = true;
            }
        }
        if last {
            self.parts.release(h, self.local);
        }
    }

    fn settle(&mut self, node: u32) -> bool {
        let Some(i) = self.parts.parts.iter().position(|(n, _)| *n == node) else {
            return false;
        };
        if self.parts.parts[i].1.is_empty() {
            self.parts.parts.remove(i);
            return false;
        }
        true
    }
}

impl Topic {
    /// Merges `change` into `node`'s part (with `replace`, a snapshot: it is the node's
    /// whole part). `key_hash` hashes a key of an arriving presence, `fresh` gives this
    /// node's refs. Returns whether the node still has a part here. The caller has checked
    /// the change's claims against this node's bounds.
    pub fn apply_remote(
        &mut self,
        node: u32,
        change: Change,
        replace: bool,
        key_hash: impl Fn(&str) -> u64,
        fresh: &mut dyn FnMut() -> u64,
    ) -> bool {
        let state = &self.state;
        let remote = self.remote.get_or_insert_with(|| {
            Box::new(Remote {
                counts: Parts::default(),
                format: state.new_peers(),
            })
        });
        let mut counts = Counting {
            parts: &mut remote.counts,
            local: &self.users,
        };
        let holds = self.state.merge(
            &mut remote.format,
            &mut counts,
            node,
            change,
            replace,
            &key_hash,
            fresh,
        );
        self.drop_spent_remote();
        holds
    }

    /// What `remote_part_size(node)` will be after `apply_remote` with these arguments.
    pub fn remote_size_after(&self, node: u32, change: &Change, replace: bool) -> usize {
        match &self.remote {
            Some(r) => self
                .state
                .size_after(Some(&r.format), &r.counts, node, change, replace),
            None => self
                .state
                .size_after(None, &Parts::default(), node, change, replace),
        }
    }

    /// Removes everything `node` contributed; its presences leave through the next poll.
    pub fn drop_remote_node(&mut self, node: u32) {
        let Some(remote) = &mut self.remote else {
            return;
        };
        let mut counts = Counting {
            parts: &mut remote.counts,
            local: &self.users,
        };
        self.state.drop_peer(&mut remote.format, &mut counts, node);
        remote.counts.remove(node, &self.users);
        self.drop_spent_remote();
    }

    /// How many presences `node` holds here: what bounds a peer's memory. Its connections
    /// or, if more, its distinct users (a counts-format peer claims both).
    pub fn remote_part_size(&self, node: u32) -> usize {
        self.remote.as_ref().map_or(0, |r| r.counts.size(node))
    }

    /// A poll published the leaves: the format forgets what only a later join could name.
    pub(super) fn forget_remote_leaves(&mut self) {
        if let Some(r) = &mut self.remote {
            r.format.forget_leaves();
        }
        self.drop_spent_remote();
    }

    fn drop_spent_remote(&mut self) {
        if self.remote.as_ref().is_some_and(|r| r.is_spent()) {
            self.remote = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Format;

    /// A user held by several nodes, through presences joining and leaving or through
    /// counts-style claims, counts once, and not at all beside a local presence of it.
    #[test]
    fn a_user_on_several_nodes_counts_once() {
        let mut local = Users::default();
        let mut parts = Parts::default();
        let mut c = Counting {
            parts: &mut parts,
            local: &local,
        };
        c.joined(1, 7);
        c.joined(1, 7);
        c.joined(2, 7);
        c.joined(2, ANONYMOUS);
        c.set_totals(3, 0, 1);
        c.add_user(3, 7);
        c.add_user(3, 7);
        let sums = |p: &Parts| (p.viewers, p.connections, p.only_remote);
        assert_eq!(sums(c.parts), (1, 5, 1));
        assert_eq!(
            (c.parts.size(1), c.parts.users(1), c.parts.size(3)),
            (2, 1, 1)
        );
        c.left(1, 7);
        c.left(1, 7);
        assert!(!c.settle(1), "node 1 holds nothing");
        c.left(2, 7);
        c.left(2, ANONYMOUS);
        assert!(!c.settle(2));
        assert_eq!(sums(c.parts), (0, 1, 1), "node 3 still holds the user");
        assert!(c.settle(3));

        // Held here too, the user adds nothing from the other nodes.
        local.add(7);
        let mut remote = Remote {
            counts: parts,
            format: Format::Counts.new_state().new_peers(),
        };
        remote.local_user_appeared(7);
        assert_eq!(remote.counts.only_remote, 0);
        let mut c = Counting {
            parts: &mut remote.counts,
            local: &local,
        };
        c.joined(4, 7);
        c.remove_user(3, 7);
        assert_eq!(c.parts.only_remote, 0);
        local.sub(7);
        remote.local_user_left(7);
        assert_eq!(remote.counts.only_remote, 1, "node 4 holds it");
    }

    fn key_hash(k: &str) -> u64 {
        1 + k.bytes().map(u64::from).sum::<u64>()
    }

    /// In every format, the size a peer's change is checked at before it is merged is the
    /// size its part has after; the receiver counts what the sender holds, a user present
    /// on both nodes once; a node that goes leaves nothing behind once polled.
    #[test]
    fn a_peer_part_is_as_large_as_announced_in_every_format() {
        for &f in Format::ALL {
            let mut sender = Topic::new("t", 1, true, f);
            let mut receiver = Topic::new("t", 1, true, f);
            let mut next = 0;
            let mut new_ref = || {
                next += 1;
                next
            };
            let mut fresh_next = 1000;
            let mut fresh = || {
                fresh_next += 1;
                fresh_next
            };
            let mut merge = |receiver: &mut Topic, change: Change, replace: bool| {
                let announced = receiver.remote_size_after(2, &change, replace);
                receiver.apply_remote(2, change, replace, key_hash, &mut fresh);
                assert_eq!(receiver.remote_part_size(2), announced, "{f:?}");
            };
            let track = |t: &mut Topic, conn: u64, key: Option<&str>, r: u64| {
                let h = key.map_or(ANONYMOUS, key_hash);
                t.insert(conn, h, key, "{}", || r);
            };
            track(&mut sender, 1, Some("alice"), new_ref());
            track(&mut sender, 2, Some("alice"), new_ref());
            track(&mut sender, 3, None, new_ref());
            track(&mut sender, 4, Some("bob"), new_ref());
            merge(&mut receiver, sender.drain_outbox().unwrap(), false);
            assert_eq!(receiver.counts(), sender.local_counts(), "{f:?}");

            sender.remove(2, key_hash("alice"));
            sender.remove(4, key_hash("bob"));
            track(&mut sender, 5, Some("carol"), new_ref());
            merge(&mut receiver, sender.drain_outbox().unwrap(), false);
            assert_eq!(receiver.counts(), sender.local_counts(), "{f:?}");
            merge(&mut receiver, sender.full_change().unwrap(), true);
            assert_eq!(receiver.counts(), sender.local_counts(), "{f:?}");

            track(&mut receiver, 9, Some("alice"), new_ref());
            let c = receiver.counts();
            assert_eq!((c.viewers, c.users, c.connections), (1, 2, 4), "{f:?}");

            receiver.drop_remote_node(2);
            assert_eq!(receiver.remote_part_size(2), 0, "{f:?}");
            assert_eq!(receiver.counts(), receiver.local_counts(), "{f:?}");
            receiver.take_diff("anon", &mut String::new());
            assert!(receiver.remote.is_none(), "{f:?}");
        }
    }

    /// Changes that name a presence twice (a leave and a join of the same ref or hash, a
    /// snapshot repeating what the part holds) leave the part as large as announced.
    #[test]
    fn repeats_within_a_change_are_announced_as_merged() {
        use crate::format::WireEntry;
        let wire = |r: u64, key: Option<&str>| WireEntry {
            phx_ref: r,
            prev_ref: 0,
            key: key.map(Into::into),
            meta: "{}".into(),
        };
        let phoenix = |joins: Vec<WireEntry>, leaves: Vec<u64>| Change::Phoenix { joins, leaves };
        let counts = |connections: u64, added: Vec<u64>, removed: Vec<u64>| Change::Counts {
            viewers: 0,
            connections,
            added,
            removed,
        };
        let cases = [
            (
                Format::Phoenix,
                vec![
                    (
                        phoenix(vec![wire(1, Some("a")), wire(2, None)], vec![]),
                        false,
                    ),
                    (
                        phoenix(vec![wire(1, Some("a")), wire(3, Some("b"))], vec![1]),
                        false,
                    ),
                    (
                        phoenix(vec![wire(1, Some("a")), wire(1, Some("a"))], vec![9]),
                        true,
                    ),
                    (phoenix(vec![wire(4, None)], vec![4, 1]), false),
                ],
            ),
            (
                Format::Counts,
                vec![
                    (counts(2, vec![5, 6], vec![]), false),
                    (counts(0, vec![5, 7, 7], vec![5, 6]), false),
                    (counts(1, vec![5, 5, ANONYMOUS], vec![7]), true),
                    (counts(0, vec![8], vec![8, 5]), false),
                ],
            ),
        ];
        for (f, changes) in cases {
            let mut t = Topic::new("t", 1, true, f);
            let mut next = 100;
            for (i, (change, replace)) in changes.into_iter().enumerate() {
                let announced = t.remote_size_after(2, &change, replace);
                t.apply_remote(2, change, replace, key_hash, &mut || {
                    next += 1;
                    next
                });
                assert_eq!(t.remote_part_size(2), announced, "{f:?} change {i}");
            }
        }
    }
}
