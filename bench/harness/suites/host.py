"""8. The host path: ready-to-send messages in Python and Node against Rust."""

from __future__ import annotations

from ..core import BENCH, NODE_SCRIPT, PY_SCRIPT, PYTHON, Ctx, Rec, has_node_package, has_python_package, rust
from ..tables import ratio_str, spread, table

HOST_ORDER = ["rust-poll_diff", "rust-ready-event", "python-fast", "node-fast", "python-diffs", "node-diffs",
              "python-dict", "node-dict"]
HOST_LABEL = {
    "rust-poll_diff": "Rust `poll_diff()` (the baseline)",
    "rust-ready-event": "Rust `poll_ready(event)` into a reused `ReadyBatch`",
    "python-fast": "Python `poll(\"event\")`: each `(topic, message)` of `batch.pairs()`",
    "node-fast": "Node `pollBatch({envelope: 'event'})`: each `batch.topic(i)`, `batch.message(i)`",
    "python-diffs": "Python `poll(\"event\")`: each Diff's `d.topic`, `d.message`",
    "node-diffs": "Node `pollReady({envelope: 'event'})`: each Diff's `d.topic`, `d.message`",
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
            ctx.run([PYTHON, PY_SCRIPT, "--host", *common])
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
        "(`{\"event\":\"presence_diff\",\"topic\":T,\"seq\":S,\"payload\":P}` here), from one batch per poll "
        "with no object per topic; the Diff rows are the same poll read through one `Diff` object per topic; "
        "the dict paths are what a host did before them, decoding each payload into objects and encoding it "
        "again (the web demo did exactly this). Times are CPU time of the polling thread (Rust, Python) or process (Node): the Rust, "
        "Python and Node drivers run in turn, one run each per round, on two cores shared with other work, "
        "where wall time would also count what else ran meanwhile.")
    return "\n".join(md)
