"""presence_engine.phoenix under uvicorn, driven by the official `phoenix` npm client
(phoenix_client.mjs, run with node; phoenix.js and redux from tests/compat's node_modules,
the seed article's reducer from examples/web): joins, presence_state and presence_diff in
phoenix format (phoenix.js `Presence` equal to the engine's list) and counts format (the
seed's Redux reducer equal to the engine's counts), leave, socket close, a refused join,
heartbeats, and rejoin after the server restarts on the same port. Plus the frames
themselves, with a `websockets` client."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from typing import Any

import pytest

from integration_support import HERE, ROOT, Server

import websockets


@pytest.mark.parametrize("fmt", ["phoenix", "counts"])
def test_the_phoenix_client_joins_gets_state_and_diffs_and_rejoins_after_a_restart(fmt: str) -> None:
    node = shutil.which("node")
    if node is None or not (ROOT / "tests/compat/node_modules/phoenix").is_dir():
        pytest.fail("node and tests/compat's node_modules are needed (make test-python installs them)")
    server = Server("phoenix", "--format", fmt).start()
    try:
        client = subprocess.Popen(
            [node, "--experimental-websocket", "--no-warnings", str(HERE / "phoenix_client.mjs"), server.url, fmt],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert client.stdin is not None and client.stdout is not None
        try:
            assert client.stdout.readline().strip() == "restart"
            port = server.port
            server.stop()
            server = Server("phoenix", "--format", fmt).start(port)
            client.stdin.write("restarted\n")
            client.stdin.flush()
            assert client.stdout.readline().strip() == "ok"
            assert client.wait(30) == 0
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
            client.stdout.close()
            client.stdin.close()
    finally:
        server.stop()


def test_the_frames_are_phoenix_v2_with_the_channels_join_ref() -> None:
    async def scenario(server: Server) -> None:
        async def next_reply(ws: Any) -> list[Any]:
            """The next phx_reply, past the presence_diffs a poll may send first."""
            while (frame := json.loads(await ws.recv()))[3] != "phx_reply":
                assert frame[3] == "presence_diff"
            return list(frame)

        async with websockets.connect(f"{server.ws}socket/websocket?vsn=2.0.0") as ws:
            await ws.send(json.dumps(["3", "3", "video:f", "phx_join", {"user": "ann"}]))
            reply = json.loads(await ws.recv())
            assert reply == ["3", "3", "video:f", "phx_reply", {"status": "ok", "response": {"seq": 0, "node": None}}]
            state = json.loads(await ws.recv())
            assert state == ["3", None, "video:f", "presence_state", {}]
            diff = json.loads(await ws.recv())
            assert diff[:4] == [None, None, "video:f", "presence_diff"]
            assert list(diff[4]["joins"]) == ["ann"] and diff[4]["leaves"] == {}
            await ws.send(json.dumps([None, "4", "phoenix", "heartbeat", {}]))
            assert json.loads(await ws.recv()) == [None, "4", "phoenix", "phx_reply", {"status": "ok", "response": {}}]
            # Joining a joined topic again closes the old channel first, as Phoenix does.
            await ws.send(json.dumps(["5", "5", "video:f", "phx_join", {}]))
            assert json.loads(await ws.recv()) == ["3", None, "video:f", "phx_close", {}]
            rejoin = json.loads(await ws.recv())
            assert rejoin[:4] == ["5", "5", "video:f", "phx_reply"] and rejoin[4]["response"]["seq"] == 1
            assert json.loads(await ws.recv())[:4] == ["5", None, "video:f", "presence_state"]
            await ws.send(json.dumps(["6", "6", "video:other", "custom", {}]))
            assert await asyncio.wait_for(next_reply(ws), 10) == [
                "6", "6", "video:other", "phx_reply", {"status": "error", "response": {"reason": "unmatched topic"}}
            ]
            await ws.send(json.dumps(["5", "7", "video:f", "phx_leave", {}]))
            # The reply comes, maybe after the diff of the rejoin if that was polled first.
            frame = await asyncio.wait_for(next_reply(ws), 10)
            assert frame == ["5", "7", "video:f", "phx_reply", {"status": "ok", "response": {}}]

    with Server("phoenix", "--format", "phoenix") as server:
        asyncio.run(scenario(server))
