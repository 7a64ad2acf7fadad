"""Every method of the API, in both formats, on valid input."""

from __future__ import annotations

import gc
import json
import os
import pickle
import select

import pytest

import presence_engine as pe
from presence_model import apply_diff, empty_state, sync_diff

COUNTS_ZERO = {"viewers": {"count": 0}, "users": {"count": 0}}


def readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


# ---- construction and properties ---------------------------------------------------------


def test_defaults_are_the_documented_ones() -> None:
    with pe.Engine() as e:
        assert e.config == {
            "format": "counts",
            "viewers_key": "viewers",
            "shards": 64,
            "max_topic_bytes": 256,
            "max_key_bytes": 256,
            "max_meta_bytes": 4096,
            "max_topics": 1_000_000,
            "max_presences": 10_000_000,
            "leave_grace_ms": 0,
            "cluster": None,
        }
        assert e.format == "counts"
        assert e.closed is False


def test_every_setting_is_applied() -> None:
    settings = {
        "format": "phoenix",
        "viewers_key": "anon",
        "shards": 4,
        "max_topic_bytes": 10,
        "max_key_bytes": 11,
        "max_meta_bytes": 12,
        "max_topics": 13,
        "max_presences": 14,
        "leave_grace_ms": 15,
    }
    with pe.Engine(**settings) as e:  # type: ignore[arg-type]
        assert e.config == {**settings, "cluster": None}
        assert e.format == "phoenix"
        e.track("t", 1)
        e.poll_diff()
        assert list(e.list("t")) == ["anon"]
        with pytest.raises(pe.InvalidInputError):
            e.track("t" * 11, 2)
        e.track("t" * 10, 2)
        with pytest.raises(pe.InvalidInputError):
            e.track("t", 3, "k" * 12)
        e.track("t", 3, "k" * 11)
        with pytest.raises(pe.InvalidInputError):
            e.track("t", 4, None, '{"a":"1234567"}')  # 15 bytes
        e.track("t", 4, None, '{"a":"1234"}')  # 12 bytes


def test_meta_limit_boundary_is_inclusive() -> None:
    with pe.Engine(format="phoenix", max_meta_bytes=12) as e:
        e.track("t", 1, None, '{"a":"1234"}')  # 12 bytes
        with pytest.raises(pe.InvalidInputError) as err:
            e.track("t", 2, None, '{"a":"12345"}')  # 13 bytes
        assert err.value.kind == "too_long"
        e.track("t", 3, None, {"a": "1234"})  # 12 bytes as compact JSON
        with pytest.raises(pe.InvalidInputError) as err:
            e.track("t", 4, None, {"a": "12345"})
        assert err.value.kind == "too_long"


def test_repr_and_closed() -> None:
    e = pe.Engine(format="phoenix")
    assert repr(e) == '<Engine format="phoenix" open>'
    e.close()
    assert e.closed is True
    assert repr(e) == '<Engine format="phoenix" closed>'
    e.close()  # idempotent
    assert e.config["format"] == "phoenix"  # settings stay readable
    assert e.format == "phoenix"


def test_version() -> None:
    from importlib.metadata import version

    assert pe.__version__ == version("presence_engine")
    assert pe.CORE_VERSION.count(".") == 2


def test_public_names() -> None:
    for name in pe.__all__:
        assert hasattr(pe, name), name
    assert pe.Engine.__module__ == "presence_engine"
    assert pe.Counts.__module__ == "presence_engine"
    assert pe.PresenceError.__module__ == "presence_engine"


# ---- track / untrack / counts -------------------------------------------------------------


def test_counts_viewers_users_connections(engine: pe.Engine) -> None:
    assert engine.counts("room") == pe.Counts(0, 0, 0)
    engine.track("room", 1, "alice")
    engine.track("room", 2, "alice")  # a second tab: still one user
    engine.track("room", 3, "bob")
    engine.track("room", 4)  # anonymous
    engine.track("room", 5, None)
    engine.track("other", 1, "alice")
    assert engine.counts("room") == pe.Counts(viewers=2, users=2, connections=5)
    assert engine.counts("other") == pe.Counts(0, 1, 1)
    engine.untrack("room", 1)
    assert engine.counts("room") == pe.Counts(2, 2, 4)
    engine.untrack("room", 2)
    assert engine.counts("room") == pe.Counts(2, 1, 3)
    engine.untrack("room", 4)
    assert engine.counts("room") == pe.Counts(1, 1, 2)


