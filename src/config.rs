//! Engine configuration: output format and limits, parsed from JSON for the C ABI.

use crate::error::{Error, ErrorKind, Result};
use serde_json::Value;

/// Which wire format the engine renders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// Anonymous counts only: `{"viewers":{"count":V},"users":{"count":U}}`. No key or meta
    /// is kept, let alone sent.
    #[default]
    Counts,
    /// Phoenix `presence_state` / `presence_diff` lists with `phx_ref` metas.
    Phoenix,
}

/// Engine settings. `Config::default()` is what `NULL` or `{}` gives over the C ABI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The wire format.
    pub format: Format,
    /// Phoenix format only: the key under which anonymous presences are listed.
    pub viewers_key: String,
    /// Number of lock shards for topics and for connections (rounded up to a power of two).
    pub shards: usize,
    /// Longest topic, in bytes.
    pub max_topic_bytes: usize,
    /// Longest key, in bytes.
    pub max_key_bytes: usize,
    /// Longest meta JSON text, in bytes.
    pub max_meta_bytes: usize,
    /// Most topics held at once.
    pub max_topics: usize,
    /// Most presences held at once.
    pub max_presences: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            format: Format::Counts,
            viewers_key: "viewers".to_owned(),
            shards: 64,
            max_topic_bytes: 256,
            max_key_bytes: 256,
            max_meta_bytes: 4096,
            max_topics: 1_000_000,
            max_presences: 10_000_000,
        }
    }
}

/// The JSON field names `Config::from_json` accepts, in the order the docs list them.
pub const CONFIG_FIELDS: &[&str] = &[
    "format",
    "viewers_key",
    "shards",
    "max_topic_bytes",
    "max_key_bytes",
    "max_meta_bytes",
    "max_topics",
    "max_presences",
];

impl Config {
    /// Parses a JSON object; absent fields keep their defaults, unknown fields are an error
    /// (a typo should not silently fall back to a default).
    pub fn from_json(text: &str) -> Result<Config> {
        let bad = |msg: String| Error::new(ErrorKind::InvalidConfig, msg);
        let value: Value = serde_json::from_str(text)
            .map_err(|e| bad(format!("config is not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(bad("config must be a JSON object".into()));
        };
        let mut config = Config::default();
        for (name, v) in &map {
            match name.as_str() {
                "format" => {
                    config.format = match v.as_str() {
                        Some("counts") => Format::Counts,
                        Some("phoenix") => Format::Phoenix,
                        _ => {
                            return Err(bad(format!(
                                "format must be \"counts\" or \"phoenix\", got {v}"
                            )))
                        }
                    }
                }
                "viewers_key" => {
                    config.viewers_key = v
                        .as_str()
                        .ok_or_else(|| bad("viewers_key must be a string".into()))?
                        .to_owned()
                }
                "shards" => config.shards = positive(name, v)?,
                "max_topic_bytes" => config.max_topic_bytes = positive(name, v)?,
                "max_key_bytes" => config.max_key_bytes = positive(name, v)?,
                "max_meta_bytes" => config.max_meta_bytes = positive(name, v)?,
                "max_topics" => config.max_topics = positive(name, v)?,
                "max_presences" => config.max_presences = positive(name, v)?,
                other => {
                    return Err(bad(format!(
                        "unknown config field {other:?}; known fields: {}",
                        CONFIG_FIELDS.join(", ")
                    )))
                }
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the cross-field rules; `Engine::new` calls it too, for configs built in Rust.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Error::new(ErrorKind::InvalidConfig, msg);
        if self.shards == 0 || self.shards > 4096 {
            return Err(bad(format!("shards must be 1..=4096, got {}", self.shards)));
        }
        if self.viewers_key.is_empty() || self.viewers_key.len() > self.max_key_bytes {
            return Err(bad(
                "viewers_key must be non-empty and within max_key_bytes".into(),
            ));
        }
        for (name, v) in [
            ("max_topic_bytes", self.max_topic_bytes),
            ("max_key_bytes", self.max_key_bytes),
            ("max_meta_bytes", self.max_meta_bytes),
            ("max_topics", self.max_topics),
            ("max_presences", self.max_presences),
        ] {
            if v == 0 {
                return Err(bad(format!("{name} must be at least 1")));
            }
        }
        // Topic slots are addressed with 24 bits per shard (see `shard::TopicRef`).
        if self.max_topics > (1 << 24) * self.shards.next_power_of_two() {
            return Err(bad(
                "max_topics is too large for the number of shards".into()
            ));
        }
        Ok(())
    }
}

fn positive(name: &str, v: &Value) -> Result<usize> {
    v.as_u64()
        .filter(|n| *n >= 1)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("{name} must be a positive integer, got {v}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_object_gives_defaults() {
        assert_eq!(Config::from_json("{}").unwrap(), Config::default());
    }

    #[test]
    fn fields_override_defaults() {
        let c = Config::from_json(r#"{"format":"phoenix","viewers_key":"anon","max_topics":7}"#)
            .unwrap();
        assert_eq!(c.format, Format::Phoenix);
        assert_eq!(c.viewers_key, "anon");
        assert_eq!(c.max_topics, 7);
    }

    #[test]
    fn rejects_unknown_fields_bad_values_and_non_objects() {
        for text in [
            r#"{"formatt":"counts"}"#,
            r#"{"format":"xml"}"#,
            r#"{"max_topics":0}"#,
            r#"{"max_topics":-1}"#,
            r#"{"shards":"4"}"#,
            r#"{"viewers_key":""}"#,
            "[]",
            "nope",
        ] {
            let err = Config::from_json(text).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{text}");
        }
    }
}
