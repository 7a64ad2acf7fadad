//! The engine's life: its creation from a config, the defaults of that config, and its
//! destruction. These are the only calls that turn a handle into the engine's `Box` and
//! back; every other call borrows the engine through `guard::engine`.

use super::guard::{guard, guard_value, optional_text, Out};
use super::types::{presence_buf, presence_engine, presence_status};
use presence_core::{Config, Engine};
use std::ffi::c_char;

/// Creates an engine.
///
/// `config_json` is a JSON object of settings, or NULL (same as `{}`) for the defaults.
/// The fields are those of `presence_config_defaults`, which gives each one's default
/// (the README's configuration table describes them): `format` (`"counts"` or
/// `"phoenix"`), `viewers_key`, `shards`, `max_topic_bytes`, `max_key_bytes`,
/// `max_meta_bytes`, `max_topics`, `max_presences` and `cluster`. An unknown field is an
/// error.
///
/// On success `*out` receives the engine, which the caller owns and must release with
/// `presence_engine_free`. `out` must not be NULL.
#[no_mangle]
pub unsafe extern "C" fn presence_engine_new(
    config_json: *const c_char,
    out: *mut *mut presence_engine,
) -> presence_status {
    guard(|| {
        // SAFETY: NULL or writable by the caller's contract.
        let out = unsafe { Out::new(out, "out") }?;
        // SAFETY: caller passes NULL or a NUL-terminated string.
        let config = match unsafe { optional_text(config_json, "config_json") }? {
            Some(json) => Config::from_json(json)?,
            None => Config::default(),
        };
        let engine = Box::new(Engine::new(config)?);
        out.write(Box::into_raw(engine).cast());
        Ok(())
    })
}

/// Writes into `*out` every configuration field with its default, as the JSON object
/// `presence_engine_new` accepts, for bindings and tools that must not repeat the
/// defaults. `cluster` holds the defaults of the cluster fields, although an engine is a
/// single node unless its config has a `cluster` object; `node` and `secret` have no
/// default there, and the empty strings shown for them are refused. The caller owns
/// `*out` and must release it with `presence_buf_free`. `out` must not be NULL.
#[no_mangle]
pub unsafe extern "C" fn presence_config_defaults(out: *mut presence_buf) -> presence_status {
    guard(|| {
        // SAFETY: NULL or writable by the caller's contract.
        let out = unsafe { Out::new(out, "out") }?;
        out.write(presence_buf::from_string(Config::defaults_json()));
        Ok(())
    })
}

/// Destroys an engine and everything it holds, and closes its wake-up descriptor.
///
/// Calling with NULL does nothing. Must not be called twice for the same engine, nor
/// while another thread is using it. Buffers returned earlier stay valid.
#[no_mangle]
pub unsafe extern "C" fn presence_engine_free(engine: *mut presence_engine) {
    guard_value((), || {
        if !engine.is_null() {
            // SAFETY: a non-NULL handle came from `presence_engine_new` (Box::into_raw).
            drop(unsafe { Box::from_raw(engine.cast::<Engine>()) });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence_buf_free;

    #[test]
    fn config_defaults_are_the_cores_and_parse_back() {
        let mut buf = presence_buf {
            data: std::ptr::null(),
            len: 0,
        };
        // SAFETY: `buf` is writable; it is freed below by the library.
        let status = unsafe { presence_config_defaults(&mut buf) };
        assert_eq!(status, presence_status::Ok);
        // SAFETY: the library wrote `len` bytes at `data`.
        let text = std::str::from_utf8(unsafe { std::slice::from_raw_parts(buf.data, buf.len) })
            .unwrap()
            .to_owned();
        unsafe { presence_buf_free(&mut buf) };
        assert_eq!(text, Config::defaults_json());
        assert!(text.contains("\"max_presences\":10000000"), "{text}");
        assert_eq!(
            unsafe { presence_config_defaults(std::ptr::null_mut()) },
            presence_status::NullArgument
        );
    }
}
