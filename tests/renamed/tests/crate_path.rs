//! `crate = "…"`: generated code reaches the runtime through the given path.
//! This package knows the runtime only as `cache_lib` (and, below, as a
//! re-export), so without `crate` none of it would compile.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

static CACHE: LazyLock<cache_lib::Cache> = LazyLock::new(cache_lib::Cache::in_memory);
static RUNS: AtomicUsize = AtomicUsize::new(0);

#[cache_lib::redis_cached(ttl = 60, cache = CACHE, crate = "cache_lib")]
fn double(x: u64) -> u64 {
    RUNS.fetch_add(1, Ordering::SeqCst);
    x * 2
}

/// A facade that re-exports the runtime, as a company-wide crate might.
mod facade {
    pub use cache_lib as cache;
}

#[facade::cache::redis_cached(ttl = 60, cache = CACHE, crate = crate::facade::cache)]
async fn triple(x: u64) -> Result<u64, std::io::Error> {
    RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(x * 3)
}

#[tokio::test]
async fn generated_code_goes_through_the_given_path() {
    assert_eq!(double(21), 42);
    assert_eq!(double(21), 42);
    assert_eq!(RUNS.load(Ordering::SeqCst), 1, "the second call hit");
    assert!(double_invalidate(21).expect("in memory"));
    assert_eq!(double_invalidate_all().expect("in memory"), 0);

    assert_eq!(triple(2).await.unwrap(), 6);
    assert_eq!(triple(2).await.unwrap(), 6);
    assert_eq!(RUNS.load(Ordering::SeqCst), 2, "triple ran once");
    assert_eq!(triple_invalidate_all().await.expect("in memory"), 1);
    assert_eq!(CACHE.stats().hits, 2);
}
