"""Engine.metrics(): the Prometheus text format, read back with prometheus_client's own
parser and compared with stats() and cluster_stats(), on one node and on the nodes of a
cluster over an in-test bus (cluster_tick / cluster_ingest)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import presence_engine as pe

SECRET = "a shared secret of the test cluster"

# Each family with its type; prometheus_client names a counter's family without `_total`.
ENGINE_FAMILIES = {
    "presence_info": "gauge",
    "presence_topics": "gauge",
    "presence_presences": "gauge",
    "presence_heap_bytes": "gauge",
    "presence_topics_pending": "gauge",
    "presence_polls": "counter",
    "presence_expired": "counter",
}
CLUSTER_FAMILIES = {
    "presence_cluster_info": "gauge",
    "presence_cluster_link_up": "gauge",
    "presence_cluster_nodes": "gauge",
    "presence_cluster_nodes_dropped": "counter",
    "presence_cluster_messages_sent": "counter",
    "presence_cluster_sent_bytes": "counter",
    "presence_cluster_messages_received": "counter",
    "presence_cluster_received_bytes": "counter",
    "presence_cluster_messages_rejected": "counter",
    "presence_cluster_snapshots_sent": "counter",
    "presence_cluster_snapshot_requests_sent": "counter",
}


class Scrape:
    """One metrics() text, parsed: its families, and each sample by name and labels."""

    def __init__(self, text: str) -> None:
        assert isinstance(text, str) and text.endswith("\n")
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for f in self.families.values():
            assert f.documentation, f"{f.name} has a HELP text"
            for s in f.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                assert key not in self.samples, f"{key} twice"
                self.samples[key] = s.value

    def types(self) -> dict[str, str]:
        return {name: f.type for name, f in self.families.items()}

    def value(self, name: str, **labels: str) -> int:
        v = self.samples[(name, tuple(sorted(labels.items())))]
        assert v == int(v), (name, v)
        return int(v)


def check_stats(scrape: Scrape, s: pe.Stats) -> None:
    assert scrape.value("presence_topics") == s.topics
    assert scrape.value("presence_presences") == s.presences
    assert scrape.value("presence_heap_bytes") == s.bytes
    assert scrape.value("presence_topics_pending") == s.topics_pending
    assert scrape.value("presence_polls_total") == s.polls
    assert scrape.value("presence_expired_total") == s.expired


def test_a_single_node_shows_its_stats(engine: pe.Engine) -> None:
    first = Scrape(engine.metrics())
    assert first.types() == ENGINE_FAMILIES
    assert first.value("presence_info", version=pe.CORE_VERSION, format=engine.format) == 1
    check_stats(first, engine.stats())
    assert first.value("presence_polls_total") == 0

    for conn in range(40):
        engine.track(f"room:{conn % 6}", conn, f"u{conn % 9}", {"n": conn} if engine.format == "phoenix" else None)
    engine.poll()
    engine.untrack_conn(0)
    engine.untrack_conn(6)
    engine.poll_diff()
    engine.poll_diff_json()  # empty: counted too
    engine.track("room:9", 99)
    s = engine.stats()
    scrape = Scrape(engine.metrics())
    check_stats(scrape, s)
    assert (s.topics, s.presences, s.topics_pending, s.polls) == (7, 39, 1, 3)
    assert scrape.types() == ENGINE_FAMILIES


def test_polls_of_diffs_count_too() -> None:
    async def main(e: pe.Engine) -> None:
        e.track("t", 1)
        async for batch in e.diffs():
            assert batch
            break

    with pe.Engine() as e:
        before = e.stats().polls
        asyncio.run(main(e))
        polls = e.stats().polls
        assert polls > before
        assert Scrape(e.metrics()).value("presence_polls_total") == polls


def test_the_engine_renders_once_and_the_text_is_what_it_rendered(counts_engine: pe.Engine) -> None:
    text = counts_engine.metrics()
    assert "# TYPE presence_polls_total counter\n" in text
    assert "# TYPE presence_topics gauge\n" in text
    assert "presence_cluster" not in text
    assert counts_engine.metrics() == text  # nothing changed, nothing moves


def node(name: str, fmt: str = "counts") -> pe.Engine:
    return pe.Engine(format=fmt, cluster={"node": name, "secret": SECRET})  # type: ignore[arg-type]


def exchange(engines: list[pe.Engine], rounds: int = 3) -> None:
    """Ticks each open engine and delivers its messages to every open engine, echoes
    included, as pub/sub does."""
    for _ in range(rounds):
        for sender in engines:
            if sender.closed:
                continue
            for message in sender.cluster_tick():
                for e in engines:
                    if not e.closed:
                        e.cluster_ingest(message)


def check_cluster(scrape: Scrape, cs: pe.ClusterStats) -> None:
    assert scrape.value("presence_cluster_info", node=cs.node, incarnation=str(cs.incarnation)) == 1
    assert scrape.value("presence_cluster_link_up") == int(cs.link_up)
    live = scrape.value("presence_cluster_nodes", state="live")
    stale = scrape.value("presence_cluster_nodes", state="stale")
    assert (live + stale, stale) == (cs.nodes, cs.stale_nodes)
    pairs: list[tuple[str, int]] = [
        ("presence_cluster_nodes_dropped_total", cs.nodes_dropped),
        ("presence_cluster_messages_sent_total", cs.messages_sent),
        ("presence_cluster_sent_bytes_total", cs.bytes_sent),
        ("presence_cluster_messages_received_total", cs.messages_received),
        ("presence_cluster_received_bytes_total", cs.bytes_received),
        ("presence_cluster_snapshots_sent_total", cs.snapshots_sent),
        ("presence_cluster_snapshot_requests_sent_total", cs.snapshot_requests_sent),
    ]
    for name, want in pairs:
        assert scrape.value(name) == want, name
    by_cause = {
        cause: scrape.value("presence_cluster_messages_rejected_total", cause=cause)
        for cause in ("unauthenticated", "malformed", "oversized", "replayed")
    }
    assert by_cause == {
        "unauthenticated": cs.rejected_unauthenticated,
        "malformed": cs.rejected_malformed,
        "oversized": cs.rejected_oversized,
        "replayed": cs.rejected_replayed,
    }
    assert sum(by_cause.values()) == cs.rejected


@pytest.mark.parametrize("fmt", ["counts", "phoenix"])
def test_cluster_nodes_show_their_cluster_stats(fmt: str) -> None:
    a, b, c = node("a", fmt), node('b "quoted" \\ name', fmt), node("c", fmt)
    engines = [a, b, c]
    try:
        a.track_many([("video:1", 1, "alice"), ("video:1", 2)])
        b.track("video:1", 1, "bob")
        c.track("video:2", 1)
        exchange(engines)
        replay = a.cluster_tick()[0]
        b.cluster_ingest(replay)
        with pytest.raises(pe.RejectedError):
            b.cluster_ingest(replay)  # already seen
        with pytest.raises(pe.RejectedError):
            a.cluster_ingest(b"not a message of this cluster")
        with pytest.raises(pe.RejectedError):
            a.cluster_ingest(bytes(300_000))
        a.cluster_ingest(c.cluster_leave())  # a drops c at once
        c.close()
        a.poll()

        for n in (a, b):
            scrape = Scrape(n.metrics())
            cs, s = n.cluster_stats(), n.stats()
            assert scrape.types() == {**ENGINE_FAMILIES, **CLUSTER_FAMILIES}
            check_cluster(scrape, cs)
            check_stats(scrape, s)
            assert scrape.value("presence_info", version=pe.CORE_VERSION, format=fmt) == 1

        scrape = Scrape(a.metrics())
        assert scrape.value("presence_cluster_nodes", state="live") == 1
        assert scrape.value("presence_cluster_nodes_dropped_total") == 1
        assert scrape.value("presence_cluster_messages_rejected_total", cause="unauthenticated") == 1
        assert scrape.value("presence_cluster_messages_rejected_total", cause="oversized") == 1
        assert scrape.value("presence_polls_total") == 1
        assert scrape.value("presence_presences") == 2  # this node's own
        assert a.counts("video:1") == pe.Counts(1, 2, 3)  # the cluster's
        scrape = Scrape(b.metrics())
        assert scrape.value("presence_cluster_messages_rejected_total", cause="replayed") == 1
        assert scrape.value("presence_cluster_info", node='b "quoted" \\ name', incarnation=str(b.cluster_stats().incarnation)) == 1
    finally:
        for e in engines:
            e.close()


def test_a_single_node_has_no_cluster_families(engine: pe.Engine) -> None:
    families: dict[str, Any] = Scrape(engine.metrics()).families
    assert not [name for name in families if name.startswith("presence_cluster")]
