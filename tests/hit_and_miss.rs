//! The core contract: a miss runs the body and stores the value with the TTL;
//! a hit returns the stored value without running the body.

mod support;

use serde::{Deserialize, Serialize};
use support::{CacheSlot, Calls, TestRedis};

#[test]
fn sync_fn_runs_once_then_hits() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
    fn square(x: u64) -> u64 {
        CALLS.inc();
        x * x
    }

    assert_eq!(square(7), 49);
    assert_eq!(square(7), 49);
    assert_eq!(square(7), 49);
    assert_eq!(CALLS.get(), 1);
    let key = redis.only_key();
    let pttl = redis.pttl(&key);
    assert!((59_000..=60_000).contains(&pttl), "PTTL {pttl}");
    let stats = CACHE.stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.stores, stats.errors),
        (2, 1, 1, 0)
    );
}

#[tokio::test]
async fn async_fn_runs_once_then_hits() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached::redis_cached(ttl = "5m", cache = CACHE)]
    async fn greet(name: &str, times: usize) -> String {
        CALLS.inc();
        tokio::task::yield_now().await;
        name.repeat(times)
    }

    assert_eq!(greet("ab", 2).await, "abab");
    assert_eq!(greet("ab", 2).await, "abab");
    assert_eq!(CALLS.get(), 1);
    let key = redis.only_key();
    let pttl = redis.pttl(&key);
    assert!((299_000..=300_000).contains(&pttl), "PTTL {pttl}");
}

#[test]
fn sub_second_ttls_expire() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached::redis_cached(ttl = "300ms", cache = CACHE)]
    fn brief(x: u8) -> u8 {
        CALLS.inc();
        x
    }

    assert_eq!(brief(1), 1);
    let pttl = redis.pttl(&redis.only_key());
    assert!((1..=300).contains(&pttl), "PTTL {pttl}");
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert!(redis.keys().is_empty(), "expired");
    assert_eq!(brief(1), 1);
    assert_eq!(CALLS.get(), 2);
}

#[test]
fn each_argument_tuple_gets_its_own_key_without_raw_values() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
    fn lookup(user: &str, page: u32) -> Vec<String> {
        CALLS.inc();
        vec![format!("{user}/{page}")]
    }

    assert_eq!(lookup("alice-secret", 1), vec!["alice-secret/1"]);
    assert_eq!(lookup("alice-secret", 2), vec!["alice-secret/2"]);
    assert_eq!(lookup("bob", 1), vec!["bob/1"]);
    assert_eq!(lookup("alice-secret", 2), vec!["alice-secret/2"]);
    assert_eq!(CALLS.get(), 3);

    let keys = redis.keys();
    assert_eq!(keys.len(), 3, "{keys:?}");
    let prefix = concat!(module_path!(), "::lookup:{");
    for key in &keys {
        assert!(key.starts_with(prefix), "{key} should start with {prefix}");
        let hash = &key[prefix.len()..key.len() - 1];
        assert_eq!(hash.len(), 32, "{key}");
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
        assert!(key.ends_with('}'), "{key}");
        assert!(
            !key.contains("alice") && !key.contains("bob"),
            "raw argument in {key}"
        );
    }
}

#[test]
fn err_is_returned_and_not_stored() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    #[derive(Debug, PartialEq)]
    struct NotSerializable(String);

    #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
    fn parse(input: &str) -> Result<i64, NotSerializable> {
        CALLS.inc();
        let n = input
            .parse::<i64>()
            .map_err(|e| NotSerializable(e.to_string()))?;
        if n < 0 {
            return Err(NotSerializable("negative".into()));
        }
        Ok(n)
    }

    assert_eq!(
        parse("x"),
        Err(NotSerializable("invalid digit found in string".into()))
    );
    assert_eq!(parse("-4"), Err(NotSerializable("negative".into())));
    assert!(
        redis.keys().is_empty(),
        "an Err was stored: {:?}",
        redis.keys()
    );
    assert_eq!(parse("x").unwrap_err().0, "invalid digit found in string");
    assert_eq!(CALLS.get(), 3);

    assert_eq!(parse("42"), Ok(42));
    assert_eq!(parse("42"), Ok(42));
    assert_eq!(CALLS.get(), 4);
    assert_eq!(redis.keys().len(), 1);
}

