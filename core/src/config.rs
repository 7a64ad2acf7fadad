//! Engine configuration: output format and limits, parsed from JSON for the C ABI.
//!
//! This file is the one place of each setting: its field, its default (`Default`), its
//! parsing and its checks. The bindings pass their users' settings here as JSON and learn
//! the fields and defaults from `Config::defaults_json`; the README table and the stubs
//! are generated from it (`make header`).
//!
//! Parsing is serde's derive; `serde_path_to_error` puts the path of the offending field
//! (`cluster.tick_ms`) in front of serde's message, which says what was expected. The
//! ranges and the rules between fields are `validate`'s, which checks configs built in
//! Rust too.

use crate::error::{Error, ErrorKind, Result};
use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

pub use crate::format::Format;

/// Engine settings. `Config::default()` is what `NULL` or `{}` gives over the C ABI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a JSON object of config fields"
)]
pub struct Config {
    /// The wire format.
    pub format: Format,
    /// Phoenix format only: the key under which anonymous presences are listed. Never
    /// empty; in phoenix format at most `max_key_bytes` long.
    pub viewers_key: String,
    /// Number of lock shards for topics and for connections (rounded up to a power of two).
    #[serde(deserialize_with = "positive")]
    pub shards: usize,
    /// Longest topic, in bytes.
    #[serde(deserialize_with = "positive")]
    pub max_topic_bytes: usize,
    /// Longest key, in bytes.
    #[serde(deserialize_with = "positive")]
    pub max_key_bytes: usize,
    /// Longest meta JSON text, in bytes.
    #[serde(deserialize_with = "positive")]
    pub max_meta_bytes: usize,
    /// Most topics held at once.
    #[serde(deserialize_with = "positive")]
    pub max_topics: usize,
    /// Most presences held at once.
    #[serde(deserialize_with = "positive")]
    pub max_presences: usize,
    /// How long a leave waits for the same user to come back, in milliseconds (0: a leave
    /// is published at the next poll). A leave (`untrack`, `untrack_conn`) followed within
    /// this window by a track of the same key in the same topic (an anonymous viewer for
    /// an anonymous viewer) makes no diff; without one, the leave is published at the
    /// first poll after the window ends, and the wake-up descriptor turns readable then.
    #[serde(deserialize_with = "non_negative")]
    pub leave_grace_ms: u64,
    /// Cluster mode: share presence with other nodes. `None` for a single node.
    #[serde(deserialize_with = "object_or_null")]
    pub cluster: Option<ClusterConfig>,
}

/// Settings of cluster mode (see the README's cluster section). Parsed with the defaults
/// of `ClusterConfig::new("", "")`: `node` and `secret` have none, and `validate` refuses
/// the empty strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a JSON object of cluster fields"
)]
pub struct ClusterConfig {
    /// This node's name, unique in the cluster.
    pub node: String,
    /// The shared secret: authenticates messages and keys the user hashes (16+ bytes).
    pub secret: String,
    /// How often the host (or the Redis link) calls `cluster_tick`, in milliseconds.
    #[serde(deserialize_with = "positive")]
    pub tick_ms: u64,
    /// A node silent this long is dropped, in milliseconds; only time during which this
    /// node could hear the bus counts.
    #[serde(deserialize_with = "positive")]
    pub down_after_ms: u64,
    /// While this node's own Redis link is down or unresponsive, it keeps the other
    /// nodes' presences (stale) this long before dropping them, in milliseconds (or
    /// `down_after_ms`, if that is longer: an outage never drops a peer sooner than
    /// silence would).
    #[serde(deserialize_with = "positive")]
    pub stale_after_ms: u64,
    /// Each node broadcasts a full snapshot this often, in milliseconds: a backstop, since
    /// lost messages are found from sequence gaps and healed by snapshots sent on request.
    #[serde(deserialize_with = "positive")]
    pub snapshot_interval_ms: u64,
    /// Largest message sent or accepted, in bytes.
    #[serde(deserialize_with = "positive")]
    pub max_message_bytes: usize,
    /// Most other nodes tracked at once.
    #[serde(deserialize_with = "positive")]
    pub max_nodes: usize,
}

