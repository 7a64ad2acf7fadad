"""The leave grace (`leave_grace_ms`) and the occupancy of a poll's topics, through the
package: a reload within the window sends nothing in either format, a leave without a
rejoin comes out once its window ends (with `fileno()` readable then), and every poll
form says which topics became occupied or vacated."""

from __future__ import annotations

import asyncio
import select
import time

import pytest

import presence_engine as pe

# A window no run of these tests outlasts, for the reloads.
LONG = 600_000


def test_the_grace_is_a_setting_with_its_bounds() -> None:
    with pe.Engine() as e:
        assert e.config["leave_grace_ms"] == 0
    with pe.Engine(leave_grace_ms=5000) as e:
        assert e.config["leave_grace_ms"] == 5000
    for bad in (-1, 3_600_001):
        with pytest.raises(pe.ConfigError, match="leave_grace_ms"):
            pe.Engine(leave_grace_ms=bad)


@pytest.mark.parametrize("fmt", ["counts", "phoenix"])
def test_a_reload_within_the_window_sends_nothing(fmt: str) -> None:
    with pe.Engine(format=fmt, leave_grace_ms=LONG) as e:  # type: ignore[arg-type]
        e.track("room", 1, "alice", {"device": "phone"})
        e.track("room", 2)
        [entry] = e.poll_diff()
        assert entry["occupancy"] == "occupied"
        state = e.state("room")
        e.untrack_conn(1)
        e.untrack("room", 2)
        assert e.counts("room") == pe.Counts(viewers=1, users=1, connections=2)
        e.track("room", 3, "alice", {"device": "phone"})
        e.track("room", 4)  # a reload makes a new anonymous connection
        assert e.poll_diff() == []
        assert len(e.poll("event")) == 0
        assert e.state("room") == state  # phoenix: the same refs, the same metas
        assert e.stats().presences == 2


def test_a_phoenix_rejoin_with_another_meta_is_an_update_not_a_leave() -> None:
    with pe.Engine(format="phoenix", leave_grace_ms=LONG) as e:
        e.track("room", 1, "alice", {"device": "phone"})
        e.poll_diff()
        e.untrack("room", 1)
        e.track("room", 2, "alice", {"device": "laptop"})
        [entry] = e.poll_diff()
        assert "occupancy" not in entry
        [joined] = entry["payload"]["joins"]["alice"]["metas"]
        [left] = entry["payload"]["leaves"]["alice"]["metas"]
        assert joined["device"] == "laptop"
        assert joined["phx_ref_prev"] == left["phx_ref"]


def wait_readable(fd: int, timeout: float) -> bool:
    readable, _, _ = select.select([fd], [], [], timeout)
    return bool(readable)


def test_a_leave_without_a_rejoin_comes_out_when_its_window_ends() -> None:
    with pe.Engine(leave_grace_ms=100) as e:
        fd = e.fileno()
        e.track("room", 1, "alice")
        e.poll_diff()
        assert not wait_readable(fd, 0)
        left = time.monotonic()
        e.untrack_conn(1)
        assert e.counts("room").users == 1
        assert wait_readable(fd, 10), "fileno() turns readable when the leave is due"
        assert time.monotonic() - left >= 0.09
        assert e.pending_topics() == 1
        [d] = e.poll()
        assert d.occupancy == d["occupancy"] == "vacated"
        assert d.counts == pe.Counts()
        assert d.payload["leaves"]["users"] == {"count": 1}
        assert d.to_dict()["occupancy"] == "vacated"
        assert not wait_readable(fd, 0)


def test_diffs_delivers_the_due_leave() -> None:
    async def first_batch(e: pe.Engine) -> pe.Batch:
        async for batch in e.diffs(interval=0.01):
            return batch
        raise AssertionError("diffs() ended")

    with pe.Engine(leave_grace_ms=100) as e:
        e.track("room", 1)
        e.poll_diff()
        e.untrack_conn(1)
        batch = asyncio.run(asyncio.wait_for(first_batch(e), timeout=30))
        assert [(d.topic, d.occupancy) for d in batch] == [("room", "vacated")]


def test_occupancy_in_each_poll_form_and_absent_when_unchanged() -> None:
    with pe.Engine() as e:
        e.track("a", 1)
        [d] = e.poll()
        assert d.occupancy == "occupied"
        e.track("a", 2, "bob")
        [d] = e.poll()
        assert d.occupancy is None
        with pytest.raises(KeyError):
            d["occupancy"]
        assert "occupancy" not in d.to_dict()
        e.untrack_conn(1)
        e.untrack_conn(2)
        assert '"occupancy":"vacated"' in e.poll_diff_json()
