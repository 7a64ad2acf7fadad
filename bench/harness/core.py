"""Paths, workload sizes, the records of a run, the run context and the Suite type."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

BENCH = Path(__file__).resolve().parent.parent
ROOT = BENCH.parent
TARGET = Path(os.environ.get("BENCH_TARGET", ROOT / "target" / "bench"))
RUST_BIN = Path(os.environ.get("BENCH_RUST_BIN", TARGET / "cargo" / "release"))
C_DRIVER = TARGET / "presence_bench_c"
PY_SCRIPT = BENCH / "python_bench.py"
NODE_SCRIPT = BENCH / "node_bench.mjs"
PY_INTEGRATIONS = BENCH / "python_integrations.py"
NODE_INTEGRATIONS = BENCH / "node_integrations.mjs"
# run.py runs in the bench venv, where the presence_engine package is installed.
PYTHON = sys.executable


def log(*args: object) -> None:
    print("[bench]", *args, file=sys.stderr, flush=True)


@dataclass
class Sizes:
    """Workload sizes and run counts of one mode."""

    n: int = 1_000_000
    topics: int = 1_000
    hot_n: int = 100_000
    runs: int = 7
    slow_runs: int = 5
    counts_calls: int = 2_000_000
    # batch reads: topics held, topics asked per call, calls per run
    many_held: tuple[int, ...] = (1_000, 100_000, 1_000_000)
    many_ask: int = 100
    many_calls: int = 20_000
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
    # A/B suite: calls per run of the Python side (the Rust side uses n)
    ab_py_n: int = 200_000
    # integrations: topics, sockets per topic (Python's are in-process, Node's real
    # loopback sockets), timed rounds per script run, script runs
    integ_topics: int = 1_000
    integ_py_sockets: int = 4
    integ_node_sockets: int = 2
    integ_rounds: int = 7
    integ_runs: int = 3
    # lifecycle: presences held (each with a time to live), expiries per second of engine
    # time, seconds of it per run, runs
    ttl_held: tuple[int, ...] = (100_000, 1_000_000)
    ttl_rate: int = 1_000
    ttl_seconds: int = 10
    ttl_runs: int = 7


FULL = Sizes()
QUICK = Sizes(
    n=100_000,
    runs=3,
    slow_runs=2,
    counts_calls=300_000,
    many_held=(1_000, 100_000),
    many_calls=2_000,
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
    ab_py_n=50_000,
    integ_topics=200,
    integ_runs=1,
    ttl_held=(10_000, 100_000),
    ttl_seconds=3,
    ttl_runs=3,
)


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


def rust(name: str) -> Path:
    return RUST_BIN / name


def has_python_package() -> bool:
    p = subprocess.run([PYTHON, "-c", "import presence_engine"], capture_output=True)
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


def has_python_integrations() -> bool:
    """The package and what python_integrations.py drives it with."""
    p = subprocess.run([PYTHON, "-c", "import presence_engine, socketio, starlette"], capture_output=True)
    return p.returncode == 0


def has_node_integrations() -> bool:
    """What node_integrations.mjs requires from bindings/node: the binding and the dev
    dependencies that mk/node.mk's `npm ci` installs there."""
    if shutil.which("node") is None:
        return False
    script = ("const r = require('node:module').createRequire(process.argv[1]);"
              "for (const m of ['./index.js', 'socket.io', 'socket.io-client', 'ws']) r(m)")
    p = subprocess.run(["node", "-e", script, str(ROOT / "bindings" / "node" / "package.json")],
                       capture_output=True)
    return p.returncode == 0


@dataclass
class Suite:
    """One benchmark suite: `run` measures (through ctx.run), `render` returns markdown
    and may save plots. `needs_redis` starts the shared redis-server for it."""

    name: str
    title: str
    run: Callable[[Ctx], None]
    render: Callable[[Ctx], str]
    needs_redis: bool = False
