"""Fan-out cost per changed topic through the Python integrations, against the bare
engine path.

    python bench/python_integrations.py [--topics 1000] [--sockets 4] [--rounds 7] [--json]
    python bench/python_integrations.py --check   (a small run that only checks delivery)

(with presence_engine, python-socketio and starlette installed: the bench venv of
`make bench` (bench/requirements.txt) and the test venv of `make test-python` have them)

TOPICS topics with SOCKETS sockets each are joined through each path; then, each round,
one more presence joins every topic and the clock runs from those changes to the moment
the last socket was handed its presence_diff. Reported: the median round's time divided
by TOPICS (per changed topic, all of its sockets included), and per socket message.
--json prints one line per path with every round (bench/run.py's integrations suite);
--check asserts that every socket was handed exactly one presence_diff of its own topic
per round, and no timing.

Each integration runs its real code and its framework's (python-socketio with
python-engineio, Starlette's WebSocket, the Phoenix endpoint) through their ASGI
interface, driven in-process: the ASGI server is replaced by `receive` / `send`
callables, and `send` only counts the frames, so the figures are the integration's work
without the network's. Paths:

- bare: `engine.diffs(envelope="event")` and, per topic, `send(d.message)` to each
  socket of a dict of rooms (what examples/web's servers do);
- asgi: `presence_engine.asgi.WebSocketPresence.serve` on Starlette WebSockets;
- phoenix: `presence_engine.phoenix.PhoenixEndpoint`;
- socketio: `presence_engine.socketio.SocketIOPresence` on `socketio.AsyncServer`
  (engine.io over its websocket transport).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from presence_engine import Engine


class Sink:
    """Tells when every socket was handed a presence_diff since `expect`: a round's clock
    stops at the last one, whichever socket it was."""

    def __init__(self, marker: str, check: bool = False) -> None:
        self.marker = marker
        # In --check, each frame's topic and each socket's count per round are verified.
        self.check = check
        self.conns: list[Connection] = []
        self.waiting = 0
        self.done: asyncio.Future[None] | None = None
        self.errors: list[str] = []

    def connection(self, topic: str) -> Connection:
        c = Connection(self, topic)
        self.conns.append(c)
        return c

    def expect(self) -> asyncio.Future[None]:
        self.verify()
        for c in self.conns:
            c.waiting = True
            c.round_diffs = 0
        self.waiting = len(self.conns)
        self.done = asyncio.get_running_loop().create_future()
        return self.done

    def arrived(self) -> None:
        self.waiting -= 1
        if self.waiting == 0 and self.done is not None and not self.done.done():
            self.done.set_result(None)

    def verify(self) -> None:
        """--check: every socket was handed exactly one diff in the round that ended."""
        if self.check and self.done is not None:
            bad = [c for c in self.conns if c.round_diffs != 1]
            if bad:
                self.errors.append(f"{len(bad)} of {len(self.conns)} sockets were handed "
                                   f"{sorted({c.round_diffs for c in bad})} diffs in a round, not 1")


class Connection:
    """One in-process ASGI WebSocket connection: `receive` hands out the frames given to
    `feed`, `send` counts what the app sends."""

    def __init__(self, sink: Sink, topic: str) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.inbox.put_nowait({"type": "websocket.connect"})
        self.sink = sink
        self.topic = topic
        self.waiting = False
        self.round_diffs = 0
        self.sent: list[str] = []  # the first frames (handshakes, replies), to debug with

    def feed(self, text: str) -> None:
        self.inbox.put_nowait({"type": "websocket.receive", "text": text})

    async def receive(self) -> dict[str, Any]:
        return await self.inbox.get()

    async def send(self, message: Any) -> None:
        text = message.get("text")
        if text is None:
            return
        sink = self.sink
        if sink.marker in text:
            self.round_diffs += 1
            if sink.check and f'"{self.topic}"' not in text:
                sink.errors.append(f"a socket of {self.topic} was handed {text[:120]}")
            if self.waiting:
                self.waiting = False
                sink.arrived()
        if len(self.sent) < 8:
            self.sent.append(text)


def ws_scope(path: str, query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "scheme": "ws",
        "http_version": "1.1",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"bench"), (b"connection", b"upgrade"), (b"upgrade", b"websocket")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "subprotocols": [],
        "state": {},
    }


class Failed(Exception):
    pass


# Generous: a round takes milliseconds; only a lost frame comes near it.
TIMEOUT = 60.0


async def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            raise Failed(f"{what} not reached in {TIMEOUT:.0f} s")
        await asyncio.sleep(0.001)


async def rounds(engine: Engine, topics: list[str], sink: Sink, n: int) -> list[float]:
    """Times `n` rounds of one join per topic (conns from 10**9 up: none of the sockets')."""
    out = []
    conn = 10**9
    for _ in range(n + 1):  # the first round warms up
        done = sink.expect()
        start = time.perf_counter()
        for topic in topics:
            conn += 1
            engine.track(topic, conn, f"extra-{conn}")
        try:
            await asyncio.wait_for(done, TIMEOUT)
        except asyncio.TimeoutError:
            raise Failed(f"{sink.waiting} of {len(sink.conns)} sockets were not handed the round's diff "
                         f"in {TIMEOUT:.0f} s") from None
        out.append(time.perf_counter() - start)
    if sink.check:
        await asyncio.sleep(0.1)  # a second diff of the last round would arrive meanwhile
        sink.verify()
        if sink.errors:
            raise Failed("; ".join(sink.errors[:5]))
    return out[1:]


async def bare(topics: list[str], sockets: int, n: int, check: bool) -> list[float]:
    engine = Engine()
    sink = Sink('"presence_diff"', check)
    rooms: dict[str, list[Connection]] = {}
    for i, topic in enumerate(topics):
        rooms[topic] = [sink.connection(topic) for _ in range(sockets)]
        for j in range(sockets):
            engine.track(topic, i * sockets + j, f"user-{j}")

    async def pump() -> None:
        async for batch in engine.diffs(envelope="event"):
            for d in batch:
                message = {"type": "websocket.send", "text": d.message}
                for c in rooms.get(d.topic, ()):
                    await c.send(message)

    task = asyncio.create_task(pump())
    engine.poll()  # the joins above are the state every socket starts from
    try:
        return await rounds(engine, topics, sink, n)
    finally:
        task.cancel()
        engine.close()


async def run_asgi_app(app: Any, scope: dict[str, Any], conn: Connection) -> asyncio.Task[None]:
    return asyncio.create_task(app(scope, conn.receive, conn.send))


async def asgi(topics: list[str], sockets: int, n: int, check: bool) -> list[float]:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    from presence_engine.asgi import WebSocketPresence

    engine = Engine()
    presence = WebSocketPresence(engine, interval=0)

    async def endpoint(websocket: WebSocket) -> None:
        await presence.serve(websocket, websocket.path_params["topic"], key=websocket.query_params.get("user"))

    app = Starlette(routes=[WebSocketRoute("/presence/{topic}", endpoint)])
    sink = Sink('"presence_diff"', check)
    tasks = []
    for topic in topics:
        for j in range(sockets):
            c = sink.connection(topic)
            tasks.append(await run_asgi_app(app, ws_scope(f"/presence/{topic}", f"user=user-{j}".encode()), c))
    await wait_for(lambda: engine.stats().presences == len(topics) * sockets, "every socket tracked")
    await asyncio.sleep(0.2)  # the joins' own diffs go out
    try:
        return await rounds(engine, topics, sink, n)
    finally:
        for t in tasks:
            t.cancel()
        await presence.stop()
        engine.close()


async def phoenix(topics: list[str], sockets: int, n: int, check: bool) -> list[float]:
    from presence_engine.phoenix import PhoenixEndpoint

    engine = Engine()
    app = PhoenixEndpoint(engine, interval=0)
    sink = Sink('"presence_diff"', check)
    tasks = []
    for topic in topics:
        for j in range(sockets):
            c = sink.connection(topic)
            c.feed(json.dumps(["1", "1", topic, "phx_join", {"user": f"user-{j}"}]))
            tasks.append(await run_asgi_app(app, ws_scope("/socket/websocket", b"vsn=2.0.0"), c))
    await wait_for(lambda: engine.stats().presences == len(topics) * sockets, "every socket tracked")
    await asyncio.sleep(0.2)
    try:
        return await rounds(engine, topics, sink, n)
    finally:
        for t in tasks:
            t.cancel()
        await app.stop()
        engine.close()


async def socketio_path(topics: list[str], sockets: int, n: int, check: bool) -> list[float]:
    import socketio

    from presence_engine.socketio import SocketIOPresence

    engine = Engine()
    sio = socketio.AsyncServer(async_mode="asgi")
    SocketIOPresence(sio, engine, rooms=lambda room: room.startswith("video:"), key=lambda sid: None, interval=0)
    users: dict[str, str] = {}

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        users[sid] = auth["user"]

    @sio.event
    async def watch(sid: str, topic: str) -> None:
        await sio.enter_room(sid, topic)

    app = socketio.ASGIApp(sio)
    sink = Sink('["presence_diff"', check)
    tasks = []
    for topic in topics:
        for j in range(sockets):
            c = sink.connection(topic)
            tasks.append(await run_asgi_app(app, ws_scope("/socket.io/", b"EIO=4&transport=websocket"), c))
            c.feed("40" + json.dumps({"user": f"user-{j}"}))
            c.feed("42" + json.dumps(["watch", topic]))
    await wait_for(lambda: engine.stats().presences == len(topics) * sockets, "every socket tracked")
    await asyncio.sleep(0.2)
    try:
        return await rounds(engine, topics, sink, n)
    finally:
        for t in tasks:
            t.cancel()
        engine.close()


PathFn = Callable[[list[str], int, int, bool], Coroutine[Any, Any, list[float]]]

PATHS: dict[str, tuple[str, PathFn]] = {
    "python-bare": ("bare (poll + send)", bare),
    "python-asgi": ("asgi (WebSocketPresence)", asgi),
    "python-phoenix": ("phoenix (PhoenixEndpoint)", phoenix),
    "python-socketio": ("socketio (SocketIOPresence)", socketio_path),
}
BASELINE = "python-bare"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topics", type=int, help="topics (default 1000; 20 with --check)")
    parser.add_argument("--sockets", type=int, help="sockets per topic (default 4; 2 with --check)")
    parser.add_argument("--rounds", type=int, help="timed rounds per path (default 7; 3 with --check)")
    parser.add_argument("--json", action="store_true", help="one JSON line per path on stdout, the summary on stderr")
    parser.add_argument("--rotate", type=int, default=0,
                        help="start from the Nth path: bench/run.py turns the order between runs, so that "
                             "no path always runs first in a fresh process")
    parser.add_argument("--check", action="store_true", help="a small run that checks delivery, not timing")
    args = parser.parse_args()
    n_topics = args.topics or (20 if args.check else 1000)
    sockets = args.sockets or (2 if args.check else 4)
    n_rounds = args.rounds or (3 if args.check else 7)
    topics = [f"video:{i}" for i in range(n_topics)]
    out = sys.stderr if args.json else sys.stdout
    print(
        f"fan-out per changed topic: {n_topics} topics x {sockets} sockets, one join per topic per round, "
        f"median of {n_rounds} rounds (in-process ASGI, frames counted, no network)",
        file=out,
    )
    names = list(PATHS)
    k = args.rotate % len(names)
    medians: dict[str, float] = {}
    failed = 0
    for name in names[k:] + names[:k]:
        label, path = PATHS[name]
        try:
            times = asyncio.run(path(topics, sockets, n_rounds, args.check))
        except Failed as e:
            failed += 1
            print(f"  FAIL {label}: {e}", file=sys.stderr)
            continue
        per_topic_us = [t / n_topics * 1e6 for t in times]
        medians[name] = statistics.median(per_topic_us)
        if args.json:
            line: dict[str, Any] = {"bench": "integrations", "impl": name, "unit": "us",
                                    "params": {"lang": "python", "topics": n_topics, "sockets": sockets},
                                    "runs": [round(v, 3) for v in per_topic_us]}
            if name != BASELINE:
                line["baseline"] = BASELINE
            print(json.dumps(line), flush=True)
    for name, (label, _) in PATHS.items():
        if name in medians:
            vs = f"  x{medians[name] / medians[BASELINE]:5.2f} of bare" if BASELINE in medians else ""
            print(f"  {label:30} {medians[name]:8.2f} us/topic  {medians[name] / sockets:7.2f} us/socket message{vs}",
                  file=out)
    if args.check:
        print(f"check: {len(PATHS) - failed} of {len(PATHS)} paths handed every socket every diff once", file=out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
