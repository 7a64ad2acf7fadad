"""The demo server in Python: `websockets` for the sockets and the built page (dist/) on
the same port, presence_engine (bindings/python) for the bookkeeping. The Node server
(../node/server.js) speaks the same protocol.

    python server/python/server.py [--host 127.0.0.1] [--port 8000] [--static DIR] [--window-ms 100]
        [--node NAME --redis URL [--channel presence-demo] [--secret-env PRESENCE_DEMO_SECRET]
         [--tick-ms 250] [--down-after-ms 3000]]

With --node the engine runs in cluster mode as that node, linked to the other nodes through
the engine's built-in Redis link on one pub/sub channel; the shared secret (16 bytes or
more) is read from the environment variable named by --secret-env, never from the command
line. Without --node: one node, no external service.

Protocol, on ws://HOST:PORT/socket?topic=video:<id>[&user=<name>]:
  on join    -> {"event":"presence_state","topic":T,"seq":S,"payload":<engine list>}
                (plus "node":NAME in cluster mode) then the socket is tracked
                (anonymous without `user`)
  each poll  -> {"event":"presence_diff","topic":T,"seq":S,"payload":<engine diff>}
                to every socket of a topic that changed
  {"event":"sync"} from the page -> presence_state again (a page that saw a seq gap)
  on close   -> untrack_conn
GET /api/presence?topic=T answers the topic's live counts, the seq of its last polled diff
and the engine's pending topics (for tests and curious humans; numbers only), and in
cluster mode this node's name and how many other nodes it currently sees.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import signal
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from presence_engine import ConfigError, Engine, LimitReachedError
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

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


def compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class DemoServer:
    def __init__(self, static_root: Path, window: float, cluster: dict | None = None) -> None:
        self.engine = Engine(format="counts", cluster=cluster) if cluster else Engine(format="counts")
        self.node: str | None = cluster["node"] if cluster else None
        # In cluster mode the welcome message names the node, so the page can show it.
        self.node_field = f',"node":{compact(self.node)}' if self.node else ""
        self.static_root = static_root.resolve()
        self.window = window
        # topic -> the sockets to push its diffs to
        self.rooms: dict[str, set[ServerConnection]] = {}
        self.conn_ids = itertools.count(1)

    def state_message(self, topic: str) -> str:
        # The engine renders the whole message; in cluster mode the node's name goes in
        # before the closing brace (an object's key order means nothing to the page).
        message, _seq = self.engine.state_message(topic, "event")
        return f"{message[:-1]}{self.node_field}}}" if self.node_field else message

    # HTTP: everything but /socket.

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == "/socket":
            return None  # go on with the WebSocket handshake
        if url.path == "/api/presence":
            topic = parse_qs(url.query).get("topic", [""])[0]
            if not TOPIC_PATTERN.fullmatch(topic):
                return self.response(400, b"topic must be video:<id>", "text/plain")
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
            return self.response(200, body.encode(), "application/json", cache="no-store")
        return self.static(url.path)

    def static(self, url_path: str) -> Response:
        rel = unquote(url_path)
        if rel.endswith("/"):
            rel += "index.html"
        file = (self.static_root / rel.lstrip("/")).resolve()
        if file != self.static_root and self.static_root not in file.parents:
            return self.response(403, b"forbidden", "text/plain")
        if not file.is_file():
            # Any other path without an extension is the page itself (it reads ?v= and ?user=).
            if Path(rel).suffix:
                return self.response(404, b"not found", "text/plain")
            file = self.static_root / "index.html"
            if not file.is_file():
                return self.response(
                    503,
                    b"The page is not built: run `make demo-python` (or `npm run build` in examples/web).\n",
                    "text/plain",
                )
        hashed = rel.startswith("/assets/")
        return self.response(
            200,
            file.read_bytes(),
            TYPES.get(file.suffix, "application/octet-stream"),
            cache="public, max-age=31536000, immutable" if hashed else "no-cache",
        )

    @staticmethod
    def response(status: int, body: bytes, content_type: str, cache: str = "no-cache") -> Response:
        # websockets answers one HTTP request per connection and then closes it: say so, or a
        # client that keeps connections alive (fetch, browsers) may reuse a closing one.
        reasons = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 503: "Service Unavailable"}
        headers = Headers(
            [
                ("Content-Type", content_type),
                ("Content-Length", str(len(body))),
                ("Cache-Control", cache),
                ("X-Content-Type-Options", "nosniff"),
                ("Connection", "close"),
            ]
        )
        return Response(status, reasons[status], headers, body)

    # WebSocket: one presence per socket.

    async def handler(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path).query)
        topic = query.get("topic", [""])[0]
        user = query.get("user", [None])[0] or None
        if not TOPIC_PATTERN.fullmatch(topic):
            await ws.close(1008, "topic must be video:<id>")
            return
        if user is not None and not USER_PATTERN.fullmatch(user):
            await ws.close(1008, "user must be 1-32 of A-Z a-z 0-9 _ . -")
            return

        conn = next(self.conn_ids)
        # The state as of the last poll, then the track, with no await in between: the diff
        # of the next poll carries this socket's own join and every change since that poll,
        # with the next seq. broadcast() writes at once, in order with later diffs.
        broadcast([ws], self.state_message(topic))
        try:
            self.engine.track(topic, conn, user)
        except LimitReachedError:
            await ws.close(1013, "presence refused")
            return
        room = self.rooms.setdefault(topic, set())
        room.add(ws)
        try:
            async for message in ws:
                try:
                    msg = json.loads(message)
                except ValueError:
                    continue
                if isinstance(msg, dict) and msg.get("event") == "sync":
                    broadcast([ws], self.state_message(topic))
        except ConnectionClosed:
            pass
        finally:
            self.engine.untrack_conn(conn)
            room.discard(ws)
            if not room and self.rooms.get(topic) is room:
                del self.rooms[topic]

    async def pump(self) -> None:
        """Waits on the engine's wake-up descriptor (the package's `diffs()`, via
        loop.add_reader): nothing runs while nothing changes, and under churn the polls are
        at least `window` apart, so a window's changes go out as one message per topic,
        each one rendered by the engine."""
        async for batch in self.engine.diffs(interval=self.window, envelope="event"):
            for d in batch:
                room = self.rooms.get(d.topic)
                if room:
                    # Rendered by the engine: sent as it is, nothing decoded or encoded.
                    broadcast(room, d.message)


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
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async with serve(demo.handler, args.host, args.port, process_request=demo.process_request) as server:
        port = server.sockets[0].getsockname()[1]
        host = f"[{args.host}]" if ":" in args.host else args.host
        mode = f" as cluster node {args.node} (Redis {args.redis}, channel {args.channel})" if settings else ""
        print(f"presence demo (python) listening on http://{host}:{port}/{mode}", flush=True)
        print(f"open http://{host}:{port}/?v=1 (anonymous) or http://{host}:{port}/?v=1&user=alice", flush=True)
        pump = asyncio.create_task(demo.pump())
        await stop.wait()
    if settings:
        # The Redis link publishes this node's departure before it stops: the other nodes
        # drop its presences at once instead of after --down-after-ms.
        try:
            await asyncio.to_thread(demo.engine.stop_redis)
        except Exception as err:  # noqa: BLE001 - shutting down either way
            print(f"stopping the Redis link: {err}", flush=True)
    demo.engine.close()  # ends the diffs() iteration
    await pump


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except OSError as err:  # a port in use, an address not available
        raise SystemExit(f"server.py: {err}") from None
