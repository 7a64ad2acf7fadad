"""presence_engine.socketio in a real python-socketio AsyncServer under uvicorn, with
python-socketio clients (apps/serve.py socketio: the event "watch" enters a room,
"unwatch" leaves it, the presence key is the `user` of the connection's auth).

A socket that enters a presence room gets the room's state with its seq, then every diff
of the room in seq order; each client's view (state + diffs) stays equal to the engine's
counts; a user with two tabs counts once; leaving the room or disconnecting (cleanly or
not) untracks; two server processes linked by the engine's Redis link show the same
counts, with and without python-socketio's AsyncRedisManager."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from integration_support import Server, http_get, redis_server, until

import socketio

TOPIC = "video:1"


class Viewer:
    """A python-socketio client and its view of each room: the state, then the diffs."""

    def __init__(self, user: str | None = None) -> None:
        self.user = user
        self.client = socketio.AsyncClient(reconnection=False)
        self.views: dict[str, dict[str, int]] = {}
        self.seqs: dict[str, int] = {}
        self.states: list[dict[str, Any]] = []
        self.diffs: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.chats: list[Any] = []
        self.client.on("presence_state", self._state)
        self.client.on("presence_diff", self._diff)
        self.client.on("presence_error", self.errors.append)
        self.client.on("chat", self.chats.append)

    def _state(self, message: dict[str, Any]) -> None:
        assert message["event"] == "presence_state"
        self.states.append(message)
        topic, payload = message["topic"], message["payload"]
        self.views[topic] = {"viewers": payload["viewers"]["count"], "users": payload["users"]["count"]}
        self.seqs[topic] = message["seq"]

    def _diff(self, message: dict[str, Any]) -> None:
        assert message["event"] == "presence_diff"
        self.diffs.append(message)
        topic, seq = message["topic"], message["seq"]
        assert topic in self.views, f"a diff of {topic} before its state"
        assert seq == self.seqs[topic] + 1 or seq == 1, f"{topic}: seq {seq} after {self.seqs[topic]}"
        self.seqs[topic] = seq
        joins, leaves, view = message["payload"]["joins"], message["payload"]["leaves"], self.views[topic]
        for group in ("viewers", "users"):
            view[group] += joins[group]["count"] - leaves[group]["count"]

    async def connect(self, server: Server) -> Viewer:
        await self.client.connect(server.url, auth={"user": self.user} if self.user else None, transports=["websocket"])
        return self

    async def watch(self, topic: str = TOPIC) -> None:
        await self.client.emit("watch", topic)
        await until(lambda: topic in self.views, f"the state of {topic}")


async def counts(server: Server, topic: str = TOPIC) -> dict[str, int]:
    return dict(await http_get(server, f"/counts?topic={topic}"))


async def views_match(server: Server, viewers: list[Viewer], expected: dict[str, int], topic: str = TOPIC) -> None:
    """Waits until the engine holds `expected` and every viewer's view agrees."""

    async def check() -> bool:
        live = await counts(server, topic)
        return live == expected and all(
            v.views.get(topic) == {"viewers": live["viewers"], "users": live["users"]} for v in viewers
        )

    await until(check, f"counts {expected} in the engine and in every view")


def test_a_joiner_gets_the_state_with_its_seq_then_every_diff_of_the_room() -> None:
    async def scenario(server: Server) -> None:
        alice = await Viewer("alice").connect(server)
        await alice.watch()
        first = alice.states[0]
        assert first == {"event": "presence_state", "topic": TOPIC, "seq": 0, "payload": {"viewers": {"count": 0}, "users": {"count": 0}}}
        await views_match(server, [alice], {"viewers": 0, "users": 1, "connections": 1})
        assert alice.diffs[0]["seq"] == 1
        anon = await Viewer().connect(server)
        await anon.watch()
        assert anon.seqs[TOPIC] >= 1  # the state of the last poll, and its seq
        await views_match(server, [alice, anon], {"viewers": 1, "users": 1, "connections": 2})
        # A room that is not a presence room is never tracked.
        await alice.client.emit("watch", "lobby")
        await asyncio.sleep(0.2)
        assert "lobby" not in alice.views and (await counts(server, "lobby"))["connections"] == 0
        # A presence the engine refuses (a key over max_key_bytes): presence_error, no state.
        refused = await Viewer("x" * 300).connect(server)
        await refused.client.emit("watch", TOPIC)
        await until(lambda: refused.errors == [{"topic": TOPIC, "reason": "too_long"}], "presence_error")
        assert refused.states == [] and (await counts(server))["connections"] == 2
        for v in (alice, anon, refused):
            await v.client.disconnect()

    with Server("socketio") as server:
        asyncio.run(scenario(server))


