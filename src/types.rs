//! The C types: an opaque engine handle, the status enum and the plain structs, with
//! their conversions from the core's values.

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_void};

/// A presence engine.
///
/// Created by `presence_engine_new` and destroyed by `presence_engine_free`. Every
/// function that takes a `presence_engine *` or `const presence_engine *` is safe to
/// call from any number of threads at once; only `presence_engine_free` must not
/// overlap with any other call on the same engine.
pub struct presence_engine {
    _private: [u8; 0],
}

/// The result of every fallible call. `PRESENCE_STATUS_OK` is 0; each failure kind has
/// its own value and `presence_last_error_message` has the details. Out-parameters are
/// written only when the call returns `PRESENCE_STATUS_OK`, and a failed call leaves
/// the engine's state as it was.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum presence_status {
    /// Success.
    Ok = 0,
    /// A required pointer argument is NULL.
    NullArgument = 1,
    /// A string argument is not valid UTF-8.
    InvalidUtf8 = 2,
    /// A meta is not one JSON object, nests more than 64 levels deep, carries a reserved
    /// key (`phx_ref`, `phx_ref_prev`), holds a number no double can hold (`1e400`:
    /// clients would read `Infinity`) or an escaped lone surrogate (`"\ud800"`: no UTF-8
    /// form).
    InvalidMeta = 3,
    /// The configuration JSON is malformed, has an unknown field or a bad value, or a
    /// phoenix `viewers_key` is longer than `max_key_bytes`.
    InvalidConfig = 4,
    /// A topic or key is empty, or has a NUL character (from bindings that can pass
    /// one), or (phoenix format) a key equals the viewers key.
    InvalidArgument = 5,
    /// A topic, key or meta is longer than its configured limit.
    TooLong = 6,
    /// The connection is already tracked in that topic.
    AlreadyTracked = 7,
    /// The connection is not tracked in that topic.
    NotTracked = 8,
    /// The configured maximum number of topics or presences is reached.
    LimitReached = 9,
    /// The operating system refused a resource (the wake-up descriptor, a thread).
    Io = 10,
    /// A cluster call on an engine created without a `cluster` config.
    NoCluster = 11,
    /// A replication message was refused (unauthenticated, malformed, oversized or
    /// replayed); it changed nothing and is counted in the cluster stats.
    Rejected = 12,
    /// A bug inside the engine was caught before it could cross into the caller. The
    /// engine may be left inconsistent, so every later call on it returns this status
    /// too: free it and create a new one.
    Panic = 99,
}

impl presence_status {
    /// Every status. The failures of the core (`ErrorKind`) must be here with the same
    /// value and name, which the tests below check.
    pub(crate) const ALL: &'static [presence_status] = &[
        presence_status::Ok,
        presence_status::NullArgument,
        presence_status::InvalidUtf8,
        presence_status::InvalidMeta,
        presence_status::InvalidConfig,
        presence_status::InvalidArgument,
        presence_status::TooLong,
        presence_status::AlreadyTracked,
        presence_status::NotTracked,
        presence_status::LimitReached,
        presence_status::Io,
        presence_status::NoCluster,
        presence_status::Rejected,
        presence_status::Panic,
    ];

    /// The status of a value, if it is one.
    pub(crate) fn from_value(value: u32) -> Option<presence_status> {
        Self::ALL.iter().copied().find(|s| *s as u32 == value)
    }

    /// The C name without its `PRESENCE_STATUS_` prefix, as cbindgen writes it: the
    /// variant's name in screaming snake case (`NotTracked` gives `NOT_TRACKED`).
    pub(crate) fn name(self) -> String {
        let mut name = String::new();
        for (i, c) in format!("{self:?}").chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                name.push('_');
            }
            name.push(c.to_ascii_uppercase());
        }
        name
    }
}

/// The counts of one topic.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct presence_counts {
    /// Anonymous presences (tracked without a key).
    pub viewers: u64,
    /// Distinct keys (a user with three tabs counts once).
    pub users: u64,
    /// All presences.
    pub connections: u64,
}

