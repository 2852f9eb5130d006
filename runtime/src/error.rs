//! Errors, in two layers.
//!
//! Inside the crate a failure is an [`Error`]: an enum of what went wrong,
//! holding the error of the dependency that reported it, which the backend's
//! breaker and the store's logging look into. Users never see it: at the
//! crate's edge (`Cache::new`, `ping`, invalidation) it becomes the opaque
//! [`public::Error`], re-exported as `redis_cached::Error`, whose
//! [`ErrorKind`] names no dependency.
//!
//! Messages never repeat their source's text (the source is in
//! `source()`); [`Chain`] prints a whole chain once, for log lines.

pub(crate) mod public;

use std::fmt;
use std::time::Duration;

use public::ErrorKind;

/// What went wrong between a cached call and its store; see the module docs.
///
/// `pub` only so that the doors of `__private` may name it; it is reachable
/// from no public path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A command reached Redis, or tried to, and failed: an error reply, a
    /// lost connection, a response timeout.
    #[error("{}", redis_message(.0))]
    Redis(#[source] redis::RedisError),
    /// No connection to Redis could be made: refused, timed out, or
    /// authentication failed.
    #[error("{}", connect_message(.0))]
    Connect(#[source] redis::RedisError),
    /// The breaker is open: Redis failed moments ago and is not asked again
    /// until up to this long after.
    #[error("Redis failed moments ago; not asking it again for up to {0:?}")]
    Unavailable(Duration),
    /// No pooled connection within the connect timeout (sync calls), and no
    /// connection error to tell why.
    #[error("no connection to Redis within the connect timeout")]
    #[cfg(feature = "sync")]
    Pool(#[source] r2d2::Error),
    /// The configuration is unusable, e.g. a malformed URL. The text holds no
    /// credentials (see `redact.rs`).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A value could not be encoded with bincode. Like [`Decode`](Self::Decode),
    /// it keeps bincode's text, which names the failing field, not its error.
    #[error("a value could not be encoded: {0}")]
    Encode(String),
    /// Stored bytes could not be decoded: garbage, an unknown format, or not
    /// written by this crate at all.
    #[error("a stored value could not be decoded: {0}")]
    Decode(String),
    /// A stored value has another serde shape than the reader's type (see
    /// `shape.rs`), or a format from before shapes: not an error of the
    /// cache, a miss, counted in `Stats::shape_mismatches`.
    #[error("a stored value has another shape: {0}")]
    Shape(&'static str),
    /// The operating system gave no random bytes for a `lock = …` token.
    #[error("no random bytes for a lock token: {0}")]
    Random(String),
    /// A value is larger than the cache's `max_value_size`.
    #[error("a value of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The size of the encoded value.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
}

impl From<bincode::error::EncodeError> for Error {
    fn from(error: bincode::error::EncodeError) -> Self {
        Self::Encode(error.to_string())
    }
}

/// How a failure bears on whether Redis is reachable, for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Redis answered (maybe with an error reply), or Redis was not asked.
    Answered,
    /// A command was lost: a response timeout, a dropped connection.
    Lost,
    /// No connection could be made at all.
    Refused,
}

impl Error {
    /// The kind users see.
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            Self::Redis(e) | Self::Connect(e) => redis_kind(e),
            Self::Unavailable(_) => ErrorKind::Unavailable,
            #[cfg(feature = "sync")]
            Self::Pool(_) => ErrorKind::Timeout,
            Self::Config(_) => ErrorKind::Config,
            Self::Encode(_) => ErrorKind::Encode,
            Self::Decode(_) | Self::Shape(_) => ErrorKind::Decode,
            Self::Random(_) => ErrorKind::Other,
            Self::TooLarge { .. } => ErrorKind::TooLarge,
        }
    }

    /// What this failure says about reaching Redis.
    pub(crate) fn reach(&self) -> Reach {
        match self {
            Self::Connect(_) => Reach::Refused,
            #[cfg(feature = "sync")]
            Self::Pool(_) => Reach::Refused,
            Self::Redis(e) => match redis_kind(e) {
                ErrorKind::Auth => Reach::Refused,
                _ if e.is_connection_refusal() => Reach::Refused,
                ErrorKind::Connection | ErrorKind::Timeout => Reach::Lost,
                _ => Reach::Answered,
            },
            _ => Reach::Answered,
        }
    }
}

