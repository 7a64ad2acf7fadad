#![no_main]

#[path = "../harness/input.rs"]
mod input;
#[path = "../harness/parse.rs"]
mod parse;

libfuzzer_sys::fuzz_target!(|data: &[u8]| parse::run(data));
