//! The state of one topic: who is present, the counts, and what changed since the last poll
//! (for clients) and since the last tick (for other nodes).
//!
//! Distinct users are counted through a refcount per keyed hash of the key, not per key
//! string: counts format keeps nothing else of a key. Other nodes' users arrive as the
//! same keyed hashes (see `remote.rs`), so a user on two nodes counts once.

mod held;
mod remote;

pub(crate) use crate::format::phoenix::Entry;
use crate::format::phoenix::HeldEntries;
pub use crate::format::Counts;
use crate::format::{Change, Format, FormatState, TopicState};
pub(crate) use crate::format::{Outbox, ANONYMOUS};
use crate::table::{Prehashed, Probe, Table};
pub(crate) use held::Held;
pub(crate) use remote::Remote;

/// What a topic's next poll reports.
pub(crate) struct Diff {
    pub seq: u64,
    pub counts: Counts,
    /// Whether the topic became occupied or vacated since the last poll.
    pub occupancy: Occupancy,
}

/// A topic's passage between empty and not empty (counting every node's presences, as
/// `counts` does) from one poll to the next: what Pusher calls `channel_occupied` and
/// `channel_vacated`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Occupancy {
    /// Empty at both polls, or not empty at both.
    #[default]
    Unchanged,
    /// Empty at the last poll (or never polled), not empty now.
    Occupied,
    /// Not empty at the last poll, empty now.
    Vacated,
}

impl Occupancy {
    /// From the counts published at the last poll to the counts now.
    pub(crate) fn between(before: Counts, now: Counts) -> Occupancy {
        match (before.connections > 0, now.connections > 0) {
            (false, true) => Occupancy::Occupied,
            (true, false) => Occupancy::Vacated,
            _ => Occupancy::Unchanged,
        }
    }

    /// `"occupied"`, `"vacated"`, or `None` when unchanged: the name the poll forms use.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Occupancy::Unchanged => None,
            Occupancy::Occupied => Some("occupied"),
            Occupancy::Vacated => Some("vacated"),
        }
    }
}

/// How many local presences a topic holds. The presences themselves (connection and key
/// hash) live in the connection index (`shard::ConnShard`), where an untrack finds all it
/// needs in one probe; a topic only counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Presences(u64);

impl Presences {
    pub fn len(&self) -> u64 {
        self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
}

/// Local user refcounts: keyed hash of a key → local presences with that key. A 16-byte
/// slot per user, in a table found with one probe (see `table.rs`).
#[derive(Default)]
struct Users(Table<2, Prehashed>);

impl Users {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn contains_key(&self, h: &u64) -> bool {
        self.0.get(*h).is_some()
    }

    pub fn keys(&self) -> impl Iterator<Item = &u64> {
        self.0.iter().map(|s| &s[0])
    }

    /// Starts loading where `h`'s slot is (see `Table::prefetch`).
    #[inline]
    pub fn prefetch(&self, h: u64) {
        self.0.prefetch(h);
    }

    /// Counts one more presence of `h`; true when it is the first.
    #[inline]
    fn add(&mut self, h: u64) -> bool {
        match self.0.entry(h) {
            Probe::Found(i) => {
                self.0.at_mut(i)[1] += 1;
                false
            }
            Probe::Vacant(i) => {
                self.0.insert_at(i, [h, 1]);
                true
            }
        }
    }

    /// Counts one presence of `h` less; true when it was the last.
    #[inline]
    fn sub(&mut self, h: u64) -> bool {
        let Probe::Found(i) = self.0.find(h) else {
            return false;
        };
        let n = &mut self.0.at_mut(i)[1];
        *n -= 1;
        if *n > 0 {
            return false;
        }
        self.0.remove_at(i);
        self.0.shrink();
        true
    }

    fn heap_bytes(&self) -> usize {
        self.0.heap_bytes()
    }
}

/// The state of one topic. The fields every track and untrack reads come first and the
/// struct starts on a cache-line boundary, so that they share one line (two with the
/// cluster and phoenix fields): at a million presences a topic's lines are rarely in the
/// closest caches.
#[repr(C, align(64))]
pub(crate) struct Topic {
    name: Box<str>,
    /// Local key-hash refcounts.
    users: Users,
    /// How many local presences; each is an entry of the connection index.
    presences: Presences,
    viewers: u64,
    /// Set while the topic sits in its shard's poll list.
    dirty: bool,
    /// Other nodes' contributions (cluster mode).
    remote: Option<Box<Remote>>,
    /// Local changes for other nodes; `Some` only in cluster mode.
    outbox: Option<Box<Outbox>>,
    /// What the format keeps beyond the counts (see `format/`).
    state: TopicState,
    /// The keyed hash of `name` its shard indexes it by.
    hash: u64,
    seq: u64,
    published: Counts,
    /// Leaves held for the leave grace; they still count (see `held.rs`).
    held: Option<Box<Held>>,
}

impl Topic {
    pub fn new(name: &str, hash: u64, replicate: bool, format: Format) -> Topic {
        Topic {
            name: name.into(),
            hash,
            presences: Presences::default(),
            state: format.new_state(),
            users: Users::default(),
            viewers: 0,
            published: Counts::default(),
            seq: 0,
            dirty: false,
            remote: None,
            outbox: replicate.then(Box::default),
            held: None,
        }
    }

