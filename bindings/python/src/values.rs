//! Small immutable values: `Counts`, `Stats` and `ClusterStats`.

use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyIterator, PyString, PyTuple, PyType};
use std::fmt::Write;

/// The three numbers of a topic: anonymous viewers, distinct users, all connections.
#[pyclass(module = "presence_engine", frozen, eq, hash)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Counts {
    /// Anonymous presences (tracked without a key).
    #[pyo3(get)]
    pub viewers: u64,
    /// Distinct keys present.
    #[pyo3(get)]
    pub users: u64,
    /// All presences.
    #[pyo3(get)]
    pub connections: u64,
}

impl From<presence_core::Counts> for Counts {
    fn from(c: presence_core::Counts) -> Self {
        Counts {
            viewers: c.viewers,
            users: c.users,
            connections: c.connections,
        }
    }
}

impl Counts {
    fn fields(&self) -> [u64; 3] {
        [self.viewers, self.users, self.connections]
    }
}

// `to_dict` takes `&self`: pyo3 methods cannot take `self` by value.
#[allow(clippy::wrong_self_convention)]
#[pymethods]
impl Counts {
    #[new]
    #[pyo3(signature = (viewers=0, users=0, connections=0))]
    fn new(viewers: u64, users: u64, connections: u64) -> Self {
        Counts {
            viewers,
            users,
            connections,
        }
    }

    #[classattr]
    fn __match_args__() -> (&'static str, &'static str, &'static str) {
        ("viewers", "users", "connections")
    }

    pub(crate) fn __repr__(&self) -> String {
        format!(
            "Counts(viewers={}, users={}, connections={})",
            self.viewers, self.users, self.connections
        )
    }

    fn __len__(&self) -> usize {
        3
    }

    fn __getitem__(&self, index: isize) -> PyResult<u64> {
        let i = if index < 0 { index + 3 } else { index };
        usize::try_from(i)
            .ok()
            .and_then(|i| self.fields().get(i).copied())
            .ok_or_else(|| PyIndexError::new_err("Counts index out of range"))
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyIterator>> {
        PyTuple::new(py, self.fields())?.try_iter()
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyType>, (u64, u64, u64))> {
        let c = slf.get();
        Ok((slf.get_type(), (c.viewers, c.users, c.connections)))
    }

    /// `{"viewers": V, "users": U, "connections": C}`, as in a poll's `counts`.
    pub(crate) fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("viewers", self.viewers)?;
        d.set_item("users", self.users)?;
        d.set_item("connections", self.connections)?;
        Ok(d)
    }
}

/// Engine-wide figures for monitoring.
#[pyclass(module = "presence_engine", frozen, eq, hash)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stats {
    /// Topics held.
    #[pyo3(get)]
    pub topics: u64,
    /// Presences held.
    #[pyo3(get)]
    pub presences: u64,
    /// Estimated heap bytes of the engine's tables and strings.
    #[pyo3(get)]
    pub bytes: u64,
    /// Topics changed since the last poll.
    #[pyo3(get)]
    pub topics_pending: u64,
    /// Polls taken since the engine was created.
    #[pyo3(get)]
    pub polls: u64,
    /// TTL presences this node removed because their time to live ran out.
    #[pyo3(get)]
    pub expired: u64,
}

impl From<presence_core::Stats> for Stats {
    fn from(s: presence_core::Stats) -> Self {
        Stats {
            topics: s.topics,
            presences: s.presences,
            bytes: s.bytes,
            topics_pending: s.topics_pending,
            polls: s.polls,
            expired: s.expired,
        }
    }
}

#[allow(clippy::wrong_self_convention)]
#[pymethods]
impl Stats {
    fn __repr__(&self) -> String {
        format!(
            "Stats(topics={}, presences={}, bytes={}, topics_pending={}, polls={}, expired={})",
            self.topics, self.presences, self.bytes, self.topics_pending, self.polls, self.expired
        )
    }

    /// `{"topics": ..., "presences": ..., "bytes": ..., "topics_pending": ..., "polls": ...,
    /// "expired": ...}`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("topics", self.topics)?;
        d.set_item("presences", self.presences)?;
        d.set_item("bytes", self.bytes)?;
        d.set_item("topics_pending", self.topics_pending)?;
        d.set_item("polls", self.polls)?;
        d.set_item("expired", self.expired)?;
        Ok(d)
    }
}

