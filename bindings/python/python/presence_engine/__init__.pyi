"""Live presence for Python socket servers: how many (or who) are in each channel.

An `Engine` keeps the bookkeeping ("connection 17 joined video:42 as alice", "connection
17 left") and answers "what changed since I last asked?" with ready-to-send payloads:
anonymous counts by default, or Phoenix-compatible presence lists. The host keeps its
own transport; `Engine.diffs()` plugs the engine into an asyncio loop.

Quick start::

    engine = Engine()                        # or Engine(format="phoenix")
    engine.track("video:42", conn_id, key=user_id)   # key=None: anonymous viewer
    engine.counts("video:42")                # Counts(viewers=0, users=1, connections=1)
    async for batch in engine.diffs(envelope="event"):  # waits on the wake-up fd
        for d in batch:                      # Diff: topic, seq, counts, message, payload
            await broadcast(d.topic, d.message)  # the whole message, rendered in Rust
    engine.untrack_conn(conn_id)             # on disconnect

Cluster mode (several server processes sharing presence over Redis or your own bus)::

    engine = Engine(cluster={"node": "web-1", "secret": shared_secret})
    engine.start_redis("redis://127.0.0.1:6379/", "presence")

Every error the engine raises is a `PresenceError`; see `_native.pyi` for the classes.
"""

from collections.abc import AsyncIterator
from typing import Any, Literal, TypedDict, overload

from typing_extensions import NotRequired, TypeAlias

from ._native import (
    CORE_VERSION as CORE_VERSION,
    AlreadyTrackedError as AlreadyTrackedError,
    ClusterStats as ClusterStats,
    ConfigError as ConfigError,
    Counts as Counts,
    Diff as Diff,
    EngineClosedError as EngineClosedError,
    InvalidInputError as InvalidInputError,
    InvalidMetaError as InvalidMetaError,
    LimitReachedError as LimitReachedError,
    NoClusterError as NoClusterError,
    NotTrackedError as NotTrackedError,
    PresenceError as PresenceError,
    RejectedError as RejectedError,
    ResourceError as ResourceError,
    Stats as Stats,
    TooLongError as TooLongError,
    __version__ as __version__,
)
from ._native import Engine as _NativeEngine

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

Meta: TypeAlias = dict[str, Any] | str | None
"""A presence's meta: a dict of JSON values (dict with str keys, list, tuple, str, int,
float, bool, None), written out as compact JSON in insertion order; or a str holding a
JSON object, passed as it is; or None for no meta. The engine refuses a meta that is not
a JSON object, uses the reserved keys "phx_ref" or "phx_ref_prev", nests objects and
arrays deeper than 64 levels (a dict: or holds a reference cycle), holds NaN or an
infinity (a str: a number no double holds, such as 1e400), holds an escaped lone
surrogate ("\\ud800" in a str), or is longer than max_meta_bytes as JSON text
(InvalidInputError); a dict key that is not a str, or a value of another type, is a
TypeError."""

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

EnvelopeName: TypeAlias = Literal["event", "phoenix"]
"""The message shapes the engine renders around a payload (`Engine.poll`,
`Engine.state_message`, `Engine.diffs`): "event" is
`{"event":E,"topic":T,"seq":S,"payload":P}` (the web demo's protocol); "phoenix" is the
Phoenix Channels V2 frame `[join_ref,null,T,E,P]` that phoenix.js reads."""

