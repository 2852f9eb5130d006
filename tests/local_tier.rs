//! The in-process tier (`local = N`, `CacheBuilder::local`): a hit there
//! costs no round trip, and a write or delete in Redis by anyone (another
//! cache, a raw command) drops the copy here, through client-side caching.

mod support;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use redis_cached::{Cache, redis_cached};
use serde::{Deserialize, Serialize};
use support::{CacheSlot, Calls, TestRedis, eventually};

/// The name the tracking connection of every cache goes by.
const TRACKING: &str = "redis-cached-tracking";

/// Calls `call` until the tier of `cache` has answered one more time.
fn until_local_hit(cache: &Cache, mut call: impl FnMut()) {
    let before = cache.stats().local_hits;
    eventually("a hit in the in-process tier", || {
        call();
        cache.stats().local_hits > before
    });
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Page {
    id: u64,
    body: String,
}

#[test]
fn a_local_hit_sends_nothing_to_redis() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = 60, cache = CACHE, local = 100)]
    fn page(id: u64) -> Page {
        CALLS.inc();
        Page {
            id,
            body: "x".repeat(100),
        }
    }

    let expected = Page {
        id: 7,
        body: "x".repeat(100),
    };
    assert_eq!(page(7), expected);
    until_local_hit(&CACHE, || assert_eq!(page(7), expected));
    let gets = redis.command_calls("get");
    let stats = CACHE.stats();
    for _ in 0..20 {
        assert_eq!(page(7), expected);
    }
    assert_eq!(redis.command_calls("get"), gets, "no GET reached Redis");
    let after = CACHE.stats();
    assert_eq!(after.local_hits, stats.local_hits + 20);
    assert_eq!(after.hits, stats.hits + 20, "local hits are hits");
    assert_eq!(CALLS.get(), 1);
    assert!(
        redis.get_raw(&redis.only_key()).is_some(),
        "the value is in Redis too"
    );
}

#[tokio::test]
async fn an_async_function_hits_locally_too() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = 60, cache = CACHE, local = 10)]
    async fn words(text: String) -> Vec<String> {
        CALLS.inc();
        text.split(' ').map(str::to_owned).collect()
    }

    let text = || "a b c".to_owned();
    assert_eq!(words(text()).await, ["a", "b", "c"]);
    let before = CACHE.stats().local_hits;
    support::eventually_async("a local hit", || async {
        if CACHE.stats().local_hits > before {
            return true;
        }
        assert_eq!(words(text()).await, ["a", "b", "c"]);
        false
    })
    .await;
    let gets = redis.command_calls("get");
    assert_eq!(words(text()).await, ["a", "b", "c"]);
    assert_eq!(redis.command_calls("get"), gets);
    assert_eq!(CALLS.get(), 1);
}

#[test]
fn the_cache_wide_tier_serves_functions_without_local() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start();
    CACHE.set(Cache::builder(redis.url()).local(100).build().unwrap());

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn double(x: u64) -> u64 {
        CALLS.inc();
        x * 2
    }

    assert_eq!(double(4), 8);
    until_local_hit(&CACHE, || assert_eq!(double(4), 8));
    let gets = redis.command_calls("get");
    assert_eq!(double(4), 8);
    assert_eq!(redis.command_calls("get"), gets);
    assert_eq!(CALLS.get(), 1);
}

#[test]
fn without_local_every_hit_reads_redis() {
    static CACHE: CacheSlot = CacheSlot::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn double(x: u64) -> u64 {
        x * 2
    }

    assert_eq!(double(4), 8);
    let gets = redis.command_calls("get");
    for _ in 0..5 {
        assert_eq!(double(4), 8);
    }
    assert_eq!(redis.command_calls("get"), gets + 5);
    assert_eq!(CACHE.stats().local_hits, 0);
    assert!(
        redis.client_ids(TRACKING).is_empty(),
        "no tracking without a tier"
    );
}

/// What the body of `shared_a` / `shared_b` returns: a version the test sets.
static VERSION: AtomicU64 = AtomicU64::new(1);

/// Two processes, simulated by two caches on one server with their own
/// connections and tiers, caching the same function (same name, same key).
static CACHE_A: CacheSlot = CacheSlot::new();
static CACHE_B: CacheSlot = CacheSlot::new();
static CALLS_A: Calls = Calls::new();

