//! The public engine handle.

use crate::batch::DiffBatch;
use crate::cluster::{Cluster, ClusterStats};
use crate::config::Config;
use crate::envelope::Envelope;
use crate::error::{Error, ErrorKind, Result};
use crate::expiry::Timer;
use crate::ready::ReadyBatch;
use crate::shared::{Shared, State, Stats};
use crate::topic::Counts;
use crate::ttl::Clock;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// A presence engine. Every method takes `&self` and is safe to call from any thread at
/// once: state is split over lock shards, so calls on different topics rarely meet.
///
/// Dropping the engine stops its Redis link, if one runs, after announcing the node's
/// departure to the cluster.
pub struct Engine {
    shared: Arc<Shared>,
    /// Cluster mode's node; `None` for a single node.
    cluster: Option<Arc<Cluster>>,
    #[cfg(feature = "redis")]
    link: Mutex<Option<crate::cluster::redis_link::RedisLink>>,
    #[cfg(not(feature = "redis"))]
    link: Mutex<Option<()>>,
    /// The thread expiring TTL presences, started by the first `track_ttl` on the system
    /// clock.
    timer: OnceLock<Timer>,
    /// Taken to start the timer: the threads share one stop flag, so a second timer
    /// started and dropped by a racing first `track_ttl` would stop the first one too.
    starting: Mutex<()>,
}

impl Engine {
    /// Creates an engine.
    pub fn new(config: Config) -> Result<Engine> {
        Engine::build(config, None)
    }

    /// Creates an engine that measures time to live and the leave grace on `clock` rather
    /// than on the system's monotonic clock, for tests that move time themselves. Such an
    /// engine runs no timer thread and never sets the wake-up descriptor for a held leave:
    /// a presence past its deadline leaves at the next `poll_diff`, `cluster_tick` or
    /// `touch` of its connection, and a held leave that fell due comes out at the next
    /// `poll_diff` (`pending_topics` counts it).
    pub fn with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Engine> {
        Engine::build(config, Some(clock))
    }

    fn build(config: Config, clock: Option<Arc<dyn Clock>>) -> Result<Engine> {
        let user_key = config
            .cluster
            .as_ref()
            .map(|c| crate::cluster::user_hash_key(c.secret.as_bytes()));
        let cluster = config.cluster.clone().map(|c| Arc::new(Cluster::new(c)));
        let mut shared = Shared::new(config, user_key)?;
        if let Some(clock) = clock {
            shared.ttl.use_clock(clock);
        }
        Ok(Engine {
            shared: Arc::new(shared),
            cluster,
            link: Mutex::new(None),
            timer: OnceLock::new(),
            starting: Mutex::new(()),
        })
    }

