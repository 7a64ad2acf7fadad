#!/usr/bin/env python3
"""Runs every benchmark suite and writes bench/BENCHMARKS.md and its plots (make bench).

Each suite is one entry of SUITES: a function that runs drivers (which print JSON lines,
see bench/src/out.rs) and a function that renders its section of BENCHMARKS.md (tables,
plots). A new suite is one more entry. The drivers:

  target/bench/cargo/release/presence-bench   Rust: engine, HashMap floor, Redis, fan-out
  target/bench/cargo/release/presence-mem     Rust: memory (counting global allocator)
  target/bench/cargo/release/presence-cluster Rust: three node processes over Redis
  target/bench/presence_bench_c               C: the engine through include/presence.h
  bench/python_bench.py, bench/node_bench.mjs the Python and Node packages and their peers

Every figure is the median of several runs, beside its ratio to a baseline measured in
the same run. Raw lines go to bench/results/ (ignored by git).

  run.py [--quick] [--only SUITE,...] [--out DIR]   run the benchmarks
  run.py --check                                     correctness check of make test-bench
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TARGET = Path(os.environ.get("BENCH_TARGET", ROOT / "target" / "bench"))
RUST_BIN = Path(os.environ.get("BENCH_RUST_BIN", TARGET / "cargo" / "release"))
C_DRIVER = TARGET / "presence_bench_c"
PY_SCRIPT = BENCH / "python_bench.py"
NODE_SCRIPT = BENCH / "node_bench.mjs"


def log(*args: object) -> None:
    print("[bench]", *args, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Sizes


@dataclass
class Sizes:
    """Workload sizes and run counts of one mode."""

    n: int = 1_000_000
    topics: int = 1_000
    hot_n: int = 100_000
    runs: int = 7
    slow_runs: int = 5
    counts_calls: int = 2_000_000
    poll_total: int = 100_000
    poll_changed: tuple[int, ...] = (1, 10, 100, 1_000, 10_000, 100_000)
    poll_totals: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000)
    poll_fixed: int = 100
    poll_runs: int = 7
    fanout_subscribers: tuple[int, ...] = (100, 1_000, 10_000, 100_000)
    fanout_churn: tuple[int, ...] = (1, 10, 100, 1_000, 10_000)
    fanout_seconds: int = 30
    redis_rt_n: int = 20_000
    redis_batch: int = 1_000
    # cluster: (tick_ms, timed changes) for convergence, (tick_ms, down_after_ms) for down
    # detection, repetitions of each way of going down, and the wire-cost churn.
    cluster_converge: tuple[tuple[int, int], ...] = ((250, 60), (50, 150))
    cluster_down: tuple[tuple[int, int], ...] = ((250, 3_000), (50, 1_000))
    cluster_down_reps: int = 5
    cluster_presences: int = 10_000
    cluster_topics: int = 1_000
    cluster_rates: tuple[int, ...] = (10, 100, 1_000, 10_000)
    cluster_seconds: int = 10
    # host path: topics, changed topics per poll, presences of the state topic, runs
    host_total: int = 10_000
    host_changed: tuple[int, ...] = (1_000, 10_000)
    host_state_n: int = 10_000
    host_runs: int = 9


FULL = Sizes()
QUICK = Sizes(
    n=100_000,
    runs=3,
    slow_runs=2,
    counts_calls=300_000,
    poll_total=10_000,
    poll_changed=(1, 10, 100, 1_000, 10_000),
    poll_totals=(1_000, 10_000, 100_000),
    poll_runs=3,
    fanout_subscribers=(100, 1_000, 10_000),
    fanout_churn=(1, 10, 100, 1_000),
    fanout_seconds=10,
    redis_rt_n=5_000,
    cluster_converge=((250, 16), (50, 40)),
    cluster_down_reps=2,
    cluster_rates=(100, 1_000),
    cluster_seconds=3,
    host_runs=3,
)


# --------------------------------------------------------------------------------------
# Records


def median(xs: Iterable[float]) -> float:
    return statistics.median(list(xs))


@dataclass
class Rec:
    """One measurement series: the merged JSON lines of one (bench, impl, params, x)."""

    bench: str
    impl: str
    unit: str
    params: dict
    runs: list[float]
    x: float | None = None
    baseline: str | None = None
    baseline_params: dict | None = None
    extra: dict = field(default_factory=dict)

    @property
    def med(self) -> float:
        return median(self.runs)

    def key(self) -> tuple:
        return (self.bench, self.impl, json.dumps(self.params, sort_keys=True), self.x)


class Results:
    """All records of a run, merged by key (runs of repeated invocations concatenate)."""

    def __init__(self) -> None:
        self.recs: dict[tuple, Rec] = {}
        self.notes: dict[str, list[str]] = {}  # suite -> notes (e.g. what did not run)

    def add_line(self, obj: dict, default_params: dict) -> None:
        obj = dict(obj)
        runs = [float(v) for v in obj.pop("runs")]
        params = obj.pop("params", None)
        if params is None:
            # Lines of the Python/Node scripts carry n and topics at the top level.
            params = {k: obj[k] for k in ("n", "topics") if k in obj} or dict(default_params)
        for k in ("n", "topics", "median"):
            obj.pop(k, None)
        rec = Rec(
            bench=obj.pop("bench"),
            impl=obj.pop("impl"),
            unit=obj.pop("unit", ""),
            params=params,
            runs=runs,
            x=obj.pop("x", None),
            baseline=obj.pop("baseline", None),
            baseline_params=obj.pop("baseline_params", None),
            extra=obj,
        )
        old = self.recs.get(rec.key())
        if old is None:
            self.recs[rec.key()] = rec
        else:
            old.runs.extend(rec.runs)
            for k, v in rec.extra.items():
                if isinstance(v, list) and isinstance(old.extra.get(k), list):
                    old.extra[k] = old.extra[k] + v

    def find(self, bench: str, impl: str, params: dict | None = None, x: float | None = None) -> Rec | None:
        for r in self.recs.values():
            if r.bench == bench and r.impl == impl and r.x == x and (params is None or r.params == params):
                return r
        return None

    def select(self, bench: str) -> list[Rec]:
        return [r for r in self.recs.values() if r.bench == bench]

    def base_of(self, r: Rec) -> Rec | None:
        if not r.baseline:
            return None
        return self.find(r.bench, r.baseline, r.baseline_params or r.params, r.x)

    def ratio(self, r: Rec) -> float | None:
        b = self.base_of(r)
        if b is None or b.med == 0:
            return None
        return r.med / b.med


# --------------------------------------------------------------------------------------
# Context: paths, the Redis server, running drivers


class DriverError(RuntimeError):
    pass


class Ctx:
    def __init__(self, sizes: Sizes, quick: bool, out: Path, raw: Path) -> None:
        self.sizes = sizes
        self.quick = quick
        self.out = out
        self.raw = raw
        self.results = Results()
        self.redis_url: str | None = None
        self.suite = ""

    def note(self, text: str) -> None:
        self.results.notes.setdefault(self.suite, []).append(text)

    def run(self, cmd: list[str], default_params: dict | None = None, cwd: Path | None = None,
            env: dict | None = None) -> list[dict]:
        """Runs a driver, passes its stderr through, and records its JSON lines."""
        log("$", " ".join(str(c) for c in cmd))
        p = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, stdout=subprocess.PIPE,
                           stderr=None, text=True)
        lines = []
        with self.raw.open("a") as raw:
            for line in p.stdout.splitlines():
                line = line.strip()
                if not line.startswith("{"):
                    continue
                raw.write(line + "\n")
                lines.append(json.loads(line))
        if p.returncode != 0:
            raise DriverError(f"{Path(str(cmd[0])).name} exited with {p.returncode}")
        for obj in lines:
            if "bench" in obj and "runs" in obj:
                self.results.add_line(obj, default_params or {})
        return lines


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A throwaway redis-server on a free loopback port, without persistence."""

    def __init__(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise SystemExit("redis-server is not installed (make bench installs it with apt-get)")
        self.exe = exe
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "RedisServer":
        self.proc = subprocess.Popen(
            [self.exe, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no",
             "--loglevel", "warning", "--dir", str(TARGET)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"redis-server exited with {self.proc.returncode} at start")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        log(f"redis-server pid {self.proc.pid} on 127.0.0.1:{self.port}")
                        return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise SystemExit("redis-server did not answer PING within 10 s")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/"

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            log(f"redis-server pid {self.proc.pid} stopped")


def rust(name: str) -> Path:
    return RUST_BIN / name


def venv_python() -> str:
    return sys.executable


def has_python_package() -> bool:
    p = subprocess.run([venv_python(), "-c", "import presence_engine"], capture_output=True)
    return p.returncode == 0


def has_node_package() -> bool:
    if shutil.which("node") is None:
        return False
    # The package as installed into bench/node_modules, or the binding in the tree.
    for spec in ("presence-engine", (ROOT / "bindings" / "node" / "index.mjs").as_uri()):
        p = subprocess.run(["node", "--input-type=module", "-e", f"await import({json.dumps(spec)})"],
                           cwd=BENCH, capture_output=True)
        if p.returncode == 0:
            return True
    return False


# --------------------------------------------------------------------------------------
# Formatting


def si(v: float) -> str:
    """3 significant digits with a k/M/G suffix: 1.23M."""
    v = float(f"{v:.3g}")
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suf}"
    return f"{v:.3g}"


def num(v: float, unit: str = "") -> str:
    if unit in ("ops/s", "msgs/s", "bytes/s"):
        return si(v)
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def dur(v: float, unit: str) -> str:
    """A duration given in ns or us, in the unit that reads best."""
    ns = v * {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}.get(unit, 1.0)
    for div, suf in ((1e9, "s"), (1e6, "ms"), (1e3, "µs")):
        if ns >= div:
            return f"{num(ns / div)} {suf}"
    return f"{num(ns)} ns"


def ratio_str(x: float | None) -> str:
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:,.0f}x"
    if x >= 10:
        return f"{x:.1f}x"
    return f"{x:.2f}x"


