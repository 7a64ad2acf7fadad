//! The exported functions. Their doc comments are copied into `include/presence.h`,
//! which is the manual for C, C++ and FFI users.
//!
//! Every function has the same safety contract, stated once in the header's preamble
//! rather than in a `# Safety` section each: pointer arguments are NULL or valid for the
//! access the doc describes, strings are NUL-terminated, and an engine handle is live.
#![allow(clippy::missing_safety_doc)]

use super::guard::{
    engine, guard, guard_value, null, optional_text, set_last_error, text, with_last_error,
    write_optional, Failure,
};
use super::types::*;
use presence_core::{Config, Counts, Engine, Envelope, ReadyBatch};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::OnceLock;

/// Creates an engine.
///
/// `config_json` is a JSON object of settings, or NULL (same as `{}`) for the defaults.
/// The fields are those of `presence_config_defaults`, which gives each one's default
/// (the README's configuration table describes them): `format` (`"counts"` or
/// `"phoenix"`), `viewers_key`, `shards`, `max_topic_bytes`, `max_key_bytes`,
/// `max_meta_bytes`, `max_topics`, `max_presences` and `cluster`. An unknown field is an
/// error.
///
/// On success `*out` receives the engine, which the caller owns and must release with
/// `presence_engine_free`. `out` must not be NULL.
#[no_mangle]
pub unsafe extern "C" fn presence_engine_new(
    config_json: *const c_char,
    out: *mut *mut presence_engine,
) -> presence_status {
    guard(|| {
        if out.is_null() {
            return Err(null("out"));
        }
        // SAFETY: caller passes NULL or a NUL-terminated string.
        let config = match unsafe { optional_text(config_json, "config_json") }? {
            Some(json) => Config::from_json(json)?,
            None => Config::default(),
        };
        let engine = Box::new(Engine::new(config)?);
        // SAFETY: `out` is non-NULL and points to writable storage by contract.
        unsafe { *out = Box::into_raw(engine).cast() };
        Ok(())
    })
}

/// Writes into `*out` every configuration field with its default, as the JSON object
/// `presence_engine_new` accepts, for bindings and tools that must not repeat the
/// defaults. `cluster` holds the defaults of the cluster fields, although an engine is a
/// single node unless its config has a `cluster` object; `node` and `secret` have no
/// default there, and the empty strings shown for them are refused. The caller owns
/// `*out` and must release it with `presence_buf_free`. `out` must not be NULL.
#[no_mangle]
pub unsafe extern "C" fn presence_config_defaults(out: *mut presence_buf) -> presence_status {
    guard(|| {
        if out.is_null() {
            return Err(null("out"));
        }
        // SAFETY: non-NULL and writable by contract.
        unsafe { *out = presence_buf::from_string(Config::defaults_json()) };
        Ok(())
    })
}

/// Destroys an engine and everything it holds, and closes its wake-up descriptor.
///
/// Calling with NULL does nothing. Must not be called twice for the same engine, nor
/// while another thread is using it. Buffers returned earlier stay valid.
#[no_mangle]
pub unsafe extern "C" fn presence_engine_free(engine: *mut presence_engine) {
    guard_value((), || {
        if !engine.is_null() {
            // SAFETY: a non-NULL handle came from `presence_engine_new` (Box::into_raw).
            drop(unsafe { Box::from_raw(engine.cast::<Engine>()) });
        }
    })
}

/// Tracks connection `conn` in `topic`.
///
/// `key` is the user id (NUL-terminated UTF-8), or NULL for an anonymous viewer. `meta` is
/// a JSON object text, or NULL for `{}`; counts format checks it and keeps nothing of it.
/// `topic` and `key` must not be empty. Tracking a (topic, conn) pair that is tracked
/// already fails with `PRESENCE_STATUS_ALREADY_TRACKED`. The strings are copied: the
/// caller may free them when the call returns.
#[no_mangle]
pub unsafe extern "C" fn presence_track(
    engine: *const presence_engine,
    topic: *const c_char,
    conn: u64,
    key: *const c_char,
    meta: *const c_char,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let a = unsafe { TrackArgs::check(engine, topic, key, meta) }?;
        Ok(a.engine.track(a.topic, conn, a.key, a.meta)?)
    })
}

/// The checked arguments of a track, shared by `presence_track` and `presence_track_ttl`
/// so that both fail alike.
pub(crate) struct TrackArgs<'a> {
    pub engine: &'a Engine,
    pub topic: &'a str,
    pub key: Option<&'a str>,
    pub meta: Option<&'a str>,
}

impl<'a> TrackArgs<'a> {
    /// Checks the engine, the topic, then the optional key and meta.
    ///
    /// # Safety
    /// `engine` is NULL or a live handle; the strings are NULL or NUL-terminated, and
    /// outlive `'a`.
    pub unsafe fn check(
        engine: *const presence_engine,
        topic: *const c_char,
        key: *const c_char,
        meta: *const c_char,
    ) -> Result<TrackArgs<'a>, Failure> {
        // SAFETY (all four): forwarded from the caller.
        Ok(TrackArgs {
            engine: unsafe { self::engine(engine) }?,
            topic: unsafe { text(topic, "topic") }?,
            key: unsafe { optional_text(key, "key") }?,
            meta: unsafe { optional_text(meta, "meta") }?,
        })
    }
}

