"""bench/python_bench.py: its --check really compares the trackers, and its output format."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "python_bench.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("python_bench", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["python_bench"] = module
    spec.loader.exec_module(module)
    return module


def test_dict_tracker_semantics(bench: ModuleType) -> None:
    t = bench.PyDictTracker()
    t.track("a", 1, "u")
    t.track("a", 2, "u")
    t.track("a", 3)
    t.track("b", 1, "u")
    assert t.counts("a") == (1, 1, 3)
    with pytest.raises(KeyError):
        t.track("a", 1, "v")
    assert t.untrack_conn(1) == 2
    assert t.counts("a") == (1, 1, 2) and t.counts("b") == (0, 0, 0)
    t.untrack("a", 2)
    assert t.counts("a") == (1, 0, 1)
    with pytest.raises(KeyError):
        t.untrack("a", 2)
    t.untrack("a", 3)
    assert not t.topics and not t.conn_topics


def test_check_passes(bench: ModuleType) -> None:
    assert bench.check(600, 7) is True


def test_check_catches_a_wrong_tracker(bench: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    real = bench.PyDictTracker.counts

    def off_by_one(self: object, topic: str) -> tuple[int, int, int]:
        v, u, c = real(self, topic)
        return (v, u + (topic == "t3"), c)

    monkeypatch.setattr(bench.PyDictTracker, "counts", off_by_one)
    assert bench.check(600, 7) is False


def test_output_lines(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--n", "400", "--topics", "10", "--runs", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_impl = {(d["bench"], d["impl"]): d for d in lines}
    assert set(by_impl) == {
        ("track_untrack", "python-engine-single"),
        ("track_untrack", "python-engine-bulk"),
        ("track_untrack", "python-dict"),
        ("memory", "python-engine"),
        ("memory", "python-dict"),
    }
    for (kind, impl), d in by_impl.items():
        assert d["unit"] == ("ops/s" if kind == "track_untrack" else "bytes/presence")
        assert len(d["runs"]) == 2 and all(v > 0 for v in d["runs"])
        assert d["n"] == 400 and d["topics"] == 10
        if kind == "track_untrack" and impl != "python-dict":
            assert d["baseline"] == "python-dict"
