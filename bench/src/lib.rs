//! Shared pieces of the benchmark drivers: the standard workload, the bare `HashMap`
//! tracker (the floor), the Redis counting patterns, the fan-out simulation, the clocks
//! and run order of the timings (`measure`) and the JSON-lines output that `bench/run.py`
//! merges into `BENCHMARKS.md`.
//!
//! The drivers are the binaries of this crate (src/bin/): among them `presence-bench`
//! (timings, Redis, fan-out, checks; one module per command), `presence-mem` (memory per
//! presence, with a counting global allocator that the timing binary does not pay for)
//! and `presence-cluster` (three node processes over Redis; one module per command).

pub mod alloc;
pub mod args;
pub mod cluster;
pub mod fanout;
pub mod floor;
pub mod measure;
pub mod out;
pub mod redis_patterns;
pub mod rng;
pub mod workload;

use presence_core::{Config, Engine, Format};

/// An engine for the benchmarks: the given format, limits raised so that no benchmark
/// size hits them, everything else at the defaults a host gets with `{}`.
pub fn engine(format: Format) -> Engine {
    Engine::new(Config {
        format,
        max_topics: 4_000_000,
        max_presences: 40_000_000,
        ..Config::default()
    })
    .expect("benchmark config is valid")
}

/// The small meta of the phoenix-format figures.
pub const META: &str = r#"{"online_at":1700000000}"#;
