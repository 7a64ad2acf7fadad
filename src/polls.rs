//! The polls that take an engine's changes away: as one JSON array, or topic by topic to a
//! callback; the wake-up descriptor and the pending count that tell a host when to poll;
//! and `presence_buf_free`, which releases the buffers of these and of every other call.
//! The polls that render whole socket messages are in `messages.rs`.

use super::guard::{engine, guard, guard_value, null, set_last_error, string_out, Out};
use super::types::{
    presence_buf, presence_diff_cb, presence_engine, presence_occupancy, presence_status,
    presence_str, presence_topic_diff,
};
use std::ffi::{c_int, c_void};

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
        let out = unsafe { Out::new(out, "out") }?;
        out.write(e.pending_topics());
        Ok(())
    })
}
