//! The counts format: anonymous numbers, `{"viewers":{"count":V},"users":{"count":U}}`.
//!
//! A topic's counts are all it renders, and every format keeps them, so this format keeps
//! nothing more: no key, no meta, no ref. Nodes replicate their absolute viewer and
//! connection counts and the keyed hashes of the users that appeared or left, which the
//! shared counting of other nodes' parts takes as they come.

use super::phoenix::HeldEntries;
use super::{Bounds, Change, FormatState, PeerState};
use super::{Counts, Outbox};
use super::{FormatPeers, PeerCounts, PeerCountsMut, ANONYMOUS};
use crate::codec::Reader;
use crate::hash::HashSet;
use crate::json;
use std::collections::hash_map::RandomState;

/// The name of the format in the configuration and the metrics.
pub(crate) const NAME: &str = "counts";

/// What a topic keeps for this format beyond its counts: nothing.
#[derive(Default)]
pub(crate) struct State;

impl FormatState for State {
    #[inline]
    fn join(
        &mut self,
        _conn: u64,
        _key: Option<&str>,
        _meta: &str,
        _new_ref: impl FnOnce() -> u64,
        _outbox: Option<&mut Outbox>,
    ) {
    }

    #[inline]
    fn leave(&mut self, _conn: u64, _outbox: Option<&mut Outbox>) {}

    fn update(
        &mut self,
        _conn: u64,
        _meta: &str,
        _new_ref: impl FnOnce() -> u64,
        _outbox: Option<&mut Outbox>,
    ) -> bool {
        // No meta is kept: there is nothing to change.
        false
    }

    fn hold(&mut self, _conn: u64) -> Option<Box<super::phoenix::Entry>> {
        None
    }

    fn take_back(
        &mut self,
        _conn: u64,
        _held: Option<Box<super::phoenix::Entry>>,
        _meta: &str,
        _new_ref: impl FnOnce() -> u64,
        _outbox: Option<&mut Outbox>,
    ) -> bool {
        false
    }

    fn leave_held(
        &mut self,
        _held: Option<Box<super::phoenix::Entry>>,
        _outbox: Option<&mut Outbox>,
    ) {
    }

    /// Clients see viewers and users only: a second tab of a user already present
    /// changes nothing they show, so it sends nothing.
    #[inline]
    fn changed(&self, published: Counts, now: Counts) -> bool {
        now.viewers != published.viewers || now.users != published.users
    }

    fn write_diff(
        &mut self,
        out: &mut String,
        published: Counts,
        now: Counts,
        _peers: Option<&PeerState>,
        _held: Option<&dyn HeldEntries>,
        _viewers_key: &str,
    ) {
        write_diff(out, published, now);
    }

    fn write_state(
        &self,
        out: &mut String,
        published: Counts,
        _peers: Option<&PeerState>,
        _held: Option<&dyn HeldEntries>,
        _viewers_key: &str,
    ) {
        write_state(out, published);
    }

    fn write_empty_state(out: &mut String) {
        write_state(out, Counts::default());
    }

    #[inline]
    fn is_settled(&self) -> bool {
        true
    }

    fn heap_bytes(&self, _held: Option<&dyn HeldEntries>) -> usize {
        0
    }

    fn full_change(
        &self,
        local: Counts,
        users: impl Iterator<Item = u64>,
        _held: Option<&dyn HeldEntries>,
    ) -> Change {
        Change::Counts {
            viewers: local.viewers,
            connections: local.connections,
            added: users.collect(),
            removed: Vec::new(),
        }
    }

    fn drain_outbox(
        &self,
        o: &mut Outbox,
        local: Counts,
        _held: Option<&dyn HeldEntries>,
    ) -> Change {
        Change::Counts {
            viewers: local.viewers,
            connections: local.connections,
            added: o.added.drain().collect(),
            removed: o.removed.drain().collect(),
        }
    }
}

/// What this format keeps of other nodes' parts beyond the shared counting: nothing.
pub(crate) struct Peers;

impl FormatPeers for Peers {
    fn is_empty(&self) -> bool {
        true
    }

    fn forget_leaves(&mut self) {}

    fn heap_bytes(&self) -> usize {
        0
    }
}

