//! Errors of the core engine.
//!
//! Each variant maps one-to-one onto a C status code (see `ffi::status`) and onto a
//! Python/Node exception class, so the kind is part of the public contract while the
//! message is for humans only.

use std::fmt;

/// What went wrong, as a stable kind. The discriminants are the C status values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A string argument is not valid UTF-8.
    InvalidUtf8,
    /// A meta is not a JSON object, nests more than 64 levels deep, or uses a key the
    /// engine reserves (`phx_ref`, `phx_ref_prev`).
    InvalidMeta,
    /// The configuration is malformed or has an unknown field or an out-of-range value.
    InvalidConfig,
    /// A topic or key is empty, or a key equals the anonymous group name of the phoenix format.
    InvalidArgument,
    /// A topic, key or meta is longer than the configured limit.
    TooLong,
    /// The (topic, conn) pair is tracked already.
    AlreadyTracked,
    /// The (topic, conn) pair is not tracked.
    NotTracked,
    /// The configured maximum number of topics or presences is reached.
    LimitReached,
    /// The operating system refused a resource (the wake-up descriptor), or the Redis link
    /// could not start.
    Io,
    /// A cluster call on an engine created without a `cluster` config.
    NoCluster,
    /// A replication message was refused: unauthenticated, malformed, oversized or replayed.
    Rejected,
    /// An earlier call panicked inside the engine, which may have left its state
    /// inconsistent: the engine refuses every later call (C status `PANIC`).
    Panicked,
}

/// An error with its kind and a readable message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// Builds an error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
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
