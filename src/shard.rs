//! Lock shards: topics are spread over shards by a hash of their name, connections by
//! their id. A track takes one connection shard, then one topic shard (always in that
//! order, so no two calls can deadlock), for a few hundred nanoseconds.

use crate::hash::{ConnBuild, PrehashedBuild};
use crate::topic::Topic;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Where a topic lives: its shard and its slot in that shard. Stable while the topic
/// has presences, which is as long as any connection index may point at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TopicRef {
    pub shard: u32,
    pub slot: u32,
}

/// The topics of one shard, in a slab addressed by slot.
///
/// The index maps the topic name's keyed hash (computed once per call, and also used to
/// pick the shard) to its slot; the slot's topic holds the name, which is compared on
/// every lookup. Names whose hash is taken by another name (2^-64 odds per pair) go to
/// `collided`, so lookups stay exact.
#[derive(Default)]
pub(crate) struct TopicShard {
    index: HashMap<u64, u32, PrehashedBuild>,
    collided: Vec<(u64, u32)>,
    slots: Vec<Option<Topic>>,
    free: Vec<u32>,
    /// Slots whose topic changed since the last poll, each once.
    pub dirty: Vec<u32>,
    /// Slots whose topic changed locally since the last cluster tick, each once.
    pub outbox: Vec<u32>,
}

impl TopicShard {
    pub fn find(&self, hash: u64, name: &str) -> Option<u32> {
        let named = |slot: &u32| self.get(*slot).is_some_and(|t| &*t.name == name);
        match self.index.get(&hash) {
            Some(slot) if named(slot) => Some(*slot),
            Some(_) => self
                .collided
                .iter()
                .find(|(h, s)| *h == hash && named(s))
                .map(|(_, s)| *s),
            None => None,
        }
    }

    pub fn get(&self, slot: u32) -> Option<&Topic> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Topic> {
        self.slots.get_mut(slot as usize).and_then(Option::as_mut)
    }

    /// Adds an empty topic; the caller has checked that the name is absent.
    pub fn create(&mut self, hash: u64, name: &str, replicate: bool) -> u32 {
        let topic = Topic::new(name, hash, replicate);
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(topic);
                slot
            }
            None => {
                self.slots.push(Some(topic));
                (self.slots.len() - 1) as u32
            }
        };
        match self.index.entry(hash) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(slot);
            }
            std::collections::hash_map::Entry::Occupied(_) => self.collided.push((hash, slot)),
        }
        slot
    }

    /// Drops a topic and frees its slot.
    pub fn remove(&mut self, slot: u32) {
        if let Some(topic) = self.slots.get_mut(slot as usize).and_then(Option::take) {
            let h = topic.hash;
            if self.index.get(&h) == Some(&slot) {
                self.index.remove(&h);
                // A collided name with this hash takes the freed index entry.
                if let Some(i) = self.collided.iter().position(|(ch, _)| *ch == h) {
                    let (_, s) = self.collided.swap_remove(i);
                    self.index.insert(h, s);
                }
            } else {
                self.collided.retain(|(_, s)| *s != slot);
            }
            self.free.push(slot);
        }
    }

    /// Queues a topic for the next poll; true when it was not queued yet.
    pub fn mark_dirty(&mut self, slot: u32) -> bool {
        match self.get_mut(slot) {
            Some(t) if !t.dirty => {
                t.dirty = true;
                self.dirty.push(slot);
                true
            }
            _ => false,
        }
    }

    /// Queues a topic for the next cluster tick.
    pub fn mark_outbox(&mut self, slot: u32) {
        if let Some(o) = self.get_mut(slot).and_then(|t| t.outbox.as_mut()) {
            if !o.queued {
                o.queued = true;
                self.outbox.push(slot);
            }
        }
    }

    /// Every slot with a topic, for snapshots.
    pub fn slots(&self) -> Vec<u32> {
        (0..self.slots.len() as u32)
            .filter(|s| self.slots[*s as usize].is_some())
            .collect()
    }

    pub fn topics(&self) -> impl Iterator<Item = &Topic> {
        self.slots.iter().flatten()
    }

    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.index.capacity() * (size_of::<(u64, u32)>() + 1)
            + self.slots.capacity() * size_of::<Option<Topic>>()
            + (self.free.capacity() + self.dirty.capacity() + self.outbox.capacity()) * 4
            + self.topics().map(Topic::heap_bytes).sum::<usize>()
    }
}

