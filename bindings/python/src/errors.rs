//! The exception hierarchy and the mapping of the core's error kinds onto it.
//!
//! The classes are built once at import with `type(name, bases, namespace)` so that the
//! input errors can also be `ValueError`s (and the resource error an `OSError`), which a
//! single-base `create_exception!` cannot express. Every instance carries the engine's
//! message as its only argument and a `kind` attribute naming the core's error kind.

use presence::ErrorKind;
use pyo3::exceptions::{PyException, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

/// The exception classes, created at import.
pub struct Exceptions {
    pub base: Py<PyType>,
    pub already_tracked: Py<PyType>,
    pub not_tracked: Py<PyType>,
    pub limit_reached: Py<PyType>,
    pub invalid_input: Py<PyType>,
    pub config: Py<PyType>,
    pub closed: Py<PyType>,
    pub resource: Py<PyType>,
    pub no_cluster: Py<PyType>,
    pub rejected: Py<PyType>,
}

static EXCEPTIONS: PyOnceLock<Exceptions> = PyOnceLock::new();

fn class(
    py: Python<'_>,
    name: &str,
    doc: &str,
    bases: &[&Bound<'_, PyType>],
) -> PyResult<Py<PyType>> {
    let namespace = PyDict::new(py);
    namespace.set_item("__module__", "presence_engine")?;
    namespace.set_item("__doc__", doc)?;
    let bases = PyTuple::new(py, bases)?;
    let made = py
        .get_type::<PyType>()
        .call1((name, bases, namespace))?
        .cast_into::<PyType>()?;
    Ok(made.unbind())
}

fn create(py: Python<'_>) -> PyResult<Exceptions> {
    let exception = py.get_type::<PyException>();
    let value_error = py.get_type::<PyValueError>();
    let os_error = py.get_type::<PyOSError>();
    let base = class(
        py,
        "PresenceError",
        "Base class of every error the presence engine raises.",
        &[&exception],
    )?;
    let b = base.bind(py);
    Ok(Exceptions {
        already_tracked: class(
            py,
            "AlreadyTrackedError",
            "The (topic, conn) pair is tracked already.",
            &[b],
        )?,
        not_tracked: class(
            py,
            "NotTrackedError",
            "The (topic, conn) pair is not tracked.",
            &[b],
        )?,
        limit_reached: class(
            py,
            "LimitReachedError",
            "The engine's max_topics or max_presences is reached.",
            &[b],
        )?,
        invalid_input: class(
            py,
            "InvalidInputError",
            "An argument the engine rejects: a meta that is not a JSON object, a topic, key \
             or meta over its byte limit, an empty topic or key, or a string that is not \
             valid UTF-8.",
            &[b, &value_error],
        )?,
        config: class(
            py,
            "ConfigError",
            "An engine setting is out of range or unknown.",
            &[b, &value_error],
        )?,
        closed: class(
            py,
            "EngineClosedError",
            "The engine was closed; no call but close() is allowed any more.",
            &[b],
        )?,
        resource: class(
            py,
            "ResourceError",
            "The operating system refused a resource (the wake-up descriptor, or the Redis \
             link's thread).",
            &[b, &os_error],
        )?,
        no_cluster: class(
            py,
            "NoClusterError",
            "A cluster call on an engine created without the cluster setting.",
            &[b],
        )?,
        rejected: class(
            py,
            "RejectedError",
            "A replication message was refused (unauthenticated, malformed, oversized or \
             replayed); nothing of it was merged, and cluster_stats() counts it.",
            &[b],
        )?,
        base,
    })
}

/// The classes, creating them on first use (the module's init does it at import).
pub fn exceptions(py: Python<'_>) -> PyResult<&Exceptions> {
    EXCEPTIONS.get_or_try_init(py, || create(py))
}

/// The `kind` attribute value of a core error kind: its name in snake case
/// (`InvalidUtf8` gives `"invalid_utf8"`).
pub fn kind_name(kind: ErrorKind) -> String {
    let mut name = String::new();
    for (i, c) in format!("{kind:?}").chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                name.push('_');
            }
            name.push(c.to_ascii_lowercase());
        } else {
            name.push(c);
        }
    }
    name
}

/// The class of a core error kind. Kinds this binding does not know of yet (the core may
/// add some) get the base class; their `kind` attribute still names them.
fn class_of(ex: &Exceptions, kind: ErrorKind) -> &Py<PyType> {
    use ErrorKind::*;
    if matches!(kind, InvalidUtf8 | InvalidMeta | InvalidArgument | TooLong) {
        &ex.invalid_input
    } else if kind == InvalidConfig {
        &ex.config
    } else if kind == AlreadyTracked {
        &ex.already_tracked
    } else if kind == NotTracked {
        &ex.not_tracked
    } else if kind == LimitReached {
        &ex.limit_reached
    } else if kind == Io {
        &ex.resource
    } else if kind == NoCluster {
        &ex.no_cluster
    } else if kind == Rejected {
        &ex.rejected
    } else {
        &ex.base
    }
}

fn instance(py: Python<'_>, ty: &Py<PyType>, kind: &str, message: &str) -> PyResult<PyErr> {
    let value = ty.bind(py).call1((message,))?;
    value.setattr("kind", kind)?;
    Ok(PyErr::from_value(value))
}

/// An exception of the class for `kind`, with `message`.
pub fn error(py: Python<'_>, kind: ErrorKind, message: &str) -> PyErr {
    exceptions(py)
        .and_then(|ex| instance(py, class_of(ex, kind), &kind_name(kind), message))
        .unwrap_or_else(|e| e)
}

/// The exception for an error of the core.
pub fn engine_error(py: Python<'_>, err: &presence::Error) -> PyErr {
    error(py, err.kind(), err.message())
}

/// `EngineClosedError`.
pub fn closed(py: Python<'_>) -> PyErr {
    exceptions(py)
        .and_then(|ex| instance(py, &ex.closed, "closed", "the engine is closed"))
        .unwrap_or_else(|e| e)
}

/// Marks an error raised for item `index` of a bulk call: sets its `index` attribute.
pub fn at_index(py: Python<'_>, err: PyErr, index: usize) -> PyErr {
    match err.value(py).setattr("index", index) {
        Ok(()) => err,
        Err(e) => e,
    }
}

/// The exception for a core error on item `index` of a bulk call: the message is
/// prefixed with `item N: ` and the instance has an `index` attribute.
pub fn item_error(py: Python<'_>, err: &presence::Error, index: usize) -> PyErr {
    let message = format!("item {index}: {}", err.message());
    at_index(py, error(py, err.kind(), &message), index)
}
