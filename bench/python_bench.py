#!/usr/bin/env python3
"""Track+untrack throughput and memory per presence from Python.

The standard workload: N connections over T topics; connection i belongs to user i//2
(key f"u{i//2}", so every user has two tabs) and joins topic f"t{(i//2) % T}". One run
tracks all N connections, then untracks all N: 2N operations. Compared, in one process:

  python-engine-single  presence_engine.Engine, one track()/untrack() call per presence
  python-engine-bulk    presence_engine.Engine, track_many()/untrack_many() over the lists
  python-dict           PyDictTracker below: the same bookkeeping in plain dicts (the baseline)

The inputs (topic and key strings, item tuples) are built before the clock starts, so
every implementation is timed on the bookkeeping alone. Python's cyclic GC stays enabled,
as in a server. Memory per presence is measured with all N presences tracked: tracemalloc
(in a separate, untimed pass) for the dict tracker, `engine.stats().bytes / presences`
for the engine. Neither counts the input strings, which the caller holds either way.

Output: one JSON object per line on stdout, for example
  {"bench":"track_untrack","impl":"python-engine-single","baseline":"python-dict","unit":"ops/s","runs":[...],...}
  {"bench":"memory","impl":"python-dict","unit":"bytes/presence","runs":[...],...}
Progress goes to stderr. `--check` runs a small workload and fails (exit 1) unless every
tracker gives identical counts for every topic.

`--host` runs the host-path benchmark instead (run.py's "host" suite; see host_bench).

Needs only the standard library and the installed presence_engine package.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import tracemalloc
from typing import Callable

import presence_engine


class _Topic:
    __slots__ = ("viewers", "users", "conns")

    def __init__(self) -> None:
        self.viewers = 0
        self.users: dict[str, int] = {}  # key -> number of its connections here
        self.conns: dict[int, str | None] = {}  # conn -> key (None: anonymous)


class PyDictTracker:
    """The engine's counts bookkeeping in plain Python dicts: per topic the anonymous
    viewers, the distinct users (refcounted per key) and the connections; per connection
    the topics it is in, so that a disconnect finds them. Same errors as the engine for
    a duplicate track (KeyError) or an unknown untrack (KeyError)."""

    __slots__ = ("topics", "conn_topics")

    def __init__(self) -> None:
        self.topics: dict[str, _Topic] = {}
        # conn -> its topic, or a set of topics once it is in more than one
        self.conn_topics: dict[int, str | set[str]] = {}

    def track(self, topic: str, conn: int, key: str | None = None) -> None:
        t = self.topics.get(topic)
        if t is None:
            t = self.topics[topic] = _Topic()
        elif conn in t.conns:
            raise KeyError(f"connection {conn} is already tracked in topic {topic!r}")
        t.conns[conn] = key
        if key is None:
            t.viewers += 1
        else:
            users = t.users
            users[key] = users.get(key, 0) + 1
        held = self.conn_topics.get(conn)
        if held is None:
            self.conn_topics[conn] = topic
        elif isinstance(held, set):
            held.add(topic)
        else:
            self.conn_topics[conn] = {held, topic}

    def untrack(self, topic: str, conn: int) -> None:
        t = self.topics.get(topic)
        if t is None or conn not in t.conns:
            raise KeyError(f"connection {conn} is not tracked in topic {topic!r}")
        self._remove(t, topic, conn)
        held = self.conn_topics[conn]
        if isinstance(held, set):
            held.discard(topic)
            if len(held) == 1:
                self.conn_topics[conn] = next(iter(held))
        else:
            del self.conn_topics[conn]

    def untrack_conn(self, conn: int) -> int:
        held = self.conn_topics.pop(conn, None)
        if held is None:
            return 0
        names = held if isinstance(held, set) else (held,)
        for topic in names:
            self._remove(self.topics[topic], topic, conn)
        return len(names)

    def _remove(self, t: _Topic, topic: str, conn: int) -> None:
        key = t.conns.pop(conn)
        if key is None:
            t.viewers -= 1
        else:
            users = t.users
            n = users[key] - 1
            if n:
                users[key] = n
            else:
                del users[key]
        if not t.conns:
            del self.topics[topic]

    def counts(self, topic: str) -> tuple[int, int, int]:
        t = self.topics.get(topic)
        if t is None:
            return (0, 0, 0)
        return (t.viewers, len(t.users), len(t.conns))


class Workload:
    def __init__(self, n: int, topics: int) -> None:
        self.n = n
        self.topic_names = [f"t{t}" for t in range(topics)]
        self.topics = [self.topic_names[(i // 2) % topics] for i in range(n)]
        self.keys = [f"u{i // 2}" for i in range(n)]
        self.track_items = list(zip(self.topics, range(n), self.keys))
        self.untrack_items = list(zip(self.topics, range(n)))


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


def timed(fn: Callable[[], None]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_dict(w: Workload) -> tuple[float, dict[str, tuple[int, int, int]]]:
    """Times one track+untrack run; returns the seconds and every topic's counts with
    all presences in."""
    tracker = PyDictTracker()
    topics, keys, n = w.topics, w.keys, w.n

    def track() -> None:
        tr = tracker.track
        for i in range(n):
            tr(topics[i], i, keys[i])

    def untrack() -> None:
        un = tracker.untrack
        for i in range(n):
            un(topics[i], i)

    elapsed = timed(track)
    counts = {t: tracker.counts(t) for t in w.topic_names}
    elapsed += timed(untrack)
    if tracker.topics or tracker.conn_topics:
        raise AssertionError("python-dict not empty after the untracks")
    return elapsed, counts


def run_engine(w: Workload, bulk: bool) -> tuple[float, dict[str, tuple[int, int, int]], float]:
    """Times one track+untrack run; returns the seconds, every topic's counts with all
    presences in, and the engine's bytes per presence at that point."""
    engine = presence_engine.Engine()
    topics, keys, n = w.topics, w.keys, w.n

    if bulk:
        def track() -> None:
            engine.track_many(w.track_items)

        def untrack() -> None:
            engine.untrack_many(w.untrack_items)
    else:
        def track() -> None:
            tr = engine.track
            for i in range(n):
                tr(topics[i], i, keys[i])

        def untrack() -> None:
            un = engine.untrack
            for i in range(n):
                un(topics[i], i)

    elapsed = timed(track)
    counts = {t: (c.viewers, c.users, c.connections) for t in w.topic_names
              for c in (engine.counts(t),)}
    stats = engine.stats()
    bytes_per_presence = stats.bytes / stats.presences if stats.presences else 0.0
    engine.poll_diff()  # outside the clock: a server polls too, but that is not this bench
    elapsed += timed(untrack)
    engine.poll_diff()
    left = engine.stats()
    if left.presences or left.topics:
        raise AssertionError(f"engine not empty after the untracks: {left}")
    engine.close()
    return elapsed, counts, bytes_per_presence