#[redis_cached(ttl = 60, cache = CACHE_A, local = 100, name = "shared::version")]
fn shared_a(id: u64) -> u64 {
    CALLS_A.inc();
    id * 1000 + VERSION.load(SeqCst)
}

#[redis_cached(ttl = 60, cache = CACHE_B, local = 100, name = "shared::version")]
fn shared_b(id: u64) -> u64 {
    id * 1000 + VERSION.load(SeqCst)
}

/// Calls `shared_a(1)` until it returns `new`; before that it may only
/// return `old`, and after it, only `new`.
fn a_switches(old: u64, new: u64) {
    eventually("cache A serving the new value", || {
        let seen = shared_a(1);
        assert!(seen == old || seen == new, "unexpected {seen}");
        seen == new
    });
    for _ in 0..50 {
        assert_eq!(shared_a(1), new, "the old value came back");
    }
}

#[test]
fn writes_and_deletes_elsewhere_reach_the_local_tier() {
    let redis = TestRedis::start();
    CACHE_A.set(redis.cache());
    CACHE_B.set(redis.cache());

    assert_eq!(shared_a(1), 1001);
    until_local_hit(&CACHE_A, || assert_eq!(shared_a(1), 1001));
    let key = redis.only_key();

    // Another process recomputes and stores: A drops its copy, reads the new value.
    VERSION.store(2, SeqCst);
    assert_eq!(shared_b_refresh(1), 1002);
    let bytes_1002 = redis.get_raw(&key).expect("B stored 1002");
    a_switches(1001, 1002);
    assert_eq!(CALLS_A.get(), 1, "A read B's value from Redis");

    VERSION.store(3, SeqCst);
    assert_eq!(shared_b_refresh(1), 1003);
    a_switches(1002, 1003);
    until_local_hit(&CACHE_A, || assert_eq!(shared_a(1), 1003));

    // A raw `SET` of a valid value by some other client.
    let mut conn = redis.conn();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(&bytes_1002)
        .query(&mut conn)
        .expect("SET");
    a_switches(1003, 1002);
    until_local_hit(&CACHE_A, || assert_eq!(shared_a(1), 1002));

    // `DEL` of the key: A recomputes.
    VERSION.store(4, SeqCst);
    let deleted: u64 = redis::cmd("DEL").arg(&key).query(&mut conn).expect("DEL");
    assert_eq!(deleted, 1);
    a_switches(1002, 1004);
    assert_eq!(CALLS_A.get(), 2, "A ran its body once more, after the DEL");
    assert!(redis.get_raw(&key).is_some(), "and stored its value");
}

#[test]
fn losing_the_tracking_connection_flushes_the_tier_until_it_is_back() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = 60, cache = CACHE, local = 10)]
    fn label(id: u64) -> String {
        format!("label {id} #{}", CALLS.next())
    }

    assert_eq!(label(1), "label 1 #1");
    until_local_hit(&CACHE, || assert_eq!(label(1), "label 1 #1"));
    let key = redis.only_key();
    let ids = redis.client_ids(TRACKING);
    assert_eq!(ids.len(), 1, "one tracking connection per cache");

    let killed: u64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(ids[0])
        .query(&mut redis.conn())
        .expect("CLIENT KILL");
    assert_eq!(killed, 1);
    // While tracking is down no invalidation can arrive: only a flush of
    // the tier lets A see this write.
    let _: () = redis::cmd("UNLINK")
        .arg(&key)
        .query(&mut redis.conn())
        .expect("UNLINK");
    eventually("the tier flushed and the key recomputed", || {
        label(1) == "label 1 #2"
    });
    assert_eq!(CALLS.get(), 2);

    eventually("tracking re-established", || {
        let now = redis.client_ids(TRACKING);
        now.len() == 1 && now[0] != ids[0]
    });
    until_local_hit(&CACHE, || assert_eq!(label(1), "label 1 #2"));
}

