#![no_main]

#[path = "../harness/input.rs"]
mod input;
#[path = "../harness/ops.rs"]
mod ops;

libfuzzer_sys::fuzz_target!(|data: &[u8]| ops::run(data));