impl ClusterConfig {
    /// A cluster config with default timers.
    pub fn new(node: impl Into<String>, secret: impl Into<String>) -> ClusterConfig {
        ClusterConfig {
            node: node.into(),
            secret: secret.into(),
            tick_ms: 250,
            down_after_ms: 3000,
            stale_after_ms: 30_000,
            snapshot_interval_ms: 300_000,
            max_message_bytes: 256 * 1024,
            max_nodes: 64,
        }
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig::new("", "")
    }
}

/// The JSON field names of the `cluster` object.
pub const CLUSTER_FIELDS: &[&str] = &[
    "node",
    "secret",
    "tick_ms",
    "down_after_ms",
    "stale_after_ms",
    "snapshot_interval_ms",
    "max_message_bytes",
    "max_nodes",
];

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
            leave_grace_ms: 0,
            cluster: None,
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
    "leave_grace_ms",
    "cluster",
];

/// What each field of `CONFIG_FIELDS` is for, in the words of the README's configuration
/// table and of the bindings' docs, which `make header` generates from it.
pub const CONFIG_DOCS: &[&str] = &[
    "`\"counts\"` (anonymous counts) or `\"phoenix\"` (Phoenix presence lists)",
    "phoenix: the key anonymous presences are listed under; not empty, and in phoenix \
     format at most `max_key_bytes` long (counts format lists no key, so there it may be \
     longer)",
    "lock shards for topics and for connections, 1 to 4096 (rounded up to a power of two)",
    "longest topic, in UTF-8 bytes",
    "longest key, in UTF-8 bytes",
    "longest meta JSON text, in bytes",
    "most topics held at once",
    "most presences held at once",
    "how long a leave waits for the same user (same key, or an anonymous viewer for an \
     anonymous viewer) to come back to the topic before it is published, in ms, at most \
     3600000; 0: at the next poll. A reload within the window sends no diff",
    "cluster mode: share presence with other nodes (see the cluster fields); none for a \
     single node",
];

/// What each field of `CLUSTER_FIELDS` is for (as `CONFIG_DOCS`).
pub const CLUSTER_DOCS: &[&str] = &[
    "this node's name, 1 to 255 bytes, unique in the cluster",
    "shared by every node, 16 bytes or more",
    "how often messages go out, in ms",
    "a peer silent this long is dropped, in ms (more than `tick_ms`); only time during \
     which this node can hear the bus counts",
    "while this node's Redis link is down or unresponsive, its peers' presences are kept \
     this long, in ms (or `down_after_ms`, if longer), then dropped",
    "every node broadcasts a full snapshot this often, in ms: a backstop, since losses are \
     found from sequence gaps",
    "larger snapshots are split, larger messages refused; at least 16384",
    "most other nodes tracked at once",
];

/// The longest leave grace: an hour. A held leave keeps its presence counted and its
/// memory taken, so a window much longer than a reload would mostly hide real departures.
pub const MAX_LEAVE_GRACE_MS: u64 = 3_600_000;

impl Config {
    /// Every field with its default, as a JSON object in the order of `CONFIG_FIELDS`.
    /// `cluster` holds the defaults of the cluster fields, although without a `cluster`
    /// object an engine is a single node; its `node` and `secret` have no default, and
    /// the empty strings shown for them are refused.
    pub fn defaults_json() -> String {
        let defaults = Config {
            cluster: Some(ClusterConfig::new("", "")),
            ..Config::default()
        };
        serde_json::to_string(&defaults).expect("a config serializes")
    }

    /// The settings as a JSON object, every field present (`cluster` is `null` for a
    /// single node). The cluster secret is left out unless `with_secret`: it has no
    /// place in logs.
    pub fn to_json(&self, with_secret: bool) -> String {
        let mut value = serde_json::to_value(self).expect("a config serializes");
        if !with_secret {
            if let Some(Value::Object(cluster)) = value.get_mut("cluster") {
                cluster.remove("secret");
            }
        }
        value.to_string()
    }

