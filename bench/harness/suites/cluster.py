"""7. Cluster: three node processes over Redis (convergence, down detection, snapshot
merge, wire cost)."""

from __future__ import annotations

from ..core import Ctx, Rec, median, rust
from ..plots import log_axes, save_plot
from ..tables import ms_str, quantile, ratio_str, si, table


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