/// Stops tracking connection `conn` in `topic`. Fails with `PRESENCE_STATUS_NOT_TRACKED`
/// if the pair is not tracked.
///
/// With a leave grace (config `leave_grace_ms`) the presence is held, not removed: it
/// keeps counting (in counts, lists and for other nodes) until a `presence_track` of the
/// same key in `topic` takes it over (a NULL key takes over an anonymous viewer), which
/// makes no diff, or until the window ends, when the next poll publishes the leave (the
/// wake-up descriptor turns readable then). `conn` itself is free at once.
#[no_mangle]
pub unsafe extern "C" fn presence_untrack(
    engine: *const presence_engine,
    topic: *const c_char,
    conn: u64,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        let topic = unsafe { text(topic, "topic") }?;
        Ok(e.untrack(topic, conn)?)
    })
}

/// Stops tracking connection `conn` in every topic: call it when the connection closes.
///
/// An unknown connection is not an error (it removes nothing). If `removed` is not NULL,
/// `*removed` receives the number of presences removed. With a leave grace each is held,
/// as `presence_untrack` holds one.
#[no_mangle]
pub unsafe extern "C" fn presence_untrack_conn(
    engine: *const presence_engine,
    conn: u64,
    removed: *mut usize,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        let n = e.untrack_conn(conn);
        // SAFETY: NULL or writable by the caller's contract.
        unsafe { write_optional(removed, n) };
        Ok(())
    })
}

/// Replaces the meta of a tracked presence (a JSON object text, or NULL for `{}`).
///
/// In phoenix format the next diff shows the old meta leaving and the new one joining
/// with `phx_ref_prev`, as Phoenix does. Counts format keeps no meta: the call only
/// checks its arguments. Fails with `PRESENCE_STATUS_NOT_TRACKED` for an unknown pair.
#[no_mangle]
pub unsafe extern "C" fn presence_update(
    engine: *const presence_engine,
    topic: *const c_char,
    conn: u64,
    meta: *const c_char,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        let topic = unsafe { text(topic, "topic") }?;
        let meta = unsafe { optional_text(meta, "meta") }?;
        Ok(e.update(topic, conn, meta)?)
    })
}

/// Reads the live counts of `topic` into `*out`, in constant time. An unknown topic has
/// zero counts. `out` must not be NULL.
#[no_mangle]
pub unsafe extern "C" fn presence_get_counts(
    engine: *const presence_engine,
    topic: *const c_char,
    out: *mut presence_counts,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        let topic = unsafe { text(topic, "topic") }?;
        if out.is_null() {
            return Err(null("out"));
        }
        let c = e.counts(topic)?;
        // SAFETY: non-NULL and writable by contract.
        unsafe { *out = c.into() };
        Ok(())
    })
}

/// Reads the live counts of `n` topics at once: `out[i]` receives those of `topics[i]`, as
/// `presence_get_counts` gives them (an unknown topic has zero counts; in cluster mode,
/// every live node's presences). It costs time in proportion to `n` whatever the engine
/// holds: one call serves an HTTP endpoint that lists many channels' counts. Each topic is
/// read under its own lock, so the counts are not taken at one instant.
///
/// `topics` points to `n` NUL-terminated UTF-8 strings, borrowed for the call; `out` to
/// room for `n` `presence_counts`. Both may be NULL only when `n` is 0. Every name is
/// checked before any is read: a NULL element (`PRESENCE_STATUS_NULL_ARGUMENT`), invalid
/// UTF-8, or a topic that `presence_get_counts` refuses fails the whole call, with
/// nothing written to `out`, and the last error message names the first bad one as
/// `topics[i]`.
#[no_mangle]
pub unsafe extern "C" fn presence_counts_many(
    engine: *const presence_engine,
    topics: *const *const c_char,
    n: usize,
    out: *mut presence_counts,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        if n == 0 {
            return Ok(());
        }
        if topics.is_null() {
            return Err(null("topics"));
        }
        if out.is_null() {
            return Err(null("out"));
        }
        // SAFETY: `topics` points to `n` readable pointers by contract.
        let ptrs = unsafe { std::slice::from_raw_parts(topics, n) };
        let mut names = Vec::with_capacity(n);
        for (i, &p) in ptrs.iter().enumerate() {
            // SAFETY: each element is NULL or a NUL-terminated string by contract.
            match unsafe { text(p, "topic") } {
                Ok(name) => names.push(name),
                Err(f) => {
                    // The error is the first bad name's: one before it that the core
                    // refuses comes first.
                    e.counts_many(&names)?;
                    return Err(Failure::new(
                        f.status,
                        format!("topics[{i}]: {}", f.message),
                    ));
                }
            }
        }
        let counts = e.counts_many(&names)?;
        // SAFETY: `out` has room for `n` entries by contract, and `counts` has `n`.
        let out = unsafe { std::slice::from_raw_parts_mut(out, n) };
        for (slot, c) in out.iter_mut().zip(counts) {
            *slot = c.into();
        }
        Ok(())
    })
}

