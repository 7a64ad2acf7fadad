//! Leaves held for the leave grace: presences whose connection left but which still count,
//! waiting for the same key to come back (which takes one over) or for their due time
//! (when the leave is made for real).
//!
//! The held presences of one key count alike, so a key that comes back takes the oldest:
//! the one nearest its due time, which leaves the others the most time. In a busy room
//! where anonymous viewers keep reloading, taking the newest would leave the oldest to
//! fall due while its own viewer is on the way back, and clients would see that viewer
//! leave and join. In phoenix format it takes, among the oldest few of its key, the oldest
//! one with the meta it comes back with: when several connections of a user (or several
//! viewers) reload at once, each takes back its own meta and clients see no update.

/// How many of a key's oldest held presences a phoenix rejoin looks through for its meta.
const MATCH_SCAN: usize = 32;

use super::{Entry, Topic, ANONYMOUS};
use crate::format::phoenix::HeldEntries;
use crate::format::FormatState;
use crate::hash::{ConnBuild, HashMap, PrehashedBuild};
use std::collections::VecDeque;

impl Topic {
    /// Holds the local presence of `conn`, tracked with `key_hash`, until `due` instead of
    /// removing it: it keeps counting, and neither clients nor other nodes learn of the
    /// leave unless it falls due. The caller took it out of the connection index.
    pub fn hold(&mut self, conn: u64, key_hash: u64, due: u64) {
        let entry = self.state.hold(conn);
        self.held
            .get_or_insert_with(Box::default)
            .hold(due, key_hash, entry);
    }

    /// A track of `conn` with `key_hash` takes over a held presence of that key (see the
    /// module's doc for which): it goes on counting as it did, so clients and other nodes see no change. In
    /// phoenix format it keeps its entry and ref when `meta` is the meta it had; another
    /// meta is an update of it (a new ref with `phx_ref_prev`), as `update` makes one.
    ///
    /// `None` when nothing of that key is held; otherwise whether clients will see a
    /// change (the update).
    pub fn take_over(
        &mut self,
        conn: u64,
        key_hash: u64,
        meta: &str,
        new_ref: impl FnOnce() -> u64,
    ) -> Option<bool> {
        let held = self.held.as_mut()?;
        let (_, entry) = held.claim_meta(key_hash, Some(meta))?;
        if held.len() == 0 {
            self.held = None;
        }
        Some(
            self.state
                .take_back(conn, entry, meta, new_ref, self.outbox.as_deref_mut()),
        )
    }

    /// Makes the leaves of the presences held until `now` or earlier, as `remove` makes a
    /// leave; returns how many.
    pub fn expire_held(&mut self, now: u64) -> usize {
        let Some(mut held) = self.held.take() else {
            return 0;
        };
        let mut n = 0;
        while let Some((key_hash, entry)) = held.pop_due(now) {
            n += 1;
            self.presences.0 -= 1;
            if key_hash == ANONYMOUS {
                self.viewers -= 1;
            } else if self.users.sub(key_hash) {
                self.user_left(key_hash);
            }
            self.state.leave_held(entry, self.outbox.as_deref_mut());
        }
        if held.len() > 0 {
            self.held = Some(held);
        }
        n
    }

    /// When the next held presence of this topic is due.
    pub fn next_held_due(&mut self) -> Option<u64> {
        self.held.as_mut()?.next_due()
    }
}

/// The held presences of one topic.
#[derive(Default)]
pub(crate) struct Held {
    /// Key hash (`ANONYMOUS` for viewers) → `(id, phx_ref)` of its held presences, oldest
    /// first (`phx_ref` 0 in counts format).
    by_key: HashMap<u64, VecDeque<(u64, u64)>, PrehashedBuild>,
    /// Phoenix format: `phx_ref` → the held entry.
    entries: HashMap<u64, Box<Entry>, ConnBuild>,
    /// `(due, key hash, id)` in the order the leaves came, which is the order of their due
    /// times. Taking a presence over leaves its row here, skipped when reached.
    order: VecDeque<(u64, u64, u64)>,
    /// The id of the last hold. Each hold has its own: a presence taken over keeps its
    /// `phx_ref`, and may be held again while the row of its first hold waits.
    next_id: u64,
    len: usize,
}