    /// Parses a JSON object; absent fields keep their defaults, unknown fields are an error
    /// (a typo should not silently fall back to a default). An error names the field by
    /// its path and says what was expected: `cluster.tick_ms: invalid value: integer `0`,
    /// expected a positive integer`.
    pub fn from_json(text: &str) -> Result<Config> {
        let bad = |msg: String| Error::new(ErrorKind::InvalidConfig, msg);
        // Through a `Value`: serde's messages then carry no line and column, which say
        // less than the path does, and a repeated field is the last one, as in most JSON
        // readers, instead of an error.
        let value: Value = serde_json::from_str(text)
            .map_err(|e| bad(format!("config is not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(bad("config must be a JSON object".into()));
        }
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            bad(if path == "." {
                inner.to_string()
            } else {
                format!("{path}: {inner}")
            })
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the cross-field rules; `Engine::new` calls it too, for configs built in Rust.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Error::new(ErrorKind::InvalidConfig, msg);
        if self.shards == 0 || self.shards > 4096 {
            return Err(bad(format!("shards must be 1..=4096, got {}", self.shards)));
        }
        if self.viewers_key.is_empty() {
            return Err(bad("viewers_key must be non-empty".into()));
        }
        // The viewers key is listed beside the users' keys, so clients see it as one; the
        // counts format lists no key, so there any max_key_bytes goes.
        if self.format.lists_keys() && self.viewers_key.len() > self.max_key_bytes {
            return Err(bad(format!(
                "viewers_key is {} bytes, over max_key_bytes ({}): in phoenix format it is \
                 listed as a key",
                self.viewers_key.len(),
                self.max_key_bytes
            )));
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
        if self.leave_grace_ms > MAX_LEAVE_GRACE_MS {
            return Err(bad(format!(
                "leave_grace_ms must be at most {MAX_LEAVE_GRACE_MS}, got {}",
                self.leave_grace_ms
            )));
        }
        if let Some(c) = &self.cluster {
            if c.node.is_empty() || c.node.len() > 255 {
                return Err(bad("cluster.node must be a string of 1 to 255 bytes".into()));
            }
            if c.secret.len() < 16 {
                return Err(bad(
                    "cluster.secret must be a string of at least 16 bytes".into()
                ));
            }
            if c.tick_ms == 0 || c.down_after_ms <= c.tick_ms {
                return Err(bad(
                    "cluster.down_after_ms must exceed cluster.tick_ms, which must be positive"
                        .into(),
                ));
            }
            if c.snapshot_interval_ms == 0 || c.max_nodes == 0 {
                return Err(bad(
                    "cluster.snapshot_interval_ms and cluster.max_nodes must be positive".into(),
                ));
            }
            // A message must hold at least one whole phoenix entry.
            let floor =
                (2 * self.max_meta_bytes + self.max_key_bytes + self.max_topic_bytes + 1024)
                    .max(16 * 1024);
            if c.max_message_bytes < floor {
                return Err(bad(format!(
                    "cluster.max_message_bytes must be at least {floor}"
                )));
            }
        }
        Ok(())
    }
}

/// The `cluster` object, or null. serde's derive would also read a struct from an array
/// of its fields in order, which no user means to write.
fn object_or_null<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<ClusterConfig>, D::Error> {
    struct ObjectOrNull;
    impl<'de> Visitor<'de> for ObjectOrNull {
        type Value = Option<ClusterConfig>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object of cluster fields, or null")
        }
        fn visit_none<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(
            self,
            d: D,
        ) -> std::result::Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
        fn visit_map<A: de::MapAccess<'de>>(
            self,
            map: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            ClusterConfig::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }
    d.deserialize_option(ObjectOrNull)
}

/// A count of at least 1, for `usize` and `u64` fields.
fn positive<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> std::result::Result<T, D::Error> {
    at_least(d, 1)
}

/// An integer of at least 0: serde's own message would expect a `u64`, which is Rust's
/// word, not the bindings' users'.
fn non_negative<'de, D: Deserializer<'de>, T: TryFrom<u64>>(
    d: D,
) -> std::result::Result<T, D::Error> {
    at_least(d, 0)
}

fn at_least<'de, D: Deserializer<'de>, T: TryFrom<u64>>(
    d: D,
    min: u64,
) -> std::result::Result<T, D::Error> {
    struct AtLeast(u64);
    impl Visitor<'_> for AtLeast {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(if self.0 == 0 {
                "a non-negative integer"
            } else {
                "a positive integer"
            })
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> std::result::Result<u64, E> {
            if n >= self.0 {
                Ok(n)
            } else {
                Err(E::invalid_value(Unexpected::Unsigned(n), &self))
            }
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> std::result::Result<u64, E> {
            match u64::try_from(n) {
                Ok(n) => self.visit_u64(n),
                Err(_) => Err(E::invalid_value(Unexpected::Signed(n), &self)),
            }
        }
    }
    let expected = AtLeast(min);
    let n = d.deserialize_u64(AtLeast(min))?;
    T::try_from(n).map_err(|_| de::Error::invalid_value(Unexpected::Unsigned(n), &expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_lists_are_the_serialized_fields_in_order() {
        let defaults: serde_json::Map<String, Value> =
            serde_json::from_str(&Config::defaults_json()).unwrap();
        let mut keys: Vec<&str> = defaults.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut names = CONFIG_FIELDS.to_vec();
        names.sort_unstable();
        assert_eq!(keys, names);
        let text = Config::defaults_json();
        let positions: Vec<usize> = CONFIG_FIELDS
            .iter()
            .map(|f| text.find(&format!("\"{f}\":")).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
        let Value::Object(cluster) = &defaults["cluster"] else {
            panic!("cluster defaults")
        };
        let mut keys: Vec<&str> = cluster.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut names = CLUSTER_FIELDS.to_vec();
        names.sort_unstable();
        assert_eq!(keys, names);
    }

    #[test]
    fn every_field_has_a_doc() {
        assert_eq!(CONFIG_DOCS.len(), CONFIG_FIELDS.len());
        assert_eq!(CLUSTER_DOCS.len(), CLUSTER_FIELDS.len());
    }

    #[test]
    fn the_defaults_parse_back_to_the_defaults() {
        let mut defaults: Value = serde_json::from_str(&Config::defaults_json()).unwrap();
        defaults["cluster"] = Value::Null;
        assert_eq!(
            Config::from_json(&defaults.to_string()).unwrap(),
            Config::default()
        );
        let c = Config::from_json(
            r#"{"format":"phoenix","cluster":{"node":"a","secret":"0123456789abcdef"}}"#,
        )
        .unwrap();
        assert_eq!(Config::from_json(&c.to_json(true)).unwrap(), c);
        assert!(!c.to_json(false).contains("secret"));
    }

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
        assert_eq!(c.leave_grace_ms, 0);
        let c = Config::from_json(r#"{"leave_grace_ms":5000}"#).unwrap();
        assert_eq!(c.leave_grace_ms, 5000);
        assert_eq!(
            Config::from_json(r#"{"leave_grace_ms":0}"#).unwrap(),
            Config::default()
        );
        let c = Config::from_json(
            r#"{"cluster":{"node":"a","secret":"0123456789abcdef","down_after_ms":900}}"#,
        )
        .unwrap();
        let cluster = c.cluster.unwrap();
        assert_eq!(
            (
                cluster.node.as_str(),
                cluster.down_after_ms,
                cluster.tick_ms
            ),
            ("a", 900, 250)
        );
        // A long down_after_ms needs no matching stale_after_ms: the longer one applies.
        let c = Config::from_json(
            r#"{"cluster":{"node":"a","secret":"0123456789abcdef","down_after_ms":1000000000}}"#,
        )
        .unwrap();
        assert_eq!(c.cluster.unwrap().stale_after_ms, 30_000);
    }

    /// The viewers key is a key of the phoenix lists only: counts format lists no key, so a
    /// max_key_bytes below its length is fine there.
    #[test]
    fn viewers_key_fits_max_key_bytes_in_phoenix_format_only() {
        let counts = Config::from_json(r#"{"max_key_bytes":3}"#).unwrap();
        assert_eq!(
            (counts.max_key_bytes, counts.viewers_key.as_str()),
            (3, "viewers")
        );
        let phoenix =
            Config::from_json(r#"{"format":"phoenix","viewers_key":"abc","max_key_bytes":3}"#)
                .unwrap();
        assert_eq!(phoenix.viewers_key, "abc");
        let err = Config::from_json(r#"{"format":"phoenix","max_key_bytes":3}"#).unwrap_err();
        assert!(err.to_string().contains("over max_key_bytes (3)"), "{err}");
    }

    #[test]
    fn rejects_unknown_fields_bad_values_and_non_objects() {
        for text in [
            r#"{"formatt":"counts"}"#,
            r#"{"format":"xml"}"#,
            r#"{"max_topics":0}"#,
            r#"{"max_topics":-1}"#,
            r#"{"leave_grace_ms":-1}"#,
            r#"{"leave_grace_ms":3600001}"#,
            r#"{"leave_grace_ms":"5000"}"#,
            r#"{"shards":"4"}"#,
            r#"{"viewers_key":""}"#,
            r#"{"format":"counts","viewers_key":""}"#,
            r#"{"format":"phoenix","max_key_bytes":6}"#,
            r#"{"format":"phoenix","viewers_key":"abc","max_key_bytes":2}"#,
            r#"{"cluster":{"node":"a"}}"#,
            r#"{"cluster":{"node":"a","secret":"short"}}"#,
            r#"{"cluster":{"node":"a","secret":"0123456789abcdef","tick_ms":500,"down_after_ms":400}}"#,
            r#"{"cluster":{"node":"a","secret":"0123456789abcdef","max_message_bytes":100}}"#,
            r#"{"cluster":{"node":"a","secret":"0123456789abcdef","stale_after_ms":0}}"#,
            r#"{"cluster":{"node":"a","secret":"0123456789abcdef","tickms":5}}"#,
            r#"{"cluster":{"node":"a","secret":"0123456789abcdef","max_nodes":1e30}}"#,
            r#"{"cluster":[]}"#,
            r#"{"cluster":5}"#,
            "[]",
            "nope",
        ] {
            let err = Config::from_json(text).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{text}");
        }
        // A message names the field by its full path and says what was expected.
        for (text, message) in [
            (
                r#"{"cluster":{"node":"a","secret":"0123456789abcdef","tick_ms":0}}"#,
                "cluster.tick_ms: invalid value: integer `0`, expected a positive integer",
            ),
            (
                r#"{"cluster":{"node":"a","secret":"0123456789abcdef","tickms":5}}"#,
                "cluster.tickms: unknown field `tickms`, expected one of `node`, `secret`",
            ),
            (
                r#"{"cluster":{"node":1,"secret":"0123456789abcdef"}}"#,
                "cluster.node: invalid type: integer `1`, expected a string",
            ),
            (
                r#"{"cluster":["a","0123456789abcdef"]}"#,
                "cluster: invalid type: sequence, expected a JSON object of cluster fields",
            ),
            (
                r#"{"cluster":{"node":"a"}}"#,
                "cluster.secret must be a string of at least 16 bytes",
            ),
            (
                r#"{"format":"xml"}"#,
                "format: unknown variant `xml`, expected `counts` or `phoenix`",
            ),
            (
                r#"{"formatt":"counts"}"#,
                "formatt: unknown field `formatt`, expected one of `format`, `viewers_key`",
            ),
            (
                r#"{"shards":-1}"#,
                "shards: invalid value: integer `-1`, expected a positive integer",
            ),
            (
                r#"{"max_presences":1.5}"#,
                "max_presences: invalid type: floating point `1.5`, expected a positive integer",
            ),
            (
                r#"{"leave_grace_ms":"5000"}"#,
                "leave_grace_ms: invalid type: string \"5000\", expected a non-negative integer",
            ),
            ("[]", "config must be a JSON object"),
        ] {
            let err = Config::from_json(text).unwrap_err().to_string();
            assert!(err.starts_with(message), "{text}: {err}");
        }
    }

    /// A repeated field is its last value, as in most JSON readers.
    #[test]
    fn the_last_of_repeated_fields_wins() {
        let c = Config::from_json(r#"{"max_topics":0,"max_topics":5}"#).unwrap();
        assert_eq!(c.max_topics, 5);
    }
}
