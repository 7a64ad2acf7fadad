"""1. Track+untrack throughput: Rust, C, Redis patterns, and the Python and Node packages."""

from __future__ import annotations

from ..core import (BENCH, C_DRIVER, NODE_SCRIPT, PY_SCRIPT, PYTHON, Ctx, Rec, has_node_package, has_python_package,
                     median, rust)
from ..plots import save_plot
from ..tables import ratio_str, si, spread, table, workload_str

IMPL_LABEL = {
    "rust-floor": "HashMap floor (Rust, integer ids)",
    "rust-engine": "engine from Rust (counts)",
    "rust-engine-phoenix": "engine from Rust (phoenix, small meta)",
    "c-abi": "engine through the C ABI (C)",
    "redis-hincrby": "Redis HINCRBY, 1 round trip per event",
    "redis-hincrby-pipelined": "Redis HINCRBY, pipelined",
    "redis-sets": "Redis SADD/SREM+SCARD, 1 round trip per event",
    "redis-sets-pipelined": "Redis SADD/SREM+SCARD, pipelined",
    "python-dict": "pure-Python dict tracker",
    "python-engine-single": "engine from Python, single calls",
    "python-engine-bulk": "engine from Python, bulk calls",
    "python-engine": "engine from Python (stats().bytes)",
    "node-engine": "engine from Node",
    "js-map": "plain JS Map tracker",
}


def label(impl: str) -> str:
    return IMPL_LABEL.get(impl, impl)


def run_throughput(ctx: Ctx) -> None:
    s = ctx.sizes
    # Rust (engine and floor) and C alternate run by run, so that both see the same
    # neighbours' load; each process runs each implementation once.
    for n, topics in ((s.n, s.topics), (s.hot_n, 1)):
        for r in range(s.runs):
            ctx.run([rust("presence-bench"), "track_untrack", "--n", n, "--topics", topics, "--runs", 1])
            ctx.run([C_DRIVER, "track_untrack", "--n", n, "--topics", topics, "--runs", 1])
    ctx.run([rust("presence-bench"), "redis", "--url", ctx.redis_url, "--n", s.n, "--topics", s.topics,
             "--rt-n", s.redis_rt_n, "--batch", s.redis_batch, "--runs", s.slow_runs])


def run_python(ctx: Ctx) -> None:
    if not PY_SCRIPT.exists():
        ctx.note(f"not run: {PY_SCRIPT.name} is missing")
        return
    if not has_python_package():
        ctx.note("not run: the presence_engine Python package is not installed in the bench venv")
        return
    s = ctx.sizes
    ctx.run([PYTHON, PY_SCRIPT, "--n", s.n, "--topics", s.topics, "--runs", s.slow_runs],
            default_params={"n": s.n, "topics": s.topics})


def run_node(ctx: Ctx) -> None:
    if not NODE_SCRIPT.exists():
        ctx.note(f"not run: {NODE_SCRIPT.name} is missing")
        return
    if not has_node_package():
        ctx.note("not run: the presence-engine Node package is not installed in bench/node_modules")
        return
    s = ctx.sizes
    ctx.run(["node", "--expose-gc", NODE_SCRIPT, "--n", s.n, "--topics", s.topics, "--runs", s.slow_runs],
            default_params={"n": s.n, "topics": s.topics}, cwd=BENCH)


THROUGHPUT_ORDER = [
    "rust-floor", "rust-engine", "rust-engine-phoenix", "c-abi",
    "python-dict", "python-engine-single", "python-engine-bulk",
    "js-map", "node-engine",
    "redis-hincrby-pipelined", "redis-sets-pipelined", "redis-hincrby", "redis-sets",
]


def order_key(r: Rec) -> tuple:
    i = THROUGHPUT_ORDER.index(r.impl) if r.impl in THROUGHPUT_ORDER else len(THROUGHPUT_ORDER)
    return (-r.params.get("n", 0) if r.params.get("topics", 0) != 1 else 1, i, r.impl)


def render_throughput(ctx: Ctx) -> str:
    res = ctx.results
    recs = sorted(res.select("track_untrack"), key=order_key)
    if not recs:
        return ""
    rows = []
    for r in recs:
        base = res.base_of(r)
        tr, un = r.extra.get("track_ns_per_op"), r.extra.get("untrack_ns_per_op")
        rows.append([
            label(r.impl), workload_str(r.params), si(r.med), f"{1e9 / r.med:,.0f}",
            f"{median(tr):,.0f} / {median(un):,.0f}" if tr and un else "–",
            spread(r), str(len(r.runs)),
            f"{ratio_str(res.ratio(r))} {base.impl if base else ''}".strip(),
        ])
    md = [table(["implementation", "workload", "ops/s (median)", "ns/op", "ns/op track / untrack",
                 "spread (min–max)", "runs", "ratio to baseline"], rows, "llrrrrrl")]
    md.append(
        "\nA run tracks all N connections then untracks them all: ops/s = 2N calls / time. "
        "Each engine run starts from a fresh engine; strings are built before the clock. "
        "The Rust and C rows alternate process by process (one run each), so their ratios "
        "compare figures taken under the same load. The Redis rows count connections only "
        "(no distinct users) and the one-round-trip rows use a smaller N (marked), as each "
        "event waits for its reply; their ratio is to the engine on the full workload.")
    plot_throughput(ctx, recs)
    md.append("\n![track+untrack throughput](throughput.png)")
    return "\n".join(md)


def plot_throughput(ctx: Ctx, recs: list[Rec]) -> None:
    import matplotlib.pyplot as plt

    main = [r for r in recs if r.params.get("topics", 0) != 1]
    if not main:
        return
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(main) + 1.4))
    names = [f"{label(r.impl)}" + ("" if r.params.get("n") == ctx.sizes.n else f" (N={si(r.params['n'])})")
             for r in main]
    colors = []
    for r in main:
        if r.impl.startswith("redis"):
            colors.append("#c44e52")
        elif "engine" in r.impl or r.impl == "c-abi":
            colors.append("#4c72b0")
        else:
            colors.append("#8c8c8c")
    y = range(len(main))
    ax.barh(list(y), [r.med for r in main], color=colors,
            xerr=[[r.med - min(r.runs) for r in main], [max(r.runs) - r.med for r in main]], capsize=2)
    ax.set_yticks(list(y), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("track+untrack calls per second (median, log scale; bars: min–max)")
    ax.set_title(f"Track+untrack throughput, {si(ctx.sizes.n)} connections over {si(ctx.sizes.topics)} topics\n"
                 "blue: the engine, grey: the alternative in the same language, red: Redis", fontsize=9)
    ax.grid(axis="x", which="both", alpha=0.3)
    save_plot(ctx, fig, "throughput.png")
