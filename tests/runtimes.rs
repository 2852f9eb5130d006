//! Where async calls run: on each caller's tokio runtime, over a connection
//! of that runtime, and elsewhere on the crate's own runtime (always, for a
//! cache built with `own_runtime`); one `Cache` serves them all, and
//! outlives the runtimes that used it. Finding out where touches nothing of
//! the process's: no panic hook, no probe.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use support::{CacheSlot, Calls, TestRedis};

static CACHE: CacheSlot = CacheSlot::new();
static CALLS: Calls = Calls::new();

#[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
async fn triple(x: u64) -> u64 {
    CALLS.inc();
    x * 3
}

static OWN: CacheSlot = CacheSlot::new();
static OWN_CALLS: Calls = Calls::new();

#[redis_cached::redis_cached(ttl = 60, cache = OWN, lock = "1s")]
async fn quadruple(x: u64) -> u64 {
    OWN_CALLS.inc();
    x * 4
}

fn runtime(builder: &mut tokio::runtime::Builder) -> tokio::runtime::Runtime {
    builder.build().expect("a runtime")
}

/// How many clients `redis` has, the one asking included.
fn clients(redis: &TestRedis) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut redis.conn())
        .expect("CLIENT LIST");
    list.lines().count()
}

#[test]
fn one_cache_serves_runtimes_that_come_and_go_and_other_executors() {
    let redis = TestRedis::start_for(&CACHE);

    // Runtimes one after another: each makes its own connection, and each
    // drops it when it shuts down.
    for round in 0..3u64 {
        let rt = runtime(tokio::runtime::Builder::new_current_thread().enable_all());
        assert_eq!(rt.block_on(triple(round)), round * 3);
        assert_eq!(rt.block_on(triple(round)), round * 3);
    }
    let multi = runtime(tokio::runtime::Builder::new_multi_thread().enable_all());
    assert_eq!(multi.block_on(triple(0)), 0, "a hit on another runtime");
    drop(multi);

    // No tokio runtime at all: the crate's own.
    assert_eq!(futures_executor::block_on(triple(1)), 3, "a hit");
    assert_eq!(futures_executor::block_on(triple(10)), 30, "a miss, stored");
    assert_eq!(futures_executor::block_on(triple(10)), 30, "a hit");

    assert_eq!(
        CALLS.get(),
        4,
        "the body ran once per argument: 0, 1, 2, 10"
    );
    let stats = CACHE.stats();
    assert_eq!((stats.hits, stats.misses, stats.errors), (6, 4, 0));
    assert_eq!(redis.keys().len(), 4);

    // The four runtimes that had connections are gone, and so are their
    // connections: what is left is the crate's own and the one asking.
    support::eventually("the dropped runtimes' connections close", || {
        clients(&redis) == 2
    });
}

#[test]
fn a_cache_on_its_own_runtime_serves_runtimes_without_io_or_timers() {
    let redis = TestRedis::start();
    OWN.set(
        redis_cached::Cache::builder(redis.url())
            .own_runtime()
            .build()
            .expect("a valid url"),
    );
    let bare = runtime(&mut tokio::runtime::Builder::new_current_thread());
    assert_eq!(bare.block_on(quadruple(1)), 4, "a miss, stored");
    assert_eq!(bare.block_on(quadruple(1)), 4, "a hit");
    let no_time = runtime(tokio::runtime::Builder::new_current_thread().enable_io());
    assert_eq!(no_time.block_on(quadruple(1)), 4, "a hit");
    let no_io = runtime(tokio::runtime::Builder::new_current_thread().enable_time());
    assert_eq!(no_io.block_on(quadruple(2)), 8, "a miss, stored");
    let full = runtime(tokio::runtime::Builder::new_multi_thread().enable_all());
    assert_eq!(full.block_on(quadruple(2)), 8, "a hit");

    // A lock held by another process: the call waits on the crate's timer
    // (none of the caller's) until the holder's value arrives.
    let lock_of = |key: &str| format!("{key}:lock");
    let key = redis.keys().into_iter().next().expect("a key");
    let value: Vec<u8> = redis::cmd("GET")
        .arg(&key)
        .query(&mut redis.conn())
        .expect("GET");
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query(&mut redis.conn())
        .expect("DEL");
    let _: () = redis::cmd("SET")
        .arg(lock_of(&key))
        .arg("another process")
        .arg("PX")
        .arg(5_000)
        .query(&mut redis.conn())
        .expect("SET");
    let holder = {
        let (url, key, value) = (redis.url().to_owned(), key.clone(), value);
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
            let _: () = redis::cmd("SET")
                .arg(&key)
                .arg(value)
                .query(&mut conn)
                .unwrap();
        })
    };
    let runs = OWN_CALLS.get();
    let (one, two) = bare.block_on(async { (quadruple(1).await, quadruple(2).await) });
    holder.join().expect("the holder");
    assert_eq!((one, two), (4, 8));
    assert_eq!(
        OWN_CALLS.get(),
        runs,
        "the waiting call took the holder's value"
    );

    assert_eq!(OWN_CALLS.get(), 2, "the body ran once per argument");
    let stats = OWN.stats();
    assert_eq!(stats.errors, 0);
    drop(full);
    // Only the crate's own connection was made, whichever runtime called.
    support::eventually("the holder's connection closes", || clients(&redis) == 2);
}

