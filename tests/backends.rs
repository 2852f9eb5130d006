//! Redis and the in-process backend (`mem://`) behave the same: one suite of
//! cached calls runs against each. Where the store is Redis, the tests also
//! check what it holds; the memory store is seen through the cache (its
//! counters and `invalidate_all`'s counts), which both suites assert on.

mod support;

use ::redis::Commands;
use redis_cached::Cache;
use support::{CacheSlot, Calls, Store, TestRedis};

/// The suite, as module `$module` of tests on the store made by `Store::$store`
/// (`redis_with` or `memory_with`).
macro_rules! suite {
    ($module:ident, $store:ident) => {
        mod $module {
            use super::*;

            fn start(slot: &CacheSlot) -> Store {
                Store::$store(slot, |builder| builder)
            }

            #[test]
            fn sync_fn_runs_once_then_hits() {
                static CACHE: CacheSlot = CacheSlot::new();
                static CALLS: Calls = Calls::new();
                let store = start(&CACHE);

                #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
                fn square(x: u64) -> u64 {
                    CALLS.inc();
                    x * x
                }

                assert_eq!(square(7), 49);
                assert_eq!(square(7), 49);
                assert_eq!(square(7), 49);
                assert_eq!(CALLS.get(), 1);
                assert_eq!(square(8), 64);
                assert_eq!(CALLS.get(), 2);
                let stats = CACHE.stats();
                assert_eq!(
                    (stats.hits, stats.misses, stats.stores, stats.errors),
                    (2, 2, 2, 0)
                );
                if let Some(keys) = store.keys() {
                    assert_eq!(keys.len(), 2, "{keys:?}");
                }
            }

            #[tokio::test]
            async fn async_fn_runs_once_then_hits() {
                static CACHE: CacheSlot = CacheSlot::new();
                static CALLS: Calls = Calls::new();
                let store = start(&CACHE);

                #[redis_cached::redis_cached(ttl = "5m", cache = CACHE)]
                async fn greet(name: &str, times: usize) -> String {
                    CALLS.inc();
                    tokio::task::yield_now().await;
                    name.repeat(times)
                }

                assert_eq!(greet("ab", 2).await, "abab");
                assert_eq!(greet("ab", 2).await, "abab");
                assert_eq!(CALLS.get(), 1);
                let stats = CACHE.stats();
                assert_eq!(
                    (stats.hits, stats.misses, stats.stores, stats.errors),
                    (1, 1, 1, 0)
                );
                store.assert_only_key(concat!(module_path!(), "::greet:{"), 299_000..=300_000);
            }

            #[test]
            fn a_value_expires_after_its_ttl() {
                static CACHE: CacheSlot = CacheSlot::new();
                static CALLS: Calls = Calls::new();
                let store = start(&CACHE);

                #[redis_cached::redis_cached(ttl = "300ms", cache = CACHE)]
                fn brief(x: u8) -> u8 {
                    CALLS.inc();
                    x
                }

                assert_eq!(brief(1), 1);
                assert_eq!(brief(1), 1);
                assert_eq!(CALLS.get(), 1, "still fresh");
                store.assert_only_key(concat!(module_path!(), "::brief:{"), 1..=300);
                std::thread::sleep(std::time::Duration::from_millis(400));
                if let Some(keys) = store.keys() {
                    assert!(keys.is_empty(), "expired: {keys:?}");
                }
                assert_eq!(brief(1), 1);
                assert_eq!(CALLS.get(), 2);
                let stats = CACHE.stats();
                assert_eq!((stats.hits, stats.misses, stats.stores), (1, 2, 2));
            }

            #[test]
            fn err_is_returned_and_not_stored() {
                static CACHE: CacheSlot = CacheSlot::new();
                static CALLS: Calls = Calls::new();
                let store = start(&CACHE);

                #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
                fn parse(input: &str) -> Result<i64, String> {
                    CALLS.inc();
                    input.parse::<i64>().map_err(|e| e.to_string())
                }

                let invalid = Err("invalid digit found in string".to_owned());
                assert_eq!(parse("x"), invalid);
                assert_eq!(parse("x"), invalid);
                assert_eq!(CALLS.get(), 2);
                assert_eq!(CACHE.stats().stores, 0);
                if let Some(keys) = store.keys() {
                    assert!(keys.is_empty(), "an Err was stored: {keys:?}");
                }

                assert_eq!(parse("42"), Ok(42));
                assert_eq!(parse("42"), Ok(42));
                assert_eq!(CALLS.get(), 3);
                let stats = CACHE.stats();
                assert_eq!((stats.hits, stats.stores), (1, 1));
                store.assert_only_key(concat!(module_path!(), "::parse:{"), 59_000..=60_000);
            }

            #[test]
            fn invalidate_all_blocking_drops_exactly_one_functions_entries() {
                static CACHE: CacheSlot = CacheSlot::new();
                static PRICE: Calls = Calls::new();
                static PRICE_EU: Calls = Calls::new();
                // Glob characters in the cache's prefix must match only themselves.
                let store = Store::$store(&CACHE, |builder| builder.prefix("a*b[1]:"));

                #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
                fn price(item: u32) -> u32 {
                    PRICE.inc();
                    item * 10
                }

                // Its name starts like `price`'s: its entries must survive.
                #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
                fn price_eu(item: u32) -> u32 {
                    PRICE_EU.inc();
                    item * 12
                }

                assert_eq!((price(1), price(2), price_eu(1)), (10, 20, 12));
                assert_eq!((PRICE.get(), PRICE_EU.get()), (2, 1));

                let name = concat!(module_path!(), "::price");
                assert_eq!(CACHE.invalidate_all_blocking(name).unwrap(), 2);
                store.assert_only_key(
                    concat!("a*b[1]:", module_path!(), "::price_eu:{"),
                    59_000..=60_000,
                );
                assert_eq!(price_eu(1), 12);
                assert_eq!(PRICE_EU.get(), 1, "price_eu's entry was kept");
                assert_eq!(price(1), 10);
                assert_eq!(price(1), 10);
                assert_eq!(PRICE.get(), 3, "price(1) recomputed once");
                assert_eq!(CACHE.invalidate_all_blocking(name).unwrap(), 1);
                assert_eq!(CACHE.invalidate_all_blocking(name).unwrap(), 0);
                assert_eq!(CACHE.stats().errors, 0);
            }

            #[tokio::test]
            async fn invalidate_all_drops_more_entries_than_one_scan_batch() {
                static CACHE: CacheSlot = CacheSlot::new();
                static CALLS: Calls = Calls::new();
                let store = start(&CACHE);

                #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
                async fn rate(id: u32) -> u64 {
                    CALLS.inc();
                    u64::from(id) * 3
                }

                #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
                async fn other(id: u32) -> u32 {
                    id
                }

                for id in 0..1_200 {
                    assert_eq!(rate(id).await, u64::from(id) * 3);
                }
                assert_eq!(other(1).await, 1);
                assert_eq!(CALLS.get(), 1_200);
                if let Some(keys) = store.keys() {
                    assert_eq!(keys.len(), 1_201);
                }

                let name = concat!(module_path!(), "::rate");
                assert_eq!(CACHE.invalidate_all(name).await.unwrap(), 1_200);
                store.assert_only_key(concat!(module_path!(), "::other:{"), 59_000..=60_000);
                assert_eq!(rate(7).await, 21);
                assert_eq!(CALLS.get(), 1_201, "rate(7) recomputed");
                assert_eq!(CACHE.invalidate_all(name).await.unwrap(), 1);
            }
        }
    };
}

