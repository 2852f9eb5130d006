//! Compression (`CacheBuilder::compress_above`, `compress = true/false`): a
//! large value is stored compressed and reads back, small ones stay as they
//! are, values stored before compression was turned on still hit, and
//! garbage behind the compressed format byte is a miss, counted and
//! overwritten.

mod support;

use redis::Commands;
use redis_cached::{Cache, redis_cached};
use serde::{Deserialize, Serialize};
use support::{CacheSlot, Calls, TestRedis};

/// The format byte of a value as it is.
const PLAIN: u8 = 0x10;
/// The format byte of a value compressed (flag 2).
const COMPRESSED: u8 = PLAIN | 2;
/// The format byte of a value compressed, then signed (flag 1).
const SIGNED_COMPRESSED: u8 = COMPRESSED | 1;
/// Bytes of the format byte and the header (times, shape).
const HEADER: usize = 1 + 20;

/// The kind of value worth compressing: rows of an order list, whose strings
/// repeat from row to row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    customer: String,
    status: String,
    items: Vec<String>,
}

/// `n` orders, about 70 bytes each once encoded.
fn orders(n: u64) -> Vec<Order> {
    (0..n)
        .map(|id| Order {
            id,
            customer: format!("customer-{:04}@example.com", id % 13),
            status: ["shipped", "pending", "cancelled"][(id % 3) as usize].to_owned(),
            items: vec!["blue widget, large".to_owned(), "red gadget".to_owned()],
        })
        .collect()
}

/// `(hits, misses, errors, stores)`.
fn counts(cache: &Cache) -> (u64, u64, u64, u64) {
    let s = cache.stats();
    (s.hits, s.misses, s.errors, s.stores)
}

fn strlen(redis: &TestRedis, key: &str) -> usize {
    redis.conn().strlen(key).expect("STRLEN")
}

#[test]
fn a_large_value_is_stored_compressed_small_ones_as_they_are() {
    static CACHE: CacheSlot = CacheSlot::new();
    static UNCOMPRESSED: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start();
    let builder = || Cache::builder(redis.url());
    CACHE.set(builder().prefix("z:").compress_above(1024).build().unwrap());
    UNCOMPRESSED.set(builder().prefix("u:").build().unwrap());

    #[redis_cached(ttl = 60, cache = CACHE, name = "t::orders")]
    fn listed(n: u64) -> Vec<Order> {
        CALLS.inc();
        orders(n)
    }
    #[redis_cached(ttl = 60, cache = UNCOMPRESSED, name = "t::orders")]
    fn listed_uncompressed(n: u64) -> Vec<Order> {
        orders(n)
    }

    assert_eq!(listed(600), orders(600));
    assert_eq!(listed(600), orders(600));
    assert_eq!((CALLS.get(), counts(&CACHE)), (1, (1, 1, 0, 1)));
    assert_eq!(listed_uncompressed(600), orders(600));
    // The same key under each prefix; "u:" sorts first.
    let [plain, stored] = <[String; 2]>::try_from(redis.keys()).unwrap();
    assert_eq!(redis.get_raw(&stored).unwrap()[0], COMPRESSED);
    assert_eq!(redis.get_raw(&plain).unwrap()[0], PLAIN);
    let (small, large) = (strlen(&redis, &stored), strlen(&redis, &plain));
    assert!(large > 30_000, "{large} bytes uncompressed");
    assert!(small * 5 < large, "{small} bytes compressed, {large} not");

    // Under the threshold: stored as it is.
    assert_eq!(listed(3), orders(3));
    let key = redis
        .keys()
        .into_iter()
        .find(|k| k.starts_with("z:") && k != &stored)
        .expect("the small value's key");
    let raw = redis.get_raw(&key).unwrap();
    assert_eq!(raw[0], PLAIN);
    assert!(raw.len() <= 1024, "{} bytes", raw.len());
}

#[test]
fn a_function_s_compress_overrides_its_cache() {
    static CACHE: CacheSlot = CacheSlot::new();
    static EVERYTHING: CacheSlot = CacheSlot::new();
    let redis = TestRedis::start();
    CACHE.set(Cache::builder(redis.url()).prefix("a:").build().unwrap());
    EVERYTHING.set(
        (Cache::builder(redis.url()).prefix("b:").compress_above(0))
            .build()
            .unwrap(),
    );

    // On a cache without a threshold: compressed above 1 KiB.
    #[redis_cached(ttl = 60, cache = CACHE, compress = true)]
    fn wanted(n: u64) -> Vec<Order> {
        orders(n)
    }
    // On a cache that compresses everything: never.
    #[redis_cached(ttl = 60, cache = EVERYTHING, compress = false)]
    fn refused(n: u64) -> Vec<Order> {
        orders(n)
    }
    #[redis_cached(ttl = 60, cache = EVERYTHING)]
    fn default(n: u64) -> Vec<Order> {
        orders(n)
    }

    let first = |prefix: &str| {
        let keys = redis.keys();
        let key = keys.iter().find(|k| k.starts_with(prefix)).unwrap();
        redis.get_raw(key).unwrap()[0]
    };
    wanted(100);
    assert_eq!(first("a:"), COMPRESSED);
    wanted(2);
    let mut formats: Vec<u8> = (redis.keys().iter())
        .map(|k| redis.get_raw(k).unwrap()[0])
        .collect();
    formats.sort();
    assert_eq!(formats, [PLAIN, COMPRESSED], "2 orders are under 1 KiB");
    refused(100);
    assert_eq!(first("b:"), PLAIN);
    default(100);
    let default_key = redis.keys().into_iter().find(|k| k.contains("::default:"));
    assert_eq!(redis.get_raw(&default_key.unwrap()).unwrap()[0], COMPRESSED);
    assert_eq!(wanted(100), orders(100));
    assert_eq!(refused(100), orders(100));
    assert_eq!(default(100), orders(100));
    assert_eq!(CACHE.stats().hits + EVERYTHING.stats().hits, 3);
}

