"""Cluster mode through the host's own bus: engines in this process exchange their
messages through an in-test bus (every message to every engine, the sender included, as
pub/sub does). Convergence in both formats, a lossy bus, refused messages, leave, resync,
the timers, the settings, the errors, and the Redis calls that need no server (the real
redis-server tests are in test_cluster_redis.py)."""

from __future__ import annotations

import asyncio
import json
import random
import re
import select
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import presence_engine as pe
from presence_model import apply_diff, counts_of, empty_state

SECRET = "a shared secret of the test cluster"


def node(name: str, fmt: str = "counts", **options: Any) -> pe.Engine:
    return pe.Engine(format=fmt, cluster={"node": name, "secret": SECRET, **options})  # type: ignore[arg-type, typeddict-item]


class Bus:
    """The in-test bus. `round()` ticks every engine in turn and delivers each message at
    once to every open engine, echoes included. Messages of the engines in `dropped` are
    lost; a message is also lost with probability `loss` (drawn from `rng`). `published`
    keeps every message handed out, with its sender."""

    def __init__(self, engines: list[pe.Engine], loss: float = 0.0, seed: int = 0) -> None:
        self.engines = engines
        self.dropped: set[int] = set()
        self.loss = loss
        self.rng = random.Random(seed)
        self.published: list[tuple[pe.Engine, bytes]] = []
        self.lost = 0

    def deliver(self, sender: pe.Engine, messages: list[bytes]) -> None:
        for m in messages:
            assert type(m) is bytes and len(m) > 0
            self.published.append((sender, m))
            if id(sender) in self.dropped or (self.loss and self.rng.random() < self.loss):
                self.lost += 1
                continue
            for e in self.engines:
                if not e.closed:
                    e.cluster_ingest(m)

    def round(self) -> None:
        for e in self.engines:
            if not e.closed:
                self.deliver(e, e.cluster_tick())

    def until(self, check: Callable[[pe.Engine], bool], limit: int, what: str) -> int:
        """Rounds until `check` holds on every open engine; returns how many it took."""
        for r in range(1, limit + 1):
            self.round()
            if all(e.closed or check(e) for e in self.engines):
                return r
        seen = [None if e.closed else e.counts("video:1") for e in self.engines]
        pytest.fail(f"{what}: not reached within {limit} rounds: {seen}")


def counts_is(topic: str, want: pe.Counts) -> Callable[[pe.Engine], bool]:
    return lambda e: e.counts(topic) == want