suite!(on_redis, redis_with);
suite!(in_memory, memory_with);

/// Keys written by something else under the cache's prefix go too, past one
/// `SCAN` batch; keys that an unescaped glob would match stay.
#[test]
fn redis_invalidate_all_scans_with_an_escaped_prefix_in_batches() {
    let redis = TestRedis::start();
    let cache = Cache::builder(redis.url())
        .prefix("a*b[1]:")
        .build()
        .expect("valid url");
    let decoys = [
        "aXb1:m::f:{0}",
        "a*b[1]:m::f",
        "a*b[1]:m::fg:{0}",
        "m::f:{0}",
    ];

    let mut conn = redis.conn();
    let mut pipe = ::redis::pipe();
    for i in 0..1_200 {
        pipe.set(format!("a*b[1]:m::f:{{{i}}}"), i).ignore();
    }
    for decoy in decoys {
        pipe.set(decoy, "keep").ignore();
    }
    let () = pipe.query(&mut conn).expect("SET pipeline");
    assert_eq!(redis.keys().len(), 1_204);

    assert_eq!(cache.invalidate_all_blocking("m::f").unwrap(), 1_200);
    let mut expected = decoys.map(String::from).to_vec();
    expected.sort();
    assert_eq!(redis.keys(), expected);
    let kept: String = conn.get("aXb1:m::f:{0}").expect("GET");
    assert_eq!(kept, "keep");
    assert_eq!(cache.invalidate_all_blocking("m::f").unwrap(), 0);
}

/// A cache that can't reach Redis reports the error instead of a count.
#[test]
fn redis_invalidate_all_returns_the_error_when_redis_is_down() {
    let mut redis = TestRedis::start();
    let cache = redis.cache();
    redis.stop();
    assert!(cache.invalidate_all_blocking("m::f").is_err());
}
