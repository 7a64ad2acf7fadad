//! The engine's state and its operations: validates calls, routes them to shards, and
//! drains changes at each poll. `Engine` (engine.rs) is the public face and documents
//! each call; background threads (the Redis link) hold the same `Arc<Shared>`. The
//! cluster node (cluster/) works on this state from above: nothing here knows of it
//! beyond `replicate`.

mod grace;

use crate::batch::{DiffBatch, DiffSink};
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::hash::{self, SipKey};
use crate::meta;
use crate::shard::{lock, ConnShard, TopicRef, TopicShard};
use crate::topic::{self, Counts, Topic};
use crate::ttl::TtlState;
use crate::waker::Waker;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Everything an engine holds. Every method takes `&self`: state is split over lock
/// shards, so calls on different topics rarely meet.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) topics: Box<[Mutex<TopicShard>]>,
    pub(crate) conns: Box<[Mutex<ConnShard>]>,
    shard_mask: u64,
    topic_key: SipKey,
    key_hasher: SipKey,
    // The counters calls write, each on a line of its own (see `Padded`).
    next_ref: Padded<AtomicU64>,
    pub(crate) topic_count: Padded<AtomicUsize>,
    pub(crate) presence_count: Padded<AtomicUsize>,
    pending_count: Padded<AtomicUsize>,
    /// Polls taken, for monitoring; on a line of its own too: each poll writes it, which
    /// would make the calls that read a line it shared miss that line afterwards.
    poll_count: Padded<AtomicU64>,
    /// TTL presences removed by expiry, for monitoring (see `poll_count` for its line).
    pub(crate) expired_count: Padded<AtomicU64>,
    waker: Waker,
    /// Cluster mode: local changes are queued for other nodes, and user hashes are keyed
    /// per topic because they travel.
    replicate: bool,
    /// Set when a call panicked inside the engine's state (see `enter`).
    poisoned: AtomicBool,
    /// Time to live: the clock and each connection shard's earliest deadline.
    pub(crate) ttl: TtlState,
    /// The leave grace: when the wake-up descriptor is set to turn readable for the next
    /// held leave (0: not set), changed under `held_timer` (see `shared/grace.rs`).
    held_due: Padded<AtomicU64>,
    held_timer: Mutex<()>,
}

/// A call inside the engine's state. A panic that unwinds through it may have left a
/// change half made (a topic counted but not indexed, a shard's counters off), so it
/// poisons the engine: every later call is refused rather than served from state that
/// may be inconsistent.
pub(crate) struct Section<'a>(&'a AtomicBool);

impl Drop for Section<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Release);
        }
    }
}

/// Engine-wide figures for monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Topics held (a topic is dropped at the poll after its last presence leaves).
    pub topics: u64,
    /// Local presences held.
    pub presences: u64,
    /// Estimated heap bytes of all tables and strings, cluster snapshots being received
    /// included.
    pub bytes: u64,
    /// Topics changed since the last poll.
    pub topics_pending: u64,
    /// Polls taken since the engine was created (each `poll_diff`, whichever binding or C
    /// call made it), empty ones included.
    pub polls: u64,
    /// TTL presences of this node removed because their time to live ran out (by a poll,
    /// the timer, or a `touch` that came too late) since the engine was created; untracks
    /// and renewals are not counted, nor other nodes' expiries.
    pub expired: u64,
}

/// A topic's published state, for a client that joins now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// The `presence_state` payload, as of the last poll.
    pub json: String,
    /// The seq of the last diff this state includes; the next diff has `seq + 1`.
    pub seq: u64,
}

