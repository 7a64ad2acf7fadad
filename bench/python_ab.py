#!/usr/bin/env python3
"""A/B figures of the Python package's hand-written pieces against what Python offers,
both measured in this process, alternating run by run (run.py's "ab" suite).

  meta    track() with a dict meta, which the extension writes out as JSON itself
          (convert.rs), against track() with json.dumps() of the same dict: what the
          extension would cost if it called the json module instead.
  counts  the Counts value class (values.rs) against collections.namedtuple: build one
          from three ints and read a field, as a host does with every engine.counts().

Output: the JSON lines of bench/src/out.rs, `bench` "ab", `impl` "hand" or "crate" (the
baseline), ns of this thread's CPU time per operation (the cores are shared with other work,
which a wall clock would count too).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import namedtuple
from typing import Callable

import presence_engine

META = {"online_at": 1700000000, "device": "web", "name": "Ada Lovelace", "tags": ["a", "b"]}


def ab(runs: int, hand: Callable[[], float], alt: Callable[[], float]) -> tuple[list[float], list[float]]:
    """Runs both once per run, the first of the two alternating."""
    a: list[float] = []
    b: list[float] = []
    for r in range(runs):
        if r % 2 == 0:
            a.append(hand())
            b.append(alt())
        else:
            b.append(alt())
            a.append(hand())
    return a, b


def emit(piece: str, op: str, hand: str, alt: str, params: dict, runs: tuple[list[float], list[float]]) -> None:
    p = {"piece": piece, "op": op, **params}
    print(json.dumps({"bench": "ab", "impl": "hand", "baseline": "crate", "unit": "ns", "params": p,
                      "what": hand, "runs": runs[0]}))
    print(json.dumps({"bench": "ab", "impl": "crate", "unit": "ns", "params": p, "what": alt, "runs": runs[1]}))


def meta_ab(n: int, runs: int) -> None:
    topics = [f"t{i % 1000}" for i in range(n)]
    keys = [f"u{i // 2}" for i in range(n)]
    metas = [dict(META, name=f"user {i}") for i in range(n)]

    def tracks(encode: bool) -> float:
        engine = presence_engine.Engine(format="phoenix", max_presences=max(n, 10_000_000))
        track = engine.track
        t = time.thread_time_ns()
        if encode:
            dumps = json.dumps
            for i in range(n):
                track(topics[i], i, keys[i], dumps(metas[i], separators=(",", ":"), ensure_ascii=False))
        else:
            for i in range(n):
                track(topics[i], i, keys[i], metas[i])
        return (time.thread_time_ns() - t) / n

    emit("py-meta", "track", "`track(..., meta=dict)` (convert.rs writes the JSON)",
         "`track(..., meta=json.dumps(dict))`", {"n": n}, ab(runs, lambda: tracks(False), lambda: tracks(True)))


def counts_ab(n: int, runs: int) -> None:
    Counts = presence_engine.Counts
    Tuple = namedtuple("Counts", ["viewers", "users", "connections"])

    def build(cls: Callable[[int, int, int], object]) -> float:
        t = time.thread_time_ns()
        for i in range(n):
            cls(i, i, i).users  # type: ignore[attr-defined]
        return (time.thread_time_ns() - t) / n

    emit("py-counts", "build+read", "`Counts` (values.rs)", "`collections.namedtuple`", {"n": n},
         ab(runs, lambda: build(Counts), lambda: build(Tuple)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200_000, help="operations per run")
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    meta_ab(args.n, args.runs)
    counts_ab(args.n * 5, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
