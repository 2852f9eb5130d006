//! The siblings of a cached `f`: `f_invalidate`, `f_refresh`, `f_uncached`
//! and `f_invalidate_all`, against a real Redis.

mod support;

use redis_cached::redis_cached;
use support::{CacheSlot, Calls, TestRedis};

static CACHE: CacheSlot = CacheSlot::new();
static CALLS: Calls = Calls::new();
static STOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(10);

/// How many of an item are in stock.
#[redis_cached(ttl = 60, cache = CACHE)]
fn stock(item: &str) -> u64 {
    CALLS.inc();
    STOCK.load(std::sync::atomic::Ordering::SeqCst) + item.len() as u64
}

#[test]
fn sync_siblings_delete_refresh_and_bypass() {
    let redis = TestRedis::start_for(&CACHE);
    let set_stock = |n| STOCK.store(n, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(stock("ab"), 12);
    set_stock(20);
    assert_eq!(stock("ab"), 12, "cached");
    assert_eq!(CALLS.get(), 1);

    assert_eq!(stock_uncached("ab"), 22, "the body, untouched");
    assert_eq!(stock("ab"), 12, "uncached calls don't write");
    assert_eq!(CALLS.get(), 2);

    assert!(stock_invalidate("ab").unwrap());
    assert!(!stock_invalidate("ab").unwrap());
    assert!(redis.keys().is_empty());
    assert_eq!(stock("ab"), 22);
    assert_eq!(CALLS.get(), 3);

    set_stock(30);
    assert_eq!(stock_refresh("ab"), 32, "refresh runs the body");
    assert_eq!(stock("ab"), 32, "and stores its value");
    assert_eq!(CALLS.get(), 4);
    let key = redis.only_key();
    assert!(redis.pttl(&key) > 59_000);

    assert_eq!(stock("abc"), 33);
    assert_eq!(stock("abcd"), 34);
    assert_eq!(redis.keys().len(), 3);
    assert_eq!(stock_invalidate_all().unwrap(), 3);
    assert!(redis.keys().is_empty());
}

mod store {
    use super::*;
    pub static CACHE: CacheSlot = CacheSlot::new();
    pub static CALLS: Calls = Calls::new();

    pub struct Shop {
        pub markup: u64,
    }

    impl Shop {
        #[redis_cached(ttl = 60, cache = CACHE, skip(self))]
        pub async fn price(&self, item: u64) -> Result<u64, String> {
            CALLS.inc();
            if item == 0 {
                return Err("no such item".into());
            }
            Ok(item * self.markup)
        }

        #[redis_cached(ttl = 60, cache = CACHE)]
        pub async fn tax(item: u64) -> u64 {
            CALLS.inc();
            item / 10
        }
    }
}

#[tokio::test]
async fn async_method_siblings_keep_receiver_and_visibility() {
    use store::{CACHE, CALLS, Shop};
    let redis = TestRedis::start_for(&CACHE);
    let shop = Shop { markup: 2 };
    assert_eq!(shop.price(5).await, Ok(10));
    let dearer = Shop { markup: 3 };
    assert_eq!(dearer.price(5).await, Ok(10), "skip(self)");
    assert_eq!(dearer.price_refresh(5).await, Ok(15));
    assert_eq!(shop.price(5).await, Ok(15));
    assert_eq!(shop.price_uncached(0).await, Err("no such item".into()));
    assert_eq!(dearer.price_refresh(0).await, Err("no such item".into()));
    assert_eq!(CALLS.get(), 4);
    assert_eq!(redis.keys().len(), 1, "Err not stored by refresh either");

    assert_eq!(Shop::tax(50).await, 5);
    assert_eq!(redis.keys().len(), 2);
    assert!(shop.price_invalidate(5).await.unwrap());
    assert_eq!(redis.keys().len(), 1, "only price's entry went");
    assert_eq!(Shop::tax_invalidate_all().await.unwrap(), 1);
    assert!(redis.keys().is_empty());
}

#[test]
fn invalidating_without_redis_reports_the_error() {
    static DEAD: CacheSlot = CacheSlot::new();
    let mut redis = TestRedis::start();
    let url = redis.url().to_owned();
    redis.stop();
    DEAD.set(
        redis_cached::Cache::builder(&url)
            .connect_timeout(std::time::Duration::from_millis(200))
            .build()
            .unwrap(),
    );

    #[redis_cached(ttl = 60, cache = DEAD)]
    fn answer(x: u8) -> u8 {
        x
    }

    assert_eq!(answer(4), 4, "the cached call fails open");
    let err = answer_invalidate(4).unwrap_err();
    assert_eq!(
        err.kind(),
        redis_cached::ErrorKind::Unavailable,
        "the breaker opened on the call's failed connect: {err}"
    );
    assert!(answer_invalidate_all().is_err());
}

mod catalog {
    use super::*;
    pub static CACHE: CacheSlot = CacheSlot::new();

    #[redis_cached(ttl = 60, cache = CACHE)]
    pub fn price(item: u32) -> u32 {
        item * 10
    }

    /// A module named like the function: its keys start `…::price::tax:{`.
    pub mod price {
        use super::*;

        #[redis_cached(ttl = 60, cache = CACHE)]
        pub fn tax(item: u32) -> u32 {
            item
        }
    }
}

#[test]
fn invalidate_all_spares_functions_in_a_module_named_like_it() {
    let redis = TestRedis::start_for(&catalog::CACHE);
    assert_eq!(catalog::price(1), 10);
    assert_eq!(catalog::price(2), 20);
    assert_eq!(catalog::price::tax(1), 1);
    assert_eq!(catalog::price_invalidate_all().unwrap(), 2);
    let key = redis.only_key();
    assert!(key.contains("::catalog::price::tax:{"), "{key}");
}
