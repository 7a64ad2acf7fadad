"""The demo server in Python: uvicorn serving the built page (dist/) and a Phoenix
Channels endpoint (presence_engine.phoenix) on the same port, presence_engine
(bindings/python) for the bookkeeping. The Node server (../node/server.js) speaks the
same protocol.

    python server/python/server.py [--host 127.0.0.1] [--port 8000] [--static DIR] [--window-ms 100]
        [--node NAME --redis URL [--channel presence-demo] [--secret-env PRESENCE_DEMO_SECRET]
         [--tick-ms 250] [--down-after-ms 3000]]

With --node the engine runs in cluster mode as that node, linked to the other nodes through
the engine's built-in Redis link on one pub/sub channel; the shared secret (16 bytes or
more) is read from the environment variable named by --secret-env, never from the command
line. Without --node: one node, no external service.

Protocol: Phoenix Channels V2 JSON on ws://HOST:PORT/socket/websocket (phoenix.js
`new Socket("/socket")`), counts format:
  phx_join on "video:<id>" with {user: "<name>"} (missing or empty: anonymous)
             -> phx_reply {"status":"ok","response":{"seq":S,"node":NAME|null}}, then
                presence_state (the engine's list of seq S), then the socket is tracked
  each poll  -> presence_diff to every channel of a topic that changed
  phx_leave  -> untracked, phx_reply ok; heartbeat on "phoenix" -> phx_reply ok
  a join of another topic, a bad user name, or one the engine refuses
             -> phx_reply {"status":"error","response":{"reason":"<kind>"}}
  on close   -> every channel of the socket untracked
GET /api/presence?topic=T answers the topic's live counts, the seq of its last polled diff
and the engine's pending topics (for tests and curious humans; numbers only), and in
cluster mode this node's name and how many other nodes it currently sees.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import uvicorn
from presence_engine import ConfigError, Engine
from presence_engine.phoenix import PhoenixEndpoint

HERE = Path(__file__).resolve().parent
TOPIC_PATTERN = re.compile(r"video:[A-Za-z0-9_-]{1,32}")
USER_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,32}")
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".woff2": "font/woff2",
}
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def authorize(topic: str, params: dict[str, Any]) -> str | None:
    """The page's topics and user names only; None lets the join through."""
    user = params.get("user")
    if not TOPIC_PATTERN.fullmatch(topic):
        return "invalid_argument"
    if user and not (isinstance(user, str) and USER_PATTERN.fullmatch(user)):
        return "invalid_argument"
    return None