/// Renders the `presence_state` payload of `topic` into `*out`: the state as of the last
/// poll, which is what a client joining now must start from so that the diffs of the
/// following polls apply exactly. An unknown topic gives the empty state.
///
/// The caller owns `*out` and must release it with `presence_buf_free`. If `seq` is not
/// NULL, `*seq` receives the seq of the last diff included (0 before the first); the next
/// diff of this topic will have `*seq + 1`.
#[no_mangle]
pub unsafe extern "C" fn presence_list(
    engine: *const presence_engine,
    topic: *const c_char,
    out: *mut presence_buf,
    seq: *mut u64,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        let topic = unsafe { text(topic, "topic") }?;
        if out.is_null() {
            return Err(null("out"));
        }
        let state = e.list(topic)?;
        // SAFETY: `out` is non-NULL and writable, `seq` NULL or writable, by contract.
        unsafe {
            *out = presence_buf::from_string(state.json);
            write_optional(seq, state.seq);
        }
        Ok(())
    })
}

/// Takes every change since the last poll as one JSON array in `*out`, `[]` when idle:
///
/// `[{"topic":"video:42","seq":7,"counts":{"viewers":2,"users":3,"connections":5},"payload":{"joins":...,"leaves":...}}, ...]`
///
/// Each topic appears at most once however many changes it had; a topic whose changes
/// cancelled out does not appear. `payload` is the `presence_diff` to send to the topic's
/// clients. A topic that had no presence at the last poll and has some now (counting
/// every node's, as `presence_get_counts` does) has `"occupancy":"occupied"` after its
/// counts, one that had some and has none `"occupancy":"vacated"`; other topics have no
/// `occupancy` key (see `presence_occupancy`). The caller owns `*out` and must release it with `presence_buf_free`.
/// Concurrent polls split the changes between them; none is returned twice.
#[no_mangle]
pub unsafe extern "C" fn presence_poll_diff(
    engine: *const presence_engine,
    out: *mut presence_buf,
) -> presence_status {
    // SAFETY: forwarded from the caller.
    unsafe { string_out(engine, out, |e| e.poll_diff().into_json()) }
}

/// The body of the calls that hand out one text of the engine's in a `presence_buf`:
/// checks `engine` and `out`, then moves what `make` returns into `*out`.
///
/// # Safety
/// `engine` is NULL or a live handle; `out` is NULL or writable.
unsafe fn string_out(
    engine: *const presence_engine,
    out: *mut presence_buf,
    make: impl FnOnce(&Engine) -> String,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        if out.is_null() {
            return Err(null("out"));
        }
        let text = make(e);
        // SAFETY: non-NULL and writable by contract.
        unsafe { *out = presence_buf::from_string(text) };
        Ok(())
    })
}

/// Takes every change since the last poll, like `presence_poll_diff`, and calls
/// `callback(userdata, diff)` once per changed topic, in order, before returning. This
/// saves a C host from parsing JSON: `diff->payload` is ready to send as it is.
/// `callback` must not be NULL; `userdata` is passed through untouched.
#[no_mangle]
pub unsafe extern "C" fn presence_poll_diff_each(
    engine: *const presence_engine,
    callback: presence_diff_cb,
    userdata: *mut c_void,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        let Some(callback) = callback else {
            return Err(null("callback"));
        };
        // The batch is complete and every lock released before the first callback runs.
        let batch = e.poll_diff();
        for d in batch.iter() {
            let diff = presence_topic_diff {
                topic: presence_str::from(d.topic),
                seq: d.seq,
                counts: d.counts.into(),
                payload: presence_str::from(d.payload),
                occupancy: presence_occupancy::from(d.occupancy) as u64,
            };
            // SAFETY: the callback's contract is the caller's; `diff` lives across the call.
            unsafe { callback(userdata, &diff) };
        }
        Ok(())
    })
}

/// Releases a buffer returned by this library and sets it to `{NULL, 0}`.
///
/// Calling with NULL, or with a buffer that is already `{NULL, 0}`, does nothing.
#[no_mangle]
pub unsafe extern "C" fn presence_buf_free(buf: *mut presence_buf) {
    guard_value((), || {
        // SAFETY: NULL or a valid presence_buf by contract.
        if let Some(buf) = unsafe { buf.as_mut() } {
            if !buf.data.is_null() {
                // SAFETY: `data`/`len` came from `from_string`: a boxed slice of len + 1 bytes.
                drop(unsafe {
                    Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                        buf.data.cast_mut(),
                        buf.len + 1,
                    ))
                });
            }
            buf.data = std::ptr::null();
            buf.len = 0;
        }
    })
}

/// Returns a descriptor that becomes readable when a poll may return something, for
/// epoll, poll(2), libuv or asyncio. The engine owns it: wait on it, never read, write
/// or close it. Wake-ups can be spurious (a poll may then return `[]`); the descriptor
/// stays readable until the next poll. With a leave grace it also turns readable when a
/// held leave falls due (on Linux; it is then an epoll descriptor). Returns -1 if
/// `engine` is NULL.
#[no_mangle]
pub unsafe extern "C" fn presence_wakeup_fd(engine: *const presence_engine) -> c_int {
    guard_value(-1, || {
        // SAFETY: NULL or a live handle by contract.
        match unsafe { self::engine(engine) } {
            Ok(e) => e.wakeup_fd(),
            Err(f) => {
                set_last_error(&f.message);
                -1
            }
        }
    })
}

