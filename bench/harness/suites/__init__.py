"""The suites, in the order of BENCHMARKS.md. A new suite is one module and one entry here."""

from __future__ import annotations

from ..core import Ctx, Suite
from . import ab, cluster, fanout, grace, host, hot, integrations, lifecycle, memory, poll, threads, throughput


def nothing(ctx: Ctx) -> str:
    return ""


SUITES: list[Suite] = [
    Suite("throughput", "1. Track+untrack throughput", throughput.run_throughput, throughput.render_throughput,
          needs_redis=True),
    Suite("python", "Python package", throughput.run_python, nothing),
    Suite("node", "Node package", throughput.run_node, nothing),
    Suite("threads", "2. Scaling with threads", threads.run_threads, threads.render_threads),
    Suite("memory", "3. Memory per presence", memory.run_memory, memory.render_memory),
    Suite("poll", "4. poll_diff cost", poll.run_poll, poll.render_poll),
    Suite("hot", "5. counts and list on the hot room", hot.run_hot, hot.render_hot),
    Suite("fanout", "6. Fan-out: messages pushed for a churning room", fanout.run_fanout, fanout.render_fanout),
    Suite("cluster", "7. Cluster: three nodes over Redis", cluster.run_cluster, cluster.render_cluster,
          needs_redis=True),
    Suite("host", "8. The host path: ready-to-send messages in Python and Node", host.run_host, host.render_host),
    Suite("ab", "9. Hand-written pieces against their alternatives", ab.run_ab, ab.render_ab),
    Suite("integrations", "10. Fan-out through the framework integrations against the bare path",
          integrations.run_integrations, integrations.render_integrations),
    Suite("lifecycle", "11. Lifecycle: presences with a time to live", lifecycle.run_lifecycle,
          lifecycle.render_lifecycle),
    Suite("grace", "12. Leave grace: a reload-heavy room, and the poll cost", grace.run_grace, grace.render_grace),
]