#[test]
fn calls_leave_the_process_panic_hook_alone() {
    let redis = TestRedis::start();
    static HOOKED: CacheSlot = CacheSlot::new();
    HOOKED.set(redis.cache());

    #[redis_cached::redis_cached(ttl = 60, cache = HOOKED)]
    async fn add_one(x: u64) -> u64 {
        x + 1
    }

    let panics = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&panics);
    let hook: Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync> = Box::new(move |_| {
        counted.fetch_add(1, Ordering::Relaxed);
    });
    let ours = std::ptr::from_ref(&*hook).cast::<()>();
    std::panic::set_hook(hook);

    // First calls on new threads, on runtimes of every kind and none.
    let threads: Vec<_> = (0..4u64)
        .map(|i| {
            std::thread::spawn(move || {
                let answer = match i {
                    0 => runtime(tokio::runtime::Builder::new_current_thread().enable_all())
                        .block_on(add_one(i)),
                    1 => runtime(tokio::runtime::Builder::new_multi_thread().enable_all())
                        .block_on(add_one(i)),
                    _ => futures_executor::block_on(add_one(i)),
                };
                assert_eq!(answer, i + 1);
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a call");
    }
    let after = std::panic::take_hook();
    let still_ours = std::ptr::from_ref(&*after).cast::<()>() == ours;
    drop(after);
    assert!(still_ours, "the application's panic hook was replaced");
    assert_eq!(
        panics.load(Ordering::Relaxed),
        0,
        "nothing panicked, quietly or not"
    );
}

#[tokio::test]
async fn a_broken_connection_is_made_again_when_redis_comes_back() {
    static CALLS: Calls = Calls::new();
    static CACHE: CacheSlot = CacheSlot::new();
    let server = support::TestRedis::start();
    let (url, port) = (server.url().to_owned(), server.port());
    CACHE.set(
        redis_cached::Cache::builder(&url)
            .connect_timeout(std::time::Duration::from_millis(200))
            .build()
            .expect("a valid url"),
    );
    support::eventually("redis-server answers", || CACHE.ping_blocking().is_ok());

    #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
    async fn double(x: u64) -> u64 {
        CALLS.inc();
        x * 2
    }

    assert_eq!(double(1).await, 2);
    assert_eq!(double(1).await, 2);
    assert_eq!(CALLS.get(), 1, "a miss, then a hit");

    drop(server);
    assert_eq!(double(1).await, 2, "Redis is gone: the body runs");
    assert_eq!(CALLS.get(), 2);

    let _server = support::TestRedis::start_on(port, &[]);
    // The breaker waits out one connect timeout; then a call connects anew.
    support::eventually_async_within(
        support::PATIENCE,
        std::time::Duration::from_millis(20),
        "stored again",
        || async {
            if CACHE.stats().stores >= 2 {
                return true;
            }
            assert_eq!(double(5).await, 10);
            false
        },
    )
    .await;
    let runs = CALLS.get();
    assert_eq!(double(5).await, 10);
    assert_eq!(CALLS.get(), runs, "a hit over the new connection");
}
