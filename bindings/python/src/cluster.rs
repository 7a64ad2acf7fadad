//! Cluster-mode arguments: the `cluster=` setting (a mapping with snake_case keys) and
//! the replication messages (`bytes`, `bytearray` or `memoryview`).

use crate::convert::{self, type_name};
use crate::errors;
use presence::{ClusterConfig, ErrorKind, CLUSTER_FIELDS};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyMapping, PyMemoryView, PyType};
use std::borrow::Cow;

fn config_error(py: Python<'_>, message: &str) -> PyErr {
    errors::error(py, ErrorKind::InvalidConfig, message)
}

/// A positive int option; `name` is its key, without the `cluster.` prefix.
fn positive(py: Python<'_>, name: &str, value: &Bound<'_, PyAny>) -> PyResult<u64> {
    if value.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "cluster[{name:?}] must be an int, not bool"
        )));
    }
    let n: i128 = value.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "cluster[{name:?}] must be an int, not {}",
            type_name(value)
        ))
    })?;
    u64::try_from(n)
        .ok()
        .filter(|n| *n >= 1 && usize::try_from(*n).is_ok())
        .ok_or_else(|| {
            config_error(
                py,
                &format!("cluster.{name} must be a positive integer, got {n}"),
            )
        })
}

/// `collections.abc.Mapping`, looked up once.
fn mapping_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    static MAPPING: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    MAPPING.import(py, "collections.abc", "Mapping")
}

/// The `cluster=` setting: None for a single node, or a mapping with the keys `node` and
/// `secret` (str, required) and the optional ints of `ClusterConfig` (None or absent: the
/// core's default). An unknown key is a ConfigError, a value of the wrong type a TypeError;
/// the core checks the values afterwards (secret length, timers).
pub fn config(py: Python<'_>, obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<ClusterConfig>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let dict = if let Ok(d) = obj.cast::<PyDict>() {
        d.clone()
    } else if obj.is_instance(mapping_type(py)?)? {
        let d = PyDict::new(py);
        d.update(obj.cast::<PyMapping>()?)?;
        d
    } else {
        return Err(PyTypeError::new_err(format!(
            "cluster must be a mapping (a dict) or None, not {}",
            type_name(obj)
        )));
    };
    let required = |name: &str| -> PyResult<String> {
        match dict.get_item(name)? {
            None => Err(config_error(
                py,
                &format!("cluster.{name} is missing: it must be a str"),
            )),
            Some(v) => convert::text(&v, &format!("cluster[{name:?}]")).map(str::to_owned),
        }
    };
    let mut c = ClusterConfig::new(required("node")?, required("secret")?);
    for (key, value) in dict.iter() {
        let name = convert::text(&key, "a cluster key")?;
        if name == "node" || name == "secret" {
            continue;
        }
        if !CLUSTER_FIELDS.contains(&name) {
            return Err(config_error(
                py,
                &format!(
                    "unknown cluster setting {name:?}; known: {}",
                    CLUSTER_FIELDS.join(", ")
                ),
            ));
        }
        if value.is_none() {
            continue; // the default
        }
        let n = positive(py, name, &value)?;
        match name {
            "tick_ms" => c.tick_ms = n,
            "down_after_ms" => c.down_after_ms = n,
            "stale_after_ms" => c.stale_after_ms = n,
            "snapshot_interval_ms" => c.snapshot_interval_ms = n,
            // positive() checked that it fits a usize.
            "max_message_bytes" => c.max_message_bytes = n as usize,
            "max_nodes" => c.max_nodes = n as usize,
            other => {
                // A field the core added that this binding does not know the type of.
                return Err(config_error(
                    py,
                    &format!("cluster setting {other:?} is not supported by this binding"),
                ));
            }
        }
    }
    Ok(Some(c))
}

/// The settings in force, as the dict of the `config` property: every key but `secret`.
pub fn config_dict<'py>(py: Python<'py>, c: &ClusterConfig) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("node", &c.node)?;
    d.set_item("tick_ms", c.tick_ms)?;
    d.set_item("down_after_ms", c.down_after_ms)?;
    d.set_item("stale_after_ms", c.stale_after_ms)?;
    d.set_item("snapshot_interval_ms", c.snapshot_interval_ms)?;
    d.set_item("max_message_bytes", c.max_message_bytes)?;
    d.set_item("max_nodes", c.max_nodes)?;
    Ok(d)
}

/// A replication message: borrowed from a `bytes`, copied from a `bytearray` (which other
/// threads may resize while the engine reads it) or a `memoryview`.
pub fn message<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Cow::Borrowed(b.as_bytes()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Cow::Owned(b.to_vec()));
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let bytes = obj.call_method0("tobytes")?;
        let bytes = bytes.cast::<PyBytes>()?;
        return Ok(Cow::Owned(bytes.as_bytes().to_vec()));
    }
    Err(PyTypeError::new_err(format!(
        "message must be bytes, bytearray or memoryview, not {}",
        type_name(obj)
    )))
}
