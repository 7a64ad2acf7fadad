//! Lock shards: topics are spread over shards by a hash of their name, connections by
//! their id. A track takes one connection shard, then one topic shard (always in that
//! order, so no two calls can deadlock), for a few hundred nanoseconds.

use crate::format::Format;
use crate::hash::{ConnBuild, HashMap};
use crate::table::{Mixed, Prehashed, Probe, Table};
use crate::topic::Topic;
use crate::ttl::Deadlines;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Where a topic lives: its shard and its slot in that shard. Stable while the topic
/// has presences, which is as long as any connection index may point at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TopicRef {
    pub shard: u32,
    pub slot: u32,
}

impl TopicRef {
    /// In one word, as the deadlines of TTL presences keep it (below bit 44: at most
    /// 4096 shards).
    pub fn packed(self) -> u64 {
        u64::from(self.shard) << 32 | u64::from(self.slot)
    }

    pub fn unpacked(word: u64) -> TopicRef {
        TopicRef {
            shard: (word >> 32) as u32,
            slot: word as u32,
        }
    }
}

/// The topics of one shard, in a slab addressed by slot.
///
/// The index maps the topic name's keyed hash (computed once per call, and also used to
/// pick the shard) to its slot; the slot's topic holds the name, which is compared on
/// every lookup. Names whose hash is taken by another name (2^-64 odds per pair) go to
/// `collided`, so lookups stay exact.
#[derive(Default)]
pub(crate) struct TopicShard {
    /// `[name hash, slot + 1]`.
    index: Table<2, Prehashed>,
    collided: Vec<(u64, u32)>,
    slots: Vec<Option<Topic>>,
    free: Vec<u32>,
    /// Slots whose topic changed since the last poll, each once.
    pub dirty: Vec<u32>,
    /// Slots whose topic changed locally since the last cluster tick, each once.
    pub outbox: Vec<u32>,
    /// `(due, slot)` of every leave held for the leave grace, in the order they came
    /// (which is the order of their due times); a row whose presence was taken over
    /// stays until its time, then finds nothing due.
    pub held: VecDeque<(u64, u32)>,
}

impl TopicShard {
    pub fn find(&self, hash: u64, name: &str) -> Option<u32> {
        self.find_and(hash, name, |_| {})
    }

    /// `find`, calling `early` on the topic indexed under `hash` before its name is
    /// compared: the caller can start loading what it will need from that topic.
    #[inline]
    pub fn find_and(&self, hash: u64, name: &str, early: impl FnOnce(&Topic)) -> Option<u32> {
        let slot = (self.index.get(hash)?[1] - 1) as u32;
        let t = self.get(slot)?;
        early(t);
        if t.name() == name {
            return Some(slot);
        }
        self.collided
            .iter()
            .find(|(h, s)| *h == hash && self.get(*s).is_some_and(|t| t.name() == name))
            .map(|(_, s)| *s)
    }

    /// Starts loading the index slot of a name's hash.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        self.index.prefetch(hash);
    }

    pub fn get(&self, slot: u32) -> Option<&Topic> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Topic> {
        self.slots.get_mut(slot as usize).and_then(Option::as_mut)
    }

    /// Adds an empty topic; the caller has checked that the name is absent.
    pub fn create(&mut self, hash: u64, name: &str, replicate: bool, format: Format) -> u32 {
        let topic = Topic::new(name, hash, replicate, format);
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
            Probe::Vacant(i) => self.index.insert_at(i, [hash, u64::from(slot) + 1]),
            Probe::Found(_) => self.collided.push((hash, slot)),
        }
        slot
    }

    /// Drops a topic and frees its slot.
    pub fn remove(&mut self, slot: u32) {
        if let Some(topic) = self.slots.get_mut(slot as usize).and_then(Option::take) {
            let h = topic.hash();
            let indexed = [h, u64::from(slot) + 1];
            if self.index.get(h) == Some(&indexed) {
                // A collided name with this hash takes over the index entry.
                match self.collided.iter().position(|(ch, _)| *ch == h) {
                    Some(i) => {
                        let (_, s) = self.collided.swap_remove(i);
                        if let Probe::Found(i) = self.index.find(h) {
                            self.index.at_mut(i)[1] = u64::from(s) + 1;
                        }
                    }
                    None => {
                        self.index.remove(h);
                        self.index.shrink();
                    }
                }
            } else {
                self.collided.retain(|(_, s)| *s != slot);
            }
            self.free.push(slot);
        }
    }

    /// Queues a topic for the next poll; true when it was not queued yet.
    pub fn mark_dirty(&mut self, slot: u32) -> bool {
        let queued = self.get_mut(slot).is_some_and(Topic::mark_dirty);
        if queued {
            self.dirty.push(slot);
        }
        queued
    }

    /// Queues a topic for the next cluster tick.
    pub fn mark_outbox(&mut self, slot: u32) {
        if self.get_mut(slot).is_some_and(Topic::queue_outbox) {
            self.outbox.push(slot);
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
        self.index.heap_bytes()
            + (self.collided.capacity() * size_of::<(u64, u32)>())
            + self.slots.capacity() * size_of::<Option<Topic>>()
            + (self.free.capacity() + self.dirty.capacity() + self.outbox.capacity()) * 4
            + self.held.capacity() * size_of::<(u64, u32)>()
            + self.topics().map(Topic::heap_bytes).sum::<usize>()
    }
}

