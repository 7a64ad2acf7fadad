//! Validation of the host's meta JSON, and the splice that adds `phx_ref` to it.
//!
//! A meta is kept as the host's own JSON text (trimmed), never as a parsed tree: it is
//! only ever re-emitted, so parsing it once to check it is all the work it needs.
//!
//! The check is stricter than the JSON grammar, because the text goes out unchanged to
//! every client: a number that no double can hold (`1e400` becomes `Infinity` in a
//! browser, and is refused by stricter parsers) and an escaped lone surrogate (`"\ud800"`,
//! which has no UTF-8 form, so Python's and Rust's decoders refuse it) are refused here,
//! as keys and topics with a lone surrogate are refused by the bindings.

use crate::error::{Error, ErrorKind, Result};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Keys the engine writes into every phoenix meta; a host meta may not carry them.
pub const RESERVED_KEYS: [&str; 2] = ["phx_ref", "phx_ref_prev"];

/// Checks that `text` is one JSON object without reserved keys, whose numbers are all
/// finite doubles and whose strings are all valid Unicode, and returns it trimmed.
pub fn validate(text: &str) -> Result<&str> {
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_map(ObjectCheck).map_err(|e| {
        Error::new(
            ErrorKind::InvalidMeta,
            format!("meta must be a JSON object: {e}"),
        )
    })?;
    de.end().map_err(|e| {
        Error::new(
            ErrorKind::InvalidMeta,
            format!("meta has trailing data: {e}"),
        )
    })?;
    let depth = max_depth(text);
    if depth > MAX_DEPTH {
        return Err(Error::new(
            ErrorKind::InvalidMeta,
            format!("meta nests {depth} levels deep; at most {MAX_DEPTH} are allowed"),
        ));
    }
    Ok(text.trim())
}

/// How deeply a meta may nest (the object itself is level 1). The engine never parses a
/// meta into a tree, but every client that receives it does, and recursive JSON parsers
/// (Python's `json`, many others) fail or overflow their stack on deep input.
pub(crate) const MAX_DEPTH: usize = 64;

/// The deepest nesting of arrays and objects in valid JSON `text`, in one pass.
fn max_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in text.as_bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth -= 1,
            _ => {}
        }
    }
    max
}

/// The members of a validated, trimmed object, without the braces: `{"a":1}` gives `"a":1`.
pub fn members(object: &str) -> &str {
    object[1..object.len() - 1].trim()
}

struct ObjectCheck;

impl<'de> Visitor<'de> for ObjectCheck {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if RESERVED_KEYS.contains(&key.as_ref()) {
                return Err(de::Error::custom(format!(
                    "the key {key:?} is reserved for the engine"
                )));
            }
            map.next_value_seed(Strict)?;
        }
        Ok(())
    }
}

/// Walks one JSON value, decoding what `IgnoredAny` would only skip: serde_json refuses a
/// number that overflows a double and an escaped lone surrogate while decoding them, and
/// does not look at either while skipping. Strings come borrowed from the text when they
/// hold no escape, so the walk allocates nothing for most metas.
struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<(), E> {
        // serde_json refuses overflowing numbers itself; this keeps the rule if that changes.
        if v.is_finite() {
            Ok(())
        } else {
            Err(E::custom("a number in a meta must be finite"))
        }
    }

    fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while seq.next_element_seed(Strict)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        while map.next_key::<std::borrow::Cow<'de, str>>()?.is_some() {
            map.next_value_seed(Strict)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_objects_and_trims() {
        assert_eq!(
            validate(" {\"a\": [1, {\"b\": null}]} \n").unwrap(),
            "{\"a\": [1, {\"b\": null}]}"
        );
        assert_eq!(validate("{}").unwrap(), "{}");
        assert_eq!(members("{ }"), "");
        assert_eq!(members("{\"a\":1}"), "\"a\":1");
    }

    #[test]
    fn rejects_non_objects_reserved_keys_and_trailing_data() {
        for text in [
            "",
            "[]",
            "1",
            "\"x\"",
            "null",
            "{",
            "{}{}",
            "{\"phx_ref\":1}",
            "{\"a\":1,\"phx_ref_prev\":2}",
            "{'a':1}",
            // Numbers no double holds: clients would read Infinity, or refuse the text.
            r#"{"f":1e400}"#,
            r#"{"f":-1e400}"#,
            r#"{"a":[{"f":1E309}]}"#,
            // Escaped lone surrogates: no UTF-8 form, refused by strict decoders.
            r#"{"s":"\ud800"}"#,
            r#"{"s":"x\udfffy"}"#,
            r#"{"\ud83d":1}"#,
            r#"{"a":{"b":["\udc00"]}}"#,
            r#"{"s":"\ud800\u0041"}"#,
        ] {
            assert_eq!(
                validate(text).unwrap_err().kind(),
                ErrorKind::InvalidMeta,
                "{text:?}"
            );
        }
    }

    #[test]
    fn accepts_finite_numbers_and_escaped_pairs() {
        for text in [
            r#"{"f":1e308,"g":-1.5e-400,"h":0,"i":-0.0,"j":18446744073709551616}"#,
            r#"{"s":"\ud83d\ude00","t":"\u00e9\n\"","u":"é🙂"}"#,
            r#"{"a":[true,false,null,{}],"b":{"c":[]}}"#,
        ] {
            assert!(validate(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn bounds_nesting_depth() {
        let nested =
            |depth: usize| format!("{{\"a\":{}1{}}}", "[".repeat(depth), "]".repeat(depth));
        assert!(validate(&nested(MAX_DEPTH - 1)).is_ok());
        // Brackets inside strings are text, not nesting.
        assert!(validate(&format!(
            "{{\"a\":\"{}\\\"{}\"}}",
            "[".repeat(500),
            "{".repeat(500)
        ))
        .is_ok());
        for depth in [MAX_DEPTH, 100_000] {
            let err = validate(&nested(depth)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidMeta, "depth {depth}");
        }
    }
}