/// Writes into `*out` how many topics changed since the last poll, in constant time: a
/// cheap "anything to poll?" for hosts that cannot wait on the wake-up descriptor. A
/// non-zero count does not promise a non-empty poll (changes may cancel out). With a leave
/// grace, a held leave that is due adds 1. `out` must not be NULL.
#[no_mangle]
pub unsafe extern "C" fn presence_pending_topics(
    engine: *const presence_engine,
    out: *mut u64,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        if out.is_null() {
            return Err(null("out"));
        }
        // SAFETY: non-NULL and writable by contract.
        unsafe { *out = e.pending_topics() };
        Ok(())
    })
}

/// Reads engine-wide figures into `*out`. Computing `bytes` visits every topic, so this
/// costs time in proportion to the number of topics: call it for monitoring, not per
/// event. `out` must not be NULL.
#[no_mangle]
pub unsafe extern "C" fn presence_get_stats(
    engine: *const presence_engine,
    out: *mut presence_stats,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        if out.is_null() {
            return Err(null("out"));
        }
        let s = e.stats();
        // SAFETY: non-NULL and writable by contract.
        unsafe {
            *out = presence_stats {
                topics: s.topics,
                presences: s.presences,
                bytes: s.bytes,
                topics_pending: s.topics_pending,
                polls: s.polls,
                expired: s.expired,
            }
        };
        Ok(())
    })
}

/// Renders the engine's figures into `*out` in the Prometheus text exposition format
/// (version 0.0.4: `# HELP` and `# TYPE` lines, then the samples), ready to serve as the
/// body of a `/metrics` response (`Content-Type: text/plain; version=0.0.4`). The names
/// start with `presence_`: the figures of `presence_get_stats` (`presence_topics`,
/// `presence_presences`, `presence_heap_bytes`, `presence_topics_pending`,
/// `presence_polls_total`, `presence_expired_total`), `presence_info` (the version and
/// format as labels) and, in cluster mode, those of `presence_cluster_get_stats`
/// (`presence_cluster_...`; refused messages as one counter with a `cause` label). The
/// README lists every metric.
///
/// Like `presence_get_stats` it visits every topic: call it when scraped, not per event.
/// The caller owns `*out` and must release it with `presence_buf_free`. `out` must not
/// be NULL.
#[no_mangle]
pub unsafe extern "C" fn presence_metrics(
    engine: *const presence_engine,
    out: *mut presence_buf,
) -> presence_status {
    // SAFETY: forwarded from the caller.
    unsafe { string_out(engine, out, Engine::metrics) }
}

/// Cluster mode: hands `callback` every message this node must publish now, in order,
/// then returns. Call it every `tick_ms` (see the `cluster` config) unless the built-in
/// Redis link runs. Besides this node's changes (or a heartbeat), a tick sends snapshots
/// when due or asked for, asks for snapshots after a gap, and drops nodes silent for
/// `down_after_ms` (their presences leave through `presence_poll_diff`). Publish every
/// message to every node: a snapshot one node asked for names it inside and the others
/// ignore it. A tick that comes much later than the one before (this process was paused,
/// or the host stopped ticking while its bus was down) does not count the gap as the
/// peers' silence.
/// Fails with `PRESENCE_STATUS_NO_CLUSTER` on a single-node engine.
#[no_mangle]
pub unsafe extern "C" fn presence_cluster_tick(
    engine: *const presence_engine,
    callback: presence_message_cb,
    userdata: *mut c_void,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        let Some(callback) = callback else {
            return Err(null("callback"));
        };
        for msg in e.cluster_tick()? {
            // SAFETY: the callback's contract is the caller's; `msg` outlives the call.
            unsafe { callback(userdata, msg.as_ptr(), msg.len()) };
        }
        Ok(())
    })
}

/// Cluster mode: applies a message another node published (`len` bytes at `data`).
///
/// A message that fails authentication, is malformed, larger than `max_message_bytes`,
/// or replayed is refused with `PRESENCE_STATUS_REJECTED`, changes nothing and is
/// counted in `presence_cluster_stats`. This node's own messages (pub/sub echoes) are
/// ignored with `PRESENCE_STATUS_OK`. `data` may be NULL only when `len` is 0.
#[no_mangle]
pub unsafe extern "C" fn presence_cluster_ingest(
    engine: *const presence_engine,
    data: *const u8,
    len: usize,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        let bytes: &[u8] = if len == 0 {
            &[]
        } else if data.is_null() {
            return Err(null("data"));
        } else {
            // SAFETY: `data` points to `len` readable bytes by contract.
            unsafe { std::slice::from_raw_parts(data, len) }
        };
        Ok(e.cluster_ingest(bytes)?)
    })
}

/// Cluster mode: hands `callback` the message that tells the other nodes this one is
/// leaving, so they drop its presences at once instead of after `down_after_ms`. Publish
/// it before shutting down; later ticks publish nothing.
#[no_mangle]
pub unsafe extern "C" fn presence_cluster_leave(
    engine: *const presence_engine,
    callback: presence_message_cb,
    userdata: *mut c_void,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        let Some(callback) = callback else {
            return Err(null("callback"));
        };
        let msg = e.cluster_leave()?;
        // SAFETY: as in `presence_cluster_tick`.
        unsafe { callback(userdata, msg.as_ptr(), msg.len()) };
        Ok(())
    })
}

