"""Fan-out cost per changed topic through the Python integrations, against the bare
engine path.

    python bench/python_integrations.py [--topics 1000] [--sockets 4] [--rounds 7]

(with presence_engine, python-socketio and starlette installed: the test venv of
`make test-python`, target/python/test-venv, has them)

TOPICS topics with SOCKETS sockets each are joined through each path; then, each round,
one more presence joins every topic and the clock runs from those changes to the moment
the last socket of the last topic was handed its presence_diff. Reported: the median
round's time divided by TOPICS (per changed topic, all of its sockets included), and per
socket message.

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
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from presence_engine import Engine


class Sink:
    """Counts the presence_diff frames every socket was handed."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.diffs = 0
        self.done: asyncio.Future[None] | None = None
        self.expected = 0

    def expect(self, n: int) -> asyncio.Future[None]:
        self.diffs = 0
        self.expected = n
        self.done = asyncio.get_running_loop().create_future()
        return self.done

    def count(self, text: str | None) -> None:
        if text is not None and self.marker in text:
            self.diffs += 1
            if self.diffs == self.expected and self.done is not None and not self.done.done():
                self.done.set_result(None)


class Connection:
    """One in-process ASGI WebSocket connection: `receive` hands out the frames given to
    `feed`, `send` counts what the app sends."""

    def __init__(self, sink: Sink) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.inbox.put_nowait({"type": "websocket.connect"})
        self.sink = sink
        self.sent: list[str] = []  # the frames before the first diff (handshakes, replies)

    def feed(self, text: str) -> None:
        self.inbox.put_nowait({"type": "websocket.receive", "text": text})

    async def receive(self) -> dict[str, Any]:
        return await self.inbox.get()

    async def send(self, message: Any) -> None:
        text = message.get("text")
        self.sink.count(text)
        if text is not None and len(self.sent) < 8:
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


async def wait_for(check: Callable[[], bool]) -> None:
    while not check():
        await asyncio.sleep(0.001)


async def rounds(engine: Engine, topics: list[str], sink: Sink, sockets: int, n: int) -> list[float]:
    """Times `n` rounds of one join per topic (conns from 10**9 up: none of the sockets')."""
    out = []
    conn = 10**9
    for _ in range(n + 1):  # the first round warms up
        done = sink.expect(len(topics) * sockets)
        start = time.perf_counter()
        for topic in topics:
            conn += 1
            engine.track(topic, conn, f"extra-{conn}")
        await done
        out.append(time.perf_counter() - start)
    return out[1:]


async def bare(topics: list[str], sockets: int, n: int) -> list[float]:
    engine = Engine()
    sink = Sink('"presence_diff"')
    conns = [Connection(sink) for _ in range(len(topics) * sockets)]
    rooms: dict[str, list[Connection]] = {}
    for i, topic in enumerate(topics):
        rooms[topic] = conns[i * sockets : (i + 1) * sockets]
        for j, c in enumerate(rooms[topic]):
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
        return await rounds(engine, topics, sink, sockets, n)
    finally:
        task.cancel()
        engine.close()


async def run_asgi_app(app: Any, scope: dict[str, Any], conn: Connection) -> asyncio.Task[None]:
    return asyncio.create_task(app(scope, conn.receive, conn.send))


async def asgi(topics: list[str], sockets: int, n: int) -> list[float]:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    from presence_engine.asgi import WebSocketPresence

    engine = Engine()
    presence = WebSocketPresence(engine, interval=0)

    async def endpoint(websocket: WebSocket) -> None:
        await presence.serve(websocket, websocket.path_params["topic"], key=websocket.query_params.get("user"))

    app = Starlette(routes=[WebSocketRoute("/presence/{topic}", endpoint)])
    sink = Sink('"presence_diff"')
    tasks = []
    for topic in topics:
        for j in range(sockets):
            c = Connection(sink)
            tasks.append(await run_asgi_app(app, ws_scope(f"/presence/{topic}", f"user=user-{j}".encode()), c))
    await wait_for(lambda: engine.stats().presences == len(topics) * sockets)
    await asyncio.sleep(0.2)  # the joins' own diffs go out
    try:
        return await rounds(engine, topics, sink, sockets, n)
    finally:
        for t in tasks:
            t.cancel()
        await presence.stop()
        engine.close()


async def phoenix(topics: list[str], sockets: int, n: int) -> list[float]:
    import json

    from presence_engine.phoenix import PhoenixEndpoint

    engine = Engine()
    app = PhoenixEndpoint(engine, interval=0)
    sink = Sink('"presence_diff"')
    tasks = []
    for topic in topics:
        for j in range(sockets):
            c = Connection(sink)
            c.feed(json.dumps(["1", "1", topic, "phx_join", {"user": f"user-{j}"}]))
            tasks.append(await run_asgi_app(app, ws_scope("/socket/websocket", b"vsn=2.0.0"), c))
    await wait_for(lambda: engine.stats().presences == len(topics) * sockets)
    await asyncio.sleep(0.2)
    try:
        return await rounds(engine, topics, sink, sockets, n)
    finally:
        for t in tasks:
            t.cancel()
        await app.stop()
        engine.close()


async def socketio_path(topics: list[str], sockets: int, n: int) -> list[float]:
    import json

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
    sink = Sink('["presence_diff"')
    tasks = []
    conns = []
    for topic in topics:
        for j in range(sockets):
            c = Connection(sink)
            tasks.append(await run_asgi_app(app, ws_scope("/socket.io/", b"EIO=4&transport=websocket"), c))
            c.feed("40" + json.dumps({"user": f"user-{j}"}))
            c.feed("42" + json.dumps(["watch", topic]))
            conns.append(c)
    await wait_for(lambda: engine.stats().presences == len(topics) * sockets)
    await asyncio.sleep(0.2)
    try:
        return await rounds(engine, topics, sink, sockets, n)
    finally:
        for t in tasks:
            t.cancel()
        engine.close()


PATHS: dict[str, Callable[[list[str], int, int], Awaitable[list[float]]]] = {
    "bare (poll + send)": bare,
    "asgi (WebSocketPresence)": asgi,
    "phoenix (PhoenixEndpoint)": phoenix,
    "socketio (SocketIOPresence)": socketio_path,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--sockets", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    topics = [f"video:{i}" for i in range(args.topics)]
    print(
        f"fan-out per changed topic: {args.topics} topics x {args.sockets} sockets, one join per topic per round, "
        f"median of {args.rounds} rounds (in-process ASGI, frames counted, no network)"
    )
    base = None
    for name, path in PATHS.items():
        times = asyncio.run(path(topics, args.sockets, args.rounds))
        per_topic = statistics.median(times) / args.topics
        base = base or per_topic
        print(
            f"  {name:30} {per_topic * 1e6:8.2f} us/topic  {per_topic / args.sockets * 1e6:7.2f} us/socket message"
            f"  x{per_topic / base:5.2f} of bare"
        )


if __name__ == "__main__":
    main()
