"""The native (Rust) part of presence_engine. Import from `presence_engine` instead:
it re-exports everything here, and its `Engine` adds the asyncio helper `diffs()`."""

import builtins
from collections.abc import Iterable, Iterator
from typing import Any, Final, Literal, final

from typing_extensions import Self, disjoint_base

from . import Meta, TrackItem, UntrackItem

__all__ = [
    "CORE_VERSION",
    "AlreadyTrackedError",
    "ConfigError",
    "Counts",
    "Engine",
    "EngineClosedError",
    "InvalidInputError",
    "LimitReachedError",
    "NotTrackedError",
    "PresenceError",
    "ResourceError",
    "Stats",
    "__version__",
]

__version__: Final[str]
"""The version of this package."""

CORE_VERSION: Final[str]
"""The version of the Rust engine compiled into this package."""

class PresenceError(Exception):
    """Base class of every error the engine raises.

    `str(err)` is the engine's message. `err.kind` names the engine's error kind:
    "already_tracked", "not_tracked", "limit_reached", "invalid_meta", "too_long",
    "invalid_argument", "invalid_utf8", "invalid_config", "io" or "closed". An error raised
    by a bulk call for one of its items also has `err.index`, the item's position."""

    kind: str
    index: int

class AlreadyTrackedError(PresenceError):
    """`track` of a (topic, conn) pair that is tracked already (kind "already_tracked")."""

class NotTrackedError(PresenceError):
    """`untrack` or `update` of a (topic, conn) pair that is not tracked (kind "not_tracked")."""

class LimitReachedError(PresenceError):
    """`track` that would pass max_topics or max_presences (kind "limit_reached")."""

class InvalidInputError(PresenceError, ValueError):
    """An argument the engine refuses (also a ValueError). Its kind says why:
    "invalid_meta" (not a JSON object, reserved key, NaN, too deep), "too_long" (a topic,
    key or meta over its byte limit), "invalid_argument" (an empty topic or key, or a key
    equal to viewers_key in phoenix format) or "invalid_utf8" (a str holding a lone
    surrogate, which has no UTF-8 form)."""

class ConfigError(PresenceError, ValueError):
    """An engine setting out of range (also a ValueError; kind "invalid_config")."""

class EngineClosedError(PresenceError):
    """A call on a closed engine (kind "closed"). Only `close()` may be called again."""

class ResourceError(PresenceError, OSError):
    """The operating system refused the engine's wake-up descriptor, for instance because
    the process is out of file descriptors (kind "io"; also an OSError)."""

@final
class Counts:
    """The three numbers of a topic. Immutable, hashable, comparable with other Counts,
    and unpackable like a tuple: `viewers, users, connections = engine.counts(topic)`.
    Also supports `match`: `case Counts(viewers, users, connections)`."""

    __match_args__: Final = ("viewers", "users", "connections")

    @property
    def viewers(self) -> int:
        """Anonymous presences: tracked without a key."""

    @property
    def users(self) -> int:
        """Distinct keys present: a user with three tabs counts once."""

    @property
    def connections(self) -> int:
        """All presences of the topic."""

    def __new__(cls, viewers: int = 0, users: int = 0, connections: int = 0) -> Self: ...
    def __len__(self) -> int:
        """Always 3."""

    def __getitem__(self, index: int, /) -> int:
        """`counts[0]` is viewers, `[1]` users, `[2]` connections (negative indexes work)."""

    def __iter__(self) -> Iterator[int]:
        """Iterates viewers, users, connections."""

    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[type[Counts], tuple[int, int, int]]: ...
    def to_dict(self) -> dict[str, int]:
        """`{"viewers": V, "users": U, "connections": C}`, the shape of a poll's "counts"."""

@final
class Stats:
    """Engine-wide figures for monitoring, from `Engine.stats()`. Immutable."""

    @property
    def topics(self) -> int:
        """Topics held. A topic is dropped at the first poll after its last presence left."""

    @property
    def presences(self) -> int:
        """Presences held."""

    @property
    def bytes(self) -> int:
        """Estimated heap bytes of the engine's tables and strings."""

    @property
    def topics_pending(self) -> int:
        """Topics changed since the last poll: how many entries the next poll may return."""

    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def to_dict(self) -> dict[str, int]:
        """`{"topics": ..., "presences": ..., "bytes": ..., "topics_pending": ...}`."""