/// One presence as the connection index keeps it: its topic and the keyed hash of its
/// key, everything an untrack needs to undo the track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Link {
    pub topic: TopicRef,
    /// The keyed hash of the presence's key, `topic::ANONYMOUS` for a viewer.
    pub key_hash: u64,
}

/// Flags in the high half of a slot's last word, beside the topic's shard (at most 4096)
/// and slot: the slot is used (so that word is never zero), and the connection has more
/// presences, in `ConnShard::more`.
const USED: u64 = 1 << 62;
const MORE: u64 = 1 << 63;

/// A connection's first presence as a table slot: `[conn, key hash, flags | shard | slot]`.
fn pack(conn: u64, link: Link, more: bool) -> [u64; 3] {
    let more = if more { MORE } else { 0 };
    let place = USED | more | u64::from(link.topic.shard) << 32 | u64::from(link.topic.slot);
    [conn, link.key_hash, place]
}

fn unpack(s: &[u64; 3]) -> Link {
    Link {
        topic: TopicRef {
            shard: (s[2] >> 32) as u32 & 0x3fff_ffff,
            slot: s[2] as u32,
        },
        key_hash: s[1],
    }
}

fn has_more(s: &[u64; 3]) -> bool {
    s[2] & MORE != 0
}

/// The presences of the connections of one shard: the connection index, which is also
/// where a presence lives (a topic keeps only counts). Most connections are in one topic,
/// so a connection's first presence sits in `first` (a 24-byte slot), and only the rest
/// go to a vector in `more`. An untrack is one probe of `first`.
#[derive(Default)]
pub(crate) struct ConnShard {
    first: Table<3, Mixed>,
    more: HashMap<u64, Vec<Link>, ConnBuild>,
    /// The deadlines of this shard's TTL presences, under the same lock as the presences.
    pub ttl: Deadlines,
}

/// A connection's place in its shard, found once per track: it answers whether the
/// connection is in a topic already and takes the new presence without probing again.
pub(crate) struct ConnSlot<'a> {
    conn: u64,
    probe: Probe,
    shard: &'a mut ConnShard,
}

impl ConnSlot<'_> {
    /// Whether the connection has a presence in `topic`.
    pub fn contains(&self, topic: TopicRef) -> bool {
        match self.probe {
            Probe::Vacant(_) => false,
            Probe::Found(i) => {
                let s = self.shard.first.at(i);
                unpack(s).topic == topic
                    || (has_more(s)
                        && self
                            .shard
                            .more
                            .get(&self.conn)
                            .is_some_and(|l| l.iter().any(|x| x.topic == topic)))
            }
        }
    }

    /// Records a presence; the caller has checked that it is not there. Only this grows
    /// the index, so a track refused after `slot` leaves the memory held as it was.
    pub fn insert(self, topic: TopicRef, key_hash: u64) {
        let link = Link { topic, key_hash };
        match self.probe {
            Probe::Vacant(i) => self
                .shard
                .first
                .insert_vacant(i, pack(self.conn, link, false)),
            Probe::Found(i) => {
                self.shard.first.at_mut(i)[2] |= MORE;
                self.shard.more.entry(self.conn).or_default().push(link);
            }
        }
    }
}

impl ConnShard {
    /// Starts loading where `conn`'s slot is, so that the probe that follows finds it in
    /// cache.
    #[inline]
    pub fn prefetch(&self, conn: u64) {
        self.first.prefetch(conn);
    }

