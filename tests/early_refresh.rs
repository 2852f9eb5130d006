//! `stale = …` and `refresh = "xfetch"`: hot values are refreshed without
//! callers waiting for the body (async fns with owned arguments), or by one
//! caller inline (sync fns, and async fns that borrow).

mod support;

use std::future::ready;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use redis_cached::redis_cached;
use support::{CacheSlot, Calls, TestRedis, eventually_async};

#[tokio::test]
async fn stale_async_returns_the_old_value_and_refreshes_in_the_background() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    static VERSION: AtomicU64 = AtomicU64::new(1);
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = "300ms", stale = "30s", cache = CACHE)]
    async fn config(name: String) -> String {
        CALLS.inc();
        format!("{name} v{}", VERSION.load(SeqCst))
    }

    assert_eq!(config("db".into()).await, "db v1");
    let key = redis.only_key();
    let pttl = redis.pttl(&key);
    assert!(
        (29_000..=30_300).contains(&pttl),
        "kept for ttl + stale: {pttl}"
    );

    VERSION.store(2, SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        config("db".into()).await,
        "db v1",
        "stale value served at once"
    );
    eventually_async("the background refresh", || ready(CALLS.get() == 2)).await;
    eventually_async("the refreshed value", || {
        ready(
            redis
                .get_raw(&key)
                .is_some_and(|bytes| bytes.ends_with(b"db v2")),
        )
    })
    .await;
    assert_eq!(config("db".into()).await, "db v2");
    assert_eq!(CALLS.get(), 2);
    assert_eq!(CACHE.stats().misses, 1);
}

#[test]
fn stale_sync_refreshes_inline_once() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    static VERSION: AtomicU64 = AtomicU64::new(1);
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = "300ms", stale = "30s", cache = CACHE)]
    fn rate(currency: &str) -> String {
        CALLS.inc();
        format!("{currency} v{}", VERSION.load(SeqCst))
    }

    assert_eq!(rate("EUR"), "EUR v1");
    VERSION.store(2, SeqCst);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        rate("EUR"),
        "EUR v2",
        "the caller that finds it stale refreshes inline"
    );
    assert_eq!(rate("EUR"), "EUR v2");
    assert_eq!(CALLS.get(), 2);
    let pttl = redis.pttl(&redis.only_key());
    assert!(
        pttl > 29_000,
        "the refresh restored the full lifetime: {pttl}"
    );
}

#[tokio::test]
async fn stale_async_with_borrowed_arguments_refreshes_inline() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    static VERSION: AtomicU64 = AtomicU64::new(1);
    let _redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = "300ms", stale = "30s", cache = CACHE)]
    async fn label(name: &str) -> String {
        CALLS.inc();
        format!("{name} v{}", VERSION.load(SeqCst))
    }

    assert_eq!(label("x").await, "x v1");
    VERSION.store(2, SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(label("x").await, "x v2");
    assert_eq!(CALLS.get(), 2);
}

#[tokio::test]
async fn xfetch_refreshes_a_hot_key_before_it_expires() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    // beta this large makes an early refresh all but certain on the first hit.
    #[redis_cached(ttl = 60, refresh = "xfetch", beta = 1000000, cache = CACHE)]
    async fn report(day: u32) -> u64 {
        CALLS.inc();
        tokio::time::sleep(Duration::from_millis(20)).await;
        u64::from(day) * 10
    }

    assert_eq!(report(3).await, 30);
    let first = redis.get_raw(&redis.only_key()).unwrap();
    assert_eq!(
        report(3).await,
        30,
        "the hit answers with the value it found"
    );
    eventually_async("the early refresh", || ready(CALLS.get() == 2)).await;
    let key = redis.only_key();
    eventually_async("the refreshed entry", || {
        ready(redis.get_raw(&key).is_some_and(|b| b != first))
    })
    .await;
    assert!(redis.pttl(&key) > 59_000);
    assert_eq!(CACHE.stats().misses, 1);
}

#[tokio::test]
async fn one_refresh_at_a_time_per_key() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let _redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = 60, refresh = "xfetch", beta = 1000000, cache = CACHE)]
    async fn slow(x: u32) -> u32 {
        CALLS.inc();
        tokio::time::sleep(Duration::from_millis(300)).await;
        x
    }

    assert_eq!(slow(1).await, 1);
    for _ in 0..50 {
        assert_eq!(slow(1).await, 1);
    }
    eventually_async("the one refresh", || ready(CALLS.get() == 2)).await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(
        CALLS.get() <= 3,
        "hits during a refresh don't start more: {}",
        CALLS.get()
    );
}
