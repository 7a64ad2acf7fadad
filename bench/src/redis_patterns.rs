//! The Redis counting patterns that socket servers hand-roll (reference/peer-systems.md
//! section 4), run against a local `redis-server` with the `redis` crate:
//!
//! - `hincrby`: one hash of per-topic connection counters; a join is
//!   `HINCRBY presence:conns <topic> 1` and a leave the same with -1. The reply is the
//!   new count, ready to broadcast.
//! - `sets`: one set of connection ids per topic; a join is `SADD presence:room:<topic>
//!   <conn>` followed by `SCARD` for the new count, a leave `SREM` + `SCARD` (the two
//!   commands of one event travel together, in one round trip).
//!
//! Both count connections only: distinct users would need more commands per event
//! (a per-user refcount hash), so the comparison is generous to Redis.
//!
//! "Round trip" mode sends each event on its own and waits for the reply, as a server
//! does when it handles a join; "pipelined" mode sends events in batches.

use crate::workload::Workload;
use redis::{Connection, RedisResult};

/// A counting pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// HINCRBY on one per-topic counter.
    Hincrby,
    /// SADD/SREM of the connection id, then SCARD.
    Sets,
}

impl Pattern {
    /// Both patterns.
    pub const ALL: [Pattern; 2] = [Pattern::Hincrby, Pattern::Sets];

    /// The name used in results.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Hincrby => "hincrby",
            Pattern::Sets => "sets",
        }
    }
}

/// The Redis key names of the workload's topics, built before any clock starts.
pub struct Keys {
    /// The hash of per-topic counters (hincrby pattern).
    pub counters: String,
    /// The field of each topic in `counters`.
    pub fields: Vec<String>,
    /// The set of each topic (sets pattern).
    pub sets: Vec<String>,
}

impl Keys {
    /// Key names for workload `w`.
    pub fn new(w: &Workload) -> Keys {
        Keys {
            counters: "presence:conns".into(),
            fields: (0..w.used_topics())
                .map(|t| w.name_of_topic(t).to_owned())
                .collect(),
            sets: (0..w.used_topics())
                .map(|t| format!("presence:room:{}", w.name_of_topic(t)))
                .collect(),
        }
    }
}

/// Connects to `url` (e.g. `redis://127.0.0.1:6399/`).
pub fn connect(url: &str) -> RedisResult<Connection> {
    redis::Client::open(url)?.get_connection()
}

/// Empties the database (between runs, off the clock).
pub fn flush(con: &mut Connection) -> RedisResult<()> {
    redis::cmd("FLUSHDB").query(con)
}

/// `used_memory` of the server, in bytes.
pub fn used_memory(con: &mut Connection) -> RedisResult<u64> {
    let info: String = redis::cmd("INFO").arg("memory").query(con)?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

/// Appends the commands of one join (`join`) or leave of connection `i` to `pipe`.
fn push_event(
    pipe: &mut redis::Pipeline,
    p: Pattern,
    keys: &Keys,
    w: &Workload,
    i: usize,
    join: bool,
) {
    let t = w.topic(i);
    match p {
        Pattern::Hincrby => {
            pipe.cmd("HINCRBY")
                .arg(&keys.counters)
                .arg(&keys.fields[t])
                .arg(if join { 1 } else { -1 });
        }
        Pattern::Sets => {
            pipe.cmd(if join { "SADD" } else { "SREM" })
                .arg(&keys.sets[t])
                .arg(i as u64)
                .ignore();
            pipe.cmd("SCARD").arg(&keys.sets[t]);
        }
    }
}

/// Applies one join or leave per connection of `conns`, `batch` events per round trip
/// (1: each event waits for its reply, as a server handling that event does).
pub fn apply(
    con: &mut Connection,
    p: Pattern,
    keys: &Keys,
    w: &Workload,
    conns: &[u32],
    join: bool,
    batch: usize,
) -> RedisResult<()> {
    let mut pipe = redis::pipe();
    for chunk in conns.chunks(batch.max(1)) {
        pipe.clear();
        for &i in chunk {
            push_event(&mut pipe, p, keys, w, i as usize, join);
        }
        // The replies are the new counts a server would broadcast; parse them as such.
        let counts: Vec<i64> = pipe.query(con)?;
        debug_assert_eq!(counts.len(), chunk.len());
    }
    Ok(())
}

/// The connection count of each used topic, as the pattern stores it.
pub fn connections(con: &mut Connection, p: Pattern, keys: &Keys) -> RedisResult<Vec<u64>> {
    let mut out = Vec::with_capacity(keys.fields.len());
    for t in 0..keys.fields.len() {
        let n: Option<i64> = match p {
            Pattern::Hincrby => redis::cmd("HGET")
                .arg(&keys.counters)
                .arg(&keys.fields[t])
                .query(con)?,
            Pattern::Sets => Some(redis::cmd("SCARD").arg(&keys.sets[t]).query(con)?),
        };
        out.push(n.unwrap_or(0).max(0) as u64);
    }
    Ok(out)
}
