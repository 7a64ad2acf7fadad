"""The summary table: each target with its goal, the measured ratio and the verdict."""

from __future__ import annotations

from dataclasses import dataclass

from .core import Ctx, Rec, median
from .suites.host import host_key
from .tables import ratio_str, si, table


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
