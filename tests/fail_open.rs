//! A cache never breaks the function it caches: with Redis down, slow, or
//! holding garbage, the body runs and its value is returned; the failure is
//! counted (and logged).

mod support;

use std::time::{Duration, Instant};

use redis_cached::{Cache, ErrorKind, redis_cached};
use support::{CacheSlot, Calls, TestRedis};

/// Generous: only here to turn a hang into a failure, not to measure speed.
const HANG: Duration = Duration::from_secs(20);

fn dead_cache() -> Cache {
    let mut redis = TestRedis::start();
    let url = redis.url().to_owned();
    redis.stop();
    Cache::builder(&url)
        .connect_timeout(Duration::from_millis(200))
        .build()
        .unwrap()
}

#[test]
fn sync_fn_works_without_redis() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    CACHE.set(dead_cache());

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn add(a: i32, b: i32) -> i32 {
        CALLS.inc();
        a + b
    }

    let started = Instant::now();
    assert_eq!(add(2, 3), 5);
    assert_eq!(add(2, 3), 5);
    assert!(started.elapsed() < HANG);
    assert_eq!(CALLS.get(), 2);
    let stats = CACHE.stats();
    assert_eq!((stats.hits, stats.misses, stats.stores), (0, 2, 0));
    assert_eq!(stats.errors, 4, "a failed GET and a failed SET per call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_fn_works_without_redis_even_when_called_concurrently() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    CACHE.set(dead_cache());

    #[redis_cached(ttl = 60, cache = CACHE)]
    async fn double(x: u64) -> u64 {
        CALLS.inc();
        x * 2
    }

    let started = Instant::now();
    let tasks: Vec<_> = (0..50).map(|i| tokio::spawn(double(i))).collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), i as u64 * 2);
    }
    assert!(started.elapsed() < HANG);
    assert_eq!(CALLS.get(), 50);
    assert_eq!(CACHE.stats().hits, 0);
    assert!(CACHE.stats().errors >= 50);
}

#[test]
fn a_malformed_url_is_an_error_at_build_time() {
    let err = Cache::new("http://not-redis").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.to_string()
            .starts_with("invalid configuration: http://not-redis: "),
        "{err}"
    );
}

#[tokio::test]
async fn a_paused_redis_times_out_and_the_body_answers() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start();
    CACHE.set(
        Cache::builder(redis.url())
            .response_timeout(Duration::from_millis(100))
            .build()
            .unwrap(),
    );

    #[redis_cached(ttl = 60, cache = CACHE)]
    async fn triple(x: u64) -> u64 {
        CALLS.inc();
        x * 3
    }

    CACHE.ping().await.unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1500)
        .arg("ALL")
        .query(&mut redis.conn())
        .unwrap();
    let started = Instant::now();
    assert_eq!(triple(5).await, 15);
    assert!(started.elapsed() < HANG);
    assert_eq!(CALLS.get(), 1);
    assert!(CACHE.stats().errors >= 1, "{:?}", CACHE.stats());
}

#[test]
fn garbage_under_a_key_is_recomputed_and_overwritten() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn name_of(id: u32) -> String {
        CALLS.inc();
        format!("user-{id}")
    }

    assert_eq!(name_of(9), "user-9");
    let key = redis.only_key();
    // Format byte and value; the header between them holds timestamps.
    let good = redis.get_raw(&key).unwrap();
    let (format, value) = (good[0], &good[13..]);
    assert!(value.ends_with(b"user-9"), "{good:?}");
    for garbage in [&b"garbage"[..], &[], &[1, 200, 200, 200, 200]] {
        redis.set_raw(&key, garbage);
        assert_eq!(name_of(9), "user-9");
        let stored = redis.get_raw(&key).unwrap();
        assert_eq!((stored[0], &stored[13..]), (format, value), "overwritten");
        assert!(redis.pttl(&key) > 59_000, "TTL restored");
    }
    assert_eq!(name_of(9), "user-9");
    assert_eq!(
        CALLS.get(),
        4,
        "one miss, then one per garbage value, then a hit"
    );
    let stats = CACHE.stats();
    assert_eq!((stats.hits, stats.errors), (1, 3));
}

#[test]
fn values_over_the_size_limit_are_returned_but_not_stored() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start();
    CACHE.set(
        Cache::builder(redis.url())
            .max_value_size(64)
            .build()
            .unwrap(),
    );

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn blob(len: usize) -> Vec<u8> {
        CALLS.inc();
        vec![7; len]
    }

    assert_eq!(blob(1024).len(), 1024);
    assert_eq!(blob(1024).len(), 1024);
    assert_eq!(blob(8), vec![7; 8]);
    assert_eq!(blob(8), vec![7; 8]);
    assert_eq!(CALLS.get(), 3);
    assert_eq!(redis.keys().len(), 1, "only the small value is stored");
}

#[tokio::test]
async fn after_a_failed_connect_redis_is_not_asked_again_for_a_while() {
    let mut redis = TestRedis::start();
    let url = redis.url().to_owned();
    redis.stop();
    // Long enough that the second ping surely comes within it.
    let cache = Cache::builder(&url)
        .connect_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let first = cache.ping().await.unwrap_err();
    assert_eq!(first.kind(), ErrorKind::Connection, "{first}");
    assert!(first.is_connect());
    // `ping` always asks Redis (a health check wants the truth); other
    // operations are refused at once while the breaker is open.
    let second = cache.invalidate_all("f").await.unwrap_err();
    assert_eq!(second.kind(), ErrorKind::Unavailable, "{second}");
    assert!(
        second.to_string().starts_with("Redis failed moments ago"),
        "{second}"
    );
    assert!(std::error::Error::source(&second).is_none());
    let third = cache.ping().await.unwrap_err();
    assert_eq!(third.kind(), ErrorKind::Connection, "{third}");
}
