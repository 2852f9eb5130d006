//! The [`Cache`] handle: one Redis deployment plus the settings and counters
//! shared by every function cached in it.

use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};

use crate::backend::{Backend, RedisBackend, Timeouts};
use crate::flight::Flights;
use crate::metrics::{Metrics, Stats};
use crate::{Error, codec};

/// A handle to a cache: cheap to clone, safe to share between threads and runtimes.
///
/// Building one never touches the network; the connection is made on first
/// use and re-made when it breaks.
///
/// ```
/// use std::time::Duration;
/// use redis_cached::Cache;
///
/// let cache = Cache::builder("redis://127.0.0.1:6379/0")
///     .prefix("shop:")
///     .connect_timeout(Duration::from_millis(250))
///     .build()
///     .unwrap();
/// assert_eq!(cache.prefix(), "shop:");
/// ```
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    prefix: String,
    max_value_size: usize,
    metrics: Metrics,
    flights: Flights,
}

/// Settings for a [`Cache`]; start from [`Cache::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct CacheBuilder {
    url: String,
    prefix: String,
    timeouts: Timeouts,
    max_value_size: usize,
    pool_size: u32,
}

impl Cache {
    /// A cache on the Redis at `url` with default settings.
    ///
    /// `url` is anything the `redis` crate understands: `redis://[user:pass@]host[:port][/db]`,
    /// `rediss://…` (TLS, with the `tls` feature) or `redis+unix:///path/to.sock`.
    /// Fails only if the URL is malformed.
    pub fn new(url: &str) -> Result<Self, Error> {
        Self::builder(url).build()
    }

    /// Starts configuring a cache on the Redis at `url`.
    pub fn builder(url: &str) -> CacheBuilder {
        CacheBuilder {
            url: url.to_owned(),
            prefix: String::new(),
            timeouts: Timeouts {
                connect: Duration::from_secs(1),
                response: Duration::from_millis(500),
            },
            max_value_size: 16 << 20,
            pool_size: 8,
        }
    }

    /// A cache whose every operation fails with `message`: cached calls run
    /// their bodies, and the failure is logged and counted.
    pub(crate) fn unusable(message: String) -> Self {
        Self::from_backend(Backend::Unusable(message), String::new(), 0)
    }

    fn from_backend(backend: Backend, prefix: String, max_value_size: usize) -> Self {
        let inner = Inner {
            backend,
            prefix,
            max_value_size,
            metrics: Metrics::default(),
            flights: Flights::default(),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The string every key of this cache starts with.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// What the cache's counters read now.
    pub fn stats(&self) -> Stats {
        self.inner.metrics.snapshot()
    }

    /// Checks that Redis answers, connecting if needed (for health checks and start-up).
    pub async fn ping(&self) -> Result<(), Error> {
        self.inner.backend.ping().await
    }

    /// Blocking [`ping`](Self::ping), on the pool used by sync functions.
    pub fn ping_blocking(&self) -> Result<(), Error> {
        self.inner.backend.ping_sync()
    }

    /// Reads and decodes the value under `key`. Every failure (Redis down,
    /// garbage bytes) is logged, counted, and reported as a miss.
    pub(crate) async fn lookup<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let found = self.inner.backend.get(key).await;
        self.decode_found(key, found)
    }

    /// Sync [`lookup`](Self::lookup).
    pub(crate) fn lookup_sync<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let found = self.inner.backend.get_sync(key);
        self.decode_found(key, found)
    }

    /// The store behind this cache, for commands beyond `GET` and `SET`.
    pub(crate) fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// The calls of this cache that are computing a value right now.
    pub(crate) fn flights(&self) -> &Flights {
        &self.inner.flights
    }

    /// Decodes bytes another call computed or stored; a failure is logged
    /// and counted, and the caller computes the value itself.
    pub(crate) fn decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Option<T> {
        codec::decode(bytes, self.inner.max_value_size)
            .inspect_err(|error| self.failed("read", key, error))
            .ok()
    }

    fn decode_found<T: DeserializeOwned>(
        &self,
        key: &str,
        found: Result<Option<Vec<u8>>, Error>,
    ) -> Option<T> {
        let decoded = match found {
            Ok(Some(bytes)) => codec::decode(&bytes, self.inner.max_value_size).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        match decoded {
            Ok(Some(value)) => {
                self.inner.metrics.hit();
                return Some(value);
            }
            Ok(None) => {}
            Err(error) => self.failed("read", key, &error),
        }
        self.inner.metrics.miss();
        None
    }

    /// Encodes `value` for `key`; `None` (logged and counted) if it can't be
    /// encoded or is over the size limit, and so won't be stored.
    pub(crate) fn encode<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Option<Vec<u8>> {
        codec::encode(value, self.inner.max_value_size)
            .inspect_err(|error| self.failed("write", key, error))
            .ok()
    }

    /// Stores encoded `bytes` under `key`; failures are logged and counted.
    pub(crate) async fn store(&self, key: &str, bytes: &[u8], ttl: Duration) {
        let result = self.inner.backend.set(key, bytes, ttl_millis(ttl)).await;
        self.stored(key, result);
    }

    /// Sync [`store`](Self::store).
    pub(crate) fn store_sync(&self, key: &str, bytes: &[u8], ttl: Duration) {
        let result = self.inner.backend.set_sync(key, bytes, ttl_millis(ttl));
        self.stored(key, result);
    }

    fn stored(&self, key: &str, result: Result<(), Error>) {
        match result {
            Ok(()) => self.inner.metrics.store(),
            Err(error) => self.failed("write", key, &error),
        }
    }

    /// Logs and counts a failure of a cached call's cache access. The one place
    /// every such failure passes through.
    pub(crate) fn failed(&self, action: &str, key: &str, error: &Error) {
        self.inner.metrics.error();
        tracing::warn!(%key, %error, "redis-cached: cache {action} failed; the function runs uncached");
    }
}

fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("prefix", &self.inner.prefix)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl CacheBuilder {
    /// A string put before every key, e.g. `"myapp:"` (default: none).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one attempt to connect may take (default 1 s). While Redis is
    /// unreachable, this bounds the extra time each cached call spends.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.connect = timeout;
        self
    }

    /// How long Redis may take to answer one command (default 500 ms).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.response = timeout;
        self
    }

    /// The largest encoded value to store or read, in bytes (default 16 MiB).
    /// Larger results are returned but not cached; larger stored values are
    /// treated as a miss.
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value_size = bytes;
        self
    }

    /// How many connections sync functions may hold at once (default 8).
    pub fn pool_size(mut self, connections: u32) -> Self {
        self.pool_size = connections.max(1);
        self
    }

    /// The cache; fails only if the URL is malformed.
    pub fn build(self) -> Result<Cache, Error> {
        let backend = RedisBackend::new(&self.url, self.timeouts, self.pool_size)?;
        Ok(Cache::from_backend(
            Backend::Redis(backend),
            self.prefix,
            self.max_value_size,
        ))
    }
}
