"""5. counts and list on the hot room."""

from __future__ import annotations

from ..core import C_DRIVER, Ctx, rust
from ..tables import dur, ratio_str, table


def run_hot(ctx: Ctx) -> None:
    s = ctx.sizes
    for _ in range(s.runs):
        ctx.run([rust("presence-bench"), "hot", "--n", s.hot_n, "--calls", s.counts_calls, "--runs", 1])
        ctx.run([C_DRIVER, "hot", "--n", s.hot_n, "--calls", s.counts_calls, "--runs", 1])
        ctx.run([rust("presence-bench"), "many", "--held", ",".join(map(str, s.many_held)),
                 "--ask", s.many_ask, "--calls", s.many_calls, "--runs", 1])


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
    for bench in ("counts_hot", "list_hot"):
        for r in res.select(bench):
            extra = f" ({r.extra['bytes'] / 1e6:.1f} MB of JSON)" if "bytes" in r.extra else ""
            rows.append([what.get((bench, r.impl), r.impl) + extra, dur(r.med, r.unit),
                         f"{dur(min(r.runs), r.unit)} – {dur(max(r.runs), r.unit)}",
                         str(len(r.runs)),
                         f"{ratio_str(res.ratio(r))} {r.baseline}" if r.baseline else "–"])
    many_rows = []
    for r in sorted(res.select("counts_many"), key=lambda r: (r.params["held"], r.impl)):
        how = "`counts_many`" if r.impl == "rust-counts-many" else "a loop of `counts`"
        many_rows.append([f"{r.params['ask']} topics asked, {r.params['held']:,} held: {how}",
                          dur(r.med, r.unit), f"{dur(min(r.runs), r.unit)} – {dur(max(r.runs), r.unit)}",
                          str(len(r.runs)),
                          f"{ratio_str(res.ratio(r))} {r.baseline}" if r.baseline else "–"])
    n = ctx.sizes.hot_n
    many = ""
    if many_rows:
        many = "\n\n" + table(["batch read", "time per topic asked (median)", "spread", "runs",
                                "ratio to baseline"], many_rows, "lrrrl") + (
            "\n\nCounts of many topics in one call (the shape of an HTTP endpoint listing channels "
            "with their user counts), against the same topics read one `counts` call at a time. "
            "Each topic held has one user with two connections; the topics asked are spread over "
            "all that are held. The cost follows the topics asked: holding more topics adds only the "
            "cache misses of a larger index, never a scan.")
    if not rows:
        return many.lstrip("\n")
    return table(["call", "time per call (median)", "spread", "runs", "ratio to baseline"], rows, "lrrrl") + (
        f"\n\nOne topic of {n:,} presences ({n // 2:,} users with two tabs), polled once. "
        "`counts` is read in a loop of calls by topic name (the floor reads by integer id, "
        "which is why it is an order of magnitude cheaper: the engine hashes the name twice, once "
        "for the shard and once in the shard's index, and takes the shard lock). `list` renders "
        "the full `presence_state`; the baseline is what a hand-written tracker does: keep "
        "(key, meta) per connection and build the Phoenix map with serde_json on each call. "
        "Phoenix itself needs 130–760 ms to list a topic this size on a machine like this one "
        "(reference/phoenix-presence.md §8; not measured here).") + many
