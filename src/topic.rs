//! The state of one topic: who is present, the counts, and what changed since the last poll.
//!
//! Distinct users are counted through a refcount per keyed hash of the key, not per key
//! string. Counts format keeps nothing else of a key; the same table later takes other
//! nodes' hashed users, so that a user on two nodes still counts once.

use crate::config::Format;
use crate::hash::{ConnBuild, PrehashedBuild};
use crate::json;
use crate::meta;
use std::collections::HashMap;

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

/// One presence of a topic. In counts format it is only the keyed hash of its key.
pub(crate) struct Presence {
    /// Keyed hash of the key; `ANONYMOUS` for a viewer.
    key_hash: u64,
    /// Phoenix format only: what a list shows of this presence.
    entry: Option<Box<Entry>>,
}

/// The keyed hash value that stands for "no key". A real key hashing to it is moved to 1.
pub(crate) const ANONYMOUS: u64 = 0;

/// A listed presence of the phoenix format.
#[derive(Clone, Debug)]
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

/// A change not yet polled, phoenix format. Keyed by `phx_ref` in `Topic::pending`.
enum Pending {
    /// Joined since the last poll; the live entry is `presences[conn]`.
    Joined { conn: u64 },
    /// Published at the last poll and gone since; kept to render the leave.
    Left(Box<Entry>),
}

/// What a topic's `take_diff` hands to the poll.
pub(crate) struct Diff {
    pub seq: u64,
    pub counts: Counts,
}

/// The state of one topic.
pub(crate) struct Topic {
    pub name: Box<str>,
    presences: HashMap<u64, Presence, ConnBuild>,
    users: HashMap<u64, u32, PrehashedBuild>,
    viewers: u64,
    published: Counts,
    seq: u64,
    /// Set while the topic sits in its shard's dirty list.
    pub dirty: bool,
    pending: HashMap<u64, Pending, ConnBuild>,
}

impl Topic {
    pub fn new(name: &str) -> Topic {
        Topic {
            name: name.into(),
            presences: HashMap::default(),
            users: HashMap::default(),
            viewers: 0,
            published: Counts::default(),
            seq: 0,
            dirty: false,
            pending: HashMap::default(),
        }
    }

