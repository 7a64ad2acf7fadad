"""4. poll_diff cost against changed and total topics."""

from __future__ import annotations

from ..core import Ctx, Rec, rust
from ..plots import log_axes, save_plot
from ..tables import ratio_str, spread, table


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
