//! Cluster-mode arguments: the replication messages (`bytes`, `bytearray` or
//! `memoryview`). The `cluster=` setting is read with the others, in settings.rs.

use crate::convert::type_name;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView};
use std::borrow::Cow;

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
