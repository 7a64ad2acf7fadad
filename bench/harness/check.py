"""The correctness check of make test-bench: every tracker gives the counts the workload
defines (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Iterable

from .core import (BENCH, C_DRIVER, NODE_INTEGRATIONS, NODE_SCRIPT, PY_INTEGRATIONS, PY_SCRIPT, PYTHON, TARGET,
                   has_node_integrations, has_node_package, has_python_integrations, has_python_package, log, rust)
from .redis_server import RedisServer
from .suites.ab import PY_AB


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


def run_check() -> int:
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
    # Batch reads on tiny sizes: the driver asserts the batch reads what single reads read.
    many = drive([rust("presence-bench"), "many", "--held", "10,1000", "--ask", 5, "--calls", 1, "--runs", 1])
    sides = {(o["params"]["held"], o["impl"]) for o in many if o.get("bench") == "counts_many"}
    ok = sides == {(h, i) for h in (10, 1000) for i in ("rust-counts-many", "rust-counts-loop")}
    passed, failed = (passed + 1, failed) if ok else (passed, failed + 1)
    print(("ok  " if ok else "FAIL") + " counts_many against a loop of counts")
    # The leave grace's reload room, small: no diff with the grace, some without.
    grace = [o for o in drive([rust("presence-grace"), "check"]) if o.get("check") == "grace"]
    for fmt in ("Counts", "Phoenix"):
        ok = any(o["format"] == fmt and o["messages_with"] == 0 < o["messages_without"] for o in grace)
        passed, failed = (passed + 1, failed) if ok else (passed, failed + 1)
        print(("ok  " if ok else "FAIL") + f" grace reload room ({fmt.lower()})")
    # The A/B drivers on tiny sizes: each comparison prints both of its sides.
    ab = drive([rust("presence-ab"), "table", "--n", 2000, "--runs", 1])
    ab += drive([rust("presence-ab"), "populate", "--n", 1 << 16, "--runs", 1])
    if has_python_package():
        ab += drive([PYTHON, PY_AB, "--n", 1000, "--runs", 1])
    sides = {(o["params"]["piece"], o["params"]["op"], o["impl"]) for o in ab if o.get("bench") == "ab"}
    for piece, op in [("table", "insert"), ("table", "lookup"), ("table", "remove"), ("table", "bytes"),
                      ("populate", "fill"), ("py-meta", "track"),
                      ("py-counts", "build+read")]:
        ok = {(piece, op, "hand"), (piece, op, "crate")} <= sides
        passed, failed = (passed + 1, failed) if ok else (passed, failed + 1)
        print(("ok  " if ok else "FAIL") + f" A/B {piece} {op}")
    # The lifecycle driver asserts what expired (every deadline passed, no other) and what
    # the untrack baseline left, on tiny sizes.
    life = drive([rust("presence-lifecycle"), "expiry", "--held", "2000,4000", "--seconds", 1, "--topics", 7,
                  "--runs", 1])
    life += drive([rust("presence-lifecycle"), "memory", "--n", 2000, "--topics", 7, "--runs", 1])
    sides = {(o["bench"], o["impl"]) for o in life}
    for bench, impl in [("lifecycle", "expiry"), ("lifecycle", "untrack"), ("lifecycle", "touch"),
                        ("lifecycle_memory", "ttl"), ("lifecycle_memory", "no-ttl")]:
        ok = (bench, impl) in sides
        passed, failed = (passed + 1, failed) if ok else (passed, failed + 1)
        print(("ok  " if ok else "FAIL") + f" {bench} {impl}")
    # The Python and Node scripts check themselves against their own trackers; a missing
    # package is a failure here, not a skip, so the check cannot pass vacuously.
    if PY_SCRIPT.exists() and has_python_package():
        p = subprocess.run([PYTHON, PY_SCRIPT, "--check", "--n", "2000", "--topics", "20"],
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
    # The integrations suite's scripts: every socket of every path is handed every diff.
    for script, cmd, ready, missing in (
        (PY_INTEGRATIONS, [PYTHON, PY_INTEGRATIONS, "--check"], has_python_integrations,
         "presence_engine, python-socketio or starlette is not installed in the bench venv (make bench-packages)"),
        (NODE_INTEGRATIONS, ["node", NODE_INTEGRATIONS, "--check"], has_node_integrations,
         "bindings/node's dev dependencies are not installed (make bench-packages)"),
    ):
        if not ready():
            failed += 1
            print(f"FAIL {script.name} --check: {missing}")
            continue
        log("$", " ".join(map(str, cmd)))
        p = subprocess.run([str(c) for c in cmd], stdout=subprocess.DEVNULL, cwd=BENCH)
        passed, failed = (passed + 1, failed) if p.returncode == 0 else (passed, failed + 1)
        print(("ok  " if p.returncode == 0 else "FAIL") + f" {script.name} --check")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
