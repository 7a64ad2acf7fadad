//! The fuzz targets' inputs, replayed on stable through the targets' own harnesses
//! (fuzz/harness/): the committed seeds of each target and every minimised crash in
//! fuzz/regressions/<target>/. A crash found by `make fuzz` is fixed, minimised
//! (`make fuzz-tmin`) and committed there, so it stays fixed.

#[path = "../fuzz/harness/mod.rs"]
mod harness;

use std::path::{Path, PathBuf};

/// Every file under fuzz/<dir>/<target>/, sorted; at least one for the seeds.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for p in paths {
            let data = std::fs::read(&p).unwrap();
            out.push((p, data));
        }
    }
    assert!(!out.is_empty(), "fuzz/seeds/{target} has inputs");
    out
}

fn replay(target: &str, run: fn(&[u8])) {
    for (path, data) in inputs(target) {
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{} fails", path.display());
    }
}

#[test]
fn operation_sequences_through_the_c_abi_match_the_model() {
    replay("ops", harness::ops::run);
}

#[test]
fn config_and_meta_parsing_follow_the_rules() {
    replay("parse", harness::parse::run);
}

#[test]
fn cluster_ingest_survives_genuine_and_mutated_messages() {
    replay("cluster", harness::cluster::run);
}
