//! The phoenix format: `presence_state` / `presence_diff` lists as Phoenix.Presence
//! renders them (`metas`, `phx_ref`, `phx_ref_prev`), so that the official `phoenix` JS
//! client's `Presence` works unchanged.
//!
//! Each presence is an entry (key, meta, ref). A topic keeps its local entries by
//! connection and the changes clients have not seen yet by ref; other nodes' entries are
//! the format's part of the topic's remote part (`peers.rs`), held ones live in its held
//! part, and a pending join names where its entry lives. Nodes replicate the entries
//! themselves.

mod peers;

use super::{Bounds, Counts, Outbox, PeerState};
use super::{Change, FormatState};
use crate::codec::Reader;
use crate::hash::{ConnBuild, HashMap};
use crate::json;
use crate::meta;

pub(crate) use peers::Peers;

/// The name of the format in the configuration and the metrics.
pub(crate) const NAME: &str = "phoenix";

/// A listed presence.
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

impl Entry {
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Entry>() + self.key.as_ref().map_or(0, |k| k.len()) + self.meta.len()
    }
}

/// The entries of presences held for the leave grace.
pub(crate) trait HeldEntries {
    /// A held entry by its ref.
    fn entry(&self, phx_ref: u64) -> Option<&Entry>;
    fn entries(&self) -> Box<dyn Iterator<Item = &Entry> + '_>;
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

/// A change not yet polled. Keyed by `phx_ref` in `State::pending`.
enum Pending {
    /// Joined since the last poll; the entry is still live at this location.
    Joined(Loc),
    /// Published at the last poll and gone since; kept to render the leave.
    Left(Box<Entry>),
}

/// What a topic keeps for its lists.
#[derive(Default)]
pub(crate) struct State {
    /// Conn → what a list shows of that local presence.
    entries: HashMap<u64, Box<Entry>, ConnBuild>,
    /// Changes not yet polled, by ref.
    pending: HashMap<u64, Pending, ConnBuild>,
}

impl State {
    /// Records that `old` is gone. A presence clients never saw just vanishes (join and
    /// leave cancel); one they saw becomes a pending leave.
    fn note_leave(&mut self, old: Box<Entry>) {
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
    }

    /// Whether `phx_ref` was published and leaves at the next poll.
    fn leaves(&self, phx_ref: u64) -> bool {
        matches!(self.pending.get(&phx_ref), Some(Pending::Left(_)))
    }

    /// The entry behind a pending join, wherever it lives.
    fn joined_entry<'a>(
        &'a self,
        phx_ref: u64,
        loc: Loc,
        peers: Option<&'a Peers>,
        held: Option<&'a dyn HeldEntries>,
    ) -> Option<&'a Entry> {
        match loc {
            Loc::Local(conn) => self.entries.get(&conn).map(|e| &**e),
            Loc::Remote(node, sent_ref) => peers.and_then(|p| p.entry(node, sent_ref)),
            Loc::Held => held.and_then(|h| h.entry(phx_ref)),
        }
        .filter(|e| e.phx_ref == phx_ref)
    }

    /// Local entries, held ones included.
    fn local_entries<'a>(
        &'a self,
        held: Option<&'a dyn HeldEntries>,
    ) -> impl Iterator<Item = &'a Entry> {
        let held = held.into_iter().flat_map(|h| h.entries());
        self.entries.values().map(|e| &**e).chain(held)
    }

    fn published(&self, e: &Entry) -> bool {
        !matches!(self.pending.get(&e.phx_ref), Some(Pending::Joined(_)))
    }
}

fn outbox_joined(outbox: Option<&mut Outbox>, phx_ref: u64, conn: u64) {
    if let Some(o) = outbox {
        o.joined.insert(phx_ref, conn);
    }
}

fn outbox_left(outbox: Option<&mut Outbox>, phx_ref: u64) {
    if let Some(o) = outbox {
        if o.joined.remove(&phx_ref).is_none() {
            o.left.insert(phx_ref);
        }
    }
}

