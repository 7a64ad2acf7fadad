"""Presence for python-socketio's `AsyncServer`: the rooms you choose are presence rooms.

    import socketio
    from presence_engine.socketio import SocketIOPresence

    sio = socketio.AsyncServer(async_mode="asgi")
    presence = SocketIOPresence(sio, rooms=lambda room: room.startswith("video:"),
                                key=lambda sid: users.get(sid))   # None: anonymous viewer

    @sio.event
    async def watch(sid, video):
        await sio.enter_room(sid, f"video:{video}")   # tracked; the state is sent to sid

A socket that enters a presence room (by `sio.enter_room`, from any process when the
server uses a pub/sub client manager) is tracked in the engine under its own conn id, with
the key `key(sid)` gives (a function or a coroutine function; None for an anonymous
viewer), and receives the event `presence_state` with
`{"event":"presence_state","topic":ROOM,"seq":S,"payload":P}`. Every poll window that
changes the room sends `presence_diff` with `{"event":"presence_diff","topic":ROOM,
"seq":S,"payload":P}` to the room's sockets: the engine's own text, wrapped once per
room in a Socket.IO packet, never decoded or encoded again per socket. Leaving the room
(`sio.leave_room`, `sio.close_room`) or disconnecting, cleanly or not, untracks it. A
presence the engine refuses (limits, a topic or key it rejects) sends `presence_error`
with `{"topic":ROOM,"reason":KIND}` instead of the state, and the socket gets no diffs of
that room.

Several server processes: give each one an `Engine(cluster=...)` linked by
`engine.start_redis(...)`. Each process then sends its own sockets the diffs of the whole
cluster, with or without `socketio.AsyncRedisManager` (which this never uses for
presence: every process has the diffs already).

It hooks the server's client manager (`sio.manager`), so that every way into and out of
a room is seen; it works with `AsyncManager` and the pub/sub managers.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from . import Engine, PresenceError

__all__ = ["SocketIOPresence"]

KeyFunction = Callable[[str], "str | None | Awaitable[str | None]"]


class _Member:
    """One socket in one presence room: joining (its state not sent yet: diffs wait in
    `held`), then ready (diffs go straight out)."""

    __slots__ = ("eio_sid", "held")

    def __init__(self, eio_sid: str) -> None:
        self.eio_sid = eio_sid
        self.held: list[str] | None = []


class SocketIOPresence:
    """Tracks the sockets of a python-socketio `AsyncServer` that enter presence rooms.
    See the module's documentation."""

    def __init__(
        self,
        sio: Any,
        engine: Engine | None = None,
        *,
        rooms: Callable[[str], bool] = lambda room: True,
        key: KeyFunction = lambda sid: None,
        namespace: str = "/",
        interval: float = 0.05,
    ) -> None:
        """`sio`: the `socketio.AsyncServer`. `engine`: the engine (a new counts-format
        `Engine()` if None). `rooms(room)`: whether a room is a presence room (every room
        by default; a socket's own sid room never is). `key(sid)`: the presence key of a
        socket, e.g. from its session (a coroutine function works too). `namespace`: the
        Socket.IO namespace. `interval`: the shortest time between two polls, in seconds,
        so that churn goes out as one diff per room per window."""
        self.sio = sio
        self.engine = engine if engine is not None else Engine()
        self.rooms = rooms
        self.key = key
        self.namespace = namespace
        self.interval = interval
        # A Socket.IO EVENT packet around the engine's message: `2["presence_diff",M]`, or
        # `2/ns,["presence_diff",M]` outside the default namespace.
        self._prefix = "2" if namespace == "/" else f"2{namespace},"
        self._conn_ids = itertools.count(1)
        self._conns: dict[str, int] = {}  # sid -> engine conn, while in a presence room
        self._joined: dict[str, dict[str, object]] = {}  # sid -> room -> join token
        self._members: dict[str, dict[str, _Member]] = {}  # room -> sid -> member
        self._pump: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        manager = sio.manager
        enter, leave = manager.basic_enter_room, manager.basic_leave_room

        def basic_enter_room(sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> Any:
            result = enter(sid, namespace, room, eio_sid=eio_sid)
            if namespace == self.namespace and isinstance(room, str) and room != sid and self.rooms(room):
                self._entered(sid, room, eio_sid or manager.eio_sid_from_sid(sid, namespace))
            return result

        def basic_leave_room(sid: str, namespace: str, room: Any) -> Any:
            result = leave(sid, namespace, room)
            if namespace == self.namespace and isinstance(room, str):
                self._left(sid, room)
            return result

        # Instance attributes: the manager's enter_room, leave_room, close_room and
        # disconnect (and the pub/sub managers' handlers of other processes' requests) all
        # end in these two.
        manager.basic_enter_room = basic_enter_room
        manager.basic_leave_room = basic_leave_room

    def _packet(self, event: str, message: str) -> str:
        return f'{self._prefix}["{event}",{message}]'

    def _entered(self, sid: str, room: str, eio_sid: str) -> None:
        joined = self._joined.setdefault(sid, {})
        if room in joined:
            return  # entering a room twice changes nothing
        token = joined[room] = object()
        self._conns.setdefault(sid, next(self._conn_ids))
        self._start()
        task = asyncio.get_running_loop().create_task(self._join(sid, room, eio_sid, token))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _join(self, sid: str, room: str, eio_sid: str, token: object) -> None:
        key = self.key(sid)
        if inspect.isawaitable(key):
            key = await key
        if self._joined.get(sid, {}).get(room) is not token:
            return  # left the room (or the server) while its key was looked up
        eio = self.sio.eio
        # The state as of the last poll, then the track, with no await in between: the next
        # poll's diff carries this join and every change since that state.
        try:
            state, _seq = self.engine.state_message(room, "event")
            self.engine.track(room, self._conns[sid], key)
        except PresenceError as err:
            del self._joined[sid][room]
            self._forget(sid)
            reason = json.dumps({"topic": room, "reason": err.kind}, separators=(",", ":"), ensure_ascii=False)
            await eio.send(eio_sid, self._packet("presence_error", reason))
            return
        member = self._members.setdefault(room, {})[sid] = _Member(eio_sid)
        await eio.send(eio_sid, self._packet("presence_state", state))
        # Diffs polled while the state was being sent waited in `held`, in order.
        while member.held:
            held, member.held = member.held, []
            for packet in held:
                await eio.send(eio_sid, packet)
        member.held = None

    def _left(self, sid: str, room: str) -> None:
        joined = self._joined.get(sid)
        if joined is None or joined.pop(room, None) is None:
            return
        members = self._members.get(room)
        if members is not None and members.pop(sid, None) is not None:
            if not members:
                del self._members[room]
            try:
                self.engine.untrack(room, self._conns[sid])
            except PresenceError:
                pass  # the engine is closed
        self._forget(sid)

    def _forget(self, sid: str) -> None:
        if not self._joined.get(sid, True):
            del self._joined[sid]
            del self._conns[sid]

    def _start(self) -> None:
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        send = self.sio.eio.send
        members_of = self._members
        async for batch in self.engine.diffs(interval=self.interval, envelope="event"):
            for topic, message in batch.pairs():
                members = members_of.get(topic)
                if not members:
                    continue
                packet = f'{self._prefix}["presence_diff",{message}]'
                for member in tuple(members.values()):
                    if member.held is not None:
                        member.held.append(packet)
                        continue
                    try:
                        await send(member.eio_sid, packet)
                    except Exception:  # noqa: BLE001
                        # A socket that closed while the batch went out: its disconnect
                        # untracks it, and the other sockets still get their diffs.
                        pass

    async def stop(self) -> None:
        """Stops the poll loop (the next socket entering a presence room starts it again)."""
        pump, self._pump = self._pump, None
        if pump is not None and not pump.done():
            pump.cancel()
            try:
                await pump
            except asyncio.CancelledError:
                pass
