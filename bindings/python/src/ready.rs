//! The host's fast path: `Diff`, one changed topic of `Engine.poll()`. The core renders
//! the payloads and the messages; this module makes only the strings a host sends (the
//! topic and the message) at poll time, the payload's text when it is read, and Python
//! objects of the payload only when `payload` is read.

use crate::values::Counts;
use presence::{DiffBatch, Envelope, TopicDiff, DIFF_EVENT};
use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString};
use std::sync::Arc;

/// The envelope named by Python arguments: None (payloads only), "event" or "phoenix",
/// and a join_ref that only "phoenix" has a place for.
pub fn envelope(envelope: Option<&str>, join_ref: Option<&str>) -> PyResult<Option<Envelope>> {
    match (envelope, join_ref) {
        (Some("phoenix"), r) => Ok(Some(Envelope::PhoenixV2 {
            join_ref: r.map(str::to_owned),
        })),
        (Some("event"), None) => Ok(Some(Envelope::Event)),
        (None, None) => Ok(None),
        (Some("event") | None, Some(_)) => Err(PyValueError::new_err(
            "join_ref is only for envelope=\"phoenix\"",
        )),
        (Some(other), _) => Err(PyValueError::new_err(format!(
            "envelope must be \"event\", \"phoenix\" or None, got {other:?}"
        ))),
    }
}

/// One changed topic of a poll: what to send to the topic's clients.
///
/// `topic` and `message` are plain attributes (member descriptors, read without a call
/// into Rust): they are what a host reads for every topic.
#[pyclass(module = "presence_engine", name = "Diff", frozen)]
pub struct Diff {
    /// The topic name.
    #[pyo3(get)]
    topic: Py<PyString>,
    /// The whole message in the poll's envelope, or None for a poll without one.
    #[pyo3(get)]
    message: Py<PyAny>,
    batch: Arc<DiffBatch>,
    index: usize,
    payload: PyOnceLock<Py<PyAny>>,
}

impl Diff {
    /// The diffs of a batch, in poll order, each message rendered in `envelope`.
    pub fn list<'py>(
        py: Python<'py>,
        batch: DiffBatch,
        envelope: Option<&Envelope>,
    ) -> PyResult<Bound<'py, PyList>> {
        let batch = Arc::new(batch);
        let mut scratch = String::new();
        let mut diffs = Vec::with_capacity(batch.len());
        for (index, d) in batch.iter().enumerate() {
            let message = match envelope {
                Some(env) => {
                    scratch.clear();
                    env.write(&mut scratch, DIFF_EVENT, d.topic, d.seq, d.payload);
                    PyString::new(py, &scratch).into_any().unbind()
                }
                None => py.None(),
            };
            let diff = Diff {
                topic: PyString::new(py, d.topic).unbind(),
                message,
                batch: Arc::clone(&batch),
                index,
                payload: PyOnceLock::new(),
            };
            diffs.push(Bound::new(py, diff)?);
        }
        PyList::new(py, diffs)
    }

    fn view(&self) -> TopicDiff<'_> {
        self.batch
            .get(self.index)
            .expect("an index of its own batch")
    }
}

// `to_dict` takes `&self`: pyo3 methods cannot take `self` by value.
#[allow(clippy::wrong_self_convention)]
#[pymethods]
impl Diff {
    /// The topic's sequence number.
    #[getter]
    fn seq(&self) -> u64 {
        self.view().seq
    }

    /// The topic's live counts after this diff.
    #[getter]
    fn counts(&self) -> Counts {
        self.view().counts.into()
    }

    /// "occupied" or "vacated" when the topic went from empty to not empty (or back)
    /// since the last poll, else None.
    #[getter]
    fn occupancy(&self) -> Option<&'static str> {
        self.view().occupancy.name()
    }

    /// The presence_diff payload as JSON text.
    #[getter]
    fn payload_json<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, self.view().payload)
    }

    /// The payload as Python objects, decoded on first read and kept.
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let decoded = self.payload.get_or_try_init(py, || {
            Ok::<_, PyErr>(json_loads(py, self.view().payload)?.unbind())
        })?;
        Ok(decoded.bind(py).clone())
    }

    /// `d["topic"]`, `d["seq"]`, `d["counts"]` (a dict) and `d["payload"]`: the keys of a
    /// `poll_diff()` dict, for code written against it.
    fn __getitem__<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        match key {
            "topic" => Ok(self.topic.bind(py).clone().into_any()),
            "seq" => Ok(self.seq().into_pyobject(py)?.into_any()),
            "counts" => Ok(self.counts().to_dict(py)?.into_any()),
            "payload" => self.payload(py),
            // As in the poll_diff() dict, where the key is there on a change only.
            "occupancy" => match self.occupancy() {
                Some(name) => Ok(PyString::new(py, name).into_any()),
                None => Err(PyKeyError::new_err("occupancy")),
            },
            other => Err(PyKeyError::new_err(other.to_owned())),
        }
    }

    /// The `poll_diff()` dict of this topic: {"topic", "seq", "counts", "payload"}.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for key in ["topic", "seq", "counts", "payload"] {
            d.set_item(key, self.__getitem__(py, key)?)?;
        }
        if let Some(name) = self.occupancy() {
            d.set_item("occupancy", name)?;
        }
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let v = self.view();
        Ok(format!(
            "Diff(topic={}, seq={}, counts={})",
            self.topic.bind(py).repr()?,
            v.seq,
            Counts::from(v.counts).__repr__()
        ))
    }
}

/// `json.loads`, looked up once.
pub fn json_loads<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    static LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let loads = LOADS.get_or_try_init(py, || {
        py.import("json")
            .and_then(|m| m.getattr("loads"))
            .map(Bound::unbind)
    })?;
    loads.bind(py).call1((text,))
}