#[test]
fn values_stored_before_compression_was_turned_on_or_off_still_hit() {
    static BEFORE: CacheSlot = CacheSlot::new();
    static AFTER: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start();
    BEFORE.set(redis.cache());
    AFTER.set(
        Cache::builder(redis.url())
            .compress_above(0)
            .build()
            .unwrap(),
    );

    // One function, before and after a deploy that turns compression on.
    #[redis_cached(ttl = 60, cache = BEFORE, name = "t::orders")]
    fn before(n: u64) -> Vec<Order> {
        CALLS.inc();
        orders(n)
    }
    #[redis_cached(ttl = 60, cache = AFTER, name = "t::orders")]
    fn after(n: u64) -> Vec<Order> {
        CALLS.inc();
        orders(n)
    }

    assert_eq!(before(500), orders(500));
    assert_eq!(redis.get_raw(&redis.only_key()).unwrap()[0], PLAIN);
    assert_eq!(after(500), orders(500));
    assert_eq!(CALLS.get(), 1, "the uncompressed value hit");
    assert_eq!(counts(&AFTER), (1, 0, 0, 0));
    // And back: a compressed value reads on a cache that doesn't compress.
    assert_eq!(after(400), orders(400));
    assert_eq!(before(400), orders(400));
    assert_eq!(CALLS.get(), 2);
    assert_eq!(counts(&BEFORE), (1, 1, 0, 1));
}

#[test]
fn garbage_behind_the_compressed_format_byte_is_a_counted_miss() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start();
    CACHE.set(
        Cache::builder(redis.url())
            .compress_above(0)
            .build()
            .unwrap(),
    );

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn listed(n: u64) -> Vec<Order> {
        CALLS.inc();
        orders(n)
    }

    listed(300);
    let key = redis.only_key();
    let valid = redis.get_raw(&key).unwrap();
    assert_eq!(valid[0], COMPRESSED);
    let mut claims_4_gib = valid[..HEADER].to_vec();
    claims_4_gib.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x1f, b'a', 1, 0]);
    let mut corrupt = valid.clone();
    corrupt[HEADER + 4..].fill(0xff);
    let mut short = valid[..HEADER].to_vec();
    short.push(1);
    for (runs, garbage) in [claims_4_gib, corrupt, short].into_iter().enumerate() {
        redis.set_raw(&key, &garbage);
        assert_eq!(listed(300), orders(300));
        assert_eq!(CALLS.get(), runs + 2, "the body ran");
        assert_eq!(CACHE.stats().errors, runs as u64 + 1, "counted");
        let rewritten = redis.get_raw(&key).unwrap();
        assert!(rewritten[HEADER..] == valid[HEADER..], "overwritten");
    }
}

#[test]
fn a_signed_cache_signs_the_compressed_bytes() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start();
    CACHE.set(
        (Cache::builder(redis.url()).compress_above(0))
            .signing_key("the signing secret of these tests")
            .build()
            .unwrap(),
    );

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn listed(n: u64) -> Vec<Order> {
        CALLS.inc();
        orders(n)
    }

    assert_eq!(listed(300), orders(300));
    let key = redis.only_key();
    let mut raw = redis.get_raw(&key).unwrap();
    assert_eq!(raw[0], SIGNED_COMPRESSED);
    assert_eq!(listed(300), orders(300));
    assert_eq!(CALLS.get(), 1);
    // One byte of the compressed body changed: the tag no longer checks.
    raw[HEADER + 10] ^= 1;
    redis.set_raw(&key, &raw);
    assert_eq!(listed(300), orders(300));
    assert_eq!((CALLS.get(), CACHE.stats().errors), (2, 1));
}

#[test]
fn an_in_memory_cache_compresses_too() {
    static CACHE: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(|| {
        (Cache::builder("mem://").compress_above(1024))
            .build()
            .unwrap()
    });
    static CALLS: Calls = Calls::new();

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn listed(n: u64) -> Vec<Order> {
        CALLS.inc();
        orders(n)
    }

    for n in [600, 3] {
        assert_eq!(listed(n), orders(n));
        assert_eq!(listed(n), orders(n));
    }
    assert_eq!((CALLS.get(), counts(&CACHE)), (2, (2, 2, 0, 2)));
}
