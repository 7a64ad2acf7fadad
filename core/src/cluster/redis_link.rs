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

use super::Cluster;
use crate::error::{Error, ErrorKind, Result};
use crate::shared::Shared;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
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
    cluster: Arc<Cluster>,
    stop: Arc<AtomicBool>,
    goodbye: Arc<Mutex<Option<Vec<u8>>>>,
    done: Arc<Done>,
    thread: Option<JoinHandle<()>>,
}

/// Set by the thread as it ends. (A condition variable rather than a channel: a channel's
/// timed receive allocates per-thread state that outlives the engine on the caller's
/// thread, which leak checkers report.)
#[derive(Default)]
struct Done {
    ended: Mutex<bool>,
    signal: Condvar,
}

impl Done {
    fn set(&self) {
        *crate::shard::lock(&self.ended) = true;
        self.signal.notify_all();
    }

    /// Whether the thread ended within `limit`.
    fn wait(&self, limit: Duration) -> bool {
        let ended = crate::shard::lock(&self.ended);
        let (ended, _) = self
            .signal
            .wait_timeout_while(ended, limit, |ended| !*ended)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *ended
    }
}

/// Where the link connects: one server, or the primary that Redis Sentinel names.
enum Target {
    Direct(redis::Client),
    /// Sentinels to ask, in order; the primary gets `url`'s scheme, credentials and db.
    Sentinel {
        sentinels: Vec<String>,
        service: String,
        url: String,
        ca: Option<Vec<u8>>,
    },
}

/// A client for `url`, trusting the CA in `ca` (PEM) for TLS if given.
fn open_client(url: &str, ca: Option<&[u8]>) -> redis::RedisResult<redis::Client> {
    use redis::IntoConnectionInfo;
    let info = url.into_connection_info()?;
    // No CLIENT SETINFO after connecting: each of its replies would get the whole connect
    // timeout from an unresponsive server, and it says nothing the link needs.
    let settings = info.redis_settings().clone().set_skip_set_lib_name();
    let info = info.set_redis_settings(settings);
    match ca {
        None => redis::Client::open(info),
        Some(pem) => redis::Client::build_with_tls(
            info,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            },
        ),
    }
}

