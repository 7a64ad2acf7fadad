//! Memory driver of `make bench`: live heap bytes per presence, measured with a counting
//! global allocator, beside the engine's own estimate (`Engine::stats().bytes`).

use presence_bench::alloc::Counting;
use presence_bench::args::{self, Args};
use presence_bench::floor::{self, Floor};
use presence_bench::out::Record;
use presence_bench::workload::Workload;
use presence_bench::{engine, META};
use presence_core::Format;
use serde_json::json;

#[global_allocator]
static ALLOC: Counting = Counting;

const USAGE: &str = "usage: presence-mem memory --n N --topics T --runs R";

/// Heap bytes held per presence by an engine of `format` holding the whole workload,
/// after its first poll (the steady state of a live server), and its `stats().bytes`.
fn engine_bytes(w: &Workload, all: &[u32], format: Format) -> (f64, f64) {
    let before = Counting::live();
    let e = engine(format);
    let meta = (format == Format::Phoenix).then_some(META);
    w.track_engine(&e, all, meta);
    drop(e.poll_diff());
    let held = Counting::live() - before;
    let stats = e.stats();
    assert_eq!(stats.presences, all.len() as u64);
    drop(e);
    let n = all.len() as f64;
    (held as f64 / n, stats.bytes as f64 / n)
}

fn floor_bytes(w: &Workload, all: &[u32]) -> f64 {
    let before = Counting::live();
    let mut f = Floor::default();
    floor::track_all(&mut f, w, all);
    let held = Counting::live() - before;
    drop(f);
    held as f64 / all.len() as f64
}

fn main() {
    let a = Args::from_env(USAGE);
    if a.command != "memory" {
        args::fail(USAGE, &format!("unknown command {:?}", a.command));
    }
    let (n, topics, runs) = (
        a.usize("n", 1_000_000),
        a.usize("topics", 1000),
        a.usize("runs", 3),
    );
    let w = Workload::standard(n, topics);
    let all = w.all();
    let mut out: [Vec<f64>; 5] = Default::default();
    for _ in 0..runs {
        out[0].push(floor_bytes(&w, &all));
        let (held, est) = engine_bytes(&w, &all, Format::Counts);
        out[1].push(held);
        out[2].push(est);
        let (held, est) = engine_bytes(&w, &all, Format::Phoenix);
        out[3].push(held);
        out[4].push(est);
    }
    let params = json!({"n": n, "topics": topics});
    let rec = |imp: &str| {
        Record::new("memory", imp, "bytes/presence")
            .params(params.clone())
            .field("source", json!("counting allocator"))
    };
    rec("rust-floor").emit(&out[0]);
    rec("rust-engine")
        .baseline("rust-floor")
        .field("stats_bytes", json!(out[2]))
        .emit(&out[1]);
    rec("rust-engine-phoenix")
        .baseline("rust-floor")
        .field("meta", json!(META))
        .field("stats_bytes", json!(out[4]))
        .emit(&out[3]);
}
