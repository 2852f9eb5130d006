//! `CacheBuilder::signing_key`: every stored value carries an HMAC-SHA256
//! over its key and bytes, and a value without a valid one (unsigned,
//! signed with another secret, copied from another key, altered) is a miss,
//! counted as an error and overwritten with a signed value.

mod support;

use redis::Commands;
use redis_cached::{Cache, redis_cached};
use support::{CacheSlot, Calls, TestRedis};

const SECRET: &str = "the signing secret of these tests";
const ROTATED: &str = "the next signing secret, after rotation";
/// The format byte of a signed value (format 0x10, flag 1).
const SIGNED: u8 = 0x11;
/// The format byte of an unsigned value.
const UNSIGNED: u8 = 0x10;
/// The HMAC-SHA256 tag at the end of a signed value.
const TAG: usize = 32;

fn signed(redis: &TestRedis, secret: &str) -> Cache {
    Cache::builder(redis.url())
        .signing_key(secret)
        .build()
        .expect("valid url and key")
}

/// `(hits, misses, errors, stores)`.
fn counts(cache: &Cache) -> (u64, u64, u64, u64) {
    let s = cache.stats();
    (s.hits, s.misses, s.errors, s.stores)
}

#[test]
fn a_signed_value_round_trips_and_hits() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start();
    CACHE.set(signed(&redis, SECRET));

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn label(id: u64) -> String {
        CALLS.inc();
        format!("item {id}")
    }

    assert_eq!(label(7), "item 7");
    assert_eq!(label(7), "item 7");
    assert_eq!(CALLS.get(), 1);
    assert_eq!(counts(&CACHE), (1, 1, 0, 1));
    let raw = redis.get_raw(&redis.only_key()).expect("stored");
    assert_eq!(raw[0], SIGNED);
    assert!(
        raw.len() > 1 + 20 + TAG,
        "header, value and tag: {} bytes",
        raw.len()
    );
}

#[test]
fn unsigned_and_foreign_values_are_misses_counted_and_overwritten() {
    static SIGNED_CACHE: CacheSlot = CacheSlot::new();
    static PLAIN: CacheSlot = CacheSlot::new();
    static OTHER: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start();
    SIGNED_CACHE.set(signed(&redis, SECRET));
    PLAIN.set(redis.cache());
    OTHER.set(signed(&redis, "a secret this application doesn't use"));

    // One function, three caches: the same name and types give the same key.
    #[redis_cached(ttl = 60, cache = SIGNED_CACHE, name = "t::price")]
    fn price(id: u64) -> u64 {
        CALLS.inc();
        id * 100
    }
    #[redis_cached(ttl = 60, cache = PLAIN, name = "t::price")]
    fn price_unsigned(_id: u64) -> u64 {
        1 // what a writer without the secret plants
    }
    #[redis_cached(ttl = 60, cache = OTHER, name = "t::price")]
    fn price_other_secret(_id: u64) -> u64 {
        2
    }

    for (plant, format) in [
        (price_unsigned as fn(u64) -> u64, UNSIGNED),
        (price_other_secret, SIGNED),
    ] {
        for key in redis.keys() {
            let () = redis.conn().del(key).expect("DEL");
        }
        let calls = CALLS.get();
        let before = counts(&SIGNED_CACHE);
        assert!(plant(5) < 5, "planted");
        let key = redis.only_key();
        assert_eq!(redis.get_raw(&key).expect("planted")[0], format);

        assert_eq!(price(5), 500, "the planted value is not read");
        assert_eq!(CALLS.get(), calls + 1);
        let after = counts(&SIGNED_CACHE);
        assert_eq!(
            (after.1 - before.1, after.2 - before.2, after.3 - before.3),
            (1, 1, 1),
            "one miss, one error, one store"
        );
        let raw = redis.get_raw(&key).expect("overwritten");
        assert_eq!(raw[0], SIGNED);
        assert_eq!(price(5), 500);
        assert_eq!(CALLS.get(), calls + 1, "the overwritten value hits");
        assert_eq!(counts(&SIGNED_CACHE).0, after.0 + 1);
    }
    // A cache without a secret reads signed values unchecked (so processes
    // can turn signing on one by one).
    assert_eq!(price_unsigned(5), 500);
    assert_eq!(PLAIN.stats().errors, 0);
}

#[test]
fn a_value_copied_from_another_key_is_a_miss() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start();
    CACHE.set(signed(&redis, SECRET));

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn balance(user: String) -> u64 {
        CALLS.inc();
        if user == "alice" { 1_000_000 } else { 5 }
    }

    assert_eq!(balance("alice".into()), 1_000_000);
    assert_eq!(balance("mallory".into()), 5);
    let keys = redis.keys();
    assert_eq!(keys.len(), 2);
    let raw: Vec<Vec<u8>> = keys.iter().map(|k| redis.get_raw(k).unwrap()).collect();
    // Swap the two values: each is validly signed, but for the other key.
    redis.set_raw(&keys[0], &raw[1]);
    redis.set_raw(&keys[1], &raw[0]);
    let errors = CACHE.stats().errors;
    assert_eq!(balance("mallory".into()), 5);
    assert_eq!(balance("alice".into()), 1_000_000);
    assert_eq!(CALLS.get(), 4, "both recomputed");
    assert_eq!(CACHE.stats().errors, errors + 2);
    assert_eq!(balance("mallory".into()), 5);
    assert_eq!(
        CALLS.get(),
        4,
        "and stored again, signed for their own keys"
    );
}

#[test]
fn flipping_any_byte_makes_a_miss() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start();
    CACHE.set(signed(&redis, SECRET));

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn scores(id: u64) -> Vec<u32> {
        CALLS.inc();
        vec![id as u32; 4]
    }

    assert_eq!(scores(3), vec![3; 4]);
    let key = redis.only_key();
    let good = redis.get_raw(&key).unwrap();
    // Every byte: format, header (freshness), value, tag.
    for at in 0..good.len() {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        redis.set_raw(&key, &bad);
        let (calls, errors) = (CALLS.get(), CACHE.stats().errors);
        assert_eq!(scores(3), vec![3; 4]);
        assert_eq!(CALLS.get(), calls + 1, "byte {at} flipped: recomputed");
        assert_eq!(CACHE.stats().errors, errors + 1, "byte {at}: counted");
        assert_eq!(redis.get_raw(&key).unwrap()[0], SIGNED, "overwritten");
    }
}

#[test]
fn after_a_key_rotation_old_entries_are_misses_then_hits_again() {
    static BEFORE: CacheSlot = CacheSlot::new();
    static AFTER: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start();
    BEFORE.set(signed(&redis, SECRET));
    AFTER.set(signed(&redis, ROTATED));

    #[redis_cached(ttl = 60, cache = BEFORE, name = "t::title")]
    fn title_before(id: u64) -> String {
        CALLS.inc();
        format!("title {id}")
    }
    #[redis_cached(ttl = 60, cache = AFTER, name = "t::title")]
    fn title_after(id: u64) -> String {
        CALLS.inc();
        format!("title {id}")
    }

    for id in 0..3 {
        title_before(id);
    }
    assert_eq!(CALLS.get(), 3);
    // The deployment with the new secret: each old entry misses once.
    for id in 0..3 {
        assert_eq!(title_after(id), format!("title {id}"));
    }
    assert_eq!(CALLS.get(), 6);
    assert_eq!(counts(&AFTER), (0, 3, 3, 3));
    for id in 0..3 {
        assert_eq!(title_after(id), format!("title {id}"));
    }
    assert_eq!(CALLS.get(), 6);
    assert_eq!(AFTER.stats().hits, 3);
}