def dict_memory(w: Workload) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracker = PyDictTracker()
        tr = tracker.track
        topics, keys = w.topics, w.keys
        for i in range(w.n):
            tr(topics[i], i, keys[i])
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del tracker
    return used / w.n


def check(n: int, topics: int) -> bool:
    """Every tracker must give the same counts for every topic, through a mixed sequence
    (keyed and anonymous connections, a second topic per connection, partial untracks,
    disconnects), and all must end empty."""
    engines = {
        "python-engine-single": presence_engine.Engine(),
        "python-engine-bulk": presence_engine.Engine(),
        "python-engine-phoenix": presence_engine.Engine(format="phoenix"),
    }
    ref = PyDictTracker()
    names = [f"t{t}" for t in range(topics)]

    def key_of(i: int) -> str | None:
        return None if i % 5 == 4 else f"u{i // 2}"

    joins = [(names[(i // 2) % topics], i, key_of(i)) for i in range(n)]
    # Every third connection also joins a second topic.
    joins += [(names[(i // 2 + 1) % topics], i, key_of(i)) for i in range(0, n, 3)]
    leaves = [(t, c) for (t, c, _k) in joins[: n // 2]]
    disconnects = list(range(n // 2, n, 2))

    for t, c, k in joins:
        ref.track(t, c, k)
    for name, engine in engines.items():
        if name == "python-engine-bulk":
            engine.track_many(joins)
        else:
            for t, c, k in joins:
                engine.track(t, c, k)

    ok = True

    def compare(stage: str) -> None:
        nonlocal ok
        for t in names:
            want = ref.counts(t)
            for name, engine in engines.items():
                got = tuple(engine.counts(t))
                if got != want:
                    ok = False
                    log(f"check FAILED at {stage}: {name} counts({t!r}) = {got}, python-dict = {want}")

    compare("after the joins")
    for t, c in leaves:
        ref.untrack(t, c)
    removed_ref = sum(ref.untrack_conn(c) for c in disconnects)
    for name, engine in engines.items():
        if name == "python-engine-bulk":
            engine.untrack_many(leaves)
            removed = engine.untrack_conns(disconnects)
        else:
            for t, c in leaves:
                engine.untrack(t, c)
            removed = sum(engine.untrack_conn(c) for c in disconnects)
        if removed != removed_ref:
            ok = False
            log(f"check FAILED: {name} removed {removed} presences on disconnect, python-dict {removed_ref}")
    compare("after the leaves and disconnects")
    rest = [c for c in range(n) if c in ref.conn_topics]
    for c in rest:
        ref.untrack_conn(c)
    for engine in engines.values():
        engine.untrack_conns(rest)
    compare("after everyone left")
    for name, engine in engines.items():
        engine.poll_diff()
        if engine.stats().presences != 0:
            ok = False
            log(f"check FAILED: {name} still holds {engine.stats().presences} presences")
        engine.close()
    if ref.topics or ref.conn_topics:
        ok = False
        log("check FAILED: python-dict is not empty at the end")
    return ok


# ---- the host path ----------------------------------------------------------------------

META = '{"online_at":1700000000}'  # the Rust driver's small meta (presence_bench::META)


def dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def cpu_timed(fn: Callable[[], object]) -> float:
    """Seconds of this thread's CPU time that `fn` takes (see host_bench)."""
    start = time.thread_time()
    fn()
    return time.thread_time() - start


def host_bench(total: int, changed: list[int], state_n: int, runs: int) -> None:
    """What a host pays per changed topic to get each topic's name and its ready-to-send
    message, on the workload of the Rust driver's `host` command: `total` topics of one
    presence each (phoenix: with the small meta), `k` of them changed by one more presence
    (key "v"), one poll timed, the state restored off the clock.

      python-fast  engine.poll("event"), reading each (topic, message) of batch.pairs()
      python-diffs engine.poll("event"), reading each Diff's topic and message
      python-dict  engine.poll_diff(), writing each message from the dicts with json.dumps
                   (what a host did before the fast path: the web demo did exactly this)

    Then the state of one phoenix topic of `state_n` presences (the standard workload:
    key u{i//2}, the small meta): state_message(topic) (the whole presence_state message)
    and list(topic) (the payload as Python objects). Times are this thread's CPU time, as
    in the Rust driver: the three drivers run side by side on shared cores, where wall
    time would also count whatever else ran meanwhile."""
    for fmt in ("counts", "phoenix"):
        e = presence_engine.Engine(format=fmt)
        meta = META if fmt == "phoenix" else None
        names = [f"p{j}" for j in range(total)]
        for j, name in enumerate(names):
            e.track(name, j, "u", meta)
        e.poll_diff_json()
        for k in changed:
            k = min(k, total)
            chosen = [names[i * total // k] for i in range(k)]

            def fast() -> int:
                n = 0
                batch = e.poll("event")
                for topic, message in batch.pairs():
                    n += 1
                return n

            def diffs() -> int:
                n = 0
                for d in e.poll("event"):
                    d.topic
                    d.message
                    n += 1
                return n

            def dict_path() -> int:
                n = 0
                for d in e.poll_diff():
                    topic = d["topic"]
                    message = (  # noqa: F841 - built to be sent, as a host would
                        f'{{"event":"presence_diff","topic":{dumps(topic)},"seq":{d["seq"]},'
                        f'"payload":{dumps(d["payload"])}}}'
                    )
                    n += 1
                return n

            impls: list[tuple[str, Callable[[], int]]] = [
                ("python-fast", fast),
                ("python-diffs", diffs),
                ("python-dict", dict_path),
            ]
            ns: dict[str, list[float]] = {name: [] for name, _ in impls}
            # One untimed poll of each first, as the Node driver does (a running server).
            for _, fn in impls:
                for c, topic in enumerate(chosen):
                    e.track(topic, total + c, "v", meta)
                fn()
                for c, topic in enumerate(chosen):
                    e.untrack(topic, total + c)
                e.poll_diff_json()
            for r in range(runs):
                for i in range(len(impls)):
                    name, fn = impls[(r + i) % len(impls)]
                    for c, topic in enumerate(chosen):
                        e.track(topic, total + c, "v", meta)
                    got = 0

                    def call(fn: Callable[[], int] = fn) -> None:
                        nonlocal got
                        got = fn()

                    secs = cpu_timed(call)
                    if got != k:
                        raise SystemExit(f"{name}: {got} diffs for {k} changed topics")
                    ns[name].append(secs * 1e9 / k)
                    for c, topic in enumerate(chosen):
                        e.untrack(topic, total + c)
                    e.poll_diff_json()
            params = {"format": fmt, "changed": k, "total_topics": total}
            for name, _ in impls:
                print(json.dumps({"bench": "host_diff", "impl": name, "baseline": "rust-poll_diff",
                                  "unit": "ns", "params": params, "runs": [round(v, 1) for v in ns[name]]}),
                      flush=True)
        e.close()
    e = presence_engine.Engine(format="phoenix")
    for i in range(state_n):
        e.track("t0", i, f"u{i // 2}", META)
    e.poll_diff_json()
    state: dict[str, list[float]] = {"python-state-message": [], "python-list": []}
    for r in range(runs):
        order = list(state) if r % 2 == 0 else list(reversed(state))
        for name in order:
            fn = (lambda: e.state_message("t0")) if name == "python-state-message" else (lambda: e.list("t0"))
            state[name].append(cpu_timed(fn) * 1e6)
    e.close()
    for name, values in state.items():
        print(json.dumps({"bench": "host_state", "impl": name, "baseline": "rust-list", "unit": "us",
                          "params": {"presences": state_n, "topic": "t0"}, "runs": [round(v, 1) for v in values]}),
              flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="connections (default 1000000)")
    parser.add_argument("--topics", type=int, default=1_000, help="topics (default 1000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each; the median is reported")
    parser.add_argument(
        "--check",
        action="store_true",
        help="small workload (n=20000, topics=100, 1 run unless given): verify that all "
        "trackers agree on every topic's counts, then run the bench once; exit 1 on a mismatch",
    )
    parser.add_argument("--host", action="store_true", help="the host-path benchmark (run.py's host suite)")
    parser.add_argument("--total", type=int, default=10_000, help="--host: topics (default 10000)")
    parser.add_argument("--changed", default="1000,10000", help="--host: changed topics per poll (default 1000,10000)")
    parser.add_argument("--state-n", type=int, default=10_000, help="--host: presences of the state topic")
    args = parser.parse_args(argv)
    if args.host:
        host_bench(args.total, [int(k) for k in args.changed.split(",")], args.state_n, args.runs)
        return 0
    if args.check:
        if "--n" not in (argv if argv is not None else sys.argv[1:]):
            args.n = 20_000
        if "--topics" not in (argv if argv is not None else sys.argv[1:]):
            args.topics = 100
        if "--runs" not in (argv if argv is not None else sys.argv[1:]):
            args.runs = 1
    if args.n < 2 or args.topics < 1 or args.runs < 1:
        parser.error("--n must be >= 2, --topics and --runs >= 1")

    if args.check:
        if not check(args.n, args.topics):
            return 1
        log(f"check: all trackers agree on every topic (n={args.n}, topics={args.topics})")

    log(f"building the workload: n={args.n}, topics={args.topics}")
    w = Workload(args.n, args.topics)
    impls = ["python-engine-single", "python-engine-bulk", "python-dict"]
    ops: dict[str, list[float]] = {name: [] for name in impls}
    memory: dict[str, list[float]] = {"python-engine": [], "python-dict": []}
    mismatch = False
    for run in range(args.runs):
        dict_s, ref_counts = run_dict(w)
        ops["python-dict"].append(2 * w.n / dict_s)
        for name, bulk in (("python-engine-single", False), ("python-engine-bulk", True)):
            secs, counts, bpp = run_engine(w, bulk)
            ops[name].append(2 * w.n / secs)
            if not bulk:
                memory["python-engine"].append(bpp)
            if counts != ref_counts:
                mismatch = True
                log(f"MISMATCH: {name} counts differ from python-dict's")
        memory["python-dict"].append(dict_memory(w))
        log(
            f"run {run + 1}/{args.runs}: "
            + ", ".join(f"{k} {v[-1]:,.0f} ops/s" for k, v in ops.items())
        )

    common = {"n": w.n, "topics": args.topics}
    for name in impls:
        line: dict[str, object] = {"bench": "track_untrack", "impl": name}
        if name != "python-dict":
            line["baseline"] = "python-dict"
        line.update(
            unit="ops/s",
            runs=[round(v) for v in ops[name]],
            median=round(statistics.median(ops[name])),
            **common,
        )
        print(json.dumps(line), flush=True)
    for name, values in memory.items():
        line = {
            "bench": "memory",
            "impl": name,
            "unit": "bytes/presence",
            "runs": [round(v, 1) for v in values],
            "median": round(statistics.median(values), 1),
            **common,
        }
        print(json.dumps(line), flush=True)
    return 1 if mismatch else 0


if __name__ == "__main__":
    sys.exit(main())