/// Sets `node`'s part: its viewers and connections, and with `replace` (a snapshot)
/// `added` as the full set of its users; otherwise users are added and removed. Returns
/// whether the node still has a part here. The caller has checked the claims (`check`).
pub(super) fn merge(
    counts: &mut impl PeerCountsMut,
    node: u32,
    viewers: u64,
    connections: u64,
    added: &[u64],
    removed: &[u64],
    replace: bool,
) -> bool {
    counts.set_totals(node, viewers, connections);
    if replace {
        let keep: HashSet<u64, RandomState> = added.iter().copied().collect();
        counts.retain_users(node, &|h| keep.contains(&h));
    } else {
        for &h in removed {
            counts.remove_user(node, h);
        }
    }
    for &h in added {
        if h != ANONYMOUS {
            counts.add_user(node, h);
        }
    }
    counts.settle(node)
}

/// What `counts.size(node)` will be after `merge` with these arguments: the claimed
/// connections or, if more, the users the node will hold.
pub(super) fn size_after(
    counts: &impl PeerCounts,
    node: u32,
    connections: u64,
    added: &[u64],
    removed: &[u64],
    replace: bool,
) -> usize {
    let held = |h: &u64| !replace && counts.holds(node, *h);
    let gone: HashSet<u64, RandomState> = removed.iter().copied().filter(held).collect();
    let mut fresh: HashSet<u64, RandomState> = HashSet::default();
    for &h in added {
        if h != ANONYMOUS && (!held(&h) || gone.contains(&h)) {
            fresh.insert(h);
        }
    }
    let before = if replace { 0 } else { counts.users(node) };
    let n = before - gone.len() + fresh.len();
    n.max(usize::try_from(connections).unwrap_or(usize::MAX))
}

/// `{"viewers":{"count":V},"users":{"count":U}}`: the seed's state shape, nothing more
/// (its Immutable Record rejects unknown keys).
pub(crate) fn write_state(out: &mut String, c: Counts) {
    out.push_str("{\"viewers\":{\"count\":");
    json::push_u64(out, c.viewers);
    out.push_str("},\"users\":{\"count\":");
    json::push_u64(out, c.users);
    out.push_str("}}");
}

/// Net joins and leaves per group, so that before + joins - leaves = now for each group.
pub(crate) fn write_diff(out: &mut String, before: Counts, now: Counts) {
    let up = |a: u64, b: u64| b.saturating_sub(a);
    out.push_str("{\"joins\":");
    write_state(
        out,
        Counts {
            viewers: up(before.viewers, now.viewers),
            users: up(before.users, now.users),
            connections: 0,
        },
    );
    out.push_str(",\"leaves\":");
    write_state(
        out,
        Counts {
            viewers: up(now.viewers, before.viewers),
            users: up(now.users, before.users),
            connections: 0,
        },
    );
    out.push('}');
}

/// A peer's counts are within this node's bounds: viewers within connections, and
/// connections within `max_presences`.
pub(super) fn check(viewers: u64, connections: u64, bounds: &dyn Bounds) -> Result<(), String> {
    if viewers > connections || connections > bounds.max_presences() as u64 {
        return Err("counts out of bounds".into());
    }
    Ok(())
}

/// `viewers:varint connections:varint added:count hash:u64le... removed:count hash:u64le...`
pub(super) fn put_change(
    out: &mut Vec<u8>,
    viewers: u64,
    connections: u64,
    added: &[u64],
    removed: &[u64],
) {
    use crate::codec::put_varint;
    put_varint(out, viewers);
    put_varint(out, connections);
    for set in [added, removed] {
        put_varint(out, set.len() as u64);
        for h in set {
            out.extend_from_slice(&h.to_le_bytes());
        }
    }
}

pub(super) fn read_change(r: &mut Reader<'_>) -> Option<Change> {
    let viewers = r.varint()?;
    let connections = r.varint()?;
    let mut sets = [Vec::new(), Vec::new()];
    for set in &mut sets {
        let n = r.count(8)?;
        *set = (0..n).map(|_| r.u64()).collect::<Option<Vec<u64>>>()?;
    }
    let [added, removed] = sets;
    Some(Change::Counts {
        viewers,
        connections,
        added,
        removed,
    })
}
