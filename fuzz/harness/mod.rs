//! The fuzz targets' harnesses, shared with `tests/regressions.rs`, which replays the
//! seed corpus and every minimised crash through them on the stable toolchain.
#![allow(dead_code)]

pub mod cluster;
pub mod input;
pub mod ops;
pub mod parse;
