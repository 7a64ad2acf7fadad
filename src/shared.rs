//! The engine's shared state and its operations: validates calls, routes them to shards,
//! and drains changes at each poll. `Engine` (engine.rs) is the public face; background
//! threads (the Redis link) hold the same `Arc<Shared>`.

use crate::batch::DiffBatch;
use crate::cluster::Cluster;
use crate::config::{Config, Format};
use crate::engine::{State, Stats};
use crate::error::{Error, ErrorKind, Result};
use crate::hash::{self, SipKey};
use crate::meta;
use crate::shard::{lock, ConnShard, TopicRef, TopicShard};
use crate::topic::{self, Counts, Entry, Topic};
use crate::waker::Waker;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Everything an engine holds. Every method takes `&self`: state is split over lock
/// shards, so calls on different topics rarely meet.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) topics: Box<[Mutex<TopicShard>]>,
    conns: Box<[Mutex<ConnShard>]>,
    shard_mask: u64,
    topic_hasher: RandomState,
    key_hasher: SipKey,
    next_ref: AtomicU64,
    pub(crate) topic_count: AtomicUsize,
    presence_count: AtomicUsize,
    pending_count: AtomicUsize,
    waker: Waker,
    /// Cluster mode's node state; `None` for a single node.
    pub(crate) cluster: Option<Cluster>,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Result<Shared> {
        config.validate()?;
        let shards = config.shards.next_power_of_two();
        // In a cluster every node must hash a user alike: the hash key comes from the secret.
        let key_hasher = match &config.cluster {
            Some(c) => crate::cluster::user_hash_key(c.secret.as_bytes()),
            None => SipKey::random(),
        };
        let cluster = config.cluster.clone().map(Cluster::new);
        Ok(Shared {
            topics: (0..shards).map(|_| Mutex::default()).collect(),
            conns: (0..shards).map(|_| Mutex::default()).collect(),
            shard_mask: shards as u64 - 1,
            topic_hasher: RandomState::new(),
            key_hasher,
            cluster,
            // Refs start at a random point so refs of two engines (or two runs) don't meet.
            next_ref: AtomicU64::new(hash::random_u64() | 1),
            topic_count: AtomicUsize::new(0),
            presence_count: AtomicUsize::new(0),
            pending_count: AtomicUsize::new(0),
            waker: Waker::new()?,
            config,
        })
    }

    /// Adds a presence of `conn` in `topic`, with an optional key (none: an anonymous
    /// viewer) and an optional meta (a JSON object; kept in phoenix format only).
    pub(crate) fn track(
        &self,
        topic: &str,
        conn: u64,
        key: Option<&str>,
        meta: Option<&str>,
    ) -> Result<()> {
        self.check_topic(topic)?;
        let key_hash = match key {
            Some(k) => self.check_key(k)?,
            None => topic::ANONYMOUS,
        };
        let meta = self.check_meta(meta)?;
        let (shard, hash) = self.topic_hash(topic);
        let mut conns = lock(self.conn_shard(conn));
        let mut topics = lock(&self.topics[shard as usize]);
        let existing = topics.find(hash, topic);
        if let Some(slot) = existing {
            if topics.get(slot).is_some_and(|t| t.contains(conn)) {
                return Err(Error::new(
                    ErrorKind::AlreadyTracked,
                    format!("connection {conn} is already tracked in topic {topic:?}"),
                ));
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
                topics.create(hash, topic, self.cluster.is_some())
            }
        };
        let entry = (self.config.format == Format::Phoenix).then(|| {
            Box::new(Entry {
                key: key.map(Into::into),
                meta: meta.into(),
                phx_ref: self.new_ref(),
                prev_ref: 0,
            })
        });
        let t = topics.get_mut(slot).expect("slot just found or created");
        t.insert(conn, key_hash, entry);
        self.changed(&mut topics, slot, true);
        drop(topics);
        conns.add(conn, TopicRef { shard, slot });
        Ok(())
    }

    /// Removes the presence of `conn` in `topic`.
    pub(crate) fn untrack(&self, topic: &str, conn: u64) -> Result<()> {
        self.check_topic(topic)?;
        let (shard, hash) = self.topic_hash(topic);
        let mut conns = lock(self.conn_shard(conn));
        let mut topics = lock(&self.topics[shard as usize]);
        let slot = topics.find(hash, topic);
        let removed = slot
            .and_then(|s| topics.get_mut(s))
            .is_some_and(|t| t.remove(conn));
        let Some(slot) = slot.filter(|_| removed) else {
            return Err(not_tracked(topic, conn));
        };
        self.presence_count.fetch_sub(1, Ordering::Relaxed);
        self.changed(&mut topics, slot, true);
        drop(topics);
        conns.remove(conn, TopicRef { shard, slot });
        Ok(())
    }

    /// Removes every presence of `conn` (the host's disconnect); returns how many.
    pub(crate) fn untrack_conn(&self, conn: u64) -> usize {
        let mut conns = lock(self.conn_shard(conn));
        let refs = conns.take(conn);
        for r in &refs {
            let mut topics = lock(&self.topics[r.shard as usize]);
            if topics.get_mut(r.slot).is_some_and(|t| t.remove(conn)) {
                self.presence_count.fetch_sub(1, Ordering::Relaxed);
                self.changed(&mut topics, r.slot, true);
            }
        }
        refs.len()
    }

    /// Replaces the meta of a tracked presence. In phoenix format clients see the old
    /// meta leave and the new one join with `phx_ref_prev`; counts format keeps no meta,
    /// so it only checks the call.
    pub(crate) fn update(&self, topic: &str, conn: u64, meta: Option<&str>) -> Result<()> {
        self.check_topic(topic)?;
        let meta = self.check_meta(meta)?;
        let (shard, hash) = self.topic_hash(topic);
        let mut topics = lock(&self.topics[shard as usize]);
        let slot = topics.find(hash, topic);
        let Some(t) = slot
            .and_then(|s| topics.get_mut(s))
            .filter(|t| t.contains(conn))
        else {
            return Err(not_tracked(topic, conn));
        };
        if self.config.format == Format::Phoenix {
            t.update(conn, meta, self.new_ref());
            self.changed(&mut topics, slot.expect("found above"), true);
        }
        Ok(())
    }

    /// The live counts of `topic` (zeros for an unknown topic), in O(1).
    pub(crate) fn counts(&self, topic: &str) -> Result<Counts> {
        self.check_topic(topic)?;
        Ok(self.with_topic(topic, Topic::counts).unwrap_or_default())
    }

    /// The `presence_state` payload of `topic` as of the last poll, with its seq: send it
    /// to a client that joins now, then the diffs of later polls.
    pub(crate) fn list(&self, topic: &str) -> Result<State> {
        self.check_topic(topic)?;
        let (format, vk) = (self.config.format, self.config.viewers_key.as_str());
        let state = self.with_topic(topic, |t| {
            let mut json = String::new();
            t.write_state(format, vk, &mut json);
            State { json, seq: t.seq() }
        });
        Ok(state.unwrap_or_else(|| {
            let mut json = String::new();
            match format {
                Format::Counts => crate::render::write_counts_state(&mut json, Counts::default()),
                Format::Phoenix => json.push_str("{}"),
            }
            State { json, seq: 0 }
        }))
    }

    /// Takes every change since the last poll: one entry per topic whose clients' view
    /// changed, with its seq, live counts and diff payload.
    pub(crate) fn poll_diff(&self) -> DiffBatch {
        self.waker.drain();
        let mut batch = DiffBatch::new(self.pending_count.load(Ordering::Acquire));
        let (format, vk) = (self.config.format, self.config.viewers_key.as_str());
        for shard in self.topics.iter() {
            let mut topics = lock(shard);
            if topics.dirty.is_empty() {
                continue;
            }
            let dirty = std::mem::take(&mut topics.dirty);
            for &slot in &dirty {
                let Some(t) = topics.get_mut(slot) else {
                    continue;
                };
                t.dirty = false;
                if let Some(diff) = t.next_diff(format) {
                    batch.begin(&t.name, diff.seq, diff.counts);
                    t.take_diff(format, vk, batch.out());
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
        batch.finish();
        // A change that landed in an already-drained shard during this poll found the
        // counter non-zero and did not signal; signal for it now.
        if self.pending_count.load(Ordering::Acquire) > 0 {
            self.waker.signal();
        }
        batch
    }

    /// A descriptor that is readable while a poll may return something. It is owned by
    /// the engine: wait on it, never read or close it. Wake-ups can be spurious.
    pub(crate) fn pending_topics(&self) -> u64 {
        self.pending_count.load(Ordering::Acquire) as u64
    }

    pub(crate) fn wakeup_fd(&self) -> RawFd {
        self.waker.fd()
    }

    /// Engine-wide figures. `bytes` walks every shard, so this is O(topics).
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
        }
    }

    /// The cluster state, or `NoCluster` for a single node.
    pub(crate) fn cluster(&self) -> Result<&Cluster> {
        self.cluster.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::NoCluster,
                "the engine was created without a cluster config",
            )
        })
    }

    pub(crate) fn with_topic<R>(&self, topic: &str, f: impl FnOnce(&Topic) -> R) -> Option<R> {
        let (shard, hash) = self.topic_hash(topic);
        let topics = lock(&self.topics[shard as usize]);
        topics
            .find(hash, topic)
            .and_then(|slot| topics.get(slot))
            .map(f)
    }

    /// Queues the topic for the next poll, and wakes the host if nothing was queued.
    /// Also queues it for the next cluster tick when it changed locally.
    pub(crate) fn changed(&self, topics: &mut TopicShard, slot: u32, local: bool) {
        if topics.mark_dirty(slot) && self.pending_count.fetch_add(1, Ordering::AcqRel) == 0 {
            self.waker.signal();
        }
        if local && self.cluster.is_some() {
            topics.mark_outbox(slot);
        }
    }

    pub(crate) fn new_ref(&self) -> u64 {
        self.next_ref.fetch_add(1, Ordering::Relaxed)
    }

    /// The keyed hash of a topic name and the shard it lives in. The shard comes from
    /// the middle bits, which the shard's own table (low bits, top seven bits) leaves alone.
    pub(crate) fn topic_hash(&self, topic: &str) -> (u32, u64) {
        let h = self.topic_hasher.hash_one(topic);
        (((h >> 32) & self.shard_mask) as u32, h)
    }

    fn conn_shard(&self, conn: u64) -> &Mutex<ConnShard> {
        &self.conns[(hash::mix64(conn) & self.shard_mask) as usize]
    }

    pub(crate) fn check_topic(&self, topic: &str) -> Result<()> {
        if topic.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "topic must not be empty",
            ));
        }
        too_long("topic", topic.len(), self.config.max_topic_bytes)
    }

    /// The keyed hash of a key, never `ANONYMOUS`.
    pub(crate) fn key_hash(&self, key: &str) -> u64 {
        match hash::siphash24(self.key_hasher, key.as_bytes()) {
            topic::ANONYMOUS => 1,
            h => h,
        }
    }

    /// Validates a key and returns its keyed hash.
    fn check_key(&self, key: &str) -> Result<u64> {
        if key.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "key must not be empty (pass no key for an anonymous viewer)",
            ));
        }
        too_long("key", key.len(), self.config.max_key_bytes)?;
        if self.config.format == Format::Phoenix && key == self.config.viewers_key {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("key {key:?} is the group name of anonymous viewers"),
            ));
        }
        Ok(self.key_hash(key))
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