/// Cluster mode: after the host's own bus reconnects (messages may have been lost both
/// ways), hands `callback` one message to publish that asks every node for a snapshot;
/// this node's next tick sends its own (each node answers with a snapshot sent to this
/// node alone). The Redis link needs none: it publishes nothing while Redis is away, and
/// losses show as sequence gaps.
#[no_mangle]
pub unsafe extern "C" fn presence_cluster_resync(
    engine: *const presence_engine,
    callback: presence_message_cb,
    userdata: *mut c_void,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        let Some(callback) = callback else {
            return Err(null("callback"));
        };
        let msg = e.cluster_resync()?;
        // SAFETY: as in `presence_cluster_tick`.
        unsafe { callback(userdata, msg.as_ptr(), msg.len()) };
        Ok(())
    })
}

/// Cluster mode: reads the replication counters into `*out`. `out` must not be NULL.
#[no_mangle]
pub unsafe extern "C" fn presence_cluster_get_stats(
    engine: *const presence_engine,
    out: *mut presence_cluster_stats,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        if out.is_null() {
            return Err(null("out"));
        }
        let s = e.cluster_stats().ok_or_else(|| {
            Failure::new(
                presence_status::NoCluster,
                "the engine was created without a cluster config",
            )
        })?;
        // SAFETY: non-NULL and writable by contract.
        unsafe {
            *out = presence_cluster_stats {
                incarnation: s.incarnation,
                nodes: s.nodes,
                messages_sent: s.messages_sent,
                bytes_sent: s.bytes_sent,
                messages_received: s.messages_received,
                bytes_received: s.bytes_received,
                rejected_unauthenticated: s.rejected_unauthenticated,
                rejected_malformed: s.rejected_malformed,
                rejected_oversized: s.rejected_oversized,
                rejected_replayed: s.rejected_replayed,
                snapshots_sent: s.snapshots_sent,
                snapshot_requests_sent: s.snapshot_requests_sent,
                nodes_dropped: s.nodes_dropped,
                stale_nodes: s.stale_nodes,
                link_up: u64::from(s.link_up),
            }
        };
        Ok(())
    })
}

/// Cluster mode: starts the built-in link, a background thread that publishes this
/// node's messages on the Redis pub/sub `channel` at `url` (e.g.
/// `"redis://127.0.0.1:6379/"`, `"rediss://user:password@host:6380/?ca_file=/ca.pem"`)
/// every tick and ingests the other nodes' messages (and, on `<channel>:<node>`, the
/// snapshots sent to this node alone). Every Redis call has a timeout; while Redis is
/// away or stops answering, the other nodes' presences are kept (see `stale_nodes`) for
/// `stale_after_ms`, and the link reconnects within about half a second of Redis
/// returning; an unreachable Redis at start is not an error. A link already running is replaced: it
/// announces this node's departure, and the node rejoins as a new incarnation with a full
/// snapshot (so does a start after `presence_redis_stop` or `presence_cluster_leave`).
/// `presence_engine_free` stops the link after publishing this node's departure.
#[no_mangle]
pub unsafe extern "C" fn presence_redis_start(
    engine: *const presence_engine,
    url: *const c_char,
    channel: *const c_char,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        let url = unsafe { text(url, "url") }?;
        let channel = unsafe { text(channel, "channel") }?;
        Ok(e.start_redis(url, channel)?)
    })
}

/// Stops the Redis link after publishing this node's departure; blocks until its thread
/// ends, about one tick (at most one second) and never more than about one second
/// whatever Redis does. Succeeds also when no link runs.
#[no_mangle]
pub unsafe extern "C" fn presence_redis_stop(engine: *const presence_engine) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        e.stop_redis();
        Ok(())
    })
}

/// Copies the message of the last failed call on this thread into `buf`, NUL-terminated
/// and truncated to `cap - 1` bytes, and returns the message's full length (excluding
/// the NUL), like snprintf. With `buf` NULL or `cap` 0 nothing is written: call it that
/// way to learn the size. Returns 0 when no call has failed on this thread yet.
#[no_mangle]
pub unsafe extern "C" fn presence_last_error_message(buf: *mut c_char, cap: usize) -> usize {
    guard_value(0, || {
        with_last_error(|message| {
            if !buf.is_null() && cap > 0 {
                let n = message.len().min(cap - 1);
                // SAFETY: `buf` has room for `cap` bytes by contract, and n < cap.
                unsafe {
                    std::ptr::copy_nonoverlapping(message.as_ptr(), buf.cast::<u8>(), n);
                    *buf.add(n) = 0;
                }
            }
            message.len()
        })
    })
}

