//! A primary with a replica behind Sentinel: cached calls reach the primary
//! the sentinels name (builder and `redis+sentinel://` URL, sync and async),
//! and after a `SENTINEL FAILOVER` during a load of cached calls, none
//! panics, none returns a wrong value, none hangs, and the calls are hits
//! again on the promoted replica.

#[path = "support/load.rs"]
mod load;
mod support;
#[path = "support/sentinel.rs"]
mod test_sentinel;

use std::time::{Duration, Instant};

use load::Load;
use redis_cached::{Cache, CacheBuilder, redis_cached};
use support::{CacheSlot, Calls};
use test_sentinel::{PRIMARY, TestSentinel, client_names};

static BUILT: CacheSlot = CacheSlot::new();
static FROM_URL: CacheSlot = CacheSlot::new();
static NOWHERE: CacheSlot = CacheSlot::new();
static RUNS: Calls = Calls::new();

#[redis_cached(ttl = 60, cache = BUILT)]
fn triple(x: u64) -> u64 {
    RUNS.inc();
    x * 3
}

#[redis_cached(ttl = 60, cache = FROM_URL)]
async fn triple_async(x: u64) -> u64 {
    RUNS.inc();
    x * 3
}

#[redis_cached(ttl = 60, cache = NOWHERE)]
fn triple_nowhere(x: u64) -> u64 {
    RUNS.inc();
    x * 3
}

#[test]
fn calls_hit_the_primary_the_sentinels_name_sync_and_async() {
    let topology = TestSentinel::start(1, 1);
    BUILT.set(
        CacheBuilder::sentinel(topology.sentinel_urls(), PRIMARY)
            .prefix("built:")
            .build()
            .expect("valid urls"),
    );
    FROM_URL.set(
        Cache::builder(&topology.url())
            .prefix("url:")
            .build()
            .expect("a valid Sentinel URL"),
    );
    NOWHERE.set(Cache::sentinel(topology.sentinel_urls(), "nosuch").expect("valid urls"));
    let primary = topology.primary();

    assert_eq!((triple(7), triple(7)), (21, 21));
    assert_eq!(RUNS.get(), 1, "the second call is a hit");
    assert_eq!((BUILT.stats().hits, BUILT.stats().misses), (1, 1));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        assert_eq!((triple_async(5).await, triple_async(5).await), (15, 15));
    });
    assert_eq!(RUNS.get(), 2, "the second async call is a hit");
    assert_eq!((FROM_URL.stats().hits, FROM_URL.stats().misses), (1, 1));

    let keys = primary.keys();
    assert_eq!(
        keys.len(),
        2,
        "one key per function, on the primary: {keys:?}"
    );
    for key in &keys {
        let pttl = primary.pttl(key);
        assert!(0 < pttl && pttl <= 60_000, "{key}: PTTL {pttl}");
    }
    assert!(keys[0].starts_with("built:") && keys[1].starts_with("url:"));

    // A name the sentinels don't know: calls fail open.
    assert_eq!((triple_nowhere(1), triple_nowhere(1)), (3, 3));
    assert_eq!(RUNS.get(), 4, "no cache, so both calls ran the body");
    assert_eq!(NOWHERE.stats().hits, 0);
    assert!(NOWHERE.stats().errors > 0);
}

static GUARDED: CacheSlot = CacheSlot::new();

#[redis_cached(ttl = 60, cache = GUARDED)]
fn triple_guarded(x: u64) -> u64 {
    RUNS_GUARDED.inc();
    x * 3
}

static RUNS_GUARDED: Calls = Calls::new();

