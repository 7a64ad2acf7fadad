//! The built-in transport: Redis pub/sub on one channel, run by a background thread.
//!
//! The thread ticks the engine every `tick_ms` and publishes what the tick returns, and in
//! between blocks on the subscription (with a timeout that ends at the next tick) and
//! ingests what other nodes published. When Redis goes away it keeps ticking (so silent
//! peers are still dropped on time), reconnects with exponential backoff, and on each
//! reconnection asks every node for a snapshot and sends its own.

use crate::error::{Error, ErrorKind, Result};
use crate::shared::Shared;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running link; dropping it publishes this node's departure and stops the thread.
pub(crate) struct RedisLink {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RedisLink {
    pub fn start(shared: Arc<Shared>, url: &str, channel: &str) -> Result<RedisLink> {
        let client = redis::Client::open(url).map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("bad Redis URL {url:?}: {e}"),
            )
        })?;
        if channel.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "the Redis channel must not be empty",
            ));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            shared,
            client,
            channel: channel.to_owned(),
            stop: Arc::clone(&stop),
        };
        let thread = std::thread::Builder::new()
            .name("presence-redis".into())
            .spawn(move || worker.run())
            .map_err(|e| {
                Error::new(ErrorKind::Io, format!("cannot start the Redis thread: {e}"))
            })?;
        Ok(RedisLink {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for RedisLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Worker {
    shared: Arc<Shared>,
    client: redis::Client,
    channel: String,
    stop: Arc<AtomicBool>,
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

    fn run(self) {
        let mut backoff = Duration::from_millis(50);
        let mut next_tick = Instant::now();
        let mut first = true;
        while !self.stop.load(Ordering::Acquire) {
            match self.connect() {
                Ok((publisher, subscriber)) => {
                    backoff = Duration::from_millis(50);
                    // After a reconnection, anything may have been lost both ways.
                    let hello = if first {
                        None
                    } else {
                        Some(self.cluster().resync())
                    };
                    first = false;
                    self.session(publisher, subscriber, hello, &mut next_tick);
                }
                Err(_) => {
                    // Keep ticking while Redis is away, so silent peers are dropped on time.
                    let until = Instant::now() + backoff;
                    while Instant::now() < until && !self.stop.load(Ordering::Acquire) {
                        if Instant::now() >= next_tick {
                            let _ = self.shared.cluster().and_then(|c| c.tick(&self.shared));
                            next_tick += self.tick_every();
                        }
                        std::thread::sleep(
                            Duration::from_millis(10)
                                .min(until.saturating_duration_since(Instant::now())),
                        );
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
        // Say goodbye on a fresh connection if the bus is there; peers drop us at once.
        let goodbye = self.cluster().leave();
        if let Ok(mut con) = self
            .client
            .get_connection_with_timeout(Duration::from_millis(500))
        {
            let _ = redis::cmd("PUBLISH")
                .arg(&self.channel)
                .arg(goodbye)
                .query::<i64>(&mut con);
        }
    }

    fn connect(&self) -> redis::RedisResult<(redis::Connection, redis::Connection)> {
        let timeout = Duration::from_millis(500);
        let publisher = self.client.get_connection_with_timeout(timeout)?;
        let subscriber = self.client.get_connection_with_timeout(timeout)?;
        Ok((publisher, subscriber))
    }

    /// Runs until the connection fails or the link stops.
    fn session(
        &self,
        mut publisher: redis::Connection,
        mut subscriber: redis::Connection,
        hello: Option<Vec<u8>>,
        next_tick: &mut Instant,
    ) {
        let mut pubsub = subscriber.as_pubsub();
        if pubsub.subscribe(&self.channel).is_err() {
            return;
        }
        let publish = |con: &mut redis::Connection, msg: Vec<u8>| {
            redis::cmd("PUBLISH")
                .arg(&self.channel)
                .arg(msg)
                .query::<i64>(con)
                .map(|_| ())
        };
        if let Some(msg) = hello {
            if publish(&mut publisher, msg).is_err() {
                return;
            }
        }
        while !self.stop.load(Ordering::Acquire) {
            let now = Instant::now();
            if now >= *next_tick {
                let messages = self
                    .shared
                    .cluster()
                    .and_then(|c| c.tick(&self.shared))
                    .unwrap_or_default();
                *next_tick += self.tick_every();
                if *next_tick < now {
                    *next_tick = now + self.tick_every(); // fell behind: don't burst
                }
                for msg in messages {
                    if publish(&mut publisher, msg).is_err() {
                        return;
                    }
                }
            }
            let wait = next_tick
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            if pubsub.set_read_timeout(Some(wait)).is_err() {
                return;
            }
            match pubsub.get_message() {
                Ok(msg) => {
                    if let Ok(bytes) = msg.get_payload::<Vec<u8>>() {
                        // Refusals are counted in the cluster stats; the link goes on.
                        let _ = self.cluster().ingest(&self.shared, &bytes);
                    }
                }
                Err(e) if e.is_timeout() => {}
                Err(_) => return,
            }
        }
    }
}
