"""Presences with a time to live (`track(..., ttl=seconds)`, `track_many(items, ttl=...)`,
`touch(conn)`): the expiry wakes `fileno()` by itself, one touch renews every topic of a
connection, untracks work as for any presence, bad ttls are refused, `diffs()` delivers the
leave with no timer of the host's, in a cluster the leave reaches the other node, and
`stats().expired` counts this node's expiries only. The engine's clock is the system's
here: the deterministic tests of deadlines are the core's (tests/model_ttl.rs)."""

from __future__ import annotations

import asyncio
import json
import math
import select
import time
from collections.abc import Iterator

import pytest

import presence_engine as pe

SECRET = "a shared secret of the test cluster"


def readable_within(fd: int, seconds: float) -> bool:
    return bool(select.select([fd], [], [], seconds)[0])


def test_an_expired_presence_wakes_the_descriptor_and_leaves_at_the_next_poll(fmt: str) -> None:
    with pe.Engine(format=fmt) as e:  # type: ignore[arg-type]
        e.track("inbox", 1, "alice", {"device": "phone"}, ttl=0.05)
        e.track("inbox", 2, "bob")
        e.poll_diff()
        start = time.monotonic()
        assert not readable_within(e.fileno(), 0)
        assert readable_within(e.fileno(), 10), "the expiry wakes the host"
        assert time.monotonic() - start >= 0.04
        assert e.counts("inbox") == pe.Counts(viewers=0, users=1, connections=1)
        [diff] = e.poll_diff()
        assert diff["topic"] == "inbox"
        if fmt == "counts":
            assert diff["payload"]["leaves"]["users"] == {"count": 1}
        else:
            [meta] = diff["payload"]["leaves"]["alice"]["metas"]
            assert meta["device"] == "phone"
        assert e.stats().presences == 1
        assert e.stats().expired == 1
        assert e.touch(1) == 0


def test_one_touch_renews_every_topic_of_the_connection() -> None:
    with pe.Engine() as e:
        e.track("a", 7, "carol", ttl=60)
        e.track("b", 7, "carol", ttl=120.5)
        e.track("c", 7, "carol")
        assert e.touch(7) == 2
        assert e.touch(8) == 0, "no TTL presence: not an error"
        e.untrack("a", 7)
        assert e.touch(7) == 1
        assert e.untrack_conn(7) == 2
        assert e.touch(7) == 0
        assert e.stats().expired == 0, "renewals and untracks are no expiries"


def test_a_touched_presence_outlives_its_first_deadline() -> None:
    with pe.Engine() as e:
        e.track("inbox", 3, ttl=1)
        e.poll_diff()
        for _ in range(3):
            time.sleep(0.1)
            assert e.touch(3) == 1
        assert e.counts("inbox").viewers == 1
        assert readable_within(e.fileno(), 10)
        assert e.counts("inbox").viewers == 0


def test_an_untracked_ttl_presence_does_not_expire_later() -> None:
    with pe.Engine() as e:
        e.track("a", 1, ttl=0.03)
        e.untrack("a", 1)
        e.track("a", 1)  # the same pair again, without a ttl
        e.poll_diff()
        assert not readable_within(e.fileno(), 0.2)
        assert e.counts("a").viewers == 1


@pytest.mark.parametrize("ttl", [0, 0.0004, -1, math.nan, math.inf, 2_592_000.001, 1e300])
def test_a_ttl_out_of_range_is_refused(ttl: float) -> None:
    with pe.Engine() as e:
        with pytest.raises(pe.InvalidInputError, match="ttl"):
            e.track("a", 1, ttl=ttl)
        assert e.stats().presences == 0


@pytest.mark.parametrize("ttl", [True, "30", b"30", [30]])
def test_a_ttl_that_is_not_a_number_is_a_type_error(ttl: object) -> None:
    with pe.Engine() as e:
        with pytest.raises(TypeError, match="ttl"):
            e.track("a", 1, ttl=ttl)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            e.track("a", 1, None, None, 30)  # type: ignore[misc]
        assert e.stats().presences == 0


