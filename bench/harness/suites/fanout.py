"""6. Fan-out: messages pushed for a churning room."""

from __future__ import annotations

from ..core import Ctx, Rec, rust
from ..plots import log_axes, save_plot
from ..tables import ratio_str, si, table


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
