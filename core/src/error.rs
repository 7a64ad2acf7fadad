//! Errors of the core engine, and the one table of their kinds.
//!
//! Each kind has a C status value (`presence_status` in the C layer carries the same
//! values; a test there holds them together) and an exception class of the Python and
//! Node bindings, which build their classes from `ERROR_CLASSES` and this table. The kind
//! is part of the public contract; the message is for humans only.

use std::fmt;

/// An exception class of the bindings. Several kinds may share a class; a class may
/// extend another one of this list (`parent`) or else the bindings' base class
/// (`PresenceError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorClass {
    /// The class name, the same in Python and in Node.
    pub name: &'static str,
    /// The class it extends, `None` for the base class `PresenceError`.
    pub parent: Option<&'static str>,
    /// Its docstring.
    pub doc: &'static str,
}

/// The exception classes of the error kinds, parents before their children.
pub const ERROR_CLASSES: &[ErrorClass] = &[
    ErrorClass {
        name: "InvalidInputError",
        parent: None,
        doc: "An argument the engine refuses: a topic or key that is empty or equals the \
              phoenix viewers key, a string that is not valid UTF-8, a bad meta, or a value \
              over its byte limit.",
    },
    ErrorClass {
        name: "InvalidMetaError",
        parent: Some("InvalidInputError"),
        doc: "The meta is not a JSON object, nests too deep, uses a reserved key (phx_ref, \
              phx_ref_prev), or holds a non-finite number or an escaped lone surrogate.",
    },
    ErrorClass {
        name: "TooLongError",
        parent: Some("InvalidInputError"),
        doc: "A topic, key or meta is longer than the engine's configured limit.",
    },
    ErrorClass {
        name: "ConfigError",
        parent: None,
        doc: "An engine setting is malformed, unknown or out of range.",
    },
    ErrorClass {
        name: "AlreadyTrackedError",
        parent: None,
        doc: "The (topic, conn) pair is tracked already.",
    },
    ErrorClass {
        name: "NotTrackedError",
        parent: None,
        doc: "The (topic, conn) pair is not tracked.",
    },
    ErrorClass {
        name: "LimitReachedError",
        parent: None,
        doc: "The engine's max_topics or max_presences is reached.",
    },
    ErrorClass {
        name: "ResourceError",
        parent: None,
        doc: "The operating system refused a resource (the wake-up descriptor, or the Redis \
              link's thread).",
    },
    ErrorClass {
        name: "NoClusterError",
        parent: None,
        doc: "A cluster call on an engine created without the cluster setting.",
    },
    ErrorClass {
        name: "RejectedError",
        parent: None,
        doc: "A replication message was refused (unauthenticated, malformed, oversized or \
              replayed): nothing of it was merged, and the cluster stats count it.",
    },
    ErrorClass {
        name: "PanicError",
        parent: None,
        doc: "A bug inside the engine was caught at its boundary. The engine that panicked \
              refuses every later call; drop it and make a new one.",
    },
];

/// Declares `ErrorKind` from one row per kind: its C status value, its status name
/// without the `PRESENCE_STATUS_` prefix, and its exception class.
macro_rules! error_kinds {
    ($(
        $(#[doc = $doc:literal])*
        $kind:ident = $value:literal, $name:literal, $class:literal;
    )*) => {
        /// What went wrong, as a stable kind.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorKind {
            $($(#[doc = $doc])* $kind,)*
        }

        impl ErrorKind {
            /// Every kind, in status order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$kind),*];

            /// The C status value (`presence_status`).
            pub const fn status(self) -> u32 {
                match self {
                    $(ErrorKind::$kind => $value,)*
                }
            }

            /// The status name without its prefix, e.g. `"NOT_TRACKED"`; in lower case
            /// it is the `kind` attribute of the bindings' exceptions.
            pub const fn name(self) -> &'static str {
                match self {
                    $(ErrorKind::$kind => $name,)*
                }
            }

            /// The bindings' exception class (a name of `ERROR_CLASSES`).
            pub const fn class(self) -> &'static str {
                match self {
                    $(ErrorKind::$kind => $class,)*
                }
            }

            /// The kind's documentation.
            pub fn doc(self) -> String {
                let lines: &[&str] = match self {
                    $(ErrorKind::$kind => &[$($doc),*],)*
                };
                lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ")
            }
        }
    };
}

