//! The C ABI of presence-engine: the library C programs link (`libpresence.a`,
//! `libpresence.so`) and whose header, `include/presence.h`, cbindgen generates from this
//! crate. Everything here is a thin translation over the core (`presence_core`): check
//! pointers and UTF-8, call the core, map errors to a status. The conventions (after rustls-ffi) are in the README:
//! a status from every fallible call, out-parameters written only on success, library
//! buffers freed by the library, a per-thread last error, and no panic across the boundary.

mod api;
mod guard;
mod ttl;
mod types;

pub use api::*;
pub use ttl::*;
pub use types::*;
