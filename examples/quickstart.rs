//! The expensive-operation example: the first call takes two seconds, the
//! second is answered from Redis.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Uses `REDIS_CACHED_URL` (else `REDIS_URL`, else `redis://127.0.0.1:6379`).
//! Without a reachable Redis it says so and uses the in-memory cache
//! (`Cache::in_memory()`), so the second call is still served from a cache.

use std::time::{Duration, Instant};

use redis_cached::{Cache, redis_cached};

/// Stands for any slow computation, remote call or query.
#[redis_cached(ttl = 60)]
async fn calculate_expensive_operation(x: u64) -> u64 {
    tokio::time::sleep(Duration::from_secs(2)).await;
    x * 10
}

/// The cache at the URL of the environment if that Redis answers, else an
/// in-memory one.
async fn choose_cache() -> Cache {
    let url = redis_cached::env_url();
    let error = match Cache::new(&url) {
        Ok(cache) => match cache.ping().await {
            Ok(()) => return cache,
            Err(error) => error,
        },
        Err(error) => error,
    };
    // Not the URL itself: it may hold a password (the error shows it redacted).
    println!("No usable Redis ({error}); using the in-memory cache instead.");
    Cache::in_memory()
}

#[tokio::main]
async fn main() {
    // Before the first cached call: afterwards the default is fixed.
    redis_cached::set_default(choose_cache().await).expect("no cached call ran yet");
    let cache = redis_cached::default_cache();
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
