"""Strict input, the same rule as in C and Node: a meta holds only finite numbers and
valid Unicode strings, whether it comes as JSON text or as a dict; a refused call changes
nothing, memory included; a counts engine takes any max_key_bytes, a phoenix engine needs
its viewers_key to fit."""

from __future__ import annotations

import pytest

import presence_engine as pe


@pytest.mark.parametrize("text", ['{"f":1e400}', '{"f":-1e400}', '{"a":[{"f":1E309}]}', '{"n":1' + "0" * 400 + "}"])
def test_a_meta_number_no_double_holds_is_refused(engine: pe.Engine, text: str) -> None:
    with pytest.raises(pe.InvalidInputError) as info:
        engine.track("t", 1, None, text)
    assert info.value.kind == "invalid_meta"
    engine.track("t", 1, None, '{"f":1e308,"g":1e-400}')
    with pytest.raises(pe.InvalidInputError) as info:
        engine.update("t", 1, text)
    assert info.value.kind == "invalid_meta"


@pytest.mark.parametrize("text", ['{"s":"\\ud800"}', '{"\\udfff":1}', '{"a":["x\\ud83d"]}', '{"s":"\\ud800\\u0041"}'])
def test_an_escaped_lone_surrogate_is_refused_in_a_meta(engine: pe.Engine, text: str) -> None:
    with pytest.raises(pe.InvalidInputError) as info:
        engine.track("t", 1, None, text)
    assert info.value.kind == "invalid_meta"
    assert engine.stats().presences == 0


def test_a_lone_surrogate_is_refused_in_keys_and_metas_alike(engine: pe.Engine) -> None:
    for call in [
        lambda: engine.track("t", 1, "a\ud800"),
        lambda: engine.track("t", 1, None, '{"s":"\ud800"}'),
        lambda: engine.track("t", 1, None, {"s": "x\udc00"}),
    ]:
        with pytest.raises(pe.InvalidInputError) as info:
            call()
        assert info.value.kind == "invalid_utf8"
    # A surrogate pair is one character, escaped or not.
    engine.track("t", 1, None, '{"s":"\\ud83d\\ude00"}')
    engine.track("t", 2, None, {"s": "\U0001f600"})
    assert engine.counts("t").connections == 2


def test_a_phoenix_meta_with_an_escaped_pair_comes_back_as_the_character() -> None:
    e = pe.Engine(format="phoenix")
    e.track("t", 1, "alice", '{"s":"\\ud83d\\ude00"}')
    e.poll_diff()
    [meta] = e.list("t")["alice"]["metas"]
    assert meta["s"] == "\U0001f600"


def test_a_refused_track_changes_nothing_memory_included(fmt: str) -> None:
    e = pe.Engine(format=fmt, shards=1, max_presences=3)
    for conn in (1, 2, 3):
        e.track("t", conn, "a", {"n": 1})
    e.poll_diff()
    before = (e.stats(), e.list_json("t"), e.counts("t"))
    refused = [
        (lambda: e.track("t", 3, "b"), pe.AlreadyTrackedError),
        (lambda: e.track("t", 4, "b"), pe.LimitReachedError),
        (lambda: e.track("t", 5, "b", {"f": float("inf")}), pe.InvalidInputError),
        (lambda: e.track("t", 5, "b", '{"f":1e400}'), pe.InvalidInputError),
    ]
    for call, error in refused:
        with pytest.raises(error):
            call()
        assert (e.stats(), e.list_json("t"), e.counts("t")) == before
    assert e.poll_diff() == []


def test_viewers_key_longer_than_max_key_bytes_only_matters_in_phoenix_format() -> None:
    counts = pe.Engine(max_key_bytes=3)
    counts.track("t", 1, "abc")
    assert counts.counts("t").users == 1
    with pytest.raises(pe.ConfigError, match=r"viewers_key is 7 bytes, over max_key_bytes \(3\)"):
        pe.Engine(format="phoenix", max_key_bytes=3)
    pe.Engine(format="phoenix", viewers_key="v", max_key_bytes=3)
