"""The engine against a plain Python model, driven by hypothesis, in both formats.

After every step the live counts of every topic equal the model's. At every poll, each
client state (what a client that followed every poll holds) plus the polled diff equals
the engine's new state, which equals the model; in phoenix format the diff is applied the
way phoenix.js `Presence.syncDiff` does.
"""

from __future__ import annotations

import json
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import presence_engine as pe
from presence_model import (
    apply_diff,
    counts_of,
    empty_state,
    expected_phoenix_view,
    phoenix_view,
)

TOPICS = ["room", "video:42", "ünï", "t"]
CONNS = st.integers(min_value=0, max_value=7) | st.just(2**64 - 1)
KEYS = st.sampled_from([None, None, "alice", "bob", "carol", "viewers"])
JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
META_DICTS = st.dictionaries(
    st.text(max_size=6).filter(lambda k: k not in ("phx_ref", "phx_ref_prev")), JSON_VALUES, max_size=3
)
# A meta as the engine gets it: None, a dict, or the same dict as JSON text.
METAS = st.none() | META_DICTS | META_DICTS.map(lambda d: json.dumps(d))


def as_dict(meta: Any) -> dict[str, Any]:
    if meta is None:
        return {}
    if isinstance(meta, str):
        return json.loads(meta)
    return json.loads(json.dumps(meta))  # what JSON makes of it (tuples -> lists, ...)


