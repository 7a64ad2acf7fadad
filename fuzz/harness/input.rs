//! The fuzzer's bytes read as a stream of small decisions. Reading past the end gives
//! zeros, so every input, however short, is a complete run.

// Each target uses part of this module.
#![allow(dead_code)]

pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u64(&mut self) -> u64 {
        let mut v = [0u8; 8];
        for b in &mut v {
            *b = self.byte();
        }
        u64::from_le_bytes(v)
    }

    /// Up to `max` bytes, the count taken from the next byte.
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = (self.byte() as usize % (max + 1)).min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// What a C caller can pass as a string: the bytes up to the first NUL.
pub fn c_string(bytes: &[u8]) -> std::ffi::CString {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    std::ffi::CString::new(&bytes[..end]).expect("no NUL before end")
}

/// The meta rule, written from the README rather than from the engine's code: one JSON
/// object (surrounding JSON whitespace allowed), no `phx_ref`/`phx_ref_prev` key at its
/// top level, at most 64 levels of objects and arrays, every number a finite double and
/// every string valid Unicode. serde_json's `Value` refuses the last two while parsing.
pub fn meta_is_valid(text: &str) -> Option<serde_json::Value> {
    fn depth(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
            serde_json::Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let m = v.as_object()?;
    if m.contains_key("phx_ref") || m.contains_key("phx_ref_prev") || depth(&v) > 64 {
        return None;
    }
    Some(v)
}
