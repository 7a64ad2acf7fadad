"""Presence for ASGI WebSockets (Starlette, FastAPI, or a bare ASGI app).

    from presence_engine.asgi import WebSocketPresence

    presence = WebSocketPresence()              # its own Engine(); or WebSocketPresence(engine)

    @app.websocket("/presence/{topic}")
    async def presence_socket(websocket: WebSocket, topic: str, user: str | None = None):
        await presence.serve(websocket, topic, key=user)   # returns when the socket closes

`serve()` accepts the socket, sends the topic's state
(`{"event":"presence_state","topic":T,"seq":S,"payload":P}`), tracks it (key None: an
anonymous viewer), then sends every poll's diff of the topic
(`{"event":"presence_diff",...}`, the engine's own text, never decoded here) until the
client goes away, and untracks it. A message `{"event":"sync"}` from the client asks for
the state again (a client that saw a gap in the seqs).

The engine is polled by one task per `WebSocketPresence`, started with the first socket;
each socket has its own outgoing queue and writer, so a slow client never holds up the
others (one that falls `max_queue` messages behind is closed with code 1013 and comes back
with a fresh state). In cluster mode (an Engine with `cluster=` and `start_redis()`),
every process sends its own sockets the diffs of the whole cluster.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from . import Engine, EnvelopeName, Meta, PresenceError

__all__ = ["WebSocketPresence"]

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Outbox:
    """One connection's outgoing text frames, written in order by one writer task, so that
    pushing a message (from the poll loop, or a join) never awaits the network."""

    __slots__ = ("_queue", "_wake", "max_queue", "overflowed", "closed")

    def __init__(self, max_queue: int) -> None:
        self._queue: deque[str] = deque()
        self._wake = asyncio.Event()
        self.max_queue = max_queue
        self.overflowed = False
        self.closed = False

    def push(self, text: str) -> None:
        if self.closed:
            return
        if len(self._queue) >= self.max_queue:
            # A client this far behind gets nothing more: the writer closes it, and it
            # starts again from a fresh state when it reconnects.
            self.overflowed = True
            self._queue.clear()
            self.closed = True
        else:
            self._queue.append(text)
        self._wake.set()

    async def write_to(self, send: Send) -> None:
        """Writes the queued frames until the outbox is closed (or overflowed)."""
        queue = self._queue
        while True:
            while queue:
                await send({"type": "websocket.send", "text": queue.popleft()})
            if self.closed:
                return
            self._wake.clear()
            await self._wake.wait()

    def close(self) -> None:
        self.closed = True
        self._wake.set()


async def client_texts(receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
                       writer: asyncio.Task[None]) -> AsyncIterator[str]:
    """The text frames a client sends, until it disconnects or its writer stops (a client
    too far behind, a socket gone). Each read races the writer, so a connection whose
    writer has ended is not kept open waiting for a client that may never speak."""
    while not writer.done():
        reader = asyncio.ensure_future(receive())
        done, _ = await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
        if reader not in done:
            reader.cancel()
            return
        message = reader.result()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is not None:
            yield text


class Hub:
    """The part shared by the ASGI integrations: topic -> the outboxes to push its diffs
    to, fed by one task polling the engine in one envelope."""

    def __init__(
        self,
        engine: Engine,
        *,
        envelope: EnvelopeName,
        interval: float,
    ) -> None:
        self.engine = engine
        self.envelope: EnvelopeName = envelope
        self.interval = interval
        self.rooms: dict[str, set[Outbox]] = {}
        self.conn_ids = itertools.count(1)
        self._pump: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Starts the poll loop if it is not running (in the running event loop)."""
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        pump, self._pump = self._pump, None
        if pump is not None and not pump.done():
            pump.cancel()
            try:
                await pump
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        rooms = self.rooms
        async for batch in self.engine.diffs(interval=self.interval, envelope=self.envelope):
            for topic, message in batch.pairs():
                room = rooms.get(topic)
                if room:
                    for outbox in room:
                        outbox.push(message)

    def add(self, topic: str, outbox: Outbox) -> None:
        self.rooms.setdefault(topic, set()).add(outbox)

    def discard(self, topic: str, outbox: Outbox) -> None:
        room = self.rooms.get(topic)
        if room is not None:
            room.discard(outbox)
            if not room:
                del self.rooms[topic]


class WebSocketPresence:
    """Tracks ASGI WebSockets (Starlette's / FastAPI's `WebSocket`) in an engine and keeps
    their clients' presence views current. See the module's documentation."""

    def __init__(
        self,
        engine: Engine | None = None,
        *,
        interval: float = 0.05,
        max_queue: int = 1024,
    ) -> None:
        """`engine`: the engine to use (a new counts-format `Engine()` if None; pass one
        in phoenix format to send presence lists, or in cluster mode to share presence
        between processes). `interval`: the shortest time between two polls, in seconds,
        so that churn goes out as one diff per topic per window. `max_queue`: how many
        messages a client may fall behind before it is closed (code 1013)."""
        self.engine = engine if engine is not None else Engine()
        self.max_queue = max_queue
        self.hub = Hub(self.engine, envelope="event", interval=interval)

    async def serve(
        self,
        websocket: Any,
        topic: str,
        key: str | None = None,
        meta: Meta = None,
    ) -> None:
        """Runs one client for `topic` until it disconnects: accepts the socket if it is not
        accepted yet, sends the state, tracks the presence (as `key`, None for an anonymous
        viewer, with `meta` in phoenix format), sends the diffs, untracks on disconnect.
        `websocket` is a Starlette `WebSocket` (anything with its ASGI `receive`/`send`
        and `client_state`). A presence the engine refuses (limits, an invalid topic, key
        or meta) closes the socket with code 1008 and the error's kind as the reason."""
        engine = self.engine
        if getattr(websocket.client_state, "name", "") == "CONNECTING":
            await websocket.accept()
        receive, send = websocket.receive, websocket.send
        self.hub.start()
        conn = next(self.hub.conn_ids)
        outbox = Outbox(self.max_queue)
        # The state as of the last poll, then the track, with no await in between: the next
        # poll's diff carries this presence's join and every change since that state.
        try:
            state, _seq = engine.state_message(topic, "event")
            engine.track(topic, conn, key, meta)
        except PresenceError as err:
            await send({"type": "websocket.close", "code": 1008, "reason": err.kind})
            return
        outbox.push(state)
        self.hub.add(topic, outbox)
        writer = asyncio.get_running_loop().create_task(outbox.write_to(send))
        try:
            await self._read(receive, topic, outbox, writer)
        finally:
            self.hub.discard(topic, outbox)
            engine.untrack_conn(conn)
            outbox.close()
        if not writer.done():
            writer.cancel()
        try:
            await writer
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the socket is gone
            pass
        if outbox.overflowed:
            try:
                await send({"type": "websocket.close", "code": 1013, "reason": "too far behind"})
            except (OSError, RuntimeError):
                pass

    async def _read(self, receive: Any, topic: str, outbox: Outbox, writer: asyncio.Task[None]) -> None:
        """Answers the client's sync requests until it disconnects (or the writer stops)."""
        async for text in client_texts(receive, writer):
            if '"sync"' in text:
                try:
                    wanted = json.loads(text)
                except ValueError:
                    continue
                if isinstance(wanted, dict) and wanted.get("event") == "sync":
                    outbox.push(self.engine.state_message(topic, "event")[0])

    async def stop(self) -> None:
        """Stops the poll loop (the sockets stay open; a new `serve()` starts it again)."""
        await self.hub.stop()
