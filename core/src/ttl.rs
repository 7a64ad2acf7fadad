//! Presences with a time to live, for clients without a socket (HTTP polling, mobile,
//! serverless): their deadlines, and the clock they are measured on.
//!
//! Each connection shard keeps the deadlines of its connections' TTL presences
//! ([`Deadlines`], under the shard's lock): one record per connection, and one entry per
//! connection in a queue ordered by tick of [`TICK_MS`] (a B-tree of `(tick, conn)`).
//! Expiring takes the entries of the ticks that are due and nothing else, so it costs in
//! proportion to what expires (times the B-tree's depth, which grows with the logarithm of
//! what one shard holds), never a scan of what is held. A renewal (`touch`) only moves the
//! deadlines in the connection's record; its queue entry stays where it was and, when that
//! tick comes, finds the presences renewed and moves to the new earliest tick: at most one
//! such move per time to live, however often the connection is touched.

use crate::hash::{ConnBuild, HashMap};
use crate::table::{KeyHash, Probe, Table};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Deadlines are bucketed per tick of this many milliseconds: the engine's timer expires
/// the presences of a tick together, at its end, so a presence leaves at most this long
/// after its deadline (a poll, or a touch of its connection, sees the exact deadline).
pub(crate) const TICK_MS: u64 = 10;

/// The longest time to live accepted: 30 days, in milliseconds.
pub(crate) const MAX_TTL_MS: u64 = 30 * 24 * 3600 * 1000;

/// A monotonic time source, in milliseconds. The engine measures time to live on it; tests
/// pass a [`ManualClock`] to [`Engine::with_clock`](crate::Engine::with_clock) so that
/// time moves only when they say.
pub trait Clock: Send + Sync {
    /// Milliseconds since an origin of the clock's choosing. Must never decrease.
    fn now_ms(&self) -> u64;
}

/// The operating system's monotonic clock (`Instant`), from the moment it was created.
pub(crate) struct SystemClock(Instant);

