//! The C ABI of presence-engine: the library C programs link (`libpresence.a`,
//! `libpresence.so`) and whose header, `include/presence.h`, cbindgen generates from this
//! crate. Everything here is a thin translation over the core (`presence_core`): check
//! pointers and UTF-8, call the core, map errors to a status. The conventions (after rustls-ffi) are in the README:
//! a status from every fallible call, out-parameters written only on success, library
//! buffers freed by the library, a per-thread last error, and no panic across the boundary.
//!
//! The exported functions' doc comments are copied into the header, which is the manual
//! for C, C++ and FFI users. Every function has the same safety contract, stated once in
//! the header's preamble rather than in a `# Safety` section each: pointer arguments are
//! NULL or valid for the access the doc describes, strings are NUL-terminated, and an
//! engine handle is live.
#![allow(clippy::missing_safety_doc)]

// cbindgen declares the functions in the header in the order of these modules, which is
// the manual's order; the blank lines keep rustfmt from sorting them.
mod lifecycle;

mod presences;

mod ttl;

mod reads;

mod polls;

mod messages;

mod monitoring;

mod cluster;

mod library;

mod guard;
mod types;

pub use cluster::*;
pub use library::*;
pub use lifecycle::*;
pub use messages::*;
pub use monitoring::*;
pub use polls::*;
pub use presences::*;
pub use reads::*;
pub use ttl::*;
pub use types::*;
