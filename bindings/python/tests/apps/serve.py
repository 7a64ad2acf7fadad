"""The servers the integration tests run: each integration of presence_engine in a real
uvicorn on a loopback port, one process per server.

    python serve.py socketio|phoenix|fastapi [--format counts|phoenix]
        [--node NAME --redis URL [--redis-manager]] [--port 0]

Prints "listening on http://127.0.0.1:PORT/" once the socket is bound. With --node the
engine is a cluster node linked by the engine's Redis link (the secret comes from
$PRESENCE_TEST_SECRET); --redis-manager also gives python-socketio its AsyncRedisManager.
Besides each integration's own endpoints, GET /counts?topic=T answers the engine's live
counts, and in phoenix format its list, as JSON (the FastAPI example has its own
/counts/<topic>).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn

from presence_engine import Engine

ROOT = Path(__file__).resolve().parents[4]
TOPIC_PREFIX = "video:"


def with_counts(engine: Engine, app: Any) -> Any:
    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/counts":
            topic = parse_qs(scope["query_string"].decode()).get("topic", [""])[0]
            body = engine.counts(topic).to_dict()
            if engine.format == "phoenix":
                body["list"] = engine.list(topic)
            data = json.dumps(body).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": data})
        else:
            await app(scope, receive, send)

    return wrapped


def socketio_app(engine: Engine, args: argparse.Namespace) -> Any:
    import socketio

    from presence_engine.socketio import SocketIOPresence

    manager = socketio.AsyncRedisManager(args.redis, channel="sio-test") if args.redis_manager else None
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=manager)

    async def key(sid: str) -> str | None:
        return (await sio.get_session(sid)).get("user")

    SocketIOPresence(sio, engine, rooms=lambda room: room.startswith(TOPIC_PREFIX), key=key)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        await sio.save_session(sid, {"user": (auth or {}).get("user")})

    @sio.event
    async def watch(sid: str, topic: str) -> None:
        await sio.enter_room(sid, topic)

    @sio.event
    async def unwatch(sid: str, topic: str) -> None:
        await sio.leave_room(sid, topic)

    @sio.event
    async def chat(sid: str, data: Any) -> None:
        # A message of the app's own, through the client manager (Redis with
        # --redis-manager): presence does not stand in its way.
        await sio.emit("chat", data, room=data["topic"])

    return socketio.ASGIApp(sio)


def phoenix_app(engine: Engine, args: argparse.Namespace) -> Any:
    from presence_engine.phoenix import PhoenixEndpoint

    return PhoenixEndpoint(engine)


def fastapi_app(engine: Engine | None, args: argparse.Namespace) -> Any:
    sys.path.insert(0, str(ROOT / "examples" / "fastapi"))
    import app as example  # the example reads PRESENCE_NODE etc. from the environment

    return example.app


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["socketio", "phoenix", "fastapi"])
    parser.add_argument("--format", default="counts")
    parser.add_argument("--node")
    parser.add_argument("--redis")
    parser.add_argument("--redis-manager", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    if args.kind == "fastapi":
        if args.node:
            os.environ.update(PRESENCE_NODE=args.node, PRESENCE_REDIS=args.redis, PRESENCE_SECRET=os.environ["PRESENCE_TEST_SECRET"])
        app = fastapi_app(None, args)
    else:
        cluster = {"node": args.node, "secret": os.environ["PRESENCE_TEST_SECRET"], "tick_ms": 50} if args.node else None
        engine = Engine(format=args.format, cluster=cluster)
        if args.node:
            engine.start_redis(args.redis, "presence-test")
        app = with_counts(engine, {"socketio": socketio_app, "phoenix": phoenix_app}[args.kind](engine, args))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="auto"))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    sock.listen(128)
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}/", flush=True)
    await server.serve(sockets=[sock])


if __name__ == "__main__":
    asyncio.run(main())