/// The topics of each connection of one shard. Most connections are in one topic, so
/// the first topic sits inline in `first` and only the rest go to a vector in `more`.
#[derive(Default)]
pub(crate) struct ConnShard {
    first: HashMap<u64, TopicRef, ConnBuild>,
    more: HashMap<u64, Vec<TopicRef>, ConnBuild>,
}

impl ConnShard {
    pub fn add(&mut self, conn: u64, topic: TopicRef) {
        match self.first.entry(conn) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(topic);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.more.entry(conn).or_default().push(topic)
            }
        }
    }

    pub fn remove(&mut self, conn: u64, topic: TopicRef) {
        if self.more.is_empty() {
            // Every connection is in one topic: one probe.
            if let std::collections::hash_map::Entry::Occupied(e) = self.first.entry(conn) {
                if *e.get() == topic {
                    e.remove();
                }
            }
            return;
        }
        if self.first.get(&conn) == Some(&topic) {
            match self.more.get_mut(&conn).and_then(Vec::pop) {
                Some(next) => {
                    self.first.insert(conn, next);
                }
                None => {
                    self.first.remove(&conn);
                }
            }
        } else if let Some(list) = self.more.get_mut(&conn) {
            if let Some(i) = list.iter().position(|t| *t == topic) {
                list.swap_remove(i);
            }
        }
        if self.more.get(&conn).is_some_and(Vec::is_empty) {
            self.more.remove(&conn);
        }
    }

    /// Removes and returns every topic of `conn`.
    pub fn take(&mut self, conn: u64) -> Vec<TopicRef> {
        let mut all = self.more.remove(&conn).unwrap_or_default();
        if let Some(first) = self.first.remove(&conn) {
            all.push(first);
        }
        all
    }

    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.first.capacity() * (size_of::<(u64, TopicRef)>() + 1)
            + self.more.capacity() * (size_of::<(u64, Vec<TopicRef>)>() + 1)
            + self
                .more
                .values()
                .map(|v| v.capacity() * size_of::<TopicRef>())
                .sum::<usize>()
    }
}

/// Locks a shard. A panic inside a critical section must not turn every later call into
/// a panic too, so a poisoned lock is taken over as it is.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_one_hash_stay_apart() {
        let mut s = TopicShard::default();
        let a = s.create(7, "a", false);
        let b = s.create(7, "b", false); // a 64-bit collision, forced
        let c = s.create(8, "c", false);
        assert_eq!(
            (s.find(7, "a"), s.find(7, "b"), s.find(8, "c")),
            (Some(a), Some(b), Some(c))
        );
        assert_eq!(s.find(7, "c"), None);
        s.remove(a);
        assert_eq!(
            (s.find(7, "a"), s.find(7, "b")),
            (None, Some(b)),
            "b took over the index entry"
        );
        let a2 = s.create(7, "a", false);
        assert_eq!(s.find(7, "a"), Some(a2));
        s.remove(a2);
        s.remove(b);
        assert_eq!(
            (s.find(7, "a"), s.find(7, "b"), s.find(8, "c")),
            (None, None, Some(c))
        );
        assert!(s.collided.is_empty());
    }

    #[test]
    fn connections_in_one_or_many_topics() {
        let (t1, t2, t3) = (
            TopicRef { shard: 0, slot: 1 },
            TopicRef { shard: 0, slot: 2 },
            TopicRef { shard: 1, slot: 1 },
        );
        let mut s = ConnShard::default();
        s.add(1, t1);
        s.add(2, t1);
        s.remove(2, t1);
        s.add(1, t2);
        s.add(1, t3);
        s.remove(1, t1);
        s.remove(1, t2);
        assert_eq!(s.take(1), vec![t3]);
        assert!(s.take(2).is_empty());
        assert!(s.more.is_empty() && s.first.is_empty());
    }
}