error_kinds! {
    /// A string argument is not valid UTF-8.
    InvalidUtf8 = 2, "INVALID_UTF8", "InvalidInputError";
    /// A meta is not a JSON object, nests more than 64 levels deep, or uses a key the
    /// engine reserves (`phx_ref`, `phx_ref_prev`).
    InvalidMeta = 3, "INVALID_META", "InvalidMetaError";
    /// The configuration is malformed or has an unknown field or an out-of-range value.
    InvalidConfig = 4, "INVALID_CONFIG", "ConfigError";
    /// A topic or key is empty, or a key equals the anonymous group name of the phoenix format.
    InvalidArgument = 5, "INVALID_ARGUMENT", "InvalidInputError";
    /// A topic, key or meta is longer than the configured limit.
    TooLong = 6, "TOO_LONG", "TooLongError";
    /// The (topic, conn) pair is tracked already.
    AlreadyTracked = 7, "ALREADY_TRACKED", "AlreadyTrackedError";
    /// The (topic, conn) pair is not tracked.
    NotTracked = 8, "NOT_TRACKED", "NotTrackedError";
    /// The configured maximum number of topics or presences is reached.
    LimitReached = 9, "LIMIT_REACHED", "LimitReachedError";
    /// The operating system refused a resource (the wake-up descriptor), or the Redis link
    /// could not start.
    Io = 10, "IO", "ResourceError";
    /// A cluster call on an engine created without a `cluster` config.
    NoCluster = 11, "NO_CLUSTER", "NoClusterError";
    /// A replication message was refused: unauthenticated, malformed, oversized or replayed.
    Rejected = 12, "REJECTED", "RejectedError";
    /// An earlier call panicked inside the engine, which may have left its state
    /// inconsistent: the engine refuses every later call.
    Panicked = 99, "PANIC", "PanicError";
}

/// An error with its kind and a readable message, and for a call on many items (such as
/// `Engine::counts_many`), the position of the item it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    index: Option<usize>,
}

impl Error {
    /// Builds an error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            index: None,
        }
    }

    /// The same error about item `index` of a call on many items, which its message then
    /// names (`what[index]: ...`), so that C callers, who get only the message, learn it.
    pub(crate) fn at(self, what: &str, index: usize) -> Self {
        Error {
            kind: self.kind,
            message: format!("{what}[{index}]: {}", self.message),
            index: Some(index),
        }
    }

    /// For a call on many items, the position of the item this error is about.
    pub fn index(&self) -> Option<usize> {
        self.index
    }

    /// The stable kind of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Result alias of the core.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_unique_status_and_name_and_a_known_class() {
        let mut values: Vec<u32> = ErrorKind::ALL.iter().map(|k| k.status()).collect();
        values.sort_unstable();
        values.dedup();
        assert_eq!(values.len(), ErrorKind::ALL.len());
        for kind in ErrorKind::ALL {
            assert!(
                ERROR_CLASSES.iter().any(|c| c.name == kind.class()),
                "{kind:?}: class {} is not in ERROR_CLASSES",
                kind.class()
            );
            assert!(!kind.doc().is_empty());
        }
    }

    #[test]
    fn classes_extend_earlier_classes() {
        for (i, class) in ERROR_CLASSES.iter().enumerate() {
            if let Some(parent) = class.parent {
                assert!(
                    ERROR_CLASSES[..i].iter().any(|c| c.name == parent),
                    "{}: parent {parent} must come first",
                    class.name
                );
            }
        }
    }
}