def test_a_user_with_two_tabs_counts_once_and_leaving_the_room_untracks() -> None:
    async def scenario(server: Server) -> None:
        tab1 = await Viewer("bob").connect(server)
        tab2 = await Viewer("bob").connect(server)
        other = await Viewer("carol").connect(server)
        for v in (tab1, tab2, other):
            await v.watch()
        await views_match(server, [tab1, tab2, other], {"viewers": 0, "users": 2, "connections": 3})
        await tab2.client.emit("unwatch", TOPIC)
        await views_match(server, [tab1, other], {"viewers": 0, "users": 2, "connections": 2})
        diffs_before = len(tab2.diffs)
        await other.client.emit("unwatch", TOPIC)
        await views_match(server, [tab1], {"viewers": 0, "users": 1, "connections": 1})
        assert len(tab2.diffs) == diffs_before, "a socket that left the room still got its diffs"
        # Entering again tracks again, from a new state.
        await tab2.client.emit("watch", TOPIC)
        await until(lambda: len(tab2.states) == 2, "a second state")
        await views_match(server, [tab1, tab2], {"viewers": 0, "users": 1, "connections": 2})
        for v in (tab1, tab2, other):
            await v.client.disconnect()
        await views_match(server, [], {"viewers": 0, "users": 0, "connections": 0})

    with Server("socketio") as server:
        asyncio.run(scenario(server))


KILLED_CLIENT = textwrap.dedent(
    """
    import asyncio, sys, socketio
    async def main():
        client = socketio.AsyncClient(reconnection=False)
        got = asyncio.Event()
        client.on("presence_state", lambda m: got.set())
        await client.connect(sys.argv[1], auth={"user": "dave"}, transports=["websocket"])
        await client.emit("watch", sys.argv[2])
        await got.wait()
        print("watching", flush=True)
        await asyncio.sleep(3600)
    asyncio.run(main())
    """
)


def test_a_client_killed_without_a_clean_leave_is_untracked(tmp_path: Path) -> None:
    async def scenario(server: Server) -> None:
        watcher = await Viewer().connect(server)
        await watcher.watch()
        proc = subprocess.Popen(
            [sys.executable, "-c", KILLED_CLIENT, server.url, TOPIC], stdout=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout is not None
            assert (await asyncio.to_thread(proc.stdout.readline)).strip() == "watching"
            await views_match(server, [watcher], {"viewers": 1, "users": 1, "connections": 2})
            proc.send_signal(signal.SIGKILL)  # no disconnect packet, no room leave
        finally:
            proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()
        await views_match(server, [watcher], {"viewers": 1, "users": 0, "connections": 1})
        await watcher.client.disconnect()

    with Server("socketio") as server:
        asyncio.run(scenario(server))


@pytest.mark.parametrize("manager", ["engine link only", "with AsyncRedisManager"])
def test_two_processes_over_redis_show_the_same_counts(tmp_path: Path, manager: str) -> None:
    extra = ["--redis-manager"] if manager != "engine link only" else []

    async def scenario(a: Server, b: Server) -> None:
        on_a = [await Viewer("erin").connect(a), await Viewer().connect(a)]
        on_b = [await Viewer("erin").connect(b), await Viewer("frank").connect(b)]
        for v in on_a + on_b:
            await v.watch()
        expected = {"viewers": 1, "users": 2, "connections": 4}
        await views_match(a, on_a, expected)
        await views_match(b, on_b, expected)
        if extra:
            # The app's own messages still go through python-socketio's Redis manager.
            await on_a[0].client.emit("chat", {"topic": TOPIC, "text": "hi"})
            await until(lambda: on_b[1].chats == [{"topic": TOPIC, "text": "hi"}], "the chat message on b")
        await on_b[1].client.disconnect()
        await on_a[1].client.emit("unwatch", TOPIC)
        expected = {"viewers": 0, "users": 1, "connections": 2}
        await views_match(a, on_a[:1], expected)
        await views_match(b, on_b[:1], expected)
        for v in (on_a[0], on_a[1], on_b[0]):
            await v.client.disconnect()

    with redis_server(tmp_path) as url:
        a = Server("socketio", "--node", "a", "--redis", url, *extra).start()
        try:
            with Server("socketio", "--node", "b", "--redis", url, *extra) as b:
                asyncio.run(scenario(a, b))
        finally:
            a.stop()
