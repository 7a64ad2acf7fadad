"""presence_engine.asgi through the FastAPI example (examples/fastapi/app.py) under
uvicorn, with `websockets` clients on /presence/<topic>?user=<name>.

A client gets the topic's state with its seq at once, then every diff of the topic in seq
order; its view stays equal to the engine's counts (GET /counts/<topic>); a user with two
tabs counts once; `{"event":"sync"}` sends the state again; a socket that closes (or whose
client dies) is untracked; two processes linked by the engine's Redis link show the same
counts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from integration_support import Server, http_get, redis_server, until

import websockets

TOPIC = "video:7"


class Client:
    """A websockets client of /presence/<topic> and its view: the state, then the diffs."""

    def __init__(self, server: Server, user: str | None = None, topic: str = TOPIC) -> None:
        self.url = f"{server.ws}presence/{topic}" + (f"?user={user}" if user else "")
        self.view: dict[str, int] | None = None
        self.seq = -1
        self.states = 0
        self.first: dict[str, Any] | None = None
        self.task: asyncio.Task[None] | None = None
        self.ws: Any = None

    async def open(self) -> Client:
        self.ws = await websockets.connect(self.url)
        self.task = asyncio.create_task(self._read())
        await until(lambda: self.view is not None, "the state")
        return self

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                self._apply(json.loads(text))
        except websockets.ConnectionClosed:
            pass

    def _apply(self, m: dict[str, Any]) -> None:
        if m["event"] == "presence_state":
            self.first = self.first or m
            self.states += 1
            self.view = {g: m["payload"][g]["count"] for g in ("viewers", "users")}
        else:
            assert m["event"] == "presence_diff" and self.view is not None
            assert m["seq"] == self.seq + 1 or m["seq"] == 1, f"seq {m['seq']} after {self.seq}"
            for g in ("viewers", "users"):
                self.view[g] += m["payload"]["joins"][g]["count"] - m["payload"]["leaves"][g]["count"]
        self.seq = m["seq"]

    async def close(self) -> None:
        await self.ws.close()
        if self.task is not None:
            await self.task


async def views_match(server: Server, clients: list[Client], expected: dict[str, int]) -> None:
    async def check() -> bool:
        live = await http_get(server, f"/counts/{TOPIC}")
        return live == expected and all(c.view == {"viewers": live["viewers"], "users": live["users"]} for c in clients)

    await until(check, f"counts {expected} in the engine and in every view")


def test_a_client_gets_the_state_then_the_diffs_and_is_untracked_when_it_closes() -> None:
    async def scenario(server: Server) -> None:
        first = await Client(server, "alice").open()
        assert first.first == {
            "event": "presence_state", "topic": TOPIC, "seq": 0, "payload": {"viewers": {"count": 0}, "users": {"count": 0}}
        }
        await views_match(server, [first], {"viewers": 0, "users": 1, "connections": 1})
        tab2 = await Client(server, "alice").open()
        anon = await Client(server).open()
        await views_match(server, [first, tab2, anon], {"viewers": 1, "users": 1, "connections": 3})
        await anon.ws.send(json.dumps({"event": "sync"}))
        await until(lambda: anon.states == 2, "a second state after sync")
        await tab2.close()
        await views_match(server, [first, anon], {"viewers": 1, "users": 1, "connections": 2})
        # Dropped without a closing handshake: the server sees the connection end.
        anon.ws.transport.abort()
        await anon.task
        await views_match(server, [first], {"viewers": 0, "users": 1, "connections": 1})
        # A presence the engine refuses (a key over max_key_bytes) closes the socket with
        # code 1008 and the error's kind, and changes nothing.
        refused = await websockets.connect(f"{server.ws}presence/{TOPIC}?user={'x' * 300}")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await refused.recv()
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "too_long")
        await views_match(server, [first], {"viewers": 0, "users": 1, "connections": 1})
        await first.close()
        await views_match(server, [], {"viewers": 0, "users": 0, "connections": 0})

    with Server("fastapi") as server:
        asyncio.run(scenario(server))


def test_two_processes_over_redis_show_the_same_counts(tmp_path: Path) -> None:
    async def scenario(a: Server, b: Server) -> None:
        on_a = [await Client(a, "gina").open(), await Client(a).open()]
        on_b = [await Client(b, "gina").open(), await Client(b, "hal").open()]
        await views_match(a, on_a, {"viewers": 1, "users": 2, "connections": 4})
        await views_match(b, on_b, {"viewers": 1, "users": 2, "connections": 4})
        await on_b[1].close()
        await on_a[1].close()
        await views_match(a, on_a[:1], {"viewers": 0, "users": 1, "connections": 2})
        await views_match(b, on_b[:1], {"viewers": 0, "users": 1, "connections": 2})
        await on_a[0].close()
        await on_b[0].close()

    with redis_server(tmp_path) as url:
        a = Server("fastapi", "--node", "a", "--redis", url).start()
        try:
            with Server("fastapi", "--node", "b", "--redis", url) as b:
                asyncio.run(scenario(a, b))
        finally:
            a.stop()
