//! A/B figures of the engine's hand-written pieces against what could replace them, both
//! measured in this process, alternating run by run (`make bench`, suite "ab").
//!
//! - `table`: the engine's open-addressing `Table<2, Mixed>` (the connection index's kind
//!   of table) against `hashbrown::HashTable` holding the same 16-byte slots under the same
//!   hash: insert N connection ids into a fresh table, look them all up, remove them all,
//!   in a shuffled order; and the heap bytes each holds at N.
//! - `populate`: filling a fresh 2M-slot table as a rehash does, with the engine's
//!   `populate` (one write per page first) and without.
//!
//! Each record: `bench` "ab", `impl` "hand" or "crate" (the baseline), params naming the
//! piece and operation, runs in CPU ns per operation (ms for populate).

use hashbrown::HashTable;
use presence_bench::args::{self, Args};
use presence_bench::measure::{rotate, thread_cpu};
use presence_bench::out::Record;
use presence_bench::rng::Rng;
use presence_core::internals::{populate, KeyHash, Mixed, Probe, Table};
use serde_json::json;
use std::hint::black_box;

const USAGE: &str = "usage: presence-ab (table|populate) [--n N] [--runs R]";

fn main() {
    let args = Args::from_env(USAGE);
    let runs = args.usize("runs", 7);
    match args.command.as_str() {
        "table" => table(args.usize("n", 1_000_000), runs),
        "populate" => populate_ab(args.usize("n", 2 << 20), runs),
        other => args::fail(USAGE, &format!("unknown command {other:?}")),
    }
}

/// Emits the pair of records of one comparison.
fn emit(
    piece: &str,
    op: &str,
    hand: &str,
    crate_: &str,
    unit: &str,
    params: serde_json::Value,
    runs: [Vec<f64>; 2],
) {
    let mut p = json!({"piece": piece, "op": op});
    if let (Some(p), Some(extra)) = (p.as_object_mut(), params.as_object()) {
        p.extend(extra.clone());
    }
    let [a, b] = runs;
    Record::new("ab", "hand", unit)
        .baseline("crate")
        .params(p.clone())
        .field("what", json!(hand))
        .emit(&a);
    Record::new("ab", "crate", unit)
        .params(p)
        .field("what", json!(crate_))
        .emit(&b);
}

/// CPU ns per operation of `f` over `n` operations.
fn time_ns(n: usize, f: impl FnOnce()) -> f64 {
    let t = thread_cpu();
    f();
    (thread_cpu() - t).as_nanos() as f64 / n as f64
}

/// A shuffled copy of 0..n (seeded: every run probes in the same order).
fn shuffled(n: usize) -> Vec<u64> {
    let mut v: Vec<u64> = (1..=n as u64).collect();
    let mut rng = Rng::new(42);
    for i in (1..n).rev() {
        v.swap(i, rng.below(i + 1));
    }
    v
}

fn table(n: usize, runs: usize) {
    let order = shuffled(n);
    let hash = Mixed::hash;
    // (insert, lookup, remove) ns per op and the heap bytes at n, of one run.
    let mut hand = || {
        let mut t: Table<2, Mixed> = Table::default();
        let ins = time_ns(n, || {
            for &k in &order {
                if let Probe::Vacant(i) = t.entry(k) {
                    t.insert_at(i, [k, k]);
                }
            }
        });
        let bytes = t.heap_bytes();
        let get = time_ns(n, || {
            for &k in order.iter().rev() {
                black_box(t.get(k));
            }
        });
        let rem = time_ns(n, || {
            for &k in &order {
                black_box(t.remove(k));
            }
        });
        [ins, get, rem, bytes as f64 / n as f64]
    };
    let mut krate = || {
        let mut t: HashTable<[u64; 2]> = HashTable::new();
        let ins = time_ns(n, || {
            for &k in &order {
                if let hashbrown::hash_table::Entry::Vacant(v) =
                    t.entry(hash(k), |s| s[0] == k, |s| hash(s[0]))
                {
                    v.insert([k, k]);
                }
            }
        });
        let bytes = t.allocation_size();
        let get = time_ns(n, || {
            for &k in order.iter().rev() {
                black_box(t.find(hash(k), |s| s[0] == k));
            }
        });
        let rem = time_ns(n, || {
            for &k in &order {
                if let Ok(e) = t.find_entry(hash(k), |s| s[0] == k) {
                    black_box(e.remove());
                }
            }
        });
        [ins, get, rem, bytes as f64 / n as f64]
    };
    let [a, b] = rotate(runs, [&mut hand, &mut krate]);
    let col = |v: &[[f64; 4]], j: usize| v.iter().map(|r| r[j]).collect::<Vec<f64>>();
    let hand_name = "`table::Table<2, Mixed>`";
    let crate_name = "`hashbrown::HashTable<[u64; 2]>`";
    for (j, op) in ["insert", "lookup", "remove"].into_iter().enumerate() {
        emit(
            "table",
            op,
            hand_name,
            crate_name,
            "ns",
            json!({"n": n}),
            [col(&a, j), col(&b, j)],
        );
    }
    emit(
        "table",
        "bytes",
        hand_name,
        crate_name,
        "bytes",
        json!({"n": n}),
        [col(&a, 3), col(&b, 3)],
    );
}

fn populate_ab(n: usize, runs: usize) {
    let fill = |pre: bool| {
        let t = thread_cpu();
        let mut slots = vec![[0u64; 2]; n].into_boxed_slice();
        if pre {
            populate(&mut slots);
        }
        // What a rehash does: each entry probes from its home slot to a free one.
        for k in 1..=(n as u64 * 3 / 4) {
            let mut i = ((u128::from(Mixed::hash(k)) * n as u128) >> 64) as usize;
            while slots[i][1] != 0 {
                i = (i + 1) % n;
            }
            slots[i] = [k, k];
        }
        let ms = (thread_cpu() - t).as_nanos() as f64 / 1e6;
        drop(black_box(slots));
        ms
    };
    let runs = rotate(runs, [&mut || fill(true), &mut || fill(false)]);
    emit(
        "populate",
        "fill",
        "`table::populate` first",
        "no pre-faulting",
        "ms",
        json!({"slots": n}),
        runs,
    );
}