#[test]
fn the_sentinels_and_the_data_nodes_each_take_their_own_password() {
    let topology = TestSentinel::start_with_passwords(1, 1, Some("root-pw"), Some("sentinel-pw"));
    // The URL form: the data nodes' password before `@`, the sentinels' as
    // `sentinel_password`.
    let url = topology.url();
    assert!(url.contains(":root-pw@") && url.contains("sentinel_password=sentinel-pw"));
    GUARDED.set(Cache::new(&url).expect("a valid Sentinel URL"));
    assert_eq!((triple_guarded(2), triple_guarded(2)), (6, 6));
    assert_eq!(RUNS_GUARDED.get(), 1, "the second call is a hit");
    assert_eq!(GUARDED.stats().errors, 0);
    assert_eq!(topology.primary().keys_as_root().len(), 1);

    // The builder form: the sentinels' password in their URLs, the data
    // nodes' given apart. A wrong one fails `ping`; no password is shown.
    let wrong = CacheBuilder::sentinel(topology.sentinel_urls(), PRIMARY)
        .password("not-the-pw")
        .build()
        .expect("valid urls");
    let error = wrong
        .ping_blocking()
        .expect_err("a wrong data-node password");
    let shown = format!("{error} {error:?} {wrong:?}");
    for secret in ["not-the-pw", "sentinel-pw", "root-pw"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    let right = CacheBuilder::sentinel(topology.sentinel_urls(), PRIMARY)
        .password("root-pw")
        .build()
        .expect("valid urls");
    right.ping_blocking().expect("the right passwords");
}

const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// A bound on a hang, not a timing target: a lookup, a connection and two
/// commands, on a loaded machine.
const SLOWEST_ALLOWED: Duration = Duration::from_secs(4);
const ARGS: u64 = 40;

static LOAD: CacheSlot = CacheSlot::new();
static LOAD_RUNS: Calls = Calls::new();
/// A cache with an in-process tier, whose tracking must follow the primary.
static TRACKED: CacheSlot = CacheSlot::new();

fn expected(x: u64) -> u64 {
    x * 7 + 1
}

#[redis_cached(ttl = 600, name = "sentinel::value", cache = LOAD)]
async fn value_async(x: u64) -> u64 {
    LOAD_RUNS.inc();
    expected(x)
}

#[redis_cached(ttl = 600, name = "sentinel::value", cache = LOAD)]
fn value_sync(x: u64) -> u64 {
    LOAD_RUNS.inc();
    expected(x)
}

#[redis_cached(ttl = 600, name = "sentinel::tracked", cache = TRACKED)]
fn value_tracked(x: u64) -> u64 {
    expected(x)
}

#[test]
fn a_failover_under_load_gives_no_wrong_answer_no_hang_and_hits_on_the_new_primary() {
    let topology = TestSentinel::start(1, 2);
    let builder = CacheBuilder::sentinel(topology.sentinel_urls(), PRIMARY)
        .response_timeout(RESPONSE_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT);
    LOAD.set(builder.clone().prefix("load:").build().expect("valid urls"));
    TRACKED.set(
        builder
            .prefix("tracked:")
            .local(1_000)
            .build()
            .expect("valid urls"),
    );
    let old_primary = topology.primary();
    for x in 0..ARGS {
        assert_eq!(value_sync(x), expected(x));
    }
    assert_eq!(value_tracked(1), expected(1));
    let load_keys = |node: &harness::Server| {
        let keys = node.keys();
        keys.iter().filter(|key| key.starts_with("load:")).count()
    };
    assert_eq!(load_keys(old_primary), ARGS as usize);
    support::eventually("the tracking connection on the primary", || {
        client_names(old_primary.url()).contains(&"redis-cached-tracking".to_owned())
    });

    let mut load = Load::start(ARGS, value_async, value_sync, expected);
    std::thread::sleep(Duration::from_millis(300));
    let errors_before = LOAD.stats().errors;
    let failover_at = Instant::now();
    let new_primary = topology.failover();
    let promoted_after = failover_at.elapsed();
    assert_ne!(new_primary.url(), old_primary.url());

    // Hits come back: the body stops running, every key is on the new
    // primary, and the tracking connection moved there.
    support::eventually_within(
        Duration::from_secs(30),
        Duration::ZERO,
        "the body stops running and every key is on the new primary",
        || {
            let runs = LOAD_RUNS.get();
            std::thread::sleep(Duration::from_millis(500));
            let on_new = load_keys(new_primary);
            LOAD_RUNS.get() == runs && on_new == ARGS as usize
        },
    );
    let recovered_after = failover_at.elapsed();
    support::eventually("the tracking connection on the new primary", || {
        client_names(new_primary.url()).contains(&"redis-cached-tracking".to_owned())
    });
    assert_eq!(value_tracked(1), expected(1));
    let local_hits = TRACKED.stats().local_hits;
    support::eventually("in-process hits again, tracked on the new primary", || {
        assert_eq!(value_tracked(1), expected(1));
        TRACKED.stats().local_hits > local_hits
    });
    // New values are written to the new primary, sync and async.
    support::eventually("new values stored on the new primary", || {
        assert_eq!(value_sync(ARGS), expected(ARGS));
        assert_eq!(
            load.runtime().block_on(value_async(ARGS + 1)),
            expected(ARGS + 1)
        );
        load_keys(new_primary) == ARGS as usize + 2
    });
    let hits = LOAD.stats().hits;
    std::thread::sleep(Duration::from_millis(300));
    let (calls, slowest) = load.stop();
    let stats = LOAD.stats();
    eprintln!(
        "{calls} calls; promoted {promoted_after:?} and the body stopped running \
         {recovered_after:?} after SENTINEL FAILOVER; slowest call {slowest:?}; \
         errors {} during the failover; {stats:?}",
        stats.errors - errors_before
    );
    assert!(calls > 100, "the load ran: {calls} calls");
    assert!(stats.hits > hits, "hits after the promotion");
    assert!(
        slowest < SLOWEST_ALLOWED,
        "a call took {slowest:?}, past a lookup, a connection and two commands"
    );
    // Every argument is a hit on the new primary, without its body running.
    let runs = LOAD_RUNS.get();
    for x in 0..ARGS {
        assert_eq!(value_sync(x), expected(x));
        assert_eq!(load.runtime().block_on(value_async(x)), expected(x));
    }
    assert_eq!(LOAD_RUNS.get(), runs, "no body ran on the new primary");
}