#[tokio::test]
async fn async_result_with_question_mark_and_option_none_are_handled() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
    async fn half(x: u32) -> Result<u32, std::io::Error> {
        CALLS.inc();
        if x % 2 == 1 {
            Err(std::io::Error::other("odd"))?;
        }
        Ok(x / 2)
    }

    #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
    async fn find(id: u32) -> Option<String> {
        CALLS.inc();
        (id == 1).then(|| "one".to_owned())
    }

    assert_eq!(half(3).await.unwrap_err().to_string(), "odd");
    assert_eq!(half(3).await.unwrap_err().to_string(), "odd");
    assert_eq!(half(8).await.unwrap(), 4);
    assert_eq!(half(8).await.unwrap(), 4);
    assert_eq!(CALLS.get(), 3);

    assert_eq!(find(2).await, None);
    assert_eq!(find(2).await, None);
    assert_eq!(find(1).await.as_deref(), Some("one"));
    assert_eq!(find(1).await.as_deref(), Some("one"));
    assert_eq!(CALLS.get(), 5, "None is cached too");
    assert_eq!(redis.keys().len(), 3);
}

#[test]
fn structs_and_patterns_round_trip() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let _redis = TestRedis::start_for(&CACHE);

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Point {
        x: i32,
        y: i32,
    }

    #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
    fn mirror(Point { x, y }: Point, (dx, mut dy): (i32, i32)) -> Point {
        CALLS.inc();
        dy += 1;
        Point {
            x: y + dx,
            y: x + dy,
        }
    }

    let p = Point { x: 1, y: 2 };
    assert_eq!(mirror(p.clone(), (10, 20)), Point { x: 12, y: 22 });
    assert_eq!(mirror(p.clone(), (10, 20)), Point { x: 12, y: 22 });
    assert_eq!(mirror(p, (10, 21)), Point { x: 12, y: 23 });
    assert_eq!(CALLS.get(), 2);
}

#[test]
fn associated_fns_in_two_impls_do_not_share_entries() {
    static CACHE: CacheSlot = CacheSlot::new();
    let redis = TestRedis::start_for(&CACHE);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Meters(u32);
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Feet(u32);

    impl Meters {
        #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
        fn new(x: u32) -> Self {
            Meters(x)
        }
    }
    impl Feet {
        #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
        fn new(x: u32) -> Self {
            Feet(x * 3)
        }
    }

    assert_eq!(Meters::new(5), Meters(5));
    assert_eq!(Feet::new(5), Feet(15));
    assert_eq!(Meters::new(5), Meters(5));
    assert_eq!(Feet::new(5), Feet(15));
    assert_eq!(redis.keys().len(), 2);
}

#[test]
fn async_fns_work_outside_tokio() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
    async fn plain(x: u32) -> u32 {
        CALLS.inc();
        x + 1
    }

    // No tokio runtime here: commands and their timeouts run on the crate's own.
    assert_eq!(futures_executor::block_on(plain(1)), 2);
    assert_eq!(futures_executor::block_on(plain(1)), 2);
    assert_eq!(CALLS.get(), 1);
    assert_eq!(redis.keys().len(), 1);
    assert_eq!(CACHE.stats().errors, 0);
}

#[tokio::test]
async fn a_cache_on_the_applications_own_client() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start();
    let client = redis::Client::open(redis.url()).expect("a valid url");
    CACHE.set(redis_cached::Cache::from_client(client).expect("no builder settings to refuse"));

    #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
    async fn triple(x: u64) -> u64 {
        CALLS.inc();
        x * 3
    }

    assert_eq!(triple(5).await, 15);
    assert_eq!(triple(5).await, 15);
    assert_eq!(CALLS.get(), 1, "a miss, then a hit");
    let pttl = redis.pttl(&redis.only_key());
    assert!((59_000..=60_000).contains(&pttl), "PTTL {pttl}");

    let client = redis::Client::open(redis.url()).expect("a valid url");
    let err = redis_cached::Cache::builder_from_client(client)
        .password("not here")
        .build()
        .expect_err("credentials belong on the client");
    assert!(err.to_string().contains("from the client"), "{err}");
    assert!(!err.to_string().contains("not here"), "{err}");
}