/// A value alone on its cache lines (two: some CPUs fetch lines in pairs). Every track
/// and untrack writes the presence counter; beside the fields every call reads (shard
/// tables, hash keys, limits), it would make two threads on two cores pass that line back
/// and forth at every call, even on disjoint topics.
#[repr(align(128))]
pub(crate) struct Padded<T>(pub T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl Shared {
    /// The state of an engine with `config`. `user_key` keys the user hashes; a cluster
    /// passes one derived from its secret, since every node must hash a user alike.
    pub(crate) fn new(config: Config, user_key: Option<SipKey>) -> Result<Shared> {
        config.validate()?;
        let shards = config.shards.next_power_of_two();
        Ok(Shared {
            topics: (0..shards).map(|_| Mutex::default()).collect(),
            conns: (0..shards).map(|_| Mutex::default()).collect(),
            shard_mask: shards as u64 - 1,
            topic_key: SipKey::random(),
            key_hasher: user_key.unwrap_or_else(SipKey::random),
            replicate: config.cluster.is_some(),
            // Refs start at a random point so refs of two engines (or two runs) don't meet.
            next_ref: Padded(AtomicU64::new(hash::random_u64() | 1)),
            topic_count: Padded(AtomicUsize::new(0)),
            presence_count: Padded(AtomicUsize::new(0)),
            pending_count: Padded(AtomicUsize::new(0)),
            poll_count: Padded(AtomicU64::new(0)),
            expired_count: Padded(AtomicU64::new(0)),
            waker: if config.leave_grace_ms > 0 {
                Waker::with_timer()?
            } else {
                Waker::new()?
            },
            config,
            poisoned: AtomicBool::new(false),
            ttl: TtlState::new(shards),
            held_due: Padded(AtomicU64::new(0)),
            held_timer: Mutex::new(()),
        })
    }

    /// Admits a call into the engine's state, or refuses it with `Panicked` once a
    /// call has panicked inside it. Hold the section for the whole call.
    pub(crate) fn enter(&self) -> Result<Section<'_>> {
        if self.is_poisoned() {
            return Err(Error::new(
                ErrorKind::Panicked,
                "the engine is unusable: an earlier call panicked inside it and may have \
                 left its state inconsistent; drop it and create a new one",
            ));
        }
        Ok(Section(&self.poisoned))
    }

    /// Whether a call panicked inside the engine's state (see `enter`).
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    pub(crate) fn track(
        &self,
        topic: &str,
        conn: u64,
        key: Option<&str>,
        meta: Option<&str>,
    ) -> Result<()> {
        self.track_with(topic, conn, key, meta, None)
    }

    /// `track`, with a time to live in milliseconds (checked by the caller) or none.
    pub(crate) fn track_with(
        &self,
        topic: &str,
        conn: u64,
        key: Option<&str>,
        meta: Option<&str>,
        ttl_ms: Option<u64>,
    ) -> Result<()> {
        let _section = self.enter()?;
        self.check_topic(topic)?;
        if let Some(k) = key {
            self.check_key(k)?;
        }
        let meta = self.check_meta(meta)?;
        let mut conns = lock(self.conn_shard(conn));
        // At a million presences the connection's slot, the topic and the user's
        // refcount are cache misses: start loading each as soon as its address is known,
        // and hash while they come.
        conns.prefetch(conn);
        let (shard, hash) = self.topic_hash(topic);
        let mut topics = lock(&self.topics[shard as usize]);
        topics.prefetch(hash);
        let key_hash = key.map_or(topic::ANONYMOUS, |k| self.key_hash(topic, k));
        // The user's refcount waits on the topic: start it before checking the name.
        let existing = topics.find_and(hash, topic, |t| t.prefetch_user(key_hash));
        // The connection's place in the index, found once: it tells whether the
        // presence exists and takes the new one.
        let place = conns.slot(conn);
        if let Some(slot) = existing {
            if place.contains(TopicRef { shard, slot }) {
                return Err(Error::new(
                    ErrorKind::AlreadyTracked,
                    format!("connection {conn} is already tracked in topic {topic:?}"),
                ));
            }
        }
        if let (Some(slot), true) = (existing, self.config.leave_grace_ms > 0) {
            // A held presence of the same key is taken over: it is counted already.
            if self.take_over(&mut topics, slot, conn, key_hash, meta) {
                drop(topics);
                place.insert(TopicRef { shard, slot }, key_hash);
                // The new connection's time to live holds from now, as for a new presence.
                if let Some(ttl) = ttl_ms {
                    let i = self.conn_shard_index(conn);
                    let packed = TopicRef { shard, slot }.packed();
                    self.ttl.insert(i, &mut conns.ttl, conn, packed, ttl);
                }
                return Ok(());
            }
        }
        reserve(&self.presence_count, self.config.max_presences, "presences")?;
        let slot = match existing {
            Some(slot) => slot,
            None => {
                if let Err(e) = reserve(&self.topic_count, self.config.max_topics, "topics") {
                    self.presence_count.fetch_sub(1, Ordering::Relaxed);
                    return Err(e);
                }
                topics.create(hash, topic, self.replicate, self.config.format)
            }
        };
        let t = topics.get_mut(slot).expect("slot just found or created");
        t.insert(conn, key_hash, key, meta, || self.new_ref());
        self.changed(&mut topics, slot, true);
        drop(topics);
        #[cfg(any(test, feature = "test-hooks"))]
        panic_hook::maybe_panic_mid_track();
        place.insert(TopicRef { shard, slot }, key_hash);
        if let Some(ttl) = ttl_ms {
            let i = self.conn_shard_index(conn);
            self.ttl.insert(
                i,
                &mut conns.ttl,
                conn,
                TopicRef { shard, slot }.packed(),
                ttl,
            );
        }
        Ok(())
    }

    pub(crate) fn untrack(&self, topic: &str, conn: u64) -> Result<()> {
        let _section = self.enter()?;
        self.check_topic(topic)?;
        let mut conns = lock(self.conn_shard(conn));
        conns.prefetch(conn);
        let (shard, hash) = self.topic_hash(topic);
        let mut topics = lock(&self.topics[shard as usize]);
        // One probe of the connection index finds the presence and its key hash.
        let found = topics.find(hash, topic).and_then(|slot| {
            let key_hash = conns.remove(conn, TopicRef { shard, slot })?;
            Some((slot, key_hash))
        });
        let Some((slot, key_hash)) = found else {
            return Err(not_tracked(topic, conn));
        };
        if !conns.ttl.is_empty() {
            conns.ttl.forget(conn, TopicRef { shard, slot }.packed());
        }
        drop(conns);
        if self.config.leave_grace_ms > 0 {
            self.hold_leave(topics, slot, conn, key_hash);
            return Ok(());
        }
        let t = topics.get_mut(slot).expect("an indexed presence's topic");
        t.remove(conn, key_hash);
        self.presence_count.fetch_sub(1, Ordering::Relaxed);
        self.changed(&mut topics, slot, true);
        Ok(())
    }

    pub(crate) fn untrack_conn(&self, conn: u64) -> usize {
        let Ok(_section) = self.enter() else {
            return 0;
        };
        let mut conns = lock(self.conn_shard(conn));
        let taken = conns.take(conn);
        if !conns.ttl.is_empty() {
            conns.ttl.forget_conn(conn);
        }
        for link in taken.iter() {
            let r = link.topic;
            let mut topics = lock(&self.topics[r.shard as usize]);
            if self.config.leave_grace_ms > 0 {
                self.hold_leave(topics, r.slot, conn, link.key_hash);
                continue;
            }
            let t = topics.get_mut(r.slot).expect("an indexed presence's topic");
            t.remove(conn, link.key_hash);
            self.presence_count.fetch_sub(1, Ordering::Relaxed);
            self.changed(&mut topics, r.slot, true);
        }
        taken.len()
    }

    pub(crate) fn update(&self, topic: &str, conn: u64, meta: Option<&str>) -> Result<()> {
        let _section = self.enter()?;
        self.check_topic(topic)?;
        let meta = self.check_meta(meta)?;
        let (shard, hash) = self.topic_hash(topic);
        // The presence exists if the connection index has it (a held one does not: its
        // connection left).
        let conns = lock(self.conn_shard(conn));
        let mut topics = lock(&self.topics[shard as usize]);
        let Some(slot) = topics
            .find(hash, topic)
            .filter(|&slot| conns.get(conn, TopicRef { shard, slot }).is_some())
        else {
            return Err(not_tracked(topic, conn));
        };
        drop(conns);
        let t = topics.get_mut(slot).expect("found above");
        if t.update(conn, meta, || self.new_ref()) {
            self.changed(&mut topics, slot, true);
        }
        Ok(())
    }

    pub(crate) fn counts(&self, topic: &str) -> Result<Counts> {
        let _section = self.enter()?;
        Ok(self.read_topic(topic, Topic::counts)?.unwrap_or_default())
    }

    /// Each topic's counts in turn, each read under its own shard's lock: a topic's counts
    /// are as live as `counts` gives them, but the topics are not read at one instant.
    pub(crate) fn counts_many<S: AsRef<str>>(&self, topics: &[S]) -> Result<Vec<Counts>> {
        let _section = self.enter()?;
        // Reads change nothing, so failing at the first bad name after reading the names
        // before it is the same as checking every name first.
        topics
            .iter()
            .enumerate()
            .map(|(i, t)| {
                self.read_topic(t.as_ref(), Topic::counts)
                    .map(Option::unwrap_or_default)
                    .map_err(|e| e.at("topics", i))
            })
            .collect()
    }

    pub(crate) fn list(&self, topic: &str) -> Result<State> {
        let _section = self.enter()?;
        let vk = self.config.viewers_key.as_str();
        let state = self.read_topic(topic, |t| {
            let mut json = String::new();
            t.write_state(vk, &mut json);
            State { json, seq: t.seq() }
        })?;
        Ok(state.unwrap_or_else(|| {
            let mut json = String::new();
            self.config.format.write_empty_state(&mut json);
            State { json, seq: 0 }
        }))
    }

    pub(crate) fn poll_diff(&self) -> DiffBatch {
        let mut batch = DiffBatch::new();
        self.poll_into(&mut batch);
        batch.finish();
        batch
    }

    /// Takes every change since the last poll into `batch`, one `begin`/`end` per topic.
    pub(crate) fn poll_into(&self, batch: &mut impl DiffSink) {
        let Ok(_section) = self.enter() else {
            return;
        };
        self.waker.drain();
        self.poll_count.fetch_add(1, Ordering::Relaxed);
        batch.reserve(self.pending_count.load(Ordering::Acquire));
        let vk = self.config.viewers_key.as_str();
        let grace_now = self.grace_poll_start();
        let mut next_due = None;
        for shard in self.topics.iter() {
            let mut topics = lock(shard);
            if let Some(now) = grace_now {
                self.expire_shard(&mut topics, now, &mut next_due);
            }
            if topics.dirty.is_empty() {
                continue;
            }
            let dirty = std::mem::take(&mut topics.dirty);
            for &slot in &dirty {
                let Some(t) = topics.get_mut(slot) else {
                    continue;
                };
                t.clear_dirty();
                if let Some(diff) = t.next_diff() {
                    let out = batch.begin(t.name(), diff.seq, diff.counts, diff.occupancy);
                    t.take_diff(vk, out);
                    batch.end();
                }
                if t.is_vacant() {
                    topics.remove(slot);
                    self.topic_count.fetch_sub(1, Ordering::Relaxed);
                }
            }
            self.pending_count.fetch_sub(dirty.len(), Ordering::AcqRel);
            // Hand the emptied vector back so the next changes don't reallocate it.
            if topics.dirty.is_empty() {
                let mut dirty = dirty;
                dirty.clear();
                topics.dirty = dirty;
            }
        }
        if grace_now.is_some() {
            self.grace_poll_end(next_due);
        }
        // A change that landed in an already-drained shard during this poll found the
        // counter non-zero and did not signal; signal for it now.
        if self.pending_count.load(Ordering::Acquire) > 0 {
            self.waker.signal();
        }
    }

    pub(crate) fn pending_topics(&self) -> u64 {
        let grace = if self.config.leave_grace_ms > 0 {
            self.due_held()
        } else {
            0
        };
        self.pending_count.load(Ordering::Acquire) as u64 + grace
    }

    pub(crate) fn wakeup_fd(&self) -> RawFd {
        self.waker.fd()
    }

    pub(crate) fn stats(&self) -> Stats {
        let mut bytes = std::mem::size_of::<Shared>();
        for s in self.topics.iter() {
            bytes += std::mem::size_of::<Mutex<TopicShard>>() + lock(s).heap_bytes();
        }
        for s in self.conns.iter() {
            bytes += std::mem::size_of::<Mutex<ConnShard>>() + lock(s).heap_bytes();
        }
        Stats {
            topics: self.topic_count.load(Ordering::Relaxed) as u64,
            presences: self.presence_count.load(Ordering::Relaxed) as u64,
            bytes: bytes as u64,
            topics_pending: self.pending_count.load(Ordering::Relaxed) as u64,
            polls: self.poll_count.load(Ordering::Relaxed),
            expired: self.expired_count.load(Ordering::Relaxed),
        }
    }

    /// Reads the topic named `topic` with `f`, or `None` if it holds nothing. Only a name
    /// that is not found is checked as `check_topic` checks it: a topic exists only once a
    /// track passed those checks, so a found name is valid, and the common read does not
    /// scan the name for NUL characters (a tenth of what `counts` costs). A name over
    /// the length limit is not looked up, so that it is not hashed either.
    fn read_topic<R>(&self, topic: &str, f: impl FnOnce(&Topic) -> R) -> Result<Option<R>> {
        if topic.len() <= self.config.max_topic_bytes {
            let (shard, hash) = self.topic_hash(topic);
            let topics = lock(&self.topics[shard as usize]);
            if let Some(t) = topics.find(hash, topic).and_then(|slot| topics.get(slot)) {
                return Ok(Some(f(t)));
            }
        }
        self.check_topic(topic)?;
        Ok(None)
    }

    /// Queues the topic for the next poll, and wakes the host if nothing was queued.
    /// Also queues it for the next cluster tick when it changed locally.
    pub(crate) fn changed(&self, topics: &mut TopicShard, slot: u32, local: bool) {
        if topics.mark_dirty(slot) && self.pending_count.fetch_add(1, Ordering::AcqRel) == 0 {
            self.waker.signal();
        }
        if local && self.replicate {
            topics.mark_outbox(slot);
        }
    }

    pub(crate) fn new_ref(&self) -> u64 {
        self.next_ref.fetch_add(1, Ordering::Relaxed)
    }

    /// The keyed hash of a topic name and the shard it lives in. The shard comes from
    /// the low bits; the shard's own index places a name by the high bits.
    pub(crate) fn topic_hash(&self, topic: &str) -> (u32, u64) {
        let h = hash::siphash13(self.topic_key, topic.as_bytes());
        ((h & self.shard_mask) as u32, h)
    }

    /// The shard of a connection, from the middle bits of its mixed id. The shard's
    /// tables place it by the high bits (the index) and the low bits (the few
    /// connections in several topics): bits that were the same for every connection of a
    /// shard would crowd them into 1/shards of the buckets.
    fn conn_shard(&self, conn: u64) -> &Mutex<ConnShard> {
        &self.conns[self.conn_shard_index(conn)]
    }

    pub(crate) fn conn_shard_index(&self, conn: u64) -> usize {
        ((hash::mix64(conn) >> 32) & self.shard_mask) as usize
    }

    pub(crate) fn check_topic(&self, topic: &str) -> Result<()> {
        if topic.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "topic must not be empty",
            ));
        }
        no_nul("topic", topic)?;
        too_long("topic", topic.len(), self.config.max_topic_bytes)
    }

    /// The keyed hash of a key in `topic`, never `ANONYMOUS`. In a cluster the hash
    /// travels, so it depends on the topic too: whoever reads the bus cannot tell that two
    /// topics hold the same user. A single engine keeps the cheaper topic-free hash.
    pub(crate) fn key_hash(&self, topic: &str, key: &str) -> u64 {
        let h = if self.replicate {
            hash::siphash24_in(self.key_hasher, topic.as_bytes(), key.as_bytes())
        } else {
            hash::siphash24(self.key_hasher, key.as_bytes())
        };
        match h {
            topic::ANONYMOUS => 1,
            h => h,
        }
    }

    /// Validates a key.
    pub(crate) fn check_key(&self, key: &str) -> Result<()> {
        if key.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "key must not be empty (pass no key for an anonymous viewer)",
            ));
        }
        no_nul("key", key)?;
        too_long("key", key.len(), self.config.max_key_bytes)?;
        if self.config.format.lists_keys() && key == self.config.viewers_key {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("key {key:?} is the group name of anonymous viewers"),
            ));
        }
        Ok(())
    }

    pub(crate) fn check_meta<'m>(&self, meta: Option<&'m str>) -> Result<&'m str> {
        match meta {
            None => Ok("{}"),
            Some(m) => {
                too_long("meta", m.len(), self.config.max_meta_bytes)?;
                meta::validate(m)
            }
        }
    }
}

