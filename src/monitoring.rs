//! An engine's figures for monitoring: the stats struct and the Prometheus text. Both
//! visit every topic, which is why they are meant for a scrape and are apart from the
//! reads of a topic.

use super::guard::{engine, guard, string_out, Out};
use super::types::{presence_buf, presence_engine, presence_stats, presence_status};
use presence_core::Engine;

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
        let out = unsafe { Out::new(out, "out") }?;
        let s = e.stats();
        out.write(presence_stats {
            topics: s.topics,
            presences: s.presences,
            bytes: s.bytes,
            topics_pending: s.topics_pending,
            polls: s.polls,
            expired: s.expired,
        });
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
