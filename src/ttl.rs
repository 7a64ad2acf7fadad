//! The exported functions of presences with a time to live, for clients without a socket:
//! tracking with a deadline and renewing it. Apart from `presences.rs` because only such
//! clients need them, and the header lists them after the calls every host uses.

use super::guard::{engine, guard, write_optional};
use super::presences::TrackArgs;
use super::types::{presence_engine, presence_status};
use std::ffi::c_char;
use std::time::Duration;

/// Tracks connection `conn` in `topic` with a time to live of `ttl_ms` milliseconds (1 to
/// 2592000000, 30 days), for a client without a socket (HTTP polling, mobile, serverless).
///
/// `key` and `meta` are as for `presence_track`. The presence leaves by itself once
/// `ttl_ms` has passed without a `presence_touch` of its connection: the next poll shows
/// the leave like that of an untrack (in a cluster, every node sees it), and the wake-up
/// descriptor turns readable within 10 ms of the deadline, so a host waiting on it needs no
/// timer of its own. Time is the monotonic clock's. `presence_untrack` and
/// `presence_untrack_conn` remove it as any presence. A `ttl_ms` out of range fails with
/// `PRESENCE_STATUS_INVALID_ARGUMENT`; the other failures are those of `presence_track`.
#[no_mangle]
pub unsafe extern "C" fn presence_track_ttl(
    engine: *const presence_engine,
    topic: *const c_char,
    conn: u64,
    key: *const c_char,
    meta: *const c_char,
    ttl_ms: u64,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let a = unsafe { TrackArgs::check(engine, topic, key, meta) }?;
        let ttl = Duration::from_millis(ttl_ms);
        Ok(a.engine.track_ttl(a.topic, conn, a.key, a.meta, ttl)?)
    })
}

/// Renews every presence of connection `conn` tracked with a time to live, in every topic,
/// each by its own `ttl_ms` from now: call it on each request of a polling client. A
/// presence already past its deadline is not renewed but leaves now. Presences tracked
/// without a time to live are left as they are.
///
/// A connection without such presences is not an error (it renews nothing). If `renewed`
/// is not NULL, `*renewed` receives the number of presences renewed.
#[no_mangle]
pub unsafe extern "C" fn presence_touch(
    engine: *const presence_engine,
    conn: u64,
    renewed: *mut usize,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        let n = e.touch(conn);
        // SAFETY: NULL or writable by the caller's contract.
        unsafe { write_optional(renewed, n) };
        Ok(())
    })
}
