"""Every exception, and bad input of every kind."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from collections import OrderedDict
from typing import Any, Callable

import pytest

import presence_engine as pe

# ---- the hierarchy ---------------------------------------------------------------------------


def test_hierarchy() -> None:
    for cls in (
        pe.AlreadyTrackedError,
        pe.NotTrackedError,
        pe.LimitReachedError,
        pe.InvalidInputError,
        pe.ConfigError,
        pe.EngineClosedError,
        pe.ResourceError,
    ):
        assert issubclass(cls, pe.PresenceError), cls
        assert cls.__module__ == "presence_engine"
        assert cls.__doc__
    assert issubclass(pe.PresenceError, Exception)
    assert issubclass(pe.InvalidInputError, ValueError)
    assert issubclass(pe.ConfigError, ValueError)
    assert issubclass(pe.ResourceError, OSError)
    assert not issubclass(pe.NotTrackedError, ValueError)
    assert not issubclass(pe.EngineClosedError, ValueError)


def test_errors_pickle() -> None:
    e = pe.Engine()
    e.track("t", 1)
    with pytest.raises(pe.AlreadyTrackedError) as info:
        e.track("t", 1)
    back = pickle.loads(pickle.dumps(info.value))
    assert type(back) is pe.AlreadyTrackedError
    assert str(back) == str(info.value)


# ---- engine errors ---------------------------------------------------------------------------


def test_already_tracked(engine: pe.Engine) -> None:
    engine.track("t", 1, "a")
    with pytest.raises(pe.AlreadyTrackedError) as info:
        engine.track("t", 1, "b")
    assert info.value.kind == "already_tracked"
    assert str(info.value) == 'connection 1 is already tracked in topic "t"'
    assert info.value.args == (str(info.value),)


def test_not_tracked(engine: pe.Engine) -> None:
    with pytest.raises(pe.NotTrackedError) as info:
        engine.untrack("t", 1)
    assert info.value.kind == "not_tracked"
    assert "connection 1 is not tracked" in str(info.value)
    engine.track("t", 1)
    with pytest.raises(pe.NotTrackedError):
        engine.untrack("other", 1)
    with pytest.raises(pe.NotTrackedError):
        engine.update("t", 2, None)


def test_limit_on_topics() -> None:
    with pe.Engine(max_topics=2) as e:
        e.track("a", 1)
        e.track("b", 1)
        with pytest.raises(pe.LimitReachedError) as info:
            e.track("c", 1)
        assert info.value.kind == "limit_reached"
        assert "2 topics" in str(info.value)
        e.track("a", 2)  # an existing topic still takes presences
        assert e.stats().topics == 2


def test_limit_on_presences() -> None:
    with pe.Engine(max_presences=3) as e:
        e.track_many([("a", 1), ("a", 2), ("b", 3)])
        with pytest.raises(pe.LimitReachedError) as info:
            e.track("a", 4)
        assert "3 presences" in str(info.value)
        e.untrack("a", 1)
        e.track("a", 4)  # room again
        assert e.stats().presences == 3


def test_resource_error_when_out_of_descriptors() -> None:
    # In a child process: lower the descriptor limit, use every descriptor up, then ask
    # for an engine, whose wake-up descriptor cannot be created.
    code = textwrap.dedent(
        """
        import os, resource, presence_engine as pe
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        held = []
        try:
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        try:
            pe.Engine()
        except pe.ResourceError as e:
            assert isinstance(e, OSError) and isinstance(e, pe.PresenceError)
            assert e.kind == "io", e.kind
            print("ResourceError:", e)
        else:
            raise SystemExit("no error")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ResourceError:")


# ---- invalid input (InvalidInputError) ---------------------------------------------------------


