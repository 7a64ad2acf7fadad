"""Engine.counts_many: the counts of many topics in one call, each what counts() gives, on
one node and on the nodes of a cluster over an in-test bus; a bad topic fails the call
with its position."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

import presence_engine as pe

SECRET = "a shared secret of the test cluster"


def test_each_topic_gets_what_counts_gives(engine: pe.Engine) -> None:
    rng = random.Random(3)
    for conn in range(1500):
        topic = f"t{rng.randrange(30)}"
        key = f"u{rng.randrange(200)}" if rng.random() < 0.7 else None
        engine.track(topic, conn, key)
        if rng.random() < 0.2:
            engine.untrack_conn(rng.randrange(conn + 1))
        if rng.random() < 0.02:
            engine.poll()
    asked = [f"t{rng.randrange(45)}" for _ in range(300)] + ["nowhere", "t0", "t0"]
    many = engine.counts_many(asked)
    assert type(many) is list and len(many) == len(asked)
    assert all(type(c) is pe.Counts for c in many)
    assert many == [engine.counts(t) for t in asked]
    assert many[-3] == pe.Counts(0, 0, 0)
    assert any(c.connections for c in many)


def test_any_iterable_of_str_and_none_at_all(counts_engine: pe.Engine) -> None:
    e = counts_engine
    e.track("a", 1, "alice")
    e.track("a", 2)
    e.track("b", 3, "bob")
    want = [pe.Counts(1, 1, 2), pe.Counts(0, 1, 1), pe.Counts(0, 0, 0)]
    assert e.counts_many(["a", "b", "c"]) == want
    assert e.counts_many(("a", "b", "c")) == want
    assert e.counts_many(t for t in "abc") == want
    assert e.counts_many({"a": 1}) == want[:1]
    assert e.counts_many([]) == []
    assert e.counts_many(iter(())) == []


def test_counts_are_live_not_as_of_the_last_poll(counts_engine: pe.Engine) -> None:
    e = counts_engine
    e.track("a", 1, "alice")
    e.poll()
    e.track("a", 2)
    assert e.counts_many(["a"]) == [pe.Counts(1, 1, 2)]
    e.untrack_conn(1)
    e.untrack_conn(2)
    assert e.counts_many(["a"]) == [pe.Counts(0, 0, 0)]


def test_a_bad_topic_fails_the_call_with_its_position() -> None:
    with pe.Engine(max_topic_bytes=8) as e:
        e.track("a", 1)
        with pytest.raises(pe.InvalidInputError) as info:
            e.counts_many(["a", "b", ""])
        assert info.value.index == 2 and info.value.kind == "invalid_argument"
        assert str(info.value).startswith("topics[2]: ")
        with pytest.raises(pe.InvalidInputError) as info:
            e.counts_many(["a\0b"])
        assert info.value.index == 0
        with pytest.raises(pe.TooLongError) as info:
            e.counts_many(["a", "much-too-long", ""])  # the first bad one is the error
        assert info.value.index == 1 and info.value.kind == "too_long"
        assert "topics[1]" in str(info.value)
        with pytest.raises(pe.InvalidInputError) as info:
            e.counts_many(["a", "\ud800"])
        assert info.value.index == 1 and info.value.kind == "invalid_utf8"
        with pytest.raises(TypeError) as type_info:
            e.counts_many(["a", b"b"])  # type: ignore[list-item]
        assert getattr(type_info.value, "index") == 1
        # Whichever check finds it, the first bad topic is the error.
        with pytest.raises(pe.InvalidInputError) as info:
            e.counts_many(["a", "", b"b"])  # type: ignore[list-item]
        assert info.value.index == 1
        with pytest.raises(TypeError) as type_info:
            e.counts_many(["a", 7, ""])  # type: ignore[list-item]
        assert getattr(type_info.value, "index") == 1
        with pytest.raises(TypeError):
            e.counts_many(7)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="not a str"):
            e.counts_many("ab")
        assert e.counts_many(["a"]) == [pe.Counts(1, 0, 1)]


def test_an_exception_of_the_iterable_propagates(counts_engine: pe.Engine) -> None:
    def topics() -> Iterator[str]:
        yield "a"
        raise LookupError("from the iterable")

    with pytest.raises(LookupError, match="from the iterable"):
        counts_engine.counts_many(topics())


def node(name: str) -> pe.Engine:
    return pe.Engine(cluster={"node": name, "secret": SECRET})


def exchange(engines: list[pe.Engine], rounds: int = 3) -> None:
    """Ticks each engine and delivers its messages to every engine, echoes included."""
    for _ in range(rounds):
        for sender in engines:
            for message in sender.cluster_tick():
                for e in engines:
                    e.cluster_ingest(message)


def test_a_cluster_engine_counts_the_whole_cluster() -> None:
    a, b = node("a"), node("b")
    try:
        a.track_many([("video:1", 1, "alice"), ("video:1", 2)])
        b.track_many([("video:1", 1, "alice"), ("video:1", 2, "bob"), ("video:2", 3)])
        exchange([a, b])
        asked = ["video:1", "video:2", "video:3"]
        want = [pe.Counts(1, 2, 4), pe.Counts(1, 0, 1), pe.Counts(0, 0, 0)]
        for n in (a, b):
            assert n.counts_many(asked) == want
            assert n.counts_many(asked) == [n.counts(t) for t in asked]
        a.cluster_ingest(b.cluster_leave())
        assert a.counts_many(asked) == [pe.Counts(1, 1, 2), pe.Counts(0, 0, 0), pe.Counts(0, 0, 0)]
    finally:
        a.close()
        b.close()
