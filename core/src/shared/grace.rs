//! The leave grace at the engine's level: a leave holds its presence in its topic (see
//! `topic/held.rs`) and queues its due time in the topic's shard; a track of the same key
//! takes the held presence over; each poll makes the due leaves first, so they come out
//! in that same poll, and sets the wake-up descriptor for the next due time.
//!
//! The grace applies where the presence lives: a held presence stays in this node's
//! state, so other nodes see neither the leave nor the rejoin that takes it over.
//!
//! The descriptor's time (`held_due`) is kept under `held_timer`, taken with no shard
//! lock held. A poll clears it before reading the shards and sets the earliest due time
//! it saw after; a leave sets its own due time when the one kept is later or cleared.
//! A leave queued in a shard after the poll read that shard thus finds either a cleared
//! time (and sets its own) or the poll's (earlier, since due times only grow).

use super::Shared;
use crate::shard::{lock, TopicShard};
use std::sync::atomic::Ordering;
use std::sync::MutexGuard;

impl Shared {
    /// Holds the presence of `conn` in the topic at `slot` (already out of the connection
    /// index) instead of removing it, and makes sure the host is woken when it is due.
    pub(super) fn hold_leave(
        &self,
        mut topics: MutexGuard<'_, TopicShard>,
        slot: u32,
        conn: u64,
        key_hash: u64,
    ) {
        // Read under the shard's lock, so the shard's due times are queued in order.
        let due = self.ttl.now_ms().saturating_add(self.config.leave_grace_ms);
        let t = topics.get_mut(slot).expect("an indexed presence's topic");
        t.hold(conn, key_hash, due);
        topics.held.push_back((due, slot));
        drop(topics);
        self.wake_by(due);
    }

    /// A track of `conn` with `key_hash` in the topic at `slot` takes over a held presence
    /// of that key if there is one; false when there is none.
    pub(super) fn take_over(
        &self,
        topics: &mut TopicShard,
        slot: u32,
        conn: u64,
        key_hash: u64,
        meta: &str,
    ) -> bool {
        let t = topics.get_mut(slot).expect("slot just found");
        match t.take_over(conn, key_hash, meta, || self.new_ref()) {
            None => false,
            Some(changed) => {
                if changed {
                    self.changed(topics, slot, true);
                }
                true
            }
        }
    }

    /// Makes sure the wake-up descriptor turns readable by `due`.
    fn wake_by(&self, due: u64) {
        let set = self.held_due.load(Ordering::Acquire);
        if set != 0 && set <= due {
            return;
        }
        let _timer = lock(&self.held_timer);
        let set = self.held_due.load(Ordering::Acquire);
        if set == 0 || due < set {
            self.held_due.store(due, Ordering::Release);
            if self.ttl.timed {
                self.waker
                    .wake_in(Some(due.saturating_sub(self.ttl.now_ms())));
            }
        }
    }

    /// The start of a poll with a leave grace: the time the due leaves are made at, and
    /// the descriptor's time cleared (see the module's doc). `None` without a grace.
    pub(super) fn grace_poll_start(&self) -> Option<u64> {
        if self.config.leave_grace_ms == 0 {
            return None;
        }
        let _timer = lock(&self.held_timer);
        self.held_due.store(0, Ordering::Release);
        Some(self.ttl.now_ms())
    }

    /// Makes the leaves of `topics` due at `now`, queuing their topics for this poll
    /// without signalling (the poll takes them at once), and lowers `next` to the
    /// shard's next due time.
    pub(super) fn expire_shard(&self, topics: &mut TopicShard, now: u64, next: &mut Option<u64>) {
        while let Some(&(due, slot)) = topics.held.front() {
            if due <= now {
                topics.held.pop_front();
                let n = topics.get_mut(slot).map_or(0, |t| t.expire_held(now));
                if n > 0 {
                    self.presence_count.fetch_sub(n, Ordering::Relaxed);
                    if topics.mark_dirty(slot) {
                        self.pending_count.fetch_add(1, Ordering::AcqRel);
                    }
                    if self.replicate {
                        topics.mark_outbox(slot);
                    }
                }
                continue;
            }
            // A row is live when its topic's next held presence is due no later: the
            // rows of presences taken over go now rather than wake the host for nothing.
            let live = topics
                .get_mut(slot)
                .and_then(|t| t.next_held_due())
                .is_some_and(|d| d <= due);
            if live {
                *next = Some(next.map_or(due, |n| n.min(due)));
                return;
            }
            topics.held.pop_front();
        }
    }

    /// The end of a poll with a leave grace: sets the descriptor for the earliest due time
    /// the poll saw, unless a leave since set an earlier one.
    pub(super) fn grace_poll_end(&self, next: Option<u64>) {
        let _timer = lock(&self.held_timer);
        let set = self.held_due.load(Ordering::Acquire);
        let due = match (set, next) {
            (0, n) => n,
            (s, Some(n)) => Some(s.min(n)),
            (s, None) => Some(s),
        };
        self.held_due.store(due.unwrap_or(0), Ordering::Release);
        if self.ttl.timed {
            let now = self.ttl.now_ms();
            self.waker.wake_in(due.map(|d| d.saturating_sub(now)));
        }
    }

    /// 1 when a held leave is due (a poll would make it), else 0: what `pending_topics`
    /// adds for the grace.
    pub(super) fn due_held(&self) -> u64 {
        let due = self.held_due.load(Ordering::Acquire);
        u64::from(due != 0 && due <= self.ttl.now_ms())
    }
}
