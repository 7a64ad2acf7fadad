//! The built-in transport: Redis pub/sub, run by a background thread.
//!
//! Every node subscribes to the shared channel and to `<channel>:<node>`, its own: what
//! concerns every node goes to the first, a snapshot one node asked for to that node's
//! own channel only. The thread ticks the engine every `tick_ms`, publishes what the tick
//! returns, and in between reads the subscription (with a timeout that ends at the next
//! tick) and ingests what other nodes published.
//!
//! Every Redis call has a timeout, so a Redis that stops answering (paused, or cut off by
//! a partition that sends no resets) is noticed within a tick plus about a second: a
//! PUBLISH gets no reply, or this node's own messages stop coming back on the
//! subscription. The node is then told it cannot hear the bus (so its peers are kept, not
//! dropped for silence), and the thread reconnects with a short backoff while it keeps
//! ticking. Stopping never waits on Redis for more than about a second.

use crate::error::{Error, ErrorKind, Result};
use crate::shared::Shared;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest wait for one Redis reply, or for a command to be written.
const IO_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait to connect (TCP, TLS, AUTH and the handshake included).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Reconnection attempts start this far apart and double up to `BACKOFF_MAX`.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_millis(500);
/// Budget for the departure message once stopping. The thread looks at the stop flag at
/// least once a tick (and once a second); the wait for it is bounded by `STOP_WAIT`,
/// after which it is left to finish on its own.
const GOODBYE_TIMEOUT: Duration = Duration::from_millis(300);
const STOP_WAIT: Duration = Duration::from_millis(1000);

/// A running link; dropping it publishes this node's departure and stops the thread.
pub(crate) struct RedisLink {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    goodbye: Arc<Mutex<Option<Vec<u8>>>>,
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

/// A Redis URL, with the CA file (query parameter `ca_file`) read for `rediss://`.
fn client(url: &str) -> Result<redis::Client> {
    let bad = |why: String| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("bad Redis URL {url:?}: {why}"),
        )
    };
    let parsed = redis::parse_redis_url(url).ok_or_else(|| bad("not a Redis URL".into()))?;
    let ca_file = parsed
        .query_pairs()
        .find(|(k, _)| k == "ca_file")
        .map(|(_, v)| v.into_owned());
    match ca_file {
        None => redis::Client::open(url).map_err(|e| bad(e.to_string())),
        Some(_) if parsed.scheme() != "rediss" => {
            Err(bad("ca_file is for TLS: use a rediss:// URL".into()))
        }
        Some(path) => {
            let pem = std::fs::read(&path)
                .map_err(|e| bad(format!("cannot read ca_file {path:?}: {e}")))?;
            redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            )
            .map_err(|e| bad(e.to_string()))
        }
    }
}

impl RedisLink {
    pub fn start(shared: Arc<Shared>, url: &str, channel: &str) -> Result<RedisLink> {
        let client = client(url)?;
        if channel.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "the Redis channel must not be empty",
            ));
        }
        let cluster = shared
            .cluster
            .as_ref()
            .expect("links start only in cluster mode");
        // Until the first connection, this node hears nobody.
        cluster.set_link(false);
        let own = format!(
            "{channel}:{}",
            shared
                .config
                .cluster
                .as_ref()
                .map_or("", |c| c.node.as_str())
        );
        let stop = Arc::new(AtomicBool::new(false));
        let goodbye = Arc::new(Mutex::new(None));
        let (done_tx, done) = mpsc::channel();
        let worker = Worker {
            shared: Arc::clone(&shared),
            client,
            channel: channel.to_owned(),
            own,
            stop: Arc::clone(&stop),
            goodbye: Arc::clone(&goodbye),
        };
        let thread = std::thread::Builder::new()
            .name("presence-redis".into())
            .spawn(move || worker.run(done_tx))
            .map_err(|e| {
                Error::new(ErrorKind::Io, format!("cannot start the Redis thread: {e}"))
            })?;
        Ok(RedisLink {
            shared,
            stop,
            goodbye,
            done,
            thread: Some(thread),
        })
    }
}

impl Drop for RedisLink {
    fn drop(&mut self) {
        // The departure is sealed here, not by the thread, so that a link started right
        // after this one (a new incarnation) can never be marked as left by a late thread.
        if let Some(cluster) = self.shared.cluster.as_ref() {
            *crate::shard::lock(&self.goodbye) = Some(cluster.leave());
        }
        self.stop.store(true, Ordering::Release);
        match self.done.recv_timeout(STOP_WAIT) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
            }
            // Still inside a Redis call that has not timed out: leave the thread to end
            // on its own (it holds its own reference to the engine's state).
            Err(RecvTimeoutError::Timeout) => drop(self.thread.take()),
        }
        if let Some(cluster) = self.shared.cluster.as_ref() {
            // With no link, the host's own calls drive the node again.
            cluster.set_link(true);
        }
    }
}

struct Worker {
    shared: Arc<Shared>,
    client: redis::Client,
    channel: String,
    /// This node's own channel, for snapshots sent to it alone.
    own: String,
    stop: Arc<AtomicBool>,
    goodbye: Arc<Mutex<Option<Vec<u8>>>>,
}

