//! A TTL chosen at run time, on Redis and on `mem://`: `ttl = EXPR`,
//! evaluated on every call (a `Duration`, or whole seconds as a `u64`), and
//! `ttl_of`, a stored value's own TTL, never longer than `ttl`.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis_cached::Cache;
use support::{CacheSlot, Calls, Store};

/// A setting read on every call, as a configuration value would be.
struct Settings {
    price_ttl_ms: AtomicU64,
    rate_secs: AtomicU64,
}

impl Settings {
    fn price_ttl(&self) -> Duration {
        Duration::from_millis(self.price_ttl_ms.load(Ordering::SeqCst))
    }
}

/// A credential that says how long it is good for.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Token {
    secret: String,
    expires_in_ms: u64,
}

fn token_ttl(token: &Token) -> Duration {
    Duration::from_millis(token.expires_in_ms)
}

/// `(hits, misses, stores, errors)` of a cache.
fn counts(cache: &Cache) -> (u64, u64, u64, u64) {
    let stats = cache.stats();
    (stats.hits, stats.misses, stats.stores, stats.errors)
}

macro_rules! suite {
    ($module:ident, $store:ident) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn a_duration_from_configuration_is_read_on_every_call() {
                static CACHE: CacheSlot = CacheSlot::new();
                static CALLS: Calls = Calls::new();
                static SETTINGS: Settings = Settings {
                    price_ttl_ms: AtomicU64::new(90_000),
                    rate_secs: AtomicU64::new(0),
                };
                let store = Store::$store(&CACHE);

                #[redis_cached::redis_cached(ttl = SETTINGS.price_ttl(), cache = CACHE)]
                async fn price(item: u32) -> u32 {
                    CALLS.inc();
                    item * 2
                }

                assert_eq!(price(1).await, 2);
                assert_eq!(price(1).await, 2);
                assert_eq!(CALLS.get(), 1);
                if let Some(pttls) = store.pttls() {
                    assert!(matches!(pttls[..], [89_000..=90_000]), "{pttls:?}");
                }
                SETTINGS.price_ttl_ms.store(20_000, Ordering::SeqCst);
                assert_eq!(price(2).await, 4);
                assert_eq!(price_refresh(1).await, 2);
                assert_eq!(CALLS.get(), 3);
                if let Some(pttls) = store.pttls() {
                    assert_eq!(pttls.len(), 2);
                    assert!(pttls.iter().all(|p| (19_000..=20_000).contains(p)), "{pttls:?}");
                }
                assert_eq!(counts(&CACHE), (1, 2, 3, 0));
            }

            #[test]
            fn whole_seconds_are_a_u64() {
                static CACHE: CacheSlot = CacheSlot::new();
                static CALLS: Calls = Calls::new();
                static SETTINGS: Settings = Settings {
                    price_ttl_ms: AtomicU64::new(0),
                    rate_secs: AtomicU64::new(300),
                };
                let store = Store::$store(&CACHE);

                #[redis_cached::redis_cached(
                    ttl = SETTINGS.rate_secs.load(Ordering::SeqCst),
                    cache = CACHE
                )]
                fn rate(id: u64) -> u64 {
                    CALLS.inc();
                    id + 1
                }

                assert_eq!(rate(1), 2);
                assert_eq!(rate(1), 2);
                assert_eq!(CALLS.get(), 1);
                if let Some(pttls) = store.pttls() {
                    assert!(matches!(pttls[..], [299_000..=300_000]), "{pttls:?}");
                }
            }

            #[test]
            fn the_ttl_may_depend_on_the_arguments() {
                static CACHE: CacheSlot = CacheSlot::new();
                let store = Store::$store(&CACHE);

                #[redis_cached::redis_cached(
                    ttl = if premium { Duration::from_secs(600) } else { Duration::from_secs(60) },
                    cache = CACHE
                )]
                fn quota(premium: bool) -> u32 {
                    if premium { 1000 } else { 10 }
                }

                assert_eq!(quota(true), 1000);
                assert_eq!(quota(false), 10);
                if let Some(mut pttls) = store.pttls() {
                    pttls.sort_unstable();
                    assert!(matches!(pttls[..], [59_000..=60_000, 599_000..=600_000]), "{pttls:?}");
                }
            }

            #[tokio::test]
            async fn a_zero_ttl_stores_nothing_and_is_no_error() {
                static CACHE: CacheSlot = CacheSlot::new();
                static CALLS: Calls = Calls::new();
                static SETTINGS: Settings = Settings {
                    price_ttl_ms: AtomicU64::new(0),
                    rate_secs: AtomicU64::new(0),
                };
                let store = Store::$store(&CACHE);

                #[redis_cached::redis_cached(ttl = SETTINGS.price_ttl(), cache = CACHE, lock = 5)]
                async fn price(item: u32) -> u32 {
                    CALLS.inc();
                    item * 2
                }

                assert_eq!(price(1).await, 2);
                assert_eq!(price(1).await, 2);
                assert_eq!(price_refresh(1).await, 2);
                assert_eq!(CALLS.get(), 3, "nothing was stored");
                assert_eq!(counts(&CACHE), (0, 2, 0, 0));
                if let Some(pttls) = store.pttls() {
                    assert_eq!(pttls, [], "no key, not even the lock");
                }

                SETTINGS.price_ttl_ms.store(60_000, Ordering::SeqCst);
                assert_eq!(price(1).await, 2);
                assert_eq!(price(1).await, 2);
                assert_eq!(CALLS.get(), 4);
                SETTINGS.price_ttl_ms.store(0, Ordering::SeqCst);
                assert_eq!(price(1).await, 2, "a value stored earlier is still read");
                assert_eq!(CALLS.get(), 4);
            }

            #[test]
            fn a_value_expires_after_the_ttl_of_its_call() {
                static CACHE: CacheSlot = CacheSlot::new();
                static CALLS: Calls = Calls::new();
                static SETTINGS: Settings = Settings {
                    price_ttl_ms: AtomicU64::new(150),
                    rate_secs: AtomicU64::new(0),
                };
                let _store = Store::$store(&CACHE);

                #[redis_cached::redis_cached(ttl = SETTINGS.price_ttl(), cache = CACHE)]
                fn price(item: u32) -> u32 {
                    CALLS.inc();
                    item * 2
                }

                assert_eq!(price(1), 2);
                assert_eq!(price(1), 2);
                assert_eq!(CALLS.get(), 1);
                std::thread::sleep(Duration::from_millis(400));
                assert_eq!(price(1), 2);
                assert_eq!(CALLS.get(), 2, "expired");
            }
        }
    };
}

