"""The host's fast path: `Engine.poll()` and `Engine.state_message()` hand out what a host
sends (the topic, and the whole message in an envelope, rendered in Rust), and decode a
payload to Python objects only when asked. What they hand out is what the dict path
(`poll_diff()`, `state()`) gives, serialised compactly: byte for byte."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import presence_engine as pe


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def envelope(name: str, event: str, topic: str, seq: int, payload: Any, join_ref: str | None = None) -> Any:
    """The value each envelope is the compact JSON of."""
    if name == "event":
        return {"event": event, "topic": topic, "seq": seq, "payload": payload}
    return [join_ref, None, topic, event, payload]


# ---- byte identity with the dict path, both formats, both envelopes -------------------------

# Topics and keys with what JSON must escape (quotes, backslashes, every control character,
# \b and \f included) and non-ASCII text; metas of every JSON type, floats near the
# magnitudes where repr switches to an exponent, ints beyond 64 bits. NUL is left out: the
# engine refuses it in names (a C host could never pass such a name back).
names = st.text(min_size=1, max_size=12).filter(lambda s: s != "viewers" and "\x00" not in s)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e16, 1e-5, 1.5e-7, 123456789012345680.0, -0.0, 0.0001])
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
metas = st.dictionaries(
    st.text(max_size=6).filter(lambda k: k not in ("phx_ref", "phx_ref_prev")), json_values, max_size=4
)
ops = st.lists(st.tuples(names, st.one_of(st.none(), names), metas), min_size=1, max_size=12)


@pytest.mark.parametrize("env", ["event", "phoenix"])
@pytest.mark.parametrize("fmt", ["counts", "phoenix"])
@given(ops=ops)
def test_each_message_is_the_compact_json_of_the_dict_path(fmt: str, env: str, ops: list[Any]) -> None:
    with pe.Engine(format=fmt) as e:
        for conn, (topic, key, meta) in enumerate(ops):
            e.track(topic, conn, key, meta)
        e.update(ops[0][0], 0, ops[-1][2])
        diffs = e.poll(env)
        assert sorted(d.topic for d in diffs) == sorted({topic for topic, _, _ in ops})
        assert diffs.topics == tuple(d.topic for d in diffs)
        for d, message in zip(diffs, diffs.messages):
            as_dict = d.to_dict()  # the poll_diff() entry: json.loads of the same payload
            assert d.payload_json == dumps(as_dict["payload"])
            assert d.message == message == dumps(envelope(env, "presence_diff", d.topic, d.seq, as_dict["payload"]))
        for topic in {topic for topic, _, _ in ops}:
            payload, seq = e.state(topic)
            assert e.state_message(topic, env) == (dumps(envelope(env, "presence_state", topic, seq, payload)), seq)
            if env == "phoenix":
                message, _ = e.state_message(topic, env, join_ref="j\"1")
                assert message == dumps(envelope(env, "presence_state", topic, seq, payload, 'j"1'))
            assert e.state_message(topic, None) == e.state_json(topic)


def test_poll_gives_what_poll_diff_gives() -> None:
    """The same changes on two engines: poll() and poll_diff() report the same topics,
    seqs, counts and payloads (counts format: no random refs in the payloads)."""
    engines = pe.Engine(), pe.Engine()
    for e in engines:
        for conn in range(40):
            e.track(f"t{conn % 7}", conn, None if conn % 3 else f"u{conn % 5}")
    for e in engines:
        e.untrack("t1", 1)
        e.untrack_conn(2)
    fast = sorted((d.to_dict() for d in engines[0].poll("event")), key=lambda d: d["topic"])
    slow = sorted(engines[1].poll_diff(), key=lambda d: d["topic"])
    assert fast == slow and len(fast) == 7
    for e in engines:
        e.track("t3", 100, "new")
    [d] = engines[0].poll()
    [s] = engines[1].poll_diff()
    assert (d.topic, d.seq, d.counts.to_dict(), d.payload_json) == (
        s["topic"],
        s["seq"],
        s["counts"],
        dumps(s["payload"]),
    )
    for e in engines:
        e.close()


# ---- the Batch -----------------------------------------------------------------------------


def test_a_batch_is_a_sequence_of_diffs_with_topics_and_messages_as_tuples() -> None:
    with pe.Engine() as e:
        for conn in range(5):
            e.track(f"t{conn}", conn, None if conn % 2 else f"u{conn}")
        batch = e.poll("event")
        assert isinstance(batch, pe.Batch) and isinstance(batch, Sequence)
        assert len(batch) == 5 and bool(batch) and repr(batch) == "Batch(5 topics)"
        assert sorted(batch.topics) == [f"t{conn}" for conn in range(5)]
        assert batch.topics is batch.topics and batch.messages is batch.messages  # made once
        diffs = list(batch)
        assert [d.topic for d in diffs] == list(batch.topics)
        assert [d.message for d in diffs] == list(batch.messages)
        assert [batch[i].to_dict() for i in range(5)] == [d.to_dict() for d in diffs]
        assert batch[-1].topic == batch.topics[4] and batch[-5].topic == batch.topics[0]
        assert [d.topic for d in batch[1:4]] == list(batch.topics[1:4])
        assert [d.topic for d in batch[::-2]] == list(batch.topics[::-2])
        assert batch[5:] == [] and batch[0] is not batch[0]  # a new Diff on each read
        for bad in (5, -6):
            with pytest.raises(IndexError):
                batch[bad]
        with pytest.raises(TypeError, match="str"):
            batch["topic"]  # type: ignore[call-overload]
        with pytest.raises(AttributeError):
            batch.topics = ()  # type: ignore[misc]
        empty = e.poll("event")
        assert len(empty) == 0 and not empty and empty.topics == () and empty.messages == ()
        assert repr(empty) == "Batch(0 topics)" and list(empty) == [] and empty[:] == []
        assert list(empty.pairs()) == []


def test_the_pairs_of_a_batch_are_its_topics_and_messages() -> None:
    with pe.Engine(format="phoenix") as e:
        for conn in range(40):
            e.track(f"t:é{conn}", conn, f"u{conn % 3}", {"n": conn})
        for i, envelope in enumerate(("event", "phoenix", None)):
            batch = e.poll(envelope)
            pairs = batch.pairs()
            assert iter(pairs) is pairs
            got = list(pairs)
            assert got == list(zip(batch.topics, batch.messages)) and len(got) == len(batch)
            assert next(pairs, None) is None  # exhausted
            assert list(batch.pairs()) == got  # each call starts again
            e.track(f"x{i}", 100 + i, "k")


def test_without_an_envelope_the_batch_messages_are_the_payloads() -> None:
    with pe.Engine(format="phoenix") as e:
        e.track("t", 1, "k", {"a": 1})
        e.track("u", 2)
        batch = e.poll()
        assert batch.messages == tuple(d.payload_json for d in batch)
        assert all(d.message is None for d in batch)


def test_a_batch_outlives_its_engine() -> None:
    e = pe.Engine()
    e.track("t", 1, "k")
    batch = e.poll("phoenix")
    e.close()
    del e
    assert batch.topics == ("t",)
    [message] = batch.messages
    assert json.loads(message)[:4] == [None, None, "t", "presence_diff"]
    assert batch[0].payload["joins"]["users"]["count"] == 1


# ---- the Diff object -----------------------------------------------------------------------


def test_a_diff_reads_like_a_poll_diff_entry_and_decodes_its_payload_once() -> None:
    with pe.Engine(format="phoenix") as e:
        e.track("room", 1, "alice", {"n": 1})
        [d] = e.poll("phoenix")
        assert isinstance(d, pe.Diff)
        assert d.topic == "room" and d.seq == 1
        assert d.counts == pe.Counts(viewers=0, users=1, connections=1)
        assert d["topic"] == "room" and d["seq"] == 1
        assert d["counts"] == {"viewers": 0, "users": 1, "connections": 1}
        assert d.payload is d.payload is d["payload"]  # decoded on the first read, kept
        assert d.payload["joins"]["alice"]["metas"][0]["n"] == 1
        assert d.occupancy == d["occupancy"] == "occupied"
        assert d.to_dict() == {
            "topic": "room",
            "seq": 1,
            "counts": d["counts"],
            "occupancy": "occupied",
            "payload": d.payload,
        }
        assert repr(d) == "Diff(topic='room', seq=1, counts=Counts(viewers=0, users=1, connections=1))"
        assert d.message == f'[null,null,"room","presence_diff",{d.payload_json}]'
        with pytest.raises(KeyError):
            d["message"]
        with pytest.raises(AttributeError):
            d.topic = "other"  # type: ignore[misc]


def test_without_an_envelope_there_is_no_message() -> None:
    with pe.Engine() as e:
        e.track("t", 1)
        [d] = e.poll()
        assert d.message is None
        assert json.loads(d.payload_json) == d.payload
        assert len(e.poll("event")) == 0  # drained: nothing changed since


def test_a_diff_outlives_its_engine() -> None:
    e = pe.Engine()
    e.track("t", 1, "k")
    diffs = e.poll("event")
    e.close()
    del e
    [d] = diffs
    assert d.topic == "t" and d.payload["joins"]["users"]["count"] == 1


def test_phoenix_join_ref_goes_into_every_frame() -> None:
    with pe.Engine() as e:
        e.track("t", 1)
        [d] = e.poll("phoenix", join_ref="5")
        assert d.message == f'["5",null,"t","presence_diff",{d.payload_json}]'
        message, seq = e.state_message("t", "phoenix", join_ref="5")
        assert message.startswith('["5",null,"t","presence_state",') and seq == 1


def test_bad_envelopes_are_refused_before_polling() -> None:
    with pe.Engine() as e:
        e.track("t", 1)
        with pytest.raises(ValueError, match="envelope"):
            e.poll("xml")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="join_ref"):
            e.poll("event", join_ref="1")
        with pytest.raises(ValueError, match="join_ref"):
            e.poll(join_ref="1")
        with pytest.raises(TypeError):
            e.poll(1)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="envelope"):
            e.state_message("t", "xml")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="join_ref"):
            e.state_message("t", "event", join_ref="1")
        with pytest.raises(pe.InvalidInputError):
            e.state_message("", "event")
        with pytest.raises(TypeError):
            e.state_message(1)  # type: ignore[arg-type]
        assert e.pending_topics() == 1  # nothing was taken
        assert [d.topic for d in e.poll("event")] == ["t"]
    with pytest.raises(pe.EngineClosedError):
        e.poll("event")
    with pytest.raises(pe.EngineClosedError):
        e.state_message("t")


# ---- diffs() uses the fast path ------------------------------------------------------------


def test_diffs_yields_diffs_with_messages_in_the_envelope_asked_for() -> None:
    async def main() -> list[pe.Batch]:
        engine = pe.Engine(format="phoenix")
        engine.track("t", 1, "alice", {"a": 1})
        got: list[pe.Batch] = []
        async for batch in engine.diffs(envelope="phoenix"):
            got.append(batch)
            if len(got) == 2:
                break
            engine.untrack("t", 1)
        engine.close()
        return got

    first, second = asyncio.run(asyncio.wait_for(main(), timeout=30))
    assert isinstance(first, pe.Batch) and first.messages == (first[0].message,)
    [d1], [d2] = first, second
    assert isinstance(d1, pe.Diff) and d1.message == f'[null,null,"t","presence_diff",{d1.payload_json}]'
    assert d1["payload"]["joins"]["alice"]["metas"][0]["a"] == 1
    assert d2.seq == 2 and d2.payload["leaves"]


def test_diffs_checks_its_envelope_when_called() -> None:
    with pe.Engine() as e:
        with pytest.raises(ValueError, match="envelope"):
            e.diffs(envelope="xml")  # type: ignore[call-overload]
        with pytest.raises(ValueError, match="join_ref"):
            e.diffs(envelope="event", join_ref="1")
        with pytest.raises(TypeError, match="join_ref"):
            e.diffs(envelope="phoenix", join_ref=1)  # type: ignore[call-overload]
        with pytest.raises(ValueError, match="raw"):
            e.diffs(raw=True, envelope="event")  # type: ignore[call-overload]
