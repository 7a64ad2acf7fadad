//! Cluster driver of `make bench` (see bench/run.py): three engines in three OS processes,
//! sharing presence over a real redis-server with the built-in Redis link.
//!
//! The commands other than `node` coordinate: they start this same binary three times as
//! `presence-cluster node ...` (a stand-in for a server process, driven over stdin like
//! examples/cluster/node.rs) and print JSON lines (see `presence_bench::out`). Node
//! processes take their times from `CLOCK_MONOTONIC`, the same clock in every process, so
//! "tracked on a at t0, seen on b at t1" subtracts across processes.

mod check;
mod converge;
mod coordinator;
mod down;
mod ingest;
mod node;
mod wire;

use presence_bench::args::{self, Args};
use presence_core::Format;

const USAGE: &str = "usage: presence-cluster COMMAND [--option value ...]
  converge --url URL --tick-ms T --changes K [--seed S]
      time from a track on node a until nodes b and c report the new counts
  down     --url URL --tick-ms T --down-after-ms D --reps R
      time until a and b drop node c after kill -9, stop_redis, cluster_leave
  wire     --url URL --format counts|phoenix --presences N --topics T --rates A,B,..
           --seconds S [--tick-ms T]
      bytes and messages each node publishes under churn, beside per-event replication
  ingest   --entries N [--reps R]
      phoenix format, in one process: time to ingest a node's snapshot of N entries of one
      topic into an engine holding N local entries of that topic
  check    --url URL --n N --topics T --anonymous-every K
      exact converged counts (make test-bench): join, kill -9, restart, leave, untrack
  node     --node NAME --url URL --channel CH [--format F] [--tick-ms T]
           [--down-after-ms D] [--snapshot-interval-ms S]
      one node process, driven over stdin (see `serve`)";

fn main() {
    let args = Args::from_env(USAGE);
    match args.command.as_str() {
        "converge" => converge::run(&args),
        "down" => down::run(&args),
        "wire" => wire::run(&args),
        "ingest" => ingest::run(&args),
        "check" => check::run(&args),
        "node" => node::serve(&args),
        other => args::fail(USAGE, &format!("unknown command {other:?}")),
    }
}

fn format_of(name: &str) -> Format {
    match name {
        "counts" => Format::Counts,
        "phoenix" => Format::Phoenix,
        other => args::fail("", &format!("--format counts|phoenix, got {other:?}")),
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}