def test_counts_format_reports_viewer_and_user_changes_only(counts_engine: pe.Engine) -> None:
    e = counts_engine
    e.track("room", 1, "alice")
    [first] = e.poll_diff()
    e.track("room", 2, "alice")  # her second tab: the clients' view does not change
    assert e.counts("room") == pe.Counts(0, 1, 2)
    assert e.pending_topics() == 1
    assert e.poll_diff() == []
    assert first["counts"] == {"viewers": 0, "users": 1, "connections": 1}
    assert e.state("room") == ({"viewers": {"count": 0}, "users": {"count": 1}}, 1)
    e.track("room", 3)  # a viewer: reported, with the live connections
    [d] = e.poll_diff()
    assert d["seq"] == 2
    assert d["counts"] == {"viewers": 1, "users": 1, "connections": 3}
    e.untrack("room", 1)  # one tab closes: alice is still there
    assert e.poll_diff() == []
    e.untrack("room", 2)
    [d] = e.poll_diff()
    assert d["payload"]["leaves"]["users"] == {"count": 1}


def test_phoenix_format_reports_a_second_tab(phoenix_engine: pe.Engine) -> None:
    e = phoenix_engine
    e.track("room", 1, "alice")
    e.poll_diff()
    e.track("room", 2, "alice")  # a new meta in alice's list
    [d] = e.poll_diff()
    assert list(d["payload"]["joins"]) == ["alice"]
    assert len(e.list("room")["alice"]["metas"]) == 2


def test_untrack_conn_removes_every_topic(engine: pe.Engine) -> None:
    for t in ("a", "b", "c"):
        engine.track(t, 7, "u")
    engine.track("a", 8, "v")
    assert engine.untrack_conn(7) == 3
    assert engine.untrack_conn(7) == 0
    assert engine.untrack_conn(12345) == 0
    assert engine.counts("a") == pe.Counts(0, 1, 1)
    assert engine.counts("b") == pe.Counts(0, 0, 0)
    # The conn can join again afterwards.
    engine.track("b", 7, "u")
    assert engine.counts("b") == pe.Counts(0, 1, 1)


def test_conn_bounds(engine: pe.Engine) -> None:
    engine.track("t", 0)
    engine.track("t", 2**64 - 1, "k")
    assert engine.counts("t") == pe.Counts(1, 1, 2)
    engine.untrack("t", 2**64 - 1)
    assert engine.untrack_conn(0) == 1


def test_unicode_topics_and_keys(engine: pe.Engine) -> None:
    topic = "vidéo:42 🙂 \"quoted\" \\ \n\t\x01"
    key = "ålice </script>"
    engine.track(topic, 1, key)
    [entry] = engine.poll_diff()
    assert entry["topic"] == topic
    if engine.format == "phoenix":
        assert list(engine.list(topic)) == [key]
    assert engine.counts(topic) == pe.Counts(0, 1, 1)


def test_a_rejected_call_changes_nothing(engine: pe.Engine) -> None:
    engine.track("t", 1, "a")
    engine.poll_diff()
    before = (engine.counts("t"), engine.stats(), engine.list_json("t"))
    for bad in (
        lambda: engine.track("t", 1, "b"),
        lambda: engine.track("t", 2, "", None),
        lambda: engine.track("t", 2, "b", "[1]"),
        lambda: engine.untrack("t", 2),
        lambda: engine.update("t", 2, None),
        lambda: engine.update("t", 1, '{"phx_ref":1}'),
    ):
        with pytest.raises(pe.PresenceError):
            bad()
    assert (engine.counts("t"), engine.stats(), engine.list_json("t")) == before
    assert engine.poll_diff() == []


# ---- update --------------------------------------------------------------------------------


