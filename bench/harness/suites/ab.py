"""9. Hand-written pieces against the crate or library they could be replaced by."""

from __future__ import annotations

from ..core import BENCH, PYTHON, Ctx, has_python_package, rust
from ..tables import num, ratio_str, spread, table

PY_AB = BENCH / "python_ab.py"


def run_ab(ctx: Ctx) -> None:
    s = ctx.sizes
    exe = rust("presence-ab")
    ctx.run([exe, "table", "--n", s.n, "--runs", s.runs])
    ctx.run([exe, "populate", "--runs", s.runs])
    if has_python_package():
        ctx.run([PYTHON, PY_AB, "--n", s.ab_py_n, "--runs", s.runs])
    else:
        ctx.note("Python rows not run: the presence_engine package is not installed in the bench venv")


def render_ab(ctx: Ctx) -> str:
    res = ctx.results
    rows = []
    for r in res.select("ab"):
        if r.impl != "hand":
            continue
        base = res.base_of(r)
        if base is None:
            continue
        p = r.params
        size = ", ".join(f"{k} {v:,}" for k, v in p.items() if k not in ("piece", "op"))
        unit = f" {r.unit}" if r.unit != "ns" else ""
        rows.append([r.extra.get("what", r.impl), base.extra.get("what", base.impl), f"{p['op']} ({size})",
                     f"{num(r.med)}{unit} ({spread(r)})", f"{num(base.med)}{unit} ({spread(base)})",
                     ratio_str(res.ratio(r)), str(len(r.runs))])
    if not rows:
        return ""
    return table(["hand-written", "alternative", "operation", "hand-written: ns/op (min–max)",
                  "alternative: ns/op (min–max)", "ratio (hand / alternative)", "runs"], rows, "lllrrrr") + (
        "\n\nBoth sides run in one process, alternating run by run; a ratio below 1 means the "
        "hand-written piece takes less time (or memory) than its alternative. Times are CPU time of the "
        "measuring thread (the cores are shared with other work). The table rows time a "
        "fresh connection-index-like table (2-word slots, connection ids hashed by the engine's mixer) "
        "filled with N shuffled ids, then every id looked up, then removed; `bytes` is heap bytes per "
        "entry at N. `populate` fills a fresh 2M-slot table as a rehash does (ms per fill, allocation "
        "included). The Python rows time one call from Python each.\n\n"
        "The table rows alone favour `hashbrown`, but inside the engine the same swap loses: with `hashbrown::HashTable` in place of `table.rs` (every other line the same, 17 alternating process runs on 2026-12-03), track+untrack in counts format at 1M connections over 1k topics ran at 0.75x the hand-written table's rate (645k against 863k ops/s; the HashMap floor in the same processes: 0.97x), untrack 1.53x slower, and a presence took 70.2 bytes against 62.9 (1.12x); phoenix format 0.98x. About half of the loss is the prefetch the hand-written table allows (its slot address is known before the lookup, under the shard lock), the rest is hashbrown's split of control bytes and entries. The hand-written table stays on these engine-level figures.\n\n"
        "The engine's other hash maps were std's `HashMap`, whose heap size `stats().bytes` took from a copy of hashbrown's layout (buckets, control bytes, group width); they are now `hashbrown::HashMap`/`HashSet` (the same tables std wraps), which report it themselves (`allocation_size`). Against the copy (7 alternating process runs of each build on 2026-12-03, the machine under other builds' load), track+untrack at 1M connections over 1k topics: counts 0.99x (257k against 261k ops/s, spreads 237k–387k and 239k–349k), phoenix 0.91x (89.4k against 98.3k, spreads 73k–134k and 75k–148k), the HashMap floor in the same processes 1.02x; memory per presence 62.9 against 62.9 bytes (counts) and 176.6 against 176.6 (phoenix), `stats().bytes` within 0.01 byte of the counting allocator.")