    #[inline]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The keyed hash of the name its shard indexes it by.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Notes that the topic sits in its shard's poll list; false if it sat there already.
    #[inline]
    pub fn mark_dirty(&mut self) -> bool {
        !std::mem::replace(&mut self.dirty, true)
    }

    /// Notes that the topic left its shard's poll list.
    pub fn clear_dirty(&mut self) {
        self.dirty = false;
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Notes that the topic sits in its shard's tick list (cluster mode); false if it sat
    /// there already or the topic does not replicate.
    #[inline]
    pub fn queue_outbox(&mut self) -> bool {
        self.outbox
            .as_mut()
            .is_some_and(|o| !std::mem::replace(&mut o.queued, true))
    }

    /// Takes the local changes not yet sent to other nodes, leaving the outbox empty and
    /// unqueued; `None` when the topic does not replicate.
    pub fn take_outbox(&mut self) -> Option<Outbox> {
        self.outbox.as_mut().map(|o| std::mem::take(&mut **o))
    }

    /// Starts loading the refcount slot of user `h` (see `Table::prefetch`).
    #[inline]
    pub fn prefetch_user(&self, h: u64) {
        self.users.prefetch(h);
    }

    /// The keyed hashes of the users present on this node.
    pub fn local_users(&self) -> impl Iterator<Item = u64> + '_ {
        self.users.keys().copied()
    }

    /// The live counts, O(1).
    pub fn counts(&self) -> Counts {
        let mut c = self.local_counts();
        if let Some(r) = &self.remote {
            let r = &r.counts;
            c.viewers = c.viewers.saturating_add(r.viewers);
            c.connections = c.connections.saturating_add(r.connections);
            c.users = c.users.saturating_add(r.only_remote);
        }
        c
    }

    /// This node's own counts.
    pub fn local_counts(&self) -> Counts {
        Counts {
            viewers: self.viewers,
            users: self.users.len() as u64,
            connections: self.presences.len(),
        }
    }

    /// The sequence number of the last polled diff (0 before the first).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// True when nothing is present here or elsewhere, nothing waits for a poll or a tick,
    /// and clients were last told zero: the topic can be dropped without anyone noticing.
    pub fn is_vacant(&self) -> bool {
        self.presences.is_empty()
            && self.state.is_settled()
            && self.published == Counts::default()
            && self.remote.as_ref().is_none_or(|r| r.is_empty())
            && self.outbox.as_ref().is_none_or(|o| !o.queued)
    }

    /// Adds a local presence; the caller has checked that `conn` is absent and records
    /// the presence in the connection index. `new_ref` names it, if the format names
    /// presences.
    #[inline]
    pub fn insert(
        &mut self,
        conn: u64,
        key_hash: u64,
        key: Option<&str>,
        meta: &str,
        new_ref: impl FnOnce() -> u64,
    ) {
        if key_hash == ANONYMOUS {
            self.viewers += 1;
        } else if self.users.add(key_hash) {
            self.user_appeared(key_hash);
        }
        self.state
            .join(conn, key, meta, new_ref, self.outbox.as_deref_mut());
        self.presences.0 += 1;
    }

    /// Removes the local presence of `conn`, tracked with `key_hash`; the caller took it
    /// out of the connection index.
    pub fn remove(&mut self, conn: u64, key_hash: u64) {
        debug_assert!(!self.presences.is_empty());
        self.presences.0 -= 1;
        if key_hash == ANONYMOUS {
            self.viewers -= 1;
        } else if self.users.sub(key_hash) {
            self.user_left(key_hash);
        }
        self.state.leave(conn, self.outbox.as_deref_mut());
    }

    /// Replaces the meta of `conn`, under a new ref if the format names presences.
    /// Returns whether clients will see a change (counts format keeps no meta: there is
    /// nothing to change).
    pub fn update(&mut self, conn: u64, meta: &str, new_ref: impl FnOnce() -> u64) -> bool {
        self.state
            .update(conn, meta, new_ref, self.outbox.as_deref_mut())
    }

    /// A key hash got its first local presence.
    fn user_appeared(&mut self, h: u64) {
        if let Some(r) = &mut self.remote {
            r.local_user_appeared(h);
        }
        if let Some(o) = &mut self.outbox {
            if !o.removed.remove(&h) {
                o.added.insert(h);
            }
        }
    }

    /// A key hash lost its last local presence.
    fn user_left(&mut self, h: u64) {
        if let Some(r) = &mut self.remote {
            r.local_user_left(h);
        }
        if let Some(o) = &mut self.outbox {
            if !o.added.remove(&h) {
                o.removed.insert(h);
            }
        }
    }

