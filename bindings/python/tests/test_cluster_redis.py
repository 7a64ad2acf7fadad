"""Cluster mode over a real redis-server: engines linked by `start_redis` converge to the
exact cluster counts, remote changes come out of `poll_diff`, and a node that leaves with
`stop_redis()` (or `close()`) is dropped by the others at once, long before
down_after_ms.

The fixture starts its own redis-server on a free loopback port (127.0.0.1 only, nothing
saved to disk) and stops it afterwards. `make test-python` installs redis-server
(deps-redis in mk/deps.mk); without it these tests fail rather than skip."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import presence_engine as pe

from integration_support import redis_server

SECRET = "python redis test cluster secret"
TICK_MS = 50
DOWN_AFTER_MS = 3000
# Convergence takes 0.05-0.3 s here (a delta, or a snapshot round trip); the bound leaves
# room for a loaded machine.
CONVERGE_S = 5.0


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


def node(name: str, fmt: str = "counts", **options: int) -> pe.Engine:
    cluster = {"node": name, "secret": SECRET, "tick_ms": TICK_MS, "down_after_ms": DOWN_AFTER_MS, **options}
    return pe.Engine(format=fmt, cluster=cluster)  # type: ignore[arg-type]


def wait_for(check: Callable[[], bool], limit: float, what: str) -> float:
    """Polls `check` until it holds; returns the seconds it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > limit:
            pytest.fail(f"{what}: not within {limit} s")
        time.sleep(0.005)
    return time.monotonic() - started


def converge(engines: list[pe.Engine], topic: str, want: pe.Counts, limit: float = CONVERGE_S) -> float:
    return wait_for(lambda: all(e.counts(topic) == want for e in engines), limit, f"convergence to {want}: {[e.counts(topic) for e in engines]}")


@pytest.mark.parametrize("fmt", ["counts", "phoenix"])
def test_two_engines_linked_by_redis_converge_and_stop_redis_is_seen_at_once(redis_url: str, fmt: str) -> None:
    channel = f"presence-python-test-{fmt}"
    a, b = node("a", fmt), node("b", fmt)
    try:
        a.start_redis(redis_url, channel)
        b.start_redis(redis_url, channel)
        # alice on both nodes counts once; bob on a; an anonymous viewer and carol on b.
        a.track("video:1", 1, "alice", {"on": "a"})
        a.track("video:1", 2, "bob")
        b.track("video:1", 1, "alice", {"on": "b"})
        b.track("video:1", 2)
        b.track("video:1", 3, "carol")
        converge([a, b], "video:1", pe.Counts(viewers=1, users=3, connections=5))

        # Remote changes come out of poll_diff like local ones.
        [d] = a.poll_diff()
        assert d["topic"] == "video:1"
        assert d["counts"] == {"viewers": 1, "users": 3, "connections": 5}
        if fmt == "counts":
            assert d["payload"]["joins"] == {"viewers": {"count": 1}, "users": {"count": 3}}
        else:
            listed = a.list("video:1")
            assert sorted(m["on"] for m in listed["alice"]["metas"]) == ["a", "b"]
            assert set(listed) == {"alice", "bob", "carol", "viewers"}

        b.untrack("video:1", 3)
        converge([a, b], "video:1", pe.Counts(1, 2, 4))
        assert [d["counts"] for d in a.poll_diff()] == [{"viewers": 1, "users": 2, "connections": 4}]

        sa, sb = a.cluster_stats(), b.cluster_stats()
        assert sa.nodes == 1 and sb.nodes == 1
        assert sa.incarnation != sb.incarnation
        assert sa.messages_sent > 0 and sa.messages_received > 0, sa
        assert sa.rejected == 0 and sb.rejected == 0

        # b leaves cleanly: stop_redis() publishes its departure, and a drops it well
        # before down_after_ms would have.
        left = time.monotonic()
        b.stop_redis()
        took = converge([a], "video:1", pe.Counts(0, 2, 2), limit=DOWN_AFTER_MS / 1000)
        dropped_after = time.monotonic() - left
        assert dropped_after < 1.0, f"b dropped {dropped_after:.3f} s after stop_redis(): the timeout, not the departure"
        assert took < 1.0
        after = a.cluster_stats()
        assert after.nodes == 0
        assert after.nodes_dropped == 1
        # b's link is stopped: it sends nothing more.
        sent = b.cluster_stats().messages_sent
        time.sleep(3 * TICK_MS / 1000)
        assert b.cluster_stats().messages_sent == sent
    finally:
        a.close()
        b.close()


def test_close_stops_the_link_and_announces_the_departure(redis_url: str) -> None:
    channel = "presence-python-test-close"
    a, c = node("a"), node("c")
    try:
        a.start_redis(redis_url, channel)
        c.start_redis(redis_url, channel)
        c.track("lobby", 1, "carol")
        a.track("lobby", 1)
        converge([a, c], "lobby", pe.Counts(1, 1, 2))
        closed_at = time.monotonic()
        c.close()  # stops the link first: its departure goes out
        converge([a], "lobby", pe.Counts(1, 0, 1), limit=DOWN_AFTER_MS / 1000)
        assert time.monotonic() - closed_at < 1.0
        assert a.cluster_stats().nodes_dropped == 1
    finally:
        a.close()
        c.close()


def linked(redis_url: str, name: str) -> tuple[pe.Engine, int]:
    """A node whose link ticks once a second, once its first tick went out, and the
    messages it sent so far. The link then waits for messages until its next tick; a stop
    asked for meanwhile ends when that wait does, after the link published the departure
    (which counts as a message sent)."""
    e = pe.Engine(cluster={"node": name, "secret": SECRET, "tick_ms": 1000, "down_after_ms": 3000})
    e.start_redis(redis_url, "presence-python-test-stop")
    wait_for(lambda: e.cluster_stats().messages_sent > 0, CONVERGE_S, "the link's first tick")
    return e, e.cluster_stats().messages_sent


def test_stop_redis_waits_for_the_thread_with_the_gil_released(redis_url: str) -> None:
    e, sent = linked(redis_url, "solo-1")
    try:

        async def main() -> tuple[float, int]:
            timers = 0

            async def count() -> None:
                nonlocal timers
                while True:
                    await asyncio.sleep(0.001)
                    timers += 1

            counter = asyncio.create_task(count())
            started = time.monotonic()
            await asyncio.to_thread(e.stop_redis)
            took = time.monotonic() - started
            counter.cancel()
            return took, timers

        took, timers = asyncio.run(main())
        assert e.cluster_stats().messages_sent == sent + 1, "returned before the departure went out"
        assert took >= 0.1, f"the stop waited for the link's thread ({took:.3f} s)"
        # The event loop (and so the GIL) ran while the stop waited in its thread.
        assert timers >= 5, f"{timers} timer callbacks in {took:.3f} s"
    finally:
        e.close()

    # A Python thread also runs during a stop called from the main thread.
    e, sent = linked(redis_url, "solo-2")
    try:
        spins = 0
        stop = threading.Event()

        def spin() -> None:
            nonlocal spins
            while not stop.is_set():
                spins += 1

        t = threading.Thread(target=spin)
        t.start()
        before = spins
        started = time.monotonic()
        e.stop_redis()
        during = spins - before
        took = time.monotonic() - started
        stop.set()
        t.join()
        assert e.cluster_stats().messages_sent == sent + 1
        assert took >= 0.1, f"the stop waited for the link's thread ({took:.3f} s)"
        assert during > 1000, f"the other thread ran {during} loops during a {took:.3f} s stop"
    finally:
        e.close()