impl SystemClock {
    pub(crate) fn new() -> SystemClock {
        SystemClock(Instant::now())
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

/// A clock that moves only when told to, for deterministic tests of time to live.
///
/// ```
/// use presence_core::{Config, Engine, ManualClock};
/// use std::{sync::Arc, time::Duration};
/// let clock = Arc::new(ManualClock::default());
/// let engine = Engine::with_clock(Config::default(), clock.clone()).unwrap();
/// engine.track_ttl("inbox", 7, Some("alice"), None, Duration::from_secs(30)).unwrap();
/// engine.poll_diff();
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(engine.poll_diff().len(), 1, "alice left");
/// assert_eq!(engine.counts("inbox").unwrap().users, 0);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock reading `ms`.
    pub fn at(ms: u64) -> ManualClock {
        ManualClock(AtomicU64::new(ms))
    }

    /// Moves the clock forward by `by` (whole milliseconds).
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A time to live in milliseconds, or why it is refused.
pub(crate) fn ttl_ms(ttl: Duration) -> Result<u64, String> {
    let ms = ttl.as_millis();
    if ms == 0 || ms > u128::from(MAX_TTL_MS) {
        return Err(format!(
            "ttl must be 1 ms to {MAX_TTL_MS} ms (30 days), got {ttl:?}"
        ));
    }
    Ok(ms as u64)
}

/// The timer's target while it is computing the next one: every new deadline notifies it.
const COMPUTING: u64 = 0;

/// The engine-wide side of time to live: the clock, each connection shard's earliest
/// deadline (readable without its lock), and what the engine's timer thread waits on.
pub(crate) struct TtlState {
    pub(crate) clock: Arc<dyn Clock>,
    /// Whether the engine runs a timer thread: only on the system clock, since a clock of
    /// the host's moves in steps the thread cannot wait for.
    pub(crate) timed: bool,
    /// Per connection shard, a lower bound of the earliest deadline it holds (`u64::MAX`:
    /// none). Written under the shard's lock, as `Deadlines::next` changes.
    next: Box<[AtomicU64]>,
    /// The timer thread's state: whether to stop, under the lock it waits with.
    pub(crate) stop: Mutex<bool>,
    pub(crate) wake: Condvar,
    /// When the timer thread will next look, in clock ms (`COMPUTING` while it decides).
    target: AtomicU64,
}

impl TtlState {
    pub(crate) fn new(shards: usize) -> TtlState {
        TtlState {
            clock: Arc::new(SystemClock::new()),
            timed: true,
            next: (0..shards).map(|_| AtomicU64::new(u64::MAX)).collect(),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            target: AtomicU64::new(COMPUTING),
        }
    }

    /// Measures time on `clock` instead, with no timer thread.
    pub(crate) fn use_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
        self.timed = false;
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// A lower bound of connection shard `i`'s earliest deadline.
    pub(crate) fn next_of(&self, i: usize) -> u64 {
        self.next[i].load(Ordering::SeqCst)
    }

    /// The earliest deadline over every shard, a lower bound.
    pub(crate) fn earliest(&self) -> u64 {
        self.next
            .iter()
            .map(|n| n.load(Ordering::SeqCst))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Records that shard `i` holds `deadlines` now (call under its lock).
    pub(crate) fn publish(&self, i: usize, deadlines: &Deadlines) {
        self.next[i].store(deadlines.next, Ordering::SeqCst);
    }

    /// Adds a TTL presence to shard `i`'s deadlines (under its lock) and wakes the timer
    /// if it now has an earlier deadline to wait for.
    pub(crate) fn insert(
        &self,
        i: usize,
        deadlines: &mut Deadlines,
        conn: u64,
        place: u64,
        ttl_ms: u64,
    ) {
        let deadline = deadlines.insert(conn, place, ttl_ms, self.now_ms());
        self.publish(i, deadlines);
        let target = self.target.load(Ordering::SeqCst);
        if self.timed && (target == COMPUTING || deadline < target) {
            // Taking the lock waits until the timer is inside its wait: it cannot miss this.
            // A poisoned lock is taken over as it is, as the shards' are (ttl sits below
            // shard, which keeps the deadlines, so it cannot call `shard::lock`).
            let _stopping = self.stop.lock().unwrap_or_else(PoisonError::into_inner);
            self.wake.notify_all();
        }
    }

    /// The timer is about to read the shards' deadlines: new ones must wake it.
    pub(crate) fn computing(&self) {
        self.target.store(COMPUTING, Ordering::SeqCst);
    }

    /// The timer waits until `at` (clock ms, `u64::MAX`: until woken).
    pub(crate) fn waiting_until(&self, at: u64) {
        self.target.store(at, Ordering::SeqCst);
    }
}

/// Flags in a record's last word, beside the presence's place (its topic's shard and
/// slot, which the caller packs): the slot is used, and the connection has more TTL
/// presences, in `Deadlines::more`.
const USED: u64 = 1 << 62;
const MORE: u64 = 1 << 63;
const PLACE: u64 = (1 << 62) - 1;

/// One TTL presence of a connection beyond its first.
#[derive(Clone, Copy, Debug)]
struct Timed {
    place: u64,
    ttl: u64,
    deadline: u64,
}

/// The deadlines of one connection shard's TTL presences.
///
/// A connection's first TTL presence sits in `first`, a 32-byte slot
/// `[conn, deadline, ttl << 32 | lag, flags | place]`, where `deadline tick - lag` is the
/// tick at which the connection waits in `queue` (never later than the tick of its earliest
/// deadline); its other TTL presences go to `more`. Every connection with a record is in
/// the queue exactly once, at that tick, and no other connection is.
#[derive(Default)]
pub(crate) struct Deadlines {
    first: Table<4, ByHalves>,
    more: HashMap<u64, Vec<Timed>, ConnBuild>,
    queue: BTreeSet<(u64, u64)>,
    /// A lower bound of the earliest deadline held; `u64::MAX` when none is.
    next: u64,
}

/// Connection ids, mixed as the connection index mixes them; the table grows by halves
/// (4, 6, 8, 12, ...), which keeps its slots fuller than doubling would.
struct ByHalves;

impl KeyHash for ByHalves {
    const BY_HALVES: bool = true;

    #[inline(always)]
    fn hash(key: u64) -> u64 {
        crate::hash::mix64(key)
    }
}

type Slot = [u64; 4];

fn timed(s: &Slot) -> Timed {
    Timed {
        place: s[3] & PLACE,
        ttl: s[2] >> 32,
        deadline: s[1],
    }
}

/// The tick at which the slot's connection waits in the queue.
fn tick(s: &Slot) -> u64 {
    s[1] / TICK_MS - (s[2] & u64::from(u32::MAX))
}

/// A slot whose connection waits at `tick`, if that tick is close enough to `deadline`
/// (2^32 ticks, 497 days) to be kept beside it.
fn slot(conn: u64, deadline: u64, ttl: u64, tick: u64, flags_place: u64) -> Option<Slot> {
    let lag = u32::try_from(deadline / TICK_MS - tick).ok()?;
    Some([conn, deadline, ttl << 32 | u64::from(lag), flags_place])
}

impl Deadlines {
    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }

    /// Adds the presence of `conn` at `place`, due `ttl` after `now`; returns its deadline.
    /// The caller has checked that the presence is new.
    pub fn insert(&mut self, conn: u64, place: u64, ttl: u64, now: u64) -> u64 {
        if self.first.is_empty() {
            self.next = u64::MAX;
        }
        let deadline = now + ttl;
        let tick = deadline / TICK_MS;
        match self.first.entry(conn) {
            Probe::Vacant(i) => {
                let s = slot(conn, deadline, ttl, tick, USED | place).expect("no lag");
                self.first.insert_at(i, s);
                self.queue.insert((tick, conn));
            }
            Probe::Found(i) => {
                let s = *self.first.at(i);
                self.more.entry(conn).or_default().push(Timed {
                    place,
                    ttl,
                    deadline,
                });
                let old = self::tick(&s);
                if tick < old {
                    self.queue.remove(&(old, conn));
                    self.queue.insert((tick, conn));
                }
                self.write_first(i, conn, old.min(tick), timed(&s), s[3] | MORE);
            }
        }
        self.next = self.next.min(deadline);
        deadline
    }

    /// Forgets the TTL of the presence of `conn` at `place` (it was untracked); false if it
    /// had none.
    pub fn forget(&mut self, conn: u64, place: u64) -> bool {
        let Probe::Found(i) = self.first.find(conn) else {
            return false;
        };
        let s = *self.first.at(i);
        if s[3] & PLACE == place {
            if s[3] & MORE != 0 {
                // The connection's last other TTL presence moves up, at the same tick.
                let list = self.more.get_mut(&conn).expect("flagged");
                let next = list.pop().expect("never empty");
                let more = if list.is_empty() {
                    self.more.remove(&conn);
                    0
                } else {
                    MORE
                };
                self.write_first(i, conn, tick(&s), next, USED | more | next.place);
            } else {
                self.first.remove_at(i);
                self.queue.remove(&(tick(&s), conn));
            }
        } else {
            let Some(list) = self.more.get_mut(&conn) else {
                return false;
            };
            let Some(k) = list.iter().position(|t| t.place == place) else {
                return false;
            };
            list.swap_remove(k);
            if list.is_empty() {
                self.more.remove(&conn);
                self.first.at_mut(i)[3] &= !MORE;
            }
        }
        self.shrink();
        true
    }

    /// Forgets every TTL of `conn` (it was untracked everywhere).
    pub fn forget_conn(&mut self, conn: u64) {
        if let Some(s) = self.first.remove(conn) {
            if s[3] & MORE != 0 {
                self.more.remove(&conn);
            }
            self.queue.remove(&(tick(&s), conn));
            self.shrink();
        }
    }

    /// Every TTL presence of `conn`, into `all` (emptied first).
    fn of(&self, conn: u64, all: &mut Vec<Timed>) {
        all.clear();
        if let Some(s) = self.first.get(conn) {
            all.push(timed(s));
            if s[3] & MORE != 0 {
                all.extend_from_slice(&self.more[&conn]);
            }
        }
    }

    /// Renews every TTL presence of `conn` at `now`; those already past their deadline are
    /// not renewed but forgotten and pushed to `expired` (their places), for the caller to
    /// remove. Returns how many were renewed.
    pub fn touch(&mut self, conn: u64, now: u64, expired: &mut Vec<u64>) -> usize {
        let Probe::Found(i) = self.first.find(conn) else {
            return 0;
        };
        let (mut renewed, from) = (0, expired.len());
        let s = *self.first.at(i);
        if s[3] & MORE != 0 {
            for t in self.more.get_mut(&conn).expect("flagged") {
                if t.deadline <= now {
                    expired.push(t.place);
                } else {
                    t.deadline = now + t.ttl;
                    renewed += 1;
                }
            }
        }
        let mut first = timed(&s);
        if first.deadline <= now {
            expired.push(first.place);
        } else {
            first.deadline = now + first.ttl;
            self.write_first(i, conn, tick(&s), first, s[3]);
            renewed += 1;
        }
        for &place in &expired[from..] {
            self.forget(conn, place);
        }
        renewed
    }

    /// Takes out every presence whose deadline is `now` or earlier, pushing
    /// `(conn, place)` to `out` for the caller to remove. Visits only the queue's entries of
    /// the ticks up to `now`.
    pub fn due(&mut self, now: u64, out: &mut Vec<(u64, u64)>) {
        let current = now / TICK_MS;
        // Connections whose earliest deadline is later in the current tick: back in the
        // queue once this pass is over, so that it does not meet them again.
        let mut kept = Vec::new();
        let mut kept_min = u64::MAX;
        let mut all = Vec::new();
        while let Some(&(tick, conn)) = self.queue.first() {
            if tick > current {
                break;
            }
            self.queue.pop_first();
            // Most connections have one TTL presence: expire it without gathering a list.
            if let Probe::Found(i) = self.first.find(conn) {
                let s = *self.first.at(i);
                if s[3] & MORE == 0 && s[1] <= now {
                    self.first.remove_at(i);
                    out.push((conn, s[3] & PLACE));
                    continue;
                }
            }
            let mut earliest = u64::MAX;
            self.of(conn, &mut all);
            for &t in &all {
                if t.deadline <= now {
                    // The record's tick no longer has a queue entry: `forget` finds none.
                    self.forget(conn, t.place);
                    out.push((conn, t.place));
                } else {
                    earliest = earliest.min(t.deadline);
                }
            }
            let Probe::Found(i) = self.first.find(conn) else {
                continue; // every TTL presence of the connection expired
            };
            let s = *self.first.at(i);
            // `forget` may have queued it again, at a tick far behind a deadline.
            self.queue.remove(&(self::tick(&s), conn));
            let tick = earliest / TICK_MS;
            *self.first.at_mut(i) = slot(conn, s[1], s[2] >> 32, tick, s[3]).expect("a tick due");
            if tick <= current {
                kept.push((tick, conn));
                kept_min = kept_min.min(earliest);
            } else {
                self.queue.insert((tick, conn));
            }
        }
        self.shrink();
        let later = self.queue.first().map_or(u64::MAX, |(t, _)| t * TICK_MS);
        self.queue.extend(kept);
        self.next = kept_min.min(later);
    }

    /// Writes the first TTL presence of `conn` into its slot `i`, the connection waiting
    /// in the queue at `tick`. A queue entry that fell 2^32 ticks behind the deadline (no
    /// expiry pass ran for 497 days: a host's clock that no poll followed) cannot be kept
    /// beside it: the connection moves up to the tick of its earliest deadline.
    fn write_first(&mut self, i: usize, conn: u64, tick: u64, t: Timed, flags_place: u64) {
        if let Some(s) = slot(conn, t.deadline, t.ttl, tick, flags_place) {
            *self.first.at_mut(i) = s;
            return;
        }
        let mut earliest = t.deadline;
        if flags_place & MORE != 0 {
            earliest = self.more[&conn]
                .iter()
                .fold(earliest, |m, x| m.min(x.deadline));
        }
        self.queue.remove(&(tick, conn));
        self.queue.insert((earliest / TICK_MS, conn));
        *self.first.at_mut(i) =
            slot(conn, t.deadline, t.ttl, earliest / TICK_MS, flags_place).expect("no lag");
    }

    /// Gives memory back after many TTL presences left.
    fn shrink(&mut self) {
        self.first.shrink();
        let cap = self.more.capacity();
        if cap > 64 && self.more.len() * 4 < cap {
            self.more.shrink_to_fit();
        }
    }

    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        // A B-tree leaf of 11 entries takes 192 bytes, and entries come mostly in tick
        // order, which leaves leaves about half full: some 32 bytes per entry.
        self.first.heap_bytes()
            + self.more.allocation_size()
            + self
                .more
                .values()
                .map(|v| v.capacity() * size_of::<Timed>())
                .sum::<usize>()
            + self.queue.len() * 2 * size_of::<(u64, u64)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(d: &mut Deadlines, now: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        d.due(now, &mut out);
        out.sort_unstable();
        out
    }

    #[test]
    fn presences_expire_at_their_deadline_and_not_before() {
        let mut d = Deadlines::default();
        d.insert(1, 10, 1000, 0);
        d.insert(2, 10, 1005, 0);
        d.insert(1, 11, 3000, 0);
        assert_eq!(d.next, 1000);
        assert!(due(&mut d, 999).is_empty());
        assert_eq!(due(&mut d, 1000), vec![(1, 10)]);
        assert_eq!(d.next, 1005, "the rest of the tick waits for its deadline");
        assert!(due(&mut d, 1004).is_empty());
        assert_eq!(due(&mut d, 1005), vec![(2, 10)]);
        assert_eq!(d.next, 3000);
        assert_eq!(due(&mut d, 10_000), vec![(1, 11)]);
        assert!(d.is_empty() && d.more.is_empty());
        assert_eq!(d.next, u64::MAX);
    }

    #[test]
    fn a_touch_renews_every_presence_of_the_connection_by_its_own_ttl() {
        let mut d = Deadlines::default();
        d.insert(1, 10, 1000, 0);
        d.insert(1, 11, 2000, 0);
        let mut expired = Vec::new();
        assert_eq!(d.touch(1, 900, &mut expired), 2);
        assert!(expired.is_empty());
        assert!(due(&mut d, 1899).is_empty(), "renewed to 1900 and 2900");
        assert_eq!(due(&mut d, 1900), vec![(1, 10)]);
        assert_eq!(d.touch(7, 1900, &mut expired), 0, "no TTL presence");
        assert_eq!(d.touch(1, 2900, &mut expired), 0, "past its deadline");
        assert_eq!(expired, vec![11]);
        assert!(d.is_empty());
    }

    #[test]
    fn forgotten_presences_never_expire_and_leave_the_queue() {
        let mut d = Deadlines::default();
        d.insert(1, 10, 1000, 0);
        d.insert(1, 11, 1000, 0);
        d.insert(1, 12, 500, 0);
        assert!(d.forget(1, 10), "the first moves out, another moves up");
        assert!(!d.forget(1, 10));
        assert!(d.forget(1, 12));
        d.forget_conn(2);
        d.insert(2, 10, 1000, 0);
        d.forget_conn(2);
        d.insert(2, 10, 1000, 0);
        assert_eq!(d.queue.len(), 2, "one entry per connection");
        assert_eq!(due(&mut d, 1000), vec![(1, 11), (2, 10)]);
        assert!(d.queue.is_empty());
    }

    #[test]
    fn a_tick_holds_deadlines_until_each_is_due() {
        let mut d = Deadlines::default();
        for conn in 0..100 {
            d.insert(conn, 1, 20 + conn % TICK_MS, 0);
        }
        let mut gone = 0;
        for now in 20..30 {
            gone += due(&mut d, now).len();
            assert_eq!(gone as u64, (now - 19) * 10);
        }
        assert!(d.is_empty());
    }

    #[test]
    fn a_queue_entry_far_behind_its_renewed_deadline_moves_up() {
        let mut d = Deadlines::default();
        d.insert(1, 10, MAX_TTL_MS, 0);
        d.insert(1, 11, MAX_TTL_MS - 1000, 0);
        let mut expired = Vec::new();
        // Renewed every 29 days, with no expiry pass in 580 days: the entry waits at its
        // first tick until the lag no longer fits beside the deadline.
        let day = 86_400_000;
        for k in 1..=20 {
            assert_eq!(d.touch(1, k * 29 * day, &mut expired), 2);
            assert_eq!(d.queue.len(), 1);
        }
        let (t, _) = *d.queue.first().unwrap();
        assert!(t > MAX_TTL_MS / TICK_MS, "moved up");
        let now = 20 * 29 * day;
        assert!(due(&mut d, now + MAX_TTL_MS - 1001).is_empty());
        assert_eq!(due(&mut d, now + MAX_TTL_MS - 1000), vec![(1, 11)]);
        assert_eq!(due(&mut d, now + MAX_TTL_MS), vec![(1, 10)]);
        assert!(d.queue.is_empty() && d.is_empty());
    }

    #[test]
    fn ttl_bounds() {
        assert!(ttl_ms(Duration::from_micros(999)).is_err());
        assert_eq!(ttl_ms(Duration::from_millis(1)), Ok(1));
        assert_eq!(ttl_ms(Duration::from_millis(MAX_TTL_MS)), Ok(MAX_TTL_MS));
        assert!(ttl_ms(Duration::from_millis(MAX_TTL_MS + 1)).is_err());
    }
}
