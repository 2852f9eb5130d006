//! The `metrics` feature with Prometheus: installs the exporter's recorder
//! (no HTTP listener of its own), makes a few cached calls, and prints the
//! scrape text a Prometheus server would read.
//!
//! ```text
//! cargo run -p examples --example metrics
//! ```
//!
//! Uses `REDIS_CACHED_URL` (else `REDIS_URL`, else `redis://127.0.0.1:6379`).
//! Without a reachable Redis it says so and uses the in-memory cache. Prints
//! no URL: one may hold a password.

use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use redis_cached::{Cache, redis_cached};

/// Stands for a query: the metrics label it `function="examples::price"`.
#[redis_cached(ttl = 60, name = "examples::price")]
async fn price(item: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(10)).await;
    item * 100
}

/// Another function: the `function` label tells the two apart.
#[redis_cached(ttl = 60, name = "examples::stock")]
async fn stock(item: u64) -> u64 {
    item % 7
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
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Before the first cached call, so that it sees every call.
    let prometheus = PrometheusBuilder::new().install_recorder()?;
    redis_cached::set_default(choose_cache().await).expect("no cached call ran yet");
    // Start cold, in case an earlier run left values in Redis.
    price_invalidate_all().await?;
    stock_invalidate_all().await?;

    for item in [1, 2, 1, 1, 3, 2] {
        price(item).await;
    }
    for item in [1, 1] {
        stock(item).await;
    }
    // 3 misses and 3 hits of price, 1 miss and 1 hit of stock:
    print!("{}", prometheus.render());
    Ok(())
}