#[test]
fn an_in_memory_cache_has_no_separate_tier() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    CACHE.set(Cache::builder("mem://").local(10).build().unwrap());

    #[redis_cached(ttl = 60, cache = CACHE, local = 10)]
    fn triple(x: u64) -> u64 {
        CALLS.inc();
        x * 3
    }

    assert_eq!(triple(2), 6);
    assert_eq!(triple(2), 6);
    assert_eq!(CALLS.get(), 1);
    let stats = CACHE.stats();
    assert_eq!((stats.hits, stats.local_hits), (1, 0));
}

/// The `CLIENT LIST` flags of the cache's one tracking connection.
fn tracking_flags(redis: &TestRedis) -> String {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut redis.conn())
        .expect("CLIENT LIST");
    let named = format!(" name={TRACKING} ");
    let flags: Vec<&str> = list
        .lines()
        .filter(|line| line.contains(&named))
        .filter_map(|line| line.split(" flags=").nth(1)?.split(' ').next())
        .collect();
    assert_eq!(flags.len(), 1, "one tracking connection: {list}");
    flags[0].to_owned()
}

/// Deletes `key` from a connection of its own, as another process would.
fn delete_elsewhere(redis: &TestRedis, key: &str) {
    let deleted: u64 = redis::cmd("DEL")
        .arg(key)
        .query(&mut redis.conn())
        .expect("DEL");
    assert_eq!(deleted, 1);
}

#[tokio::test]
async fn an_async_read_is_dropped_locally_when_another_client_writes_the_key() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = 60, cache = CACHE, local = 10)]
    async fn label(id: u64) -> String {
        format!("label {id} #{}", CALLS.next())
    }

    /// Calls `label(1)` until it returns `want` from the tier.
    async fn until_local(want: &str) {
        support::eventually_async(&format!("{want} locally"), || async {
            let before = CACHE.stats().local_hits;
            let seen = label(1).await;
            seen == want && CACHE.stats().local_hits > before
        })
        .await;
    }

    assert_eq!(label(1).await, "label 1 #1");
    until_local("label 1 #1").await;
    let flags = tracking_flags(&redis);
    assert!(
        flags.contains('t') && !flags.contains('B'),
        "tracking in default mode, not broadcast: flags={flags}"
    );
    delete_elsewhere(&redis, &redis.only_key());
    until_local("label 1 #2").await;
    assert_eq!(CALLS.get(), 2, "recomputed once, after the DEL");
}

#[test]
fn after_every_connection_is_killed_writes_elsewhere_still_reach_the_tier() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = 60, cache = CACHE, local = 10)]
    fn label(id: u64) -> String {
        format!("label {id} #{}", CALLS.next())
    }

    assert_eq!(label(1), "label 1 #1");
    until_local_hit(&CACHE, || assert_eq!(label(1), "label 1 #1"));
    let key = redis.only_key();
    let ids = redis.client_ids(TRACKING);

    // The data connections (sync pool) and the tracking connection alike.
    let killed: u64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query(&mut redis.conn())
        .expect("CLIENT KILL");
    assert!(killed >= 2, "a data and the tracking connection: {killed}");
    eventually("tracking re-established", || {
        let now = redis.client_ids(TRACKING);
        now.len() == 1 && now[0] != ids[0]
    });
    // A killed pool connection fails the one command next sent over it (the
    // tier's reads go over the data connections as every call's do, and
    // only the tier's confirming reads over the tracking connection): the
    // value may be computed once more.
    let value = label(1);
    until_local_hit(&CACHE, || assert_eq!(label(1), value));

    delete_elsewhere(&redis, &key);
    // Which recomputation is served may vary, but the deleted one never
    // comes back.
    eventually("the DEL seen after the reconnection", || label(1) != value);
    let now = label(1);
    until_local_hit(&CACHE, || assert_ne!(label(1), value));
    assert!(CALLS.get() >= 2, "recomputed after the DEL: {now}");
    for _ in 0..50 {
        assert_ne!(label(1), value, "the deleted value came back");
    }
}

