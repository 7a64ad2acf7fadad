"""2. Scaling with threads."""

from __future__ import annotations

from ..core import Ctx, rust
from ..tables import ratio_str, si, spread, table, workload_str


def run_threads(ctx: Ctx) -> None:
    s = ctx.sizes
    ctx.run([rust("presence-bench"), "threads", "--n", s.n, "--topics", s.topics, "--runs", s.runs])


THREAD_LABEL = {
    "engine-1-thread": "engine, 1 thread",
    "engine-2-threads-disjoint": "engine, 2 threads, disjoint topics",
    "engine-2-threads-shared": "engine, 2 threads, shared topics",
    "floor-1-thread": "control: HashMap floor, 1 thread",
    "floor-2-threads-independent": "control: 2 threads, a floor each (no shared state)",
}


def render_threads(ctx: Ctx) -> str:
    res = ctx.results
    recs = res.select("threads")
    if not recs:
        return ""
    recs.sort(key=lambda r: list(THREAD_LABEL).index(r.impl) if r.impl in THREAD_LABEL else 99)
    rows = []
    for r in recs:
        rows.append([THREAD_LABEL.get(r.impl, r.impl), workload_str(r.params), si(r.med), spread(r),
                     str(len(r.runs)), ratio_str(res.ratio(r)) if r.baseline else "1 (baseline)"])
    return table(["run", "workload", "ops/s (median)", "spread", "runs", "vs 1 thread"], rows, "llrrrr") + (
        "\n\nOne engine shared by the threads (scoped threads over `&Engine`). Disjoint: each "
        "thread owns half the topics. Shared: the two tabs of every user go to different "
        "threads, so both threads hit every topic. Each thread tracks its part, all meet at a "
        "barrier, then each untracks its part; ops/s = 2N / wall time. The control runs the "
        "same split with a private HashMap floor per thread, so nothing at all is shared: its "
        "ratio is what a second thread could add on this machine during this run (the two "
        "cores are shared with other work, and the five kinds of run alternate).")
