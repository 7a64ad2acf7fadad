//! Polls and states rendered as whole socket messages in an envelope (`presence_envelope`),
//! ready to write as they are: the batches of a poll, handed out (`presence_poll_ready`)
//! or reused from poll to poll (`presence_poll_ready_into`), and the state message of a
//! joining client. Apart from the plain polls for what only they compute: the envelope
//! argument and the spans of each part, in bytes and in UTF-16 code units.

use super::guard::{
    engine, guard, guard_value, null, optional_text, text, write_optional, Failure, Out,
};
use super::polls::presence_buf_free;
use super::types::{
    presence_buf, presence_engine, presence_occupancy, presence_ready, presence_ready_batch,
    presence_ready_diff, presence_ready_view, presence_span, presence_status, presence_str,
};
use presence_core::{Envelope, ReadyBatch};
use std::ffi::c_char;

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
        let out = unsafe { Out::new(out, "out") }?;
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
        out.write(presence_ready {
            text: presence_buf::from_string(text),
            diffs,
            count,
        });
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
        // SAFETY: NULL or writable by the caller's contract.
        let out = unsafe { Out::new(out, "out") }?;
        let batch = Box::new(ReadyRecords {
            ready: ReadyBatch::default(),
            diffs: Vec::new(),
        });
        out.write(Box::into_raw(batch).cast());
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
        let out = unsafe { Out::new(out, "out") }?;
        e.poll_ready(envelope.as_ref(), &mut b.ready);
        ready_records(&b.ready, &mut b.diffs);
        let diffs = if b.diffs.is_empty() {
            std::ptr::null()
        } else {
            b.diffs.as_ptr()
        };
        out.write(presence_ready_view {
            text: presence_str::from(b.ready.text()),
            diffs,
            count: b.diffs.len(),
        });
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
        let out = unsafe { Out::new(out, "out") }?;
        let state = e.list(topic)?;
        let message = match envelope {
            Some(env) => env.state_message(topic, &state),
            None => state.json,
        };
        out.write(presence_buf::from_string(message));
        // SAFETY: NULL or writable by the caller's contract.
        unsafe { write_optional(seq, state.seq) };
        Ok(())
    })
}
