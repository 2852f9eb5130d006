//! Invalidation and control: a product price is cached, then the price changes
//! in the database, and the siblings the attribute generates next to `price`
//! bring the cache back in line.
//!
//! ```text
//! cargo run --example invalidation
//! ```
//!
//! Uses `REDIS_CACHED_URL` (else `REDIS_URL`, else `redis://127.0.0.1:6379`).
//! Without a reachable Redis it says so and uses the in-memory cache, which
//! behaves the same within one process.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use redis_cached::{Cache, redis_cached};

/// Stands for the database: product id → price in cents.
static DB: Mutex<BTreeMap<u64, u64>> = Mutex::new(BTreeMap::new());

/// How many times the body of `price` ran.
static BODY_RUNS: AtomicUsize = AtomicUsize::new(0);

/// A product's price in cents, read from the database.
///
/// Next to it the attribute generates `price_refresh`, `price_uncached`,
/// `price_invalidate` and `price_invalidate_all`.
#[redis_cached(ttl = "10m")]
async fn price(product: u64) -> u64 {
    BODY_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await; // the query
    DB.lock().unwrap().get(&product).copied().unwrap_or(0)
}

/// A write to the database, which the cache knows nothing about.
fn set_price(product: u64, cents: u64) {
    DB.lock().unwrap().insert(product, cents);
}

fn show(what: &str, cents: u64) {
    let dollars = format!("${}.{:02}", cents / 100, cents % 100);
    let runs = BODY_RUNS.load(Ordering::SeqCst);
    println!("{what:<44} {dollars:>6}  (body runs: {runs})");
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
async fn main() -> Result<(), redis_cached::Error> {
    // Before the first cached call: afterwards the default is fixed.
    redis_cached::set_default(choose_cache().await).expect("no cached call ran yet");
    // Start cold, in case an earlier run left prices in Redis.
    price_invalidate_all().await?;

    set_price(1, 999);
    set_price(2, 2450);
    set_price(3, 100);

    show("price(1): a miss, the body runs", price(1).await);
    show("price(1): a hit", price(1).await);

    set_price(1, 1299);
    show("after a write, price(1) is stale", price(1).await);
    show(
        "price_uncached(1): the body, cache untouched",
        price_uncached(1).await,
    );
    show("price(1) is still stale", price(1).await);

    show(
        "price_refresh(1): runs the body and stores",
        price_refresh(1).await,
    );
    show("price(1): a hit on the new value", price(1).await);

    set_price(1, 1499);
    let deleted = price_invalidate(1).await?;
    println!("price_invalidate(1) after another write -> Ok({deleted})");
    show("price(1): a miss again", price(1).await);

    show("price(2)", price(2).await);
    show("price(3)", price(3).await);
    let dropped = price_invalidate_all().await?;
    println!("price_invalidate_all() -> Ok({dropped}): every product's entry");
    show("price(2): a miss", price(2).await);

    let stats = redis_cached::default_cache().stats();
    println!(
        "hits: {}, misses: {}, errors: {}",
        stats.hits, stats.misses, stats.errors
    );
    Ok(())
}