def spread(r: Rec) -> str:
    return f"{num(min(r.runs), r.unit)}–{num(max(r.runs), r.unit)}"


def table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def workload_str(params: dict) -> str:
    if "n" in params:
        n, t = params["n"], params.get("topics", 1)
        if t == 1:
            return f"hot room: {si(n)} conns in 1 topic"
        return f"{si(n)} conns / {si(t)} topics"
    return ", ".join(f"{k}={v}" for k, v in params.items())


# --------------------------------------------------------------------------------------
# Suites


@dataclass
class Suite:
    """One benchmark suite: `run` measures (through ctx.run), `render` returns markdown
    and may save plots. `needs_redis` starts the shared redis-server for it."""

    name: str
    title: str
    run: Callable[[Ctx], None]
    render: Callable[[Ctx], str]
    needs_redis: bool = False


# ---- 1. track+untrack throughput ---------------------------------------------------

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
    ctx.run([venv_python(), PY_SCRIPT, "--n", s.n, "--topics", s.topics, "--runs", s.slow_runs],
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


def log_axes(ax, xlabel: str, ylabel: str, title: str) -> None:
    """Log-log axes with their labels (both marked "(log)"), a title and a light grid."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel + " (log)")
    ax.set_ylabel(ylabel + " (log)")
    ax.set_title(title, fontsize=10)
    ax.grid(which="both", alpha=0.3)


def save_plot(ctx: Ctx, fig, name: str) -> None:
    """Writes `fig` as bench/`name` and frees it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(ctx.out / name, dpi=110)
    plt.close(fig)


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


# ---- 2. threads ----------------------------------------------------------------------


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


# ---- 3. memory -----------------------------------------------------------------------


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


# ---- 4. poll_diff ---------------------------------------------------------------------


def run_poll(ctx: Ctx) -> None:
    s = ctx.sizes
    ctx.run([rust("presence-bench"), "poll", "--total", s.poll_total,
             "--changed", ",".join(map(str, s.poll_changed)),
             "--totals", ",".join(map(str, s.poll_totals)),
             "--fixed-changed", s.poll_fixed, "--runs", s.poll_runs])


def render_poll(ctx: Ctx) -> str:
    res = ctx.results
    changed = sorted(res.select("poll_changed"), key=lambda r: r.x)
    total = sorted(res.select("poll_total"), key=lambda r: r.x)
    if not changed and not total:
        return ""
    md = []
    if changed:
        base = changed[0]
        rows = [[f"{int(r.x):,}", f"{r.med:,.1f}", f"{r.med * 1e3 / r.x:,.0f}", spread(r),
                 ratio_str(r.med / base.med)] for r in changed]
        md.append(f"Changed topics vary, {changed[0].params['total_topics']:,} topics in total:\n")
        md.append(table(["changed topics", "µs per poll (median)", "ns per changed topic", "spread (µs)",
                         f"vs {int(base.x)} changed"], rows))
    if total:
        base = total[0]
        rows = [[f"{int(r.x):,}", f"{r.med:,.1f}", spread(r), ratio_str(r.med / base.med)] for r in total]
        md.append(f"\nTotal topics vary, {total[0].params['changed']:,} changed topics per poll:\n")
        md.append(table(["total topics", "µs per poll (median)", "spread (µs)",
                         f"vs {int(base.x):,} topics"], rows))
    md.append(
        "\nEach topic holds one presence; a change is one more presence in a topic (picked evenly "
        "across the table); the time is one `poll_diff()` call in counts format, including "
        "rendering the JSON and dropping the batch. The state is restored off the clock "
        "between measurements.\n\n![poll_diff cost](poll_diff.png)")
    plot_poll(ctx, changed, total)
    return "\n".join(md)


def plot_poll(ctx: Ctx, changed: list[Rec], total: list[Rec]) -> None:
    import matplotlib.pyplot as plt

    if not changed and not total:
        return
    # One y scale for both panels, so that the flat right panel reads as flat.
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, recs, xl, title in (
        (a, changed, "changed topics", f"{changed[0].params['total_topics']:,} topics in total" if changed else ""),
        (b, total, "total topics", f"{total[0].params['changed']:,} changed topics" if total else ""),
    ):
        if not recs:
            continue
        xs = [r.x for r in recs]
        ax.errorbar(xs, [r.med for r in recs],
                    yerr=[[r.med - min(r.runs) for r in recs], [max(r.runs) - r.med for r in recs]],
                    marker="o", capsize=3, color="#4c72b0", label="poll_diff (median, min–max)")
        log_axes(ax, xl, "µs per poll", title)
        ax.legend(fontsize=8)
    if changed:
        # A line of slope 1 through the last point: cost proportional to changed topics.
        last = changed[-1]
        xs = [r.x for r in changed]
        a.plot(xs, [last.med * x / last.x for x in xs], ls="--", color="#8c8c8c", lw=1,
               label="proportional to changed")
        a.legend(fontsize=8)
    fig.suptitle("poll_diff follows the changed topics, not the table", fontsize=11)
    save_plot(ctx, fig, "poll_diff.png")


# ---- 8. the host path ------------------------------------------------------------------

HOST_ORDER = ["rust-poll_diff", "rust-ready-event", "python-fast", "node-fast", "python-dict", "node-dict"]
HOST_LABEL = {
    "rust-poll_diff": "Rust `poll_diff()` (the baseline)",
    "rust-ready-event": "Rust `poll_diff()` + messages in the event envelope (`ReadyBatch`)",
    "python-fast": "Python `poll(\"event\")`: each `d.topic`, `d.message`",
    "node-fast": "Node `pollReady({envelope: 'event'})`: each `d.topic`, `d.message`",
    "python-dict": "Python `poll_diff()` + `json.dumps` of each message",
    "node-dict": "Node `pollDiff()` + `JSON.stringify` of each message",
    "rust-list": "Rust `list()` (the baseline)",
    "rust-state-message": "Rust `list()` + the `presence_state` message",
    "python-state-message": "Python `state_message(topic)`",
    "node-state-message": "Node `stateMessage(topic)`",
    "python-list": "Python `list(topic)` (dicts)",
    "node-list": "Node `list(topic)` (objects)",
}


def run_host(ctx: Ctx) -> None:
    s = ctx.sizes
    common = ["--total", s.host_total, "--changed", ",".join(map(str, s.host_changed)),
              "--state-n", s.host_state_n, "--runs", 1]
    have_py, have_node = PY_SCRIPT.exists() and has_python_package(), NODE_SCRIPT.exists() and has_node_package()
    if not have_py:
        ctx.note("Python rows not run: the presence_engine package is not installed in the bench venv")
    if not have_node:
        ctx.note("Node rows not run: the presence-engine package is not installed in bench/node_modules")
    # One run of each driver per round, in turn, so that all three see the same load.
    for _ in range(s.host_runs):
        ctx.run([rust("presence-bench"), "host", *common])
        if have_py:
            ctx.run([venv_python(), PY_SCRIPT, "--host", *common])
        if have_node:
            ctx.run(["node", NODE_SCRIPT, "--host", *common], cwd=BENCH)


def host_key(r: Rec) -> int:
    return HOST_ORDER.index(r.impl) if r.impl in HOST_ORDER else len(HOST_ORDER)


def render_host(ctx: Ctx) -> str:
    res = ctx.results
    diffs = res.select("host_diff")
    states = res.select("host_state")
    if not diffs and not states:
        return ""
    md = []
    if diffs:
        cells = sorted({(r.params["format"], r.params["changed"]) for r in diffs})
        rows = []
        for fmt, k in cells:
            for r in sorted((r for r in diffs if r.params["format"] == fmt and r.params["changed"] == k),
                            key=host_key):
                rows.append([fmt, f"{k:,}", HOST_LABEL.get(r.impl, r.impl), f"{r.med:,.0f}", spread(r),
                             ratio_str(res.ratio(r)) if r.baseline else "1.00x"])
        md.append(f"Per changed topic, {diffs[0].params['total_topics']:,} topics of one presence each, "
                  "the changed ones given one more presence, one poll timed:\n")
        md.append(table(["format", "changed", "path", "ns per changed topic (median)", "spread (ns)",
                         "vs Rust poll_diff"], rows, "lllrrr"))
    if states:
        rows = [[HOST_LABEL.get(r.impl, r.impl), f"{r.med:,.0f}", spread(r),
                 ratio_str(res.ratio(r)) if r.baseline else "1.00x"]
                for r in sorted(states, key=host_key)]
        md.append(f"\nThe state of one phoenix topic of {states[0].params['presences']:,} presences (the standard "
                  "workload's keys, two connections per key, the small meta), what a joining client is sent:\n")
        md.append(table(["path", "µs (median)", "spread (µs)", "vs Rust list()"], rows, "lrrr"))
    md.append(
        "\nA host's job per changed topic: take the topic's name and its message, and write the message to "
        "the topic's sockets. The fast paths hand out both ready, the message rendered by the engine in Rust "
        "(`{\"event\":\"presence_diff\",\"topic\":T,\"seq\":S,\"payload\":P}` here); the dict paths are what "
        "a host did before them, decoding each payload into objects and encoding it again (the web demo did "
        "exactly this). Times are CPU time of the polling thread (Rust, Python) or process (Node): the Rust, "
        "Python and Node drivers run in turn, one run each per round, on two cores shared with other work, "
        "where wall time would also count what else ran meanwhile.")
    return "\n".join(md)


# ---- 5. hot room: counts and list ----------------------------------------------------


def run_hot(ctx: Ctx) -> None:
    s = ctx.sizes
    for _ in range(s.runs):
        ctx.run([rust("presence-bench"), "hot", "--n", s.hot_n, "--calls", s.counts_calls, "--runs", 1])
        ctx.run([C_DRIVER, "hot", "--n", s.hot_n, "--calls", s.counts_calls, "--runs", 1])


def render_hot(ctx: Ctx) -> str:
    res = ctx.results
    rows = []
    what = {
        ("counts_hot", "rust-floor"): "counts: HashMap floor (integer topic id)",
        ("counts_hot", "rust-engine"): "counts: engine from Rust (`Engine::counts`)",
        ("counts_hot", "c-abi"): "counts: engine through the C ABI (`presence_get_counts`)",
        ("list_hot", "naive-serde-phoenix"): "list: plain map + serde_json, Phoenix shape",
        ("list_hot", "rust-engine-phoenix"): "list: engine, phoenix format (small meta)",
        ("list_hot", "rust-engine-counts"): "list: engine, counts format",
    }
    if not res.select("counts_hot") and not res.select("list_hot"):
        return ""
    for bench in ("counts_hot", "list_hot"):
        for r in res.select(bench):
            extra = f" ({r.extra['bytes'] / 1e6:.1f} MB of JSON)" if "bytes" in r.extra else ""
            rows.append([what.get((bench, r.impl), r.impl) + extra, dur(r.med, r.unit),
                         f"{dur(min(r.runs), r.unit)} – {dur(max(r.runs), r.unit)}",
                         str(len(r.runs)),
                         f"{ratio_str(res.ratio(r))} {r.baseline}" if r.baseline else "–"])
    n = ctx.sizes.hot_n
    return table(["call", "time per call (median)", "spread", "runs", "ratio to baseline"], rows, "lrrrl") + (
        f"\n\nOne topic of {n:,} presences ({n // 2:,} users with two tabs), polled once. "
        "`counts` is read in a loop of calls by topic name (the floor reads by integer id, "
        "which is why it is an order of magnitude cheaper: the engine hashes the name twice, once "
        "for the shard and once in the shard's index, and takes the shard lock). `list` renders "
        "the full `presence_state`; the baseline is what a hand-written tracker does: keep "
        "(key, meta) per connection and build the Phoenix map with serde_json on each call. "
        "Phoenix itself needs 130–760 ms to list a topic this size on a machine like this one "
        "(reference/phoenix-presence.md §8; not measured here).")


# ---- 6. fan-out ----------------------------------------------------------------------


def run_fanout(ctx: Ctx) -> None:
    s = ctx.sizes
    ctx.run([rust("presence-bench"), "fanout", "--subscribers", ",".join(map(str, s.fanout_subscribers)),
             "--churn", ",".join(map(str, s.fanout_churn)), "--seconds", s.fanout_seconds])


def render_fanout(ctx: Ctx) -> str:
    res = ctx.results
    recs = res.select("fanout")
    if not recs:
        return ""
    cells: dict[tuple[int, int], dict[str, Rec]] = {}
    for r in recs:
        cells.setdefault((r.params["subscribers"], r.params["churn"]), {})[r.impl] = r
    rows = []
    for (n, churn), d in sorted(cells.items()):
        pe, pc = d.get("per-event-phoenix"), d.get("per-event-counts")
        cc, cp = d.get("coalesced-counts"), d.get("coalesced-phoenix")
        bpe = res.find("fanout_bytes", "per-event-phoenix", pe.params) if pe else None
        bcc = res.find("fanout_bytes", "coalesced-counts", cc.params) if cc else None
        if pe and cc:
            reduction = ratio_str(pe.med / cc.med) if cc.med else "nothing sent"
        else:
            reduction = "–"
        rows.append([
            f"{n:,}", f"{churn:,}",
            si(pe.med) if pe else "–", si(pc.med) if pc else "–",
            si(cp.med) if cp else "–", si(cc.med) if cc else "–",
            reduction,
            f"{si(bpe.med)}B/s → {si(bcc.med)}B/s" if bpe and bcc else "–",
        ])
    plot_fanout(ctx, cells)
    secs = recs[0].params["seconds"] if recs else 0
    counts_recs = [r for r in recs if r.impl.endswith("-counts")]
    empty = sum(r.extra.get("empty_msgs_per_s", 0.0) for r in counts_recs)
    sent = sum(r.med for r in counts_recs)
    if empty:
        empty_note = (f"{100 * empty / sent:.0f}% of the counts-format messages in this run were empty "
                      "diffs (`joins` 0/0 and `leaves` 0/0), which change nothing for a client.")
    else:
        empty_note = ("None of the counts-format messages of this run was an empty diff "
                      "(`joins` 0/0 and `leaves` 0/0).")
    silent = sum(1 for d in cells.values() if "coalesced-counts" in d and d["coalesced-counts"].med == 0)
    silent_note = (f"; in {silent} of the cells no event changed viewers or users, and nothing was "
                   "sent at all (\"nothing sent\")" if silent else "")
    # Where counts format sends least: the share of events that changed viewers or users.
    pc_all = [d["per-event-counts"] for d in cells.values() if "per-event-counts" in d]
    pe_all = [d["per-event-phoenix"] for d in cells.values() if "per-event-phoenix" in d]
    share = (sum(r.med for r in pc_all) / sum(r.med for r in pe_all)
             if pe_all and sum(r.med for r in pe_all) else None)
    share_note = (f" Over all cells, per-event counts format pushed {100 * share:.0f}% of the "
                  "messages per-event phoenix format pushed." if share is not None else "")
    return table(["subscribers", "churn (events/s)", "per event (Phoenix.Presence)", "per event, counts",
                  "coalesced 100 ms, phoenix", "coalesced 100 ms, counts",
                  "reduction (Phoenix → coalesced counts)",
                  "payload bytes pushed (Phoenix → coalesced counts)"], rows, "rrrrrrrl") + (
        f"\n\nMessages pushed per second. A real engine runs {secs} simulated seconds per cell: "
        "each 100 ms window applies churn/10 random joins and leaves (about as many of each; "
        "a join picks a random user of the room, who often has a tab open already) to a room of "
        "about N subscribers, then polls (coalesced), or polls after every event (per event, as "
        "Phoenix.Presence broadcasts one diff per join or leave). Every topic a poll returns is "
        "one message to each subscriber present. Coalescing caps a room at 10 messages per "
        "subscriber per second whatever the churn. Simulated time and a seeded sequence: the "
        "figures are exact and repeat.\n\n"
        "Counts format sends a diff only when a topic's viewers or users change: a join or leave "
        "that changes connections alone (a user opening or closing a second tab, most events "
        "here) sends nothing, so counts format pushes fewer messages than phoenix format even "
        f"per event{silent_note}. Phoenix format lists every connection's meta, so every event "
        "changes what its clients see." + share_note + " " + empty_note +
        "\n\n![fan-out](fanout.png)")


def plot_fanout(ctx: Ctx, cells: dict) -> None:
    import matplotlib.pyplot as plt

    if not cells:
        return
    fig, ax = plt.subplots(figsize=(9, 5.5))
    ns = sorted({n for n, _ in cells})
    cmap = plt.get_cmap("viridis")
    for k, n in enumerate(ns):
        color = cmap(k / max(1, len(ns) - 1) * 0.85)
        churns = sorted(c for m, c in cells if m == n)
        for impl, style, lab in (("per-event-phoenix", "--", "per event (Phoenix.Presence)"),
                                 ("coalesced-counts", "-", "coalesced 100 ms (counts)")):
            pts = [(c, cells[(n, c)][impl].med) for c in churns if impl in cells[(n, c)]]
            pts = [(c, v) for c, v in pts if v > 0]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", ms=4, color=color,
                        label=f"N={n:,}: {lab}")
    log_axes(ax, "churn: joins + leaves per second in the room", "messages pushed per second",
             "Fan-out of one room of N subscribers: per-event diffs vs coalesced polls")
    ax.legend(fontsize=7, ncol=2)
    save_plot(ctx, fig, "fanout.png")