impl From<presence_core::Counts> for presence_counts {
    fn from(c: presence_core::Counts) -> presence_counts {
        presence_counts {
            viewers: c.viewers,
            users: c.users,
            connections: c.connections,
        }
    }
}

/// Engine-wide figures.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct presence_stats {
    /// Topics held.
    pub topics: u64,
    /// Presences held.
    pub presences: u64,
    /// Estimated heap bytes held by the engine.
    pub bytes: u64,
    /// Topics changed since the last poll.
    pub topics_pending: u64,
    /// Polls taken since the engine was created (`presence_poll_diff`,
    /// `presence_poll_diff_each`, `presence_poll_ready`), empty ones included.
    pub polls: u64,
    /// Presences tracked with `presence_track_ttl` that this node removed because their
    /// time to live ran out (at a poll, by the timer, or at a `presence_touch` that came
    /// too late), since the engine was created. Untracks and renewals are not counted,
    /// nor the expiries of other nodes, whose leaves arrive as replicated changes.
    pub expired: u64,
}

/// A byte buffer allocated by the library: text (JSON, or the Prometheus text format of
/// `presence_metrics`), followed by a NUL byte that `len` does not count, so `data` can
/// also be used as a C string.
///
/// The caller owns it and must release it with `presence_buf_free`, never with `free()`.
/// A zeroed `presence_buf` (`{NULL, 0}`) holds nothing and may be freed.
#[repr(C)]
#[derive(Debug)]
pub struct presence_buf {
    /// The bytes, or NULL for an empty buffer.
    pub data: *const u8,
    /// The number of bytes, excluding the trailing NUL.
    pub len: usize,
}

impl presence_buf {
    pub(crate) fn from_string(s: String) -> presence_buf {
        let mut bytes = s.into_bytes();
        bytes.push(0);
        let len = bytes.len() - 1;
        let data = Box::into_raw(bytes.into_boxed_slice()).cast::<u8>();
        presence_buf { data, len }
    }
}

/// A borrowed string view; not NUL-terminated. Valid only as long as the documentation
/// of the function that gave it says.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct presence_str {
    /// The first byte.
    pub data: *const c_char,
    /// The number of bytes.
    pub len: usize,
}

impl From<&str> for presence_str {
    fn from(s: &str) -> presence_str {
        presence_str {
            data: s.as_ptr().cast(),
            len: s.len(),
        }
    }
}

/// One changed topic, as passed to a `presence_diff_cb`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct presence_topic_diff {
    /// The topic name.
    pub topic: presence_str,
    /// The per-topic sequence number: 1 for a topic's first diff, then one more each time.
    /// A client that sees a gap has missed a diff and should ask for the state again.
    pub seq: u64,
    /// The live counts after this diff.
    pub counts: presence_counts,
    /// The `presence_diff` payload (JSON) to send to the topic's clients.
    pub payload: presence_str,
    /// A `presence_occupancy` value: whether the topic became occupied or vacated.
    pub occupancy: u64,
}

/// Receives one changed topic from `presence_poll_diff_each`.
///
/// `diff` and the strings it points to are valid only during the call. The callback runs
/// on the polling thread with no engine lock held, so it may call any engine function
/// except `presence_engine_free`. It must not unwind or `longjmp` out.
pub type presence_diff_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, diff: *const presence_topic_diff)>;

/// Receives one replication message to publish to the other nodes.
///
/// `data` is valid only during the call: copy it (or send it) before returning. Called on
/// the calling thread with no engine lock held; it must not unwind or `longjmp` out.
pub type presence_message_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, data: *const u8, len: usize)>;