    fn held(&self) -> Option<&dyn HeldEntries> {
        self.held.as_deref().map(|h| h as &dyn HeldEntries)
    }

    /// This node's whole part of the topic, or `None` where it has no presence: what a
    /// snapshot sends.
    pub fn full_change(&self) -> Option<Change> {
        let local = self.local_counts();
        if local.connections == 0 {
            return None;
        }
        Some(
            self.state
                .full_change(local, self.local_users(), self.held()),
        )
    }

    /// This node's changes since the last tick, leaving the outbox empty and unqueued;
    /// `None` when the topic does not replicate.
    pub fn drain_outbox(&mut self) -> Option<Change> {
        let mut o = self.take_outbox()?;
        Some(
            self.state
                .drain_outbox(&mut o, self.local_counts(), self.held()),
        )
    }

    /// What the next poll will report for this topic, or `None` when clients' view is
    /// unchanged (a join and a leave that cancel, or nothing at all).
    pub fn next_diff(&self) -> Option<Diff> {
        let now = self.counts();
        self.state.changed(self.published, now).then_some(Diff {
            seq: self.seq + 1,
            counts: now,
            occupancy: Occupancy::between(self.published, now),
        })
    }

    /// Renders the diff announced by `next_diff` into `out` and makes the current state
    /// the published one.
    pub fn take_diff(&mut self, viewers_key: &str, out: &mut String) {
        let now = self.counts();
        self.state.write_diff(
            out,
            self.published,
            now,
            self.remote.as_deref().map(|r| &r.format),
            self.held.as_deref().map(|h| h as &dyn HeldEntries),
            viewers_key,
        );
        self.forget_remote_leaves();
        self.published = now;
        self.seq += 1;
    }

    /// Renders the state as of the last poll: what a client must start from so that the
    /// diffs of the following polls apply exactly.
    pub fn write_state(&self, viewers_key: &str, out: &mut String) {
        self.state.write_state(
            out,
            self.published,
            self.remote.as_deref().map(|r| &r.format),
            self.held(),
            viewers_key,
        );
    }

    /// Heap bytes held by this topic, estimated from table capacities.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let mut bytes =
            self.name.len() + self.users.heap_bytes() + self.state.heap_bytes(self.held());
        if let Some(r) = &self.remote {
            bytes += size_of::<Remote>() + r.heap_bytes();
        }
        if let Some(h) = &self.held {
            bytes += size_of::<Held>() + h.heap_bytes();
        }
        if let Some(o) = &self.outbox {
            bytes += size_of::<Outbox>()
                + o.added.allocation_size()
                + o.removed.allocation_size()
                + o.joined.allocation_size()
                + o.left.allocation_size();
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a track or an untrack reads of a topic sits in its first cache line.
    #[test]
    fn hot_fields_share_the_first_line() {
        use std::mem::{align_of, offset_of, size_of};
        assert_eq!(align_of::<Topic>(), 64);
        for end in [
            offset_of!(Topic, name) + size_of::<Box<str>>(),
            offset_of!(Topic, users) + size_of::<Users>(),
            offset_of!(Topic, presences) + size_of::<Presences>(),
            offset_of!(Topic, viewers) + size_of::<u64>(),
            offset_of!(Topic, dirty) + 1,
        ] {
            assert!(end <= 64, "{end}");
        }
        assert_eq!(size_of::<Option<Topic>>(), size_of::<Topic>());
        // Topics sit inline in their shard's slots: a field more in any format's state
        // would cost every topic a fourth line, whatever its format. What a format keeps
        // of other nodes' parts lives in the remote part (`remote.rs`) instead.
        assert!(size_of::<Topic>() <= 3 * 64, "{}", size_of::<Topic>());
    }

    #[test]
    fn users_count_distinct_keys() {
        let mut t = Topic::new("t", 1, false, Format::Counts);
        let no_ref = || -> u64 { unreachable!("counts format names no presence") };
        t.insert(1, 7, None, "{}", no_ref);
        t.insert(2, 7, None, "{}", no_ref);
        t.insert(3, ANONYMOUS, None, "{}", no_ref);
        t.insert(4, 8, None, "{}", no_ref);
        let c = t.local_counts();
        assert_eq!((c.viewers, c.users, c.connections), (1, 2, 4));
        assert_eq!(
            t.users
                .keys()
                .copied()
                .collect::<std::collections::HashSet<u64>>(),
            std::collections::HashSet::from([7, 8])
        );
        t.remove(1, 7);
        t.remove(4, 8);
        assert!(t.users.contains_key(&7) && !t.users.contains_key(&8));
        t.remove(2, 7);
        t.remove(3, ANONYMOUS);
        assert_eq!(t.local_counts(), Counts::default());
        assert!(t.presences.is_empty());
    }
}
