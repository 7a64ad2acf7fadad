//! The committed header is the one cbindgen generates, every name it declares carries the
//! library's prefix, and it compiles cleanly as C99 and as C++17.

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

/// The header text without its comments and string literals.
fn code_of(header: &str) -> String {
    let mut out = String::with_capacity(header.len());
    let mut rest = header;
    while let Some(i) = rest.find(['/', '"']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(body) = tail.strip_prefix("/*") {
            rest = body.find("*/").map_or("", |j| &body[j + 2..]);
        } else if let Some(body) = tail.strip_prefix("//") {
            rest = body.find('\n').map_or("", |j| &body[j..]);
        } else if let Some(body) = tail.strip_prefix('"') {
            out.push_str("\"\"");
            rest = body.find('"').map_or("", |j| &body[j + 1..]);
        } else {
            out.push('/');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Every name the header gives to C: macros, struct and enum tags, typedefs, enum
/// constants and functions (parameter names excepted, which name nothing outside).
fn declared_names(code: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let last_ident = |s: &str| -> String {
        let s = s.trim_end_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
        let start = s
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        s[start..].to_string()
    };
    let mut names = Vec::new();
    let mut in_enum = false;
    for line in code.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("#define ") {
            names.push(ident(rest));
            continue;
        }
        for tag in ["struct ", "enum "] {
            let mut s = t;
            while let Some(i) = s.find(tag) {
                s = &s[i + tag.len()..];
                names.push(ident(s));
            }
        }
        if t.starts_with("typedef enum") {
            in_enum = true;
        }
        if t.starts_with('}') {
            in_enum = false;
            names.push(last_ident(t));
        } else if in_enum && !t.is_empty() && !t.starts_with("typedef") {
            names.push(ident(t));
        } else if let Some(i) = t.find("(*") {
            names.push(ident(&t[i + 2..]));
        } else if !line.starts_with([' ', '#']) && t.contains('(') {
            names.push(last_ident(&t[..t.find('(').unwrap()]));
        } else if t.starts_with("typedef ") && t.ends_with(';') {
            names.push(last_ident(t));
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

#[test]
fn every_name_the_header_declares_carries_the_prefix() {
    let names = declared_names(&code_of(GENERATED));
    for expected in [
        "PRESENCE_VERSION",
        "presence_status",
        "PRESENCE_STATUS_OK",
        "presence_engine",
        "presence_diff_cb",
        "presence_track",
        "presence_buf",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "the name reader missed {expected}: {names:?}"
        );
    }
    let bare: Vec<&String> = names
        .iter()
        .filter(|n| !n.starts_with("presence_") && !n.starts_with("PRESENCE_"))
        .collect();
    assert!(
        bare.is_empty(),
        "names in include/presence.h without the presence_/PRESENCE_ prefix \
         (rename them in cbindgen.toml's [export.rename]): {bare:?}"
    );
}