class PresenceMachine(RuleBasedStateMachine):
    FORMAT = "counts"

    def __init__(self) -> None:
        super().__init__()
        self.engine = pe.Engine(format=self.FORMAT, max_presences=40)  # type: ignore[arg-type]
        # topic -> conn -> (key, meta dict)
        self.model: dict[str, dict[int, tuple[str | None, dict[str, Any]]]] = {t: {} for t in TOPICS}
        # What a client that applied every poll holds, and the last seq it saw.
        self.client: dict[str, dict[str, Any]] = {t: empty_state(self.FORMAT) for t in TOPICS}
        self.seq: dict[str, int] = {t: 0 for t in TOPICS}
        self.seen_refs: set[str] = set()

    def teardown(self) -> None:
        self.engine.close()

    # ---- what the model expects of one track ------------------------------------------------

    def expected_track_error(self, topic: str, conn: int, key: str | None) -> type | None:
        # The engine checks its arguments before its tables.
        if key == "viewers" and self.FORMAT == "phoenix":
            return pe.InvalidInputError
        if conn in self.model[topic]:
            return pe.AlreadyTrackedError
        if sum(len(p) for p in self.model.values()) >= 40:
            return pe.LimitReachedError
        return None

    # ---- rules -------------------------------------------------------------------------------

    @rule(topic=st.sampled_from(TOPICS), conn=CONNS, key=KEYS, meta=METAS)
    def track(self, topic: str, conn: int, key: str | None, meta: Any) -> None:
        error = self.expected_track_error(topic, conn, key)
        if error is None:
            self.engine.track(topic, conn, key, meta)
            self.model[topic][conn] = (key, as_dict(meta))
        else:
            with pytest.raises(error):
                self.engine.track(topic, conn, key, meta)

    @rule(topic=st.sampled_from(TOPICS), conn=CONNS)
    def untrack(self, topic: str, conn: int) -> None:
        if conn in self.model[topic]:
            self.engine.untrack(topic, conn)
            del self.model[topic][conn]
        else:
            with pytest.raises(pe.NotTrackedError):
                self.engine.untrack(topic, conn)

    @rule(conn=CONNS)
    def untrack_conn(self, conn: int) -> None:
        expected = sum(conn in p for p in self.model.values())
        assert self.engine.untrack_conn(conn) == expected
        for p in self.model.values():
            p.pop(conn, None)

    @rule(topic=st.sampled_from(TOPICS), conn=CONNS, meta=METAS)
    def update(self, topic: str, conn: int, meta: Any) -> None:
        if conn in self.model[topic]:
            self.engine.update(topic, conn, meta)
            key, _ = self.model[topic][conn]
            self.model[topic][conn] = (key, as_dict(meta))
        else:
            with pytest.raises(pe.NotTrackedError):
                self.engine.update(topic, conn, meta)

    @rule(
        items=st.lists(
            st.tuples(st.sampled_from(TOPICS), CONNS, KEYS, METAS), max_size=8
        )
    )
    def track_many(self, items: list[tuple[str, int, str | None, Any]]) -> None:
        failing = None
        for i, (topic, conn, key, meta) in enumerate(items):
            error = self.expected_track_error(topic, conn, key)
            if error is not None:
                failing = (i, error)
                break
            self.model[topic][conn] = (key, as_dict(meta))
        if failing is None:
            self.engine.track_many(items)
        else:
            with pytest.raises(failing[1]) as info:
                self.engine.track_many(items)
            assert info.value.index == failing[0]

    @rule(items=st.lists(st.tuples(st.sampled_from(TOPICS), CONNS), max_size=8))
    def untrack_many(self, items: list[tuple[str, int]]) -> None:
        failing = None
        for i, (topic, conn) in enumerate(items):
            if conn not in self.model[topic]:
                failing = i
                break
            del self.model[topic][conn]
        if failing is None:
            self.engine.untrack_many(items)
        else:
            with pytest.raises(pe.NotTrackedError) as info:
                self.engine.untrack_many(items)
            assert info.value.index == failing

    @rule(conns=st.lists(CONNS, max_size=4))
    def untrack_conns(self, conns: list[int]) -> None:
        expected = 0
        for conn in conns:
            for p in self.model.values():
                if conn in p:
                    del p[conn]
                    expected += 1
        assert self.engine.untrack_conns(conns) == expected

    @rule(raw=st.booleans())
    def poll(self, raw: bool) -> None:
        batch = json.loads(self.engine.poll_diff_json()) if raw else self.engine.poll_diff()
        topics = [d["topic"] for d in batch]
        assert len(topics) == len(set(topics)), f"a topic twice in one poll: {topics}"
        for d in batch:
            topic = d["topic"]
            assert set(d) - {"occupancy"} == {"topic", "seq", "counts", "payload"}
            assert d["seq"] == self.seq[topic] + 1, "seq must grow by one per entry"
            self.seq[topic] = d["seq"]
            v, u, c = counts_of(self.model[topic])
            assert d["counts"] == {"viewers": v, "users": u, "connections": c}
            before = self.client[topic]
            if self.FORMAT == "phoenix":
                self.check_phoenix_payload(before, d["payload"])
            self.client[topic] = apply_diff(self.FORMAT, before, d["payload"])
            # Only a change clients can see is reported: in counts format a change of
            # connections alone (a second tab) is not, and a topic back where it was is not.
            assert self.client[topic] != before, f"{topic}: a diff that changes nothing: {d}"
            # Occupancy is the passage of the clients' state between empty and not empty.
            empty = empty_state(self.FORMAT)
            was, now = before != empty, self.client[topic] != empty
            want = "occupied" if now and not was else "vacated" if was and not now else None
            assert d.get("occupancy") == want, f"{topic}: occupancy {d}"
        # Every topic, reported or not: the client's state is the engine's, is the model's.
        for topic in TOPICS:
            state, seq = self.engine.state(topic)
            assert seq == self.seq[topic] or (seq == 0 and not self.model[topic])
            if seq == 0:
                self.seq[topic] = 0  # dropped when it emptied: a new topic starts over
            assert self.client[topic] == state, topic
            assert json.loads(self.engine.list_json(topic)) == state
            if self.FORMAT == "counts":
                v, u, _ = counts_of(self.model[topic])
                assert state == {"viewers": {"count": v}, "users": {"count": u}}
            else:
                assert phoenix_view(state) == expected_phoenix_view(self.model[topic])
        assert self.engine.stats().topics_pending == 0

    def check_phoenix_payload(self, before: dict[str, Any], payload: dict[str, Any]) -> None:
        assert set(payload) == {"joins", "leaves"}
        left = {m["phx_ref"] for p in payload["leaves"].values() for m in p["metas"]}
        seen = {m["phx_ref"] for p in before.values() for m in p["metas"]}
        # Whatever leaves is something the clients saw.
        assert left <= seen, f"leaves of refs the clients never saw: {left - seen}"
        for p in payload["joins"].values():
            for m in p["metas"]:
                # A ref is never reused, and a ref that joins does not leave in the same diff.
                assert m["phx_ref"] not in self.seen_refs
                assert m["phx_ref"] not in left
                self.seen_refs.add(m["phx_ref"])
                # phx_ref_prev names the meta the clients saw, which leaves in this diff (an
                # update of a presence they never saw is a plain join).
                if "phx_ref_prev" in m:
                    assert m["phx_ref_prev"] in left, (m, left)

    # ---- invariants ------------------------------------------------------------------------------

    @invariant()
    def counts_are_live(self) -> None:
        for topic in TOPICS:
            assert tuple(self.engine.counts(topic)) == counts_of(self.model[topic]), topic
        assert self.engine.stats().presences == sum(len(p) for p in self.model.values())


class PhoenixMachine(PresenceMachine):
    FORMAT = "phoenix"


TestCountsFormat = PresenceMachine.TestCase
TestCountsFormat.settings = settings(TestCountsFormat.settings, stateful_step_count=40)
TestPhoenixFormat = PhoenixMachine.TestCase
TestPhoenixFormat.settings = settings(TestPhoenixFormat.settings, stateful_step_count=40)
