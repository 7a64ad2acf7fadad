"""11. Lifecycle: presences with a time to live (expiry, touch, memory)."""

from __future__ import annotations

from ..core import Ctx, median, rust
from ..tables import ratio_str, si, spread, table


def run_lifecycle(ctx: Ctx) -> None:
    s = ctx.sizes
    ctx.run([rust("presence-lifecycle"), "expiry", "--held", ",".join(map(str, s.ttl_held)),
             "--rate", s.ttl_rate, "--seconds", s.ttl_seconds, "--topics", s.topics, "--runs", s.ttl_runs])
    ctx.run([rust("presence-lifecycle"), "memory", "--n", max(s.ttl_held), "--topics", s.topics,
             "--runs", s.slow_runs])


def render_lifecycle(ctx: Ctx) -> str:
    res = ctx.results
    recs = res.select("lifecycle")
    mem = res.select("lifecycle_memory")
    if not recs and not mem:
        return ""
    md = []
    if recs:
        helds = sorted({r.params["held"] for r in recs})
        smallest = {r.impl: r for r in recs if r.params["held"] == helds[0]}
        rows = []
        for held in helds:
            for impl in ("expiry", "untrack", "touch"):
                r = next((x for x in recs if x.impl == impl and x.params["held"] == held), None)
                if r is None:
                    continue
                first = smallest.get(impl)
                rows.append([
                    {"expiry": "expiry (timer or poll)", "untrack": "untrack by the host",
                     "touch": "touch (renew)"}[impl],
                    si(held), f"{r.med:,.0f}", spread(r),
                    f"{ratio_str(res.ratio(r))} {r.baseline}" if r.baseline else "–",
                    ratio_str(r.med / first.med) if first and first.med else "–",
                    str(len(r.runs)),
                ])
        p = recs[0].params
        md.append(table(["call", "presences held", "ns per presence (median)", "spread (ns)",
                         "ratio to baseline", f"vs {si(helds[0])} held", "runs"], rows, "lrrrrrr"))
        md.append(
            f"\nEvery presence has a time to live, deadlines {1000 // p['rate']} ms apart "
            f"({p['rate']:,} expiring per second of engine time, {p['seconds']} s of it, over "
            f"{si(p['topics'])} topics). The engine runs on a manual clock moved one 10 ms tick "
            "at a time; *expiry* is the time of expiring the tick's presences (what the timer "
            "thread and each poll run), per presence expired, the poll that publishes them off "
            "the clock. The baseline untracks the same presences of an engine without time to "
            "live, as many per tick, in the same order: an expiry is an untrack the engine "
            "makes itself. *touch* renews one held connection (one TTL presence) per call. The "
            "last column is the growth with what is held at the same expiry rate: expiry pops "
            "what is due from a per-shard queue ordered by tick, so it never visits what is "
            "not due; what grows is the queue's depth (logarithmic) and the cache misses of a "
            "bigger engine, which the untrack baseline shares.")
    if mem:
        rows = []
        base = next((r for r in mem if r.impl == "no-ttl"), None)
        for r in sorted(mem, key=lambda r: r.impl != "no-ttl"):
            est = r.extra.get("stats_bytes")
            rows.append([
                "with a time to live" if r.impl == "ttl" else "without",
                f"{si(r.params['n'])} conns / {si(r.params['topics'])} topics", f"{r.med:,.1f}",
                f"{median(est):,.1f}" if est else "–",
                f"{r.med - base.med:+,.1f}" if base and r is not base else "–",
                f"{ratio_str(res.ratio(r))} {r.baseline}" if r.baseline else "–",
                str(len(r.runs)),
            ])
        md.append("\nMemory, counts format, the same presences with and without a time to live:\n")
        md.append(table(["presences", "workload", "bytes/presence (median)", "engine.stats() estimate",
                         "added per presence", "ratio to baseline", "runs"], rows, "llrrrrr"))
        md.append(
            "\nBytes requested from the allocator while the engine holds every presence, after "
            "its first poll (a counting global allocator, as in section 3). A TTL presence adds "
            "its connection's record (a 32-byte slot in an open-addressing table at most three "
            "quarters full) and its entry in the tick-ordered queue (a B-tree of 16-byte "
            "entries).")
    return "\n".join(md)