class ClusterOptions(TypedDict):
    """The `cluster=` setting of `Engine`: this engine is one node of a cluster. Any
    mapping with these keys works; an unknown key raises ConfigError, a value of the wrong
    type TypeError. The timers shown are the defaults::

        Engine(cluster={
            "node": "web-1",                 # unique in the cluster
            "secret": os.environ["CLUSTER_SECRET"],   # the same on every node
            "tick_ms": 250,                  # how often messages go out
            "down_after_ms": 3000,           # a node silent this long is dropped
            "stale_after_ms": 30000,         # peers kept this long while Redis is away
            "snapshot_interval_ms": 300000,  # every node broadcasts a full snapshot this often
            "max_message_bytes": 262144,     # larger snapshots are split; larger messages refused
            "max_nodes": 64,                 # most other nodes tracked
        })

    The engine checks the values (ConfigError, with a message naming the field as
    `cluster.<key>`): node 1 to 255 bytes, secret 16 bytes or more, every int >= 1,
    down_after_ms > tick_ms, max_message_bytes >= 16384 (more with large max_*_bytes).
    """

    node: str
    """This node's name, unique in the cluster (1 to 255 UTF-8 bytes)."""
    secret: str
    """The shared secret, the same on every node (16 bytes or more): it authenticates
    every message (HMAC-SHA256) and keys the user hashes of the counts format."""
    tick_ms: NotRequired[int | None]
    """How often `cluster_tick()` is called (or the Redis link ticks), in ms (250). None:
    the default, like every optional key."""
    down_after_ms: NotRequired[int | None]
    """A node silent this long is dropped with its presences, in ms (3000; more than
    tick_ms). Only time during which this node can hear the bus counts."""
    stale_after_ms: NotRequired[int | None]
    """While this node's Redis link is down or unresponsive, its peers' presences are
    kept (stale) this long before they are dropped, in ms (30000; or down_after_ms if
    that is longer)."""
    snapshot_interval_ms: NotRequired[int | None]
    """Each node broadcasts a full snapshot this often, in ms (300000): a backstop, since
    lost messages are found from sequence gaps and healed by snapshots on request."""
    max_message_bytes: NotRequired[int | None]
    """Largest message sent or accepted, in bytes (262144; at least 16384)."""
    max_nodes: NotRequired[int | None]
    """Most other nodes tracked at once (64); a message of one more is refused."""

class Engine(_NativeEngine):
    """A presence engine; see the base class (`presence_engine._native.Engine`) for the
    settings and every method. This class adds the asyncio helper `diffs()`."""

    @overload
    def diffs(
        self,
        *,
        raw: Literal[False] = False,
        interval: float = 0.0,
        envelope: EnvelopeName | None = None,
        join_ref: str | None = None,
    ) -> AsyncIterator[list[Diff]]:
        """Yields every non-empty poll, for as long as the engine is open::

            async for batch in engine.diffs(envelope="event"):
                for d in batch:
                    await broadcast(d.topic, d.message)

        Each batch is what `poll(envelope, join_ref=join_ref)` returns (a non-empty list
        of `Diff`, each with its whole message rendered in Rust), or with `raw=True` what
        `poll_diff_json()` returns (a JSON array other than "[]"). A `Diff` also answers
        `d["topic"]`, `d["seq"]`, `d["counts"]` and `d["payload"]` as the dicts of
        `poll_diff()` do. Between polls it waits for the engine's wake-up descriptor with
        `loop.add_reader`, so an idle engine costs nothing: no busy polling, no timer.

        `interval` (seconds, >= 0) rate-limits: after a batch, the next poll happens no
        sooner than `interval` seconds later, so that churn coalesces into fewer, larger
        diffs (e.g. 0.05 for at most 20 broadcasts a second per topic). With 0, each change
        is polled as soon as the loop gets to it.

        Must run inside an asyncio event loop. Run one consumer per engine: two would split
        the batches between them (and any other poll call takes changes away from this
        one). Closing the engine, from any thread, ends the iteration; a batch that was not
        yet polled is then lost. Breaking out of the loop, or cancelling the task,
        unregisters the reader.

        Raises, when called: EngineClosedError if the engine is closed already, TypeError
        or ValueError for a bad `interval`, ValueError for an unknown envelope, a join_ref
        without envelope="phoenix", or an envelope with raw=True. On the first iteration:
        RuntimeError outside a running event loop.
        """
    @overload
    def diffs(self, *, raw: Literal[True], interval: float = 0.0) -> AsyncIterator[str]: ...
    @overload
    def diffs(
        self,
        *,
        raw: bool,
        interval: float = 0.0,
        envelope: EnvelopeName | None = None,
        join_ref: str | None = None,
    ) -> AsyncIterator[list[Diff] | str]: ...
