"""track_many / untrack_many / untrack_conns: results, and the first-failure rule."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

import presence_engine as pe

CHUNK = 1024  # the binding's chunk size: failures are tested on both sides of it


def counting(items: list[Any], seen: list[int]) -> Iterator[Any]:
    for i, item in enumerate(items):
        seen.append(i)
        yield item


def test_track_many_equals_single_calls(engine: pe.Engine) -> None:
    items: list[Any] = []
    for conn in range(3000):
        topic = f"t{conn % 7}"
        if conn % 4 == 0:
            items.append((topic, conn))
        elif conn % 4 == 1:
            items.append((topic, conn, None))
        elif conn % 4 == 2:
            items.append([topic, conn, f"u{conn % 50}"])
        else:
            items.append((topic, conn, f"u{conn % 50}", {"i": conn} if conn % 8 == 3 else '{"s":1}'))
    engine.track_many(items)
    with pe.Engine(format=engine.format) as single:  # type: ignore[arg-type]
        for item in items:
            single.track(*item)
        for t in range(7):
            assert engine.counts(f"t{t}") == single.counts(f"t{t}")
        if engine.format == "phoenix":
            engine.poll_diff()
            single.poll_diff()
            for t in range(7):
                assert sorted(engine.list(f"t{t}")) == sorted(single.list(f"t{t}"))
    assert engine.stats().presences == 3000
    engine.untrack_many((item[0], item[1]) for item in items)
    assert engine.stats().presences == 0


def test_bulk_accepts_any_iterable(counts_engine: pe.Engine) -> None:
    e = counts_engine
    e.track_many(iter([("a", 1), ("a", 2)]))
    e.track_many(("b", c, "k") for c in range(5))
    e.track_many([])
    e.track_many(())
    assert e.counts("a") == pe.Counts(2, 0, 2)
    assert e.counts("b") == pe.Counts(0, 1, 5)
    e.untrack_many({("a", 1)})
    assert e.untrack_conns(range(10)) == 6  # ("a", 2) and ("b", 0..4)
    assert e.untrack_conns([]) == 0
    assert e.untrack_conns(iter([2, 2, 2])) == 0


@pytest.mark.parametrize("fail_at", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2500])
def test_track_many_engine_error_applies_the_items_before(engine: pe.Engine, fail_at: int) -> None:
    engine.track("t", 10**9)  # the item at fail_at repeats this presence
    items = [("t", c, f"u{c}") for c in range(3000)]
    items[fail_at] = ("t", 10**9, "dup")
    seen: list[int] = []
    with pytest.raises(pe.AlreadyTrackedError) as info:
        engine.track_many(counting(items, seen))
    assert info.value.index == fail_at
    assert str(info.value).startswith(f"item {fail_at}: connection 1000000000 is already tracked")
    assert engine.counts("t").connections == 1 + fail_at
    for c in range(3000):
        tracked = c < fail_at
        try:
            engine.untrack("t", c)
            assert tracked, f"item {c} applied after the failing item {fail_at}"
        except pe.NotTrackedError:
            assert not tracked, f"item {c} not applied before the failing item {fail_at}"
    # The iterable was consumed up to the failing item, and no further than its chunk.
    assert max(seen) < (fail_at // CHUNK + 1) * CHUNK


@pytest.mark.parametrize("fail_at", [0, 5, CHUNK, 1500])
@pytest.mark.parametrize(
    "bad, error, message",
    [
        (42, TypeError, "items must be tuples (topic, conn[, key[, meta]]), not int"),
        ("t", TypeError, "not str"),
        (("t",), TypeError, "got one of length 1"),
        (("t", 1, None, None, None), TypeError, "got one of length 5"),
        ((1, 1), TypeError, "topic must be a str, not int"),
        (("t", "1"), TypeError, "conn must be an int, not str"),
        (("t", -1), ValueError, "conn must be an int from 0"),
        (("t", 1, 5), TypeError, "key must be a str, not int"),
        (("t", 1, None, [1]), TypeError, "meta must be a dict"),
        (("t", 1, None, {"a": {1}}), TypeError, "not set"),
        # Refused by the engine when the chunk is applied, not when converted:
        (("", 1), pe.InvalidInputError, "item {i}: topic must not be empty"),
        (("t", 1, None, "[]"), pe.InvalidInputError, "item {i}: meta must be a JSON object"),
        (("t", 1, None, {"a": float("nan")}), pe.InvalidInputError, "finite"),
        (("\ud800", 1), pe.InvalidInputError, "UTF-8"),
    ],
)
def test_track_many_bad_item(fail_at: int, bad: Any, error: type, message: str) -> None:
    with pe.Engine() as e:
        items: list[Any] = [("t", c + 10, "k") for c in range(2000)]
        items[fail_at] = bad
        seen: list[int] = []
        with pytest.raises(error, match=re.escape(message.format(i=fail_at))) as info:
            e.track_many(counting(items, seen))
        assert info.value.index == fail_at  # type: ignore[attr-defined]
        assert e.counts("t").connections == fail_at
        if message.startswith("item"):
            assert max(seen) < (fail_at // CHUNK + 1) * CHUNK
        else:
            assert max(seen) == fail_at  # a bad item stops the iteration at once


def test_iterator_errors_propagate_after_applying_the_items_before(counts_engine: pe.Engine) -> None:
    def gen() -> Iterator[tuple[str, int]]:
        for c in range(1500):
            yield ("t", c)
        raise RuntimeError("source failed")

    with pytest.raises(RuntimeError, match="source failed") as info:
        counts_engine.track_many(gen())
    assert not hasattr(info.value, "index")
    assert counts_engine.counts("t").connections == 1500

    def conns() -> Iterator[int]:
        yield 1
        yield 2
        raise LookupError("conns failed")

    with pytest.raises(LookupError):
        counts_engine.untrack_conns(conns())
    assert counts_engine.counts("t").connections == 1498


@pytest.mark.parametrize("fail_at", [0, 7, CHUNK - 1, CHUNK, 2999])
def test_untrack_many_first_failure(engine: pe.Engine, fail_at: int) -> None:
    engine.track_many(("t", c) for c in range(3000))
    items = [("t", c) for c in range(3000)]
    items[fail_at] = ("other", 5)
    with pytest.raises(pe.NotTrackedError) as info:
        engine.untrack_many(items)
    assert info.value.index == fail_at
    assert info.value.kind == "not_tracked"
    assert str(info.value) == f'item {fail_at}: connection 5 is not tracked in topic "other"'
    assert engine.counts("t").connections == 3000 - fail_at


@pytest.mark.parametrize(
    "bad, error",
    [(("t",), TypeError), (("t", 1, "k"), TypeError), (5, TypeError), ((2, 1), TypeError), (("t", -3), ValueError)],
)
def test_untrack_many_bad_item(counts_engine: pe.Engine, bad: Any, error: type) -> None:
    counts_engine.track_many(("t", c) for c in range(10))
    with pytest.raises(error) as info:
        counts_engine.untrack_many([("t", 0), ("t", 1), bad, ("t", 2)])
    assert info.value.index == 2  # type: ignore[attr-defined]
    assert counts_engine.counts("t").connections == 8


def test_untrack_conns(engine: pe.Engine) -> None:
    for c in range(3000):
        engine.track(f"t{c % 3}", c)
        if c % 2:
            engine.track("extra", c)
    assert engine.untrack_conns(range(3000)) == 3000 + 1500
    assert engine.stats().presences == 0


@pytest.mark.parametrize("fail_at", [0, 3, CHUNK, 2000])
@pytest.mark.parametrize("bad, error", [("x", TypeError), (-1, ValueError), (2**64, ValueError), (None, TypeError), (True, TypeError)])
def test_untrack_conns_bad_item(fail_at: int, bad: Any, error: type) -> None:
    with pe.Engine() as e:
        e.track_many(("t", c) for c in range(3000))
        conns: list[Any] = list(range(3000))
        conns[fail_at] = bad
        with pytest.raises(error) as info:
            e.untrack_conns(conns)
        assert info.value.index == fail_at  # type: ignore[attr-defined]
        assert e.counts("t").connections == 3000 - fail_at


def test_limit_in_the_middle_of_a_bulk_call() -> None:
    with pe.Engine(max_presences=1500) as e:
        with pytest.raises(pe.LimitReachedError) as info:
            e.track_many(("t", c) for c in range(2000))
        assert info.value.index == 1500
        assert e.stats().presences == 1500


def test_bulk_meta_and_keys_survive_chunk_boundaries(phoenix_engine: pe.Engine) -> None:
    # Long strings fill a chunk by bytes before it is full by count.
    items = [(f"topic-{c % 3}", c, f"user-{c}-" + "x" * 200, {"c": c, "pad": "y" * 1000}) for c in range(3000)]
    phoenix_engine.track_many(items)
    phoenix_engine.poll_diff()
    seen = {}
    for t in range(3):
        for key, p in phoenix_engine.list(f"topic-{t}").items():
            [meta] = p["metas"]
            seen[meta["c"]] = key
    assert seen == {c: f"user-{c}-" + "x" * 200 for c in range(3000)}
