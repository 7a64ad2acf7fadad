//! Python bindings of the presence engine, over the core's Rust API (not the C ABI).
//!
//! The native module is `presence_engine._native`; the package `presence_engine` adds a
//! thin Python layer (the asyncio helper) and the type stubs that document the API.

mod cluster;
mod convert;
mod engine;
mod errors;
mod ready;
mod settings;
mod values;

use pyo3::prelude::*;

/// Native part of presence_engine: use the `presence_engine` package instead.
#[pymodule(gil_used = false)]
mod _native {
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::engine::PyEngine;
    #[pymodule_export]
    use crate::ready::{Batch, Diff};
    #[pymodule_export]
    use crate::values::{ClusterStats, Counts, Stats};

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        super::add_exceptions(m)?;
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("CORE_VERSION", presence_core::VERSION)?;
        Ok(())
    }
}

fn add_exceptions(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let ex = errors::exceptions(py)?;
    m.add("PresenceError", ex.base.clone_ref(py))?;
    m.add("EngineClosedError", ex.closed.clone_ref(py))?;
    for (name, class) in &ex.classes {
        m.add(*name, class.clone_ref(py))?;
    }
    Ok(())
}
