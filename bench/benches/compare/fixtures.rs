//! What the contestants compute and where they store it: the values (a
//! `u64`, a ~1 KiB struct, a 64 KiB `Vec<f64>`), ours' and `cached`'s cached
//! functions of each, the caches they use, and [`Size`], which names them
//! per value size for the rows.

use std::fmt::Debug;
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use cached::AsyncRedisCache;
use cached::macros::concurrent_cached;
use redis_cached::{Cache, redis_cached};
use serde::{Serialize, de::DeserializeOwned};

use super::BenchError;

/// The TTL every contestant stores with, in seconds.
pub(super) const TTL: u64 = 600;
/// The argument of every hit.
pub(super) const HIT_ID: u64 = 42;

/// A cache the run sets once, when its server is up ([`connect`]); the
/// cached functions name it (`cache = CACHE`). There is no fallback: a row
/// whose cache could not be built fails the run instead of measuring
/// something else.
pub(super) struct Slot(OnceLock<Cache>);

impl Slot {
    pub(super) const fn new() -> Self {
        Self(OnceLock::new())
    }

    /// The cache, if it was set (its rows ran).
    pub(super) fn get(&self) -> Option<&Cache> {
        self.0.get()
    }

    /// Sets the slot to what `build` makes; `who` names it in the error.
    pub(super) fn set(
        &self,
        who: &str,
        build: redis_cached::CacheBuilder,
    ) -> Result<(), BenchError> {
        let cache = build
            .build()
            .map_err(|e| format!("{who}: building the cache failed: {e}"))?;
        self.0
            .set(cache)
            .map_err(|_| format!("{who}: the cache was set twice").into())
    }
}

impl std::ops::Deref for Slot {
    type Target = Cache;
    fn deref(&self) -> &Cache {
        self.0
            .get()
            .expect("a row ran before `connect` set its cache")
    }
}

/// The URL of the server this run started.
static URL: OnceLock<String> = OnceLock::new();

/// Our cache for the plain rows.
pub(super) static CACHE: Slot = Slot::new();
/// Our cache for the in-process tier.
pub(super) static LOCAL: Slot = Slot::new();
/// Our cache for the signed rows.
pub(super) static SIGNED: Slot = Slot::new();

/// Points every contestant at the server at `url` (ours: [`CACHE`],
/// [`LOCAL`], [`SIGNED`]; `cached`: [`cached_store`]).
pub(super) fn connect(url: &str) -> Result<(), BenchError> {
    URL.set(url.to_owned()).map_err(|_| "URL set twice")?;
    CACHE.set("ours", Cache::builder(url).prefix("ours:"))?;
    LOCAL.set("ours in-process", Cache::builder(url).prefix("ours-local:"))?;
    SIGNED.set(
        "ours signed",
        Cache::builder(url)
            .prefix("ours-signed:")
            .signing_key("the benchmark's signing key, 32+ bytes"),
    )
}

// ---------------------------------------------------------------------------
// The values: those of every bench (`shared/values.rs`)

pub(super) use super::values::{Record, record, series, small};

// ---------------------------------------------------------------------------
// Each contestant's cached functions, per value size

#[redis_cached(ttl = 600, cache = CACHE)]
pub(super) async fn ours_async_small(id: u64) -> u64 {
    small(id)
}

#[redis_cached(ttl = 600, cache = CACHE)]
pub(super) fn ours_sync_small(id: u64) -> u64 {
    small(id)
}

#[redis_cached(ttl = 600, cache = LOCAL, local = 16)]
pub(super) async fn ours_local_small(id: u64) -> u64 {
    small(id)
}

#[redis_cached(ttl = 600, cache = SIGNED)]
pub(super) async fn ours_signed_small(id: u64) -> u64 {
    small(id)
}

#[concurrent_cached(
    ty = "AsyncRedisCache<u64, u64>",
    create = { cached_store("cached:small:", false).await },
    map_error = |e| BenchError(format!("cached: {e:?}"))
)]
pub(super) async fn cached_small(id: u64) -> Result<u64, BenchError> {
    Ok(small(id))
}

/// [`cached_small`] for the throughput rows.
#[concurrent_cached(
    ty = "AsyncRedisCache<u64, u64>",
    create = { cached_store("cached:small-tasks:", false).await },
    map_error = |e| BenchError(format!("cached: {e:?}"))
)]
pub(super) async fn cached_small_tasks(id: u64) -> Result<u64, BenchError> {
    Ok(small(id))
}

#[redis_cached(ttl = 600, cache = CACHE)]
pub(super) async fn ours_async_record(id: u64) -> Record {
    record(id)
}

#[redis_cached(ttl = 600, cache = CACHE)]
pub(super) fn ours_sync_record(id: u64) -> Record {
    record(id)
}

#[redis_cached(ttl = 600, cache = LOCAL, local = 16)]
pub(super) async fn ours_local_record(id: u64) -> Record {
    record(id)
}

#[redis_cached(ttl = 600, cache = SIGNED)]
pub(super) async fn ours_signed_record(id: u64) -> Record {
    record(id)
}

#[concurrent_cached(
    ty = "AsyncRedisCache<u64, Record>",
    create = { cached_store("cached:record:", false).await },
    map_error = |e| BenchError(format!("cached: {e:?}"))
)]
pub(super) async fn cached_record(id: u64) -> Result<Record, BenchError> {
    Ok(record(id))
}

