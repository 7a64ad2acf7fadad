"""The demo server in Python: `websockets` for the sockets and the built page (dist/) on
the same port, presence_engine (bindings/python) for the bookkeeping. The Node server
(../node/server.js) speaks the same protocol.

    python server/python/server.py [--host 127.0.0.1] [--port 8000] [--static DIR] [--window-ms 100]

Protocol, on ws://HOST:PORT/socket?topic=video:<id>[&user=<name>]:
  on join    -> {"event":"presence_state","topic":T,"seq":S,"payload":<engine list>}
                then the socket is tracked (anonymous without `user`)
  each poll  -> {"event":"presence_diff","topic":T,"seq":S,"payload":<engine diff>}
                to every socket of a topic that changed
  {"event":"sync"} from the page -> presence_state again (a page that saw a seq gap)
  on close   -> untrack_conn
GET /api/presence?topic=T answers the topic's live counts, the seq of its last polled diff
and the engine's pending topics (for tests and curious humans; numbers only).
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

from presence_engine import Engine, LimitReachedError
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
    def __init__(self, static_root: Path, window: float) -> None:
        self.engine = Engine(format="counts")
        self.static_root = static_root.resolve()
        self.window = window
        # topic -> the sockets to push its diffs to
        self.rooms: dict[str, set[ServerConnection]] = {}
        self.conn_ids = itertools.count(1)

    def state_message(self, topic: str) -> str:
        payload, seq = self.engine.state_json(topic)
        return f'{{"event":"presence_state","topic":{compact(topic)},"seq":{seq},"payload":{payload}}}'

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
        at least `window` apart, so a window's changes go out as one message per topic."""
        async for batch in self.engine.diffs(interval=self.window):
            for d in batch:
                room = self.rooms.get(d["topic"])
                if not room:
                    continue
                message = (
                    f'{{"event":"presence_diff","topic":{compact(d["topic"])},"seq":{d["seq"]},'
                    f'"payload":{compact(d["payload"])}}}'
                )
                broadcast(room, message)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--static", type=Path, default=HERE.parent.parent / "dist")
    parser.add_argument("--window-ms", type=float, default=100.0)
    args = parser.parse_args()

    demo = DemoServer(args.static, args.window_ms / 1000)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async with serve(demo.handler, args.host, args.port, process_request=demo.process_request) as server:
        port = server.sockets[0].getsockname()[1]
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"presence demo (python) listening on http://{host}:{port}/", flush=True)
        print(f"open http://{host}:{port}/?v=1 (anonymous) or http://{host}:{port}/?v=1&user=alice", flush=True)
        pump = asyncio.create_task(demo.pump())
        await stop.wait()
    demo.engine.close()  # ends the diffs() iteration
    await pump


if __name__ == "__main__":
    asyncio.run(main())
