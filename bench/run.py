#!/usr/bin/env python3
"""Runs every benchmark suite and writes bench/BENCHMARKS.md and its plots (make bench).

Each suite is one entry of SUITES: a function that runs drivers (which print JSON lines,
see bench/src/out.rs) and a function that renders its section of BENCHMARKS.md (tables,
plots). A new suite is one more entry. The drivers:

  target/bench/cargo/release/presence-bench   Rust: engine, HashMap floor, Redis, fan-out
  target/bench/cargo/release/presence-mem     Rust: memory (counting global allocator)
  target/bench/cargo/release/presence-cluster Rust: three node processes over Redis
  target/bench/cargo/release/presence-grace   Rust: the leave grace (reload room, poll cost)
  target/bench/presence_bench_c               C: the engine through include/presence.h
  bench/python_bench.py, bench/node_bench.mjs the Python and Node packages and their peers
  bench/python_integrations.py,               fan-out through the framework integrations
  bench/node_integrations.mjs                 against the bare path of the same language

Every figure is the median of several runs, beside its ratio to a baseline measured in
the same run. Raw lines go to bench/results/ (ignored by git).

  run.py [--quick] [--only SUITE,...] [--out DIR]   run the benchmarks
  run.py --check                                     correctness check of make test-bench
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from harness.check import run_check
from harness.core import BENCH, C_DRIVER, FULL, QUICK, Ctx, DriverError, log, rust
from harness.redis_server import RedisServer
from harness.report import render
from harness.suites import SUITES


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller workload, fewer runs")
    ap.add_argument("--only", help="comma-separated suites to run: " + ",".join(s.name for s in SUITES))
    ap.add_argument("--out", type=Path, default=BENCH, help="where BENCHMARKS.md and the plots go")
    ap.add_argument("--check", action="store_true", help="the correctness check of make test-bench")
    args = ap.parse_args()
    if args.check:
        return run_check()

    import matplotlib

    matplotlib.use("Agg")
    only = set(args.only.split(",")) if args.only else None
    if only and only - {s.name for s in SUITES}:
        ap.error(f"unknown suites: {sorted(only - {s.name for s in SUITES})}")
    suites = [s for s in SUITES if not only or s.name in only]
    results_dir = BENCH / "results"
    results_dir.mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    raw = results_dir / f"{stamp}{'-quick' if args.quick else ''}.jsonl"
    args.out.mkdir(parents=True, exist_ok=True)
    ctx = Ctx(QUICK if args.quick else FULL, args.quick, args.out, raw)
    started = time.monotonic()
    for path in (rust("presence-bench"), rust("presence-mem"), rust("presence-cluster"), rust("presence-ab"),
                 rust("presence-grace"), C_DRIVER):
        if not path.exists():
            raise SystemExit(f"{path} is missing: run `make bench` (it builds the drivers)")
    redis = RedisServer() if any(s.needs_redis for s in suites) else None
    try:
        if redis:
            redis.__enter__()
            ctx.redis_url = redis.url
        for suite in suites:
            ctx.suite = suite.name
            t0 = time.monotonic()
            log(f"suite {suite.name} ...")
            try:
                suite.run(ctx)
            except DriverError as e:
                # A failed driver fails the command; what was measured so far is kept in raw.
                raise SystemExit(f"suite {suite.name}: {e}") from e
            log(f"suite {suite.name} done in {time.monotonic() - t0:.0f} s")
    finally:
        if redis:
            redis.__exit__()
    md = render(ctx, started)
    (args.out / "BENCHMARKS.md").write_text(md)
    log(f"wrote {args.out / 'BENCHMARKS.md'} (raw lines: {raw})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