fn too_long(what: &str, len: usize, max: usize) -> Result<()> {
    if len > max {
        return Err(Error::new(
            ErrorKind::TooLong,
            format!("{what} is {len} bytes, the limit is {max}"),
        ));
    }
    Ok(())
}

/// C hosts pass NUL-terminated strings: a name with a NUL in it could never be queried.
fn no_nul(what: &str, s: &str) -> Result<()> {
    if s.contains('\0') {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("{what} must not contain NUL characters"),
        ));
    }
    Ok(())
}

fn not_tracked(topic: &str, conn: u64) -> Error {
    Error::new(
        ErrorKind::NotTracked,
        format!("connection {conn} is not tracked in topic {topic:?}"),
    )
}

/// Takes one unit of a limited count, or fails without taking it.
pub(crate) fn reserve(count: &AtomicUsize, max: usize, what: &str) -> Result<()> {
    if count.fetch_add(1, Ordering::Relaxed) >= max {
        count.fetch_sub(1, Ordering::Relaxed);
        return Err(Error::new(
            ErrorKind::LimitReached,
            format!("the limit of {max} {what} is reached"),
        ));
    }
    Ok(())
}

/// A hook for tests of the poisoning: the next track on this thread panics in its middle,
/// after its topic counts the presence and before the connection index knows it.
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) mod panic_hook {
    use std::cell::Cell;

    thread_local! {
        static MID_TRACK: Cell<bool> = const { Cell::new(false) };
    }

    pub fn arm() {
        MID_TRACK.with(|p| p.set(true));
    }

    pub(super) fn maybe_panic_mid_track() {
        if MID_TRACK.with(|p| p.replace(false)) {
            panic!("provoked inside a track");
        }
    }
}
