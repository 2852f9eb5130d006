//! The typed API (`Cache::get`, `set`, `delete`, `get_or_compute`,
//! `try_get_or_compute`, and their `_blocking` forms): values under the
//! caller's own keys, stored as `<prefix>{<key>}`, with the attribute's
//! codec, single flight, fail-open policy and counters, on Redis and on
//! `mem://`.

mod support;
#[path = "support/cluster.rs"]
mod test_cluster;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis_cached::{Cache, ErrorKind, redis_cached};
use serde::{Deserialize, Serialize};
use support::{CacheSlot, TestRedis, wait_for_misses, wait_for_misses_async};
use test_cluster::TestCluster;

const TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    name: String,
    visits: u32,
}

fn ada() -> Profile {
    Profile {
        name: "Ada".into(),
        visits: 3,
    }
}

fn on_redis(redis: &TestRedis, prefix: &str) -> Cache {
    Cache::builder(redis.url()).prefix(prefix).build().unwrap()
}

fn in_memory(prefix: &str) -> Cache {
    Cache::builder("mem://").prefix(prefix).build().unwrap()
}

/// What every store must do: set, get, overwrite, delete, miss.
async fn round_trip(cache: &Cache) {
    assert_eq!(cache.get::<Profile>("user:42").await.unwrap(), None);
    cache.set("user:42", &ada(), TTL).await.unwrap();
    assert_eq!(cache.get::<Profile>("user:42").await.unwrap(), Some(ada()));
    let renamed = Profile {
        name: "Grace".into(),
        ..ada()
    };
    cache.set("user:42", &renamed, TTL).await.unwrap();
    assert_eq!(cache.get("user:42").await.unwrap(), Some(renamed));
    // Unsized values: a `str` reads back as a `String`.
    cache.set("greeting", "hello", TTL).await.unwrap();
    assert_eq!(
        cache.get::<String>("greeting").await.unwrap().as_deref(),
        Some("hello")
    );
    assert!(cache.delete("user:42").await.unwrap());
    assert!(!cache.delete("user:42").await.unwrap());
    assert_eq!(cache.get::<Profile>("user:42").await.unwrap(), None);
    let stats = cache.stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.stores, stats.errors),
        (3, 2, 3, 0)
    );
}

#[tokio::test]
async fn values_round_trip_on_redis_under_the_prefix_with_their_ttl() {
    let redis = TestRedis::start();
    let cache = on_redis(&redis, "app:");
    round_trip(&cache).await;
    assert_eq!(redis.keys(), ["app:{greeting}"]);

    cache.set("user:7", &ada(), TTL).await.unwrap();
    let pttl = redis.pttl("app:{user:7}");
    assert!(0 < pttl && pttl <= 60_000, "PTTL {pttl}");
    cache
        .set("short", &1u8, Duration::from_millis(1500))
        .await
        .unwrap();
    let pttl = redis.pttl("app:{short}");
    assert!(0 < pttl && pttl <= 1500, "PTTL {pttl}");
}

#[tokio::test]
async fn values_round_trip_in_memory() {
    round_trip(&in_memory("app:")).await;
}

#[test]
fn blocking_forms_do_the_same_on_redis_and_in_memory() {
    let redis = TestRedis::start();
    for cache in [on_redis(&redis, "b:"), in_memory("b:")] {
        assert_eq!(cache.get_blocking::<Profile>("u").unwrap(), None);
        cache.set_blocking("u", &ada(), TTL).unwrap();
        assert_eq!(cache.get_blocking("u").unwrap(), Some(ada()));
        let runs = AtomicUsize::new(0);
        let compute = || {
            runs.fetch_add(1, Ordering::Relaxed);
            5u64
        };
        assert_eq!(cache.get_or_compute_blocking("n", TTL, compute), 5);
        assert_eq!(cache.get_or_compute_blocking("n", TTL, compute), 5);
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        let failed: Result<u64, &str> = cache.try_get_or_compute_blocking("t", TTL, || Err("no"));
        assert_eq!(failed, Err("no"));
        assert_eq!(cache.get_blocking::<u64>("t").unwrap(), None);
        let stored = cache.try_get_or_compute_blocking("t", TTL, || Ok::<_, &str>(9u64));
        assert_eq!(stored, Ok(9));
        assert_eq!(cache.get_blocking::<u64>("t").unwrap(), Some(9));
        assert!(cache.delete_blocking("u").unwrap());
        assert!(!cache.delete_blocking("u").unwrap());
        assert_eq!(cache.stats().errors, 0);
    }
    assert_eq!(redis.keys(), ["b:{n}", "b:{t}"]);
    assert!(redis.pttl("b:{n}") > 0);
}