class DemoServer:
    """The ASGI app: the Phoenix endpoint at /socket/websocket, /api/presence, the page."""

    def __init__(self, static_root: Path, window: float, cluster: dict | None = None) -> None:
        self.engine = Engine(format="counts", cluster=cluster) if cluster else Engine(format="counts")
        self.node: str | None = cluster["node"] if cluster else None
        self.static_root = static_root.resolve()
        # Everything but the socket comes back to self.http.
        self.app = PhoenixEndpoint(self.engine, app=self.http, interval=window, authorize=authorize)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await self.app.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        status, body, content_type, cache = self.respond(scope["path"], scope["query_string"].decode("latin-1"))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", cache.encode()),
                    (b"x-content-type-options", b"nosniff"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body if scope["method"] != "HEAD" else b""})

    def respond(self, path: str, query: str) -> tuple[int, bytes, str, str]:
        if path == "/api/presence":
            topic = parse_qs(query).get("topic", [""])[0]
            if not TOPIC_PATTERN.fullmatch(topic):
                return 400, b"topic must be video:<id>", "text/plain", "no-cache"
            counts = self.engine.counts(topic)
            body = compact(
                {
                    "topic": topic,
                    **counts.to_dict(),
                    "seq": self.engine.state_json(topic)[1],
                    "pending": self.engine.stats().topics_pending,
                    **(
                        {"node": self.node, "peers": self.engine.cluster_stats().nodes}
                        if self.node
                        else {}
                    ),
                }
            )
            return 200, body.encode(), "application/json", "no-store"
        return self.static(path)

    def static(self, url_path: str) -> tuple[int, bytes, str, str]:
        rel = unquote(url_path)
        if rel.endswith("/"):
            rel += "index.html"
        file = (self.static_root / rel.lstrip("/")).resolve()
        if file != self.static_root and self.static_root not in file.parents:
            return 403, b"forbidden", "text/plain", "no-cache"
        if not file.is_file():
            # Any other path without an extension is the page itself (it reads ?v= and ?user=).
            if Path(rel).suffix:
                return 404, b"not found", "text/plain", "no-cache"
            file = self.static_root / "index.html"
            if not file.is_file():
                return (
                    503,
                    b"The page is not built: run `make demo-python` (or `npm run build` in examples/web).\n",
                    "text/plain",
                    "no-cache",
                )
        hashed = rel.startswith("/assets/")
        return (
            200,
            file.read_bytes(),
            TYPES.get(file.suffix, "application/octet-stream"),
            "public, max-age=31536000, immutable" if hashed else "no-cache",
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--static", type=Path, default=HERE.parent.parent / "dist")
    parser.add_argument("--window-ms", type=float, default=100.0)
    cluster = parser.add_argument_group("cluster mode (off without --node)")
    cluster.add_argument("--node", help="this node's name, unique in the cluster")
    cluster.add_argument("--redis", help="the Redis server linking the nodes, e.g. redis://127.0.0.1:6379/")
    cluster.add_argument("--channel", default="presence-demo", help="the Redis pub/sub channel")
    cluster.add_argument("--secret-env", default="PRESENCE_DEMO_SECRET", help="the variable holding the shared secret")
    cluster.add_argument("--tick-ms", type=int, default=250)
    cluster.add_argument("--down-after-ms", type=int, default=3000)
    args = parser.parse_args()

    settings = None
    if args.node is None:
        if args.redis is not None:
            parser.error("--redis needs --node (the name of this node)")
    else:
        if not args.redis:
            parser.error("--node needs --redis URL (the built-in link joins the nodes through Redis)")
        secret = os.environ.get(args.secret_env)
        if not secret:
            parser.error(f"cluster mode needs the shared secret in ${args.secret_env} (16 bytes or more)")
        settings = {"node": args.node, "secret": secret, "tick_ms": args.tick_ms, "down_after_ms": args.down_after_ms}
    try:
        demo = DemoServer(args.static, args.window_ms / 1000, settings)
    except ConfigError as err:  # e.g. a secret under 16 bytes
        parser.error(str(err))
    if settings:
        demo.engine.start_redis(args.redis, args.channel)
    # Our own listening socket: its port is known (also with --port 0) before uvicorn starts.
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(512)
    server = uvicorn.Server(uvicorn.Config(demo.app, log_level="warning", lifespan="on", ws="websockets-sansio"))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    mode = f" as cluster node {args.node} (Redis {args.redis}, channel {args.channel})" if settings else ""
    print(f"presence demo (python) listening on http://{host}:{port}/{mode}", flush=True)
    print(f"open http://{host}:{port}/?v=1 (anonymous) or http://{host}:{port}/?v=1&user=alice", flush=True)
    await server.serve(sockets=[sock])
    if settings:
        # The Redis link publishes this node's departure before it stops: the other nodes
        # drop its presences at once instead of after --down-after-ms.
        try:
            await asyncio.to_thread(demo.engine.stop_redis)
        except Exception as err:  # noqa: BLE001 - shutting down either way
            print(f"stopping the Redis link: {err}", flush=True)
    demo.engine.close()

if __name__ == "__main__":
    try:
        asyncio.run(main())
    except OSError as err:  # a port in use, an address not available
        raise SystemExit(f"server.py: {err}") from None
