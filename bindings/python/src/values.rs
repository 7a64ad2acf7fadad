//! Small immutable values: `Counts` and `Stats`.

use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyIterator, PyTuple, PyType};

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

impl From<presence::Counts> for Counts {
    fn from(c: presence::Counts) -> Self {
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

    fn __repr__(&self) -> String {
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
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
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
}

impl From<presence::Stats> for Stats {
    fn from(s: presence::Stats) -> Self {
        Stats {
            topics: s.topics,
            presences: s.presences,
            bytes: s.bytes,
            topics_pending: s.topics_pending,
        }
    }
}

#[allow(clippy::wrong_self_convention)]
#[pymethods]
impl Stats {
    fn __repr__(&self) -> String {
        format!(
            "Stats(topics={}, presences={}, bytes={}, topics_pending={})",
            self.topics, self.presences, self.bytes, self.topics_pending
        )
    }

    /// `{"topics": ..., "presences": ..., "bytes": ..., "topics_pending": ...}`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("topics", self.topics)?;
        d.set_item("presences", self.presences)?;
        d.set_item("bytes", self.bytes)?;
        d.set_item("topics_pending", self.topics_pending)?;
        Ok(d)
    }
}
