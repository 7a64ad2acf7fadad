"""The Python web demo server (examples/web/server/python/server.py, what `make demo`
runs) speaks the Phoenix Channels contract the page and the Node server share: joins on
/socket/websocket reply {"seq","node"}, then presence_state and presence_diff in counts
format; /api/presence answers the engine's counts; a topic or user name the page would
never send is refused with a reason; in cluster mode the reply names the node, and two
nodes over Redis count the same."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from integration_support import ROOT, SECRET, redis_server, until

import websockets

SERVER = ROOT / "examples/web/server/python/server.py"


class Demo:
    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PRESENCE_DEMO_SECRET": SECRET}
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", "0", "--window-ms", "50", *args],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line
        self.url = line.split("listening on ", 1)[1].split()[0]

    def api(self, topic: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}api/presence?topic={topic}", timeout=5) as r:
            return dict(json.loads(r.read()))

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            assert self.proc.wait(15) == 0
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            assert self.proc.stdout is not None
            self.proc.stdout.close()


async def join(demo: Demo, topic: str, user: str | None) -> tuple[Any, list[Any]]:
    ws = await websockets.connect(f"ws{demo.url[4:]}socket/websocket?vsn=2.0.0")
    await ws.send(json.dumps(["1", "1", topic, "phx_join", {"user": user} if user else {}]))
    reply = json.loads(await ws.recv())
    frames = [reply]
    if reply[4]["status"] == "ok":
        frames.append(json.loads(await ws.recv()))
    return ws, frames


def test_the_demo_server_speaks_the_phoenix_contract_in_counts_format() -> None:
    async def scenario(demo: Demo) -> None:
        ws, (reply, state) = await join(demo, "video:1", "alice")
        assert reply == ["1", "1", "video:1", "phx_reply", {"status": "ok", "response": {"seq": 0, "node": None}}]
        assert state == ["1", None, "video:1", "presence_state", {"viewers": {"count": 0}, "users": {"count": 0}}]
        diff = json.loads(await ws.recv())
        assert diff == [None, None, "video:1", "presence_diff", {
            "joins": {"viewers": {"count": 0}, "users": {"count": 1}},
            "leaves": {"viewers": {"count": 0}, "users": {"count": 0}},
        }]
        assert await asyncio.to_thread(demo.api, "video:1") == {
            "topic": "video:1", "viewers": 0, "users": 1, "connections": 1, "seq": 1, "pending": 0
        }
        for topic, user in (("lobby", "bob"), ("video:1", "no spaces")):
            bad, (refused,) = await join(demo, topic, user)
            assert refused[4] == {"status": "error", "response": {"reason": "invalid_argument"}}
            await bad.close()
        await ws.close()
        await until(lambda: demo.api("video:1")["connections"] == 0, "the socket untracked")

    demo = Demo()
    try:
        asyncio.run(scenario(demo))
        try:  # the page, or what to do when it is not built
            with urllib.request.urlopen(demo.url + "watch", timeout=5) as r:
                assert r.status == 200 and r.headers["content-type"].startswith("text/html")
        except urllib.error.HTTPError as err:
            assert err.code == 503 and b"not built" in err.read()
    finally:
        demo.stop()


def test_two_demo_nodes_over_redis_count_the_same_and_name_themselves(tmp_path: Path) -> None:
    async def scenario(a: Demo, b: Demo) -> None:
        wa, (reply_a, _) = await join(a, "video:2", "carol")
        wb, (reply_b, _) = await join(b, "video:2", None)
        assert reply_a[4]["response"]["node"] == "a" and reply_b[4]["response"]["node"] == "b"
        for demo in (a, b):
            await until(
                lambda d=demo: (lambda r: (r["viewers"], r["users"], r["peers"]))(d.api("video:2")) == (1, 1, 1),
                "both presences on both nodes",
            )
        await wa.close()
        await wb.close()

    with redis_server(tmp_path) as url:
        a = Demo("--node", "a", "--redis", url, "--tick-ms", "50")
        try:
            b = Demo("--node", "b", "--redis", url, "--tick-ms", "50")
            try:
                asyncio.run(scenario(a, b))
            finally:
                b.stop()
        finally:
            a.stop()
