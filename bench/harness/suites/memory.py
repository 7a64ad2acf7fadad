"""3. Memory per presence."""

from __future__ import annotations

from ..core import Ctx, Rec, median, rust
from ..plots import save_plot
from ..tables import ratio_str, si, table, workload_str
from .throughput import label


def run_memory(ctx: Ctx) -> None:
    s = ctx.sizes
    ctx.run([rust("presence-mem"), "memory", "--n", s.n, "--topics", s.topics, "--runs", s.slow_runs])


MEMORY_ORDER = ["rust-floor", "rust-engine", "rust-engine-phoenix", "python-engine", "python-dict",
                "node-engine", "js-map", "redis-sets", "redis-hincrby"]


MEMORY_LABEL = {
    "python-engine": "engine from Python",
    "node-engine": "engine from Node",
    "redis-sets": "Redis SADD/SREM+SCARD pattern (one set per topic)",
    "redis-hincrby": "Redis HINCRBY pattern (one counter per topic)",
}
MEMORY_SOURCE = {
    "python-engine": "engine.stats().bytes",
    "node-engine": "engine.stats().bytes",
    "python-dict": "tracemalloc",
    "js-map": "V8 heap growth after GC",
}


def render_memory(ctx: Ctx) -> str:
    res = ctx.results
    recs = res.select("memory")
    if not recs:
        return ""
    recs.sort(key=lambda r: MEMORY_ORDER.index(r.impl) if r.impl in MEMORY_ORDER else 99)
    counts = res.find("memory", "rust-engine")
    rows = []
    for r in recs:
        est = r.extra.get("stats_bytes")
        source = r.extra.get("source") or MEMORY_SOURCE.get(r.impl, "its script")
        rows.append([
            MEMORY_LABEL.get(r.impl, label(r.impl)), workload_str(r.params), f"{r.med:,.1f}",
            f"{median(est):,.1f}" if est else "–",
            f"{ratio_str(res.ratio(r))} {r.baseline}" if r.baseline else "–",
            ratio_str(r.med / counts.med) if counts and counts.med else "–",
            source, str(len(r.runs)),
        ])
    plot_memory(ctx, recs)
    return table(["tracker", "workload", "bytes/presence (median)", "engine.stats() estimate",
                  "ratio to baseline", "vs engine (counts)", "measured with", "runs"], rows, "llrrlrll") + (
        "\n\nThe Rust rows count the bytes requested from the allocator (a counting global "
        "allocator in `presence-mem`) while the engine holds every presence, after its first "
        "poll (the steady state of a server), less what was live before the engine was created "
        "(the workload's own strings are not counted, for any tracker). malloc's per-block "
        "overhead comes on top. The Python and Node figures are what their scripts measure "
        "(see their headers). Redis: growth of `used_memory` while the pattern holds every "
        "connection (the HINCRBY pattern keeps one counter per topic and no presence at all, "
        "which is why it cannot tell who left when a server dies).\n\n![memory per presence](memory.png)")


def plot_memory(ctx: Ctx, recs: list[Rec]) -> None:
    import matplotlib.pyplot as plt

    recs = [r for r in recs if r.impl != "redis-hincrby"]
    if not recs:
        return
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(recs) + 1.3))
    y = list(range(len(recs)))
    ax.barh(y, [r.med for r in recs],
            color=["#4c72b0" if "engine" in r.impl else "#8c8c8c" for r in recs])
    for yi, r in zip(y, recs):
        ax.text(r.med, yi, f" {r.med:,.0f}", va="center", fontsize=8)
    ax.axvline(100, color="#c44e52", ls="--", lw=1, label="target: 100 B (counts)")
    ax.set_yticks(y, [MEMORY_LABEL.get(r.impl, label(r.impl)) for r in recs], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("bytes per presence (median)")
    ax.set_title(f"Memory per presence at {si(ctx.sizes.n)} presences over {si(ctx.sizes.topics)} topics",
                 fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    save_plot(ctx, fig, "memory.png")