#[tokio::test]
async fn garbage_under_a_key_is_a_miss_counted_as_an_error_and_overwritten() {
    let redis = TestRedis::start();
    let cache = on_redis(&redis, "g:");
    redis.set_raw("g:{k}", b"not a value");
    assert_eq!(cache.get::<Profile>("k").await.unwrap(), None);
    assert_eq!(cache.stats().errors, 1);
    // A value of another type is as unusable.
    cache.set("other", "a string", TTL).await.unwrap();
    assert_eq!(cache.get::<Vec<Profile>>("other").await.unwrap(), None);
    assert_eq!(cache.stats().errors, 2);

    let value = cache.get_or_compute("k", TTL, || async { ada() }).await;
    assert_eq!(value, ada());
    assert_eq!(cache.get::<Profile>("k").await.unwrap(), Some(ada()));
    assert!(redis.pttl("g:{k}") > 0, "rewritten with a TTL");
}

#[tokio::test]
async fn get_or_compute_stores_once_and_then_hits() {
    let redis = TestRedis::start();
    for cache in [on_redis(&redis, "c:"), in_memory("c:")] {
        let runs = AtomicUsize::new(0);
        let compute = || async {
            runs.fetch_add(1, Ordering::Relaxed);
            ada()
        };
        assert_eq!(cache.get_or_compute("p", TTL, compute).await, ada());
        assert_eq!(cache.get_or_compute("p", TTL, compute).await, ada());
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        assert_eq!(cache.get::<Profile>("p").await.unwrap(), Some(ada()));
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.stores), (2, 1, 1));
    }
    assert_eq!(redis.keys(), ["c:{p}"]);
    let pttl = redis.pttl("c:{p}");
    assert!(0 < pttl && pttl <= 60_000, "PTTL {pttl}");
}

