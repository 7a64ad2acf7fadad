"""Helpers for the tests: how clients apply diffs, and the expected state of a topic."""

from __future__ import annotations

import copy
from typing import Any

REF_KEYS = ("phx_ref", "phx_ref_prev")


def sync_diff(state: dict[str, Any], diff: dict[str, Any]) -> dict[str, Any]:
    """phoenix.js `Presence.syncDiff` (without callbacks): joins first, replacing metas by
    phx_ref and keeping the current ones in front; then leaves, removing by phx_ref and
    dropping a key left without metas."""
    state = copy.deepcopy(state)
    for key, new_presence in diff["joins"].items():
        current = state.get(key)
        state[key] = copy.deepcopy(new_presence)
        if current:
            joined = [m["phx_ref"] for m in state[key]["metas"]]
            kept = [m for m in current["metas"] if m["phx_ref"] not in joined]
            state[key]["metas"] = kept + state[key]["metas"]
    for key, left_presence in diff["leaves"].items():
        current = state.get(key)
        if not current:
            continue
        refs = [m["phx_ref"] for m in left_presence["metas"]]
        current["metas"] = [m for m in current["metas"] if m["phx_ref"] not in refs]
        if not current["metas"]:
            del state[key]
    return state


def apply_counts_diff(state: dict[str, Any], diff: dict[str, Any]) -> dict[str, Any]:
    """The seed's reducer: previous state + joins - leaves, per group. Also checks the
    shape: both groups in joins and in leaves, and nothing else."""
    assert set(diff) == {"joins", "leaves"}, diff
    out = {}
    for group in ("viewers", "users"):
        assert set(diff["joins"]) == {"viewers", "users"}, diff
        assert set(diff["leaves"]) == {"viewers", "users"}, diff
        joins = diff["joins"][group]["count"]
        leaves = diff["leaves"][group]["count"]
        assert joins >= 0 and leaves >= 0
        assert joins == 0 or leaves == 0, f"diff not netted: {diff}"
        out[group] = {"count": state[group]["count"] + joins - leaves}
    return out


def apply_diff(fmt: str, state: dict[str, Any], diff: dict[str, Any]) -> dict[str, Any]:
    return sync_diff(state, diff) if fmt == "phoenix" else apply_counts_diff(state, diff)


def empty_state(fmt: str) -> dict[str, Any]:
    return {} if fmt == "phoenix" else {"viewers": {"count": 0}, "users": {"count": 0}}


def counts_of(presences: dict[int, tuple[str | None, Any]]) -> tuple[int, int, int]:
    """(viewers, users, connections) of {conn: (key, meta)}."""
    keys = [k for k, _ in presences.values()]
    return (keys.count(None), len({k for k in keys if k is not None}), len(keys))


def strip_refs(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k not in REF_KEYS}


def phoenix_view(state: dict[str, Any]) -> dict[str, list[str]]:
    """A phoenix state without refs, comparable with `expected_phoenix_view`: per key, the
    sorted JSON texts of its metas."""
    import json

    return {
        key: sorted(json.dumps(strip_refs(m), sort_keys=True) for m in p["metas"])
        for key, p in state.items()
    }


def expected_phoenix_view(
    presences: dict[int, tuple[str | None, Any]], viewers_key: str = "viewers"
) -> dict[str, list[str]]:
    import json

    out: dict[str, list[str]] = {}
    for key, meta in presences.values():
        out.setdefault(viewers_key if key is None else key, []).append(
            json.dumps(meta or {}, sort_keys=True)
        )
    return {k: sorted(v) for k, v in out.items()}
