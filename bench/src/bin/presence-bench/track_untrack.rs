//! `track_untrack`: N connections tracked, then all untracked, in the engine (counts
//! format, and phoenix format with the small meta) and in the bare `HashMap` floor,
//! rotated run by run. The floor is the baseline: what tracking costs with nothing but a
//! map per topic, so the ratio shows what the engine's bookkeeping adds.

use presence_bench::args::Args;
use presence_bench::floor::{self, Floor};
use presence_bench::measure::rotate;
use presence_bench::out::{ns_per, rate, Record};
use presence_bench::workload::Workload;
use presence_bench::{engine, META};
use presence_core::Format;
use serde_json::json;
use std::time::{Duration, Instant};

/// One track-all-then-untrack-all run: (2N calls) / time, and each phase's ns per call.
#[derive(Clone, Copy)]
struct Phases {
    ops: f64,
    track_ns: f64,
    untrack_ns: f64,
}

impl Phases {
    fn new(calls: usize, track: Duration, untrack: Duration) -> Phases {
        Phases {
            ops: rate(2 * calls, track + untrack),
            track_ns: ns_per(calls, track),
            untrack_ns: ns_per(calls, untrack),
        }
    }
}

/// Emits a track_untrack record with its per-phase figures.
fn emit_phases(rec: Record, runs: &[Phases]) {
    let pick = |f: fn(&Phases) -> f64| json!(runs.iter().map(f).collect::<Vec<f64>>());
    rec.field("track_ns_per_op", pick(|p| p.track_ns))
        .field("untrack_ns_per_op", pick(|p| p.untrack_ns))
        .emit(&runs.iter().map(|p| p.ops).collect::<Vec<f64>>());
}

fn time_engine(w: &Workload, conns: &[u32], format: Format) -> Phases {
    let e = engine(format);
    let meta = (format == Format::Phoenix).then_some(META);
    let t = Instant::now();
    w.track_engine(&e, conns, meta);
    let track = t.elapsed();
    let t = Instant::now();
    w.untrack_engine(&e, conns);
    let untrack = t.elapsed();
    assert_eq!(e.stats().presences, 0);
    drop(e.poll_diff());
    Phases::new(conns.len(), track, untrack)
}

fn time_floor(w: &Workload, conns: &[u32]) -> Phases {
    let mut f = Floor::default();
    let t = Instant::now();
    floor::track_all(&mut f, w, conns);
    let track = t.elapsed();
    let t = Instant::now();
    floor::untrack_all(&mut f, w, conns);
    let untrack = t.elapsed();
    assert_eq!(f.topics(), 0);
    Phases::new(conns.len(), track, untrack)
}

/// Track all N connections, then untrack them all; (2N calls) / time.
pub fn run(a: &Args) {
    let (n, topics, runs) = (
        a.usize("n", 1_000_000),
        a.usize("topics", 1000),
        a.usize("runs", 5),
    );
    let w = Workload::standard(n, topics);
    let all = w.all();
    let [floor_runs, counts_runs, phoenix_runs] = rotate(
        runs,
        [
            &mut || time_floor(&w, &all),
            &mut || time_engine(&w, &all, Format::Counts),
            &mut || time_engine(&w, &all, Format::Phoenix),
        ],
    );
    let params = json!({"n": n, "topics": topics});
    let rec = |imp: &str| Record::new("track_untrack", imp, "ops/s").params(params.clone());
    emit_phases(rec("rust-floor"), &floor_runs);
    emit_phases(rec("rust-engine").baseline("rust-floor"), &counts_runs);
    emit_phases(
        rec("rust-engine-phoenix")
            .baseline("rust-floor")
            .field("meta", json!(META)),
        &phoenix_runs,
    );
}