macro_rules! ttl_of_suite {
    ($module:ident, $store:ident) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn a_value_lives_its_own_ttl_up_to_the_functions() {
                static CACHE: CacheSlot = CacheSlot::new();
                static CALLS: Calls = Calls::new();
                let store = Store::$store(&CACHE);

                #[redis_cached::redis_cached(ttl = "1h", ttl_of = token_ttl, cache = CACHE, key = user)]
                async fn token(user: u32, expires_in_ms: u64) -> Result<Token, String> {
                    CALLS.inc();
                    Ok(Token {
                        secret: format!("s{user}"),
                        expires_in_ms,
                    })
                }

                let short = token(1, 30_000).await.unwrap();
                assert_eq!(token(1, 30_000).await.unwrap(), short);
                assert_eq!(CALLS.get(), 1);
                if let Some(pttls) = store.pttls() {
                    assert!(matches!(pttls[..], [29_000..=30_000]), "{pttls:?}");
                }
                token_invalidate(1, 30_000).await.unwrap();
                token(2, 7_200_000).await.unwrap();
                if let Some(pttls) = store.pttls() {
                    assert!(matches!(pttls[..], [3_599_000..=3_600_000]), "ttl caps it: {pttls:?}");
                }
                token_refresh(2, 5_000).await.unwrap();
                if let Some(pttls) = store.pttls() {
                    assert!(matches!(pttls[..], [4_000..=5_000]), "refresh too: {pttls:?}");
                }
                assert_eq!(counts(&CACHE), (1, 2, 3, 0));
            }

            #[test]
            fn an_expired_value_is_not_stored_and_a_short_one_expires() {
                static CACHE: CacheSlot = CacheSlot::new();
                static CALLS: Calls = Calls::new();
                let store = Store::$store(&CACHE);

                #[redis_cached::redis_cached(
                    ttl = 60,
                    ttl_of = |t: &Token| Duration::from_millis(t.expires_in_ms),
                    cache = CACHE
                )]
                fn token(expires_in_ms: u64) -> Token {
                    CALLS.inc();
                    Token {
                        secret: "s".into(),
                        expires_in_ms,
                    }
                }

                token(0);
                token(0);
                assert_eq!(CALLS.get(), 2, "an expired token is not stored");
                assert_eq!(counts(&CACHE), (0, 2, 0, 0));
                if let Some(pttls) = store.pttls() {
                    assert_eq!(pttls, []);
                }

                token(150);
                token(150);
                assert_eq!(CALLS.get(), 3);
                std::thread::sleep(Duration::from_millis(400));
                token(150);
                assert_eq!(CALLS.get(), 4, "expired with its own ttl");
            }
        }
    };
}

ttl_of_suite!(ttl_of_on_redis, redis);
ttl_of_suite!(ttl_of_in_memory, memory);

suite!(on_redis, redis);
suite!(in_memory, memory);
