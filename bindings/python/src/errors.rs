//! The exception hierarchy and the mapping of the core's error kinds onto it.
//!
//! The classes are built once at import with `type(name, bases, namespace)` so that the
//! input errors can also be `ValueError`s (and the resource error an `OSError`), which a
//! single-base `create_exception!` cannot express. Every instance carries the engine's
//! message as its only argument and a `kind` attribute naming the core's error kind.

use presence_core::{ErrorKind, ERROR_CLASSES};
use pyo3::exceptions::{PyException, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

/// The exception classes, created at import: the base, `EngineClosedError` (of this
/// binding alone) and one class per entry of the core's `ERROR_CLASSES`.
pub struct Exceptions {
    pub base: Py<PyType>,
    pub closed: Py<PyType>,
    /// By name, in the order of `ERROR_CLASSES`.
    pub classes: Vec<(&'static str, Py<PyType>)>,
}

static EXCEPTIONS: PyOnceLock<Exceptions> = PyOnceLock::new();

/// The Python built-in a class also extends, so that `except ValueError` (or `OSError`)
/// catches it: a Python convention, hence kept here rather than in the core's table.
fn builtin_base<'py>(py: Python<'py>, class: &str) -> Option<Bound<'py, PyType>> {
    match class {
        "InvalidInputError" | "ConfigError" => Some(py.get_type::<PyValueError>()),
        "ResourceError" => Some(py.get_type::<PyOSError>()),
        _ => None,
    }
}

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
    let base = class(
        py,
        "PresenceError",
        "Base class of every error the presence engine raises.",
        &[&exception],
    )?;
    let closed = class(
        py,
        "EngineClosedError",
        "The engine was closed; no call but close() is allowed any more.",
        &[base.bind(py)],
    )?;
    let mut classes: Vec<(&'static str, Py<PyType>)> = Vec::new();
    for c in ERROR_CLASSES {
        // A subclass extends its parent only: the parent brings the base and built-in.
        let made = match c.parent {
            Some(parent) => {
                let parent = classes
                    .iter()
                    .find(|(name, _)| *name == parent)
                    .map(|(_, ty)| ty.bind(py).clone())
                    .expect("the core lists a parent before its children");
                class(py, c.name, c.doc, &[&parent])?
            }
            None => match builtin_base(py, c.name) {
                Some(builtin) => class(py, c.name, c.doc, &[base.bind(py), &builtin])?,
                None => class(py, c.name, c.doc, &[base.bind(py)])?,
            },
        };
        classes.push((c.name, made));
    }
    Ok(Exceptions {
        base,
        closed,
        classes,
    })
}

/// The classes, creating them on first use (the module's init does it at import).
pub fn exceptions(py: Python<'_>) -> PyResult<&Exceptions> {
    EXCEPTIONS.get_or_try_init(py, || create(py))
}

/// The `kind` attribute value of a core error kind: its status name in lower case
/// (`InvalidUtf8` gives `"invalid_utf8"`).
pub fn kind_name(kind: ErrorKind) -> String {
    kind.name().to_ascii_lowercase()
}

/// The class of a core error kind, as the core's table names it.
fn class_of(ex: &Exceptions, kind: ErrorKind) -> &Py<PyType> {
    ex.classes
        .iter()
        .find(|(name, _)| *name == kind.class())
        .map_or(&ex.base, |(_, ty)| ty)
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
pub fn engine_error(py: Python<'_>, err: &presence_core::Error) -> PyErr {
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
pub fn item_error(py: Python<'_>, err: &presence_core::Error, index: usize) -> PyErr {
    let message = format!("item {index}: {}", err.message());
    at_index(py, error(py, err.kind(), &message), index)
}
