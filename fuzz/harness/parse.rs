//! Config and meta parsing: whatever the text, the engine answers with a status and never
//! panics; what it accepts follows the documented rules, and an accepted meta comes back
//! in a list as the same JSON value.

use super::input::{c_string, meta_is_valid, Input};
use presence::*;
use presence_core::{Config, Format};
use serde_json::Value;
use std::ffi::CString;
use std::ptr;

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    match input.byte() % 2 {
        0 => config(input.rest()),
        _ => meta(input.rest()),
    }
}

fn config(bytes: &[u8]) {
    let text = c_string(bytes);
    let mut handle = ptr::null_mut();
    // SAFETY: a NUL-terminated string and a writable out-parameter.
    let st = unsafe { presence_engine_new(text.as_ptr(), &mut handle) };
    let Ok(s) = text.to_str() else {
        assert_eq!(st, presence_status::InvalidUtf8);
        return;
    };
    let parsed = Config::from_json(s);
    match &parsed {
        Ok(c) => {
            assert_eq!(st, presence_status::Ok, "{s:?}");
            c.validate().expect("a parsed config is valid");
            assert!(!c.viewers_key.is_empty());
            if c.format == Format::Phoenix {
                assert!(c.viewers_key.len() <= c.max_key_bytes);
            }
            // Every limit is positive; the parse agrees with a generic JSON reading.
            let v: Value = serde_json::from_str(s).expect("accepted text is JSON");
            let obj = v.as_object().expect("a config is an object");
            for (name, limit) in [
                ("max_topic_bytes", c.max_topic_bytes),
                ("max_key_bytes", c.max_key_bytes),
                ("max_meta_bytes", c.max_meta_bytes),
                ("max_topics", c.max_topics),
                ("max_presences", c.max_presences),
            ] {
                assert!(limit >= 1);
                if let Some(n) = obj.get(name) {
                    assert_eq!(n.as_u64(), Some(limit as u64), "{name}");
                }
            }
            assert!(obj
                .keys()
                .all(|k| presence_core::CONFIG_FIELDS.contains(&k.as_str())));
        }
        Err(e) => assert_eq!(
            st,
            match e.kind() {
                presence_core::ErrorKind::Io => presence_status::Io,
                _ => presence_status::InvalidConfig,
            },
            "{s:?}: {e}"
        ),
    }
    // SAFETY: NULL or a live handle, freed once.
    unsafe { presence_engine_free(handle) };
}

/// Tracks the text as a meta in both formats; phoenix must list it back unchanged.
fn meta(bytes: &[u8]) {
    let text = c_string(bytes);
    let expected = text.to_str().ok().map(meta_is_valid);
    for format in ["counts", "phoenix"] {
        let config = CString::new(format!(
            r#"{{"format":"{format}","shards":1,"max_meta_bytes":100000}}"#
        ))
        .expect("no NUL");
        let mut handle = ptr::null_mut();
        // SAFETY: a NUL-terminated string and a writable out-parameter.
        let st = unsafe { presence_engine_new(config.as_ptr(), &mut handle) };
        assert_eq!(st, presence_status::Ok);
        let topic = CString::new("t").expect("no NUL");
        // SAFETY: a live handle and NUL-terminated strings.
        let st = unsafe { presence_track(handle, topic.as_ptr(), 1, ptr::null(), text.as_ptr()) };
        match &expected {
            None => assert_eq!(st, presence_status::InvalidUtf8),
            Some(None) => assert_eq!(st, presence_status::InvalidMeta, "{text:?}"),
            Some(Some(want)) => {
                assert_eq!(st, presence_status::Ok, "{text:?}");
                // An update with the same text is accepted too.
                // SAFETY: as above.
                let st = unsafe { presence_update(handle, topic.as_ptr(), 1, text.as_ptr()) };
                assert_eq!(st, presence_status::Ok);
                if format == "phoenix" {
                    let mut buf = presence_buf {
                        data: ptr::null(),
                        len: 0,
                    };
                    // SAFETY: a live handle and a writable out-parameter.
                    let st = unsafe { presence_poll_diff(handle, &mut buf) };
                    assert_eq!(st, presence_status::Ok);
                    // SAFETY: a buffer the library returned; freed once.
                    let out = unsafe { std::slice::from_raw_parts(buf.data, buf.len) }.to_vec();
                    unsafe { presence_buf_free(&mut buf) };
                    let batch: Value = serde_json::from_slice(&out).expect("a poll is JSON");
                    let mut got = batch[0]["payload"]["joins"]["viewers"]["metas"][0].clone();
                    let m = got.as_object_mut().expect("a meta object");
                    assert!(m.remove("phx_ref").is_some());
                    assert_eq!(&got, want, "{text:?}");
                }
            }
        }
        // SAFETY: a live handle, freed once.
        unsafe { presence_engine_free(handle) };
    }
}
