//! Benchmark (not a test) of a cache hit, per value size: our in-process
//! tier (`local`), our plain Redis hit, and — side by side, on the same
//! server — the `cached` crate's `AsyncRedisCache` with client-side caching
//! (the `redis` crate's `cache-aio`: GET replies cached in the connection,
//! decoded on every hit).
//!
//! Starts its own `redis-server` (through `redis-test`); run it in release:
//! `cargo run --release --example l1_bench`.

use std::hint::black_box;
use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, Instant};

use cached::ConcurrentCachedAsync;
use cached::stores::AsyncRedisCache;
use redis_cached::{Cache, redis_cached};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// The URL of the server this run started.
static URL: OnceLock<String> = OnceLock::new();

/// Our cache on that server (the `mem://` cache if the URL were bad).
static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    let url = URL.get().map_or("redis://127.0.0.1:6379", String::as_str);
    Cache::builder(url)
        .prefix("ours:")
        .build()
        .unwrap_or_else(|_| Cache::in_memory())
});

/// About 1 KiB encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    name: String,
    email: String,
    scores: Vec<u32>,
    tags: Vec<String>,
}

fn record(id: u64) -> Record {
    Record {
        id,
        name: format!("customer number {id:>20}"),
        email: format!("customer.{id}@example.invalid"),
        scores: (0..200).map(|i| u32::MAX - i).collect(),
        tags: (0..8).map(|i| format!("tag-{i:>8}")).collect(),
    }
}

fn series(id: u64) -> Vec<f64> {
    (0..8192).map(|i| (id + i) as f64 * 1.000_001).collect()
}

#[redis_cached(ttl = 600, cache = CACHE, local = 16)]
async fn small_l1(id: u64) -> u64 {
    id * 3
}

#[redis_cached(ttl = 600, cache = CACHE)]
async fn small_redis(id: u64) -> u64 {
    id * 3
}

#[redis_cached(ttl = 600, cache = CACHE, local = 16)]
async fn record_l1(id: u64) -> Record {
    record(id)
}

#[redis_cached(ttl = 600, cache = CACHE)]
async fn record_redis(id: u64) -> Record {
    record(id)
}

#[redis_cached(ttl = 600, cache = CACHE, local = 16)]
async fn series_l1(id: u64) -> Vec<f64> {
    series(id)
}

#[redis_cached(ttl = 600, cache = CACHE)]
async fn series_redis(id: u64) -> Vec<f64> {
    series(id)
}

/// Mean time of one of `n` awaits of `call`.
async fn per_call<T, F, Fut>(n: u32, mut call: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let started = Instant::now();
    for _ in 0..n {
        black_box(call().await);
    }
    started.elapsed() / n
}

/// Calls `call` until our tier answers (tracking is up and the value is in it).
async fn warm_l1<T, F, Fut>(mut call: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    let before = CACHE.stats().local_hits;
    while CACHE.stats().local_hits == before {
        if Instant::now() > deadline {
            return Err("the in-process tier never answered".to_owned());
        }
        black_box(call().await);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// A `cached` store for values of type `V`, with or without client-side caching.
async fn theirs<V>(
    url: &str,
    prefix: &str,
    client_side_caching: bool,
) -> Result<AsyncRedisCache<u64, V>, String>
where
    V: Serialize + DeserializeOwned + Send + Sync + Clone,
{
    AsyncRedisCache::builder(prefix)
        .connection_string(url)
        .ttl(Duration::from_secs(600))
        .client_side_caching(client_side_caching)
        .build()
        .await
        .map_err(|e| format!("cached: {e}"))
}

/// Times one value size and prints a line.
async fn row<V, L, LF, R, RF>(
    label: &str,
    url: &str,
    value: V,
    l1: L,
    redis: R,
    n: u32,
) -> Result<(), String>
where
    V: Serialize + DeserializeOwned + Send + Sync + Clone + PartialEq + std::fmt::Debug,
    L: Fn() -> LF + Copy,
    LF: std::future::Future<Output = V>,
    R: Fn() -> RF + Copy,
    RF: std::future::Future<Output = V>,
{
    // Ours: a miss stores, the tier takes the value on the next read.
    if l1().await != value || redis().await != value {
        return Err(format!("{label}: wrong value"));
    }
    warm_l1(l1).await?;
    let ours_l1 = per_call(n, l1).await;
    let ours_redis = per_call(n / 10, redis).await;

    // Theirs: set through another store (a store with client-side caching
    // keeps answering `None` after its own set: the set's pipelined GET of
    // the old value stays in its reply cache), then warm the reply cache.
    let _ = theirs::<V>(url, label, false)
        .await?
        .async_cache_set(1, value.clone())
        .await
        .map_err(|e| format!("cached set: {e}"))?;
    let store = theirs::<V>(url, label, true).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut hits = 0;
    while hits < 100 {
        match store.async_cache_get(&1).await {
            Ok(Some(found)) if found == value => hits += 1,
            Ok(None) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            other => return Err(format!("cached get: {other:?}")),
        }
    }
    let theirs_hit = per_call(n, || store.async_cache_get(&1)).await;

    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "{label:<14} {:>12.2?} {:>12.2?} {:>14.2?} {:>12.3} {:>12.3}",
        ours_l1,
        ours_redis,
        theirs_hit,
        ratio(ours_l1, theirs_hit),
        ratio(ours_redis, theirs_hit),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let server = redis_test::server::RedisServer::new();
    let (host, port) = server
        .host_and_port()
        .ok_or("redis-test gave no TCP address")?;
    let url = format!("redis://{host}:{port}");
    URL.set(url.clone()).map_err(|_| "URL set twice")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while CACHE.ping().await.is_err() {
        if Instant::now() > deadline {
            return Err(format!("redis-server at {url} never answered"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    println!("per hit (mean); ratios < 1 mean ours is faster");
    println!(
        "{:<14} {:>12} {:>12} {:>14} {:>12} {:>12}",
        "value", "ours L1", "ours Redis", "cached+CSC", "L1/cached", "Redis/cached"
    );
    let id = 42;
    row(
        "u64",
        &url,
        126,
        || small_l1(id),
        || small_redis(id),
        200_000,
    )
    .await?;
    row(
        "1KiB struct",
        &url,
        record(id),
        || record_l1(id),
        || record_redis(id),
        50_000,
    )
    .await?;
    row(
        "64KiB Vec<f64>",
        &url,
        series(id),
        || series_l1(id),
        || series_redis(id),
        5_000,
    )
    .await?;
    let stats = CACHE.stats();
    println!(
        "ours: {} hits, {} of them local; {} misses; {} errors",
        stats.hits, stats.local_hits, stats.misses, stats.errors
    );
    drop(server);
    Ok(())
}