def test_update_in_phoenix_format(phoenix_engine: pe.Engine) -> None:
    e = phoenix_engine
    e.track("room", 1, "alice", {"status": "away"})
    [first] = e.poll_diff()
    old_ref = first["payload"]["joins"]["alice"]["metas"][0]["phx_ref"]
    e.update("room", 1, {"status": "online"})
    [entry] = e.poll_diff()
    payload = entry["payload"]
    assert payload["leaves"] == {"alice": {"metas": [{"phx_ref": old_ref, "status": "away"}]}}
    [joined] = payload["joins"]["alice"]["metas"]
    assert joined["phx_ref_prev"] == old_ref
    assert joined["status"] == "online"
    assert joined["phx_ref"] != old_ref
    assert entry["seq"] == 2
    assert e.list("room") == {"alice": {"metas": [joined]}}
    e.update("room", 1)  # None: an empty meta
    [entry] = e.poll_diff()
    [joined2] = entry["payload"]["joins"]["alice"]["metas"]
    assert set(joined2) == {"phx_ref", "phx_ref_prev"}


def test_update_before_a_poll_names_no_unseen_ref(phoenix_engine: pe.Engine) -> None:
    e = phoenix_engine
    e.track("room", 1, "alice", {"v": 1})
    e.update("room", 1, {"v": 2})  # clients never saw v=1: this is a plain join
    [entry] = e.poll_diff()
    assert entry["payload"]["leaves"] == {}
    [joined] = entry["payload"]["joins"]["alice"]["metas"]
    assert "phx_ref_prev" not in joined


def test_two_updates_between_polls_name_the_published_ref(phoenix_engine: pe.Engine) -> None:
    e = phoenix_engine
    e.track("room", 1, "alice", {"v": 1})
    [first] = e.poll_diff()
    published = first["payload"]["joins"]["alice"]["metas"][0]["phx_ref"]
    e.update("room", 1, {"v": 2})
    e.update("room", 1, {"v": 3})
    [entry] = e.poll_diff()
    assert entry["payload"]["leaves"] == {"alice": {"metas": [{"phx_ref": published, "v": 1}]}}
    [joined] = entry["payload"]["joins"]["alice"]["metas"]
    assert joined["v"] == 3
    assert joined["phx_ref_prev"] == published


def test_update_in_counts_format_only_checks(counts_engine: pe.Engine) -> None:
    e = counts_engine
    e.track("room", 1, "alice")
    e.poll_diff()
    e.update("room", 1, {"status": "online"})
    assert e.poll_diff() == []
    with pytest.raises(pe.NotTrackedError):
        e.update("room", 2, None)
    with pytest.raises(pe.InvalidInputError):
        e.update("room", 1, "not json")


# ---- list / state ---------------------------------------------------------------------------


def test_list_is_the_state_as_of_the_last_poll(engine: pe.Engine) -> None:
    fmt = engine.format
    assert engine.list("room") == empty_state(fmt)
    assert engine.state("room") == (empty_state(fmt), 0)
    engine.track("room", 1, "alice", {"n": 1})
    # Not polled yet: a joining client starts from the published (empty) state...
    assert engine.list("room") == empty_state(fmt)
    [entry] = engine.poll_diff()
    # ...and the diff brings it to the new one.
    state, seq = engine.state("room")
    assert seq == entry["seq"] == 1
    assert apply_diff(fmt, empty_state(fmt), entry["payload"]) == state
    if fmt == "counts":
        assert state == {"viewers": {"count": 0}, "users": {"count": 1}}
    else:
        assert list(state) == ["alice"]
        assert state["alice"]["metas"][0]["n"] == 1
    assert json.loads(engine.list_json("room")) == state
    text, seq2 = engine.state_json("room")
    assert json.loads(text) == state and seq2 == 1


def test_counts_state_has_exactly_the_seed_shape(counts_engine: pe.Engine) -> None:
    counts_engine.track("t", 1)
    counts_engine.poll_diff()
    assert counts_engine.list_json("t") == '{"viewers":{"count":1},"users":{"count":0}}'


def test_phoenix_viewers_key(phoenix_engine: pe.Engine) -> None:
    phoenix_engine.track("t", 1, None, {"a": 1})
    phoenix_engine.track("t", 2)
    phoenix_engine.poll_diff()
    state = phoenix_engine.list("t")
    assert list(state) == ["viewers"]
    assert sorted(m.get("a", 0) for m in state["viewers"]["metas"]) == [0, 1]


# ---- poll_diff ---------------------------------------------------------------------------------