impl Target {
    /// Parses a Redis URL: `ca_file` (a PEM file of CAs to trust, `rediss://` only) and
    /// `sentinel` (a service name: the URL's host is then a Sentinel, `sentinels` lists
    /// more as `host:port,host:port`) are this library's query parameters.
    fn parse(url: &str) -> Result<Target> {
        let bad = |why: String| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("bad Redis URL {url:?}: {why}"),
            )
        };
        let parsed = redis::parse_redis_url(url).ok_or_else(|| bad("not a Redis URL".into()))?;
        let param = |name: &str| {
            parsed
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let ca = match param("ca_file") {
            None => None,
            Some(_) if parsed.scheme() != "rediss" => {
                return Err(bad("ca_file is for TLS: use a rediss:// URL".into()))
            }
            Some(path) => Some(
                std::fs::read(&path)
                    .map_err(|e| bad(format!("cannot read ca_file {path:?}: {e}")))?,
            ),
        };
        let Some(service) = param("sentinel") else {
            return open_client(url, ca.as_deref())
                .map(Target::Direct)
                .map_err(|e| bad(e.to_string()));
        };
        let first = match (parsed.host_str(), parsed.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => format!("{host}:26379"),
            _ => return Err(bad("a Sentinel URL names a Sentinel host".into())),
        };
        let mut sentinels = vec![first];
        if let Some(more) = param("sentinels") {
            sentinels.extend(more.split(',').filter(|s| !s.is_empty()).map(str::to_owned));
        }
        Ok(Target::Sentinel {
            sentinels,
            service,
            url: url.to_owned(),
            ca,
        })
    }

    /// A client for the server to use now: for Sentinel, the primary the first Sentinel
    /// that answers names (asked again at every reconnection, so failovers are followed).
    fn client(&self) -> redis::RedisResult<redis::Client> {
        let (sentinels, service, url, ca) = match self {
            Target::Direct(client) => return Ok(client.clone()),
            Target::Sentinel {
                sentinels,
                service,
                url,
                ca,
            } => (sentinels, service, url, ca),
        };
        let mut last = redis::RedisError::from((redis::ErrorKind::Io, "no Sentinel answered"));
        for addr in sentinels {
            let ask = || -> redis::RedisResult<(String, u16)> {
                let mut con = redis::Client::open(format!("redis://{addr}/"))?
                    .get_connection_with_timeout(CONNECT_TIMEOUT)?;
                con.set_read_timeout(Some(IO_TIMEOUT))?;
                con.set_write_timeout(Some(IO_TIMEOUT))?;
                let (host, port): (String, u16) = redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(service)
                    .query(&mut con)?;
                Ok((host, port))
            };
            match ask() {
                Ok((host, port)) => {
                    let mut primary = redis::parse_redis_url(url)
                        .ok_or((redis::ErrorKind::InvalidClientConfig, "bad Redis URL"))?;
                    let moved = primary.set_host(Some(&host)).is_ok()
                        && primary.set_port(Some(port)).is_ok();
                    if !moved {
                        return Err(
                            (redis::ErrorKind::InvalidClientConfig, "bad primary address").into(),
                        );
                    }
                    return open_client(primary.as_str(), ca.as_deref());
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

impl RedisLink {
    pub fn start(
        shared: Arc<Shared>,
        cluster: Arc<Cluster>,
        url: &str,
        channel: &str,
    ) -> Result<RedisLink> {
        let target = Target::parse(url)?;
        if channel.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "the Redis channel must not be empty",
            ));
        }
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
        let done = Arc::new(Done::default());
        let done_tx = Arc::clone(&done);
        let worker = Worker {
            shared: Arc::clone(&shared),
            cluster: Arc::clone(&cluster),
            target,
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
            cluster,
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
        *crate::shard::lock(&self.goodbye) = Some(self.cluster.leave());
        self.stop.store(true, Ordering::Release);
        let thread = self.thread.take();
        if self.done.wait(STOP_WAIT) {
            if let Some(t) = thread {
                let _ = t.join();
            }
        }
        // Otherwise it is still inside a Redis call that has not timed out: it is left to
        // end on its own (it holds its own reference to the engine's state).
        // With no link, the host's own calls drive the node again.
        self.cluster.set_link(true);
    }
}

struct Worker {
    shared: Arc<Shared>,
    cluster: Arc<Cluster>,
    target: Target,
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
    fn cluster(&self) -> &Cluster {
        &self.cluster
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

    fn run(self, done: Arc<Done>) {
        let mut backoff = BACKOFF_MIN;
        let mut next_tick = Instant::now();
        let mut publisher = None;
        while !self.stopping() {
            match self.connect() {
                Ok((mut p, subscriber)) => {
                    backoff = BACKOFF_MIN;
                    match self.session(&mut p, subscriber, &mut next_tick) {
                        End::Stopped => publisher = Some(p),
                        // A stopped thread leaves the link state alone: a link started
                        // since may own it.
                        End::Failed if !self.stopping() => self.cluster().set_link(false),
                        End::Failed => {}
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
        // Say goodbye, briefly, if the bus is there: peers drop this node at once. With the
        // link down there is nobody to tell; peers drop this node after down_after_ms.
        let goodbye = crate::shard::lock(&self.goodbye).take();
        if let (Some(msg), Some(p)) = (goodbye, publisher.as_mut()) {
            let _ = p.set_read_timeout(Some(GOODBYE_TIMEOUT));
            let _ = p.set_write_timeout(Some(GOODBYE_TIMEOUT));
            let _ = self.publish(p, &self.channel, &msg);
        }
        done.set();
    }

    fn connect(&self) -> redis::RedisResult<(redis::Connection, redis::Connection)> {
        let client = self.target.client()?;
        let open = || -> redis::RedisResult<redis::Connection> {
            let mut con = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
            // A paused server still completes TCP handshakes: only a reply says it is there.
            con.set_read_timeout(Some(CONNECT_TIMEOUT))?;
            con.set_write_timeout(Some(CONNECT_TIMEOUT))?;
            redis::cmd("PING").query::<String>(&mut con)?;
            con.set_read_timeout(Some(IO_TIMEOUT))?;
            con.set_write_timeout(Some(IO_TIMEOUT))?;
            Ok(con)
        };
        let publisher = open()?;
        if self.stopping() {
            return Err((redis::ErrorKind::Io, "the link is stopping").into());
        }
        Ok((publisher, open()?))
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
        if pubsub.set_read_timeout(Some(CONNECT_TIMEOUT)).is_err()
            || pubsub.subscribe(&[&self.channel, &self.own]).is_err()
        {
            return End::Failed;
        }
        if self.stopping() {
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
