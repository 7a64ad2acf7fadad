"""Live presence for Python socket servers: how many (or who) are in each channel.

The engine is native (Rust); this package adds the asyncio helper `Engine.diffs`.
The API reference is in the type stubs (`__init__.pyi`, `_native.pyi`); see also
`help(presence_engine.Engine)`.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal, TypedDict, Union

# Type aliases for annotating code that calls the engine (documented in __init__.pyi).
Meta = Union[dict[str, Any], str, None]
TrackItem = Union[
    tuple[str, int],
    tuple[str, int, Union[str, None]],
    tuple[str, int, Union[str, None], Meta],
    list[Any],
]
UntrackItem = Union[tuple[str, int], list[Any]]
EnvelopeName = Union[Literal["event"], Literal["phoenix"]]


class _ClusterRequired(TypedDict):
    node: str
    secret: str


class ClusterOptions(_ClusterRequired, total=False):
    """The `cluster=` setting of `Engine` (documented in __init__.pyi)."""

    tick_ms: Union[int, None]
    down_after_ms: Union[int, None]
    stale_after_ms: Union[int, None]
    snapshot_interval_ms: Union[int, None]
    max_message_bytes: Union[int, None]
    max_nodes: Union[int, None]


from . import _native  # noqa: E402  (the stubs of _native import the aliases above)
from ._native import (  # noqa: E402
    CORE_VERSION,
    AlreadyTrackedError,
    ClusterStats,
    ConfigError,
    Counts,
    Diff,
    EngineClosedError,
    InvalidInputError,
    InvalidMetaError,
    LimitReachedError,
    NoClusterError,
    NotTrackedError,
    PresenceError,
    RejectedError,
    ResourceError,
    Stats,
    TooLongError,
    __version__,
)

__all__ = [
    "CORE_VERSION",
    "AlreadyTrackedError",
    "ClusterOptions",
    "ClusterStats",
    "ConfigError",
    "Counts",
    "Diff",
    "Engine",
    "EngineClosedError",
    "EnvelopeName",
    "InvalidInputError",
    "InvalidMetaError",
    "LimitReachedError",
    "Meta",
    "NoClusterError",
    "NotTrackedError",
    "PresenceError",
    "RejectedError",
    "ResourceError",
    "Stats",
    "TooLongError",
    "TrackItem",
    "UntrackItem",
    "__version__",
]

# Guards the lazily created waiter set of every engine (creation is rare: once per engine).
_registry_lock = threading.Lock()


class _Waiter:
    """One running `diffs()` iteration: the future it awaits, and whether to stop."""

    __slots__ = ("loop", "future", "closed")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] | None = None
        self.closed = False


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Engine(_native.Engine):
    __doc__ = _native.Engine.__doc__
    __slots__ = ("_waiters",)
    _waiters: set[_Waiter]  # the running diffs() iterations, created on first use

    def _waiter_set(self) -> set[_Waiter]:
        with _registry_lock:
            try:
                return self._waiters
            except AttributeError:
                waiters: set[_Waiter] = set()
                self._waiters = waiters
                return waiters

    def close(self) -> None:
        super().close()
        # Wake every diffs() iteration so that it sees the engine closed and ends. They may
        # run on other threads' loops, hence call_soon_threadsafe.
        # (A waiter that registers its future after this sees `closed` and does not wait.)
        with _registry_lock:
            waiting = []
            for waiter in getattr(self, "_waiters", ()):
                waiter.closed = True
                if waiter.future is not None:
                    waiting.append((waiter.loop, waiter.future))
        for loop, future in waiting:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:
                pass  # that loop is closed already: nothing waits on it any more

    def diffs(
        self,
        *,
        raw: bool = False,
        interval: float = 0.0,
        envelope: EnvelopeName | None = None,
        join_ref: str | None = None,
    ) -> AsyncIterator[Any]:
        """Yields each non-empty poll (`poll(envelope, join_ref=...)`, or
        `poll_diff_json()` with raw=True), waiting on the wake-up fd with
        `loop.add_reader` in between; after a batch, the next poll comes no sooner than
        `interval` seconds later. Ends when the engine is closed. The full reference is in
        the stub, presence_engine/__init__.pyi."""
        if isinstance(interval, bool) or not isinstance(interval, (int, float)):
            raise TypeError(f"interval must be a number, not {type(interval).__name__}")
        if not interval >= 0:  # also refuses NaN
            raise ValueError(f"interval must be >= 0, got {interval!r}")
        if raw and (envelope is not None or join_ref is not None):
            raise ValueError("raw=True yields poll_diff_json() text, which has no envelope")
        if envelope not in (None, "event", "phoenix"):
            raise ValueError(f'envelope must be "event", "phoenix" or None, got {envelope!r}')
        if join_ref is not None:
            if not isinstance(join_ref, str):
                raise TypeError(f"join_ref must be a str or None, not {type(join_ref).__name__}")
            if envelope != "phoenix":
                raise ValueError('join_ref is only for envelope="phoenix"')
        self.fileno()  # raises EngineClosedError now rather than at the first iteration
        if raw:
            return self._diffs(self.poll_diff_json, float(interval))
        return self._diffs(functools.partial(self.poll, envelope, join_ref=join_ref), float(interval))

    async def _diffs(self, poll: Callable[[], Any], interval: float) -> AsyncIterator[Any]:
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop)
        waiters = self._waiter_set()
        with _registry_lock:
            waiters.add(waiter)
        try:
            # Our own descriptor for the engine's wake-up file: if the engine is closed
            # while we wait, its number cannot be reused under our registration.
            fd = os.dup(self.fileno())
        except BaseException:
            with _registry_lock:
                waiters.discard(waiter)
            if self.closed:
                return
            raise
        try:
            last_batch = None
            while True:
                if interval and last_batch is not None:
                    delay = last_batch + interval - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                try:
                    batch = poll()
                except EngineClosedError:
                    return
                if batch and batch != "[]":
                    last_batch = loop.time()
                    yield batch
                    continue
                future: asyncio.Future[None] = loop.create_future()
                with _registry_lock:
                    if waiter.closed:
                        return
                    waiter.future = future
                loop.add_reader(fd, _resolve, future)
                try:
                    await future
                finally:
                    with _registry_lock:
                        waiter.future = None
                    loop.remove_reader(fd)
        finally:
            with _registry_lock:
                waiters.discard(waiter)
            os.close(fd)