def test_poll_diff_envelopes_counts(counts_engine: pe.Engine) -> None:
    e = counts_engine
    assert e.poll_diff() == []
    assert e.poll_diff_json() == "[]"
    e.track("a", 1, "x")
    e.track("a", 2)
    e.track("b", 3, "y")
    batch = sorted(e.poll_diff(), key=lambda d: d["topic"])
    assert batch == [
        {
            "topic": "a",
            "seq": 1,
            "counts": {"viewers": 1, "users": 1, "connections": 2},
            "occupancy": "occupied",
            "payload": {
                "joins": {"viewers": {"count": 1}, "users": {"count": 1}},
                "leaves": {"viewers": {"count": 0}, "users": {"count": 0}},
            },
        },
        {
            "topic": "b",
            "seq": 1,
            "counts": {"viewers": 0, "users": 1, "connections": 1},
            "occupancy": "occupied",
            "payload": {
                "joins": {"viewers": {"count": 0}, "users": {"count": 1}},
                "leaves": {"viewers": {"count": 0}, "users": {"count": 0}},
            },
        },
    ]
    e.untrack("a", 1)
    [entry] = e.poll_diff()
    assert entry["seq"] == 2
    assert entry["payload"]["leaves"] == {"viewers": {"count": 0}, "users": {"count": 1}}


def test_poll_diff_json_is_the_same_data(engine: pe.Engine) -> None:
    engine.track("a", 1, "x", {"k": [1, 2]})
    engine.track("b", 2)
    text = engine.poll_diff_json()
    assert isinstance(text, str)
    batch = json.loads(text)
    assert {d["topic"] for d in batch} == {"a", "b"}
    for d in batch:
        assert set(d) == {"topic", "seq", "counts", "occupancy", "payload"}
        assert d["occupancy"] == "occupied"
        state = engine.list(d["topic"])
        assert apply_diff(engine.format, empty_state(engine.format), d["payload"]) == state
    # The object form of the same changes, in a second engine, is the same data (topic
    # order follows each engine's own hashing, and phoenix refs differ between engines).
    with pe.Engine(format=engine.format) as other:  # type: ignore[arg-type]
        other.track("a", 1, "x", {"k": [1, 2]})
        other.track("b", 2)
        objs = other.poll_diff()

    def by_topic(ds: list) -> list:
        return sorted(ds, key=lambda d: d["topic"])

    if engine.format == "counts":
        assert by_topic(objs) == by_topic(batch)
    else:
        assert [(d["topic"], d["seq"], d["counts"]) for d in by_topic(objs)] == [
            (d["topic"], d["seq"], d["counts"]) for d in by_topic(batch)
        ]


def test_changes_coalesce_and_cancel(engine: pe.Engine) -> None:
    engine.track("t", 1, "a")
    engine.untrack("t", 1)
    assert engine.poll_diff() == []  # a join and a leave of the same presence cancel
    for conn in range(10):
        engine.track("t", conn, f"u{conn}")
    [entry] = engine.poll_diff()  # N joins: one diff
    assert entry["counts"] == {"viewers": 0, "users": 10, "connections": 10}


def test_phoenix_diff_applies_with_sync_diff(phoenix_engine: pe.Engine) -> None:
    e = phoenix_engine
    client: dict = {}
    for step in range(5):
        for conn in range(step * 3, step * 3 + 3):
            e.track("room", conn, f"user{conn % 4}", {"step": step})
        if step:
            e.untrack("room", (step - 1) * 3)
            e.update("room", (step - 1) * 3 + 1, {"updated": step})
        [entry] = e.poll_diff()
        client = sync_diff(client, entry["payload"])
        assert client == e.list("room")


def test_topic_dropped_after_last_leave(engine: pe.Engine) -> None:
    engine.track("t", 1)
    engine.poll_diff()
    assert engine.stats().topics == 1
    engine.untrack("t", 1)
    [entry] = engine.poll_diff()
    assert entry["counts"] == {"viewers": 0, "users": 0, "connections": 0}
    assert engine.stats().topics == 0
    assert engine.list("t") == empty_state(engine.format)
    assert engine.state("t")[1] == 0  # a new topic of the same name starts over


