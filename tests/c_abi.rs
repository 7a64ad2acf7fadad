//! Builds the C harness, the C++ wrapper test and the C example against
//! `include/presence.h` and the static library, and runs them: under AddressSanitizer
//! and UndefinedBehaviorSanitizer, and the harness and the wrapper test again under
//! valgrind. Any sanitizer report, leak or failed check fails the test.

use std::path::PathBuf;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The static library cargo built for this test run: `target/<profile>/deps/libpresence.a`.
/// `cargo test` builds every crate type of the library into `deps/` but copies only
/// `cargo build`'s outputs up a level, so the one in `deps/` matches the source under test.
fn static_lib() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().join("libpresence.a")
}

fn build(compiler: &str, std: &str, sources: &[&str], sanitize: bool, name: &str) -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let lib = static_lib();
    assert!(
        lib.exists(),
        "{} missing: cargo test builds it with the library",
        lib.display()
    );
    let mut cmd = Command::new(compiler);
    cmd.current_dir(ROOT)
        .args([
            &format!("-std={std}"),
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-g",
            "-O1",
        ])
        .args(["-Iinclude", "-Iexamples/cpp"]);
    if sanitize {
        cmd.args([
            "-fsanitize=address,undefined",
            "-fno-omit-frame-pointer",
            "-fno-sanitize-recover=all",
        ]);
    }
    cmd.args(sources)
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&out);
    let result = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        result.status.success(),
        "{compiler} failed:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    out
}

fn run(mut cmd: Command, what: &str) -> String {
    let out = cmd
        .env(
            "ASAN_OPTIONS",
            "detect_leaks=1:abort_on_error=0:exitcode=23",
        )
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for marker in [
        "ERROR: AddressSanitizer",
        "ERROR: LeakSanitizer",
        "runtime error:",
    ] {
        assert!(
            !stderr.contains(marker),
            "{what} reported {marker}:\n{stderr}"
        );
    }
    println!("{stdout}");
    stdout
}

#[test]
fn c_harness_is_clean_under_asan_and_ubsan() {
    let exe = build(
        "cc",
        "c99",
        &["-D_POSIX_C_SOURCE=200809L", "tests/c/harness.c"],
        true,
        "harness-asan",
    );
    let out = run(Command::new(exe), "C harness (ASan)");
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn c_harness_is_clean_under_valgrind() {
    let exe = build(
        "cc",
        "c99",
        &["-D_POSIX_C_SOURCE=200809L", "tests/c/harness.c"],
        false,
        "harness-plain",
    );
    let mut cmd = Command::new("valgrind");
    cmd.args([
        "--quiet",
        "--error-exitcode=42",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite,indirect,possible",
    ])
    .arg(exe);
    let out = run(cmd, "C harness (valgrind)");
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn cpp_raii_wrapper_is_clean_under_asan() {
    let exe = build(
        "c++",
        "c++17",
        &["tests/cpp/wrapper_test.cpp"],
        true,
        "wrapper-asan",
    );
    let out = run(Command::new(exe), "C++ wrapper test");
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn cpp_raii_wrapper_is_clean_under_valgrind() {
    let exe = build(
        "c++",
        "c++17",
        &["tests/cpp/wrapper_test.cpp"],
        false,
        "wrapper-plain",
    );
    let mut cmd = Command::new("valgrind");
    cmd.args([
        "--quiet",
        "--error-exitcode=42",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite,indirect,possible",
    ])
    .arg(exe);
    let out = run(cmd, "C++ wrapper test (valgrind)");
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn c_example_runs_and_coalesces() {
    let exe = build("cc", "c99", &["examples/c/rooms.c"], true, "rooms-asan");
    let mut cmd = Command::new(exe);
    cmd.args(["1", "100"]);
    let out = run(cmd, "examples/c/rooms");
    assert!(out.contains("gets presence_state"), "{out}");
    assert!(out.contains("push video:"), "{out}");
    assert!(out.contains("coalesced diffs"), "{out}");
}

#[test]
fn own_bus_cluster_example_converges() {
    let exe = build(
        "cc",
        "c99",
        &["examples/cluster/own_bus.c"],
        true,
        "own-bus-asan",
    );
    let out = run(Command::new(exe), "examples/cluster/own_bus");
    assert!(
        out.contains("node a sees video:42: 2 users · 2 viewers (5 connections)"),
        "{out}"
    );
    assert!(
        out.contains("node b sees video:42: 2 users · 2 viewers (5 connections)"),
        "{out}"
    );
    assert!(
        out.contains("node a sees video:42: 1 users · 1 viewers (2 connections)"),
        "{out}"
    );
    assert!(out.contains("refused 0"), "{out}");
}
