//! The error users see: `redis_cached::Error`, opaque, with a
//! [`kind`](Error::kind) to match on.

use std::fmt;

/// An error from an explicit operation of the crate: building a
/// [`Cache`](crate::Cache), [`ping`](crate::Cache::ping),
/// [`invalidate_all`](crate::Cache::invalidate_all), a generated
/// `f_invalidate`, the typed API's [`get`](crate::Cache::get),
/// [`set`](crate::Cache::set) and [`delete`](crate::Cache::delete).
///
/// Inside a cached call errors never reach the caller: the call fails open
/// (it runs the function body), and the failure is counted in
/// [`Stats::errors`](crate::Stats::errors) and logged.
///
/// Match on [`kind`](Self::kind); the error of the underlying library, if
/// any, is its [`source`](std::error::Error::source), and is not repeated
/// in its message. Neither ever holds a password.
///
/// ```no_run
/// use redis_cached::{Cache, ErrorKind};
///
/// # async fn run() {
/// let cache = Cache::new("redis://app:secret@127.0.0.1:6379").unwrap();
/// match cache.ping().await {
///     Ok(()) => {}
///     Err(e) if e.kind() == ErrorKind::Auth => eprintln!("check the password: {e}"),
///     Err(e) if e.is_timeout() => eprintln!("Redis is slow: {e}"),
///     Err(e) => eprintln!("{e}"),
/// }
/// # }
/// ```
pub struct Error(Box<super::Error>);

/// What kind of failure an [`Error`] is.
///
/// More kinds may be added; match with a `_` arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Redis failed moments ago (connections refused, or several commands in
    /// a row lost), so it is not asked again for a while; see
    /// [the breaker](crate::guide::errors#the-breaker).
    Unavailable,
    /// No connection could be made, or an open one broke.
    Connection,
    /// Redis did not answer within the connect or response timeout.
    Timeout,
    /// Redis refused the credentials (wrong user or password, or none given)
    /// or the ACL user may not run a command.
    Auth,
    /// The configuration is unusable, e.g. a malformed URL.
    Config,
    /// Redis answered with an error reply, or with an unexpected reply.
    Redis,
    /// A value could not be encoded.
    Encode,
    /// Stored bytes could not be decoded.
    Decode,
    /// A value exceeds the cache's `max_value_size`.
    TooLarge,
    /// Anything else, e.g. the operating system gave no random bytes.
    Other,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind()
    }

    /// Whether Redis did not answer in time.
    pub fn is_timeout(&self) -> bool {
        self.kind() == ErrorKind::Timeout
    }

    /// Whether Redis could not be reached: no connection, a broken one, a
    /// timeout, or Redis not asked because it failed moments ago.
    pub fn is_connect(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::Connection | ErrorKind::Timeout | ErrorKind::Unavailable
        )
    }

    /// Whether Redis refused the credentials.
    pub fn is_auth(&self) -> bool {
        self.kind() == ErrorKind::Auth
    }

    /// Whether the configuration is unusable.
    pub fn is_config(&self) -> bool {
        self.kind() == ErrorKind::Config
    }
}

impl Error {
    /// The failure inside.
    pub(crate) fn inner(&self) -> &super::Error {
        &self.0
    }
}

impl From<super::Error> for Error {
    fn from(error: super::Error) -> Self {
        Self(Box::new(error))
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Error");
        debug.field("kind", &self.kind());
        debug.field("message", &self.0.to_string());
        if let Some(source) = std::error::Error::source(&*self.0) {
            debug.field("source", &source.to_string());
        }
        debug.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.0)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unavailable => "unavailable",
            Self::Connection => "connection",
            Self::Timeout => "timeout",
            Self::Auth => "authentication",
            Self::Config => "configuration",
            Self::Redis => "redis error reply",
            Self::Encode => "encode",
            Self::Decode => "decode",
            Self::TooLarge => "too large",
            Self::Other => "other",
        })
    }
}