    /// The place of `conn`, for a track. Allocates nothing: the track may still be refused.
    pub fn slot(&mut self, conn: u64) -> ConnSlot<'_> {
        ConnSlot {
            conn,
            probe: self.first.find(conn),
            shard: self,
        }
    }

    /// The key hash of the presence of `conn` in `topic`, if there is one.
    pub fn get(&self, conn: u64, topic: TopicRef) -> Option<u64> {
        let s = self.first.get(conn)?;
        let first = unpack(s);
        if first.topic == topic {
            return Some(first.key_hash);
        }
        if !has_more(s) {
            return None;
        }
        let list = self.more.get(&conn)?;
        list.iter().find(|x| x.topic == topic).map(|x| x.key_hash)
    }

    /// Removes the presence of `conn` in `topic`; returns its key hash, or `None` when
    /// there is no such presence.
    pub fn remove(&mut self, conn: u64, topic: TopicRef) -> Option<u64> {
        let Probe::Found(i) = self.first.find(conn) else {
            return None;
        };
        let s = *self.first.at(i);
        let first = unpack(&s);
        let removed = if first.topic == topic {
            if has_more(&s) {
                // The connection's last other presence moves up.
                let list = self.more.get_mut(&conn).expect("flagged");
                let next = list.pop().expect("never empty");
                let more = !list.is_empty();
                if !more {
                    self.more.remove(&conn);
                }
                *self.first.at_mut(i) = pack(conn, next, more);
            } else {
                self.first.remove_at(i);
            }
            first.key_hash
        } else if has_more(&s) {
            let list = self.more.get_mut(&conn).expect("flagged");
            let k = list.iter().position(|x| x.topic == topic)?;
            let gone = list.swap_remove(k);
            if list.is_empty() {
                self.more.remove(&conn);
                self.first.at_mut(i)[2] &= !MORE;
            }
            gone.key_hash
        } else {
            return None;
        };
        self.shrink();
        Some(removed)
    }

    /// Removes and returns every presence of `conn`.
    pub fn take(&mut self, conn: u64) -> Taken {
        let taken = match self.first.remove(conn) {
            None => Taken::default(),
            Some(s) => Taken {
                first: Some(unpack(&s)),
                more: if has_more(&s) {
                    self.more.remove(&conn).unwrap_or_default()
                } else {
                    Vec::new()
                },
            },
        };
        self.shrink();
        taken
    }

    /// Gives memory back after a crowd leaves.
    fn shrink(&mut self) {
        self.first.shrink();
        let cap = self.more.capacity();
        if cap > 64 && self.more.len() * 4 < cap {
            self.more.shrink_to_fit();
        }
    }

    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.first.heap_bytes()
            + self.more.allocation_size()
            + self
                .more
                .values()
                .map(|v| v.capacity() * size_of::<Link>())
                .sum::<usize>()
            + self.ttl.heap_bytes()
    }
}

/// The presences of one connection, taken out of the index.
#[derive(Default)]
pub(crate) struct Taken {
    first: Option<Link>,
    more: Vec<Link>,
}

impl Taken {
    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Link> {
        self.first.iter().chain(&self.more)
    }
}

/// Locks a shard. A panic inside a critical section poisons the whole engine (see
/// `Shared::enter`), which then refuses every call that reads or changes its state; the
/// calls that still lock (stopping the Redis link as the engine drops) take a poisoned
/// lock over as it is rather than panic again.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_one_hash_stay_apart() {
        let mut s = TopicShard::default();
        let a = s.create(7, "a", false, Format::Counts);
        let b = s.create(7, "b", false, Format::Counts); // a 64-bit collision, forced
        let c = s.create(8, "c", false, Format::Counts);
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
        let a2 = s.create(7, "a", false, Format::Counts);
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
        let add = |s: &mut ConnShard, conn: u64, t: TopicRef, h: u64| {
            let slot = s.slot(conn);
            assert!(!slot.contains(t), "not there yet");
            slot.insert(t, h);
            assert!(s.slot(conn).contains(t));
        };
        add(&mut s, 1, t1, 11);
        add(&mut s, 2, t1, 21);
        assert_eq!(s.remove(2, t2), None);
        assert_eq!(s.remove(2, t1), Some(21));
        assert_eq!(s.remove(2, t1), None);
        add(&mut s, 1, t2, 12);
        add(&mut s, 1, t3, 13);
        assert_eq!(
            (s.get(1, t1), s.get(1, t2), s.get(1, t3)),
            (Some(11), Some(12), Some(13))
        );
        assert_eq!(s.get(2, t1), None);
        assert_eq!(
            s.remove(1, t1),
            Some(11),
            "the first moves out, another moves up"
        );
        assert_eq!(s.remove(1, t2), Some(12));
        assert_eq!(s.get(1, t3), Some(13));
        assert!(s.more.is_empty(), "a single presence is inline again");
        let taken = s.take(1);
        assert_eq!(taken.len(), 1);
        assert_eq!(
            taken
                .iter()
                .map(|l| (l.topic, l.key_hash))
                .collect::<Vec<_>>(),
            vec![(t3, 13)]
        );
        assert_eq!(s.take(2).len(), 0);
        add(&mut s, 3, t1, 31);
        add(&mut s, 3, t2, 32);
        add(&mut s, 3, t3, 33);
        assert_eq!(s.remove(3, t2), Some(32), "one of the extra ones");
        let mut all: Vec<_> = s.take(3).iter().map(|l| (l.topic, l.key_hash)).collect();
        all.sort_by_key(|x| x.1);
        assert_eq!(all, vec![(t1, 31), (t3, 33)]);
        assert!(s.more.is_empty() && s.first.is_empty());
    }
}