impl FormatState for State {
    #[inline]
    fn join(
        &mut self,
        conn: u64,
        key: Option<&str>,
        meta: &str,
        new_ref: impl FnOnce() -> u64,
        outbox: Option<&mut Outbox>,
    ) {
        let e = Box::new(Entry {
            key: key.map(Into::into),
            meta: meta.into(),
            phx_ref: new_ref(),
            prev_ref: 0,
        });
        self.pending
            .insert(e.phx_ref, Pending::Joined(Loc::Local(conn)));
        outbox_joined(outbox, e.phx_ref, conn);
        self.entries.insert(conn, e);
    }

    #[inline]
    fn leave(&mut self, conn: u64, outbox: Option<&mut Outbox>) {
        if self.entries.is_empty() {
            return;
        }
        if let Some(e) = self.entries.remove(&conn) {
            outbox_left(outbox, e.phx_ref);
            self.note_leave(e);
        }
        if self.entries.capacity() > 64 && self.entries.len() * 4 < self.entries.capacity() {
            self.entries.shrink_to_fit();
        }
    }

    fn update(
        &mut self,
        conn: u64,
        meta: &str,
        new_ref: impl FnOnce() -> u64,
        outbox: Option<&mut Outbox>,
    ) -> bool {
        let Some(old) = self.entries.get_mut(&conn) else {
            return false;
        };
        let new_ref = new_ref();
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
        let mut outbox = outbox;
        outbox_left(outbox.as_deref_mut(), old.phx_ref);
        self.note_leave(old);
        self.pending
            .insert(new_ref, Pending::Joined(Loc::Local(conn)));
        outbox_joined(outbox, new_ref, conn);
        true
    }

    fn hold(&mut self, conn: u64) -> Option<Box<Entry>> {
        let entry = self.entries.remove(&conn);
        if let Some(e) = &entry {
            // A join not polled yet is rendered from wherever its entry now lives.
            if let Some(Pending::Joined(loc)) = self.pending.get_mut(&e.phx_ref) {
                *loc = Loc::Held;
            }
        }
        entry
    }

    fn take_back(
        &mut self,
        conn: u64,
        held: Option<Box<Entry>>,
        meta: &str,
        new_ref: impl FnOnce() -> u64,
        outbox: Option<&mut Outbox>,
    ) -> bool {
        let Some(e) = held else {
            return false;
        };
        let r = e.phx_ref;
        let same = *e.meta == *meta;
        if let Some(Pending::Joined(loc)) = self.pending.get_mut(&r) {
            *loc = Loc::Local(conn);
        }
        let mut outbox = outbox;
        if let Some(o) = outbox.as_deref_mut() {
            if let Some(c) = o.joined.get_mut(&r) {
                *c = conn;
            }
        }
        self.entries.insert(conn, e);
        if same {
            return false;
        }
        self.update(conn, meta, new_ref, outbox)
    }

    fn leave_held(&mut self, held: Option<Box<Entry>>, outbox: Option<&mut Outbox>) {
        if let Some(e) = held {
            outbox_left(outbox, e.phx_ref);
            self.note_leave(e);
        }
    }

    #[inline]
    fn changed(&self, _published: Counts, _now: Counts) -> bool {
        !self.pending.is_empty()
    }