/// Returns the name of a status value, such as `"PRESENCE_STATUS_NOT_TRACKED"`, as a
/// static string the caller must not free. An unknown value gives `"PRESENCE_STATUS_UNKNOWN"`.
#[no_mangle]
pub extern "C" fn presence_status_name(status: u32) -> *const c_char {
    // Built once from the enum, so a new status is named without another list; the
    // strings live for the whole process.
    static NAMES: OnceLock<Vec<(u32, CString)>> = OnceLock::new();
    static UNKNOWN: &CStr = c"PRESENCE_STATUS_UNKNOWN";
    guard_value(UNKNOWN.as_ptr(), || {
        let names = NAMES.get_or_init(|| {
            presence_status::ALL
                .iter()
                .map(|s| {
                    let name = format!("PRESENCE_STATUS_{}", s.name());
                    (
                        *s as u32,
                        CString::new(name).expect("no NUL in a status name"),
                    )
                })
                .collect()
        });
        names
            .iter()
            .find(|(value, _)| *value == status)
            .map_or(UNKNOWN.as_ptr(), |(_, name)| name.as_ptr())
    })
}

/// Returns the library version (for example `"0.1.0"`) as a static string the caller must
/// not free. Compare it with `PRESENCE_VERSION` to detect a header/library mismatch.
#[no_mangle]
pub extern "C" fn presence_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

impl presence_buf {
    fn from_string(s: String) -> presence_buf {
        let mut bytes = s.into_bytes();
        bytes.push(0);
        let len = bytes.len() - 1;
        let data = Box::into_raw(bytes.into_boxed_slice()).cast::<u8>();
        presence_buf { data, len }
    }
}

impl From<&str> for presence_str {
    fn from(s: &str) -> presence_str {
        presence_str {
            data: s.as_ptr().cast(),
            len: s.len(),
        }
    }
}

impl From<Counts> for presence_counts {
    fn from(c: Counts) -> presence_counts {
        presence_counts {
            viewers: c.viewers,
            users: c.users,
            connections: c.connections,
        }
    }
}

/// The envelope named by a C caller: `kind` is a `presence_envelope` value, `join_ref` an
/// optional string that only the Phoenix envelope has a place for.
///
/// # Safety
/// `join_ref` is NULL or a NUL-terminated string.
unsafe fn envelope_arg(kind: u32, join_ref: *const c_char) -> Result<Option<Envelope>, Failure> {
    // SAFETY: forwarded from the caller.
    let join_ref = unsafe { optional_text(join_ref, "join_ref") }?;
    let invalid = |message: String| Failure::new(presence_status::InvalidArgument, message);
    match (kind, join_ref) {
        (2, r) => Ok(Some(Envelope::PhoenixV2 {
            join_ref: r.map(str::to_owned),
        })),
        (0 | 1, Some(_)) => Err(invalid(
            "join_ref is only for PRESENCE_ENVELOPE_PHOENIX_V2".into(),
        )),
        (0, None) => Ok(None),
        (1, None) => Ok(Some(Envelope::Event)),
        (other, _) => Err(invalid(format!(
            "envelope must be a presence_envelope value (0, 1 or 2), got {other}"
        ))),
    }
}

/// Walks a text forward, counting the UTF-16 code units before each byte position asked
/// for (positions must not decrease). In an ASCII text, which is checked once, units and
/// bytes are the same.
struct Utf16Cursor<'a> {
    text: &'a str,
    ascii: bool,
    byte: usize,
    units: u64,
}

