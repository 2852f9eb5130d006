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