impl Held {
    /// Holds a presence of `key_hash` until `due`; returns its id.
    pub fn hold(&mut self, due: u64, key_hash: u64, entry: Option<Box<Entry>>) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let phx_ref = entry.map_or(0, |e| {
            let r = e.phx_ref;
            self.entries.insert(r, e);
            r
        });
        self.by_key
            .entry(key_hash)
            .or_default()
            .push_back((id, phx_ref));
        self.order.push_back((due, key_hash, id));
        self.len += 1;
        id
    }

    /// Takes a held presence of `key_hash`, if any, with its entry: among the key's oldest
    /// `MATCH_SCAN` held presences the oldest one whose entry has `meta`, else the oldest.
    pub fn claim_meta(
        &mut self,
        key_hash: u64,
        meta: Option<&str>,
    ) -> Option<(u64, Option<Box<Entry>>)> {
        let ids = self.by_key.get_mut(&key_hash)?;
        let entries = &self.entries;
        // Counts format holds no entry: nothing to match.
        let at = meta
            .filter(|_| !entries.is_empty())
            .and_then(|m| {
                ids.iter()
                    .take(MATCH_SCAN)
                    .position(|(_, r)| entries.get(r).is_some_and(|e| *e.meta == *m))
            })
            .unwrap_or(0);
        let (id, phx_ref) = ids.remove(at)?;
        if ids.is_empty() {
            self.by_key.remove(&key_hash);
        }
        self.len -= 1;
        Some((id, self.entries.remove(&phx_ref)))
    }

    /// Takes the oldest held presence due at `now`, with its key hash and entry.
    pub fn pop_due(&mut self, now: u64) -> Option<(u64, Option<Box<Entry>>)> {
        while let Some(&(due, key_hash, id)) = self.order.front() {
            if due > now {
                return None;
            }
            self.order.pop_front();
            let Some(ids) = self.by_key.get_mut(&key_hash) else {
                continue;
            };
            // The oldest of a key expires first: a row whose id is not the oldest of its
            // key was taken over.
            if ids.front().map(|&(i, _)| i) != Some(id) {
                continue;
            }
            let (_, phx_ref) = ids.pop_front().expect("checked above");
            if ids.is_empty() {
                self.by_key.remove(&key_hash);
            }
            self.len -= 1;
            return Some((key_hash, self.entries.remove(&phx_ref)));
        }
        None
    }

    /// When the next held presence is due, skipping the rows of those taken over.
    pub fn next_due(&mut self) -> Option<u64> {
        while let Some(&(due, key_hash, id)) = self.order.front() {
            if self
                .by_key
                .get(&key_hash)
                .is_some_and(|ids| ids.front().map(|&(i, _)| i) == Some(id))
            {
                return Some(due);
            }
            self.order.pop_front();
        }
        None
    }

    /// The presences held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes of the tables; the entries' own bytes are counted with the topic's.
    pub fn heap_bytes(&self) -> usize {
        self.by_key.allocation_size()
            + self
                .by_key
                .values()
                .map(|v| v.capacity() * 16)
                .sum::<usize>()
            + self.entries.allocation_size()
            + self.order.capacity() * std::mem::size_of::<(u64, u64, u64)>()
    }
}

impl HeldEntries for Held {
    fn entry(&self, phx_ref: u64) -> Option<&Entry> {
        self.entries.get(&phx_ref).map(|e| &**e)
    }

    fn entries(&self) -> Box<dyn Iterator<Item = &Entry> + '_> {
        Box::new(self.entries.values().map(|e| &**e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_takes_back_its_oldest_leave_and_the_rest_expire_in_order() {
        let mut h = Held::default();
        let first = h.hold(10, 7, None);
        h.hold(20, 7, None);
        h.hold(30, 8, None);
        assert_eq!(h.len(), 3);
        assert_eq!(h.claim_meta(7, None).map(|(id, _)| id), Some(first));
        assert_eq!(h.claim_meta(9, None), None);
        // The row of the presence taken over is skipped.
        assert_eq!(h.next_due(), Some(20));
        assert_eq!(h.pop_due(15), None);
        assert_eq!(h.pop_due(25).map(|(k, _)| k), Some(7));
        assert_eq!(h.pop_due(25), None);
        assert_eq!(h.next_due(), Some(30));
        assert_eq!(h.pop_due(30).map(|(k, _)| k), Some(8));
        assert_eq!((h.len(), h.next_due()), (0, None));
    }

    /// A phoenix presence taken over keeps its ref; held again, it is due at its new time
    /// only, not at the row of its first hold.
    #[test]
    fn a_presence_held_again_is_due_at_its_new_time() {
        let entry = || {
            Some(Box::new(Entry {
                key: None,
                meta: "{}".into(),
                phx_ref: 42,
                prev_ref: 0,
            }))
        };
        let mut h = Held::default();
        h.hold(10, 7, entry());
        let (_, e) = h.claim_meta(7, None).unwrap();
        assert_eq!(e.unwrap().phx_ref, 42);
        h.hold(20, 7, entry());
        assert!(h.pop_due(15).is_none());
        assert_eq!(h.entry(42).map(|e| e.phx_ref), Some(42));
        assert_eq!(h.pop_due(20).map(|(_, e)| e.unwrap().phx_ref), Some(42));
    }

    #[test]
    fn a_phoenix_rejoin_takes_back_the_held_presence_with_its_meta() {
        let entry = |r: u64, meta: &str| {
            Some(Box::new(Entry {
                key: None,
                meta: meta.into(),
                phx_ref: r,
                prev_ref: 0,
            }))
        };
        let mut h = Held::default();
        h.hold(10, 7, entry(1, "{\"a\":1}"));
        h.hold(20, 7, entry(2, "{\"a\":2}"));
        h.hold(30, 7, entry(3, "{\"a\":2}"));
        let took = |h: &mut Held, meta| h.claim_meta(7, Some(meta)).unwrap().1.unwrap().phx_ref;
        assert_eq!(took(&mut h, "{\"a\":2}"), 2);
        h.hold(40, 7, entry(4, "{\"a\":4}"));
        // The held presence taken from the middle leaves the others due in order.
        assert_eq!(h.pop_due(30).map(|(_, e)| e.unwrap().phx_ref), Some(1));
        // No match: the oldest.
        assert_eq!(took(&mut h, "{\"b\":0}"), 3);
        assert_eq!(h.pop_due(40).map(|(_, e)| e.unwrap().phx_ref), Some(4));
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn a_claim_of_the_oldest_leaves_the_next_one_due() {
        let mut h = Held::default();
        h.hold(10, 7, None);
        assert!(h.claim_meta(7, None).is_some());
        h.hold(20, 7, None);
        assert_eq!(h.next_due(), Some(20));
        assert_eq!(h.pop_due(15), None);
        assert_eq!(h.pop_due(20).map(|(k, _)| k), Some(7));
        assert_eq!(h.len(), 0);
    }
}