impl<'a> Utf16Cursor<'a> {
    fn new(text: &'a str) -> Utf16Cursor<'a> {
        Utf16Cursor {
            text,
            ascii: text.is_ascii(),
            byte: 0,
            units: 0,
        }
    }

    fn at(&mut self, byte: usize) -> u64 {
        if self.ascii {
            return byte as u64;
        }
        let seg = &self.text[self.byte..byte];
        self.units += if seg.is_ascii() {
            seg.len() as u64
        } else {
            seg.encode_utf16().count() as u64
        };
        self.byte = byte;
        self.units
    }

    /// The span of `r` in bytes and in UTF-16 code units.
    fn span(&mut self, r: &std::ops::Range<usize>) -> (presence_span, presence_span) {
        let (start, end) = (self.at(r.start), self.at(r.end));
        (
            presence_span {
                offset: r.start as u64,
                len: (r.end - r.start) as u64,
            },
            presence_span {
                offset: start,
                len: end - start,
            },
        )
    }
}

/// Replaces the records in `out` with those of `ready`'s topics, in poll order, reusing
/// the memory of `out`.
fn ready_records(ready: &ReadyBatch, out: &mut Vec<presence_ready_diff>) {
    out.clear();
    out.reserve(ready.len());
    let mut cursor = Utf16Cursor::new(ready.text());
    out.extend(ready.spans().iter().map(|s| {
        // In the text a topic's name comes first, then its message around its payload:
        // the cursor is asked for their bounds in that order.
        let (topic, topic_utf16) = cursor.span(&s.topic);
        let message_start = s.message.as_ref().map(|m| cursor.at(m.start));
        let (payload, payload_utf16) = cursor.span(&s.payload);
        let (message, message_utf16) = match (&s.message, message_start) {
            (Some(m), Some(start)) => {
                let end = cursor.at(m.end);
                (
                    presence_span {
                        offset: m.start as u64,
                        len: (m.end - m.start) as u64,
                    },
                    presence_span {
                        offset: start,
                        len: end - start,
                    },
                )
            }
            _ => Default::default(),
        };
        presence_ready_diff {
            seq: s.seq,
            counts: s.counts.into(),
            topic,
            payload,
            message,
            topic_utf16,
            payload_utf16,
            message_utf16,
            occupancy: presence_occupancy::from(s.occupancy) as u64,
        }
    }));
}

/// Takes every change since the last poll, like `presence_poll_diff`, with each changed
/// topic's whole message already rendered in `envelope` (a `presence_envelope` value;
/// event `"presence_diff"`), ready to write to the topic's sockets as it is.
///
/// `join_ref` is NULL, or with `PRESENCE_ENVELOPE_PHOENIX_V2` only, the join_ref to put in
/// every frame (Phoenix broadcasts diffs with a null join_ref: pass NULL unless the
/// frames go to one channel). With `PRESENCE_ENVELOPE_NONE` the batch holds the topics
/// and payloads only.
///
/// On success `*out` holds one `presence_ready_diff` per changed topic (none when idle),
/// whose spans point into `out->text`; the caller owns it and releases it with
/// `presence_ready_free`. A bad `envelope` or `join_ref` fails with
/// `PRESENCE_STATUS_INVALID_ARGUMENT` before anything is polled. Concurrent polls split
/// the changes between them, as with `presence_poll_diff`. A host that polls often
/// allocates less with `presence_poll_ready_into`, which reuses one batch's memory.
#[no_mangle]
pub unsafe extern "C" fn presence_poll_ready(
    engine: *const presence_engine,
    envelope: u32,
    join_ref: *const c_char,
    out: *mut presence_ready,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        let envelope = unsafe { envelope_arg(envelope, join_ref) }?;
        if out.is_null() {
            return Err(null("out"));
        }
        let mut ready = ReadyBatch::default();
        e.poll_ready(envelope.as_ref(), &mut ready);
        let mut records = Vec::new();
        ready_records(&ready, &mut records);
        let count = records.len();
        let diffs = if count == 0 {
            std::ptr::null()
        } else {
            Box::into_raw(records.into_boxed_slice())
                .cast::<presence_ready_diff>()
                .cast_const()
        };
        let (text, _) = ready.into_parts();
        // SAFETY: non-NULL and writable by contract.
        unsafe {
            *out = presence_ready {
                text: presence_buf::from_string(text),
                diffs,
                count,
            }
        };
        Ok(())
    })
}

/// What a `presence_ready_batch` handle points to: the last poll rendered into it, and its
/// records.
struct ReadyRecords {
    ready: ReadyBatch,
    diffs: Vec<presence_ready_diff>,
}

/// Creates an empty `presence_ready_batch` for `presence_poll_ready_into`. On success
/// `*out` receives it; the caller owns it and releases it with `presence_ready_batch_free`.
/// `out` must not be NULL.
#[no_mangle]
pub unsafe extern "C" fn presence_ready_batch_new(
    out: *mut *mut presence_ready_batch,
) -> presence_status {
    guard(|| {
        if out.is_null() {
            return Err(null("out"));
        }
        let batch = Box::new(ReadyRecords {
            ready: ReadyBatch::default(),
            diffs: Vec::new(),
        });
        // SAFETY: non-NULL and writable by contract.
        unsafe { *out = Box::into_raw(batch).cast() };
        Ok(())
    })
}

/// Destroys a `presence_ready_batch` and what it holds: the views of it that
/// `presence_poll_ready_into` gave end with it. Calling with NULL does nothing.
#[no_mangle]
pub unsafe extern "C" fn presence_ready_batch_free(batch: *mut presence_ready_batch) {
    guard_value((), || {
        if !batch.is_null() {
            // SAFETY: a non-NULL handle came from `presence_ready_batch_new` (Box::into_raw).
            drop(unsafe { Box::from_raw(batch.cast::<ReadyRecords>()) });
        }
    })
}

/// Takes every change since the last poll, as `presence_poll_ready` does, into `batch`
/// (from `presence_ready_batch_new`), which keeps its memory from one poll to the next:
/// once it is as large as the polls, a poll allocates nothing. The messages are rendered
/// as the poll takes each topic.
///
/// On success `*out` views the batch: `out->text` (not NUL-terminated) holds every
/// topic's name and message, and `out->diffs` one `presence_ready_diff` per changed topic
/// (NULL when idle), whose spans point into `out->text`. The view stays valid until the
/// next `presence_poll_ready_into` with the same batch or `presence_ready_batch_free`; it
/// is not released by itself (never pass it to `presence_ready_free`). A batch must not be
/// used by two calls at once; each thread that polls can have its own. `envelope` and
/// `join_ref` are those of `presence_poll_ready`; a bad one fails with
/// `PRESENCE_STATUS_INVALID_ARGUMENT` before anything is polled, leaving the batch as it
/// was. `batch` and `out` must not be NULL.
#[no_mangle]
pub unsafe extern "C" fn presence_poll_ready_into(
    engine: *const presence_engine,
    envelope: u32,
    join_ref: *const c_char,
    batch: *mut presence_ready_batch,
    out: *mut presence_ready_view,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        let envelope = unsafe { envelope_arg(envelope, join_ref) }?;
        // SAFETY: NULL or a live handle from `presence_ready_batch_new`, used by this call only.
        let Some(b) = (unsafe { batch.cast::<ReadyRecords>().as_mut() }) else {
            return Err(null("batch"));
        };
        if out.is_null() {
            return Err(null("out"));
        }
        e.poll_ready(envelope.as_ref(), &mut b.ready);
        ready_records(&b.ready, &mut b.diffs);
        let diffs = if b.diffs.is_empty() {
            std::ptr::null()
        } else {
            b.diffs.as_ptr()
        };
        // SAFETY: non-NULL and writable by contract.
        unsafe {
            *out = presence_ready_view {
                text: presence_str::from(b.ready.text()),
                diffs,
                count: b.diffs.len(),
            }
        };
        Ok(())
    })
}

