"""A Phoenix Channels endpoint as an ASGI app, so that a front end written for a Phoenix
server (phoenix.js `Socket` + `Channel` + `Presence`, or its own `presence_state` /
`presence_diff` handlers) keeps working against a Python server.

    from presence_engine import Engine
    from presence_engine.phoenix import PhoenixEndpoint

    app = PhoenixEndpoint(Engine(format="phoenix"))   # uvicorn module:app
    # JS: new Socket("/socket").channel("room:1", {user: "alice"}).join()

It speaks the Phoenix Channels V2 JSON serializer (`[join_ref, ref, topic, event,
payload]`, what phoenix.js sends with `vsn=2.0.0`) on `/socket/websocket`:

- `phx_join` on any topic (the topic is the presence topic, as it is) with params
  `{"user": "<name>"}` (missing or empty: an anonymous viewer) replies
  `{"status":"ok","response":{"seq":S,"node":N}}` (S: the seq of the state that follows;
  N: the cluster node's name, or null), then pushes `presence_state` (the engine's state,
  with the channel's join_ref), then one `presence_diff` per poll window that changed the
  topic (the engine's rendered frame, sent as it is to every channel of the topic). A
  join the engine refuses (limits, an invalid topic or key) replies
  `{"status":"error","response":{"reason":"<kind>"}}` (kind: `PresenceError.kind`, e.g.
  "limit_reached", "too_long"). A second join of a joined topic closes the first channel
  (`phx_close`) and joins again, as Phoenix does.
- `phx_leave` untracks and replies ok; `heartbeat` on topic "phoenix" replies ok; closing
  the socket untracks all of its channels.

The engine's format is the payload's: "phoenix" for phoenix.js `Presence`, "counts" for
clients that want `{"viewers":{"count":V},"users":{"count":U}}`. Other paths go to `app`
(e.g. Starlette serving the page) or get a 404. In cluster mode (an Engine with
`cluster=` and `start_redis()`) every process sends its own sockets the diffs of the
whole cluster.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from . import Engine, Meta, PresenceError
from .asgi import Hub, Outbox, client_texts

__all__ = ["PhoenixEndpoint"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_OK_EMPTY = '{"status":"ok","response":{}}'


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _default_key(topic: str, params: dict[str, Any]) -> str | None:
    user = params.get("user")
    return user if user else None


class _Channel:
    __slots__ = ("join_ref",)

    def __init__(self, join_ref: str | None) -> None:
        self.join_ref = join_ref


class PhoenixEndpoint:
    """An ASGI app: the Phoenix Channels socket at `path`, presence tracked in `engine`.
    See the module's documentation for the protocol."""

    def __init__(
        self,
        engine: Engine | None = None,
        *,
        path: str = "/socket/websocket",
        app: ASGIApp | None = None,
        interval: float = 0.05,
        key: Callable[[str, dict[str, Any]], str | None] = _default_key,
        meta: Callable[[str, dict[str, Any]], Meta] | None = None,
        authorize: Callable[[str, dict[str, Any]], str | None] | None = None,
        max_queue: int = 1024,
    ) -> None:
        """`engine`: the engine (a new `Engine(format="phoenix")` if None). `path`: the
        socket's path (phoenix.js `new Socket("/socket")` connects to /socket/websocket).
        `app`: the ASGI app for every other request and for lifespan events. `interval`:
        the shortest time between two polls, in seconds. `key(topic, params)`: the
        presence key of a join (default: params["user"], None when missing or empty).
        `meta(topic, params)`: its meta (phoenix format). `authorize(topic, params)`: None
        to let a join through, or the reason to refuse it with. `max_queue`: how many
        messages a client may fall behind before it is closed (code 1013)."""
        self.engine = engine if engine is not None else Engine(format="phoenix")
        self.path = path
        self.app = app
        self.key = key
        self.meta = meta
        self.authorize = authorize
        self.max_queue = max_queue
        cluster = self.engine.config.get("cluster")
        self.node: str | None = cluster["node"] if cluster else None
        self.hub = Hub(self.engine, envelope="phoenix", interval=interval)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket" and scope["path"] == self.path:
            await self._socket(receive, send)
        elif self.app is not None:
            await self.app(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await self.hub.stop()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"not found"})

    async def stop(self) -> None:
        """Stops the poll loop (a new connection starts it again)."""
        await self.hub.stop()

    async def _socket(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        self.hub.start()
        outbox = Outbox(self.max_queue)
        conn = next(self.hub.conn_ids)
        channels: dict[str, _Channel] = {}
        writer = asyncio.get_running_loop().create_task(outbox.write_to(send))
        try:
            async for text in client_texts(receive, writer):
                self._handle(text, conn, channels, outbox)
        finally:
            for topic in channels:
                self.hub.discard(topic, outbox)
            self.engine.untrack_conn(conn)
            outbox.close()
        try:
            await writer
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the socket is gone
            pass
        if outbox.overflowed:
            try:
                await send({"type": "websocket.close", "code": 1013, "reason": "too far behind"})
            except Exception:  # noqa: BLE001 - the socket is gone
                pass

    def _handle(self, text: str, conn: int, channels: dict[str, _Channel], outbox: Outbox) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            return
        if not (isinstance(frame, list) and len(frame) == 5 and isinstance(frame[2], str) and isinstance(frame[3], str)):
            return
        join_ref, ref, topic, event, payload = frame

        def reply(status_and_response: str, join: Any = join_ref) -> None:
            outbox.push(f'[{_json(join)},{_json(ref)},{_json(topic)},"phx_reply",{status_and_response}]')

        def refuse(reason: str) -> None:
            reply('{"status":"error","response":{"reason":' + _json(reason) + "}}")

        if event == "heartbeat" and topic == "phoenix":
            reply(_OK_EMPTY)
        elif event == "phx_join":
            params = payload if isinstance(payload, dict) else {}
            old = channels.pop(topic, None)
            if old is not None:
                # Phoenix closes a channel joined again on the same socket before the new join.
                self._leave(topic, conn, outbox)
                outbox.push(f'[{_json(old.join_ref)},null,{_json(topic)},"phx_close",{{}}]')
            if self.authorize is not None:
                reason = self.authorize(topic, params)
                if reason is not None:
                    refuse(reason)
                    return
            try:
                key = self.key(topic, params)
                meta = self.meta(topic, params) if self.meta is not None else None
            except (TypeError, ValueError):
                refuse("invalid_argument")
                return
            if key is not None and not isinstance(key, str):
                refuse("invalid_argument")
                return
            # The state as of the last poll, then the track, with no await in between: the
            # next poll's diff carries this join and every change since that state.
            try:
                state, seq = self.engine.state_message(topic, "phoenix", join_ref=join_ref if isinstance(join_ref, str) else None)
                self.engine.track(topic, conn, key, meta)
            except PresenceError as err:
                refuse(err.kind)
                return
            except (TypeError, ValueError):
                refuse("invalid_argument")
                return
            channels[topic] = _Channel(join_ref)
            reply(f'{{"status":"ok","response":{{"seq":{seq},"node":{_json(self.node)}}}}}')
            outbox.push(state)
            self.hub.add(topic, outbox)
        elif event == "phx_leave":
            # As Phoenix does, a leave of a channel that is not joined is answered ok too.
            if channels.pop(topic, None) is not None:
                self._leave(topic, conn, outbox)
            reply(_OK_EMPTY)
        elif topic in channels:
            refuse("unmatched event")
        else:
            refuse("unmatched topic")

    def _leave(self, topic: str, conn: int, outbox: Outbox) -> None:
        self.hub.discard(topic, outbox)
        try:
            self.engine.untrack(topic, conn)
        except PresenceError:
            pass  # never tracked (a refused join) or gone already