    /// Creates an engine from a JSON config (`{}` for the defaults).
    pub fn from_json(config: &str) -> Result<Engine> {
        Engine::new(Config::from_json(config)?)
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Adds a presence of `conn` in `topic`, with an optional key (none: an anonymous
    /// viewer) and an optional meta (a JSON object; kept in phoenix format only).
    /// A second track of the same (topic, conn) fails with `AlreadyTracked`.
    pub fn track(
        &self,
        topic: &str,
        conn: u64,
        key: Option<&str>,
        meta: Option<&str>,
    ) -> Result<()> {
        self.shared.track(topic, conn, key, meta)
    }

    /// `track` with a time to live, for a client without a socket (HTTP polling, mobile,
    /// serverless): the presence leaves by itself once `ttl` has passed without a
    /// [`touch`](Engine::touch) of its connection, as if untracked, and wakes the
    /// descriptor of [`wakeup_fd`](Engine::wakeup_fd) when it does (within 10 ms of its
    /// deadline). `ttl` is 1 ms to 30 days (`InvalidArgument` otherwise), measured on the
    /// monotonic clock. Untracking it works as for any presence.
    pub fn track_ttl(
        &self,
        topic: &str,
        conn: u64,
        key: Option<&str>,
        meta: Option<&str>,
        ttl: Duration,
    ) -> Result<()> {
        let ttl = crate::ttl::ttl_ms(ttl).map_err(|m| Error::new(ErrorKind::InvalidArgument, m))?;
        if self.shared.ttl.timed && self.timer.get().is_none() {
            self.check_usable()?;
            let _starting = crate::shard::lock(&self.starting);
            if self.timer.get().is_none() {
                let _ = self.timer.set(Timer::start(&self.shared)?);
            }
        }
        self.shared.track_with(topic, conn, key, meta, Some(ttl))
    }

    /// Renews every TTL presence of `conn`, in every topic, by its own time to live from
    /// now: one call per request of a polling client. Returns how many were renewed (0
    /// for a connection without TTL presences, which is no error). A presence already
    /// past its deadline is not renewed: it leaves now.
    pub fn touch(&self, conn: u64) -> usize {
        self.shared.touch(conn)
    }

    /// Expires now every presence past its deadline, as polls and the timer thread do;
    /// returns how many. For `make bench`, which times expiry apart from polling; not part
    /// of the API.
    #[cfg(feature = "bench-internals")]
    #[doc(hidden)]
    pub fn expire_due(&self) -> usize {
        self.shared.expire_due()
    }

    /// Removes the presence of `conn` in `topic`; `NotTracked` if there is none.
    ///
    /// With a leave grace (`leave_grace_ms`) the presence is held rather than removed: it
    /// keeps counting (in `counts`, `list` and for other nodes) until a track of the same
    /// key in the topic takes it over (an anonymous viewer takes over an anonymous
    /// viewer), which makes no diff, or until the window ends, when the next poll
    /// publishes the leave. The connection itself is free at once: it may track again.
    pub fn untrack(&self, topic: &str, conn: u64) -> Result<()> {
        self.shared.untrack(topic, conn)
    }

    /// Removes every presence of `conn` (the host's disconnect); returns how many. With a
    /// leave grace each is held, as `untrack` holds one.
    pub fn untrack_conn(&self, conn: u64) -> usize {
        self.shared.untrack_conn(conn)
    }

    /// Replaces the meta of a tracked presence. In phoenix format clients see the old
    /// meta leave and the new one join with `phx_ref_prev`; counts format keeps no meta,
    /// so it only checks the call.
    pub fn update(&self, topic: &str, conn: u64, meta: Option<&str>) -> Result<()> {
        self.shared.update(topic, conn, meta)
    }

    /// The live counts of `topic` (zeros for an unknown topic), in O(1). In a cluster they
    /// include every live node's presences.
    pub fn counts(&self, topic: &str) -> Result<Counts> {
        self.shared.counts(topic)
    }

    /// The live counts of each of `topics`, in their order (zeros for an unknown topic, as
    /// `counts` gives them), in time proportional to the number of topics asked: what an
    /// HTTP endpoint listing many channels' counts needs. Each topic is read as `counts`
    /// reads it, under its own shard's lock, so the topics are not read at one instant. In
    /// a cluster they include every live node's presences.
    ///
    /// Every name is checked before any is read; the first one refused is the error, with
    /// [`Error::index`] giving its position (its message names it as `topics[i]`).
    pub fn counts_many<S: AsRef<str>>(&self, topics: &[S]) -> Result<Vec<Counts>> {
        self.shared.counts_many(topics)
    }

    /// The `presence_state` payload of `topic` as of the last poll, with its seq: send it
    /// to a client that joins now, then the diffs of later polls.
    pub fn list(&self, topic: &str) -> Result<State> {
        self.shared.list(topic)
    }

    /// Takes every change since the last poll: one entry per topic whose clients' view
    /// changed, with its seq, live counts, occupancy change and diff payload. Other nodes'
    /// changes come out here like local ones, and so do the held leaves whose grace ended.
    ///
    /// A topic's [`Occupancy`](crate::Occupancy) is `Occupied` when it had no presence at
    /// the last poll (counting every node's, as `counts` does) and has some now,
    /// `Vacated` for the reverse: the events of `channel_occupied` / `channel_vacated`
    /// webhooks. A held leave keeps its topic occupied until it is published.
    pub fn poll_diff(&self) -> DiffBatch {
        self.shared.expire_due();
        self.shared.poll_diff()
    }

    /// Takes every change since the last poll, as [`poll_diff`](Self::poll_diff) does,
    /// into `batch` with each topic's whole message rendered in `envelope` (event
    /// `presence_diff`; without one, the payloads alone), ready to write to the topic's
    /// sockets. What `batch` held before is replaced: its memory is reused, so a host
    /// that polls into the same batch each time allocates nothing once it is as large as
    /// its polls. The messages are rendered as the poll takes each topic, in one pass.
    pub fn poll_ready(&self, envelope: Option<&Envelope>, batch: &mut ReadyBatch) {
        self.shared.expire_due();
        self.shared.poll_into(&mut batch.writer(envelope));
    }

    /// A descriptor that is readable while a poll may return something. It is owned by
    /// the engine: wait on it, never read or close it. Wake-ups can be spurious.
    pub fn wakeup_fd(&self) -> RawFd {
        self.shared.wakeup_fd()
    }

    /// How many topics changed since the last poll, in O(1): a cheap "anything to poll?"
    /// for hosts that cannot wait on the wake-up descriptor.
    pub fn pending_topics(&self) -> u64 {
        self.shared.pending_topics()
    }

    /// Engine-wide figures. `bytes` walks every shard, so this is O(topics).
    pub fn stats(&self) -> Stats {
        let mut stats = self.shared.stats();
        if let Some(c) = &self.cluster {
            stats.bytes += (std::mem::size_of::<Cluster>() + c.staged_bytes()) as u64;
        }
        stats
    }

    /// The engine's figures in the Prometheus text exposition format (version 0.0.4), for a
    /// `/metrics` endpoint: those of [`Engine::stats`] (which makes this O(topics)), the
    /// polls taken and, in cluster mode, those of [`Engine::cluster_stats`]. The families
    /// are listed in [`METRICS`](crate::METRICS).
    pub fn metrics(&self) -> String {
        crate::metrics::render(
            self.shared.config.format,
            &self.stats(),
            self.cluster_stats().as_ref(),
        )
    }

    /// Cluster mode: what to publish now. Call it every `tick_ms`; it returns this node's
    /// changes since the last tick (or a heartbeat), snapshots when due or asked for,
    /// snapshot requests after a gap, and drops nodes silent for `down_after_ms` (a tick
    /// much later than the one before does not count the gap as their silence).
    /// Publish every message, in order, to every other node; a snapshot meant for one
    /// node is ignored by the others.
    pub fn cluster_tick(&self) -> Result<Vec<Vec<u8>>> {
        let cluster = self.cluster()?;
        self.shared.expire_due();
        cluster.tick(&self.shared)
    }

    /// Cluster mode: applies a message another node published. A message that is
    /// unauthenticated, malformed, oversized or replayed is refused with `Rejected`,
    /// counted in [`ClusterStats`], and changes nothing. This node's own messages, which
    /// pub/sub systems echo back, are ignored.
    pub fn cluster_ingest(&self, message: &[u8]) -> Result<()> {
        self.cluster()?.ingest(&self.shared, message)
    }

    /// Cluster mode: the message that tells other nodes this one is leaving cleanly, so
    /// they drop its presences at once. Later ticks publish nothing.
    pub fn cluster_leave(&self) -> Result<Vec<u8>> {
        self.check_usable()?;
        Ok(self.cluster()?.leave())
    }

    /// Cluster mode: after the host's bus reconnects (messages may have been lost both
    /// ways), publish the message this returns: it asks every node for a snapshot, and
    /// this node's next tick sends its own.
    pub fn cluster_resync(&self) -> Result<Vec<u8>> {
        self.check_usable()?;
        Ok(self.cluster()?.resync())
    }

    /// Cluster mode: counters of the replication traffic; `None` for a single node.
    pub fn cluster_stats(&self) -> Option<ClusterStats> {
        self.cluster.as_ref().map(|c| c.stats())
    }

    /// Starts a background thread that publishes this node's messages to the Redis
    /// pub/sub `channel` at `url` (e.g. `redis://127.0.0.1:6379/`, or `rediss://` with
    /// `?ca_file=/path/ca.pem` for a private CA) every tick and ingests the other nodes'
    /// messages from it. Every Redis call has a timeout; while Redis is away or stops
    /// answering, the other nodes' presences are kept for `stale_after_ms`, and the link
    /// reconnects with a short backoff. Replaces a link already running.
    #[cfg(feature = "redis")]
    pub fn start_redis(&self, url: &str, channel: &str) -> Result<()> {
        let cluster = self.cluster()?;
        let mut slot = crate::shard::lock(&self.link);
        // A running link announces this node's departure as it stops; the new one comes
        // back as a fresh incarnation with a full snapshot.
        drop(slot.take());
        cluster.rejoin();
        *slot = Some(crate::cluster::redis_link::RedisLink::start(
            Arc::clone(&self.shared),
            Arc::clone(cluster),
            url,
            channel,
        )?);
        Ok(())
    }

    /// Without the `redis` cargo feature there is no built-in link: this fails with `Io`.
    #[cfg(not(feature = "redis"))]
    pub fn start_redis(&self, _url: &str, _channel: &str) -> Result<()> {
        self.cluster()?;
        Err(Error::new(
            ErrorKind::Io,
            "this build has no Redis link (cargo feature `redis` is off)",
        ))
    }

    /// Whether a call panicked inside the engine. Such an engine may hold inconsistent
    /// state, so every later call that returns a `Result` fails with `Panicked`, and
    /// those that cannot fail change nothing (`untrack_conn` returns 0, `poll_diff` an
    /// empty batch, cluster ticks publish nothing): drop it and create a new one.
    pub fn is_poisoned(&self) -> bool {
        self.shared.is_poisoned()
    }

    /// `Panicked` once the engine is poisoned (see [`Engine::is_poisoned`]), for callers
    /// that refuse every call of a poisoned engine, those that cannot fail included (the
    /// C ABI does).
    pub fn check_usable(&self) -> Result<()> {
        self.shared.enter().map(drop)
    }

    /// Stops the Redis link after publishing this node's departure, within about a second
    /// whatever Redis does. Does nothing if no link runs. Returns whether one was running.
    pub fn stop_redis(&self) -> bool {
        crate::shard::lock(&self.link).take().is_some()
    }
}

impl Engine {
    /// The cluster node, or `NoCluster` for a single node.
    fn cluster(&self) -> Result<&Arc<Cluster>> {
        self.cluster.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::NoCluster,
                "the engine was created without a cluster config",
            )
        })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop_redis();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::panic_hook;
    use crate::{ClusterConfig, ErrorKind};
    use std::panic::{catch_unwind, AssertUnwindSafe};