/// Counters of a node's replication traffic (cluster mode).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct presence_cluster_stats {
    /// This node's incarnation: random-tailed and increasing across restarts.
    pub incarnation: u64,
    /// Other nodes currently live.
    pub nodes: u64,
    /// Messages handed out by `presence_cluster_tick` and `presence_cluster_leave`.
    pub messages_sent: u64,
    /// Their bytes.
    pub bytes_sent: u64,
    /// Messages passed to `presence_cluster_ingest`, echoes of this node's own included.
    pub messages_received: u64,
    /// Their bytes.
    pub bytes_received: u64,
    /// Refused: the HMAC did not match (forged, tampered, truncated, another secret).
    pub rejected_unauthenticated: u64,
    /// Refused: authentic but undecodable, of the other format, or over a bound.
    pub rejected_malformed: u64,
    /// Refused: larger than `max_message_bytes`.
    pub rejected_oversized: u64,
    /// Refused: a sequence number or incarnation already seen.
    pub rejected_replayed: u64,
    /// Snapshots sent.
    pub snapshots_sent: u64,
    /// Snapshot requests sent after a gap.
    pub snapshot_requests_sent: u64,
    /// Nodes dropped for silence or after announcing their departure.
    pub nodes_dropped: u64,
    /// Nodes held from before the Redis link went down or stopped answering, kept until
    /// it is back or `stale_after_ms` has passed; 0 while the link is up.
    pub stale_nodes: u64,
    /// 1 while this node can hear the bus, 0 while its Redis link is connecting, down or
    /// unresponsive (always 1 for a host's own bus).
    pub link_up: u64,
}

/// The message shape of `presence_poll_ready` and `presence_state_message`. Passed as a
/// `uint32_t`; any other value is refused with `PRESENCE_STATUS_INVALID_ARGUMENT`.
///
/// Strings in a message are escaped as `JSON.stringify` escapes them and there is no
/// whitespace: a message is byte for byte what `JSON.stringify` makes of the same value,
/// as long as the payload is in that form too (it is, unless a meta was given as JSON
/// text with another layout: metas are passed on as given).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum presence_envelope {
    /// No message: the payload alone.
    None = 0,
    /// `{"event":E,"topic":T,"seq":S,"payload":P}`, E being `"presence_diff"` or
    /// `"presence_state"`.
    Event = 1,
    /// A Phoenix Channels V2 JSON serializer frame, `[join_ref,null,T,E,P]`, as a Phoenix
    /// server pushes it (phoenix.js reads it unchanged). `ref` is always `null`: Phoenix
    /// sets it on replies only. `join_ref` is the one given (a JSON string), or `null`
    /// when it is NULL: diffs are broadcast to every channel of a topic, so Phoenix sends
    /// them with `null`; a state is pushed to one channel, with that channel's join_ref.
    /// The frame has no seq.
    PhoenixV2 = 2,
}

/// A changed topic's passage between empty and not empty since the last poll, counting
/// every node's presences as `presence_get_counts` does: what a host needs to fire
/// `channel_occupied` / `channel_vacated` webhooks without diffing counts itself. Held in
/// the `uint64_t occupancy` of `presence_topic_diff` and `presence_ready_diff`.
///
/// With a leave grace a held leave keeps its topic occupied: a reload does not vacate.
/// In a cluster every node reports the passages it sees of its own view (each node's
/// seqs are its own); fire a webhook from one node's reports.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum presence_occupancy {
    /// Empty at both polls, or not empty at both.
    Unchanged = 0,
    /// Empty at the last poll (or never polled before), not empty now.
    Occupied = 1,
    /// Not empty at the last poll, empty now.
    Vacated = 2,
}

impl From<presence_core::Occupancy> for presence_occupancy {
    fn from(o: presence_core::Occupancy) -> Self {
        match o {
            presence_core::Occupancy::Unchanged => presence_occupancy::Unchanged,
            presence_core::Occupancy::Occupied => presence_occupancy::Occupied,
            presence_core::Occupancy::Vacated => presence_occupancy::Vacated,
        }
    }
}

/// A range of bytes (or of UTF-16 code units) in the text of a `presence_ready`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct presence_span {
    /// Where it starts, from the start of the text.
    pub offset: u64,
    /// How long it is.
    pub len: u64,
}

