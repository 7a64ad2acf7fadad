"""The README's HTTP endpoints (the `PresenceHTTP` handler of "HTTP endpoints"), served on
a loopback port and asked over HTTP: /channels answers counts_many, /metrics the engine's
Prometheus text, for a single engine and for a cluster node fed over an in-test bus."""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import presence_engine as pe

SECRET = "a shared secret of the test cluster"


def readme_block(containing: str) -> str:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    [block] = [b for b in blocks if containing in b]
    return block


class Served:
    """The README's handler, serving `engine` on a loopback port."""

    def __init__(self, engine: pe.Engine) -> None:
        namespace: dict[str, Any] = {"__name__": "readme"}
        exec(readme_block("class PresenceHTTP"), namespace)  # noqa: S102 - our own README
        namespace["engine"] = engine  # the handler reads the module's `engine`
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), namespace["PresenceHTTP"])
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def get(self, path: str) -> tuple[int, str, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                return r.status, r.headers["Content-Type"], r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers["Content-Type"], e.read().decode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def serve() -> Iterator[Any]:
    served: list[Served] = []

    def start(engine: pe.Engine) -> Served:
        served.append(Served(engine))
        return served[-1]

    yield start
    for s in served:
        s.close()


def samples(text: str) -> dict[str, float]:
    """Every unlabelled sample, by name."""
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}


def test_a_single_engine_over_http(serve: Any) -> None:
    with pe.Engine(max_topic_bytes=32) as engine:
        engine.track_many([("video:1", 1, "alice"), ("video:1", 2, "alice"), ("video:1", 3), ("video:2", 4, "bob")])
        engine.poll()
        http = serve(engine)

        status, ctype, body = http.get("/channels?topic=video:1&topic=video:2&topic=video:3")
        assert (status, ctype) == (200, "application/json")
        assert json.loads(body) == {
            "channels": {"video:1": {"user_count": 1}, "video:2": {"user_count": 1}, "video:3": {"user_count": 0}}
        }
        assert json.loads(http.get("/channels")[2]) == {"channels": {}}
        status, _, body = http.get(f"/channels?topic=video:1&topic={'x' * 40}")
        assert status == 400 and "topics[1]" in body

        status, ctype, body = http.get("/metrics")
        assert (status, ctype) == (200, "text/plain; version=0.0.4")
        s = engine.stats()
        got = samples(body)
        assert got["presence_topics"] == s.topics == 2
        assert got["presence_presences"] == s.presences == 4
        assert got["presence_polls_total"] == s.polls == 1
        assert got["presence_heap_bytes"] == s.bytes
        assert http.get("/nothing")[0] == 404


def test_a_cluster_node_over_http(serve: Any) -> None:
    a = pe.Engine(cluster={"node": "a", "secret": SECRET})
    b = pe.Engine(cluster={"node": "b", "secret": SECRET})
    try:
        a.track("video:1", 1, "alice")
        b.track("video:1", 1, "bob")
        b.track("video:1", 2)
        for _ in range(3):
            for sender in (a, b):
                for message in sender.cluster_tick():
                    for e in (a, b):
                        e.cluster_ingest(message)
        http = serve(a)
        body = json.loads(http.get("/channels?topic=video:1")[2])
        assert body == {"channels": {"video:1": {"user_count": 2}}}  # the cluster's users
        text = http.get("/metrics")[2]
        got = samples(text)
        cs = a.cluster_stats()
        assert got["presence_presences"] == 1  # this node's own
        assert got["presence_cluster_messages_received_total"] == cs.messages_received
        assert got["presence_cluster_messages_sent_total"] == cs.messages_sent
        assert got["presence_cluster_link_up"] == 1
        assert 'presence_cluster_nodes{state="live"} 1' in text
    finally:
        a.close()
        b.close()
