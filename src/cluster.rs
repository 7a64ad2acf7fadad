//! Cluster mode: the calls of a host that carries the replication messages on its own bus
//! (tick, ingest, leave, resync), the replication counters, and the built-in Redis link,
//! which makes those calls on its own thread. A single-node engine refuses them all but
//! `presence_redis_stop`.

use super::guard::{engine, guard, null, text, Failure, Out};
use super::types::{presence_cluster_stats, presence_engine, presence_message_cb, presence_status};
use presence_core::Engine;
use std::ffi::{c_char, c_void};

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
    // SAFETY: pointers are NULL or valid by the caller's contract.
    unsafe { publish(engine, callback, userdata, Engine::cluster_tick) }
}

/// Hands `callback` each message `make` returns, in order: the body of the calls whose
/// messages the host publishes.
unsafe fn publish(
    engine: *const presence_engine,
    callback: presence_message_cb,
    userdata: *mut c_void,
    make: impl FnOnce(&Engine) -> presence_core::Result<Vec<Vec<u8>>>,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        let Some(callback) = callback else {
            return Err(null("callback"));
        };
        for msg in make(e)? {
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
    // SAFETY: pointers are NULL or valid by the caller's contract.
    unsafe { publish(engine, callback, userdata, |e| Ok(vec![e.cluster_leave()?])) }
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
    // SAFETY: pointers are NULL or valid by the caller's contract.
    unsafe {
        publish(engine, callback, userdata, |e| {
            Ok(vec![e.cluster_resync()?])
        })
    }
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
        let out = unsafe { Out::new(out, "out") }?;
        let s = e.cluster_stats().ok_or_else(|| {
            Failure::new(
                presence_status::NoCluster,
                "the engine was created without a cluster config",
            )
        })?;
        out.write(presence_cluster_stats {
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
        });
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
