//! `ingest`: in one process, the time a phoenix-format engine takes to ingest another
//! node's first snapshot of one busy topic (HMAC checks included) while holding as many
//! entries of it itself: the work a node does when a peer starts up. Wall time, with the
//! thread's CPU time beside it, which a busy machine disturbs less.

use presence_bench::args::Args;
use presence_bench::cluster::cluster_engine;
use presence_bench::measure::thread_cpu;
use presence_bench::out::Record;
use presence_bench::META;
use presence_core::Format;
use serde_json::json;
use std::time::Instant;

/// A fresh receiver holding `n` local entries in one topic, and a fresh sender's first
/// snapshot of `n` entries of that topic (split to fit `max_message_bytes`); the time is
/// that of `cluster_ingest` over all its parts.
pub fn run(a: &Args) {
    let n = a.usize("entries", 32_768) as u64;
    let reps = a.usize("reps", 5);
    let (mut runs, mut cpu_ms) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        let receiver = cluster_engine(Format::Phoenix, "receiver", 250, 3_000, 30_000);
        let sender = cluster_engine(
            Format::Phoenix,
            &format!("sender-{rep}"),
            250,
            3_000,
            30_000,
        );
        for i in 0..n {
            receiver
                .track("hot", i, Some(&format!("local-{i}")), Some(META))
                .expect("track");
            sender
                .track("hot", i, Some(&format!("remote-{i}")), Some(META))
                .expect("track");
        }
        let parts = sender.cluster_tick().expect("tick");
        let (t, cpu) = (Instant::now(), thread_cpu());
        for m in &parts {
            receiver.cluster_ingest(m).expect("ingest");
        }
        runs.push(t.elapsed().as_secs_f64() * 1e3);
        cpu_ms.push((thread_cpu() - cpu).as_nanos() as f64 / 1e6);
        assert_eq!(receiver.counts("hot").expect("counts").connections, 2 * n);
    }
    Record::new("cluster_ingest", "phoenix-snapshot", "ms")
        .params(json!({"entries": n, "local_entries": n}))
        .field("cpu_ms", json!(cpu_ms))
        .emit(&runs);
}