#[redis_cached(ttl = 600, cache = CACHE)]
pub(super) async fn ours_async_series(id: u64) -> Vec<f64> {
    series(id)
}

#[redis_cached(ttl = 600, cache = CACHE)]
pub(super) fn ours_sync_series(id: u64) -> Vec<f64> {
    series(id)
}

#[redis_cached(ttl = 600, cache = LOCAL, local = 16)]
pub(super) async fn ours_local_series(id: u64) -> Vec<f64> {
    series(id)
}

#[concurrent_cached(
    ty = "AsyncRedisCache<u64, Vec<f64>>",
    create = { cached_store("cached:series:", false).await },
    map_error = |e| BenchError(format!("cached: {e:?}"))
)]
pub(super) async fn cached_series(id: u64) -> Result<Vec<f64>, BenchError> {
    Ok(series(id))
}

/// A `cached` Redis store on this run's server; `create` of the attribute
/// must produce a store, so a failure here stops the benchmark.
pub(super) async fn cached_store<V>(
    prefix: &str,
    client_side_caching: bool,
) -> AsyncRedisCache<u64, V>
where
    V: Serialize + DeserializeOwned + Send + Sync + Clone,
{
    AsyncRedisCache::builder(prefix)
        .connection_string(URL.get().expect("`connect` ran"))
        .ttl(Duration::from_secs(TTL))
        .client_side_caching(client_side_caching)
        .build()
        .await
        .unwrap_or_else(|e| panic!("cached: building its Redis store failed: {e}"))
}

/// One value size: its values and each contestant's function for it.
pub(super) trait Size: Copy + Send + Sync + 'static {
    type V: Serialize + DeserializeOwned + Clone + PartialEq + Debug + Send + Sync + 'static;
    /// For the table.
    const LABEL: &'static str;
    /// For hand-written keys and `cached` prefixes.
    const KEY: &'static str;
    /// At most this many misses per round (the server keeps a round's keys).
    const MISSES_PER_ROUND: u64;
    /// Whether the signed rows measure this size.
    const SIGNED: bool;
    fn make(id: u64) -> Self::V;
    fn ours_async(id: u64) -> impl Future<Output = Self::V> + Send;
    /// On the signed cache (only called if [`SIGNED`](Self::SIGNED)).
    fn ours_signed(id: u64) -> impl Future<Output = Self::V> + Send;
    fn ours_sync(id: u64) -> Self::V;
    fn ours_local(id: u64) -> impl Future<Output = Self::V> + Send;
    fn cached(id: u64) -> impl Future<Output = Result<Self::V, BenchError>> + Send;
}

#[derive(Clone, Copy)]
pub(super) struct Small;

impl Size for Small {
    type V = u64;
    const LABEL: &'static str = "u64";
    const KEY: &'static str = "small";
    const MISSES_PER_ROUND: u64 = 400;
    const SIGNED: bool = true;
    fn make(id: u64) -> u64 {
        small(id)
    }
    fn ours_signed(id: u64) -> impl Future<Output = u64> + Send {
        ours_signed_small(id)
    }
    fn ours_async(id: u64) -> impl Future<Output = u64> + Send {
        ours_async_small(id)
    }
    fn ours_sync(id: u64) -> u64 {
        ours_sync_small(id)
    }
    fn ours_local(id: u64) -> impl Future<Output = u64> + Send {
        ours_local_small(id)
    }
    fn cached(id: u64) -> impl Future<Output = Result<u64, BenchError>> + Send {
        cached_small(id)
    }
}

#[derive(Clone, Copy)]
pub(super) struct OneKib;

impl Size for OneKib {
    type V = Record;
    const LABEL: &'static str = "1KiB struct";
    const KEY: &'static str = "record";
    const MISSES_PER_ROUND: u64 = 300;
    const SIGNED: bool = true;
    fn make(id: u64) -> Record {
        record(id)
    }
    fn ours_signed(id: u64) -> impl Future<Output = Record> + Send {
        ours_signed_record(id)
    }
    fn ours_async(id: u64) -> impl Future<Output = Record> + Send {
        ours_async_record(id)
    }
    fn ours_sync(id: u64) -> Record {
        ours_sync_record(id)
    }
    fn ours_local(id: u64) -> impl Future<Output = Record> + Send {
        ours_local_record(id)
    }
    fn cached(id: u64) -> impl Future<Output = Result<Record, BenchError>> + Send {
        cached_record(id)
    }
}

#[derive(Clone, Copy)]
pub(super) struct SixtyFourKib;

impl Size for SixtyFourKib {
    type V = Vec<f64>;
    const LABEL: &'static str = "64KiB Vec<f64>";
    const KEY: &'static str = "series";
    const MISSES_PER_ROUND: u64 = 40;
    const SIGNED: bool = false;
    fn make(id: u64) -> Vec<f64> {
        series(id)
    }
    fn ours_signed(id: u64) -> impl Future<Output = Vec<f64>> + Send {
        ours_async_series(id)
    }
    fn ours_async(id: u64) -> impl Future<Output = Vec<f64>> + Send {
        ours_async_series(id)
    }
    fn ours_sync(id: u64) -> Vec<f64> {
        ours_sync_series(id)
    }
    fn ours_local(id: u64) -> impl Future<Output = Vec<f64>> + Send {
        ours_local_series(id)
    }
    fn cached(id: u64) -> impl Future<Output = Result<Vec<f64>, BenchError>> + Send {
        cached_series(id)
    }
}
