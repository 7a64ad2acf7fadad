"""One engine shared by threads: writers hammer it while another thread polls."""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import presence_engine as pe
from presence_model import apply_diff, counts_of, empty_state, expected_phoenix_view, phoenix_view

TOPICS = [f"topic-{i}" for i in range(6)]
WRITERS = 4
OPS_PER_WRITER = 10_000


@pytest.fixture(autouse=True)
def frequent_switches() -> Iterator[None]:
    """Switch threads every 10 us instead of 5 ms, so that calls interleave finely (on a
    GIL build; a free-threaded build runs them at the same time anyway)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


def writer(engine: pe.Engine, index: int, held: dict[str, dict[int, tuple[str | None, Any]]], errors: list[BaseException]) -> None:
    """Random tracks/untracks/updates/disconnects/bulk calls on its own conns, keeping its
    own record of what it holds."""
    rng = random.Random(index)
    base = index * 1_000_000
    try:
        for _ in range(OPS_PER_WRITER):
            op = rng.random()
            topic = rng.choice(TOPICS)
            conn = base + rng.randrange(60)
            key = rng.choice([None, f"w{index}-u{rng.randrange(8)}", "shared-user"])
            if op < 0.45:
                meta = {"w": index, "n": rng.randrange(100)}
                if conn in held[topic]:
                    with pytest.raises(pe.AlreadyTrackedError):
                        engine.track(topic, conn, key, meta)
                else:
                    engine.track(topic, conn, key, meta)
                    held[topic][conn] = (key, meta)
            elif op < 0.75:
                if conn in held[topic]:
                    engine.untrack(topic, conn)
                    del held[topic][conn]
                else:
                    with pytest.raises(pe.NotTrackedError):
                        engine.untrack(topic, conn)
            elif op < 0.83:
                if conn in held[topic]:
                    meta = {"w": index, "updated": rng.randrange(100)}
                    engine.update(topic, conn, meta)
                    held[topic][conn] = (held[topic][conn][0], meta)
            elif op < 0.90:
                expected = sum(conn in h for h in held.values())
                assert engine.untrack_conn(conn) == expected
                for h in held.values():
                    h.pop(conn, None)
            elif op < 0.95:
                fresh = [c for c in range(base + 100, base + 140) if c not in held[topic]][:10]
                engine.track_many((topic, c, key) for c in fresh)
                for c in fresh:
                    held[topic][c] = (key, None)
            else:
                gone = list(held[topic])[:10]
                engine.untrack_many((topic, c) for c in gone)
                for c in gone:
                    del held[topic][c]
            if rng.random() < 0.02:
                engine.counts(topic)
                engine.list(topic)
    except BaseException as e:  # noqa: BLE001 - handed to the main thread
        errors.append(e)


@pytest.mark.parametrize("fmt", ["counts", "phoenix"])
def test_writers_and_a_poller(fmt: str) -> None:
    engine = pe.Engine(format=fmt)  # type: ignore[arg-type]
    helds = [{t: {} for t in TOPICS} for _ in range(WRITERS)]
    errors: list[BaseException] = []
    polled: list[list[dict[str, Any]]] = []
    stop = threading.Event()

    def poller() -> None:
        try:
            while not stop.is_set():
                batch = engine.poll_diff()
                if batch:
                    polled.append(batch)
                engine.stats()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(engine, i, helds[i], errors)) for i in range(WRITERS)]
    poll_thread = threading.Thread(target=poller)
    poll_thread.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive(), "writer stuck"
    stop.set()
    poll_thread.join(timeout=60)
    assert not poll_thread.is_alive(), "poller stuck"
    assert not errors, errors
    final = engine.poll_diff()
    if final:
        polled.append(final)
    assert len(polled) > 1, "the poller should have seen changes while the writers ran"

    # The final presences: the union of what each writer holds.
    expected: dict[str, dict[int, tuple[str | None, Any]]] = {t: {} for t in TOPICS}
    for held in helds:
        for t in TOPICS:
            expected[t].update(held[t])

    # Replay every poll in order, per topic: no change lost, none twice.
    client = {t: empty_state(fmt) for t in TOPICS}
    seq = {t: 0 for t in TOPICS}
    totals = {t: {"viewers": 0, "users": 0} for t in TOPICS}
    last_counts: dict[str, dict[str, int]] = {}
    for batch in polled:
        for d in batch:
            t = d["topic"]
            if seq[t] and d["seq"] == 1:
                # The topic emptied, was dropped at a poll, and started over.
                assert client[t] == empty_state(fmt)
                seq[t] = 0
            assert d["seq"] == seq[t] + 1, f"{t}: seq {d['seq']} after {seq[t]}"
            seq[t] = d["seq"]
            client[t] = apply_diff(fmt, client[t], d["payload"])
            last_counts[t] = d["counts"]
            if fmt == "counts":
                for g in ("viewers", "users"):
                    totals[t][g] += d["payload"]["joins"][g]["count"] - d["payload"]["leaves"][g]["count"]
    for t in TOPICS:
        v, u, c = counts_of(expected[t])
        assert tuple(engine.counts(t)) == (v, u, c)
        assert client[t] == engine.list(t)
        if fmt == "counts":
            # The sum of every polled delta is the final count.
            assert totals[t] == {"viewers": v, "users": u}
        else:
            assert phoenix_view(client[t]) == expected_phoenix_view(expected[t])
        if t in last_counts:
            if fmt == "counts":
                # A change of connections alone is not reported in counts format: the last
                # diff's connections may predate the writers' final tab changes.
                assert {g: last_counts[t][g] for g in ("viewers", "users")} == {"viewers": v, "users": u}
            else:
                assert last_counts[t] == {"viewers": v, "users": u, "connections": c}
    assert engine.stats().presences == sum(len(p) for p in expected.values())
    engine.close()


def test_close_while_other_threads_call() -> None:
    engine = pe.Engine()
    started = threading.Barrier(5)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        started.wait()
        n = 0
        try:
            while True:
                engine.track(f"t{n % 5}", i * 10**6 + n)
                if n % 100 == 0:
                    engine.poll_diff()
                    engine.track_many((f"b{n % 3}", i * 10**6 + 500_000 + n + k) for k in range(50))
                n += 1
        except pe.EngineClosedError:
            with lock:
                outcomes.append("closed")
        except BaseException as e:  # noqa: BLE001
            with lock:
                outcomes.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(0.2)
    engine.close()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive(), "a thread is stuck after close()"
    assert outcomes == ["closed"] * 4


def test_counts_readers_see_consistent_values() -> None:
    # A reader never sees counts a writer could not have produced: users <= connections,
    # viewers <= connections, and never a negative or absurd number.
    engine = pe.Engine()
    stop = threading.Event()
    bad: list[Any] = []

    def reader() -> None:
        while not stop.is_set():
            c = engine.counts("room")
            if not (c.viewers <= c.connections <= 200 and c.users <= c.connections):
                bad.append(c)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for r in readers:
        r.start()
    for round_ in range(200):
        engine.track_many(("room", c, f"u{c % 7}" if c % 3 else None) for c in range(100))
        engine.untrack_conns(range(100))
    stop.set()
    for r in readers:
        r.join(timeout=30)
    assert not bad, bad[:5]
    engine.close()
