//! The expensive-operation example: the first call takes two seconds, the
//! second is answered from Redis.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Uses `REDIS_CACHED_URL` (else `REDIS_URL`, else `redis://127.0.0.1:6379`).
//! Without a reachable Redis it says so and still runs: both calls then take
//! the full two seconds, because a cache never breaks the function it caches.

use std::time::{Duration, Instant};

use redis_cached::redis_cached;

/// Stands for any slow computation, remote call or query.
#[redis_cached(ttl = 60)]
async fn calculate_expensive_operation(x: u64) -> u64 {
    tokio::time::sleep(Duration::from_secs(2)).await;
    x * 10
}

#[tokio::main]
async fn main() {
    let cache = redis_cached::default_cache();
    if let Err(error) = cache.ping().await {
        println!("No Redis reachable ({error}); running uncached, so both calls take 2 s.");
    }
    // A fresh argument each run, so the first call is a miss even when an
    // earlier run left its value in Redis.
    let x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |since| since.as_secs());
    for call in ["first", "second"] {
        let started = Instant::now();
        let result = calculate_expensive_operation(x).await;
        println!("{call} call: {result} in {:.3?}", started.elapsed());
    }
    let stats = cache.stats();
    println!(
        "hits: {}, misses: {}, errors: {}",
        stats.hits, stats.misses, stats.errors
    );
}
