//! The committed header is the one cbindgen generates, and it compiles cleanly as C99
//! and as C++17.

use std::path::Path;
use std::process::Command;

const GENERATED: &str = include_str!(concat!(env!("OUT_DIR"), "/presence.h"));
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/include/presence.h");

#[test]
fn committed_header_is_up_to_date() {
    if std::env::var_os("UPDATE_HEADER").is_some() {
        std::fs::write(COMMITTED, GENERATED).expect("write include/presence.h");
        return;
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == GENERATED,
        "include/presence.h is stale: run `make header` (UPDATE_HEADER=1 cargo test --test header) and commit it"
    );
}

fn compile(compiler: &str, lang: &str, std: &str) {
    let include = Path::new(COMMITTED).parent().unwrap();
    let out = Command::new(compiler)
        .args([
            "-x",
            lang,
            &format!("-std={std}"),
            "-Wall",
            "-Wextra",
            "-pedantic",
            "-Werror",
            "-fsyntax-only",
        ])
        .arg("-I")
        .arg(include)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            // Included twice: the include guard must hold.
            child.stdin.take().unwrap().write_all(
                b"#include \"presence.h\"\n#include \"presence.h\"\nint main(void) { return 0; }\n",
            )?;
            child.wait_with_output()
        })
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        out.status.success(),
        "{compiler} -std={std} rejects the header:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn header_compiles_as_c99() {
    compile("cc", "c", "c99");
}

#[test]
fn header_compiles_as_cpp17() {
    compile("c++", "c++", "c++17");
}
