"""The asyncio helper, `Engine.diffs()`, in real event loops."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from typing import Any

import pytest

import presence_engine as pe


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class CountingEngine(pe.Engine):
    """Counts the polls diffs() makes."""

    polls = 0

    def poll(self, envelope: pe.EnvelopeName | None = None, *, join_ref: str | None = None) -> pe.Batch:
        type(self).polls += 1
        return super().poll(envelope, join_ref=join_ref)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout=30))


def test_yields_each_change_and_ends_on_close() -> None:
    async def main() -> list[Any]:
        engine = pe.Engine()
        batches: list[Any] = []

        async def consume() -> None:
            async for batch in engine.diffs():
                batches.append(batch)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.02)
        engine.track("room", 1, "alice")
        await asyncio.sleep(0.02)
        engine.track("room", 2)
        engine.track("lobby", 3)
        await asyncio.sleep(0.02)
        engine.close()
        await task  # ends by itself
        return batches

    batches = run(main())
    assert len(batches) == 2
    assert [d["topic"] for d in batches[0]] == ["room"]
    assert batches[0][0]["counts"] == {"viewers": 0, "users": 1, "connections": 1}
    assert sorted(d["topic"] for d in batches[1]) == ["lobby", "room"]
    assert all(batch for batch in batches)  # never an empty batch


def test_no_busy_polling_while_idle() -> None:
    async def main() -> tuple[int, int, int]:
        CountingEngine.polls = 0
        engine = CountingEngine()
        got = []

        async def consume() -> None:
            async for batch in engine.diffs():
                got.append(batch)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        idle_start = CountingEngine.polls
        await asyncio.sleep(0.3)  # idle: the reader waits, nothing polls
        idle_end = CountingEngine.polls
        engine.track("t", 1)
        for _ in range(50):
            if got:
                break
            await asyncio.sleep(0.01)
        engine.close()
        await task
        return idle_start, idle_end, len(got)

    idle_start, idle_end, n = run(main())
    assert idle_start == idle_end == 1  # the first poll, then only waiting
    assert n == 1


def test_raw_yields_json_text() -> None:
    async def main() -> list[str]:
        engine = pe.Engine(format="phoenix")
        out: list[str] = []
        engine.track("t", 1, "k", {"a": 1})
        async for text in engine.diffs(raw=True):
            out.append(text)
            if len(out) == 2:
                break
            engine.untrack("t", 1)
        engine.close()
        return out

    first, second = run(main())
    assert isinstance(first, str) and first != "[]"
    [d] = json.loads(first)
    assert d["payload"]["joins"]["k"]["metas"][0]["a"] == 1
    [d2] = json.loads(second)
    assert d2["seq"] == 2 and d2["payload"]["leaves"]


def test_interval_coalesces_changes() -> None:
    async def main() -> tuple[list[Any], list[float]]:
        engine = pe.Engine()
        loop = asyncio.get_running_loop()
        batches: list[Any] = []
        times: list[float] = []

        async def consume() -> None:
            async for batch in engine.diffs(interval=0.2):
                batches.append(batch)
                times.append(loop.time())

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.01)
        engine.track("t", 0)
        while not batches:
            await asyncio.sleep(0.005)
        # Ten joins in two bursts, both within the interval: one more batch. (The loop runs
        # between the bursts; without the interval it would poll the first one alone.)
        for conn in range(1, 6):
            engine.track("t", conn)
        await asyncio.sleep(0.05)
        for conn in range(6, 11):
            engine.track("t", conn)
        while len(batches) < 2:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)
        engine.close()
        await task
        return batches, times

    batches, times = run(main())
    assert len(batches) == 2
    assert times[1] - times[0] >= 0.19
    [d] = batches[1]
    assert d["counts"]["connections"] == 11
    assert d["payload"]["joins"]["viewers"]["count"] == 10


def test_close_from_another_thread_ends_the_iteration() -> None:
    async def main() -> bool:
        engine = pe.Engine()
        closer = threading.Timer(0.1, engine.close)
        closer.start()
        async for _ in engine.diffs():
            pass  # nothing changes: only close() can end this
        closer.join()
        return engine.closed

    assert run(main()) is True


def test_break_and_cancel_release_the_descriptor() -> None:
    async def main() -> None:
        engine = pe.Engine()
        before = open_fds()
        engine.track("t", 1)
        agen = engine.diffs()
        async for _ in agen:
            break
        await agen.aclose()  # what the loop's asyncgen hooks do for a dropped generator
        assert open_fds() == before

        async def consume() -> None:
            async for _ in engine.diffs():
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        assert open_fds() == before + 1  # our dup of the wake-up descriptor
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert open_fds() == before
        # The engine still works and wakes a new consumer.
        engine.track("t", 2)
        async for batch in engine.diffs():
            assert batch[0]["counts"]["connections"] == 2
            break
        engine.close()

    run(main())


def test_two_engines_in_one_loop() -> None:
    async def main() -> dict[str, int]:
        engines = {"a": pe.Engine(), "b": pe.Engine(format="phoenix")}
        seen = {"a": 0, "b": 0}

        async def consume(name: str) -> None:
            async for batch in engines[name].diffs():
                seen[name] += sum(d["counts"]["connections"] for d in batch)

        tasks = [asyncio.create_task(consume(n)) for n in engines]
        await asyncio.sleep(0.01)
        for i in range(5):
            engines["a"].track("t", i)
            engines["b"].track("t", i, f"u{i}")
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        for e in engines.values():
            e.close()
        await asyncio.gather(*tasks)
        return seen

    seen = run(main())
    assert seen["a"] == seen["b"] == 1 + 2 + 3 + 4 + 5


def test_changes_from_other_threads_wake_the_loop() -> None:
    async def main() -> int:
        engine = pe.Engine()
        done = asyncio.Event()
        received = 0

        def produce() -> None:
            for conn in range(200):
                engine.track(f"t{conn % 4}", conn)

        async def consume() -> None:
            nonlocal received
            async for batch in engine.diffs():
                for d in batch:
                    diff = d["payload"]
                    received += diff["joins"]["viewers"]["count"] - diff["leaves"]["viewers"]["count"]
                if received == 200:
                    done.set()

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.01)
        producer = threading.Thread(target=produce)
        producer.start()
        await asyncio.wait_for(done.wait(), 10)
        producer.join()
        engine.close()
        await task
        return received

    assert run(main()) == 200


def test_argument_errors_are_raised_at_the_call() -> None:
    engine = pe.Engine()
    with pytest.raises(ValueError, match="interval must be >= 0"):
        engine.diffs(interval=-1)
    with pytest.raises(ValueError):
        engine.diffs(interval=float("nan"))
    with pytest.raises(TypeError, match="interval must be a number"):
        engine.diffs(interval="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        engine.diffs(interval=True)
    with pytest.raises(TypeError):
        engine.diffs(True)  # type: ignore[misc]  # keyword-only
    engine.close()
    with pytest.raises(pe.EngineClosedError):
        engine.diffs()


def test_outside_an_event_loop() -> None:
    engine = pe.Engine()
    agen = engine.diffs()
    step = agen.__anext__()
    with pytest.raises(RuntimeError, match="no running event loop"):
        step.send(None)
    engine.close()
