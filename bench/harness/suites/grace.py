"""12. The leave grace: diff messages a reload-heavy room saves, and the poll cost."""

from __future__ import annotations

from ..core import Ctx, rust
from ..tables import ratio_str, si, spread, table

GRACE_DRIVER = "presence-grace"


def run_grace(ctx: Ctx) -> None:
    quick = ctx.quick
    ctx.run([rust(GRACE_DRIVER), "reload", "--users", 10_000, "--reload-pct", 5,
             "--minutes", 1 if quick else 5, "--grace", 5_000, "--runs", 3 if quick else 5])
    ctx.run([rust(GRACE_DRIVER), "poll", "--topics", 1_000, "--presences", 100_000,
             "--changes", 1_000, "--polls", 60 if quick else 200, "--grace", 5_000,
             "--runs", 3 if quick else 7])


def render_grace(ctx: Ctx) -> str:
    res = ctx.results
    md = []
    rows = []
    for off in sorted(res.select("grace_messages"), key=lambda r: r.params["format"]):
        if off.impl != "grace-off":
            continue
        on = res.find("grace_messages", "grace-on", off.params)
        b_off = res.find("grace_bytes", "grace-off", off.params)
        b_on = res.find("grace_bytes", "grace-on", off.params)
        if not (on and b_off and b_on):
            continue
        users = off.params["users"]
        rows.append([
            off.params["format"],
            f"{off.med:,.0f} ({spread(off)})", f"{on.med:,.0f} ({spread(on)})",
            f"{si(b_off.med)}B", f"{si(b_on.med)}B",
            f"{si(b_off.med * users)}B → {si(b_on.med * users)}B",
            ratio_str(on.med / off.med) if off.med else "–",
        ])
    if rows:
        p = res.select("grace_messages")[0].params
        md.append(
            f"A room of {p['users']:,} presences (a fifth anonymous viewers) where {p['reload_pct_per_min']:g}% "
            f"reload per minute: the connection leaves, and the same user (a viewer: a new anonymous "
            f"connection) is back on a new connection 0.3 to 3 s later, with the meta it had. Polled every "
            f"100 ms for {p['minutes']} simulated minute(s) (a manual clock: each run is a seed, "
            f"the same calls with and without the grace), without a grace and with "
            f"`leave_grace_ms` {p['grace_ms']:,}. Messages are the room's diff entries per minute "
            f"(median, min–max over the runs); bytes their payloads; fan-out bytes are what pushing each "
            f"to every presence of the room sends.\n")
        md.append(table(["format", "messages/min, no grace", "messages/min, grace", "payload/min, no grace",
                         "payload/min, grace", "fan-out/min", "grace vs none"], rows))
        left = [r for r in res.select("grace_messages") if r.impl == "grace-on" and r.med > 0]
        md.append("\nWithout the grace, a reload whose leave and rejoin fall in different poll windows is two "
                  "messages (in counts format when it changes viewers or users). "
                  + ("With it, no run of this suite sent a message for a reload."
                     if not left else f"With it, {len(left)} format(s) still sent messages: see the table."))
    poll_off = [r for r in res.select("grace_poll") if r.impl == "grace-off"]
    for off in poll_off:
        on = res.find("grace_poll", "grace-on", off.params)
        if not on:
            continue
        p = off.params
        md.append(
            f"\nThe cost of a poll, with the grace on ({p['grace_ms']:,} ms) and off, on the same workload: "
            f"{p['topics']:,} rooms, {p['presences']:,} presences, {p['changes_per_poll']:,} changes between "
            f"two polls (half leaves, half joins, of which half are a recent leave coming back), the clock "
            f"moving 100 ms per poll so that held leaves fall due inside the polls measured. Each run is the "
            f"median of {p['polls']} polls after as many of warm-up; the runs alternate.\n")
        rows = [["poll", "off", f"{off.med:,.1f}", spread(off), "1.00x"],
                ["poll", "on", f"{on.med:,.1f}", spread(on), ratio_str(on.med / off.med)]]
        w_off = res.find("grace_window", "grace-off", off.params)
        w_on = res.find("grace_window", "grace-on", off.params)
        if w_off and w_on:
            rows += [["changes + poll", "off", f"{w_off.med:,.1f}", spread(w_off), "1.00x"],
                     ["changes + poll", "on", f"{w_on.med:,.1f}", spread(w_on), ratio_str(w_on.med / w_off.med)]]
        md.append(table(["timed", "grace", "µs (median)", "spread (µs)", "vs off"], rows))
        md.append("\nWith the grace a leave is made in the poll where it falls due rather than in `untrack`, "
                  "and a reload's rejoin takes its presence over instead of adding one: the second pair of "
                  "rows times a whole window, the changes and the poll.")
    return "\n".join(md)