#[test]
fn after_a_restart_of_redis_writes_elsewhere_still_reach_the_tier() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let mut redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = 60, cache = CACHE, local = 10)]
    fn label(id: u64) -> String {
        format!("label {id} #{}", CALLS.next())
    }

    assert_eq!(label(1), "label 1 #1");
    until_local_hit(&CACHE, || assert_eq!(label(1), "label 1 #1"));
    let port: u16 = redis
        .url()
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("a port in the URL");
    redis.stop();
    let redis = TestRedis::start_on(port, &[]);
    // The new server is empty: the tier was flushed when tracking dropped.
    eventually("the value recomputed on the new server", || {
        label(1) == "label 1 #2"
    });
    until_local_hit(&CACHE, || assert_eq!(label(1), "label 1 #2"));

    delete_elsewhere(&redis, &redis.only_key());
    eventually("the DEL seen on the new server", || {
        let seen = label(1);
        assert!(seen == "label 1 #2" || seen == "label 1 #3", "{seen}");
        seen == "label 1 #3"
    });
    assert_eq!(CALLS.get(), 3);
}

/// The test Redis of [`every_reader_sees_every_write_in_order`], whose
/// `counter` its functions return.
static COUNTER_URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn counter() -> u64 {
    let mut conn = redis::Client::open(COUNTER_URL.get().expect("set").as_str())
        .and_then(|client| client.get_connection())
        .expect("connect to the test server");
    redis::cmd("GET")
        .arg("counter")
        .query::<Option<u64>>(&mut conn)
        .expect("GET")
        .unwrap_or(0)
}

static READER_1: CacheSlot = CacheSlot::new();
static READER_2: CacheSlot = CacheSlot::new();
static READER_3: CacheSlot = CacheSlot::new();
static WRITER: CacheSlot = CacheSlot::new();

// Three processes' tiers, and a writer's cache, on one function.
#[redis_cached(ttl = 60, cache = READER_1, local = 10, name = "coherence::value")]
fn value_1() -> u64 {
    counter()
}

#[redis_cached(ttl = 60, cache = READER_2, local = 10, name = "coherence::value")]
fn value_2() -> u64 {
    counter()
}

#[redis_cached(ttl = 60, cache = READER_3, local = 10, name = "coherence::value")]
async fn value_3() -> u64 {
    counter()
}

#[redis_cached(ttl = 60, cache = WRITER, name = "coherence::value")]
fn value_w() -> u64 {
    counter()
}

/// A writer stores 50 new values (`INCR`, then `f_refresh`: write-through,
/// so no reader computes a value concurrently and the order of the stored
/// values is the order of the writes) while three tiers, two sync and one
/// async, read in a loop: none ever returns an older value than it
/// returned before, and each reaches the last one and stays there: no
/// invalidation is lost. (How soon is the benchmark's `coherence` rows'.)
#[test]
fn every_reader_sees_every_write_in_order() {
    let redis = TestRedis::start();
    COUNTER_URL.set(redis.url().to_owned()).expect("set once");
    for slot in [&READER_1, &READER_2, &READER_3, &WRITER] {
        slot.set(redis.cache());
    }
    let incr = || -> u64 {
        redis::cmd("INCR")
            .arg("counter")
            .query(&mut redis.conn())
            .expect("INCR")
    };
    incr();
    assert_eq!(value_w_refresh(), 1);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = |call: fn() -> u64| {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut last, mut calls) = (0, 0u64);
            while !stop.load(SeqCst) {
                let seen = call();
                assert!(
                    seen >= last,
                    "{seen} after {last}: an older value came back; {:?} {:?} {:?}",
                    READER_1.stats(),
                    READER_2.stats(),
                    READER_3.stats()
                );
                last = seen;
                calls += 1;
            }
            calls
        })
    };
    let in_runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(value_3())
    };
    let readers = [reader(value_1), reader(value_2), reader(in_runtime)];
    let mut last = 1;
    for _ in 0..50 {
        last = incr();
        assert_eq!(value_w_refresh(), last);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(last, 51);
    eventually("every reader at the last value", || {
        value_1() == last && value_2() == last && in_runtime() == last
    });
    stop.store(true, SeqCst);
    for reader in readers {
        assert!(reader.join().expect("no reader saw an older value") > 0);
    }
    for _ in 0..20 {
        assert_eq!((value_1(), value_2(), in_runtime()), (last, last, last));
    }
    let local_hits = READER_1.stats().local_hits + READER_2.stats().local_hits;
    assert!(local_hits > 0, "the readers' tiers answered");
}
