//! Generates the C header with cbindgen into OUT_DIR. The committed copy in
//! `include/presence.h` is compared with it by `tests/header.rs`, never written from here:
//! a build must not modify the source tree.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=core/src");
    println!("cargo:rerun-if-changed=cbindgen.toml");

    let mut config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let version = env::var("CARGO_PKG_VERSION").expect("set by cargo");
    let part = |name: &str| env::var(name).expect("set by cargo");
    config.after_includes = Some(format!(
        "\n/* The version of this header; compare with presence_version() at run time. */\n\
         #define PRESENCE_VERSION \"{version}\"\n\
         #define PRESENCE_VERSION_MAJOR {}\n\
         #define PRESENCE_VERSION_MINOR {}\n\
         #define PRESENCE_VERSION_PATCH {}\n",
        part("CARGO_PKG_VERSION_MAJOR"),
        part("CARGO_PKG_VERSION_MINOR"),
        part("CARGO_PKG_VERSION_PATCH"),
    ));
    // Parsing the sources directly, not the crate: `with_crate` runs `cargo metadata`,
    // whose rustc probes race with the C build scripts of dependencies on a cold build.
    // The core's sources too: the header carries its public limits (the longest leave grace),
    // which the core alone defines.
    cbindgen::Builder::new()
        .with_src(crate_dir.join("src/lib.rs"))
        .with_src(crate_dir.join("core/src/lib.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write_to_file(out_dir.join("presence.h"));
    println!("cargo:include={}", out_dir.display());

    // The shared library's SONAME: programs linked with -lpresence record it, and the
    // dynamic loader then accepts only a library of the same ABI. Before 1.0 every minor
    // version may break the ABI, so the minor is part of the name.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        let major = part("CARGO_PKG_VERSION_MAJOR");
        let soname = if major == "0" {
            format!("libpresence.so.0.{}", part("CARGO_PKG_VERSION_MINOR"))
        } else {
            format!("libpresence.so.{major}")
        };
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    }
}
