//! The state of one topic: who is present, the counts, and what changed since the last poll
//! (for clients) and since the last tick (for other nodes).
//!
//! Distinct users are counted through a refcount per keyed hash of the key, not per key
//! string: counts format keeps nothing else of a key. Other nodes' users arrive as the
//! same keyed hashes (see `remote.rs`), so a user on two nodes counts once.

mod held;
mod remote;
pub(crate) mod render;

use crate::config::Format;
use crate::hash::{ConnBuild, HashMap, HashSet, PrehashedBuild};
use crate::table::{Prehashed, Probe, Table};
use held::Held;
pub(crate) use remote::Arrival;
use remote::Remote;

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

/// A listed presence of the phoenix format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The key, or `None` for a viewer (listed under the configured viewers key).
    pub key: Option<Box<str>>,
    /// The host's meta object, validated and trimmed.
    pub meta: Box<str>,
    /// This presence's `phx_ref`.
    pub phx_ref: u64,
    /// The `phx_ref` this presence replaced through an update, or 0.
    pub prev_ref: u64,
}

/// Where a joined entry lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loc {
    /// A local presence, by connection.
    Local(u64),
    /// A remote node's entry, by node and the ref that node gave it.
    Remote(u32, u64),
    /// A local presence held for the leave grace, by its ref.
    Held,
}

/// A change not yet polled, phoenix format. Keyed by `phx_ref` in `Topic::pending`.
enum Pending {
    /// Joined since the last poll; the entry is still live at this location.
    Joined(Loc),
    /// Published at the last poll and gone since; kept to render the leave.
    Left(Box<Entry>),
}

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
    /// Phoenix format only: conn → what a list shows of that presence.
    entries: HashMap<u64, Box<Entry>, ConnBuild>,
    /// The keyed hash of `name` its shard indexes it by.
    hash: u64,
    seq: u64,
    published: Counts,
    pending: HashMap<u64, Pending, ConnBuild>,
    /// Leaves held for the leave grace; they still count (see `held.rs`).
    held: Option<Box<Held>>,
}