    /// The live counts, O(1).
    pub fn counts(&self) -> Counts {
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

    /// True when nothing is present, nothing is pending and clients were last told zero:
    /// the topic can be dropped without anyone noticing.
    pub fn is_vacant(&self) -> bool {
        self.presences.is_empty() && self.pending.is_empty() && self.published == Counts::default()
    }

    /// Adds a presence; the caller has checked that `conn` is absent.
    pub fn insert(&mut self, conn: u64, key_hash: u64, entry: Option<Box<Entry>>) {
        if key_hash == ANONYMOUS {
            self.viewers += 1;
        } else {
            *self.users.entry(key_hash).or_insert(0) += 1;
        }
        if let Some(e) = &entry {
            self.pending.insert(e.phx_ref, Pending::Joined { conn });
        }
        self.presences.insert(conn, Presence { key_hash, entry });
    }

    /// Removes a presence; false when `conn` is not present.
    pub fn remove(&mut self, conn: u64) -> bool {
        let Some(p) = self.presences.remove(&conn) else {
            return false;
        };
        if p.key_hash == ANONYMOUS {
            self.viewers -= 1;
        } else if let Some(n) = self.users.get_mut(&p.key_hash) {
            *n -= 1;
            if *n == 0 {
                self.users.remove(&p.key_hash);
            }
        }
        if let Some(e) = p.entry {
            self.note_leave(e);
        }
        // Tables never shrink by themselves; after a crowd leaves, give the memory back.
        if self.presences.capacity() > 64 && self.presences.len() * 4 < self.presences.capacity() {
            self.presences.shrink_to_fit();
            self.users.shrink_to_fit();
        }
        true
    }

    /// Phoenix format: replaces the meta of `conn` under a new ref. Returns false when
    /// `conn` is not present. In counts format there is nothing to change.
    pub fn update(&mut self, conn: u64, meta: &str, new_ref: u64) -> bool {
        let Some(p) = self.presences.get_mut(&conn) else {
            return false;
        };
        let Some(old) = p.entry.as_mut() else {
            return true;
        };
        let fresh = Box::new(Entry {
            key: old.key.clone(),
            meta: meta.into(),
            phx_ref: new_ref,
            prev_ref: 0,
        });
        let old = std::mem::replace(old, fresh);
        let prev_ref = self.note_leave(old);
        if let Some(e) = self.presences.get_mut(&conn).and_then(|p| p.entry.as_mut()) {
            e.prev_ref = prev_ref;
        }
        self.pending.insert(new_ref, Pending::Joined { conn });
        true
    }

    /// Records that `old` is gone. A presence clients never saw just vanishes (join and
    /// leave cancel); one they saw becomes a pending leave. Returns the ref clients know
    /// this presence by, which an update carries on as `phx_ref_prev`.
    fn note_leave(&mut self, old: Box<Entry>) -> u64 {
        match self.pending.remove(&old.phx_ref) {
            Some(Pending::Joined { .. }) => old.prev_ref,
            Some(left @ Pending::Left(_)) => {
                // A ref is never reused, so a published ref cannot leave twice.
                self.pending.insert(old.phx_ref, left);
                old.prev_ref
            }
            None => {
                let r = old.phx_ref;
                self.pending.insert(r, Pending::Left(old));
                r
            }
        }
    }

    /// What the next poll will report for this topic, or `None` when clients' view is
    /// unchanged (a join and a leave that cancel, or nothing at all).
    pub fn next_diff(&self, format: Format) -> Option<Diff> {
        let now = self.counts();
        let changed = match format {
            Format::Counts => now != self.published,
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
        let before = self.published;
        match format {
            Format::Counts => write_counts_diff(out, before, now),
            Format::Phoenix => {
                let mut joins = Vec::new();
                let mut leaves = Vec::new();
                for change in self.pending.values() {
                    match change {
                        Pending::Joined { conn } => {
                            if let Some(e) =
                                self.presences.get(conn).and_then(|p| p.entry.as_deref())
                            {
                                joins.push(e);
                            }
                        }
                        Pending::Left(e) => leaves.push(&**e),
                    }
                }
                out.push_str("{\"joins\":");
                write_grouped(out, &mut joins, viewers_key);
                out.push_str(",\"leaves\":");
                write_grouped(out, &mut leaves, viewers_key);
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
            Format::Counts => write_counts_state(out, self.published),
            Format::Phoenix => {
                let mut entries: Vec<&Entry> = self
                    .presences
                    .values()
                    .filter_map(|p| p.entry.as_deref())
                    .filter(|e| {
                        !matches!(self.pending.get(&e.phx_ref), Some(Pending::Joined { .. }))
                    })
                    .collect();
                entries.extend(self.pending.values().filter_map(|c| match c {
                    Pending::Left(e) => Some(&**e),
                    Pending::Joined { .. } => None,
                }));
                write_grouped(out, &mut entries, viewers_key);
            }
        }
    }

    /// Heap bytes held by this topic, estimated from table capacities.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let table = |cap: usize, entry: usize| if cap == 0 { 0 } else { cap * (entry + 1) + 16 };
        let entry_bytes =
            |e: &Entry| size_of::<Entry>() + e.key.as_ref().map_or(0, |k| k.len()) + e.meta.len();
        let mut bytes = self.name.len()
            + table(self.presences.capacity(), size_of::<(u64, Presence)>())
            + table(self.users.capacity(), size_of::<(u64, u32)>())
            + table(self.pending.capacity(), size_of::<(u64, Pending)>());
        for p in self.presences.values() {
            bytes += p.entry.as_deref().map_or(0, entry_bytes);
        }
        for c in self.pending.values() {
            if let Pending::Left(e) = c {
                bytes += entry_bytes(e);
            }
        }
        bytes
    }
}

/// `{"viewers":{"count":V},"users":{"count":U}}`: the seed's state shape, nothing more
/// (its Immutable Record rejects unknown keys).
pub(crate) fn write_counts_state(out: &mut String, c: Counts) {
    out.push_str("{\"viewers\":{\"count\":");
    json::push_u64(out, c.viewers);
    out.push_str("},\"users\":{\"count\":");
    json::push_u64(out, c.users);
    out.push_str("}}");
}

/// Net joins and leaves per group, so that before + joins - leaves = now for each group.
fn write_counts_diff(out: &mut String, before: Counts, now: Counts) {
    let up = |a: u64, b: u64| b.saturating_sub(a);
    out.push_str("{\"joins\":");
    write_counts_state(
        out,
        Counts {
            viewers: up(before.viewers, now.viewers),
            users: up(before.users, now.users),
            connections: 0,
        },
    );
    out.push_str(",\"leaves\":");
    write_counts_state(
        out,
        Counts {
            viewers: up(now.viewers, before.viewers),
            users: up(now.users, before.users),
            connections: 0,
        },
    );
    out.push('}');
}

/// `{"key":{"metas":[{"phx_ref":..., ...meta}, ...]}, ...}`, keys and metas in a stable
/// order (key, then ref) so equal states render to equal bytes.
fn write_grouped(out: &mut String, entries: &mut [&Entry], viewers_key: &str) {
    entries.sort_unstable_by(|a, b| {
        let (ka, kb) = (
            a.key.as_deref().unwrap_or(viewers_key),
            b.key.as_deref().unwrap_or(viewers_key),
        );
        ka.cmp(kb).then(a.phx_ref.cmp(&b.phx_ref))
    });
    out.push('{');
    let mut current: Option<&str> = None;
    for e in entries.iter() {
        let key = e.key.as_deref().unwrap_or(viewers_key);
        if current != Some(key) {
            if current.is_some() {
                out.push_str("]},");
            }
            json::push_str(out, key);
            out.push_str(":{\"metas\":[");
            current = Some(key);
        } else {
            out.push(',');
        }
        out.push_str("{\"phx_ref\":");
        json::push_ref(out, e.phx_ref);
        if e.prev_ref != 0 {
            out.push_str(",\"phx_ref_prev\":");
            json::push_ref(out, e.prev_ref);
        }
        let members = meta::members(&e.meta);
        if !members.is_empty() {
            out.push(',');
            out.push_str(members);
        }
        out.push('}');
    }
    if current.is_some() {
        out.push_str("]}");
    }
    out.push('}');
}
