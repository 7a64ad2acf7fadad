//! presence-engine: tells socket servers how many (or who) are present in each channel.
//!
//! The host keeps its transport and hands the engine only bookkeeping: "connection 17
//! joined `video:42` as alice", "connection 17 left", "what changed since I last asked?".
//! The engine answers with ready-to-send payloads: anonymous counts by default
//! ([`Format::Counts`]) or Phoenix-compatible presence lists ([`Format::Phoenix`]), with
//! all changes of a topic between two polls coalesced into one diff.
//!
//! ```
//! use presence_core::{Engine, Config};
//! let engine = Engine::new(Config::default()).unwrap();
//! engine.track("video:42", 1, Some("alice"), None).unwrap();
//! engine.track("video:42", 2, None, None).unwrap();
//! let batch = engine.poll_diff();
//! let diff = batch.iter().next().unwrap();
//! assert_eq!(diff.payload, r#"{"joins":{"viewers":{"count":1},"users":{"count":1}},"leaves":{"viewers":{"count":0},"users":{"count":0}}}"#);
//! ```
//!
//! The core knows nothing of FFI: the C ABI is the crate `presence` at the repository's
//! root, which wraps this one.

mod batch;
pub mod cluster;
mod codec;
mod config;
mod engine;
mod envelope;
mod error;
mod expiry;
mod format;
mod hash;
mod json;
mod meta;
mod metrics;
mod ready;
mod shard;
mod shared;
mod table;
mod topic;
mod ttl;
mod waker;

pub use batch::{DiffBatch, TopicDiff};
pub use cluster::ClusterStats;
pub use config::{
    ClusterConfig, Config, Format, CLUSTER_DOCS, CLUSTER_FIELDS, CONFIG_DOCS, CONFIG_FIELDS,
};
pub use engine::Engine;
pub use envelope::{Envelope, DIFF_EVENT, STATE_EVENT};
pub use error::{Error, ErrorClass, ErrorKind, Result, ERROR_CLASSES};
/// Escapes a string as the engine's texts do: a binding that writes a meta itself (Python's
/// dict metas) escapes it the same way, so the engine hands back the bytes it was given.
pub use json::push_str as push_json_str;
pub use metrics::{Metric, MetricKind, METRICS};
pub use ready::{ReadyBatch, ReadyDiff, ReadySpans};
pub use shared::{State, Stats};
pub use topic::{Counts, Occupancy};
pub use ttl::{Clock, ManualClock};

/// The hand-written table that bench/ measures against `hashbrown` (`make bench`, suite
/// "ab"); not part of the API.
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod internals {
    pub use crate::table::{populate, KeyHash, Mixed, Probe, Table};
}

/// A hook for the tests of crates built on the core (the C layer's tests of a poisoned
/// engine): the next track on the calling thread panics in its middle. Not part of the API;
/// only with the `test-hooks` feature.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod test_hooks {
    pub use crate::shared::panic_hook::arm as panic_in_next_track;
}

/// The library version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