impl Topic {
    pub fn new(name: &str, hash: u64, replicate: bool) -> Topic {
        Topic {
            name: name.into(),
            hash,
            presences: Presences::default(),
            entries: HashMap::default(),
            users: Users::default(),
            viewers: 0,
            published: Counts::default(),
            seq: 0,
            dirty: false,
            pending: HashMap::default(),
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

    /// Phoenix format: whether `conn` has a listed presence here.
    pub fn has_entry(&self, conn: u64) -> bool {
        self.entries.contains_key(&conn)
    }

    /// True when nothing is present here or elsewhere, nothing waits for a poll or a tick,
    /// and clients were last told zero: the topic can be dropped without anyone noticing.
    pub fn is_vacant(&self) -> bool {
        self.presences.is_empty()
            && self.pending.is_empty()
            && self.published == Counts::default()
            && self.remote.as_ref().is_none_or(|r| r.is_empty())
            && self.outbox.as_ref().is_none_or(|o| !o.queued)
    }

    /// Adds a local presence; the caller has checked that `conn` is absent and records
    /// the presence in the connection index.
    pub fn insert(&mut self, conn: u64, key_hash: u64, entry: Option<Box<Entry>>) {
        if key_hash == ANONYMOUS {
            self.viewers += 1;
        } else if self.users.add(key_hash) {
            self.user_appeared(key_hash);
        }
        if let Some(e) = entry {
            self.pending
                .insert(e.phx_ref, Pending::Joined(Loc::Local(conn)));
            if let Some(o) = &mut self.outbox {
                o.joined.insert(e.phx_ref, conn);
            }
            self.entries.insert(conn, e);
        }
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
        if !self.entries.is_empty() {
            if let Some(e) = self.entries.remove(&conn) {
                self.outbox_left(e.phx_ref);
                self.note_leave(e);
            }
            if self.entries.capacity() > 64 && self.entries.len() * 4 < self.entries.capacity() {
                self.entries.shrink_to_fit();
            }
        }
    }

    /// Phoenix format: replaces the meta of `conn` under a new ref. Returns false when
    /// `conn` has no entry here (counts format keeps none: there is nothing to change).
    pub fn update(&mut self, conn: u64, meta: &str, new_ref: u64) -> bool {
        let Some(old) = self.entries.get_mut(&conn) else {
            return false;
        };
        // `phx_ref_prev` names the meta clients last saw: when the old entry itself was
        // never published (a second update, or an update right after the track, within
        // one poll window), that is the old entry's own predecessor, possibly none.
        let unpublished = matches!(self.pending.get(&old.phx_ref), Some(Pending::Joined(_)));
        let fresh = Box::new(Entry {
            key: old.key.clone(),
            meta: meta.into(),
            phx_ref: new_ref,
            prev_ref: if unpublished {
                old.prev_ref
            } else {
                old.phx_ref
            },
        });
        let old = std::mem::replace(old, fresh);
        self.outbox_left(old.phx_ref);
        self.note_leave(old);
        self.pending
            .insert(new_ref, Pending::Joined(Loc::Local(conn)));
        if let Some(o) = &mut self.outbox {
            o.joined.insert(new_ref, conn);
        }
        true
    }

    /// Records that `old` is gone. A presence clients never saw just vanishes (join and
    /// leave cancel); one they saw becomes a pending leave. Returns its ref, which an
    /// update carries on as `phx_ref_prev`, as Phoenix does.
    fn note_leave(&mut self, old: Box<Entry>) -> u64 {
        let r = old.phx_ref;
        match self.pending.remove(&r) {
            Some(Pending::Joined(_)) => {}
            // A ref is never reused, so a published ref cannot leave twice.
            Some(left @ Pending::Left(_)) => {
                self.pending.insert(r, left);
            }
            None => {
                self.pending.insert(r, Pending::Left(old));
            }
        }
        r
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

    fn outbox_left(&mut self, phx_ref: u64) {
        if let Some(o) = &mut self.outbox {
            if o.joined.remove(&phx_ref).is_none() {
                o.left.insert(phx_ref);
            }
        }
    }

    /// The entry behind a pending join, wherever it lives.
    fn joined_entry(&self, phx_ref: u64, loc: Loc) -> Option<&Entry> {
        match loc {
            Loc::Local(conn) => self.entries.get(&conn).map(|e| &**e),
            Loc::Remote(node, sent_ref) => {
                self.remote.as_ref().and_then(|r| r.entry(node, sent_ref))
            }
            Loc::Held => self.held.as_ref().and_then(|h| h.entry(phx_ref)),
        }
        .filter(|e| e.phx_ref == phx_ref)
    }

    /// Local entries, held ones included, for snapshots (phoenix format).
    pub fn local_entries(&self) -> impl Iterator<Item = &Entry> {
        let held = self.held.as_ref().into_iter().flat_map(|h| h.entries());
        self.entries.values().map(|e| &**e).chain(held)
    }

    /// The entry of a local presence by ref, for deltas (phoenix format): that of `conn`,
    /// or a held one whose connection left.
    pub fn local_entry(&self, conn: u64, phx_ref: u64) -> Option<&Entry> {
        self.joined_entry(phx_ref, Loc::Local(conn))
            .or_else(|| self.joined_entry(phx_ref, Loc::Held))
    }

    /// What the next poll will report for this topic, or `None` when clients' view is
    /// unchanged (a join and a leave that cancel, or nothing at all).
    pub fn next_diff(&self, format: Format) -> Option<Diff> {
        let now = self.counts();
        let changed = match format {
            // Clients see viewers and users only: a second tab of a user already
            // present changes nothing they show, so it sends nothing.
            Format::Counts => {
                now.viewers != self.published.viewers || now.users != self.published.users
            }
            Format::Phoenix => !self.pending.is_empty(),
        };
        changed.then_some(Diff {
            seq: self.seq + 1,
            counts: now,
            occupancy: Occupancy::between(self.published, now),
        })
    }

    /// Renders the diff announced by `next_diff` into `out` and makes the current state
    /// the published one.
    pub fn take_diff(&mut self, format: Format, viewers_key: &str, out: &mut String) {
        let now = self.counts();
        match format {
            Format::Counts => render::write_counts_diff(out, self.published, now),
            Format::Phoenix => {
                let mut joins = Vec::new();
                let mut leaves = Vec::new();
                for (r, change) in &self.pending {
                    match change {
                        Pending::Joined(loc) => joins.extend(self.joined_entry(*r, *loc)),
                        Pending::Left(e) => leaves.push(&**e),
                    }
                }
                out.push_str("{\"joins\":");
                render::write_grouped(out, &mut joins, viewers_key);
                out.push_str(",\"leaves\":");
                render::write_grouped(out, &mut leaves, viewers_key);
                out.push('}');
                self.pending.clear();
                if self.pending.capacity() > 64 {
                    self.pending.shrink_to_fit();
                }
                if let Some(r) = &mut self.remote {
                    r.forget_leaves();
                    if r.is_empty() {
                        self.remote = None;
                    }
                }
            }
        }
        self.published = now;
        self.seq += 1;
    }

    /// Renders the state as of the last poll: what a client must start from so that the
    /// diffs of the following polls apply exactly.
    pub fn write_state(&self, format: Format, viewers_key: &str, out: &mut String) {
        match format {
            Format::Counts => render::write_counts_state(out, self.published),
            Format::Phoenix => {
                let published =
                    |e: &&Entry| !matches!(self.pending.get(&e.phx_ref), Some(Pending::Joined(_)));
                let mut entries: Vec<&Entry> = self.local_entries().filter(published).collect();
                if let Some(r) = &self.remote {
                    entries.extend(r.entries().filter(published));
                }
                entries.extend(self.pending.values().filter_map(|c| match c {
                    Pending::Left(e) => Some(&**e),
                    Pending::Joined(_) => None,
                }));
                render::write_grouped(out, &mut entries, viewers_key);
            }
        }
    }

    /// Heap bytes held by this topic, estimated from table capacities.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let mut bytes = self.name.len()
            + self.entries.allocation_size()
            + self.users.heap_bytes()
            + self.pending.allocation_size();
        bytes += self.local_entries().map(Entry::heap_bytes).sum::<usize>();
        for c in self.pending.values() {
            if let Pending::Left(e) = c {
                bytes += e.heap_bytes();
            }
        }
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

impl Entry {
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Entry>() + self.key.as_ref().map_or(0, |k| k.len()) + self.meta.len()
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
    }

    #[test]
    fn users_count_distinct_keys() {
        let mut t = Topic::new("t", 1, false);
        t.insert(1, 7, None);
        t.insert(2, 7, None);
        t.insert(3, ANONYMOUS, None);
        t.insert(4, 8, None);
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