def by_ref(state: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The state with each key's metas in phx_ref order: the order of the metas of one
    key differs between a client (syncDiff appends) and the engine's list, which may
    put other nodes' entries first."""
    return {k: sorted(v["metas"], key=lambda m: m["phx_ref"]) for k, v in state.items()}


def without_refs(state: dict[str, Any]) -> dict[str, list[str]]:
    """The state with each key's metas as sorted JSON without their refs: each node gives
    the entries it lists refs of its own, so two nodes' lists agree on all but those."""
    return {
        k: sorted(json.dumps({f: x for f, x in m.items() if not f.startswith("phx_ref")}, sort_keys=True) for m in v["metas"])
        for k, v in state.items()
    }


def same_state(fmt: str, x: dict[str, Any], y: dict[str, Any]) -> bool:
    return by_ref(x) == by_ref(y) if fmt == "phoenix" else x == y


@pytest.fixture
def closing() -> Iterator[list[pe.Engine]]:
    """A list to put engines in: each is closed at the end of the test."""
    engines: list[pe.Engine] = []
    yield engines
    for e in engines:
        e.close()


# ---- convergence ------------------------------------------------------------------------------


def test_counts_three_nodes_converge_a_user_on_several_nodes_counts_once(closing: list[pe.Engine]) -> None:
    a, b, c = node("a"), node("b"), node("c")
    closing += [a, b, c]
    net = Bus([a, b, c])
    # alice on all three nodes (twice on a), bob on a and c, two viewers on b, one on c.
    a.track_many([("video:1", 1, "alice"), ("video:1", 2, "alice"), ("video:1", 3, "bob")])
    b.track("video:1", 1, "alice")
    b.track("video:1", 2)
    b.track("video:1", 3)
    c.track("video:1", 1, "alice")
    c.track("video:1", 2, "bob")
    c.track("video:1", 3)
    c.track("lobby", 4, "carol")
    want = pe.Counts(viewers=3, users=2, connections=9)
    net.until(counts_is("video:1", want), 3, "convergence")
    for e in (a, b, c):
        assert e.counts("lobby") == pe.Counts(0, 1, 1)
        # Remote changes come out of poll_diff like local ones, and the state follows.
        diffs = {d["topic"]: d for d in e.poll_diff()}
        assert set(diffs) == {"video:1", "lobby"}
        assert diffs["video:1"]["counts"] == want.to_dict()
        assert e.list("video:1") == {"viewers": {"count": 3}, "users": {"count": 2}}
        assert e.state("lobby") == ({"viewers": {"count": 0}, "users": {"count": 1}}, 1)
        assert e.cluster_stats().nodes == 2

    # alice leaves b and one tab on a: still on a and c, so still one user, and no
    # client-visible change (connections alone) on any node.
    b.untrack("video:1", 1)
    a.untrack("video:1", 2)
    net.until(counts_is("video:1", pe.Counts(3, 2, 7)), 3, "alice leaves b")
    for e in (a, b, c):
        assert e.poll_diff() == []
    # alice leaves everywhere: one user fewer on every node, and b's poll_diff says so.
    assert a.untrack_conn(1) == 1
    c.untrack("video:1", 1)
    net.until(counts_is("video:1", pe.Counts(3, 1, 5)), 3, "alice leaves")
    [d] = b.poll_diff()
    assert d["topic"] == "video:1" and d["seq"] == 2
    assert d["payload"] == {
        "joins": {"viewers": {"count": 0}, "users": {"count": 0}},
        "leaves": {"viewers": {"count": 0}, "users": {"count": 1}},
    }

    # Counts format never puts a user id or a meta on the wire.
    wire = b"".join(m for _, m in net.published)
    for name in (b"alice", b"bob", b"carol"):
        assert name not in wire, name
    for e in (a, b, c):
        s = e.cluster_stats()
        assert s.rejected == 0
        mine = [m for sender, m in net.published if sender is e]
        assert s.messages_sent == len(mine)
        assert s.bytes_sent == sum(map(len, mine))
        # Every message reached every engine, its own echoes included.
        assert s.messages_received == len(net.published)
        assert s.bytes_received == sum(len(m) for _, m in net.published)


def test_phoenix_every_node_lists_every_node_presences(closing: list[pe.Engine]) -> None:
    a, b = node("a", "phoenix"), node("b", "phoenix")
    closing += [a, b]
    net = Bus([a, b])
    a.track("video:1", 1, "alice", {"device": "phone"})
    b.track("video:1", 1, "alice", '{"device":"laptop"}')
    b.track("video:1", 2, None, {"anon": True})
    net.until(counts_is("video:1", pe.Counts(1, 1, 3)), 3, "convergence")

    clients = {}
    for e in (a, b):
        [d] = e.poll_diff()
        clients[id(e)] = apply_diff("phoenix", {}, d["payload"])
        assert by_ref(clients[id(e)]) == by_ref(e.list("video:1"))
    la = by_ref(a.list("video:1"))
    assert without_refs(b.list("video:1")) == without_refs(a.list("video:1"))
    assert sorted(m["device"] for m in la["alice"]) == ["laptop", "phone"]
    assert [m["anon"] for m in la["viewers"]] == [True]
    # The entries travel in this format (the contrast with the counts format).
    assert b"phone" in b"".join(m for _, m in net.published)

    # An update on b reaches a as a leave and a join with phx_ref_prev.
    before = next(m for m in la["alice"] if m["device"] == "laptop")["phx_ref"]
    b.update("video:1", 1, {"device": "tablet"})
    net.round()
    [d] = a.poll_diff()
    assert d["payload"]["leaves"]["alice"]["metas"][0]["phx_ref"] == before
    [joined] = d["payload"]["joins"]["alice"]["metas"]
    assert joined["device"] == "tablet"
    assert joined["phx_ref_prev"] == before
    client = apply_diff("phoenix", clients[id(a)], d["payload"])
    assert by_ref(client) == by_ref(a.list("video:1"))
    # b leaves: its presences leave a's list.
    assert b.untrack_conn(1) == 1
    assert b.untrack_conn(2) == 1
    net.round()
    [d] = a.poll_diff()
    assert by_ref(apply_diff("phoenix", client, d["payload"])) == by_ref(a.list("video:1"))
    assert [m["device"] for m in a.list("video:1")["alice"]["metas"]] == ["phone"]


@pytest.mark.parametrize("fmt", ["counts", "phoenix"])
def test_a_lossy_bus_converges_after_gaps_snapshots_and_resync(fmt: str, closing: list[pe.Engine]) -> None:
    """Random changes on three nodes while a quarter of the messages are lost; once the bus
    is reliable again, every node converges to the exact counts of the union (gap ->
    snapshot request -> snapshot), and a client that applied every polled diff holds the
    engine's state."""
    engines = [node(n, fmt, snapshot_interval_ms=60_000) for n in "abc"]
    closing += engines
    net = Bus(engines, loss=0.25, seed=7)
    rng = random.Random(11)
    topics = ["video:1", "video:2", "lobby"]
    # model[node][topic] = {conn: (key, meta)}
    model: list[dict[str, dict[int, tuple[str | None, Any]]]] = [{t: {} for t in topics} for _ in engines]
    clients = [{t: empty_state(fmt) for t in topics} for _ in engines]
    seqs = [{t: 0 for t in topics} for _ in engines]

    def poll(i: int) -> None:
        for d in engines[i].poll_diff():
            t = d["topic"]
            if d["seq"] == 1 and seqs[i][t]:
                assert clients[i][t] == empty_state(fmt)  # dropped when empty, started over
                seqs[i][t] = 0
            assert d["seq"] == seqs[i][t] + 1
            seqs[i][t] = d["seq"]
            clients[i][t] = apply_diff(fmt, clients[i][t], d["payload"])

    for step in range(300):
        i = rng.randrange(3)
        t = rng.choice(topics)
        conn = rng.randrange(6)
        if conn in model[i][t]:
            engines[i].untrack(t, conn)
            del model[i][t][conn]
        else:
            key = rng.choice([None, "alice", "bob", "carol", "dave"])
            meta = {"n": step}
            engines[i].track(t, conn, key, meta)
            model[i][t][conn] = (key, meta)
        if step % 5 == 0:
            net.round()
        if step % 17 == 0:
            poll(rng.randrange(3))
    assert net.lost > 10, "the bus should have lost messages"

    net.loss = 0.0

    def expected(t: str) -> pe.Counts:
        union: dict[tuple[int, int], tuple[str | None, Any]] = {}
        for i, m in enumerate(model):
            for conn, p in m[t].items():
                union[(i, conn)] = p
        return pe.Counts(*counts_of(union))  # type: ignore[arg-type]

    want = {t: expected(t) for t in topics}
    net.until(lambda e: all(e.counts(t) == want[t] for t in topics), 10, "recovery")
    assert sum(e.cluster_stats().snapshot_requests_sent for e in engines) >= 1
    for i, e in enumerate(engines):
        poll(i)
        for t in topics:
            assert same_state(fmt, clients[i][t], e.list(t)), (i, t)
            if fmt == "counts":
                v, u, _ = want[t]
                assert clients[i][t] == {"viewers": {"count": v}, "users": {"count": u}}
        assert e.cluster_stats().rejected == 0

    # The bus "reconnects" after an outage that lost everything both ways: resync.
    net.dropped = {id(e) for e in engines}
    engines[0].track("video:1", 100, "erin")
    engines[2].untrack_conn(0)
    for m in model[2].values():
        m.pop(0, None)
    model[0]["video:1"][100] = ("erin", None)
    net.round()
    net.round()
    net.dropped.clear()
    before = [e.cluster_stats().snapshots_sent for e in engines]
    resync = engines[1].cluster_resync()
    assert type(resync) is bytes and resync
    net.deliver(engines[1], [resync])
    net.round()
    after = [e.cluster_stats().snapshots_sent for e in engines]
    assert after[0] > before[0] and after[2] > before[2], (before, after)
    want = {t: expected(t) for t in topics}
    net.until(lambda e: all(e.counts(t) == want[t] for t in topics), 5, "recovery after resync")


def test_snapshot_interval_sends_a_full_snapshot(closing: list[pe.Engine]) -> None:
    p = node("p", snapshot_interval_ms=100)
    closing.append(p)
    p.cluster_tick()
    first = p.cluster_stats().snapshots_sent
    time.sleep(0.15)
    p.cluster_tick()
    assert p.cluster_stats().snapshots_sent == first + 1


def test_a_late_joiner_gets_the_state_by_snapshot(closing: list[pe.Engine]) -> None:
    a, b = node("a"), node("b")
    closing += [a, b]
    for conn in range(50):
        a.track(f"t{conn % 5}", conn, f"u{conn}")
    net = Bus([a])
    net.round()
    net.round()
    # b arrives after a's first messages: a gap, then a snapshot.
    net.engines.append(b)
    net.until(lambda e: e.stats().topics == 5, 4, "snapshot")
    assert b.counts("t0") == pe.Counts(0, 10, 10)
    assert b.cluster_stats().snapshot_requests_sent >= 1


# ---- refused messages ------------------------------------------------------------------------


def test_refused_messages_raise_rejected_error_change_nothing_and_are_counted(closing: list[pe.Engine]) -> None:
    a = node("a", max_message_bytes=20_000)
    b = node("b", max_message_bytes=20_000)
    closing += [a, b]
    b.track("video:1", 1, "bob")
    [first] = b.cluster_tick()
    a.cluster_ingest(first)
    a.poll_diff()
    b.track("video:1", 2, "carol")
    [msg] = b.cluster_tick()
    base = a.cluster_stats()

    def untouched() -> None:
        assert a.counts("video:1") == pe.Counts(0, 1, 1)
        assert a.pending_topics() == 0

    def refused(m: bytes, counter: str, match: str | None = None) -> None:
        was = a.cluster_stats()
        with pytest.raises(pe.RejectedError, match=match) as info:
            a.cluster_ingest(m)
        assert info.value.kind == "rejected"
        assert isinstance(info.value, pe.PresenceError)
        now = a.cluster_stats()
        assert getattr(now, counter) == getattr(was, counter) + 1, counter
        assert now.rejected == was.rejected + 1, f"only {counter} moved"
        assert now.messages_received == was.messages_received + 1
        assert now.bytes_received == was.bytes_received + len(m)
        untouched()

    # Tampered: one bit flipped anywhere, in the body or the tag.
    for at in (0, 5, len(msg) // 2, len(msg) - 1):
        t = bytearray(msg)
        t[at] ^= 1
        refused(bytes(t), "rejected_unauthenticated", "authentication")
    # Truncated, extended, empty.
    refused(msg[:-1], "rejected_unauthenticated")
    refused(msg[: len(msg) // 2], "rejected_unauthenticated")
    refused(msg + b"\0", "rejected_unauthenticated")
    refused(b"", "rejected_unauthenticated")
    # Forged: signed with another secret.
    with pe.Engine(cluster={"node": "x", "secret": "another secret, same length!!"}) as stranger:
        stranger.track("video:1", 9, "mallory")
        refused(stranger.cluster_tick()[0], "rejected_unauthenticated")
    # Larger than max_message_bytes, whatever it holds.
    refused(bytes(20_001), "rejected_oversized", "too large")
    # Authentic, but of the other format.
    with node("p", "phoenix") as phx:
        phx.track("video:1", 1, "alice")
        refused(phx.cluster_tick()[0], "rejected_malformed", "format")

    # The real message, then its replays.
    a.cluster_ingest(msg)
    assert a.counts("video:1") == pe.Counts(0, 2, 2)
    a.poll_diff()
    with pytest.raises(pe.RejectedError, match="replayed"):
        a.cluster_ingest(msg)
    with pytest.raises(pe.RejectedError, match="replayed"):
        a.cluster_ingest(first)
    assert a.counts("video:1") == pe.Counts(0, 2, 2)
    assert a.pending_topics() == 0
    s = a.cluster_stats()
    assert s.rejected_replayed == base.rejected_replayed + 2
    assert s.rejected_unauthenticated == base.rejected_unauthenticated + 9
    assert s.rejected_oversized == 1
    assert s.rejected_malformed == 1
    assert s.rejected == s.rejected_unauthenticated + s.rejected_malformed + s.rejected_oversized + s.rejected_replayed


def test_max_nodes_bounds_the_peers(closing: list[pe.Engine]) -> None:
    a, b, c = node("a", max_nodes=1), node("b"), node("c")
    closing += [a, b, c]
    a.cluster_ingest(b.cluster_tick()[0])
    with pytest.raises(pe.RejectedError, match="too many nodes"):
        a.cluster_ingest(c.cluster_tick()[0])
    assert a.cluster_stats().nodes == 1
    assert a.cluster_stats().rejected_malformed == 1


def test_messages_are_bytes_like(closing: list[pe.Engine]) -> None:
    a, b = node("a"), node("b")
    closing += [a, b]
    held: list[bytes] = []
    for i in range(30):
        a.track(f"t{i}", i, f"u{i}")
        held += a.cluster_tick()
    for m in held[:10]:
        b.cluster_ingest(m)
    for m in held[10:20]:
        b.cluster_ingest(bytearray(m))
    for m in held[20:]:
        big = bytearray(7) + m + bytearray(3)
        b.cluster_ingest(memoryview(big)[7 : 7 + len(m)])
    assert b.cluster_stats().rejected == 0
    assert b.stats().topics == 30
    assert b.counts("t29") == pe.Counts(0, 1, 1)
    received = b.cluster_stats().messages_received
    for bad in ("text", 1, None, [1, 2], {"a": 1}):
        with pytest.raises(TypeError, match="bytes, bytearray or memoryview"):
            b.cluster_ingest(bad)  # type: ignore[arg-type]
    assert b.cluster_stats().messages_received == received, "none reached the engine"


# ---- leave, silence -------------------------------------------------------------------------


def test_cluster_leave_makes_the_others_drop_the_node_at_once(closing: list[pe.Engine]) -> None:
    a, b, c = node("a"), node("b"), node("c")
    closing += [a, b, c]
    net = Bus([a, b, c])
    a.track("video:1", 1, "alice")
    b.track("video:1", 1, "bob")
    c.track("video:1", 1)
    net.until(counts_is("video:1", pe.Counts(1, 2, 3)), 3, "convergence")
    for e in (b, c):
        e.poll_diff()
    sent = a.cluster_stats().messages_sent
    leave = a.cluster_leave()
    assert type(leave) is bytes and leave
    net.deliver(a, [leave])
    for e in (b, c):
        assert e.counts("video:1") == pe.Counts(1, 1, 2)
        [d] = e.poll_diff()
        assert d["payload"]["leaves"] == {"viewers": {"count": 0}, "users": {"count": 1}}
        s = e.cluster_stats()
        assert s.nodes == 1
        assert s.nodes_dropped == 1
    assert a.cluster_stats().messages_sent == sent + 1
    assert a.cluster_tick() == []
    assert a.cluster_tick() == []


def test_down_after_ms_drops_a_silent_node(closing: list[pe.Engine]) -> None:
    # Rounds come every 20 ms; down_after_ms leaves room for a loaded machine's pauses,
    # which would make a drop b too.
    opts = {"tick_ms": 20, "down_after_ms": 400}
    a, b, c = node("a", **opts), node("b", **opts), node("c", **opts)
    closing += [a, b, c]
    net = Bus([a, b, c])
    c.track("video:1", 1, "carol")
    started = time.monotonic()  # before c's last message
    net.until(counts_is("video:1", pe.Counts(0, 1, 1)), 3, "convergence")
    a.poll_diff()
    # c goes silent (a crash: no leave); a and b keep ticking.
    net.engines = [a, b]
    while a.counts("video:1").connections or b.counts("video:1").connections:
        assert time.monotonic() - started < 5, "c was never dropped"
        time.sleep(0.02)
        net.round()
    took = time.monotonic() - started
    assert took >= 0.4, f"dropped after {took:.3f} s, before down_after_ms"
    assert a.cluster_stats().nodes_dropped == 1
    [d] = a.poll_diff()
    assert d["payload"]["leaves"] == {"viewers": {"count": 0}, "users": {"count": 1}}


# ---- host integration -----------------------------------------------------------------------


def test_an_ingest_wakes_the_descriptor_and_diffs(closing: list[pe.Engine]) -> None:
    a, b = node("a"), node("b")
    closing += [a, b]
    b.track("video:1", 1, "bob")
    [m] = b.cluster_tick()
    assert not select.select([a.fileno()], [], [], 0)[0]
    assert a.pending_topics() == 0
    a.cluster_ingest(m)
    assert select.select([a.fileno()], [], [], 0)[0]
    assert a.pending_topics() == 1

    async def main() -> list[dict[str, Any]]:
        async for batch in a.diffs():
            return batch
        raise AssertionError("diffs() ended")

    [d] = asyncio.run(main())
    assert d["topic"] == "video:1" and d["counts"]["users"] == 1


def test_own_bus_with_asyncio_tasks(closing: list[pe.Engine]) -> None:
    """The README's own-bus loop: a ticker task per node publishing on an asyncio "bus"
    (a queue per node), a receiver task per node ingesting, and diffs() seeing the remote
    change."""
    engines = [node(n, tick_ms=10, down_after_ms=1000) for n in ("a", "b")]
    closing += engines

    async def main() -> dict[str, Any]:
        queues = [asyncio.Queue[bytes]() for _ in engines]

        async def publish(message: bytes) -> None:
            for q in queues:
                q.put_nowait(message)

        async def ticker(e: pe.Engine) -> None:
            while True:
                for m in e.cluster_tick():
                    await publish(m)
                await asyncio.sleep(0.01)

        async def receiver(e: pe.Engine, q: asyncio.Queue[bytes]) -> None:
            while True:
                e.cluster_ingest(await q.get())

        async def first_diff() -> dict[str, Any]:
            async for batch in engines[1].diffs():
                return batch[0]
            raise AssertionError("diffs() ended")

        tasks = [asyncio.create_task(ticker(e)) for e in engines]
        tasks += [asyncio.create_task(receiver(e, q)) for e, q in zip(engines, queues)]
        engines[0].track("video:1", 1, "alice")
        try:
            return await asyncio.wait_for(first_diff(), 5)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    d = asyncio.run(main())
    assert d["topic"] == "video:1"
    assert d["counts"] == {"viewers": 0, "users": 1, "connections": 1}


def test_pending_topics_counts_topics_to_poll(closing: list[pe.Engine]) -> None:
    a = node("a")
    closing.append(a)
    assert a.pending_topics() == 0
    a.track("t1", 1)
    a.track("t1", 2)
    a.track("t2", 1)
    assert a.pending_topics() == 2 == a.stats().topics_pending
    a.poll_diff()
    assert a.pending_topics() == 0
    # A change that cancels out still counts until the poll, which returns nothing.
    a.track("t3", 1)
    a.untrack("t3", 1)
    assert a.pending_topics() == 1
    assert a.poll_diff() == []
    assert a.pending_topics() == 0
    with pe.Engine() as single:
        single.track("t", 1)
        assert single.pending_topics() == 1


# ---- single node, settings, values, closed engines --------------------------------------------


@pytest.mark.parametrize("kwargs", [{}, {"cluster": None}, {"format": "phoenix"}])
def test_a_single_node_engine_raises_no_cluster_error(kwargs: dict[str, Any]) -> None:
    with pe.Engine(**kwargs) as e:
        calls: dict[str, Callable[[], object]] = {
            "cluster_tick": e.cluster_tick,
            "cluster_ingest": lambda: e.cluster_ingest(b"x"),
            "cluster_leave": e.cluster_leave,
            "cluster_resync": e.cluster_resync,
            "cluster_stats": e.cluster_stats,
            "start_redis": lambda: e.start_redis("redis://127.0.0.1:1/", "presence"),
        }
        for name, call in calls.items():
            with pytest.raises(pe.NoClusterError, match="without a cluster config") as info:
                call()
            assert info.value.kind == "no_cluster", name
            assert type(info.value).__mro__[1] is pe.PresenceError
        e.stop_redis()  # no link runs: nothing to do, cluster or not
        assert e.config["cluster"] is None


def test_cluster_settings_are_applied_and_reported_without_the_secret() -> None:
    settings = {
        "tick_ms": 10,
        "down_after_ms": 11,
        "stale_after_ms": 12,
        "snapshot_interval_ms": 5,
        "max_message_bytes": 16384,
        "max_nodes": 2,
    }
    with node("web-1", **settings) as e:
        assert e.config["cluster"] == {"node": "web-1", **settings}
        assert "secret" not in repr(e.config) and SECRET not in repr(e.config)
        assert repr(e) == '<Engine format="counts" node="web-1" open>'
        s = e.cluster_stats()
        assert s.node == "web-1"
        assert s.incarnation > 2**53, "milliseconds << 16"
    with node("b", tick_ms=None, max_nodes=None) as e:  # None: the default
        assert e.config["cluster"] == {
            "node": "b",
            "tick_ms": 250,
            "down_after_ms": 3000,
            "stale_after_ms": 30000,
            "snapshot_interval_ms": 300000,
            "max_message_bytes": 262144,
            "max_nodes": 64,
        }
    # Any mapping works.
    proxy = types.MappingProxyType({"node": "c", "secret": SECRET, "tick_ms": 100})
    with pe.Engine(cluster=proxy) as e:  # type: ignore[arg-type]
        assert e.config["cluster"]["tick_ms"] == 100
    # Restarts get increasing incarnations.
    incarnations = []
    for _ in range(3):
        with node("a") as e:
            incarnations.append(e.cluster_stats().incarnation)
        time.sleep(0.002)
    assert incarnations == sorted(set(incarnations))


@pytest.mark.parametrize(
    "cluster, match",
    [
        ({"node": "a"}, "cluster.secret is missing"),
        ({"secret": SECRET}, "cluster.node is missing"),
        ({"node": "a", "secret": "short"}, "cluster.secret must be a string of at least 16 bytes"),
        ({"node": "", "secret": SECRET}, "cluster.node must be a string of 1 to 255 bytes"),
        ({"node": "n" * 256, "secret": SECRET}, "cluster.node must be a string of 1 to 255 bytes"),
        ({"node": "a", "secret": SECRET, "tick_ms": 500, "down_after_ms": 400}, "cluster.down_after_ms must exceed"),
        ({"node": "a", "secret": SECRET, "tick_ms": 0}, "cluster.tick_ms: invalid value: integer `0`, expected a positive integer"),
        ({"node": "a", "secret": SECRET, "max_nodes": -1}, "cluster.max_nodes: .*expected a positive integer"),
        ({"node": "a", "secret": SECRET, "max_nodes": 2**70}, "cluster.max_nodes: .*expected a positive integer"),
        ({"node": "a", "secret": SECRET, "max_message_bytes": 100}, "cluster.max_message_bytes must be at least"),
        ({"node": "a", "secret": SECRET, "tick": 5}, "unknown cluster setting 'tick'|unknown cluster setting \"tick\""),
        ({"node": "a", "secret": SECRET, "tickMs": 5}, "unknown cluster setting"),
    ],
)
def test_cluster_setting_errors(cluster: dict[str, Any], match: str) -> None:
    with pytest.raises(pe.ConfigError, match=match) as info:
        pe.Engine(cluster=cluster)  # type: ignore[arg-type]
    assert info.value.kind == "invalid_config"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "cluster",
    [
        "a",
        ["node", "a"],
        1,
        {"node": 1, "secret": SECRET},
        {"node": "a", "secret": b"0123456789abcdef"},
        {"node": None, "secret": SECRET},
        {"node": "a", "secret": SECRET, "tick_ms": "5"},
        {"node": "a", "secret": SECRET, "tick_ms": 5.0},
        {"node": "a", "secret": SECRET, "tick_ms": True},
        {"node": "a", "secret": SECRET, 1: 5},
    ],
)
def test_cluster_setting_type_errors(cluster: Any) -> None:
    with pytest.raises(TypeError):
        pe.Engine(cluster=cluster)


def test_cluster_stats_is_a_frozen_value(closing: list[pe.Engine]) -> None:
    a = node("a")
    closing.append(a)
    s = a.cluster_stats()
    assert s == a.cluster_stats() and hash(s) == hash(a.cluster_stats())
    with pytest.raises(AttributeError):
        s.nodes = 3  # type: ignore[misc]
    d = s.to_dict()
    assert list(d) == [
        "node",
        "incarnation",
        "nodes",
        "messages_sent",
        "bytes_sent",
        "messages_received",
        "bytes_received",
        "rejected_unauthenticated",
        "rejected_malformed",
        "rejected_oversized",
        "rejected_replayed",
        "snapshots_sent",
        "snapshot_requests_sent",
        "nodes_dropped",
        "stale_nodes",
        "link_up",
    ]
    assert d["node"] == "a" and d["incarnation"] == s.incarnation
    assert repr(s).startswith(f"ClusterStats(node='a', incarnation={s.incarnation}, nodes=0, ")
    assert type(s).__module__ == "presence_engine"
    assert json.dumps(d)
    a.cluster_tick()
    assert a.cluster_stats() != s
    assert a.cluster_stats().messages_sent == 1


def test_closed_engine_raises_engine_closed_error() -> None:
    e = node("a")
    e.close()
    for call in (
        e.pending_topics,
        e.cluster_tick,
        lambda: e.cluster_ingest(b"x"),
        e.cluster_leave,
        e.cluster_resync,
        e.cluster_stats,
        lambda: e.start_redis("redis://127.0.0.1:1/", "c"),
        e.stop_redis,
    ):
        with pytest.raises(pe.EngineClosedError):
            call()


def test_start_redis_argument_errors(closing: list[pe.Engine]) -> None:
    e = node("a")
    closing.append(e)
    for url, channel in ((1, "c"), ("redis://127.0.0.1:1/", None), (None, "c"), (b"redis://x", "c")):
        with pytest.raises(TypeError):
            e.start_redis(url, channel)  # type: ignore[arg-type]
    with pytest.raises(pe.InvalidInputError, match="bad Redis URL") as info:
        e.start_redis("not a url", "presence")
    assert info.value.kind == "invalid_argument"
    with pytest.raises(pe.InvalidInputError, match="channel must not be empty"):
        e.start_redis("redis://127.0.0.1:1/", "")
    with pytest.raises(pe.InvalidInputError) as info:
        e.start_redis("redis://127.0.0.1:1/", "\ud800")
    assert info.value.kind == "invalid_utf8"


def test_start_redis_to_an_absent_server_retries_publishes_nothing_and_stops(closing: list[pe.Engine]) -> None:
    e = node("a", tick_ms=20, down_after_ms=100)
    closing.append(e)
    assert e.cluster_stats().link_up, "without a link, the host's own bus is assumed"
    # Nothing listens on port 1: the link keeps retrying in its thread; meanwhile the node
    # cannot hear the bus, so it publishes nothing (its changes wait for the link).
    e.start_redis("redis://127.0.0.1:1/", "presence")
    e.track("t", 1)
    time.sleep(0.2)
    s = e.cluster_stats()
    assert not s.link_up and s.messages_sent == 0, s
    started = time.monotonic()
    e.stop_redis()
    assert time.monotonic() - started < 1.5, "stopping waits on Redis for about a second at most"
    e.stop_redis()  # no link: nothing to do
    assert e.cluster_stats().link_up
    # close() stops a running link too (waiting for its thread).
    with node("b", tick_ms=20, down_after_ms=100) as b:
        b.start_redis("redis://127.0.0.1:1/", "presence")
    assert b.closed


def test_a_replaced_or_restarted_link_rejoins_as_a_new_incarnation(closing: list[pe.Engine]) -> None:
    e = node("a", tick_ms=20, down_after_ms=100)
    closing.append(e)
    e.start_redis("redis://127.0.0.1:1/", "presence")
    e.start_redis("redis://127.0.0.1:1/", "presence")  # replaces the running link
    replaced = e.cluster_stats()
    e.stop_redis()
    stopped = e.cluster_stats()
    e.start_redis("redis://127.0.0.1:1/", "presence")
    started = e.cluster_stats()
    time.sleep(0.1)
    after = e.cluster_stats()
    assert started.incarnation > stopped.incarnation >= replaced.incarnation > 0, "a new incarnation"
    assert after.incarnation == started.incarnation, "kept while it runs"
    assert not after.link_up


def readme_block(containing: str) -> str:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    [block] = [b for b in blocks if containing in b]
    return block


def test_the_readme_own_bus_loop(closing: list[pe.Engine]) -> None:
    """The README's `replicate` coroutine, run for two nodes over an asyncio bus: they
    converge, a forged message is logged and skipped, and cancelling one node's replicate
    publishes its departure."""
    namespace: dict[str, Any] = {}
    exec(readme_block("async def replicate"), namespace)  # noqa: S102 - our own README
    replicate = namespace["replicate"]
    engines = [node(n, tick_ms=10, down_after_ms=5000) for n in ("a", "b")]
    closing += engines

    async def main() -> None:
        queues: list[asyncio.Queue[bytes]] = [asyncio.Queue() for _ in engines]

        async def publish(message: bytes) -> None:
            for q in queues:  # every node, the sender included, as pub/sub does
                q.put_nowait(message)

        def messages_of(q: asyncio.Queue[bytes]) -> Callable[[], Any]:
            async def messages() -> Any:
                while True:
                    yield await q.get()

            return messages

        tasks = [asyncio.create_task(replicate(e, publish, messages_of(q), 0.01)) for e, q in zip(engines, queues)]
        a, b = engines
        a.track("video:1", 1, "alice")
        b.track("video:1", 1, "bob")
        b.track("video:1", 2)
        await publish(b"forged")
        for _ in range(500):
            if a.counts("video:1") == b.counts("video:1") == pe.Counts(1, 2, 3):
                break
            await asyncio.sleep(0.01)
        assert a.counts("video:1") == pe.Counts(1, 2, 3)
        assert a.cluster_stats().rejected_unauthenticated == 1
        tasks[1].cancel()  # b shuts down: its leave goes out
        await asyncio.gather(tasks[1], return_exceptions=True)
        for _ in range(100):
            if a.counts("video:1") == pe.Counts(0, 1, 1):
                break
            await asyncio.sleep(0.01)
        assert a.counts("video:1") == pe.Counts(0, 1, 1)
        assert a.cluster_stats().nodes_dropped == 1
        tasks[0].cancel()
        await asyncio.gather(tasks[0], return_exceptions=True)

    asyncio.run(main())


def test_the_readme_cluster_settings() -> None:
    block = readme_block('"node": os.environ["NODE_NAME"]')
    namespace: dict[str, Any] = {
        "Engine": pe.Engine,
        "os": types.SimpleNamespace(environ={"NODE_NAME": "web-1", "CLUSTER_SECRET": SECRET}),
    }
    exec(block, namespace)  # noqa: S102 - our own README
    engine = namespace["engine"]
    assert engine.config["cluster"]["node"] == "web-1"
    engine.close()
