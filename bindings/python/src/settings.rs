//! The `Engine(**settings)` keywords, passed to the core's config parser as JSON.
//!
//! The fields, their defaults and their value checks are the core's (`presence_core::Config`);
//! this binding knows only Python's side of them: a keyword the core does not know, or a
//! value of the wrong Python type, is a TypeError (the type is that of the field's
//! default), and the `cluster=` mapping follows the same rules one level down.

use crate::convert::{self, type_name};
use crate::errors;
use presence_core::{Config, ErrorKind};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyInt, PyMapping, PyString, PyType};
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// Every field with its default, from the core.
fn defaults() -> &'static Map<String, Value> {
    static DEFAULTS: OnceLock<Map<String, Value>> = OnceLock::new();
    DEFAULTS.get_or_init(|| {
        serde_json::from_str(&Config::defaults_json()).expect("the core's defaults are JSON")
    })
}

/// The fields of the `cluster` object, with their defaults.
fn cluster_defaults() -> &'static Map<String, Value> {
    match defaults().get("cluster") {
        Some(Value::Object(fields)) => fields,
        _ => unreachable!("the core's defaults hold the cluster fields"),
    }
}

fn config_error(py: Python<'_>, message: &str) -> PyErr {
    errors::error(py, ErrorKind::InvalidConfig, message)
}

/// `collections.abc.Mapping`, looked up once.
fn mapping_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    static MAPPING: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    MAPPING.import(py, "collections.abc", "Mapping")
}

/// A Python value as the JSON value of a field whose default is `default`. `what` names
/// it in messages.
fn value(default: &Value, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Value> {
    match default {
        Value::String(_) => Ok(Value::String(convert::text(obj, what)?.to_owned())),
        Value::Number(_) => {
            // A bool is an int in Python, but surely a mistake here.
            if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
                return Err(PyTypeError::new_err(format!(
                    "{what} must be an int, not {}",
                    type_name(obj)
                )));
            }
            if let Ok(n) = obj.extract::<i64>() {
                return Ok(Value::from(n));
            }
            if let Ok(n) = obj.extract::<u64>() {
                return Ok(Value::from(n));
            }
            // Beyond 64 bits: as JSON reads it (a float), for the core to refuse.
            let text = obj.str()?;
            Ok(serde_json::from_str(text.to_str()?).unwrap_or(Value::Null))
        }
        _ => unreachable!("config fields are strings, numbers or the cluster object"),
    }
}

/// A mapping as a dict (a dict as it is).
fn as_dict<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyDict>>> {
    if let Ok(d) = obj.cast::<PyDict>() {
        return Ok(Some(d.clone()));
    }
    if obj.is_instance(mapping_type(obj.py())?)? {
        let d = PyDict::new(obj.py());
        d.update(obj.cast::<PyMapping>()?)?;
        return Ok(Some(d));
    }
    Ok(None)
}

/// The `cluster=` setting: a mapping with the keys `node` and `secret` (str, required:
/// they have no default) and the optional ints (None or absent: the core's default).
fn cluster(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let Some(dict) = as_dict(obj)? else {
        return Err(PyTypeError::new_err(format!(
            "cluster must be a mapping (a dict) or None, not {}",
            type_name(obj)
        )));
    };
    let fields = cluster_defaults();
    let mut json = Map::new();
    for (key, v) in dict.iter() {
        let name = convert::text(&key, "a cluster key")?;
        let Some(default) = fields.get(name) else {
            let known: Vec<&str> = fields.keys().map(String::as_str).collect();
            return Err(config_error(
                py,
                &format!(
                    "unknown cluster setting {name:?}; known: {}",
                    known.join(", ")
                ),
            ));
        };
        if v.is_none() && default.is_number() {
            continue; // the default
        }
        json.insert(
            name.to_owned(),
            value(default, &v, &format!("cluster[{name:?}]"))?,
        );
    }
    // The fields without a default (shown as empty strings by the core) must be given.
    for (name, default) in fields {
        if default.as_str() == Some("") && !json.contains_key(name) {
            return Err(config_error(
                py,
                &format!("cluster.{name} is missing: it must be a str"),
            ));
        }
    }
    Ok(Value::Object(json))
}

/// The keyword arguments of `Engine()` as the core's config JSON.
pub fn config_json(py: Python<'_>, settings: Option<&Bound<'_, PyDict>>) -> PyResult<String> {
    let mut json = Map::new();
    let Some(settings) = settings else {
        return Ok("{}".to_owned());
    };
    for (key, v) in settings.iter() {
        let name = key.cast::<PyString>()?.to_str()?;
        let Some(default) = defaults().get(name) else {
            return Err(PyTypeError::new_err(format!(
                "Engine() got an unexpected keyword argument {name:?}"
            )));
        };
        let field = if name == "cluster" {
            if v.is_none() {
                continue;
            }
            cluster(py, &v)?
        } else {
            value(default, &v, name)?
        };
        json.insert(name.to_owned(), field);
    }
    Ok(Value::Object(json).to_string())
}

/// The settings in force, as the dict of the `config` property: every field, `cluster`
/// None or its fields without `secret`.
pub fn config_dict<'py>(py: Python<'py>, config: &Config) -> PyResult<Bound<'py, PyDict>> {
    let loaded = crate::ready::json_loads(py, &config.to_json(false))?;
    Ok(loaded.cast_into::<PyDict>()?)
}