# ---- stats / fileno / close -------------------------------------------------------------------


def test_stats(engine: pe.Engine) -> None:
    s = engine.stats()
    assert (s.topics, s.presences, s.topics_pending) == (0, 0, 0)
    assert s.bytes > 0
    for conn in range(100):
        engine.track(f"t{conn % 10}", conn, f"u{conn}")
    s = engine.stats()
    assert (s.topics, s.presences, s.topics_pending, s.polls) == (10, 100, 10, 0)
    assert s.bytes > 100
    engine.poll_diff()
    assert engine.stats().topics_pending == 0
    assert engine.stats().polls == 1
    assert s.to_dict() == {
        "topics": 10,
        "presences": 100,
        "bytes": s.bytes,
        "topics_pending": 10,
        "polls": 0,
        "expired": 0,
    }
    assert repr(s) == f"Stats(topics=10, presences=100, bytes={s.bytes}, topics_pending=10, polls=0, expired=0)"
    assert s != engine.stats()  # topics_pending changed
    assert engine.stats() == engine.stats()
    with pytest.raises(AttributeError):
        s.topics = 3  # type: ignore[misc]


def test_fileno_wakes_up_on_change(engine: pe.Engine) -> None:
    fd = engine.fileno()
    assert isinstance(fd, int) and fd >= 0
    assert not readable(fd)
    engine.track("t", 1)
    assert readable(fd)
    engine.poll_diff()
    assert not readable(fd)
    engine.track("t", 2)
    engine.untrack("t", 2)  # cancels: the wake-up may be spurious, the poll is empty
    assert engine.poll_diff() == []
    assert not readable(fd)


def test_close_frees_the_descriptor() -> None:
    e = pe.Engine()
    fd = e.fileno()
    os.fstat(fd)
    e.close()
    with pytest.raises(OSError):
        os.fstat(fd)


def test_garbage_collection_frees_the_descriptor() -> None:
    e = pe.Engine()
    fd = e.fileno()
    del e
    gc.collect()
    with pytest.raises(OSError):
        os.fstat(fd)


def test_context_manager_closes_even_on_error() -> None:
    with pytest.raises(KeyError):
        with pe.Engine() as e:
            assert isinstance(e, pe.Engine)
            raise KeyError("boom")
    assert e.closed


def test_subclass_close_runs_through_exit() -> None:
    calls = []

    class Mine(pe.Engine):
        def close(self) -> None:
            calls.append("close")
            super().close()

    with Mine() as m:
        m.track("t", 1)
    assert calls == ["close"] and m.closed


# ---- Counts ---------------------------------------------------------------------------------------


def test_counts_value() -> None:
    c = pe.Counts(1, 2, 3)
    assert (c.viewers, c.users, c.connections) == (1, 2, 3)
    assert pe.Counts(viewers=1, users=2, connections=3) == c
    assert pe.Counts() == pe.Counts(0, 0, 0)
    assert c != pe.Counts(1, 2, 4)
    assert c != (1, 2, 3)  # only equal to Counts
    assert hash(c) == hash(pe.Counts(1, 2, 3))
    assert len({c, pe.Counts(1, 2, 3), pe.Counts()}) == 2
    assert repr(c) == "Counts(viewers=1, users=2, connections=3)"
    v, u, n = c
    assert (v, u, n) == (1, 2, 3)
    assert tuple(c) == (1, 2, 3) and list(c) == [1, 2, 3]
    assert len(c) == 3
    assert (c[0], c[1], c[2], c[-1], c[-3]) == (1, 2, 3, 3, 1)
    for bad in (3, -4, 100):
        with pytest.raises(IndexError):
            c[bad]
    assert c.to_dict() == {"viewers": 1, "users": 2, "connections": 3}
    assert pickle.loads(pickle.dumps(c)) == c
    match c:
        case pe.Counts(viewers, users, connections):
            assert (viewers, users, connections) == (1, 2, 3)
        case _:
            pytest.fail("Counts did not match its own pattern")
    with pytest.raises(AttributeError):
        c.viewers = 5  # type: ignore[misc]
    with pytest.raises(OverflowError):
        pe.Counts(-1)
    with pytest.raises(TypeError):
        pe.Counts("1")  # type: ignore[arg-type]