    fn write_diff(
        &mut self,
        out: &mut String,
        _published: Counts,
        _now: Counts,
        peers: Option<&PeerState>,
        held: Option<&dyn HeldEntries>,
        viewers_key: &str,
    ) {
        let peers = peers.and_then(PeerState::phoenix);
        let mut joins = Vec::new();
        let mut leaves = Vec::new();
        for (r, change) in &self.pending {
            match change {
                Pending::Joined(loc) => joins.extend(self.joined_entry(*r, *loc, peers, held)),
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

    fn write_state(
        &self,
        out: &mut String,
        _published: Counts,
        peers: Option<&PeerState>,
        held: Option<&dyn HeldEntries>,
        viewers_key: &str,
    ) {
        let mut entries: Vec<&Entry> = self
            .local_entries(held)
            .filter(|e| self.published(e))
            .collect();
        if let Some(p) = peers.and_then(PeerState::phoenix) {
            entries.extend(p.entries().filter(|e| self.published(e)));
        }
        entries.extend(self.pending.values().filter_map(|c| match c {
            Pending::Left(e) => Some(&**e),
            Pending::Joined(_) => None,
        }));
        write_grouped(out, &mut entries, viewers_key);
    }

    fn write_empty_state(out: &mut String) {
        out.push_str("{}");
    }

    #[inline]
    fn is_settled(&self) -> bool {
        self.pending.is_empty()
    }

    fn heap_bytes(&self, held: Option<&dyn HeldEntries>) -> usize {
        let mut bytes = self.entries.allocation_size() + self.pending.allocation_size();
        bytes += self
            .local_entries(held)
            .map(Entry::heap_bytes)
            .sum::<usize>();
        for c in self.pending.values() {
            if let Pending::Left(e) = c {
                bytes += e.heap_bytes();
            }
        }
        bytes
    }

    fn full_change(
        &self,
        _local: Counts,
        _users: impl Iterator<Item = u64>,
        held: Option<&dyn HeldEntries>,
    ) -> Change {
        Change::Phoenix {
            joins: self.local_entries(held).map(wire_entry).collect(),
            leaves: Vec::new(),
        }
    }

    fn drain_outbox(
        &self,
        o: &mut Outbox,
        _local: Counts,
        held: Option<&dyn HeldEntries>,
    ) -> Change {
        // A join's entry is that of its connection, or a held one whose connection left.
        let joins = o
            .joined
            .drain()
            .filter_map(|(r, conn)| {
                self.joined_entry(r, Loc::Local(conn), None, held)
                    .or_else(|| self.joined_entry(r, Loc::Held, None, held))
                    .map(wire_entry)
            })
            .collect();
        Change::Phoenix {
            joins,
            leaves: o.left.drain().collect(),
        }
    }
}

/// A listed presence on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireEntry {
    pub phx_ref: u64,
    pub prev_ref: u64,
    pub key: Option<String>,
    pub meta: String,
}

fn wire_entry(e: &Entry) -> WireEntry {
    WireEntry {
        phx_ref: e.phx_ref,
        prev_ref: e.prev_ref,
        key: e.key.as_deref().map(str::to_owned),
        meta: e.meta.to_string(),
    }
}

/// A peer's entries pass the checks of local ones: keys (not the viewers key, within
/// the byte limit) and metas, which are trimmed as local ones are.
pub(super) fn check(joins: &mut [WireEntry], bounds: &dyn Bounds) -> Result<(), String> {
    for w in joins {
        if let Some(k) = &w.key {
            bounds.check_key(k)?;
        }
        let trimmed = bounds.check_meta(&w.meta)?;
        if trimmed.len() != w.meta.len() {
            w.meta = trimmed.to_owned();
        }
    }
    Ok(())
}

/// `joins:count (phx_ref:u64le prev_ref:u64le has_key:u8 [key:str] meta:str)...
/// leaves:count ref:u64le...`
pub(super) fn put_change(out: &mut Vec<u8>, joins: &[WireEntry], leaves: &[u64]) {
    use crate::codec::{put_str, put_varint};
    put_varint(out, joins.len() as u64);
    for e in joins {
        out.extend_from_slice(&e.phx_ref.to_le_bytes());
        out.extend_from_slice(&e.prev_ref.to_le_bytes());
        match &e.key {
            Some(k) => {
                out.push(1);
                put_str(out, k);
            }
            None => out.push(0),
        }
        put_str(out, &e.meta);
    }
    put_varint(out, leaves.len() as u64);
    for r in leaves {
        out.extend_from_slice(&r.to_le_bytes());
    }
}

pub(super) fn read_change(r: &mut Reader<'_>) -> Option<Change> {
    let joins = r.count(18)?;
    let mut j = Vec::with_capacity(joins);
    for _ in 0..joins {
        let phx_ref = r.u64()?;
        let prev_ref = r.u64()?;
        let key = match r.u8()? {
            0 => None,
            1 => Some(r.str()?),
            _ => return None,
        };
        j.push(WireEntry {
            phx_ref,
            prev_ref,
            key,
            meta: r.str()?,
        });
    }
    let leaves = r.count(8)?;
    let l = (0..leaves).map(|_| r.u64()).collect::<Option<Vec<u64>>>()?;
    Some(Change::Phoenix {
        joins: j,
        leaves: l,
    })
}

/// `{"key":{"metas":[{"phx_ref":..., ...meta}, ...]}, ...}`, keys and metas in a stable
/// order (key, then ref) so equal states render to equal bytes.
pub(crate) fn write_grouped(out: &mut String, entries: &mut [&Entry], viewers_key: &str) {
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