    /// Runs a track that panics in its middle (see `panic_hook`).
    fn panic_mid_track(engine: &Engine, topic: &str, conn: u64) {
        panic_hook::arm();
        let outcome = catch_unwind(AssertUnwindSafe(|| engine.track(topic, conn, None, None)));
        assert!(outcome.is_err(), "the provoked panic unwinds out of track");
    }

    fn refused<T: std::fmt::Debug>(r: Result<T>) {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Panicked);
        assert!(e.message().contains("an earlier call panicked"), "{e}");
    }

    #[test]
    fn a_panic_inside_a_call_poisons_the_engine_and_every_later_call_fails() {
        let engine = Engine::new(Config::default()).unwrap();
        engine.track("room", 1, Some("alice"), None).unwrap();
        engine.poll_diff();
        assert!(!engine.is_poisoned());

        panic_mid_track(&engine, "room", 2);

        assert!(engine.is_poisoned());
        refused(engine.track("room", 3, None, None));
        refused(engine.track("other", 3, None, None));
        refused(engine.untrack("room", 1));
        refused(engine.update("room", 1, None));
        refused(engine.counts("room"));
        refused(engine.counts_many(&["room", "other"]));
        refused(engine.list("room"));
        assert_eq!(
            engine.untrack_conn(1),
            0,
            "a poisoned engine changes nothing"
        );
        let batch = engine.poll_diff();
        assert!(batch.is_empty());
        assert_eq!(batch.json(), "[]");
    }

    #[test]
    fn a_poisoned_engine_refuses_cluster_calls() {
        let engine = Engine::new(Config {
            cluster: Some(ClusterConfig::new("a", "0123456789abcdef0123456789abcdef")),
            ..Config::default()
        })
        .unwrap();
        panic_mid_track(&engine, "room", 1);
        refused(engine.cluster_tick());
        refused(engine.cluster_ingest(b"anything"));
        refused(engine.cluster_leave());
        refused(engine.cluster_resync());
    }

    #[test]
    fn a_panic_poisons_only_the_engine_it_hit() {
        let engine = Engine::new(Config::default()).unwrap();
        let other = Engine::new(Config::default()).unwrap();
        panic_mid_track(&other, "room", 1);
        engine.track("room", 1, None, None).unwrap();
        assert!(!engine.is_poisoned());
        assert_eq!(engine.counts("room").unwrap().connections, 1);
    }

    #[test]
    fn a_poll_renders_into_a_reused_batch_what_the_batch_of_its_diffs_holds() {
        use crate::ready::ReadyBatch;
        use crate::{Config, Engine, Envelope};
        // Two engines given the same changes: one polled into a reused batch, the other's
        // poll rendered after the fact. Counts payloads are the same for both.
        let (a, b) = (
            Engine::new(Config::default()).unwrap(),
            Engine::new(Config::default()).unwrap(),
        );
        let mut batch = ReadyBatch::default();
        let rounds = [
            (40, Some(Envelope::Event)),
            (300, Some(Envelope::phoenix())),
            (2, None),
            (0, Some(Envelope::Event)),
        ];
        for (round, (n, envelope)) in rounds.into_iter().enumerate() {
            for i in 0..n {
                let topic = format!("r{round}:é{i}");
                let key = (i % 2 == 1).then_some("k");
                a.track(&topic, i as u64, key, None).unwrap();
                b.track(&topic, i as u64, key, None).unwrap();
            }
            a.poll_ready(envelope.as_ref(), &mut batch);
            let expected = ReadyBatch::new(&b.poll_diff(), envelope.as_ref());
            let sorted = |r: &ReadyBatch| {
                let mut v: Vec<_> = r
                    .iter()
                    .map(|d| {
                        (
                            d.topic.to_owned(),
                            d.seq,
                            (d.counts.viewers, d.counts.users, d.counts.connections),
                            d.payload.to_owned(),
                            d.message.map(str::to_owned),
                        )
                    })
                    .collect();
                v.sort();
                v
            };
            assert_eq!(batch.len(), n);
            assert_eq!(sorted(&batch), sorted(&expected));
            assert_eq!(batch.text().len(), expected.text().len());
            // The parts of each topic follow each other, as in a batch made from diffs.
            let mut at = 0;
            for s in batch.spans() {
                assert_eq!(s.topic.start, at);
                let end = s.message.clone().map_or(s.payload.end, |m| {
                    assert!(
                        m.start == s.topic.end
                            && m.start < s.payload.start
                            && s.payload.end < m.end
                    );
                    m.end
                });
                at = end;
            }
            assert_eq!(at, batch.text().len());
        }
    }
}
