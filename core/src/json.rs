//! The few JSON writers the wire formats need, appending to a `String`.
//!
//! Output is built by hand rather than through a serializer: every payload is a fixed
//! shape around counts, strings and pre-validated meta text, so direct appends avoid
//! building a tree per diff.

use std::fmt::Write;

/// Appends `s` as a JSON string literal, escaped exactly as `JSON.stringify` and Python's
/// `json.dumps(..., ensure_ascii=False)` escape it (`\b`, `\f`, `\n`, `\r`, `\t` by name,
/// other control characters as `\u00xx`, non-ASCII as UTF-8), so that a host that decodes
/// and re-encodes the engine's text gets the same bytes back.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escaped);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends an unsigned integer without going through the formatting machinery (`write!`),
/// which costs more than the rest of a counts diff.
pub fn push_u64(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Appends a phoenix ref: 11 characters of URL-safe base64 of the 64-bit ref number.
pub fn push_ref(out: &mut String, r: u64) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    out.push('"');
    for i in (0..11).rev() {
        out.push(ALPHABET[((r >> (i * 6)) & 63) as usize] as char);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_through_a_real_parser() {
        for s in [
            "",
            "plain",
            "q\"uote",
            "back\\slash",
            "tab\tnl\ncr\r",
            "\u{1}\u{1f}",
            "é🙂",
            "</script>",
        ] {
            let mut out = String::new();
            push_str(&mut out, s);
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn strings_are_escaped_as_json_stringify_escapes_them() {
        let mut out = String::new();
        push_str(&mut out, "\u{8}\u{c}\n\r\t\u{1}\u{1f}\"\\/é\u{7f}");
        assert_eq!(out, "\"\\b\\f\\n\\r\\t\\u0001\\u001f\\\"\\\\/é\u{7f}\"");
    }

    #[test]
    fn integers_print_like_display() {
        for n in [0, 7, 10, 99, 1_000_000, u64::MAX] {
            let mut out = String::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }

    #[test]
    fn refs_are_distinct_fixed_width_strings() {
        let mut a = String::new();
        let mut b = String::new();
        push_ref(&mut a, 1);
        push_ref(&mut b, u64::MAX);
        assert_eq!(a, "\"AAAAAAAAAAB\"");
        assert_eq!(b.len(), 13);
        assert_ne!(a, b);
    }
}
