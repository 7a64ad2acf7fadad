//! Expiring TTL presences: renewing them (`touch`), removing those past their deadline
//! as untracks on this node, and the timer thread that does so on its own.
//!
//! An expired presence leaves like an untrack: its topic is queued for the next poll (which
//! wakes the host's descriptor) and, in a cluster, for the next tick, so other nodes learn
//! of the leave through the usual delta and never expire this node's presences themselves.

use crate::error::{Error, ErrorKind, Result};
use crate::shard::{lock, ConnShard, TopicRef};
use crate::shared::Shared;
use crate::ttl::TICK_MS;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

impl Shared {
    /// Renews every TTL presence of `conn`; one already past its deadline leaves instead.
    /// Returns how many were renewed.
    pub(crate) fn touch(&self, conn: u64) -> usize {
        let Ok(_section) = self.enter() else {
            return 0;
        };
        let mut conns = lock(&self.conns[self.conn_shard_index(conn)]);
        if conns.ttl.is_empty() {
            return 0;
        }
        let mut expired = Vec::new();
        let renewed = conns.ttl.touch(conn, self.ttl.now_ms(), &mut expired);
        self.count_expired(expired.len());
        for place in expired {
            self.expire(&mut conns, conn, place);
        }
        renewed
    }

    /// Removes every presence whose deadline has passed; returns how many. Visits only the
    /// connection shards holding a deadline that is due.
    pub(crate) fn expire_due(&self) -> usize {
        let Ok(_section) = self.enter() else {
            return 0;
        };
        let now = self.ttl.now_ms();
        let mut due = Vec::new();
        let mut expired = 0;
        for (i, shard) in self.conns.iter().enumerate() {
            if self.ttl.next_of(i) > now {
                continue;
            }
            let mut conns = lock(shard);
            conns.ttl.due(now, &mut due);
            self.ttl.publish(i, &conns.ttl);
            expired += due.len();
            self.count_expired(due.len());
            for (conn, place) in due.drain(..) {
                self.expire(&mut conns, conn, place);
            }
        }
        expired
    }

    /// Counts expiries before they are made: whoever sees a presence gone (its topic's
    /// counts, the wake-up descriptor) then finds it counted. One write per shard, not per
    /// presence: a pass may expire thousands.
    fn count_expired(&self, n: usize) {
        if n > 0 {
            self.expired_count.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Removes an expired presence, whose deadline its shard has forgotten already.
    fn expire(&self, conns: &mut ConnShard, conn: u64, place: u64) {
        let r = TopicRef::unpacked(place);
        let key_hash = conns
            .remove(conn, r)
            .expect("a TTL presence is in the connection index");
        let mut topics = lock(&self.topics[r.shard as usize]);
        let t = topics.get_mut(r.slot).expect("an indexed presence's topic");
        t.remove(conn, key_hash);
        self.presence_count.fetch_sub(1, Ordering::Relaxed);
        self.changed(&mut topics, r.slot, true);
    }
}

/// The thread that expires TTL presences when their tick ends, so that a host waiting on
/// the wake-up descriptor learns of the leaves without polling on a timer of its own. It
/// sleeps until the earliest deadline's tick (indefinitely while there is none), and a
/// track with an earlier deadline wakes it. Dropping the timer stops the thread.
pub(crate) struct Timer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Timer {
    pub(crate) fn start(shared: &Arc<Shared>) -> Result<Timer> {
        let s = Arc::clone(shared);
        let thread = std::thread::Builder::new()
            .name("presence-ttl".into())
            .spawn(move || run(&s))
            .map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("could not start the TTL timer thread: {e}"),
                )
            })?;
        Ok(Timer {
            shared: Arc::clone(shared),
            thread: Some(thread),
        })
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        *lock(&self.shared.ttl.stop) = true;
        self.shared.ttl.wake.notify_all();
        if let Some(t) = self.thread.take() {
            // The thread only waits and expires: it stops within one expiry pass.
            let _ = t.join();
        }
    }
}

fn run(shared: &Shared) {
    let ttl = &shared.ttl;
    let mut stop = lock(&ttl.stop);
    loop {
        if *stop || shared.is_poisoned() {
            return;
        }
        ttl.computing();
        let earliest = ttl.earliest();
        let now = ttl.now_ms();
        if earliest <= now {
            drop(stop);
            shared.expire_due();
            stop = lock(&ttl.stop);
            continue;
        }
        if earliest == u64::MAX {
            ttl.waiting_until(u64::MAX);
            stop = ttl.wake.wait(stop).unwrap_or_else(|e| e.into_inner());
            continue;
        }
        // The end of the earliest deadline's tick: the presences due within a tick leave
        // together, one pass over the shards for all of them.
        let at = earliest.div_ceil(TICK_MS) * TICK_MS;
        ttl.waiting_until(at);
        stop = ttl
            .wake
            .wait_timeout(stop, Duration::from_millis(at - now))
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}
