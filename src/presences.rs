//! The calls that change what an engine tracks: track, untrack (one pair, or every topic
//! of a connection) and update. `TrackArgs`, the checks of a track, is shared with the
//! tracks with a time to live (`ttl.rs`) so that both fail alike.

use super::guard::{engine, guard, optional_text, text, write_optional, Failure};
use super::types::{presence_engine, presence_status};
use presence_core::Engine;
use std::ffi::c_char;

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
