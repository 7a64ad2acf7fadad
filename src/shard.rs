//! Lock shards: topics are spread over shards by a hash of their name, connections by
//! their id. A track takes one connection shard, then one topic shard (always in that
//! order, so no two calls can deadlock), for a few hundred nanoseconds.

use crate::hash::ConnBuild;
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
#[derive(Default)]
pub(crate) struct TopicShard {
    index: HashMap<Box<str>, u32>,
    slots: Vec<Option<Topic>>,
    free: Vec<u32>,
    /// Slots whose topic changed since the last poll, each once.
    pub dirty: Vec<u32>,
    /// Slots whose topic changed locally since the last cluster tick, each once.
    pub outbox: Vec<u32>,
}

impl TopicShard {
    pub fn find(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    pub fn get(&self, slot: u32) -> Option<&Topic> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Topic> {
        self.slots.get_mut(slot as usize).and_then(Option::as_mut)
    }

    /// Adds an empty topic; the caller has checked that the name is absent.
    pub fn create(&mut self, name: &str, replicate: bool) -> u32 {
        let topic = Topic::new(name, replicate);
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
        self.index.insert(name.into(), slot);
        slot
    }

    /// Drops a topic and frees its slot.
    pub fn remove(&mut self, slot: u32) {
        if let Some(topic) = self.slots.get_mut(slot as usize).and_then(Option::take) {
            self.index.remove(&topic.name);
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
        self.index.capacity() * (size_of::<(Box<str>, u32)>() + 1)
            + self.slots.capacity() * size_of::<Option<Topic>>()
            + (self.free.capacity() + self.dirty.capacity() + self.outbox.capacity()) * 4
            + self.index.keys().map(|k| k.len()).sum::<usize>()
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