/// One changed topic of a `presence_ready`: where its parts are in the text.
///
/// The `_utf16` spans give the same parts counted in UTF-16 code units, for hosts whose
/// strings are UTF-16 (JavaScript, Java, .NET): they decode the whole text once and slice
/// it, instead of decoding each part. In the text a topic's name comes first, then its
/// message (which holds the payload), or its payload alone without an envelope.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct presence_ready_diff {
    /// The per-topic sequence number, as in `presence_topic_diff`.
    pub seq: u64,
    /// The live counts after this diff.
    pub counts: presence_counts,
    /// The topic name.
    pub topic: presence_span,
    /// The `presence_diff` payload (JSON).
    pub payload: presence_span,
    /// The whole message in the envelope asked for; `{0, 0}` with `PRESENCE_ENVELOPE_NONE`.
    pub message: presence_span,
    /// `topic` in UTF-16 code units.
    pub topic_utf16: presence_span,
    /// `payload` in UTF-16 code units.
    pub payload_utf16: presence_span,
    /// `message` in UTF-16 code units.
    pub message_utf16: presence_span,
    /// A `presence_occupancy` value: whether the topic became occupied or vacated.
    pub occupancy: u64,
}

/// The changes of one poll with their messages rendered, from `presence_poll_ready`.
///
/// The caller owns it and must release it with `presence_ready_free`. A zeroed
/// `presence_ready` holds nothing and may be freed.
#[repr(C)]
#[derive(Debug)]
pub struct presence_ready {
    /// Every topic's name and message (or payload) back to back, UTF-8, NUL-terminated.
    pub text: presence_buf,
    /// `count` entries, one per changed topic in poll order; NULL when `count` is 0.
    pub diffs: *const presence_ready_diff,
    /// The number of changed topics.
    pub count: usize,
}

/// A reusable batch that `presence_poll_ready_into` renders polls into, keeping its memory
/// from one poll to the next.
///
/// Created by `presence_ready_batch_new` and destroyed by `presence_ready_batch_free`. It
/// holds the last poll rendered into it, which `presence_ready_view` points into.
pub struct presence_ready_batch {
    _private: [u8; 0],
}

/// The changes of one poll with their messages rendered, from `presence_poll_ready_into`:
/// a view of a `presence_ready_batch`, valid until its next poll or its release.
#[repr(C)]
#[derive(Debug)]
pub struct presence_ready_view {
    /// Every topic's name and message (or payload) back to back, UTF-8; not NUL-terminated.
    pub text: presence_str,
    /// `count` entries, one per changed topic in poll order; NULL when `count` is 0.
    pub diffs: *const presence_ready_diff,
    /// The number of changed topics.
    pub count: usize,
}

#[cfg(test)]
mod tests {
    use super::presence_status;
    use presence_core::ErrorKind;

    #[test]
    fn every_error_kind_is_a_status_of_the_same_value_and_name() {
        for kind in ErrorKind::ALL {
            let status = presence_status::from_value(kind.status())
                .unwrap_or_else(|| panic!("{kind:?} ({}) is not a presence_status", kind.status()));
            assert_eq!(status.name(), kind.name(), "{kind:?}");
        }
    }

    #[test]
    fn all_lists_every_status_of_the_header_once() {
        let header = include_str!("../include/presence.h");
        let start = header
            .find("typedef enum presence_status {")
            .expect("the enum");
        let body = &header[start..start + header[start..].find("} presence_status;").unwrap()];
        let in_header: Vec<(String, u32)> = body
            .lines()
            .filter_map(|l| l.trim().strip_prefix("PRESENCE_STATUS_"))
            .map(|l| {
                let (name, value) = l.trim_end_matches(',').split_once(" = ").unwrap();
                (name.to_owned(), value.parse().unwrap())
            })
            .collect();
        let listed: Vec<(String, u32)> = presence_status::ALL
            .iter()
            .map(|s| (s.name(), *s as u32))
            .collect();
        assert_eq!(listed, in_header);
    }
}