/// The kind of a `redis` error.
fn redis_kind(e: &redis::RedisError) -> ErrorKind {
    use redis::{ErrorKind as K, ServerErrorKind as S};
    if e.is_timeout() {
        return ErrorKind::Timeout;
    }
    if matches!(e.code(), Some("NOAUTH" | "WRONGPASS")) {
        return ErrorKind::Auth;
    }
    match e.kind() {
        K::AuthenticationFailed => ErrorKind::Auth,
        K::InvalidClientConfig => ErrorKind::Config,
        K::Io | K::ClusterConnectionNotFound => ErrorKind::Connection,
        K::Server(S::NoPerm) => ErrorKind::Auth,
        _ => ErrorKind::Redis,
    }
}

fn redis_message(e: &redis::RedisError) -> &'static str {
    match redis_kind(e) {
        ErrorKind::Timeout => "Redis did not answer in time",
        ErrorKind::Auth => "Redis refused the command: authentication failed",
        ErrorKind::Connection => "the connection to Redis failed",
        ErrorKind::Config => "the Redis client refused its configuration",
        _ => "Redis answered with an error",
    }
}

fn connect_message(e: &redis::RedisError) -> &'static str {
    match redis_kind(e) {
        ErrorKind::Auth => "could not connect to Redis: authentication failed",
        ErrorKind::Timeout => "could not connect to Redis: timed out",
        ErrorKind::Config => "could not connect to Redis: invalid client configuration",
        _ => "could not connect to Redis",
    }
}

/// Prints an error and its sources once each, `: `-separated, skipping a
/// source whose text its parent already printed (as `redis` errors do).
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut last = self.0.to_string();
        f.write_str(&last)?;
        let mut next = self.0.source();
        while let Some(source) = next {
            let text = source.to_string();
            if !text.is_empty() && !last.contains(&text) {
                write!(f, ": {text}")?;
            }
            last = text;
            next = source.source();
        }
        Ok(())
    }
}

/// The error of a command, lookup or task that took longer than allowed:
/// `what` timed out.
pub(crate) fn timed_out(what: &str) -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what} timed out"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: std::io::ErrorKind) -> redis::RedisError {
        std::io::Error::new(kind, "boom").into()
    }

    #[test]
    fn kinds_and_reach_of_redis_errors() {
        let refused = Error::Redis(io(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(refused.kind(), ErrorKind::Connection);
        assert_eq!(refused.reach(), Reach::Refused);
        let slow = Error::Redis(io(std::io::ErrorKind::TimedOut));
        assert_eq!(slow.kind(), ErrorKind::Timeout);
        assert_eq!(slow.reach(), Reach::Lost);
        let reply = Error::Redis(redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "bad",
        )));
        assert_eq!(reply.kind(), ErrorKind::Redis);
        assert_eq!(reply.reach(), Reach::Answered);
        let auth = Error::Connect(redis::RedisError::from((
            redis::ErrorKind::AuthenticationFailed,
            "no",
        )));
        assert_eq!(auth.kind(), ErrorKind::Auth);
        assert_eq!(auth.reach(), Reach::Refused);
        assert!(auth.to_string().contains("authentication failed"), "{auth}");
    }

    #[test]
    fn a_chain_prints_each_text_once() {
        let error = Error::Redis(io(std::io::ErrorKind::TimedOut));
        let printed = Chain(&error).to_string();
        assert_eq!(printed, "Redis did not answer in time: boom");
    }
}