def test_diffs_delivers_the_leave_without_a_timer_of_the_host() -> None:
    async def until_the_leave(e: pe.Engine) -> list[dict[str, object]]:
        seen = []
        async for batch in e.diffs(interval=0.01):
            seen.extend(batch)
            if any(d["payload"]["leaves"]["users"]["count"] for d in batch):  # type: ignore[index]
                break
        return seen

    async def main() -> list[dict[str, object]]:
        with pe.Engine() as e:
            e.track("inbox", 1, "dave", ttl=0.05)
            return await asyncio.wait_for(until_the_leave(e), 10)

    seen = asyncio.run(main())
    assert [d["payload"]["joins"]["users"]["count"] for d in seen] == [1, 0]  # type: ignore[index]


def test_in_a_cluster_the_leave_reaches_the_other_node() -> None:
    a = pe.Engine(cluster={"node": "a", "secret": SECRET, "tick_ms": 20})
    b = pe.Engine(cluster={"node": "b", "secret": SECRET, "tick_ms": 20})

    def exchange() -> None:
        for src, dst in ((a, b), (b, a)):
            for m in src.cluster_tick():
                dst.cluster_ingest(m)

    with a, b:
        a.track("video:1", 1, "erin", ttl=0.1)
        b.track("video:1", 2, "frank")
        exchange()
        exchange()
        assert b.counts("video:1").users == 2
        a.poll_diff()
        b.poll_diff()
        assert b.touch(1) == 0, "b holds no deadline of a's presences"
        assert readable_within(a.fileno(), 10)
        exchange()
        assert b.counts("video:1") == pe.Counts(viewers=0, users=1, connections=1)
        [diff] = b.poll_diff()
        assert json.loads(json.dumps(diff["payload"]))["leaves"]["users"] == {"count": 1}
        assert (a.stats().expired, b.stats().expired) == (1, 0), "each node counts its own expiries"


def test_track_many_with_a_ttl_tracks_every_item_with_it() -> None:
    with pe.Engine(format="phoenix") as e:
        # Past the binding's chunk of 1024 items, with every item shape.
        e.track_many(
            [("a", c) for c in range(1000)]
            + [("a", c, f"u{c}") for c in range(1000, 1500)]
            + [["b", c, f"u{c}", {"n": c}] for c in range(1500, 2000)],
            ttl=60,
        )
        e.track_many([("c", c) for c in range(2000, 2010)], ttl=None)
        e.track_many([("c", c) for c in range(2010, 2020)])
        assert e.stats().presences == 2020
        assert sum(e.touch(c) for c in range(2020)) == 2000, "the ttl items, not the others"
        e.poll_diff()
        assert e.list("b")["u1500"]["metas"][0]["n"] == 1500


def test_track_many_items_with_a_ttl_expire_together() -> None:
    with pe.Engine() as e:
        e.track_many((("inbox", c, f"u{c}") for c in range(5)), ttl=0.05)
        e.track("inbox", 99)
        e.poll_diff()
        assert readable_within(e.fileno(), 10)
        assert e.counts("inbox") == pe.Counts(viewers=1, users=0, connections=1)
        assert e.stats().expired == 5


def test_track_many_with_a_bad_ttl_applies_nothing() -> None:
    with pe.Engine() as e:
        seen: list[int] = []

        def items() -> Iterator[tuple[str, int]]:
            for c in range(10):
                seen.append(c)
                yield ("t", c)

        with pytest.raises(TypeError, match="ttl"):
            e.track_many(items(), ttl="30")  # type: ignore[arg-type]
        assert seen == [], "a ttl of the wrong type is refused before any item is taken"
        with pytest.raises(pe.InvalidInputError, match="ttl") as info:
            e.track_many(items(), ttl=0)
        assert info.value.index == 0
        assert e.stats().presences == 0