@disjoint_base
class Engine:
    """A presence engine: who is present in which topic, and what changed since the last
    poll, rendered as ready-to-send payloads.

    Concepts: a *topic* is a channel name (non-empty str). A *conn* is an int from 0 to
    2**64-1 that the host chooses for one client connection. A *key* identifies a user
    (str), or is None for an anonymous viewer. A *presence* is one (topic, conn) pair with
    its key and an optional meta. A conn may be in many topics, once per topic.

    Formats, chosen at creation:

    - "counts" (default, private by construction: no key or meta ever leaves the engine):
      the state of a topic is `{"viewers": {"count": V}, "users": {"count": U}}` and a diff
      is `{"joins": {"viewers": {"count": a}, "users": {"count": b}}, "leaves": {...same}}`
      with previous state + joins - leaves = new state, per group.
    - "phoenix": Phoenix presence lists, `{key: {"metas": [{"phx_ref": ..., **meta}]}}`,
      anonymous presences listed under `viewers_key`; diffs are Phoenix `presence_diff`
      payloads (an update is a leave of the old meta plus a join of the new one with
      "phx_ref_prev"), which phoenix.js `Presence.syncDiff` applies.

    Changes coalesce between polls: a join and a leave of the same presence cancel, and a
    topic whose clients' view did not change is not reported.

    Threads: every method may be called from any thread at the same time; the engine is
    sharded internally. Calls whose cost grows with the data (polls, lists in phoenix
    format, stats, bulk calls, close) release the GIL while the engine works; the O(1)
    calls (track, untrack, counts, ...) keep it, as releasing would cost more than the call.

    Lifetime: `close()` frees the engine at once (or `with Engine() as engine:`); any later
    call raises EngineClosedError. An engine that is garbage collected is freed too.

    Settings (keyword-only; each int must be >= 1, else ConfigError):
        format: "counts" or "phoenix".
        viewers_key: phoenix format: the key anonymous presences are listed under; a
            tracked key may not equal it. Must be non-empty and within max_key_bytes.
        shards: lock shards for topics and for connections, 1..4096 (rounded up to a
            power of two).
        max_topic_bytes, max_key_bytes, max_meta_bytes: longest topic, key and meta (as
            JSON text), in UTF-8 bytes.
        max_topics, max_presences: most topics and presences held at once.

    Raises ConfigError for a bad setting, TypeError for a setting of the wrong type, and
    ResourceError if the wake-up descriptor cannot be created.
    """

    def __new__(
        cls,
        *,
        format: Literal["counts", "phoenix"] = "counts",
        viewers_key: str = "viewers",
        shards: int = 64,
        max_topic_bytes: int = 256,
        max_key_bytes: int = 256,
        max_meta_bytes: int = 4096,
        max_topics: int = 1_000_000,
        max_presences: int = 10_000_000,
    ) -> Self: ...
    @property
    def format(self) -> Literal["counts", "phoenix"]:
        """The wire format."""

    @property
    def config(self) -> dict[str, Any]:
        """Every setting in force, as a new dict (the same keys as the constructor's)."""

    @property
    def closed(self) -> bool:
        """True once `close()` was called."""

    def track(self, topic: str, conn: int, key: str | None = None, meta: Meta = None) -> None:
        """Adds the presence of `conn` in `topic`, as user `key` (None: an anonymous viewer),
        with an optional `meta` (see `Meta`; kept in phoenix format only, but validated in
        both).

        Raises AlreadyTrackedError if (topic, conn) is tracked already; LimitReachedError
        at max_topics or max_presences; InvalidInputError for an empty or too long topic
        or key, a key equal to viewers_key (phoenix), a bad meta, or a str that is not
        valid UTF-8; TypeError for an argument of the wrong type (a bool conn included) or
        a meta value that is not a JSON type; ValueError for a conn outside 0..2**64-1.
        A rejected call changes nothing."""

    def untrack(self, topic: str, conn: int) -> None:
        """Removes the presence of `conn` in `topic`.

        Raises NotTrackedError if it is not tracked; InvalidInputError, TypeError and
        ValueError as `track` does for the topic and conn."""

    def untrack_conn(self, conn: int) -> int:
        """Removes every presence of `conn` (call it when the connection closes) and returns
        how many there were (0 for an unknown conn, which is not an error)."""

    def update(self, topic: str, conn: int, meta: Meta = None) -> None:
        """Replaces the meta of a tracked presence (None: an empty meta). In phoenix format
        the next poll shows the old meta leaving and the new one joining with "phx_ref_prev";
        in counts format, which keeps no meta, it only checks the call.

        Raises NotTrackedError if (topic, conn) is not tracked, and the errors of `track`
        for the meta."""

    def track_many(self, items: Iterable[TrackItem]) -> None:
        """Tracks many presences in one call: each item is (topic, conn), (topic, conn, key)
        or (topic, conn, key, meta), as a tuple or list, with the meaning of `track`.
        Items are converted and applied in order, in chunks of about a thousand, with the
        GIL released while each chunk is applied: this is several times faster than a loop
        of `track` calls.

        On the first failing item, whatever the reason (a bad item, or the engine refusing
        it), the items before it stay applied, it and the items after it are not, and its
        error is raised with `err.index` set to its position (engine errors also start their
        message with "item N: "). A bad item (wrong type or shape: TypeError, ValueError, or
        InvalidInputError for a bad meta or string) stops the iteration at once; an item the
        engine refuses (AlreadyTrackedError, LimitReachedError, InvalidInputError for an
        empty or too long topic or key...) is found when its chunk is applied, so up to a
        chunk of later items may have been taken from the iterable, unapplied. An exception
        raised by the iterable itself propagates unchanged, after the items before it were
        applied."""

    def untrack_many(self, items: Iterable[UntrackItem]) -> None:
        """Removes many presences: each item is (topic, conn). Same failure rule as
        `track_many`: the items before the first failing one stay applied, and its error
        (e.g. NotTrackedError) is raised with `err.index` set."""

    def untrack_conns(self, conns: Iterable[int]) -> int:
        """`untrack_conn` for each conn, for disconnect storms; returns the total number of
        presences removed. A conn that is not an int from 0 to 2**64-1 raises TypeError or
        ValueError with `err.index` set, after the conns before it were applied."""

    def counts(self, topic: str) -> Counts:
        """The live counts of `topic`, including changes not polled yet (all zeros for a
        topic nobody is in). O(1)."""

    def list(self, topic: str) -> dict[str, Any]:
        """The `presence_state` payload of `topic` as of the last poll, as Python objects:
        what a client that joins now must start from, before applying the diffs of later
        polls. Counts format: `{"viewers": {"count": V}, "users": {"count": U}}`; phoenix
        format: `{key: {"metas": [...]}}` (`{}` for an empty topic). Use `state()` to also
        get the seq it includes."""

    def list_json(self, topic: str) -> str:
        """`list(topic)` as JSON text, ready to send."""

    def state(self, topic: str) -> tuple[dict[str, Any], int]:
        """`(list(topic), seq)`, taken together: `seq` is the seq of the last poll entry
        this state includes (0 before the first), so the next diff of the topic has seq + 1.
        A client given this state applies only diffs with a larger seq; a gap in the seqs
        means it must fetch the state again. A topic whose last presence left is dropped at
        the poll that reports it; if it fills again, its seqs start over at 1."""

    def state_json(self, topic: str) -> tuple[str, int]:
        """`(list_json(topic), seq)`, taken together; see `state`."""

    def poll_diff(self) -> builtins.list[dict[str, Any]]:
        """Takes every change since the last poll: one dict per topic whose clients' view
        changed, `{"topic": str, "seq": int, "counts": {"viewers": V, "users": U,
        "connections": C}, "payload": <presence_diff payload>}`, exactly the objects of
        `poll_diff_json()`. `seq` starts at 1 per topic and grows by one per entry; `counts`
        are the topic's live counts after the diff. Empty list when nothing changed.
        Broadcast each payload to the topic's subscribers as a presence_diff."""

    def poll_diff_json(self) -> str:
        """`poll_diff()` as one JSON array of the same envelopes (`"[]"` when nothing
        changed), for servers that forward bytes as they are."""

    def stats(self) -> Stats:
        """Engine-wide figures. Walks every topic for `bytes`, so O(topics)."""

    def fileno(self) -> int:
        """The engine's wake-up file descriptor: readable while a poll may return something
        (wake-ups can be spurious). Wait on it (select, epoll, `loop.add_reader`), then
        poll; the poll drains it. It is owned by the engine: never read or close it. It is
        closed by `close()`."""

    def close(self) -> None:
        """Frees the engine and its wake-up descriptor. Waits for calls running on other
        threads to finish. Calling it again does nothing; any other call afterwards raises
        EngineClosedError. On a `presence_engine.Engine` it also ends every running
        `diffs()` iteration, whichever thread's loop runs it."""

    def __enter__(self) -> Self: ...
    def __exit__(self, *exc_info: object) -> Literal[False]:
        """Calls `close()`."""
