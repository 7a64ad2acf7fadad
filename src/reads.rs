//! The reads of topics as they are now: the counts of one topic or of many, and the
//! state list. Unlike the polls they take no change away, and each costs time in
//! proportion to what it reads, not to what the engine holds.

use super::guard::{engine, guard, null, text, write_optional, Failure, Out};
use super::types::{presence_buf, presence_counts, presence_engine, presence_status};
use std::ffi::c_char;

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
        let out = unsafe { Out::new(out, "out") }?;
        let c = e.counts(topic)?;
        out.write(c.into());
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
        let out = unsafe { Out::new(out, "out") }?;
        let state = e.list(topic)?;
        out.write(presence_buf::from_string(state.json));
        // SAFETY: NULL or writable by the caller's contract.
        unsafe { write_optional(seq, state.seq) };
        Ok(())
    })
}
