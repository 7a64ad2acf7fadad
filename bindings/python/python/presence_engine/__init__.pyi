"""Live presence for Python socket servers: how many (or who) are in each channel.

An `Engine` keeps the bookkeeping ("connection 17 joined video:42 as alice", "connection
17 left") and answers "what changed since I last asked?" with ready-to-send payloads:
anonymous counts by default, or Phoenix-compatible presence lists. The host keeps its
own transport; `Engine.diffs()` plugs the engine into an asyncio loop.

Quick start::

    engine = Engine()                        # or Engine(format="phoenix")
    engine.track("video:42", conn_id, key=user_id)   # key=None: anonymous viewer
    engine.counts("video:42")                # Counts(viewers=0, users=1, connections=1)
    async for batch in engine.diffs():       # waits on the wake-up fd, no busy polling
        for d in batch:                      # {"topic", "seq", "counts", "payload"}
            await broadcast(d["topic"], d["payload"])
    engine.untrack_conn(conn_id)             # on disconnect

Every error the engine raises is a `PresenceError`; see `_native.pyi` for the classes.
"""

from collections.abc import AsyncIterator
from typing import Any, Literal, overload

from typing_extensions import TypeAlias

from ._native import (
    CORE_VERSION as CORE_VERSION,
    AlreadyTrackedError as AlreadyTrackedError,
    ConfigError as ConfigError,
    Counts as Counts,
    EngineClosedError as EngineClosedError,
    InvalidInputError as InvalidInputError,
    LimitReachedError as LimitReachedError,
    NotTrackedError as NotTrackedError,
    PresenceError as PresenceError,
    ResourceError as ResourceError,
    Stats as Stats,
    __version__ as __version__,
)
from ._native import Engine as _NativeEngine

__all__ = [
    "CORE_VERSION",
    "AlreadyTrackedError",
    "ConfigError",
    "Counts",
    "Engine",
    "EngineClosedError",
    "InvalidInputError",
    "LimitReachedError",
    "Meta",
    "NotTrackedError",
    "PresenceError",
    "ResourceError",
    "Stats",
    "TrackItem",
    "UntrackItem",
    "__version__",
]

Meta: TypeAlias = dict[str, Any] | str | None
"""A presence's meta: a dict of JSON values (dict with str keys, list, tuple, str, int,
float, bool, None), written out as compact JSON in insertion order; or a str holding a
JSON object, passed as it is; or None for no meta. The engine refuses a meta that is not
a JSON object, uses the reserved keys "phx_ref" or "phx_ref_prev", nests objects and
arrays deeper than 127 levels (a dict: or holds a reference cycle), holds NaN or an infinity, or is longer than
max_meta_bytes as JSON text (InvalidInputError); a dict key that is not a str, or a value
of another type, is a TypeError."""

TrackItem: TypeAlias = (
    tuple[str, int]
    | tuple[str, int, str | None]
    | tuple[str, int, str | None, Meta]
    | list[Any]
)
"""An item of `Engine.track_many`: (topic, conn), (topic, conn, key) or
(topic, conn, key, meta), as a tuple or a list."""

UntrackItem: TypeAlias = tuple[str, int] | list[Any]
"""An item of `Engine.untrack_many`: (topic, conn), as a tuple or a list."""

class Engine(_NativeEngine):
    """A presence engine; see the base class (`presence_engine._native.Engine`) for the
    settings and every method. This class adds the asyncio helper `diffs()`."""

    @overload
    def diffs(
        self, *, raw: Literal[False] = False, interval: float = 0.0
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Yields every non-empty poll, for as long as the engine is open::

            async for batch in engine.diffs():
                for d in batch:
                    await broadcast(d["topic"], d["payload"])

        Each batch is what `poll_diff()` returns (a non-empty list of envelopes), or with
        `raw=True` what `poll_diff_json()` returns (a JSON array other than "[]"). Between
        polls it waits for the engine's wake-up descriptor with `loop.add_reader`, so an idle
        engine costs nothing: no busy polling, no timer.

        `interval` (seconds, >= 0) rate-limits: after a batch, the next poll happens no
        sooner than `interval` seconds later, so that churn coalesces into fewer, larger
        diffs (e.g. 0.05 for at most 20 broadcasts a second per topic). With 0, each change
        is polled as soon as the loop gets to it.

        Must run inside an asyncio event loop. Run one consumer per engine: two would split
        the batches between them (and any other `poll_diff()` call takes changes away from
        this one). Closing the engine, from any thread, ends the iteration; a batch that was
        not yet polled is then lost. Breaking out of the loop, or cancelling the task,
        unregisters the reader.

        Raises, when called: EngineClosedError if the engine is closed already, TypeError
        or ValueError for a bad `interval`. On the first iteration: RuntimeError outside
        a running event loop.
        """
    @overload
    def diffs(self, *, raw: Literal[True], interval: float = 0.0) -> AsyncIterator[str]: ...
    @overload
    def diffs(
        self, *, raw: bool, interval: float = 0.0
    ) -> AsyncIterator[list[dict[str, Any]] | str]: ...
