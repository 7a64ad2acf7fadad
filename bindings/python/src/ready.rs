//! The host's fast path: `Batch`, what `Engine.poll()` returns, one poll's changes; and
//! `Diff`, one changed topic of it. The core renders each topic's message (the envelope
//! around its payload) as the poll takes the topic, into one text. A host that reads
//! `Batch.topics` and `Batch.messages` gets two tuples of strings, each copied out of that
//! text, and no object per topic; `Diff`s are made only when the batch is indexed or
//! iterated, and each decodes its payload to Python objects only when `payload` is read.

use crate::values::Counts;
use presence_core::{Envelope, ReadyBatch, ReadyDiff};
use pyo3::exceptions::{PyIndexError, PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PySlice, PyString, PyTuple};
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

/// One poll's changes, in poll order: a read-only sequence of `Diff`.
///
/// The tuples `topics` and `messages` are made on their first read and kept: a host that
/// sends each message to its topic's sockets reads only those, and no object is made per
/// topic beyond the two strings.
#[pyclass(module = "presence_engine", name = "Batch", frozen, sequence)]
pub struct Batch {
    diffs: Arc<ReadyBatch>,
    topics: PyOnceLock<Py<PyTuple>>,
    messages: PyOnceLock<Py<PyTuple>>,
}

impl Batch {
    pub fn new(diffs: ReadyBatch) -> Batch {
        Batch {
            diffs: Arc::new(diffs),
            topics: PyOnceLock::new(),
            messages: PyOnceLock::new(),
        }
    }

    /// The message of `d` in the batch's envelope; without an envelope, its payload.
    fn message<'py>(py: Python<'py>, d: &ReadyDiff<'_>) -> Bound<'py, PyString> {
        PyString::new(py, d.message.unwrap_or(d.payload))
    }

    fn diff(&self, py: Python<'_>, index: usize) -> Diff {
        let d = self.diffs.get(index).expect("an index below the length");
        Diff {
            topic: PyString::new(py, d.topic).unbind(),
            message: match d.message {
                Some(m) => PyString::new(py, m).into_any().unbind(),
                None => py.None(),
            },
            batch: Arc::clone(&self.diffs),
            index,
            payload: PyOnceLock::new(),
        }
    }
}

#[pymethods]
impl Batch {
    fn __len__(&self) -> usize {
        self.diffs.len()
    }

    /// `batch[i]` (negative counts from the end) is a new `Diff`; `batch[a:b:c]` a list of them.
    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let len = self.diffs.len();
        if let Ok(slice) = index.cast::<PySlice>() {
            let s = slice.indices(isize::try_from(len).unwrap_or(isize::MAX))?;
            let mut diffs = Vec::with_capacity(s.slicelength);
            let mut i = s.start;
            for _ in 0..s.slicelength {
                // `indices` keeps every position of the slice within 0..len.
                diffs.push(Bound::new(py, self.diff(py, i as usize))?);
                i += s.step;
            }
            return Ok(PyList::new(py, diffs)?.into_any());
        }
        let Ok(i) = index.extract::<isize>() else {
            return Err(PyTypeError::new_err(format!(
                "Batch indices must be integers or slices, not {}",
                crate::convert::type_name(index)
            )));
        };
        let i = if i < 0 {
            i.checked_add_unsigned(len)
        } else {
            Some(i)
        };
        match i.and_then(|i| usize::try_from(i).ok()).filter(|&i| i < len) {
            Some(i) => Ok(Bound::new(py, self.diff(py, i))?.into_any()),
            None => Err(PyIndexError::new_err("Batch index out of range")),
        }
    }

    fn __iter__(slf: Bound<'_, Self>) -> BatchIter {
        BatchIter {
            batch: slf.unbind(),
            next: 0,
        }
    }

    /// Each changed topic's name, in poll order.
    #[getter]
    fn topics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let topics = self.topics.get_or_try_init(py, || {
            PyTuple::new(py, self.diffs.iter().map(|d| PyString::new(py, d.topic)))
                .map(Bound::unbind)
        })?;
        Ok(topics.bind(py).clone())
    }

    /// Each changed topic's whole message in the poll's envelope, in poll order; without
    /// an envelope, each payload's JSON text (what is sent then).
    #[getter]
    fn messages<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let messages = self.messages.get_or_try_init(py, || {
            PyTuple::new(py, self.diffs.iter().map(|d| Self::message(py, &d))).map(Bound::unbind)
        })?;
        Ok(messages.bind(py).clone())
    }

    /// `(topic, message)` of each changed topic, in poll order: the pairs of
    /// `zip(batch.topics, batch.messages)`, each made when the iteration reaches it. A host
    /// that sends each message as it goes holds one pair at a time instead of the batch's
    /// every string, which keeps the interpreter's memory warm.
    fn pairs(&self) -> PairIter {
        PairIter {
            batch: Arc::clone(&self.diffs),
            next: 0,
        }
    }

    fn __repr__(&self) -> String {
        match self.diffs.len() {
            1 => "Batch(1 topic)".to_owned(),
            n => format!("Batch({n} topics)"),
        }
    }
}

/// The iterator of a `Batch`: one new `Diff` per step.
#[pyclass(module = "presence_engine")]
pub struct BatchIter {
    batch: Py<Batch>,
    next: usize,
}

#[pymethods]
impl BatchIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> Option<Diff> {
        let batch = self.batch.get();
        if self.next == batch.diffs.len() {
            return None;
        }
        self.next += 1;
        Some(batch.diff(py, self.next - 1))
    }
}

/// The iterator of `Batch.pairs()`.
#[pyclass(module = "presence_engine")]
pub struct PairIter {
    batch: Arc<ReadyBatch>,
    next: usize,
}

#[pymethods]
impl PairIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(
        &mut self,
        py: Python<'py>,
    ) -> Option<(Bound<'py, PyString>, Bound<'py, PyString>)> {
        let d = self.batch.get(self.next)?;
        self.next += 1;
        Some((PyString::new(py, d.topic), Batch::message(py, &d)))
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
    batch: Arc<ReadyBatch>,
    index: usize,
    payload: PyOnceLock<Py<PyAny>>,
}

impl Diff {
    fn view(&self) -> ReadyDiff<'_> {
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