@pytest.mark.parametrize(
    "call, kind",
    [
        (lambda e: e.track("", 1), "invalid_argument"),
        (lambda e: e.track("t", 1, ""), "invalid_argument"),
        (lambda e: e.untrack("", 1), "invalid_argument"),
        (lambda e: e.counts(""), "invalid_argument"),
        (lambda e: e.list(""), "invalid_argument"),
        (lambda e: e.track("a\0b", 1), "invalid_argument"),
        (lambda e: e.track("t", 1, "al\0ice"), "invalid_argument"),
        (lambda e: e.track("t" * 257, 1), "too_long"),
        (lambda e: e.track("t", 1, "k" * 257), "too_long"),
        (lambda e: e.counts("t" * 257), "too_long"),
        (lambda e: e.track("t", 1, None, '{"a":"' + "x" * 5000 + '"}'), "too_long"),
        (lambda e: e.track("t", 1, None, {"a": "x" * 5000}), "too_long"),
        (lambda e: e.track("t", 1, None, {"a": ["x"] * 2000}), "too_long"),
        (lambda e: e.track("t", 1, None, "[]"), "invalid_meta"),
        (lambda e: e.track("t", 1, None, "1"), "invalid_meta"),
        (lambda e: e.track("t", 1, None, '"x"'), "invalid_meta"),
        (lambda e: e.track("t", 1, None, "null"), "invalid_meta"),
        (lambda e: e.track("t", 1, None, ""), "invalid_meta"),
        (lambda e: e.track("t", 1, None, "{"), "invalid_meta"),
        (lambda e: e.track("t", 1, None, "{}{}"), "invalid_meta"),
        (lambda e: e.track("t", 1, None, "{'a': 1}"), "invalid_meta"),
        (lambda e: e.track("t", 1, None, '{"phx_ref": "x"}'), "invalid_meta"),
        (lambda e: e.track("t", 1, None, {"phx_ref": "x"}), "invalid_meta"),
        (lambda e: e.track("t", 1, None, {"a": 1, "phx_ref_prev": "x"}), "invalid_meta"),
        (lambda e: e.track("t", 1, None, {"a": float("nan")}), "invalid_meta"),
        (lambda e: e.track("t", 1, None, {"a": [float("inf")]}), "invalid_meta"),
        (lambda e: e.track("t", 1, None, {"a": -float("inf")}), "invalid_meta"),
        (lambda e: e.track("\ud800", 1), "invalid_utf8"),
        (lambda e: e.track("t", 1, "a\udfff"), "invalid_utf8"),
        (lambda e: e.track("t", 1, None, '{"a": "\ud800"}'), "invalid_utf8"),
        (lambda e: e.track("t", 1, None, {"\ud800": 1}), "invalid_utf8"),
        (lambda e: e.track("t", 1, None, {"a": "\ud800"}), "invalid_utf8"),
        (lambda e: e.untrack("\ud800", 1), "invalid_utf8"),
        (lambda e: e.counts("\ud800"), "invalid_utf8"),
    ],
)
def test_invalid_input(engine: pe.Engine, call: Callable[[pe.Engine], Any], kind: str) -> None:
    with pytest.raises(pe.InvalidInputError) as info:
        call(engine)
    assert info.value.kind == kind
    assert isinstance(info.value, ValueError)
    assert str(info.value)
    assert engine.stats().presences == 0


def test_key_equal_to_viewers_key(phoenix_engine: pe.Engine, counts_engine: pe.Engine) -> None:
    with pytest.raises(pe.InvalidInputError) as info:
        phoenix_engine.track("t", 1, "viewers")
    assert info.value.kind == "invalid_argument"
    counts_engine.track("t", 1, "viewers")  # counts format lists no keys: no clash


def test_meta_nesting_limit(phoenix_engine: pe.Engine) -> None:
    # The core's bound: 64 levels of objects and arrays (clients parse metas with
    # recursive parsers). A dict is checked while it is written out, which also stops a
    # reference cycle; a str by the core.
    def nested(depth: int) -> dict:
        meta: dict = {}
        for _ in range(depth - 1):
            meta = {"a": meta}
        return meta

    phoenix_engine.track("t", 1, None, nested(64))
    with pytest.raises(pe.InvalidInputError) as info:
        phoenix_engine.track("t", 2, None, nested(65))
    assert info.value.kind == "invalid_meta"
    with pytest.raises(pe.InvalidInputError, match="64"):
        phoenix_engine.track("t", 2, None, {"a": [[[[]]]], "b": nested(64)})
    text64 = '{"a":' * 63 + "{}" + "}" * 63
    phoenix_engine.track("t", 3, None, text64)
    with pytest.raises(pe.InvalidInputError) as info:
        phoenix_engine.track("t", 4, None, '{"a":' + text64 + "}")
    assert info.value.kind == "invalid_meta"
    with pytest.raises(pe.InvalidInputError):
        phoenix_engine.track("t", 4, None, '{"a":' + "[" * 64 + "]" * 64 + "}")
    # Brackets inside strings do not count.
    phoenix_engine.track("t", 4, None, '{"a":"' + "[{\\\"" * 300 + '"}')
    phoenix_engine.poll_diff()
    assert len(phoenix_engine.list("t")["viewers"]["metas"]) == 3
    lists = {"a": []}
    inner = lists["a"]
    for _ in range(200):
        inner.append([])
        inner = inner[0]
    with pytest.raises(pe.InvalidInputError):
        phoenix_engine.track("t", 5, None, lists)


