//! The state of one topic: who is present, the counts, and what changed since the last poll
//! (for clients) and since the last tick (for other nodes).
//!
//! Distinct users are counted through a refcount per keyed hash of the key, not per key
//! string: counts format keeps nothing else of a key. Other nodes' users arrive as the
//! same keyed hashes (see `remote.rs`), so a user on two nodes counts once.

use crate::config::Format;
use crate::hash::{ConnBuild, PrehashedBuild};
use crate::remote::Remote;
use crate::render;
use std::collections::hash_map::Entry as Slot;
use std::collections::{HashMap, HashSet};

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
pub(crate) enum Loc {
    Local(u64),
    Remote(u32),
}

/// A change not yet polled, phoenix format. Keyed by `phx_ref` in `Topic::pending`.
pub(crate) enum Pending {
    /// Joined since the last poll; the entry is still live at this location.
    Joined(Loc),
    /// Published at the last poll and gone since; kept to render the leave.
    Left(Box<Entry>),
}

/// What a topic's next poll reports.
pub(crate) struct Diff {
    pub seq: u64,
    pub counts: Counts,
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

/// The state of one topic.
pub(crate) struct Topic {
    pub name: Box<str>,
    /// The keyed hash of `name` its shard indexes it by.
    pub hash: u64,
    /// Local presences: conn → keyed hash of its key (`ANONYMOUS` for a viewer). A
    /// 16-byte entry: all that counts format keeps of a presence.
    pub(crate) presences: HashMap<u64, u64, ConnBuild>,
    /// Phoenix format only: conn → what a list shows of that presence.
    entries: HashMap<u64, Box<Entry>, ConnBuild>,
    /// Local key-hash refcounts.
    pub(crate) users: HashMap<u64, u32, PrehashedBuild>,
    viewers: u64,
    published: Counts,
    seq: u64,
    /// Set while the topic sits in its shard's poll list.
    pub dirty: bool,
    pub(crate) pending: HashMap<u64, Pending, ConnBuild>,
    /// Other nodes' contributions (cluster mode).
    pub(crate) remote: Option<Box<Remote>>,
    /// Local changes for other nodes; `Some` only in cluster mode.
    pub(crate) outbox: Option<Box<Outbox>>,
}

impl Topic {
    pub fn new(name: &str, hash: u64, replicate: bool) -> Topic {
        Topic {
            name: name.into(),
            hash,
            presences: HashMap::default(),
            entries: HashMap::default(),
            users: HashMap::default(),
            viewers: 0,
            published: Counts::default(),
            seq: 0,
            dirty: false,
            pending: HashMap::default(),
            remote: None,
            outbox: replicate.then(Box::default),
        }
    }

    /// The live counts, O(1).
    pub fn counts(&self) -> Counts {
        let mut c = self.local_counts();
        if let Some(r) = &self.remote {
            c.viewers += r.viewers;
            c.connections += r.connections;
            c.users += r.only_remote;
        }
        c
    }

    /// This node's own counts.
    pub fn local_counts(&self) -> Counts {
        Counts {
            viewers: self.viewers,
            users: self.users.len() as u64,
            connections: self.presences.len() as u64,
        }
    }

    /// The sequence number of the last polled diff (0 before the first).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn contains(&self, conn: u64) -> bool {
        self.presences.contains_key(&conn)
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

    /// Adds a local presence; the caller has checked that `conn` is absent.
    pub fn insert(&mut self, conn: u64, key_hash: u64, entry: Option<Box<Entry>>) {
        if key_hash == ANONYMOUS {
            self.viewers += 1;
        } else {
            let n = self.users.entry(key_hash).or_insert(0);
            *n += 1;
            if *n == 1 {
                self.user_appeared(key_hash);
            }
        }
        if let Some(e) = entry {
            self.pending
                .insert(e.phx_ref, Pending::Joined(Loc::Local(conn)));
            if let Some(o) = &mut self.outbox {
                o.joined.insert(e.phx_ref, conn);
            }
            self.entries.insert(conn, e);
        }
        self.presences.insert(conn, key_hash);
    }

    /// Removes a local presence; false when `conn` is not present.
    pub fn remove(&mut self, conn: u64) -> bool {
        let Some(key_hash) = self.presences.remove(&conn) else {
            return false;
        };
        if key_hash == ANONYMOUS {
            self.viewers -= 1;
        } else if let Slot::Occupied(mut n) = self.users.entry(key_hash) {
            *n.get_mut() -= 1;
            if *n.get() == 0 {
                n.remove();
                self.user_left(key_hash);
            }
        }
        if let Some(e) = self.entries.remove(&conn) {
            self.outbox_left(e.phx_ref);
            self.note_leave(e);
        }
        // Tables never shrink by themselves; after a crowd leaves, give the memory back.
        if self.presences.capacity() > 64 && self.presences.len() * 4 < self.presences.capacity() {
            self.presences.shrink_to_fit();
            self.users.shrink_to_fit();
            self.entries.shrink_to_fit();
        }
        true
    }

    /// Phoenix format: replaces the meta of `conn` under a new ref. Returns false when
    /// `conn` is not present. In counts format there is nothing to change.
    pub fn update(&mut self, conn: u64, meta: &str, new_ref: u64) -> bool {
        if !self.presences.contains_key(&conn) {
            return false;
        }
        let Some(old) = self.entries.get_mut(&conn) else {
            return true;
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
    pub(crate) fn note_leave(&mut self, old: Box<Entry>) -> u64 {
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
            Loc::Remote(node) => self.remote.as_ref().and_then(|r| r.entry(node, phx_ref)),
        }
        .filter(|e| e.phx_ref == phx_ref)
    }

    /// Local entries, for snapshots (phoenix format).
    pub fn local_entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values().map(|e| &**e)
    }

    /// The entry of a local presence by ref, for deltas (phoenix format).
    pub fn local_entry(&self, conn: u64, phx_ref: u64) -> Option<&Entry> {
        self.joined_entry(phx_ref, Loc::Local(conn))
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
            + table_bytes(self.presences.capacity(), size_of::<(u64, u64)>())
            + table_bytes(self.entries.capacity(), size_of::<(u64, Box<Entry>)>())
            + table_bytes(self.users.capacity(), size_of::<(u64, u32)>())
            + table_bytes(self.pending.capacity(), size_of::<(u64, Pending)>());
        bytes += self.local_entries().map(Entry::heap_bytes).sum::<usize>();
        for c in self.pending.values() {
            if let Pending::Left(e) = c {
                bytes += e.heap_bytes();
            }
        }
        if let Some(r) = &self.remote {
            bytes += size_of::<Remote>() + r.heap_bytes();
        }
        if let Some(o) = &self.outbox {
            bytes += size_of::<Outbox>()
                + table_bytes(o.added.capacity() + o.removed.capacity(), 8)
                + table_bytes(o.joined.capacity(), 16)
                + table_bytes(o.left.capacity(), 8);
        }
        bytes
    }
}

impl Entry {
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Entry>() + self.key.as_ref().map_or(0, |k| k.len()) + self.meta.len()
    }
}

/// Heap bytes of a hash table of `cap` entries of `entry` bytes (one control byte each).
pub(crate) fn table_bytes(cap: usize, entry: usize) -> usize {
    if cap == 0 {
        0
    } else {
        cap * (entry + 1) + 16
    }
}