/// Counters of a node's replication traffic, from `Engine.cluster_stats()`.
#[pyclass(module = "presence_engine", frozen, eq, hash)]
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClusterStats {
    /// This node's name.
    #[pyo3(get)]
    pub node: String,
    /// This node's incarnation: increasing across restarts.
    #[pyo3(get)]
    pub incarnation: u64,
    /// Other nodes currently live.
    #[pyo3(get)]
    pub nodes: u64,
    /// Messages handed out by cluster_tick() and cluster_leave() (or sent by the Redis link).
    #[pyo3(get)]
    pub messages_sent: u64,
    /// Their bytes.
    #[pyo3(get)]
    pub bytes_sent: u64,
    /// Messages ingested, echoes of this node's own included.
    #[pyo3(get)]
    pub messages_received: u64,
    /// Their bytes.
    #[pyo3(get)]
    pub bytes_received: u64,
    /// Refused: forged, tampered, truncated, or of another secret.
    #[pyo3(get)]
    pub rejected_unauthenticated: u64,
    /// Refused: authentic but undecodable, of the other format, or over a bound.
    #[pyo3(get)]
    pub rejected_malformed: u64,
    /// Refused: larger than max_message_bytes.
    #[pyo3(get)]
    pub rejected_oversized: u64,
    /// Refused: a sequence number or incarnation already seen.
    #[pyo3(get)]
    pub rejected_replayed: u64,
    /// Snapshots sent (the first, periodic, or asked for).
    #[pyo3(get)]
    pub snapshots_sent: u64,
    /// Snapshot requests sent after a gap.
    #[pyo3(get)]
    pub snapshot_requests_sent: u64,
    /// Nodes dropped for silence or after announcing their departure.
    #[pyo3(get)]
    pub nodes_dropped: u64,
    /// Nodes held from before the Redis link went down or stopped answering, kept until
    /// it is back or stale_after_ms has passed; 0 while the link is up.
    #[pyo3(get)]
    pub stale_nodes: u64,
    /// Whether this node can hear the bus: False while its Redis link is connecting, down
    /// or unresponsive; always True for a host's own bus.
    #[pyo3(get)]
    pub link_up: bool,
}

impl From<presence_core::ClusterStats> for ClusterStats {
    fn from(s: presence_core::ClusterStats) -> Self {
        ClusterStats {
            node: s.node,
            incarnation: s.incarnation,
            nodes: s.nodes,
            messages_sent: s.messages_sent,
            bytes_sent: s.bytes_sent,
            messages_received: s.messages_received,
            bytes_received: s.bytes_received,
            rejected_unauthenticated: s.rejected_unauthenticated,
            rejected_malformed: s.rejected_malformed,
            rejected_oversized: s.rejected_oversized,
            rejected_replayed: s.rejected_replayed,
            snapshots_sent: s.snapshots_sent,
            snapshot_requests_sent: s.snapshot_requests_sent,
            nodes_dropped: s.nodes_dropped,
            stale_nodes: s.stale_nodes,
            link_up: s.link_up,
        }
    }
}

impl ClusterStats {
    /// The counters, in declaration order, with their names.
    fn counters(&self) -> [(&'static str, u64); 14] {
        [
            ("incarnation", self.incarnation),
            ("nodes", self.nodes),
            ("messages_sent", self.messages_sent),
            ("bytes_sent", self.bytes_sent),
            ("messages_received", self.messages_received),
            ("bytes_received", self.bytes_received),
            ("rejected_unauthenticated", self.rejected_unauthenticated),
            ("rejected_malformed", self.rejected_malformed),
            ("rejected_oversized", self.rejected_oversized),
            ("rejected_replayed", self.rejected_replayed),
            ("snapshots_sent", self.snapshots_sent),
            ("snapshot_requests_sent", self.snapshot_requests_sent),
            ("nodes_dropped", self.nodes_dropped),
            ("stale_nodes", self.stale_nodes),
        ]
    }
}

#[allow(clippy::wrong_self_convention)]
#[pymethods]
impl ClusterStats {
    /// Every refused message: the sum of the four rejected_* counters.
    #[getter]
    fn rejected(&self) -> u64 {
        self.rejected_unauthenticated
            + self.rejected_malformed
            + self.rejected_oversized
            + self.rejected_replayed
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let node = PyString::new(py, &self.node).repr()?;
        let mut out = format!("ClusterStats(node={node}");
        for (name, value) in self.counters() {
            let _ = write!(out, ", {name}={value}");
        }
        let _ = write!(
            out,
            ", link_up={}",
            if self.link_up { "True" } else { "False" }
        );
        out.push(')');
        Ok(out)
    }

    /// Every field as a dict: `{"node": ..., "incarnation": ..., ...}`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("node", &self.node)?;
        for (name, value) in self.counters() {
            d.set_item(name, value)?;
        }
        d.set_item("link_up", self.link_up)?;
        Ok(d)
    }
}
