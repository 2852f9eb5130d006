//! The crate's error type.

/// Everything that can go wrong between a cached call and Redis.
///
/// Inside a cached call these errors never reach the caller: the call fails
/// open (it runs the function body), logs the error at `warn` and counts it in
/// [`Stats::errors`](crate::Stats::errors). They are returned from the
/// explicit APIs: [`Cache::new`](crate::Cache::new), [`Cache::ping`](crate::Cache::ping), …
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Redis answered with an error, the connection failed or it timed out.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis failed to answer moments ago; it is not asked again until this
    /// long after that failure, so that each call doesn't wait for it.
    #[error("redis unreachable moments ago; not retrying for up to {0:?}")]
    Unavailable(std::time::Duration),
    /// No pooled connection could be had within the connect timeout (sync calls).
    #[error("redis connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// The configuration is unusable, e.g. a malformed URL.
    #[error("configuration: {0}")]
    Config(String),
    /// A value could not be encoded with bincode.
    #[error("encoding a value: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    /// Stored bytes could not be decoded: written by another type, another
    /// format version, or not by this crate at all.
    #[error("decoding a stored value: {0}")]
    Decode(String),
    /// The operating system gave no random bytes for a `lock = …` token; the
    /// call computed without the lock.
    #[error("no random lock token: {0}")]
    Random(String),
    /// A value is larger than the cache's `max_value_size`.
    #[error("value of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The size of the encoded value.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
}
