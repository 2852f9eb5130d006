//! Shared by the integration tests: what needs a `redis_cached::Cache` on
//! top of the workspace's test harness (`tests/harness`: throwaway
//! `redis-server` processes and bounded waits), and helpers that read what
//! is in Redis.
#![allow(dead_code)] // each test binary uses its own subset

use std::sync::OnceLock;

use redis::Commands;
use redis_cached::{Cache, CacheBuilder};

#[allow(unused_imports)] // each test binary uses its own subset
pub use harness::{
    PATIENCE, eventually, eventually_async, eventually_async_within, eventually_within,
};

pub mod logs;
pub mod tls;

/// A `redis-server` on a free port, killed when dropped; a
/// [`harness::Server`] (its URL, keys, `PTTL`s, …) that also makes caches.
pub struct TestRedis(harness::Server);

impl TestRedis {
    /// Starts a server and waits until it answers `PING`.
    pub fn start() -> Self {
        Self(harness::Server::start())
    }

    /// Starts a server with these extra `redis-server` arguments (say,
    /// `["--requirepass", "s3cret"]`) on a free port, and waits until it
    /// answers. Its [`url`](harness::Server::url) holds no password.
    pub fn start_with(args: &[&str]) -> Self {
        Self(harness::Server::start_with(args))
    }

    /// [`start_with`](Self::start_with) on `port` (say, that of a stopped
    /// server, to bring it back).
    pub fn start_on(port: u16, args: &[&str]) -> Self {
        Self(harness::Server::start_on(port, args))
    }

    /// Starts a server and points `slot` at a cache on it.
    pub fn start_for(slot: &CacheSlot) -> Self {
        let redis = Self::start();
        slot.set(redis.cache());
        redis
    }

    /// A fresh cache on this server.
    pub fn cache(&self) -> Cache {
        Cache::new(self.url()).expect("valid url")
    }
}

impl std::ops::Deref for TestRedis {
    type Target = harness::Server;
    fn deref(&self) -> &harness::Server {
        &self.0
    }
}

impl std::ops::DerefMut for TestRedis {
    fn deref_mut(&mut self) -> &mut harness::Server {
        &mut self.0
    }
}

/// A `Cache` a test sets at its start, for `#[redis_cached(cache = SLOT)]`
/// functions declared inside the test.
pub struct CacheSlot(OnceLock<Cache>);

impl CacheSlot {
    pub const fn new() -> Self {
        Self(OnceLock::new())
    }

    pub fn set(&self, cache: Cache) {
        assert!(
            self.0.set(cache).is_ok(),
            "a CacheSlot is set once per test"
        );
    }
}

impl std::ops::Deref for CacheSlot {
    type Target = Cache;
    fn deref(&self) -> &Cache {
        self.0
            .get()
            .expect("start the test's Redis before calling its cached functions")
    }
}

/// Counts how often a function body ran.
pub struct Calls(std::sync::atomic::AtomicUsize);

impl Calls {
    pub const fn new() -> Self {
        Self(std::sync::atomic::AtomicUsize::new(0))
    }

    pub fn inc(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Counts a run and returns its number (1 for the first).
    pub fn next(&self) -> usize {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
    }

    pub fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// `INCR key` on the Redis at `url`, for a function body to count its runs in Redis.
pub fn incr(url: &str, key: &str) -> i64 {
    let mut conn = redis::Client::open(url)
        .and_then(|client| client.get_connection())
        .expect("connect to the test server");
    conn.incr(key, 1).expect("INCR")
}

/// Blocks until `cache` has counted `misses` misses: every caller has read
/// the key, found nothing, and gone on to join the key's flight.
pub fn wait_for_misses(cache: &Cache, misses: u64) {
    eventually("the callers miss", || cache.stats().misses >= misses);
}

/// Async [`wait_for_misses`].
pub async fn wait_for_misses_async(cache: &Cache, misses: u64) {
    eventually_async("the callers miss", || {
        std::future::ready(cache.stats().misses >= misses)
    })
    .await;
}

/// The store under one test's cache: a throwaway Redis, or `mem://`, so
/// that one test body runs against both.
pub enum Store {
    Redis(Box<TestRedis>),
    Memory,
}

impl Store {
    /// A fresh Redis, with `slot` pointed at a cache on it.
    pub fn redis(slot: &CacheSlot) -> Self {
        Self::redis_with(slot, |builder| builder)
    }

    /// `slot` pointed at a fresh in-memory cache.
    pub fn memory(slot: &CacheSlot) -> Self {
        Self::memory_with(slot, |builder| builder)
    }

    /// [`redis`](Self::redis), the cache's builder passed through `configure`.
    pub fn redis_with(
        slot: &CacheSlot,
        configure: impl FnOnce(CacheBuilder) -> CacheBuilder,
    ) -> Self {
        let redis = TestRedis::start();
        slot.set(
            configure(Cache::builder(redis.url()))
                .build()
                .expect("valid url"),
        );
        Self::Redis(Box::new(redis))
    }

    /// [`memory`](Self::memory), the cache's builder passed through `configure`.
    pub fn memory_with(
        slot: &CacheSlot,
        configure: impl FnOnce(CacheBuilder) -> CacheBuilder,
    ) -> Self {
        slot.set(
            configure(Cache::builder("mem://"))
                .build()
                .expect("mem:// is valid"),
        );
        Self::Memory
    }

    /// The keys in Redis, sorted; `None` for the memory store.
    pub fn keys(&self) -> Option<Vec<String>> {
        match self {
            Self::Redis(redis) => Some(redis.keys()),
            Self::Memory => None,
        }
    }

    /// How many keys Redis holds; `None` for the memory store.
    pub fn key_count(&self) -> Option<usize> {
        self.keys().map(|keys| keys.len())
    }

    /// The `PTTL` of every key in Redis, in key order; `None` for `mem://`.
    pub fn pttls(&self) -> Option<Vec<i64>> {
        match self {
            Self::Redis(redis) => Some(redis.keys().iter().map(|k| redis.pttl(k)).collect()),
            Self::Memory => None,
        }
    }

    /// Checks that Redis holds exactly one key, starting with `start`, whose
    /// `PTTL` lies in `pttl`; nothing to look at for the memory store.
    pub fn assert_only_key(&self, start: &str, pttl: std::ops::RangeInclusive<i64>) {
        if let Self::Redis(redis) = self {
            let key = redis.only_key();
            assert!(key.starts_with(start), "{key} should start with {start}");
            let left = redis.pttl(&key);
            assert!(pttl.contains(&left), "PTTL {left}");
        }
    }
}
