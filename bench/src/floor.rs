//! The floor: the least a tracker can do for the same answers. Integer ids resolved
//! before the clock starts (no strings, no hashing of text), one `HashMap` of topics,
//! per topic a map of connections to users and a refcount per user, and a multiply
//! hasher. No validation, no connection index (so no disconnect-all), no change
//! tracking, no diffs, no locks. Everything the engine does beyond this is its overhead.

use presence_core::Counts;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A one-multiply hasher (the FxHash step), for integer keys.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

type Fx = BuildHasherDefault<FxHasher>;

/// Stands for "no user" (an anonymous connection).
const ANONYMOUS: u32 = u32::MAX;

#[derive(Default)]
struct FloorTopic {
    conns: HashMap<u64, u32, Fx>,
    users: HashMap<u32, u32, Fx>,
    viewers: u64,
}

/// The bare `HashMap` tracker.
#[derive(Default)]
pub struct Floor {
    topics: HashMap<u32, FloorTopic, Fx>,
}

impl Floor {
    /// Adds `conn` to `topic` as `user` (`None`: anonymous); false if already there.
    #[inline]
    pub fn track(&mut self, topic: u32, conn: u64, user: Option<u32>) -> bool {
        let t = self.topics.entry(topic).or_default();
        let user = user.unwrap_or(ANONYMOUS);
        if t.conns.insert(conn, user).is_some() {
            return false;
        }
        if user == ANONYMOUS {
            t.viewers += 1;
        } else {
            *t.users.entry(user).or_insert(0) += 1;
        }
        true
    }

    /// Removes `conn` from `topic`; false if it was not there. An emptied topic is freed.
    #[inline]
    pub fn untrack(&mut self, topic: u32, conn: u64) -> bool {
        let Some(t) = self.topics.get_mut(&topic) else {
            return false;
        };
        let Some(user) = t.conns.remove(&conn) else {
            return false;
        };
        if user == ANONYMOUS {
            t.viewers -= 1;
        } else if let Some(n) = t.users.get_mut(&user) {
            *n -= 1;
            if *n == 0 {
                t.users.remove(&user);
            }
        }
        if t.conns.is_empty() {
            self.topics.remove(&topic);
        }
        true
    }

    /// The counts of `topic` (zeros when absent).
    #[inline]
    pub fn counts(&self, topic: u32) -> Counts {
        self.topics
            .get(&topic)
            .map_or_else(Counts::default, |t| Counts {
                viewers: t.viewers,
                users: t.users.len() as u64,
                connections: t.conns.len() as u64,
            })
    }

    /// Topics held.
    pub fn topics(&self) -> usize {
        self.topics.len()
    }
}

/// Tracks the connections `conns` of workload `w` in `floor`.
pub fn track_all(floor: &mut Floor, w: &crate::workload::Workload, conns: &[u32]) {
    for &i in conns {
        let i = i as usize;
        let ok = floor.track(w.topic(i) as u32, i as u64, w.user_id(i));
        debug_assert!(ok);
    }
}

/// Untracks the connections `conns` of workload `w` from `floor`.
pub fn untrack_all(floor: &mut Floor, w: &crate::workload::Workload, conns: &[u32]) {
    for &i in conns {
        let i = i as usize;
        let ok = floor.untrack(w.topic(i) as u32, i as u64);
        debug_assert!(ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Workload;

    /// The floor and the engine agree on every topic's counts through a track-all,
    /// a partial untrack and an untrack-all, with keyed and anonymous connections.
    #[test]
    fn agrees_with_the_engine() {
        let w = Workload::with_anonymous(1001, 7, 5);
        let engine = crate::engine(presence_core::Format::Counts);
        let mut floor = Floor::default();
        let all = w.all();
        let third: Vec<u32> = all.iter().copied().filter(|i| i % 3 == 0).collect();
        let rest: Vec<u32> = all.iter().copied().filter(|i| i % 3 != 0).collect();
        let compare = |floor: &Floor| {
            let from_floor: Vec<Counts> = (0..w.used_topics() as u32)
                .map(|t| floor.counts(t))
                .collect();
            assert_eq!(from_floor, w.engine_counts(&engine));
        };
        w.track_engine(&engine, &all, None);
        track_all(&mut floor, &w, &all);
        compare(&floor);
        assert!(!floor.track(0, 0, Some(0)), "duplicate track is refused");
        w.untrack_engine(&engine, &third);
        untrack_all(&mut floor, &w, &third);
        compare(&floor);
        w.untrack_engine(&engine, &rest);
        untrack_all(&mut floor, &w, &rest);
        compare(&floor);
        assert_eq!(floor.topics(), 0);
        assert!(!floor.untrack(0, 0));
    }
}