# ---- 7. cluster ------------------------------------------------------------------------


def run_cluster(ctx: Ctx) -> None:
    s = ctx.sizes
    exe = rust("presence-cluster")
    for tick, changes in s.cluster_converge:
        ctx.run([exe, "converge", "--url", ctx.redis_url, "--tick-ms", tick, "--changes", changes])
    for tick, down_after in s.cluster_down:
        ctx.run([exe, "down", "--url", ctx.redis_url, "--tick-ms", tick, "--down-after-ms", down_after,
                 "--reps", s.cluster_down_reps])
    ctx.run([exe, "ingest", "--entries", 32_768, "--reps", 5])
    for fmt in ("counts", "phoenix"):
        ctx.run([exe, "wire", "--url", ctx.redis_url, "--format", fmt, "--presences", s.cluster_presences,
                 "--topics", s.cluster_topics, "--rates", ",".join(map(str, s.cluster_rates)),
                 "--seconds", s.cluster_seconds])


def quantile(xs: list[float], q: float) -> float:
    """Nearest-rank quantile (q in 0..1)."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(-(-q * len(xs) // 1)) - 1))]


def ms_str(v: float) -> str:
    return f"{v / 1000:.2f} s" if v >= 1000 else f"{v:.0f} ms" if v >= 10 else f"{v:.1f} ms"


DOWN_LABEL = {
    "kill-9": "`kill -9` (no goodbye): dropped after `down_after_ms` of silence",
    "stop_redis": "clean: `presence_redis_stop` / engine free (the link's goodbye)",
    "cluster_leave": "clean: the host publishes `presence_cluster_leave` itself",
}


def render_cluster(ctx: Ctx) -> str:
    res = ctx.results
    conv = sorted(res.select("cluster_converge"), key=lambda r: -r.params["tick_ms"])
    down = res.select("cluster_down")
    wire = res.select("cluster_wire")
    ingest = res.select("cluster_ingest")
    if not conv and not down and not wire and not ingest:
        return ""
    md = ["Three engines in three OS processes (`presence-cluster node`, a stand-in for a "
          "server) share presence over the local redis-server with the built-in Redis link "
          "(`presence_redis_start`). Times are taken in the node processes on one clock "
          "(`CLOCK_MONOTONIC`); a node notices new counts by reading `counts()` every 0.2 ms."]
    if conv:
        rows = []
        for r in conv:
            tick = r.params["tick_ms"]
            first = r.extra.get("first_ms") or []
            gap = [b - f for b, f in zip(r.runs, first)]
            rows.append([f"{tick} ms", ms_str(r.med), ms_str(quantile(r.runs, 0.9)), ms_str(max(r.runs)),
                         f"{median(gap):.2f} ms" if gap else "–", f"{r.med / tick:.2f}", str(len(r.runs))])
        md += ["\n**Convergence**: a track or untrack on node a, until nodes b and c both report the "
               "new counts.\n",
               table(["tick_ms", "median", "p90", "max", "b and c apart by (median)", "median / tick",
                      "changes"], rows),
               "\nEach change (two tracks for one untrack, one topic, some anonymous) waits a random "
               "fraction of a tick after the previous one converged, so changes fall anywhere in a's "
               "tick: a change waits for a's next tick (half a tick on average, about a whole one at "
               "worst), then one Redis hop, and the two receivers apply the same message within a "
               "fraction of a millisecond of each other. The tick is the latency knob: 50 ms ticks "
               "publish 20 messages a second per node instead of 4."]
    if down:
        order = list(DOWN_LABEL)
        rows = []
        for r in sorted(down, key=lambda r: (-r.params["down_after_ms"], order.index(r.impl)
                                             if r.impl in order else 9)):
            da = r.params["down_after_ms"]
            excess = f"{r.med - da:+.0f} ms" if r.impl == "kill-9" else "–"
            rows.append([f"{r.params['tick_ms']} ms / {da:,} ms", DOWN_LABEL.get(r.impl, r.impl),
                         ms_str(r.med), f"{ms_str(min(r.runs))} – {ms_str(max(r.runs))}", excess,
                         str(len(r.runs))])
        md += ["\n**A node goes away**: node c (three presences, one of its users also on a) goes "
               "down; the time until a and b both report the counts without it.\n",
               table(["tick_ms / down_after_ms", "how c goes", "time to drop (median)", "min – max",
                      "vs down_after", "runs"], rows, "llrrrr"),
               "\nA killed node is dropped once it has been silent for `down_after_ms`, counted from "
               "its last message (its last tick), and noticed at a survivor's tick: about "
               "`down_after_ms` ± one tick. The kill falls at a random point of c's tick. "
               "`presence_redis_stop` (and freeing the engine) publishes the goodbye from the "
               "link's thread, which notices the stop when its wait for the next tick ends: up to "
               "one tick. A host on its own bus that publishes `presence_cluster_leave` is seen "
               "within a millisecond. Phoenix.Tracker's default `down_period` is 30 s."]
    for r in ingest:
        md.append(f"\n**Merging a snapshot** (phoenix format, in one process): a node's first snapshot "
                  f"of {r.params['entries']:,} entries of one topic, ingested by an engine holding "
                  f"{r.params['local_entries']:,} local entries of that topic, all parts with their HMAC "
                  f"checks: {ms_str(r.med)} median ({ms_str(min(r.runs))} – {ms_str(max(r.runs))}, "
                  f"{len(r.runs)} runs).")
    if wire:
        md.append(render_cluster_wire(ctx, wire))
    plot_cluster(ctx, conv, wire)
    md.append("\n![cluster](cluster.png)")
    return "\n".join(md)


def render_cluster_wire(ctx: Ctx, wire: list[Rec]) -> str:
    res = ctx.results
    cells: dict[tuple[str, int], dict[str, Rec]] = {}
    for r in wire:
        cells.setdefault((r.params["format"], r.params["rate"]), {})[r.impl.split("-")[0]] = r
    rows = []
    params = wire[0].params
    for (fmt, rate), d in sorted(cells.items()):
        eng, pe = d.get("engine"), d.get("per")
        if not eng or not pe:
            continue
        msgs = median(eng.extra["msgs_per_s"])
        snap = median(eng.extra["snapshot_bytes_per_s"])
        total = eng.med + snap
        pe_msgs = median(pe.extra["msgs_per_s"])
        rows.append([
            fmt, f"{rate:,}", f"{msgs:.2f}", f"{si(eng.med)}B/s", f"{si(snap)}B/s", f"{si(total)}B/s",
            f"{si(pe_msgs)}", f"{si(pe.med)}B/s",
            ratio_str(pe_msgs / msgs) if msgs else "–", ratio_str(pe.med / total) if total else "–",
        ])
    snap_counts = next((median(d["engine"].extra["snapshot_bytes"]) for (f, _), d in cells.items()
                        if f == "counts" and "engine" in d), None)
    snap_phx = next((median(d["engine"].extra["snapshot_bytes"]) for (f, _), d in cells.items()
                     if f == "phoenix" and "engine" in d), None)
    in_window = sum(r.extra.get("snapshots_in_window", 0) + r.extra.get("snapshot_requests_in_window", 0)
                    for r in wire if r.impl.startswith("engine"))
    runs = max(len(r.runs) for r in wire)
    # Bytes per event at the highest rate: the engine's deltas against per-event JSON.
    notes = []
    for fmt in ("counts", "phoenix"):
        top = max((rate for f, rate in cells if f == fmt and {"engine", "per"} <= set(cells[(f, rate)])),
                  default=None)
        if top is None:
            continue
        eng, pe = cells[(fmt, top)]["engine"], cells[(fmt, top)]["per"]
        ev = median(eng.extra["events_per_s"])
        if ev:
            notes.append(f"{eng.med / ev:.1f} bytes per event in {fmt} format at {top:,} events/s "
                         f"(per-event JSON: {pe.med / ev:.0f})")
    per_event_note = f" The deltas came to {' and '.join(notes)}." if notes else ""
    # Where per-event replication publishes fewer bytes than the engine (its fixed part).
    cheaper: dict[str, list[int]] = {}
    for (fmt, rate), d in sorted(cells.items()):
        eng, pe = d.get("engine"), d.get("per")
        if eng and pe and pe.med < eng.med + median(eng.extra["snapshot_bytes_per_s"]):
            more_msgs = median(pe.extra["msgs_per_s"]) > median(eng.extra["msgs_per_s"])
            cheaper.setdefault(fmt, []).append((rate, more_msgs))
    crossover = "".join(
        f" In {fmt} format at {', '.join(f'{r:,}' for r, _ in rates)} joins+leaves per second, "
        "per-event replication published fewer bytes than the engine with its snapshots"
        + (" (though still more messages)." if all(m for _, m in rates) else ".")
        for fmt, rates in cheaper.items())
    secs = ctx.sizes.cluster_seconds
    sizes = ", ".join(x for x in (
        f"{si(snap_counts)}B in counts format" if snap_counts else "",
        f"{si(snap_phx)}B in phoenix format" if snap_phx else "") if x)
    return "\n".join([
        f"\n**Wire cost**: what each node publishes when it holds about {params['presences']:,} "
        f"presences over the same {params['topics']:,} topics as the others and applies the given "
        f"joins+leaves per second ({secs} s per rate, default 250 ms tick; medians over the "
        f"{runs} nodes).\n",
        table(["format", "churn per node (joins+leaves/s)", "engine msgs/s", "engine deltas+heartbeats",
               "+ snapshots every 30 s", "engine total", "per-event msgs/s", "per-event bytes",
               "msgs: per-event / engine", "bytes: per-event / engine total"], rows, "lrrrrrrrrr"),
        "\nEngine figures are the node's own `messages_sent` and `bytes_sent` "
        "(`presence_cluster_get_stats`): one delta (or heartbeat) per tick, split only when it "
        "would exceed `max_message_bytes`. Periodic snapshots are switched off during the "
        "measurement and added back as the size of a full snapshot of what the node holds "
        f"({sizes}) per 30 s (the default `snapshot_interval_ms`); no snapshot or snapshot "
        f"request was sent during the measurements ({in_window:.0f} seen). Per-event replication "
        "is computed from the same run's events: one message per join or leave, the JSON "
        "`{\"event\":\"join\",\"topic\":\"t417\",\"conn\":\"a:10233\",\"user\":\"u2810\"}` with "
        "the real topic, connection and user (null when anonymous), plus in phoenix format the "
        "meta with an 11-character `phx_ref` — what servers that hand-roll presence over Redis "
        "pub/sub publish. Counts format sends no user id at all (keyed 8-byte hashes of users "
        "that appeared or left) and no meta. Both columns count payload bytes only; every "
        "message also costs a `PUBLISH` (channel name and framing, and a Redis round trip), so "
        "the message ratio matters as much as the byte ratio. Phoenix.Tracker batches its deltas "
        "into one broadcast per `broadcast_period` (1.5 s by default), but every join and leave "
        "travels in them with its meta, so its bytes grow with the events like the per-event "
        "column (not measured here).\n\n"
        "The engine's traffic is a fixed part (a heartbeat per tick and the periodic snapshot, "
        "which is what repairs a node that missed a message) plus deltas: per topic changed in "
        "the tick, its counts and the hashes of the users that appeared on or left the node "
        "(counts format) or the entries that joined or left (phoenix format), in one message "
        "per tick." + per_event_note + crossover,
    ])


def plot_cluster(ctx: Ctx, conv: list[Rec], wire: list[Rec]) -> None:
    import matplotlib.pyplot as plt

    if not conv and not wire:
        return
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    for r, color in zip(conv, ("#4c72b0", "#55a868", "#c44e52")):
        xs = sorted(r.runs)
        a.step(xs, [(k + 1) / len(xs) for k in range(len(xs))], where="post", color=color,
               label=f"tick {r.params['tick_ms']} ms ({len(xs)} changes)")
        a.axvline(r.params["tick_ms"], color=color, ls=":", lw=1)
    a.set_xlabel("ms from a track on node a until b and c both report it")
    a.set_ylabel("fraction of changes")
    a.set_title("Convergence over Redis (dotted: one tick)", fontsize=10)
    a.grid(alpha=0.3)
    if conv:
        a.legend(fontsize=8, loc="lower right")
    styles = {("engine", "counts"): ("-", "#4c72b0", "engine, counts (incl. snapshots)"),
              ("engine", "phoenix"): ("-", "#c44e52", "engine, phoenix (incl. snapshots)"),
              ("per", "counts"): ("--", "#4c72b0", "per-event JSON, counts fields"),
              ("per", "phoenix"): ("--", "#c44e52", "per-event JSON, with meta")}
    for (kind, fmt), (ls, color, lab) in styles.items():
        recs = sorted((r for r in wire if r.impl.startswith(kind) and r.params["format"] == fmt),
                      key=lambda r: r.params["rate"])
        if not recs:
            continue
        ys = [r.med + (median(r.extra["snapshot_bytes_per_s"]) if kind == "engine" else 0) for r in recs]
        b.plot([r.params["rate"] for r in recs], ys, ls, marker="o", ms=4, color=color, label=lab)
    log_axes(b, "joins + leaves per second on each node", "bytes published per second per node",
             "Replication traffic per node")
    if wire:
        b.legend(fontsize=8)
    save_plot(ctx, fig, "cluster.png")


# ---- the registry ----------------------------------------------------------------------

SUITES: list[Suite] = [
    Suite("throughput", "1. Track+untrack throughput", run_throughput, render_throughput, needs_redis=True),
    Suite("python", "Python package", run_python, lambda ctx: ""),
    Suite("node", "Node package", run_node, lambda ctx: ""),
    Suite("threads", "2. Scaling with threads", run_threads, render_threads),
    Suite("memory", "3. Memory per presence", run_memory, render_memory),
    Suite("poll", "4. poll_diff cost", run_poll, render_poll),
    Suite("hot", "5. counts and list on the hot room", run_hot, render_hot),
    Suite("fanout", "6. Fan-out: messages pushed for a churning room", run_fanout, render_fanout),
    Suite("cluster", "7. Cluster: three nodes over Redis", run_cluster, render_cluster, needs_redis=True),
    Suite("host", "8. The host path: ready-to-send messages in Python and Node", run_host, render_host),
]


# --------------------------------------------------------------------------------------
# Targets (the summary table)


@dataclass
class Target:
    what: str
    goal: str
    value: float | None
    shown: str
    ok: bool | str | None  # met, missed, no target, or why it could not be judged


def targets(ctx: Ctx) -> list[Target]:
    res, s = ctx.results, ctx.sizes
    std = {"n": s.n, "topics": s.topics}
    out: list[Target] = []

    def tp(impl: str, params: dict | None = None) -> Rec | None:
        return res.find("track_untrack", impl, params or std)

    def add(what: str, goal: str, value: float | None, shown: str, ok: bool | str | None) -> None:
        out.append(Target(what, goal, value, shown, ok))

    floor, cabi, eng = tp("rust-floor"), tp("c-abi"), tp("rust-engine")
    if floor and cabi:
        x = floor.med / cabi.med
        add("C ABI vs the HashMap floor (time per operation)", "≤ 2x",
            x, f"{ratio_str(x)} ({si(cabi.med)} vs {si(floor.med)} ops/s)", x <= 2)
    if floor and eng:
        x = floor.med / eng.med
        add("Rust engine vs the HashMap floor (time per operation)", "(no target)",
            x, f"{ratio_str(x)} ({si(eng.med)} vs {si(floor.med)} ops/s)", None)
    if cabi and eng:
        x = eng.med / cabi.med
        add("C ABI vs the engine called from Rust (time per operation)", "(no target)",
            x, f"{ratio_str(x)} ({si(cabi.med)} vs {si(eng.med)} ops/s)", None)
    t1 = res.find("threads", "engine-1-thread", std)
    f1 = res.find("threads", "floor-1-thread", std)
    f2 = res.find("threads", "floor-2-threads-independent", std)
    control = f2.med / f1.med if f1 and f2 else None
    for kind in ("disjoint", "shared"):
        t2 = res.find("threads", f"engine-2-threads-{kind}", std)
        if t1 and t2:
            x = t2.med / t1.med
            ok: bool | str | None = None
            if kind == "disjoint":
                ok = x >= 1.6
                if not ok and control is not None and control < 1.6:
                    # The machine itself did not give a second core's worth of time.
                    ok = f"not measurable in this run (the control reached {ratio_str(control)})"
            add(f"2 threads vs 1, {kind} topics", "≥ 1.6x" if kind == "disjoint" else "(no target)",
                x, f"{ratio_str(x)} ({si(t2.med)} vs {si(t1.med)} ops/s)", ok)
    if control is not None:
        add("control: 2 threads vs 1 with nothing shared (what the machine allowed)", "(no target)",
            control, f"{ratio_str(control)} ({si(f2.med)} vs {si(f1.med)} ops/s)", None)
    pyd = tp("python-dict")
    for impl, goal in (("python-engine-single", 2.0), ("python-engine-bulk", 5.0)):
        r = tp(impl)
        if r and pyd:
            x = r.med / pyd.med
            add(f"Python {impl.rsplit('-', 1)[1]} calls vs the pure-Python dict tracker", f"≥ {goal:g}x",
                x, f"{ratio_str(x)} ({si(r.med)} vs {si(pyd.med)} ops/s)", x >= goal)
    node, jsm = tp("node-engine"), tp("js-map")
    if node and jsm:
        x = node.med / jsm.med
        add("Node vs the JS Map tracker", "≥ 1.5x", x, f"{ratio_str(x)} ({si(node.med)} vs {si(jsm.med)} ops/s)",
            x >= 1.5)
    if eng:
        for pat in ("hincrby", "sets"):
            rt = next((r for r in res.select("track_untrack") if r.impl == f"redis-{pat}"), None)
            pl = tp(f"redis-{pat}-pipelined")
            if rt:
                x = eng.med / rt.med
                pipe = f"; pipelined: {ratio_str(eng.med / pl.med)} ({si(pl.med)} ops/s)" if pl else ""
                add(f"Rust engine vs Redis {pat.upper() if pat == 'hincrby' else 'SADD/SREM+SCARD'}, "
                    "one round trip per event", "≥ 20x", x,
                    f"{ratio_str(x)} ({si(eng.med)} vs {si(rt.med)} ops/s){pipe}", x >= 20)
    mem = res.find("memory", "rust-engine", std)
    if mem:
        est = mem.extra.get("stats_bytes")
        add("Memory per presence, counts format", "≤ 100 B", mem.med,
            f"{mem.med:.1f} B" + (f" (stats().bytes says {median(est):.1f} B)" if est else ""), mem.med <= 100)
    for impl, name in (("rust-engine", "Rust"), ("c-abi", "C ABI")):
        r = res.find("counts_hot", impl)
        if r:
            add(f"`counts` on the hot room ({si(s.hot_n)} presences), {name}", "< 100 ns", r.med,
                f"{r.med:.1f} ns", r.med < 100)
    for r in sorted(res.select("host_diff"), key=lambda r: (r.params["format"], r.params["changed"], host_key(r))):
        if r.impl not in ("python-fast", "node-fast"):
            continue
        x = res.ratio(r)
        base = res.base_of(r)
        if x is not None and base is not None:
            add(f"{'Python' if r.impl == 'python-fast' else 'Node'} fast path vs Rust `poll_diff`, per changed "
                f"topic ({r.params['format']}, {r.params['changed']:,} changed)", "≤ 2x", x,
                f"{ratio_str(x)} ({r.med:,.0f} vs {base.med:,.0f} ns)", x <= 2)
    st = res.find("host_state", "python-state-message")
    if st and res.ratio(st) is not None:
        x = res.ratio(st)
        add(f"Python state of a {si(st.params['presences'])}-presence phoenix topic vs Rust `list()`", "< 2x", x,
            f"{ratio_str(x)} ({st.med:,.0f} vs {res.base_of(st).med:,.0f} µs)", x < 2)
    return out


def render_targets(ctx: Ctx) -> str:
    rows = []
    for t in targets(ctx):
        if isinstance(t.ok, str):
            verdict = t.ok
        else:
            verdict = "–" if t.ok is None else ("met" if t.ok else "**missed**")
        rows.append([t.what, t.goal, t.shown, verdict])
    return table(["target (ratios measured in the same run)", "goal", "measured (medians)", "verdict"],
                 rows, "lllc")


# --------------------------------------------------------------------------------------
# Machine and versions


def cmd_out(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            return "not found"
        return (p.stdout or p.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "not found"


def machine() -> list[tuple[str, str]]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError):
        pass
    redis = cmd_out(["redis-server", "--version"])
    m = re.search(r"v=(\S+)", redis)
    node = cmd_out(["node", "--version"])
    return [
        ("CPU", f"{model}, {os.cpu_count()} cores visible (shared with other work)"),
        ("memory", mem),
        ("OS", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("rustc", cmd_out(["rustc", "--version"])),
        ("C compiler", cmd_out(["gcc", "--version"])),
        ("Python", platform.python_version()),
        ("Node", node),
        ("redis-server", m.group(1) if m else redis),
        ("presence-engine", engine_version()),
    ]


def engine_version() -> str:
    try:
        text = (ROOT / "Cargo.toml").read_text()
        v = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M).group(1)
    except (OSError, AttributeError):
        v = "?"
    rev = cmd_out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    if rev == "not found":
        return f"{v} (not a git checkout)"
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src", "Cargo.toml"],
                           capture_output=True, text=True).stdout.strip()
    return f"{v} (git {rev}{', with uncommitted changes to src/' if dirty else ''})"


# --------------------------------------------------------------------------------------
# Report


def render(ctx: Ctx, ran: list[Suite], started: float) -> str:
    s = ctx.sizes
    elapsed = time.monotonic() - started
    mode = "quick (`make bench-quick`)" if ctx.quick else "full (`make bench`)"
    md = [
        "# Benchmarks",
        "",
        f"Generated by `{'make bench-quick' if ctx.quick else 'make bench'}` (bench/run.py) on "
        f"{dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; the benchmarks took "
        f"{elapsed / 60:.1f} min. Mode: {mode}. Do not edit: rerun the command.",
        "",
        "Every figure is the median of several runs (the run count is shown), beside its ratio to a "
        "baseline measured in the same run of this command. The machine has two shared, noisy "
        "cores: the spread columns show how much single runs moved.",
        "",
        table(["machine", ""], [[k, v] for k, v in machine()], "ll"),
        "",
        f"Standard workload: N = {s.n:,} connections over T = {s.topics:,} topics; connection i is "
        f"user i/2 (key `u{{i/2}}`, two tabs per user) in topic `t{{(i/2) % T}}`. Hot room: "
        f"{s.hot_n:,} presences in one topic.",
        "",
        "## Targets",
        "",
        render_targets(ctx),
    ]
    for suite in SUITES:
        body = suite.render(ctx)
        notes = ctx.results.notes.get(suite.name, [])
        if not body and not notes:
            continue
        if body:
            md += ["", f"## {suite.title}", "", body]
        for note in notes:
            md += ["", f"*{suite.title}: {note}.*"]
    md += [
        "",
        "## How to rerun",
        "",
        "`make bench` (the measurements take 5–9 minutes on two cores, about 2.5 of them in the "
        "cluster suite, plus the first build of the drivers and packages) or `make bench-quick` "
        "(about a minute of measurements: N = 100k, fewer runs and shorter cluster runs). Raw JSON lines of the last run are in `bench/results/` (not committed). "
        "`make test-bench` checks that every tracker compared here gives the same counts on a small "
        "workload, and that three node processes over Redis reach them exactly in both formats; it "
        "asserts no timing.",
        "",
    ]
    return "\n".join(md)


# --------------------------------------------------------------------------------------
# The correctness check (make test-bench)


def expected_counts(n: int, topics: int, anon_every: int) -> dict[str, dict[str, list[int]]]:
    """The counts of each phase of the check, from the workload definition alone."""
    names = [f"t{t}" for t in range(min(topics, max(1, (n + 1) // 2)))]

    def state(conns: Iterable[int]) -> dict[str, list[int]]:
        per: dict[str, tuple[set[int], set[int]]] = {t: (set(), set()) for t in names}
        viewers = {t: 0 for t in names}
        for i in conns:
            t = names[(i // 2) % topics]
            per[t][0].add(i)
            if anon_every and i % anon_every == anon_every - 1:
                viewers[t] += 1
            else:
                per[t][1].add(i // 2)
        return {t: [viewers[t], len(per[t][1]), len(per[t][0])] for t in names}

    return {
        "tracked": state(range(n)),
        "partial": state(i for i in range(n) if i % 3 != 0),
        "empty": state(()),
    }


def run_check(args: argparse.Namespace) -> int:
    n, topics, anon = 2001, 7, 5
    expected = expected_counts(n, topics, anon)
    passed = failed = 0
    seen: dict[str, set[str]] = {}
    TARGET.mkdir(parents=True, exist_ok=True)

    def compare(lines: list[dict]) -> None:
        nonlocal passed, failed
        for obj in lines:
            if obj.get("check") != "counts":
                continue
            impl, phase = obj["impl"], obj["phase"]
            seen.setdefault(impl, set()).add(phase)
            want = expected[phase]
            bad = []
            got_topics = obj.get("topics") or {}
            if set(got_topics) != set(want):
                bad.append(f"topics {sorted(got_topics)} != {sorted(want)}")
            for t, got in got_topics.items():
                for field_name, g, w in zip(("viewers", "users", "connections"), got, want.get(t, [None] * 3)):
                    if g is not None and g != w:
                        bad.append(f"{t}.{field_name} = {g}, expected {w}")
            where = f" (node {obj['node']}, {obj['step']})" if "node" in obj else ""
            if bad:
                failed += 1
                print(f"FAIL {impl} {phase}{where}: " + "; ".join(bad[:5]))
            else:
                passed += 1
                print(f"ok   {impl} {phase}{where}")

    def drive(cmd: list, cwd: Path | None = None) -> list[dict]:
        nonlocal failed
        log("$", " ".join(map(str, cmd)))
        p = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, text=True, cwd=cwd)
        if p.returncode != 0:
            failed += 1
            print(f"FAIL {Path(str(cmd[0])).name} exited with {p.returncode}")
        return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]

    common = ["--n", n, "--topics", topics, "--anonymous-every", anon]
    with RedisServer() as redis:
        compare(drive([rust("presence-bench"), "check", *common, "--url", redis.url]))
        # Three node processes over the same redis-server, in both formats: every node must
        # reach the exact counts of each phase (join, kill -9, restart, clean leave, untrack).
        compare(drive([rust("presence-cluster"), "check", *common, "--url", redis.url]))
    compare(drive([C_DRIVER, "check", *common]))
    required = ["rust-engine", "rust-engine-poll", "rust-floor", "c-abi", "redis-hincrby",
                "redis-hincrby-pipelined", "redis-sets", "redis-sets-pipelined",
                "cluster-counts", "cluster-phoenix"]
    for impl in required:
        if seen.get(impl) != set(expected):
            failed += 1
            print(f"FAIL {impl}: phases seen {sorted(seen.get(impl, []))}, expected {sorted(expected)}")
    # The Python and Node scripts check themselves against their own trackers; a missing
    # package is a failure here, not a skip, so the check cannot pass vacuously.
    if PY_SCRIPT.exists() and has_python_package():
        p = subprocess.run([venv_python(), PY_SCRIPT, "--check", "--n", "2000", "--topics", "20"],
                           stdout=subprocess.DEVNULL)
        passed, failed = (passed + 1, failed) if p.returncode == 0 else (passed, failed + 1)
        print(("ok  " if p.returncode == 0 else "FAIL") + f" {PY_SCRIPT.name} --check")
    else:
        failed += 1
        print(f"FAIL {PY_SCRIPT.name} --check: the presence_engine package is not installed (make bench-packages)")
    if NODE_SCRIPT.exists() and has_node_package():
        p = subprocess.run(["node", NODE_SCRIPT, "--check", "--n", "2000", "--topics", "20"],
                           stdout=subprocess.DEVNULL, cwd=BENCH)
        passed, failed = (passed + 1, failed) if p.returncode == 0 else (passed, failed + 1)
        print(("ok  " if p.returncode == 0 else "FAIL") + f" {NODE_SCRIPT.name} --check")
    else:
        failed += 1
        print(f"FAIL {NODE_SCRIPT.name} --check: the presence-engine package is not installed (make bench-packages)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


# --------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller workload, fewer runs")
    ap.add_argument("--only", help="comma-separated suites to run: " + ",".join(s.name for s in SUITES))
    ap.add_argument("--out", type=Path, default=BENCH, help="where BENCHMARKS.md and the plots go")
    ap.add_argument("--check", action="store_true", help="the correctness check of make test-bench")
    args = ap.parse_args()
    if args.check:
        return run_check(args)

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
    for path in (rust("presence-bench"), rust("presence-mem"), rust("presence-cluster"), C_DRIVER):
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
    md = render(ctx, suites, started)
    (args.out / "BENCHMARKS.md").write_text(md)
    log(f"wrote {args.out / 'BENCHMARKS.md'} (raw lines: {raw})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