def test_meta_reference_cycle(engine: pe.Engine) -> None:
    meta: dict = {}
    meta["self"] = meta
    with pytest.raises(pe.InvalidInputError, match="cycle"):
        engine.track("t", 1, None, meta)
    items: list = []
    items.append(items)
    with pytest.raises(pe.InvalidInputError):
        engine.track("t", 1, None, {"l": items})


# ---- Python-level errors: TypeError / ValueError ----------------------------------------------


class Weird:
    pass


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda e: e.track(None, 1), "topic must be a str, not NoneType"),
        (lambda e: e.track(1, 1), "topic must be a str, not int"),
        (lambda e: e.track(b"t", 1), "topic must be a str, not bytes"),
        (lambda e: e.track("t", "1"), "conn must be an int, not str"),
        (lambda e: e.track("t", 1.0), "conn must be an int, not float"),
        (lambda e: e.track("t", None), "conn must be an int, not NoneType"),
        (lambda e: e.track("t", True), "conn must be an int, not bool"),
        (lambda e: e.track("t", 1, 5), "key must be a str, not int"),
        (lambda e: e.track("t", 1, b"k"), "key must be a str, not bytes"),
        (lambda e: e.track("t", 1, None, [1]), "meta must be a dict"),
        (lambda e: e.track("t", 1, None, 1), "meta must be a dict"),
        (lambda e: e.track("t", 1, None, b"{}"), "meta must be a dict"),
        (lambda e: e.track("t", 1, None, {1: "a"}), "meta keys must be str, not int"),
        (lambda e: e.track("t", 1, None, {None: "a"}), "meta keys must be str"),
        (lambda e: e.track("t", 1, None, {"a": {1, 2}}), "not set"),
        (lambda e: e.track("t", 1, None, {"a": b"x"}), "not bytes"),
        (lambda e: e.track("t", 1, None, {"a": Weird()}), "not Weird"),
        (lambda e: e.track("t", 1, None, {"a": [1, {"b": object()}]}), "not object"),
        (lambda e: e.update("t", 1, [1]), "meta must be a dict"),
        (lambda e: e.untrack(1, 1), "topic must be a str"),
        (lambda e: e.untrack("t", "x"), "conn must be an int"),
        (lambda e: e.untrack_conn("x"), "conn must be an int"),
        (lambda e: e.untrack_conn(None), "conn must be an int"),
        (lambda e: e.counts(None), "topic must be a str"),
        (lambda e: e.list(3), "topic must be a str"),
        (lambda e: e.list_json(3), "topic must be a str"),
        (lambda e: e.state(3), "topic must be a str"),
        (lambda e: e.state_json(3), "topic must be a str"),
        (lambda e: e.track_many(5), "not iterable"),
        (lambda e: e.untrack_many(None), "not iterable"),
        (lambda e: e.untrack_conns(1), "not iterable"),
        (lambda e: e.track(), "missing"),
        (lambda e: e.track("t"), "missing"),
        (lambda e: e.track("t", 1, None, None, None), "takes"),
        (lambda e: e.track("t", 1, nope=3), "unexpected keyword"),
        (lambda e: e.counts(), "missing"),
    ],
)
def test_type_errors(engine: pe.Engine, call: Callable[[pe.Engine], Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        call(engine)
    assert engine.stats().presences == 0


def test_keyword_arguments(engine: pe.Engine) -> None:
    engine.track(topic="t", conn=1, key="k", meta={"a": 1})
    engine.update(topic="t", conn=1, meta='{"b": 2}')
    assert engine.counts(topic="t") == pe.Counts(0, 1, 1)
    engine.untrack(topic="t", conn=1)
    assert engine.untrack_conn(conn=1) == 0


@pytest.mark.parametrize("conn", [-1, -(2**63), 2**64, 2**64 + 5, 10**100, -(10**100)])
def test_conn_out_of_range_is_a_value_error(engine: pe.Engine, conn: int) -> None:
    for call in (
        lambda: engine.track("t", conn),
        lambda: engine.untrack("t", conn),
        lambda: engine.untrack_conn(conn),
        lambda: engine.update("t", conn),
    ):
        with pytest.raises(ValueError, match="conn must be an int from 0 to 2\\*\\*64-1") as info:
            call()
        assert not isinstance(info.value, pe.PresenceError)
    if -(2**63) <= conn < 0:
        with pytest.raises(ValueError, match=f"got {conn}"):
            engine.track("t", conn)


def test_int_like_conns_are_accepted(engine: pe.Engine) -> None:
    class Index:
        def __index__(self) -> int:
            return 42

    class MyInt(int):
        pass

    engine.track("t", Index())  # type: ignore[arg-type]
    engine.track("t", MyInt(7))
    assert engine.untrack_conn(42) == 1
    assert engine.untrack_conn(7) == 1


def test_huge_strings_are_refused_quickly(engine: pe.Engine) -> None:
    big = "x" * 10_000_000
    with pytest.raises(pe.InvalidInputError, match="limit is 256"):
        engine.track(big, 1)
    with pytest.raises(pe.InvalidInputError, match="limit is 256"):
        engine.track("t", 1, big)
    with pytest.raises(pe.InvalidInputError, match="limit is 4096"):
        engine.track("t", 1, None, '{"a":"' + big + '"}')
    with pytest.raises(pe.InvalidInputError, match="limit is 4096"):
        engine.track("t", 1, None, {"a": big})
    with pytest.raises(pe.InvalidInputError, match="limit is 4096"):
        engine.track("t", 1, None, {str(i): i for i in range(1_000_000)})
    assert engine.stats().presences == 0


# ---- meta dicts: what they become ------------------------------------------------------------------


def test_dict_meta_round_trips(phoenix_engine: pe.Engine) -> None:
    meta = OrderedDict(
        [
            ("z", 1),
            ("name", 'Ålice "the" \\ </script>\n\t\x00\x1f🙂'),
            ("floats", [0.1, 1.0, -2.5e-7, 1e300, 123456789.125, 1e16]),
            ("ints", [0, -1, 2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(10**40)]),
            ("flags", (True, False, None)),
            ("nested", {"a": {"b": [{"c": []}, {}]}}),
        ]
    )
    phoenix_engine.track("t", 1, "k", meta)
    [entry] = phoenix_engine.poll_diff()
    [listed] = entry["payload"]["joins"]["k"]["metas"]
    listed.pop("phx_ref")
    expected = dict(meta)
    expected["flags"] = [True, False, None]
    assert listed == expected
    assert list(listed) == list(meta)  # insertion order kept
    for a, b in zip(listed["floats"], meta["floats"]):
        assert type(a) is float and a == b
    assert all(type(i) is int for i in listed["ints"])


def test_meta_values_of_subclasses(phoenix_engine: pe.Engine) -> None:
    import enum

    class Color(enum.IntEnum):
        RED = 1

    class Name(str):
        def __str__(self) -> str:
            return "not this"

    phoenix_engine.track("t", 1, None, {"c": Color.RED, "n": Name("real"), "big": Color.RED * 10**30})
    phoenix_engine.poll_diff()
    [meta] = phoenix_engine.list("t")["viewers"]["metas"]
    assert (meta["c"], meta["n"], meta["big"]) == (1, "real", 10**30)


def test_str_meta_is_kept_as_written(phoenix_engine: pe.Engine) -> None:
    phoenix_engine.track("t", 1, None, '  {"b": 1,   "a": [1, 2]}  ')
    phoenix_engine.poll_diff()
    text = phoenix_engine.list_json("t")
    assert '"b": 1,   "a": [1, 2]' in text


# ---- closed engine --------------------------------------------------------------------------------


CALLS_AFTER_CLOSE: list[tuple[str, Callable[[pe.Engine], Any]]] = [
    ("track", lambda e: e.track("t", 1)),
    ("untrack", lambda e: e.untrack("t", 1)),
    ("untrack_conn", lambda e: e.untrack_conn(1)),
    ("touch", lambda e: e.touch(1)),
    ("update", lambda e: e.update("t", 1, None)),
    ("track_many", lambda e: e.track_many([("t", 1)])),
    ("untrack_many", lambda e: e.untrack_many([("t", 1)])),
    ("untrack_conns", lambda e: e.untrack_conns([1])),
    ("counts", lambda e: e.counts("t")),
    ("counts_many", lambda e: e.counts_many(["t", "u"])),
    ("list", lambda e: e.list("t")),
    ("list_json", lambda e: e.list_json("t")),
    ("state", lambda e: e.state("t")),
    ("state_json", lambda e: e.state_json("t")),
    ("poll_diff", lambda e: e.poll_diff()),
    ("poll_diff_json", lambda e: e.poll_diff_json()),
    ("poll", lambda e: e.poll("event")),
    ("state_message", lambda e: e.state_message("t")),
    ("stats", lambda e: e.stats()),
    ("metrics", lambda e: e.metrics()),
    ("fileno", lambda e: e.fileno()),
    ("diffs", lambda e: e.diffs()),
    ("pending_topics", lambda e: e.pending_topics()),
    ("cluster_tick", lambda e: e.cluster_tick()),
    ("cluster_ingest", lambda e: e.cluster_ingest(b"x")),
    ("cluster_leave", lambda e: e.cluster_leave()),
    ("cluster_resync", lambda e: e.cluster_resync()),
    ("cluster_stats", lambda e: e.cluster_stats()),
    ("start_redis", lambda e: e.start_redis("redis://127.0.0.1:1/", "c")),
    ("stop_redis", lambda e: e.stop_redis()),
]


@pytest.mark.parametrize("name, call", CALLS_AFTER_CLOSE, ids=[n for n, _ in CALLS_AFTER_CLOSE])
def test_every_call_after_close_raises(fmt: str, name: str, call: Callable[[pe.Engine], Any]) -> None:
    e = pe.Engine(format=fmt)  # type: ignore[arg-type]
    e.track("t", 1)
    e.close()
    with pytest.raises(pe.EngineClosedError, match="the engine is closed") as info:
        call(e)
    assert info.value.kind == "closed"


def test_every_public_method_is_covered_after_close() -> None:
    methods = {
        n
        for n in dir(pe.Engine)
        if not n.startswith("_") and callable(getattr(pe.Engine, n)) and n != "close"
    }
    assert methods == {n for n, _ in CALLS_AFTER_CLOSE}


def test_argument_errors_win_over_closed() -> None:
    # Arguments are checked first: a wrong type is a TypeError even on a closed engine.
    e = pe.Engine()
    e.close()
    with pytest.raises(TypeError):
        e.track(1, 1)  # type: ignore[arg-type]


# ---- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"format": "xml"}, "format: unknown variant `xml`, expected `counts` or `phoenix`"),
        ({"format": ""}, "format: unknown variant"),
        ({"shards": 0}, "shards: invalid value: integer `0`, expected a positive integer"),
        ({"shards": -1}, "shards: invalid value: integer `-1`, expected a positive integer"),
        ({"shards": 5000}, "shards must be 1..=4096"),
        ({"viewers_key": ""}, "viewers_key must be non-empty"),
        ({"format": "phoenix", "viewers_key": "v" * 300}, "viewers_key is 300 bytes, over max_key_bytes"),
        ({"format": "phoenix", "max_key_bytes": 3}, "viewers_key"),  # "viewers" no longer fits
        ({"max_topic_bytes": 0}, "max_topic_bytes: .*expected a positive integer"),
        ({"max_key_bytes": -5}, "max_key_bytes: .*expected a positive integer"),
        ({"max_meta_bytes": 0}, "max_meta_bytes"),
        ({"max_topics": 0}, "max_topics"),
        ({"max_presences": 0}, "max_presences"),
        ({"max_presences": 2**70}, "max_presences: .*expected a positive integer"),
    ],
)
def test_config_errors(settings: dict, match: str) -> None:
    with pytest.raises(pe.ConfigError, match=match) as info:
        pe.Engine(**settings)
    assert info.value.kind == "invalid_config"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "settings",
    [
        {"format": None},
        {"format": 1},
        {"viewers_key": None},
        {"shards": "4"},
        {"shards": 4.0},
        {"max_topics": None},
        {"bogus": 1},
    ],
)
def test_config_type_errors(settings: dict) -> None:
    with pytest.raises(TypeError):
        pe.Engine(**settings)


def test_config_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        pe.Engine("phoenix")  # type: ignore[misc]
