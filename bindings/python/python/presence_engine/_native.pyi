"""The native (Rust) part of presence_engine. Import from `presence_engine` instead:
it re-exports everything here, and its `Engine` adds the asyncio helper `diffs()`."""

import builtins
from collections.abc import Iterable, Iterator
from typing import Any, Final, Literal, final

from typing_extensions import Self, disjoint_base

from . import ClusterOptions, EnvelopeName, Meta, TrackItem, UntrackItem

__all__ = [
    "CORE_VERSION",
    "AlreadyTrackedError",
    "ClusterStats",
    "ConfigError",
    "Counts",
    "Diff",
    "Engine",
    "EngineClosedError",
    "InvalidInputError",
    "LimitReachedError",
    "NoClusterError",
    "NotTrackedError",
    "PresenceError",
    "RejectedError",
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
    "invalid_argument", "invalid_utf8", "invalid_config", "io", "no_cluster", "rejected"
    or "closed". An error raised
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
    """The operating system refused a resource: the engine's wake-up descriptor (for
    instance because the process is out of file descriptors) or the Redis link's thread
    (kind "io"; also an OSError)."""

class NoClusterError(PresenceError):
    """A cluster call (`cluster_tick`, `cluster_ingest`, `cluster_leave`, `cluster_resync`,
    `cluster_stats`, `start_redis`) on an engine created without `cluster=`
    (kind "no_cluster")."""

class RejectedError(PresenceError):
    """`cluster_ingest` refused a replication message (kind "rejected"): it failed the HMAC
    check (forged, tampered, truncated, or signed with another secret), is malformed (or of
    the other format, or would pass max_nodes or max_presences), is larger than
    max_message_bytes, or was seen already (a replay or a duplicate). Nothing of it was
    merged; `cluster_stats()` counts it under the matching rejected_* field. The message
    says which. A host relaying messages from a bus can log it and go on."""

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
class Diff:
    """One changed topic of `Engine.poll()`: what to send to the topic's clients.

    The engine renders everything in Rust; reading an attribute decodes nothing. `topic`
    and `message` are made at poll time (they are what a host sends for every topic);
    `payload_json` is made when read; `payload` is decoded to Python objects (with
    `json.loads`) on its first read only.

    For code written against `poll_diff()`, `d["topic"]`, `d["seq"]`, `d["counts"]` (a
    dict) and `d["payload"]` work too, and `to_dict()` gives the whole `poll_diff()` dict.
    """

    @property
    def topic(self) -> str:
        """The topic name."""

    @property
    def seq(self) -> int:
        """The topic's sequence number: 1 for its first diff, then one more each poll that
        reports it (see `Engine.state`)."""

    @property
    def counts(self) -> Counts:
        """The topic's live counts after this diff."""

    @property
    def payload_json(self) -> str:
        """The presence_diff payload as compact JSON text."""

    @property
    def message(self) -> str | None:
        """The whole message in the envelope the poll asked for, ready to send as a text
        frame; None for a poll without an envelope. "event":
        `{"event":"presence_diff","topic":T,"seq":S,"payload":P}`; "phoenix": the Phoenix
        Channels V2 frame `[join_ref,null,T,"presence_diff",P]`."""

    @property
    def payload(self) -> dict[str, Any]:
        """The payload as Python objects, decoded on first read and kept (the same object
        on every read: do not mutate it)."""

    def __getitem__(self, key: Literal["topic", "seq", "counts", "payload"], /) -> Any:
        """The value of that key in this topic's `poll_diff()` dict; KeyError for any
        other key."""

    def to_dict(self) -> dict[str, Any]:
        """This topic's `poll_diff()` dict: `{"topic", "seq", "counts", "payload"}`."""

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

@final
class ClusterStats:
    """Counters of a node's replication traffic, from `Engine.cluster_stats()`. Immutable.
    The counters only grow, except `nodes`."""

    @property
    def node(self) -> str:
        """This node's name (the `node` cluster setting)."""

    @property
    def incarnation(self) -> int:
        """This node's incarnation: a number drawn at each engine creation, increasing
        across restarts (milliseconds << 16 plus random bits), that every message carries,
        so that peers tell a restarted node from a replay of its old messages."""

    @property
    def nodes(self) -> int:
        """Other nodes currently held: live (heard from within down_after_ms), or stale
        while this node's Redis link is down."""

    @property
    def messages_sent(self) -> int:
        """Messages handed out by `cluster_tick()` and `cluster_leave()` (or published by
        the Redis link)."""

    @property
    def bytes_sent(self) -> int:
        """Their bytes."""

    @property
    def messages_received(self) -> int:
        """Messages passed to `cluster_ingest()` (or received by the Redis link), this
        node's own echoes and refused messages included."""

    @property
    def bytes_received(self) -> int:
        """Their bytes."""

    @property
    def rejected_unauthenticated(self) -> int:
        """Refused: the HMAC did not match (forged, tampered, truncated, another secret)."""

    @property
    def rejected_malformed(self) -> int:
        """Refused: authentic but undecodable, of the other format, or over a bound
        (max_nodes, max_presences)."""

    @property
    def rejected_oversized(self) -> int:
        """Refused: larger than max_message_bytes."""

    @property
    def rejected_replayed(self) -> int:
        """Refused: a sequence number or incarnation already seen (a replay or a duplicate)."""

    @property
    def rejected(self) -> int:
        """Every refused message: the sum of the four rejected_* counters."""

    @property
    def snapshots_sent(self) -> int:
        """Full snapshots this node sent: its first, the periodic ones
        (snapshot_interval_ms), and those peers asked for (each sent to the asker alone)."""

    @property
    def snapshot_requests_sent(self) -> int:
        """Snapshot requests this node sent after seeing a gap in a peer's messages."""

    @property
    def nodes_dropped(self) -> int:
        """Nodes dropped, for silence (down_after_ms), after an outage of this node's Redis
        link longer than stale_after_ms, or after announcing their departure."""

    @property
    def stale_nodes(self) -> int:
        """Nodes held from before this node's Redis link went down or stopped answering,
        kept (not dropped for silence) until the link is back or stale_after_ms has
        passed; 0 while the link is up."""

    @property
    def link_up(self) -> bool:
        """Whether this node can hear the bus: False while its Redis link is connecting,
        down or unresponsive; always True for your own bus."""

    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def to_dict(self) -> dict[str, str | int | bool]:
        """Every field but `rejected` as a dict: `{"node": ..., "incarnation": ..., ...}`."""

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
    format, stats, bulk calls, cluster_tick, cluster_ingest) and the calls that wait for a
    thread (start_redis, stop_redis, close) release the GIL while the engine works; the
    O(1) calls (track, untrack, counts, ...) keep it, as releasing would cost more than the
    call.

    Lifetime: `close()` frees the engine at once (or `with Engine() as engine:`); any later
    call raises EngineClosedError. An engine that is garbage collected is freed too, but
    one with a running Redis link then waits for the link's thread with the GIL held:
    close such an engine explicitly.

    Settings (keyword-only; each int must be >= 1, else ConfigError):
        format: "counts" or "phoenix".
        viewers_key: phoenix format: the key anonymous presences are listed under; a
            tracked key may not equal it. Must be non-empty and within max_key_bytes.
        shards: lock shards for topics and for connections, 1..4096 (rounded up to a
            power of two).
        max_topic_bytes, max_key_bytes, max_meta_bytes: longest topic, key and meta (as
            JSON text), in UTF-8 bytes.
        max_topics, max_presences: most topics and presences held at once.
        cluster: None (a single node), or a `ClusterOptions` mapping that makes this engine
            one node of a cluster: `{"node": "web-1", "secret": "..."}` plus optional
            timers. See "Cluster mode" below.

    Raises ConfigError for a bad setting (an unknown cluster key included), TypeError for
    a setting of the wrong type, and ResourceError if the wake-up descriptor cannot be
    created.

    Cluster mode: several server processes, each with its own engine, share presence over
    a pub/sub bus. Reads (`counts`, `list`, `state`, `poll_diff`) stay local and include
    every live node; other nodes' changes come out of `poll_diff()` (and `diffs()`) like
    local ones. In counts format a user on two nodes counts once, and no key or meta
    travels (only keyed hashes of keys); in phoenix format the entries travel, so `list()`
    on any node shows every node's presences. Every message is authenticated with an
    HMAC over the shared secret. Two ways to carry the messages:

    - Redis: `start_redis(url, channel)` runs a native thread that ticks, publishes and
      ingests; `stop_redis()` (or `close()`) announces the departure.
    - Your own bus: call `cluster_tick()` every tick_ms and publish each message it returns,
      in order, to every other node; pass each message received to `cluster_ingest()`;
      publish `cluster_leave()` when shutting down, and `cluster_resync()` after the bus
      reconnects.
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
        cluster: ClusterOptions | None = None,
    ) -> Self: ...
    @property
    def format(self) -> Literal["counts", "phoenix"]:
        """The wire format."""

    @property
    def config(self) -> dict[str, Any]:
        """Every setting in force, as a new dict (the same keys as the constructor's).
        "cluster" is None for a single node, else the cluster settings in force (the
        defaults filled in) without "secret", which stays out of logs."""

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
        In counts format, whose clients see viewers and users only, a change of connections
        alone (a user opening or closing a second tab) is not reported; `counts()` and the
        topic's next entry carry it. In a cluster, other nodes' changes come out here too.
        Broadcast each payload to the topic's subscribers as a presence_diff."""

    def poll_diff_json(self) -> str:
        """`poll_diff()` as one JSON array of the same envelopes (`"[]"` when nothing
        changed), for servers that forward bytes as they are."""

    def poll(
        self, envelope: EnvelopeName | None = None, *, join_ref: str | None = None
    ) -> builtins.list[Diff]:
        """The host's fast path: takes every change since the last poll, like
        `poll_diff()`, as one `Diff` per changed topic, with the whole message already
        rendered (in Rust) in `envelope`:

        - "event": `{"event":"presence_diff","topic":T,"seq":S,"payload":P}`, the protocol
          of the web demo;
        - "phoenix": the Phoenix Channels V2 frame `[join_ref,null,T,"presence_diff",P]`
          that a Phoenix server broadcasts, which phoenix.js (`Socket`, `Channel`,
          `Presence`) reads unchanged. `ref` is null, as on every Phoenix push; `join_ref`
          is null too unless given (Phoenix broadcasts diffs to every channel of the topic
          with a null join_ref);
        - None: no message (`d.message` is None), the payload alone in `d.payload_json`.

        Send `d.message` to the sockets of `d.topic` as it is: no payload is decoded or
        encoded again on the way. A message is byte for byte what
        `json.dumps(value, separators=(",", ":"), ensure_ascii=False)` makes of the same
        value, provided the metas were given as dicts (a str meta is passed on as given).

        Raises ValueError for another envelope name, or a join_ref without "phoenix".
        Releases the GIL while the engine works."""

    def state_message(
        self,
        topic: str,
        envelope: EnvelopeName | None = "event",
        *,
        join_ref: str | None = None,
    ) -> tuple[str, int]:
        """`(message, seq)`: the state of `topic` as of the last poll (see `state`), in
        `envelope` (event "presence_state"), ready to send to a client that joins now,
        then the diffs of later polls. "event":
        `{"event":"presence_state","topic":T,"seq":S,"payload":P}`; "phoenix":
        `[join_ref,null,T,"presence_state",P]`, where `join_ref` is the joining channel's
        join_ref (Phoenix pushes the state to that channel with it; None sends null, which
        phoenix.js accepts too); None: the payload alone, as `state_json`.

        Raises ValueError for another envelope name, or a join_ref without "phoenix", and
        the errors of `state` for the topic."""

    def pending_topics(self) -> int:
        """How many topics changed since the last poll (local or remote changes), in O(1):
        a cheap "anything to poll?" for hosts that do not wait on `fileno()`. A topic whose
        changes cancelled out still counts until the poll, which then returns nothing."""

    def stats(self) -> Stats:
        """Engine-wide figures. Walks every topic for `bytes`, so O(topics)."""

    def fileno(self) -> int:
        """The engine's wake-up file descriptor: readable while a poll may return something
        (wake-ups can be spurious). Wait on it (select, epoll, `loop.add_reader`), then
        poll; the poll drains it. It is owned by the engine: never read or close it. It is
        closed by `close()`."""

    def cluster_tick(self) -> builtins.list[bytes]:
        """Cluster mode over your own bus: the messages to publish now, in order (possibly
        none). Call it every tick_ms and publish each message to every other node (a
        pub/sub channel that echoes them back to this node is fine: own messages are
        ignored). It sends this node's changes since the last tick, or a heartbeat;
        snapshots when due or asked for; snapshot requests after a gap; and it drops the
        nodes silent for down_after_ms. After `cluster_leave()` it returns []. Messages are
        opaque binary: carry them as bytes, not text.

        Raises NoClusterError on a single-node engine. Releases the GIL."""

    def cluster_ingest(self, message: bytes | bytearray | memoryview) -> None:
        """Cluster mode over your own bus: applies a message another node published (its
        changes show in `counts()` at once and come out of the next `poll_diff()`).

        Raises RejectedError for a refused message (forged, tampered, truncated, malformed,
        oversized or replayed), which changes nothing and is counted in `cluster_stats()`;
        NoClusterError on a single-node engine; TypeError for another type than bytes,
        bytearray or memoryview. Releases the GIL."""

    def cluster_leave(self) -> bytes:
        """Cluster mode over your own bus: the message that announces this node's clean
        departure; publish it when shutting down, and the other nodes drop its presences at
        once instead of after down_after_ms. Later ticks publish nothing.

        Raises NoClusterError on a single-node engine."""

    def cluster_resync(self) -> bytes:
        """Cluster mode over your own bus: after the bus reconnected (messages may have been
        lost both ways), publish the message this returns: it asks every node for a
        snapshot, and this node's next tick sends its own.

        Raises NoClusterError on a single-node engine."""

    def cluster_stats(self) -> ClusterStats:
        """Cluster mode: the replication counters (messages, bytes, refusals, snapshots,
        live and dropped nodes). Raises NoClusterError on a single-node engine."""

    def start_redis(self, url: str, channel: str) -> None:
        """Cluster mode: starts the built-in Redis link, a native thread that calls
        `cluster_tick()` every tick_ms and publishes on the pub/sub `channel` of the Redis
        server at `url` (e.g. "redis://127.0.0.1:6379/"), and ingests what the other nodes
        publish there ("rediss://" for TLS, with "?ca_file=/path/ca.pem" for a private
        CA; "redis://user:password@host/" for AUTH). Every Redis call has a timeout; while
        Redis is away or stops answering, the other nodes' presences are kept (stale) for
        stale_after_ms, and the link reconnects within about half a second of Redis
        returning; a Redis that cannot be reached now is not an error. Calling it again
        replaces the running link (waiting for the old thread). Do not also call
        `cluster_tick()` or `cluster_ingest()` while it runs.

        A link announces this node's departure when it stops (`stop_redis()`, `close()`,
        or its replacement by another `start_redis()`). Starting a link after a departure
        (this one, or `cluster_leave()`) rejoins the cluster as a new incarnation that
        begins with a full snapshot.

        Raises NoClusterError on a single-node engine; InvalidInputError for a bad URL or
        an empty channel; ResourceError if the thread cannot start."""

    def stop_redis(self) -> None:
        """Stops the Redis link: it publishes this node's departure (the others drop it at
        once), and this returns once its thread ended, about a tick later (plus up to half
        a second if Redis is away). Releases the GIL while it waits; in asyncio code, run it
        in a thread (`await asyncio.to_thread(engine.stop_redis)`). Does nothing if no link
        runs, on any engine."""

    def close(self) -> None:
        """Frees the engine and its wake-up descriptor, after stopping a running Redis link
        as `stop_redis()` does. Waits for calls running on other threads to finish. Calling it again does nothing; any other call afterwards raises
        EngineClosedError. On a `presence_engine.Engine` it also ends every running
        `diffs()` iteration, whichever thread's loop runs it."""

    def __enter__(self) -> Self: ...
    def __exit__(self, *exc_info: object) -> Literal[False]:
        """Calls `close()`."""
