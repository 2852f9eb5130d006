//! Where async calls run: on each caller's tokio runtime, over a connection
//! of that runtime, and elsewhere on the crate's own runtime; one `Cache`
//! serves them all, and outlives the runtimes that used it.

mod support;

use support::{CacheSlot, Calls, TestRedis};

static CACHE: CacheSlot = CacheSlot::new();
static CALLS: Calls = Calls::new();

#[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
async fn triple(x: u64) -> u64 {
    CALLS.inc();
    x * 3
}

fn runtime(builder: &mut tokio::runtime::Builder) -> tokio::runtime::Runtime {
    builder.build().expect("a runtime")
}

#[test]
fn one_cache_serves_runtimes_that_come_and_go_and_those_without_io_or_timers() {
    let redis = TestRedis::start_for(&CACHE);

    // Runtimes that can drive a connection, one after another: each makes
    // its own, and each drops it when it shuts down.
    for round in 0..3u64 {
        let rt = runtime(tokio::runtime::Builder::new_current_thread().enable_all());
        assert_eq!(rt.block_on(triple(round)), round * 3);
        assert_eq!(rt.block_on(triple(round)), round * 3);
    }
    let multi = runtime(tokio::runtime::Builder::new_multi_thread().enable_all());
    assert_eq!(multi.block_on(triple(0)), 0, "a hit on another runtime");
    drop(multi);

    // A runtime without IO and timers, and no runtime at all: the crate's own.
    let bare = runtime(&mut tokio::runtime::Builder::new_current_thread());
    assert_eq!(bare.block_on(triple(1)), 3, "a hit");
    assert_eq!(bare.block_on(triple(10)), 30, "a miss, stored");
    assert_eq!(futures_executor::block_on(triple(10)), 30, "a hit");
    let no_time = runtime(tokio::runtime::Builder::new_current_thread().enable_io());
    assert_eq!(no_time.block_on(triple(2)), 6, "a hit");

    assert_eq!(
        CALLS.get(),
        4,
        "the body ran once per argument: 0, 1, 2, 10"
    );
    let stats = CACHE.stats();
    assert_eq!((stats.hits, stats.misses, stats.errors), (7, 4, 0));
    assert_eq!(redis.keys().len(), 4);

    // The four runtimes that had connections are gone, and so are their
    // connections: what is left is the crate's own and the one asking.
    let clients = || {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query(&mut redis.conn())
            .expect("CLIENT LIST");
        list.lines().count()
    };
    support::eventually("the dropped runtimes' connections close", || clients() == 2);
    drop((bare, no_time));
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
