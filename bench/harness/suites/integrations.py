"""10. Fan-out through the framework integrations, against the bare engine path of the
same language."""

from __future__ import annotations

from ..core import (BENCH, NODE_INTEGRATIONS, PY_INTEGRATIONS, PYTHON, Ctx, Rec, has_node_integrations,
                    has_python_integrations, median)
from ..tables import num, ratio_str, spread, table

INTEG_ORDER = ["python-bare", "python-asgi", "python-phoenix", "python-socketio",
               "node-bare", "node-socket.io", "node-phoenix"]
INTEG_LABEL = {
    "python-bare": "bare: `engine.diffs(envelope=\"event\")`, each message sent to a dict of rooms (the baseline)",
    "python-asgi": "`presence_engine.asgi.WebSocketPresence` on Starlette WebSockets",
    "python-phoenix": "`presence_engine.phoenix.PhoenixEndpoint` (Phoenix V2 frames)",
    "python-socketio": "`presence_engine.socketio.SocketIOPresence` on python-socketio's `AsyncServer`",
    "node-bare": "bare: `pollReady({envelope: 'event'})`, each message `ws.send` to its sockets (the baseline)",
    "node-socket.io": "`presence-engine/socket.io` `attachPresence` (one room emit per topic)",
    "node-phoenix": "`presence-engine/phoenix` `attachPhoenix` (Phoenix V2 frames)",
}


def run_integrations(ctx: Ctx) -> None:
    s = ctx.sizes
    have_py = PY_INTEGRATIONS.exists() and has_python_integrations()
    have_node = NODE_INTEGRATIONS.exists() and has_node_integrations()
    if not have_py:
        ctx.note("Python rows not run: presence_engine, python-socketio or starlette is missing from the bench venv")
    if not have_node:
        ctx.note("Node rows not run: bindings/node's dev dependencies (socket.io, socket.io-client, ws) are "
                 "not installed")
    # Both scripts once per round, in turn, so that both see the same load; each script
    # starts from another of its paths every round, so that none always runs first.
    for r in range(s.integ_runs):
        if have_py:
            ctx.run([PYTHON, PY_INTEGRATIONS, "--json", "--topics", s.integ_topics, "--sockets", s.integ_py_sockets,
                     "--rounds", s.integ_rounds, "--rotate", r])
        if have_node:
            ctx.run(["node", NODE_INTEGRATIONS, "--json", "--topics", s.integ_topics, "--sockets",
                     s.integ_node_sockets, "--rounds", s.integ_rounds, "--rotate", r], cwd=BENCH)


def integ_key(r: Rec) -> int:
    return INTEG_ORDER.index(r.impl) if r.impl in INTEG_ORDER else len(INTEG_ORDER)


def render_integrations(ctx: Ctx) -> str:
    res = ctx.results
    recs = sorted(res.select("integrations"), key=integ_key)
    if not recs:
        return ""
    rows = []
    for r in recs:
        lang, sockets = r.params["lang"], r.params["sockets"]
        polls = r.extra.get("poll_us")
        rows.append([
            {"python": "Python", "node": "Node"}.get(lang, lang),
            f"{r.params['topics']:,} × {sockets}",
            INTEG_LABEL.get(r.impl, r.impl),
            num(r.med), spread(r), str(len(r.runs)),
            num(r.med / sockets),
            num(median(polls)) if polls else "–",
            ratio_str(res.ratio(r)) if r.baseline else "1.00x",
        ])
    return table(["language", "topics × sockets", "path", "µs per changed topic (median)", "spread (µs)", "runs",
                  "µs per socket message", "of which the poll (µs)", "vs bare, same language"], rows,
                 "lllrrrrrr") + (
        "\n\nEach round changes every topic (Python: one more presence joins it; Node: a presence joins "
        "it, or leaves it, in turn) and the server sends each topic's diff to every socket of the topic, "
        "counts format; the figure is one round's time divided by the topics, so it covers all of a "
        "topic's sockets. Each integration runs its own code and its "
        "framework's, beside the bare path of the same language, which is what a host writes by hand "
        "with the engine alone; the ratio is the integration's cost over it, the two measured in the "
        "same run. Both scripts run in turn, once per round, each starting from another of its paths.\n\n"
        "The two languages measure differently, so compare ratios, not times, across them. Python "
        "(`bench/python_integrations.py`): the ASGI apps are driven in-process (the ASGI server's "
        "`receive`/`send` replaced by callables, `send` only counting frames), and the clock runs, in "
        "wall time, from the changes to the moment the last socket was handed its diff: the integration's "
        "poll loop and its framework's writes, without the network. Node (`bench/node_integrations.mjs`): "
        "real sockets over loopback WebSockets, and the clock times the server's synchronous work for "
        "the batch: the poll (shown apart) and the writes into the sockets, through the integration's "
        "own diff callback; the clients drain every message between rounds, off the clock.")
