"""Live viewer counts for a FastAPI app, through presence_engine.asgi.

    pip install presence_engine fastapi uvicorn websockets
    uvicorn app:app --port 8000

A client opens ws://HOST/presence/<topic>?user=<name> (no user: an anonymous viewer). It
gets {"event":"presence_state","topic":T,"seq":S,"payload":{"viewers":{"count":V},
"users":{"count":U}}} at once, then {"event":"presence_diff",...,"payload":{"joins":...,
"leaves":...}} whenever the topic's counts change (at most every 50 ms), and the tracked
presence goes away when the socket closes. GET /counts/<topic> answers the live counts.

Several processes share their counts over Redis when these are set (the secret: 16 bytes
or more, the same on every process): PRESENCE_NODE (this process's name, unique),
PRESENCE_REDIS (e.g. redis://127.0.0.1:6379/), PRESENCE_SECRET, and optionally
PRESENCE_CHANNEL (default "presence").
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, WebSocket

from presence_engine import Engine
from presence_engine.asgi import WebSocketPresence

NODE = os.environ.get("PRESENCE_NODE")
engine = Engine(cluster={"node": NODE, "secret": os.environ["PRESENCE_SECRET"]}) if NODE else Engine()
presence = WebSocketPresence(engine)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    if NODE:
        engine.start_redis(os.environ["PRESENCE_REDIS"], os.environ.get("PRESENCE_CHANNEL", "presence"))
    yield
    await presence.stop()
    engine.close()  # in cluster mode, tells the other processes this one is gone


app = FastAPI(lifespan=lifespan)


@app.websocket("/presence/{topic}")
async def presence_socket(websocket: WebSocket, topic: str, user: str | None = None) -> None:
    await presence.serve(websocket, topic, key=user or None)


@app.get("/counts/{topic}")
def counts(topic: str) -> dict[str, int]:
    return engine.counts(topic).to_dict()
