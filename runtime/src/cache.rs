//! The [`Cache`] handle: one store (a Redis deployment, or this process's
//! memory) plus the settings and counters shared by every function cached in it.

use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};

use crate::backend::{Backend, MemoryBackend, RedisBackend, Timeouts};
use crate::codec::Meta;
use crate::flight::Flights;
use crate::local::{Local, Tier};
use crate::metrics::{Metrics, Stats};
use crate::renew::Renewals;
use crate::tracking::Start;
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
    renewals: Renewals,
    /// The in-process tier; `None` for a cache that is not on Redis.
    local: Option<Local>,
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
    max_entries: u64,
    local: Option<u64>,
}

/// The URL of the in-process backend.
const MEMORY_URL: &str = "mem://";

impl Cache {
    /// A cache on the store at `url` with default settings.
    ///
    /// `url` is anything the `redis` crate understands: `redis://[user:pass@]host[:port][/db]`,
    /// `rediss://…` (TLS, with the `tls` feature) or `redis+unix:///path/to.sock`;
    /// or `mem://` for a cache in this process's memory (see [`in_memory`](Self::in_memory)).
    /// Fails only if the URL is malformed.
    pub fn new(url: &str) -> Result<Self, Error> {
        Self::builder(url).build()
    }

    /// Starts configuring a cache on the store at `url` (see [`new`](Self::new)).
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
            max_entries: 100_000,
            local: None,
        }
    }

    /// A cache in this process's memory, with default settings: for tests,
    /// local development, or a single process that needs no shared cache.
    ///
    /// It behaves like the Redis backend (values are encoded the same way,
    /// each expires after its TTL, [`invalidate_all`](Self::invalidate_all)
    /// works) but is not shared with other processes and is lost on exit. It
    /// holds at most 100 000 entries, evicting the least recently used; set
    /// another bound with `Cache::builder("mem://").max_entries(n)`. The same
    /// cache is had with the URL `mem://`, e.g. `REDIS_CACHED_URL=mem://`.
    ///
    /// ```
    /// use redis_cached::{Cache, redis_cached};
    ///
    /// static CACHE: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(Cache::in_memory);
    ///
    /// #[redis_cached(ttl = 60, cache = CACHE)]
    /// fn double(x: u32) -> u32 {
    ///     x * 2
    /// }
    ///
    /// assert_eq!(double(21), 42);
    /// assert_eq!(double(21), 42);
    /// assert_eq!(CACHE.stats().hits, 1);
    /// ```
    pub fn in_memory() -> Self {
        let builder = Self::builder(MEMORY_URL);
        let backend = Backend::Memory(MemoryBackend::new(builder.max_entries));
        Self::from_backend(backend, builder.prefix, builder.max_value_size, None)
    }

    /// A cache whose every operation fails with `message`: cached calls run
    /// their bodies, and the failure is logged and counted.
    pub(crate) fn unusable(message: String) -> Self {
        Self::from_backend(Backend::Unusable(message), String::new(), 0, None)
    }

    fn from_backend(
        backend: Backend,
        prefix: String,
        max_value_size: usize,
        local: Option<Local>,
    ) -> Self {
        let inner = Inner {
            backend,
            prefix,
            max_value_size,
            metrics: Metrics::default(),
            flights: Flights::default(),
            renewals: Renewals::default(),
            local,
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

    /// Checks that Redis answers, connecting if needed (for health checks and
    /// start-up). An in-memory cache always answers.
    pub async fn ping(&self) -> Result<(), Error> {
        self.inner.backend.ping().await
    }

    /// Blocking [`ping`](Self::ping), on the pool used by sync functions.
    pub fn ping_blocking(&self) -> Result<(), Error> {
        self.inner.backend.ping_sync()
    }

    /// Deletes every cached value of the function `name`, for all arguments,
    /// and returns how many were deleted: the next call of each recomputes.
    ///
    /// `name` is the function's name as its keys hold it: the attribute's
    /// `name = "…"` if it has one, else `module::path::fn_name`, e.g.
    /// `concat!(module_path!(), "::price")` from the function's own module.
    /// For a method it is `module::path::method`, without the type:
    /// same-named methods of several types in one module are invalidated
    /// together (give them distinct `name`s to keep them apart). Other
    /// functions' entries, including those of a function whose name merely
    /// starts the same (`price_eu`), are kept. The generated
    /// `f_invalidate_all()` calls this with `f`'s name and cache.
    ///
    /// On Redis this walks the keys with `SCAN … MATCH <prefix><name>:*`
    /// (never `KEYS`, so Redis keeps serving other clients) and deletes them
    /// with `UNLINK` in batches; glob characters in the prefix or name match
    /// only themselves. A call that stores a value while this runs may keep it.
    /// Unlike a cached call, this does not fail open: a Redis error is returned.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), redis_cached::Error> {
    /// let cache = redis_cached::default_cache();
    /// let deleted = cache.invalidate_all("shop::prices::price").await?;
    /// println!("dropped {deleted} cached prices");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn invalidate_all(&self, name: &str) -> Result<u64, Error> {
        self.delete_matching(&self.function_prefix(name)).await
    }

    /// Blocking [`invalidate_all`](Self::invalidate_all), for sync code, on
    /// the pool used by sync functions.
    pub fn invalidate_all_blocking(&self, name: &str) -> Result<u64, Error> {
        self.delete_matching_sync(&self.function_prefix(name))
    }

    /// The start shared by every key of the function `name`, and by no
    /// other function's: `<prefix><name>:{` (names can't hold `{`, so
    /// `m::f` doesn't catch `m::f::g:{…}` or `m::f_eu:{…}`).
    fn function_prefix(&self, name: &str) -> String {
        format!("{}{}:{{", self.prefix(), name)
    }

    /// Deletes `key`; whether it existed. Errors are returned, not counted.
    pub(crate) async fn delete(&self, key: &str) -> Result<bool, Error> {
        self.inner.backend.del(key).await
    }

    /// Sync [`delete`](Self::delete).
    pub(crate) fn delete_sync(&self, key: &str) -> Result<bool, Error> {
        self.inner.backend.del_sync(key)
    }

    /// Deletes every key starting with `prefix`, taken literally; how many
    /// were deleted. Errors are returned, not counted.
    pub(crate) async fn delete_matching(&self, prefix: &str) -> Result<u64, Error> {
        self.inner.backend.delete_matching(prefix).await
    }

    /// Sync [`delete_matching`](Self::delete_matching).
    pub(crate) fn delete_matching_sync(&self, prefix: &str) -> Result<u64, Error> {
        self.inner.backend.delete_matching_sync(prefix)
    }

    /// Reads and decodes the value under `key`. Every failure (Redis down,
    /// garbage bytes) is logged, counted, and reported as a miss.
    pub(crate) async fn lookup<T: DeserializeOwned>(&self, key: &str) -> Option<(T, Meta)> {
        let found = self.inner.backend.get(key).await;
        self.decode_found(key, found)
    }

    /// Sync [`lookup`](Self::lookup).
    pub(crate) fn lookup_sync<T: DeserializeOwned>(&self, key: &str) -> Option<(T, Meta)> {
        let found = self.inner.backend.get_sync(key);
        self.decode_found(key, found)
    }

    /// The in-process tier of the function `name` (`local = own`), whose
    /// values Redis keeps `stale` past their ttl; `None` if it has none.
    pub(crate) fn tier<V>(
        &self,
        name: &'static str,
        own: Option<u64>,
        kit: Option<crate::local::Kit<V>>,
        stale: Duration,
    ) -> Option<Tier<'_, V>> {
        self.inner.local.as_ref()?.tier(name, own, kit, stale)
    }

    /// [`lookup_sync`](Self::lookup_sync) through `tier`: a value it holds
    /// costs no round trip; a value read from Redis is kept in it.
    pub(crate) fn lookup_tiered_sync<T: DeserializeOwned>(
        &self,
        key: &str,
        tier: Option<&Tier<'_, T>>,
    ) -> Option<(T, Meta)> {
        let Some(tier) = tier else {
            return self.lookup_sync(key);
        };
        if let Some(hit) = tier.get(key) {
            self.inner.metrics.local_hit();
            return Some(hit);
        }
        let ticket = tier.ticket(key);
        let found = self.lookup_sync(key);
        keep(tier, ticket, key, found.as_ref());
        found
    }

    /// Async [`lookup_tiered_sync`](Self::lookup_tiered_sync).
    pub(crate) async fn lookup_tiered<T: DeserializeOwned>(
        &self,
        key: &str,
        tier: Option<&Tier<'_, T>>,
    ) -> Option<(T, Meta)> {
        let Some(tier) = tier else {
            return self.lookup(key).await;
        };
        if let Some(hit) = tier.get(key) {
            self.inner.metrics.local_hit();
            return Some(hit);
        }
        let ticket = tier.ticket(key);
        let found = self.lookup(key).await;
        keep(tier, ticket, key, found.as_ref());
        found
    }

    /// The store behind this cache, for commands beyond `GET` and `SET`.
    pub(crate) fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// The calls of this cache that are computing a value right now.
    pub(crate) fn flights(&self) -> &Flights {
        &self.inner.flights
    }

    /// The keys of this cache whose values are being refreshed right now.
    pub(crate) fn renewals(&self) -> &Renewals {
        &self.inner.renewals
    }

    /// Decodes bytes another call computed or stored; a failure is logged
    /// and counted, and the caller computes the value itself.
    pub(crate) fn decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Option<T> {
        codec::decode(bytes, self.inner.max_value_size)
            .inspect_err(|error| self.failed("read", key, error))
            .ok()
            .map(|(value, _)| value)
    }

    fn decode_found<T: DeserializeOwned>(
        &self,
        key: &str,
        found: Result<Option<Vec<u8>>, Error>,
    ) -> Option<(T, Meta)> {
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
    pub(crate) fn encode<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        meta: Meta,
    ) -> Option<Vec<u8>> {
        codec::encode(value, meta, self.inner.max_value_size)
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

/// Keeps a value read from Redis in `tier`, if tracking was live when the read began.
fn keep<T>(
    tier: &Tier<'_, T>,
    ticket: Option<crate::local::Ticket>,
    key: &str,
    found: Option<&(T, Meta)>,
) {
    if let (Some(ticket), Some((value, meta))) = (ticket, found) {
        tier.keep(ticket, key, value, *meta);
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
    /// An in-memory cache has no connections and ignores it.
    pub fn pool_size(mut self, connections: u32) -> Self {
        self.pool_size = connections.max(1);
        self
    }

    /// The most values an in-memory (`mem://`) cache holds (default 100 000);
    /// past it, the least recently used are evicted. Redis ignores it: bound
    /// Redis with its own `maxmemory` and `maxmemory-policy` settings.
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.max_entries = entries;
        self
    }

    /// Keeps up to `entries` decoded values in this process, in front of
    /// Redis, for every function of this cache that has no `local = N` of
    /// its own and whose value type is `Clone + Send + Sync + 'static`
    /// (functions generic over their return type are left out). A hit there
    /// costs no round trip and no decoding, only a clone.
    ///
    /// Default: off. A function with `local = N` gets a table of `N` entries
    /// of its own instead, which does not count against `entries`. Values
    /// are kept coherent through Redis client-side caching (Redis 6 or
    /// later): when any client writes or deletes a key, Redis tells this
    /// process, which drops its copy; while that channel is down, calls read
    /// Redis. An in-memory (`mem://`) cache has no separate tier and ignores
    /// this. See the README section "In-process tier (`local`)".
    ///
    /// ```
    /// let cache = redis_cached::Cache::builder("redis://127.0.0.1:6379")
    ///     .prefix("shop:")
    ///     .local(10_000)
    ///     .build()
    ///     .unwrap();
    /// # drop(cache);
    /// ```
    pub fn local(mut self, entries: u64) -> Self {
        self.local = (entries > 0).then_some(entries);
        self
    }

    /// The cache; fails only if the URL is malformed.
    pub fn build(self) -> Result<Cache, Error> {
        let backend = if self.url.starts_with(MEMORY_URL) {
            if self.url != MEMORY_URL {
                return Err(Error::Config(format!(
                    "{:?}: an in-memory cache's URL is just {MEMORY_URL:?}; set its size with `max_entries`",
                    self.url
                )));
            }
            Backend::Memory(MemoryBackend::new(self.max_entries))
        } else {
            Backend::Redis(RedisBackend::new(&self.url, self.timeouts, self.pool_size)?)
        };
        let local = match &backend {
            Backend::Redis(redis) => {
                let start = Start::new(
                    redis.client().clone(),
                    self.prefix.clone(),
                    redis.timeouts().clone(),
                );
                Some(Local::new(self.local, start))
            }
            Backend::Memory(_) | Backend::Unusable(_) => None,
        };
        Ok(Cache::from_backend(
            backend,
            self.prefix,
            self.max_value_size,
            local,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: Meta = Meta {
        fresh_until_ms: u64::MAX,
        compute_ms: 0,
    };

    #[test]
    fn mem_url_makes_an_in_memory_cache_and_nothing_else_follows_it() {
        let cache = Cache::builder("mem://").prefix("p:").build().unwrap();
        assert!(matches!(cache.inner.backend, Backend::Memory(_)));
        assert_eq!(cache.prefix(), "p:");
        let err = Cache::new("mem://somewhere").unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
        assert!(err.to_string().contains("mem://somewhere"), "{err}");
        assert!(matches!(
            Cache::in_memory().inner.backend,
            Backend::Memory(_)
        ));
    }

    #[test]
    fn delete_reports_whether_the_key_was_there() {
        let cache = Cache::in_memory();
        cache.store_sync(
            "k",
            &cache.encode("k", &1u8, META).unwrap(),
            Duration::from_secs(60),
        );
        assert!(cache.delete_sync("k").unwrap());
        assert!(!cache.delete_sync("k").unwrap());
        assert_eq!(cache.lookup_sync::<u8>("k"), None);
    }

    #[tokio::test]
    async fn async_delete_reports_whether_the_key_was_there() {
        let cache = Cache::in_memory();
        cache
            .store(
                "k",
                &cache.encode("k", &1u8, META).unwrap(),
                Duration::from_secs(60),
            )
            .await;
        assert!(cache.delete("k").await.unwrap());
        assert!(!cache.delete("k").await.unwrap());
        assert_eq!(cache.lookup::<u8>("k").await, None);
    }

    #[test]
    fn invalidate_all_takes_one_function_under_the_cache_prefix() {
        let cache = Cache::builder("mem://").prefix("app:").build().unwrap();
        let ttl = Duration::from_secs(60);
        cache.store_sync(
            "app:m::f:{1}",
            &cache.encode("app:m::f:{1}", &1u8, META).unwrap(),
            ttl,
        );
        cache.store_sync(
            "app:m::f:{2}",
            &cache.encode("app:m::f:{2}", &2u8, META).unwrap(),
            ttl,
        );
        cache.store_sync(
            "app:m::f2:{1}",
            &cache.encode("app:m::f2:{1}", &3u8, META).unwrap(),
            ttl,
        );
        cache.store_sync(
            "m::f:{3}",
            &cache.encode("m::f:{3}", &4u8, META).unwrap(),
            ttl,
        );
        assert_eq!(cache.invalidate_all_blocking("m::f").unwrap(), 2);
        assert_eq!(cache.lookup_sync::<u8>("app:m::f2:{1}"), Some((3, META)));
        assert_eq!(cache.lookup_sync::<u8>("m::f:{3}"), Some((4, META)));
        assert_eq!(cache.invalidate_all_blocking("m::f").unwrap(), 0);
    }

    #[test]
    fn an_unusable_cache_returns_its_error_from_explicit_calls() {
        let cache = Cache::unusable("bad url".to_owned());
        let err = cache.invalidate_all_blocking("f").unwrap_err();
        assert!(err.to_string().contains("bad url"), "{err}");
        assert!(cache.delete_sync("k").is_err());
        assert_eq!(cache.stats().errors, 0, "explicit calls are not counted");
    }
}
