#![no_main]

#[path = "../harness/cluster.rs"]
mod cluster;
#[path = "../harness/input.rs"]
mod input;

libfuzzer_sys::fuzz_target!(|data: &[u8]| cluster::run(data));