/// Releases what `presence_poll_ready` put in `*ready` and sets it to `{{NULL, 0}, NULL, 0}`.
///
/// Calling with NULL, or with a `presence_ready` that is already zeroed, does nothing.
#[no_mangle]
pub unsafe extern "C" fn presence_ready_free(ready: *mut presence_ready) {
    guard_value((), || {
        // SAFETY: NULL or a valid presence_ready by contract.
        if let Some(r) = unsafe { ready.as_mut() } {
            // SAFETY: `text` came from `presence_buf::from_string`.
            unsafe { presence_buf_free(&mut r.text) };
            if !r.diffs.is_null() {
                // SAFETY: `diffs`/`count` came from a boxed slice of `count` entries.
                drop(unsafe {
                    Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                        r.diffs.cast_mut(),
                        r.count,
                    ))
                });
            }
            r.diffs = std::ptr::null();
            r.count = 0;
        }
    })
}

/// Renders into `*out` the whole message that brings a client joining `topic` now up to
/// date: its `presence_state` payload as of the last poll (see `presence_list`) in
/// `envelope` (a `presence_envelope` value; event `"presence_state"`), ready to send.
/// Send it, then the diffs of later polls.
///
/// `join_ref` is NULL, or with `PRESENCE_ENVELOPE_PHOENIX_V2` only, the joining
/// channel's join_ref, which Phoenix puts in this push (NULL sends `null`, which
/// phoenix.js accepts too). With `PRESENCE_ENVELOPE_NONE`, `*out` is the payload alone,
/// as from `presence_list`. The caller owns `*out` and must release it with
/// `presence_buf_free`. If `seq` is not NULL, `*seq` receives the seq of the last diff
/// the state includes (0 before the first); the next diff of this topic has `*seq + 1`.
#[no_mangle]
pub unsafe extern "C" fn presence_state_message(
    engine: *const presence_engine,
    topic: *const c_char,
    envelope: u32,
    join_ref: *const c_char,
    out: *mut presence_buf,
    seq: *mut u64,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        let topic = unsafe { text(topic, "topic") }?;
        let envelope = unsafe { envelope_arg(envelope, join_ref) }?;
        if out.is_null() {
            return Err(null("out"));
        }
        let state = e.list(topic)?;
        let message = match envelope {
            Some(env) => env.state_message(topic, &state),
            None => state.json,
        };
        // SAFETY: `out` is non-NULL and writable, `seq` NULL or writable, by contract.
        unsafe {
            *out = presence_buf::from_string(message);
            write_optional(seq, state.seq);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header's PRESENCE_VERSION and `presence_version` come from this crate's
    /// Cargo.toml, the metrics' `version` label and Python's from the core's: one version.
    #[test]
    fn the_library_has_the_version_of_the_core() {
        // SAFETY: a static NUL-terminated string.
        let version = unsafe { CStr::from_ptr(presence_version()) }
            .to_str()
            .unwrap();
        assert_eq!(version, presence_core::VERSION);
    }

    #[test]
    fn config_defaults_are_the_cores_and_parse_back() {
        let mut buf = presence_buf {
            data: std::ptr::null(),
            len: 0,
        };
        // SAFETY: `buf` is writable; it is freed below by the library.
        let status = unsafe { presence_config_defaults(&mut buf) };
        assert_eq!(status, presence_status::Ok);
        // SAFETY: the library wrote `len` bytes at `data`.
        let text = std::str::from_utf8(unsafe { std::slice::from_raw_parts(buf.data, buf.len) })
            .unwrap()
            .to_owned();
        unsafe { presence_buf_free(&mut buf) };
        assert_eq!(text, Config::defaults_json());
        assert!(text.contains("\"max_presences\":10000000"), "{text}");
        assert_eq!(
            unsafe { presence_config_defaults(std::ptr::null_mut()) },
            presence_status::NullArgument
        );
    }

    #[test]
    fn every_status_has_its_c_name() {
        for status in presence_status::ALL {
            // SAFETY: static NUL-terminated strings.
            let name = unsafe { CStr::from_ptr(presence_status_name(*status as u32)) };
            assert_eq!(
                name.to_str().unwrap(),
                format!("PRESENCE_STATUS_{}", status.name())
            );
        }
        let unknown = unsafe { CStr::from_ptr(presence_status_name(13)) };
        assert_eq!(unknown.to_str().unwrap(), "PRESENCE_STATUS_UNKNOWN");
        let not_tracked = unsafe { CStr::from_ptr(presence_status_name(8)) };
        assert_eq!(not_tracked.to_str().unwrap(), "PRESENCE_STATUS_NOT_TRACKED");
    }
}
