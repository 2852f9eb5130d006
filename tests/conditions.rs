//! `when = EXPR`: a condition over the arguments, evaluated before the call.
//! When it is false the call neither reads nor writes the cache and runs
//! the body; checked on Redis and on `mem://`.

mod support;

use redis_cached::Cache;
use support::{CacheSlot, Calls, Store};

/// `(hits, misses, stores, errors)` of a cache.
fn counts(cache: &Cache) -> (u64, u64, u64, u64) {
    let stats = cache.stats();
    (stats.hits, stats.misses, stats.stores, stats.errors)
}

macro_rules! suite {
    ($module:ident, $store:ident) => {
        mod $module {
            use super::*;

            #[test]
            fn a_false_condition_skips_the_cache_entirely() {
                static CACHE: CacheSlot = CacheSlot::new();
                static CALLS: Calls = Calls::new();
                let store = Store::$store(&CACHE);

                #[redis_cached::redis_cached(ttl = 60, cache = CACHE, when = user != 0)]
                fn profile(user: u64) -> String {
                    CALLS.inc();
                    format!("user {user}")
                }

                for _ in 0..3 {
                    assert_eq!(profile(0), "user 0");
                }
                assert_eq!(CALLS.get(), 3, "the body ran every time");
                assert_eq!(counts(&CACHE), (0, 0, 0, 0), "no read, no write");
                if let Some(keys) = store.key_count() {
                    assert_eq!(keys, 0, "nothing written");
                }

                assert_eq!(profile(7), "user 7");
                assert_eq!(profile(7), "user 7");
                assert_eq!(CALLS.get(), 4, "a true condition caches as usual");
                assert_eq!(counts(&CACHE), (1, 1, 1, 0));
                if let Some(keys) = store.key_count() {
                    assert_eq!(keys, 1);
                }
                assert_eq!(profile(0), "user 0");
                assert_eq!(CALLS.get(), 5);
                assert_eq!(counts(&CACHE), (1, 1, 1, 0));
            }

            #[tokio::test]
            async fn a_false_condition_ignores_what_is_stored() {
                static CACHE: CacheSlot = CacheSlot::new();
                static CALLS: Calls = Calls::new();
                let store = Store::$store(&CACHE);

                /// Reads the cache unless asked for a fresh value.
                #[redis_cached::redis_cached(ttl = 60, cache = CACHE, key = item, when = !fresh)]
                async fn price(item: u32, fresh: bool) -> usize {
                    let _ = fresh;
                    tokio::task::yield_now().await;
                    CALLS.next() * 10 + item as usize
                }

                assert_eq!(price(1, false).await, 11);
                assert_eq!(price(1, false).await, 11, "a hit");
                assert_eq!(price(1, true).await, 21, "not read, though stored");
                assert_eq!(price(1, false).await, 11, "and not overwritten");
                assert_eq!(CALLS.get(), 2);
                assert_eq!(counts(&CACHE), (2, 1, 1, 0));
                if let Some(keys) = store.key_count() {
                    assert_eq!(keys, 1);
                }
            }

            #[tokio::test]
            async fn refresh_with_a_false_condition_runs_the_body_without_storing() {
                static CACHE: CacheSlot = CacheSlot::new();
                static CALLS: Calls = Calls::new();
                let store = Store::$store(&CACHE);

                #[redis_cached::redis_cached(ttl = 60, cache = CACHE, when = id % 2 == 0)]
                async fn rate(id: u64) -> u64 {
                    id * 100 + CALLS.next() as u64
                }

                assert_eq!(rate_refresh(1).await, 101);
                assert_eq!(rate_refresh(1).await, 102);
                assert_eq!(counts(&CACHE), (0, 0, 0, 0));
                if let Some(keys) = store.key_count() {
                    assert_eq!(keys, 0);
                }
                assert_eq!(rate_refresh(2).await, 203);
                assert_eq!(rate(2).await, 203, "a true condition stores on refresh");
                assert_eq!(counts(&CACHE), (1, 0, 1, 0));
                assert!(!rate_invalidate(1).await.unwrap(), "nothing was stored");
                assert!(rate_invalidate(2).await.unwrap());
            }

            #[test]
            fn the_condition_can_read_the_receiver() {
                static CACHE: CacheSlot = CacheSlot::new();
                static CALLS: Calls = Calls::new();
                let _store = Store::$store(&CACHE);

                #[derive(serde::Serialize)]
                struct Client {
                    cached: bool,
                }

                impl Client {
                    #[redis_cached::redis_cached(ttl = 60, cache = CACHE, when = self.cached)]
                    fn get(&self, path: &str) -> String {
                        CALLS.inc();
                        path.to_uppercase()
                    }
                }

                let live = Client { cached: false };
                assert_eq!(live.get("a"), "A");
                assert_eq!(live.get("a"), "A");
                assert_eq!(CALLS.get(), 2);
                let cached = Client { cached: true };
                assert_eq!(cached.get("a"), "A");
                assert_eq!(cached.get("a"), "A");
                assert_eq!(CALLS.get(), 3);
                assert_eq!(counts(&CACHE), (1, 1, 1, 0));
            }
        }
    };
}

suite!(on_redis, redis);
suite!(in_memory, memory);