#[tokio::test]
async fn try_get_or_compute_stores_only_ok() {
    let redis = TestRedis::start();
    for cache in [on_redis(&redis, "t:"), in_memory("t:")] {
        let failed: Result<u32, String> = cache
            .try_get_or_compute("rate", TTL, || async { Err("down".to_owned()) })
            .await;
        assert_eq!(failed, Err("down".to_owned()));
        assert_eq!(cache.get::<u32>("rate").await.unwrap(), None);
        let ok = cache
            .try_get_or_compute("rate", TTL, || async { Ok::<u32, String>(7) })
            .await;
        assert_eq!(ok, Ok(7));
        let hit = cache
            .try_get_or_compute("rate", TTL, || async { Err::<u32, _>("not run") })
            .await;
        assert_eq!(hit, Ok(7));
    }
    assert_eq!(redis.keys(), ["t:{rate}"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_get_or_compute_of_one_key_runs_the_closure_once() {
    const TASKS: usize = 50;
    let redis = TestRedis::start();
    for cache in [on_redis(&redis, "f:"), in_memory("f:")] {
        let runs = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let cache = cache.clone();
                let runs = Arc::clone(&runs);
                tokio::spawn(async move {
                    let waiting = cache.clone();
                    cache
                        .get_or_compute("hot", TTL, || async move {
                            runs.fetch_add(1, Ordering::Relaxed);
                            // Finish only once every task has missed; then
                            // give the last ones time to join the flight
                            // (see tests/single_flight.rs).
                            wait_for_misses_async(&waiting, TASKS as u64).await;
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            ada()
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), ada());
        }
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        let stats = cache.stats();
        assert_eq!((stats.misses, stats.stores, stats.errors), (50, 1, 0));
    }
}

#[test]
fn concurrent_blocking_get_or_compute_runs_the_closure_once() {
    const THREADS: usize = 8;
    let redis = TestRedis::start();
    let cache = on_redis(&redis, "fb:");
    let runs = AtomicUsize::new(0);
    let results: Vec<u64> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    cache.get_or_compute_blocking("hot", TTL, || {
                        runs.fetch_add(1, Ordering::Relaxed);
                        wait_for_misses(&cache, THREADS as u64);
                        std::thread::sleep(Duration::from_millis(200));
                        144u64
                    })
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(results, vec![144; THREADS]);
    assert_eq!(runs.load(Ordering::Relaxed), 1);
    assert_eq!(cache.stats().stores, 1);
}

#[tokio::test]
async fn with_redis_down_get_or_compute_fails_open_and_the_rest_return_errors() {
    let mut redis = TestRedis::start();
    let url = redis.url().to_owned();
    redis.stop();
    let cache = Cache::builder(&url)
        .connect_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let runs = AtomicUsize::new(0);
    let compute = || async {
        runs.fetch_add(1, Ordering::Relaxed);
        ada()
    };
    assert_eq!(cache.get_or_compute("p", TTL, compute).await, ada());
    assert_eq!(cache.get_or_compute("p", TTL, compute).await, ada());
    assert_eq!(runs.load(Ordering::Relaxed), 2);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.stores), (0, 2, 0));
    assert_eq!(stats.errors, 4, "a failed GET and a failed SET per call");
    let blocking = cache.get_or_compute_blocking("p", TTL, ada);
    assert_eq!(blocking, ada());
    assert_eq!(cache.stats().errors, 6);

    // Explicit reads and writes return the failure, uncounted.
    assert!(cache.get::<Profile>("p").await.unwrap_err().is_connect());
    assert!(cache.set("p", &ada(), TTL).await.unwrap_err().is_connect());
    assert!(cache.delete("p").await.unwrap_err().is_connect());
    assert!(cache.get_blocking::<Profile>("p").unwrap_err().is_connect());
    assert_eq!(cache.stats().errors, 6);
}

#[tokio::test]
async fn a_zero_ttl_stores_nothing() {
    let redis = TestRedis::start();
    let cache = on_redis(&redis, "z:");
    cache.set("k", &1u8, Duration::ZERO).await.unwrap();
    let computed = cache
        .get_or_compute("k", Duration::ZERO, || async { 2u8 })
        .await;
    assert_eq!(computed, 2);
    assert!(redis.keys().is_empty());
    assert_eq!(cache.stats().stores, 0);
}

#[tokio::test]
async fn a_value_over_max_value_size_is_an_error_from_set_and_unstored_by_get_or_compute() {
    let redis = TestRedis::start();
    let cache = Cache::builder(redis.url())
        .max_value_size(64)
        .build()
        .unwrap();
    let big = vec![7u8; 100];
    let err = cache.set("big", &big, TTL).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
    let computed = cache
        .get_or_compute("big", TTL, || async { big.clone() })
        .await;
    assert_eq!(computed, big);
    assert!(redis.keys().is_empty());
    assert_eq!(
        cache.stats().errors,
        1,
        "the refused write of the computed value"
    );
}

#[tokio::test]
async fn a_signing_cache_reads_only_its_own_signed_values() {
    let redis = TestRedis::start();
    let signed = Cache::builder(redis.url())
        .signing_key(b"a secret of 32 bytes or more, ok".to_vec())
        .build()
        .unwrap();
    let plain = on_redis(&redis, "");
    plain.set("k", &1u32, TTL).await.unwrap();
    assert_eq!(signed.get::<u32>("k").await.unwrap(), None);
    assert_eq!(signed.stats().errors, 1);
    signed.set("k", &2u32, TTL).await.unwrap();
    assert_eq!(signed.get::<u32>("k").await.unwrap(), Some(2));
    assert_eq!(plain.get::<u32>("k").await.unwrap(), Some(2));
}

#[tokio::test]
async fn user_keys_and_attribute_keys_never_meet() {
    static CACHE: CacheSlot = CacheSlot::new();
    let redis = TestRedis::start();
    CACHE.set(on_redis(&redis, "app:"));

    #[redis_cached(ttl = 60, cache = CACHE, name = "shop::price")]
    async fn price(item: u64) -> u64 {
        item * 2
    }

    assert_eq!(price(21).await, 42);
    let attribute = redis.only_key();
    let suffix = attribute.strip_prefix("app:").unwrap().to_owned();
    assert!(suffix.starts_with("shop::price:{"), "{attribute}");

    // `CacheSlot::set` would shadow `Cache::set`.
    let cache: &Cache = &CACHE;
    // The attribute key's text, as a user key, is another key.
    cache.set(&suffix, &0u64, TTL).await.unwrap();
    assert_eq!(
        redis.keys(),
        [attribute.clone(), format!("app:{{{suffix}}}")]
    );
    assert_eq!(price(21).await, 42, "the attribute's value is untouched");
    assert_eq!(cache.stats().hits, 1);
    assert_eq!(cache.get::<u64>(&suffix).await.unwrap(), Some(0));

    // Invalidating the function keeps the user's key, and the other way round.
    assert_eq!(cache.invalidate_all("shop::price").await.unwrap(), 1);
    assert_eq!(redis.keys(), [format!("app:{{{suffix}}}")]);
    assert_eq!(price(21).await, 42);
    assert!(cache.delete(&suffix).await.unwrap());
    assert_eq!(redis.keys(), [attribute]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_user_keys_spread_over_the_primaries() {
    const KEYS: u64 = 60;
    let cluster = TestCluster::start();
    let cache = cluster.builder().prefix("k:").build().unwrap();
    for i in 0..KEYS {
        cache.set(&format!("user:{i}"), &i, TTL).await.unwrap();
    }
    let per_primary = cluster.keys_per_primary();
    assert_eq!(per_primary.len(), 3, "{per_primary:?}");
    assert!(
        per_primary.iter().all(|(_, keys)| *keys > 0),
        "keys on every primary: {per_primary:?}"
    );
    for i in 0..KEYS {
        assert_eq!(
            cache.get::<u64>(&format!("user:{i}")).await.unwrap(),
            Some(i)
        );
    }
    assert!(cluster.pttl("k:{user:7}") > 0);
    assert!(cache.delete("user:7").await.unwrap());
    assert!(!cluster.exists("k:{user:7}"));
    let computed = cache
        .get_or_compute("user:7", TTL, || async { 70u64 })
        .await;
    assert_eq!(computed, 70);
    let blocking =
        tokio::task::spawn_blocking(move || cache.get_or_compute_blocking("user:7", TTL, || 0u64));
    assert_eq!(blocking.await.unwrap(), 70, "a hit");
}