/// Why a session ended.
enum End {
    Stopped,
    Failed,
}

impl Worker {
    fn cluster(&self) -> &super::Cluster {
        self.shared
            .cluster
            .as_ref()
            .expect("links start only in cluster mode")
    }

    fn tick_every(&self) -> Duration {
        Duration::from_millis(
            self.shared
                .config
                .cluster
                .as_ref()
                .map_or(250, |c| c.tick_ms),
        )
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn run(self, done: Sender<()>) {
        let mut backoff = BACKOFF_MIN;
        let mut next_tick = Instant::now();
        let mut publisher = None;
        while !self.stopping() {
            match self.connect() {
                Ok((mut p, subscriber)) => {
                    backoff = BACKOFF_MIN;
                    let end = self.session(&mut p, subscriber, &mut next_tick);
                    self.cluster().set_link(false);
                    if let End::Stopped = end {
                        publisher = Some(p);
                    }
                }
                Err(_) => {
                    // Keep ticking while Redis is away: the node keeps time, and drops its
                    // peers once the outage outlasts `stale_after_ms`.
                    let until = Instant::now() + backoff;
                    while Instant::now() < until && !self.stopping() {
                        if Instant::now() >= next_tick {
                            let _ = self.cluster().tick_out(&self.shared);
                            next_tick = Instant::now() + self.tick_every();
                        }
                        std::thread::sleep(
                            Duration::from_millis(10)
                                .min(until.saturating_duration_since(Instant::now())),
                        );
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        // Say goodbye if the bus is there, briefly: peers drop this node at once.
        let goodbye = crate::shard::lock(&self.goodbye).take();
        if let Some(msg) = goodbye {
            let sent = publisher.as_mut().is_some_and(|p| {
                let _ = p.set_read_timeout(Some(GOODBYE_TIMEOUT));
                let _ = p.set_write_timeout(Some(GOODBYE_TIMEOUT));
                self.publish(p, &self.channel, &msg).is_ok()
            });
            if !sent {
                if let Ok(mut p) = self.client.get_connection_with_timeout(GOODBYE_TIMEOUT) {
                    let _ = p.set_read_timeout(Some(GOODBYE_TIMEOUT));
                    let _ = p.set_write_timeout(Some(GOODBYE_TIMEOUT));
                    let _ = self.publish(&mut p, &self.channel, &msg);
                }
            }
        }
        let _ = done.send(());
    }

    fn connect(&self) -> redis::RedisResult<(redis::Connection, redis::Connection)> {
        let open = || -> redis::RedisResult<redis::Connection> {
            let con = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
            con.set_read_timeout(Some(IO_TIMEOUT))?;
            con.set_write_timeout(Some(IO_TIMEOUT))?;
            Ok(con)
        };
        Ok((open()?, open()?))
    }

    fn publish(
        &self,
        con: &mut redis::Connection,
        channel: &str,
        msg: &[u8],
    ) -> redis::RedisResult<()> {
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(msg)
            .query::<i64>(con)
            .map(|_| ())
    }

    /// Runs until the connection fails, Redis stops answering, or the link stops.
    fn session(
        &self,
        publisher: &mut redis::Connection,
        mut subscriber: redis::Connection,
        next_tick: &mut Instant,
    ) -> End {
        let mut pubsub = subscriber.as_pubsub();
        if pubsub.subscribe(&[&self.channel, &self.own]).is_err() {
            return End::Failed;
        }
        self.cluster().set_link(true);
        // Since when a message of ours is out and nothing has come back: every tick
        // publishes, and the subscription echoes it, so a long wait means a dead link.
        let mut unanswered: Option<Instant> = None;
        while !self.stopping() {
            let now = Instant::now();
            if now >= *next_tick {
                let messages = self.cluster().tick_out(&self.shared);
                *next_tick += self.tick_every();
                if *next_tick < now {
                    *next_tick = now + self.tick_every(); // fell behind: don't burst
                }
                for msg in &messages {
                    let channel = match &msg.to {
                        None => &self.channel,
                        Some(node) => &format!("{}:{node}", self.channel),
                    };
                    if self.publish(publisher, channel, &msg.bytes).is_err() {
                        return End::Failed;
                    }
                }
                if !messages.is_empty() {
                    unanswered.get_or_insert(now);
                }
            }
            let wait = next_tick
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(1), IO_TIMEOUT);
            if pubsub.set_read_timeout(Some(wait)).is_err() {
                return End::Failed;
            }
            match pubsub.get_message() {
                Ok(msg) => {
                    unanswered = None;
                    if let Ok(bytes) = msg.get_payload::<Vec<u8>>() {
                        // Refusals are counted in the cluster stats; the link goes on.
                        let _ = self.cluster().ingest(&self.shared, &bytes);
                    }
                }
                // Judged only when nothing at all is queued, so that a pause of this
                // process (with the echo waiting unread) is not taken for a dead link.
                Err(e) if e.is_timeout() => {
                    if unanswered.is_some_and(|t| t.elapsed() > IO_TIMEOUT + self.tick_every()) {
                        return End::Failed;
                    }
                }
                Err(_) => return End::Failed,
            }
        }
        End::Stopped
    }
}
