//! A cache on a Redis Cluster of 3 primaries, started by each test: keys
//! spread over every primary, hits, misses and TTLs, single flight, the
//! cross-process lock, invalidation and stale values, sync and async; and a
//! cache on a cluster client the application configured itself.

mod support;
#[path = "support/cluster.rs"]
mod test_cluster;

use std::future::ready;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use redis_cached::{Cache, redis_cached};
use support::{CacheSlot, Calls};
use test_cluster::TestCluster;

/// Enough distinct arguments that every primary gets keys.
const ARGS: u64 = 300;

/// Asserts that every primary holds some of the cluster's `total` keys.
fn assert_spread(cluster: &TestCluster, total: u64) {
    let per_primary = cluster.keys_per_primary();
    assert_eq!(per_primary.len(), 3, "{per_primary:?}");
    assert!(
        per_primary.iter().all(|(_, keys)| *keys > 0),
        "keys on every primary: {per_primary:?}"
    );
    let sum: u64 = per_primary.iter().map(|(_, keys)| keys).sum();
    assert_eq!(sum, total, "{per_primary:?}");
}

#[test]
fn sync_calls_miss_then_hit_with_their_ttl_on_every_primary() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    static BRIEF_CALLS: Calls = Calls::new();
    let cluster = TestCluster::start();
    CACHE.set(cluster.cache());

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn square(x: u64) -> u64 {
        CALLS.inc();
        x * x
    }

    for x in 0..ARGS {
        assert_eq!(square(x), x * x);
    }
    for x in 0..ARGS {
        assert_eq!(square(x), x * x);
    }
    assert_eq!(CALLS.get(), ARGS as usize, "each body ran once");
    let stats = CACHE.stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.stores, stats.errors),
        (ARGS, ARGS, ARGS, 0)
    );
    let keys = cluster.keys();
    assert_eq!(keys.len() as u64, ARGS);
    assert_spread(&cluster, ARGS);
    for key in keys.iter().step_by(25) {
        let pttl = cluster.pttl(key);
        assert!((58_000..=60_000).contains(&pttl), "PTTL {key}: {pttl}");
    }

    #[redis_cached(ttl = "300ms", cache = CACHE)]
    fn brief(x: u64) -> u64 {
        BRIEF_CALLS.inc();
        x
    }

    assert_eq!(brief(1), 1);
    let key = cluster
        .keys()
        .into_iter()
        .find(|key| key.contains("brief"))
        .expect("brief's key");
    let pttl = cluster.pttl(&key);
    assert!((1..=300).contains(&pttl), "PTTL {pttl}");
    std::thread::sleep(Duration::from_millis(400));
    assert!(!cluster.exists(&key), "expired");
    assert_eq!(brief(1), 1);
    assert_eq!(BRIEF_CALLS.get(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_calls_from_many_tasks_hit_and_share_one_flight() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    static SLOW_CALLS: Calls = Calls::new();
    let cluster = TestCluster::start();
    // Several comma-separated URLs mean a cluster, as in `REDIS_CACHED_URL`.
    CACHE.set(Cache::new(&cluster.url()).expect("valid urls"));
    CACHE.ping().await.expect("every node answers");

    #[redis_cached(ttl = 60, cache = CACHE)]
    async fn label(x: u64) -> String {
        CALLS.inc();
        tokio::task::yield_now().await;
        format!("item {x}")
    }

    for round in 0..2 {
        let tasks: Vec<_> = (0..6)
            .map(|task| {
                tokio::spawn(async move {
                    for x in (task..ARGS).step_by(6) {
                        assert_eq!(label(x).await, format!("item {x}"), "round {round}");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("no panic");
        }
    }
    assert_eq!(CALLS.get(), ARGS as usize);
    let stats = CACHE.stats();
    assert_eq!((stats.hits, stats.misses, stats.errors), (ARGS, ARGS, 0));
    assert_spread(&cluster, ARGS);
    for key in cluster.keys().iter().step_by(25) {
        let pttl = cluster.pttl(key);
        assert!((58_000..=60_000).contains(&pttl), "PTTL {key}: {pttl}");
    }

    #[redis_cached(ttl = 60, cache = CACHE)]
    async fn slow(x: u64) -> u64 {
        SLOW_CALLS.inc();
        tokio::time::sleep(Duration::from_millis(200)).await;
        x + 1
    }

    let tasks: Vec<_> = (0..16).map(|_| tokio::spawn(slow(41))).collect();
    for task in tasks {
        assert_eq!(task.await.expect("no panic"), 42);
    }
    assert_eq!(SLOW_CALLS.get(), 1, "one flight for 16 concurrent callers");
}

/// Two caches play two processes: functions with one `name` share keys.
static LOCK_A: CacheSlot = CacheSlot::new();
static LOCK_B: CacheSlot = CacheSlot::new();
/// What the body saw: the lock keys in the cluster, their slot and PTTL.
static SEEN: Mutex<Vec<(String, i64)>> = Mutex::new(Vec::new());
static LOCK_CLUSTER: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The body both "processes" run: records the locks, takes its time.
fn guarded_body(x: u64) -> u64 {
    let nodes = LOCK_CLUSTER.lock().unwrap().clone();
    let mut conn = redis::cluster::ClusterClient::new(nodes)
        .and_then(|client| client.get_connection())
        .expect("connect");
    let locks: Vec<String> = redis::cmd("KEYS").arg("*:lock").query(&mut conn).unwrap();
    for lock in locks {
        let pttl: i64 = redis::cmd("PTTL").arg(&lock).query(&mut conn).unwrap();
        SEEN.lock().unwrap().push((lock, pttl));
    }
    std::thread::sleep(Duration::from_millis(300));
    x * 3
}

#[redis_cached(ttl = 60, lock = "5s", name = "cluster::guarded", cache = LOCK_A)]
fn guarded_a(x: u64) -> u64 {
    guarded_body(x)
}

#[redis_cached(ttl = 60, lock = "5s", name = "cluster::guarded", cache = LOCK_B)]
fn guarded_b(x: u64) -> u64 {
    guarded_body(x)
}

#[test]
fn the_lock_lives_in_its_values_slot_and_one_process_computes() {
    let cluster = TestCluster::start();
    *LOCK_CLUSTER.lock().unwrap() = cluster.nodes.clone();
    LOCK_A.set(cluster.cache());
    LOCK_B.set(cluster.builder().build().expect("valid urls"));

    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| guarded_a(14));
        std::thread::sleep(Duration::from_millis(50));
        let b = s.spawn(|| guarded_b(14));
        (a.join().expect("no panic"), b.join().expect("no panic"))
    });
    assert_eq!((a, b), (42, 42));
    let seen = SEEN.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "one body ran, under one lock: {seen:?}");
    let (lock, pttl) = &seen[0];
    assert!((1..=5_000).contains(pttl), "the lock's PTTL: {pttl}");
    let keys = cluster.keys();
    assert_eq!(keys.len(), 1, "the value, no lock left: {keys:?}");
    let value = &keys[0];
    assert_eq!(lock, &format!("{value}:lock"));
    let slot = |key: &str| -> u16 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut cluster.conn())
            .expect("KEYSLOT")
    };
    assert_eq!(slot(lock), slot(value), "lock and value share a slot");
    assert_eq!(LOCK_B.stats().misses, 1, "B waited for A's value");
    assert_eq!(LOCK_B.stats().stores, 0, "and did not compute it");
}

#[test]
fn invalidate_and_invalidate_all_reach_every_primary() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let cluster = TestCluster::start();
    CACHE.set(
        cluster
            .builder()
            .prefix("app:")
            .build()
            .expect("valid urls"),
    );

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn price(x: u64) -> u64 {
        CALLS.inc();
        x * 10
    }

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn other(x: u64) -> u64 {
        x
    }

    for x in 0..ARGS {
        price(x);
    }
    for x in 0..30 {
        other(x);
    }
    assert_spread(&cluster, ARGS + 30);

    assert!(price_invalidate(7).expect("deleted"));
    assert!(!price_invalidate(7).expect("already gone"));
    assert_eq!(price(7), 70);
    assert_eq!(
        CALLS.get(),
        ARGS as usize + 1,
        "recomputed after invalidate"
    );

    assert_eq!(price_invalidate_all().expect("scanned every primary"), ARGS);
    let keys = cluster.keys();
    assert_eq!(keys.len(), 30, "only other's keys are left");
    assert!(keys.iter().all(|key| key.contains("other")), "{keys:?}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let name = keys[0]
        .strip_prefix("app:")
        .and_then(|rest| rest.split(":{").next())
        .expect("a key of the documented format")
        .to_owned();
    let deleted = runtime.block_on(CACHE.invalidate_all(&name));
    assert_eq!(deleted.expect("async invalidate_all"), 30);
    assert!(cluster.keys().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_values_are_served_then_refreshed() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    static VERSION: AtomicU64 = AtomicU64::new(1);
    let cluster = TestCluster::start();
    CACHE.set(cluster.cache());

    #[redis_cached(ttl = "300ms", stale = "30s", cache = CACHE)]
    async fn config(name: String) -> String {
        CALLS.inc();
        format!("{name} v{}", VERSION.load(SeqCst))
    }

    assert_eq!(config("db".into()).await, "db v1");
    let key = cluster.keys().pop().expect("config's key");
    let pttl = cluster.pttl(&key);
    assert!((29_000..=30_300).contains(&pttl), "ttl + stale: {pttl}");

    VERSION.store(2, SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(config("db".into()).await, "db v1", "stale, served at once");
    support::eventually_async("a background refresh", || ready(CALLS.get() >= 2)).await;
    support::eventually_async("the refreshed value is read", || async {
        config("db".into()).await == "db v2"
    })
    .await;

    VERSION.store(3, SeqCst);
    assert_eq!(config_refresh("db".into()).await, "db v3");
    assert_eq!(config("db".into()).await, "db v3");
    assert_eq!(CACHE.stats().errors, 0);
}

#[test]
fn one_cluster_cache_serves_runtimes_that_come_and_go_and_callers_without_one() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let _cluster = {
        let cluster = TestCluster::start();
        CACHE.set(cluster.cache());
        cluster
    };

    #[redis_cached(ttl = 60, cache = CACHE)]
    async fn twice(x: u64) -> u64 {
        CALLS.inc();
        x * 2
    }

    // Each runtime gets its own connection, dropped with it.
    for round in 0..3 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            for x in 0..20 {
                assert_eq!(twice(x).await, x * 2, "round {round}");
            }
        });
    }
    // No tokio runtime at all: the crate's own runtime runs the commands.
    for x in 0..20 {
        assert_eq!(futures_executor::block_on(twice(x)), x * 2);
    }
    assert_eq!(
        CALLS.get(),
        20,
        "computed once, then hits from every caller"
    );
    let stats = CACHE.stats();
    assert_eq!((stats.hits, stats.misses, stats.errors), (60, 20, 0));
}

#[test]
fn a_cache_on_the_applications_own_cluster_client_caches_on_every_primary() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CUBES: Calls = Calls::new();
    static HALVES: Calls = Calls::new();
    let cluster = TestCluster::start();
    // Configured by the application: one seed node, its own timeouts.
    let client = || {
        redis::cluster::ClusterClient::builder(cluster.nodes[..1].to_vec())
            .connection_timeout(Duration::from_secs(1))
            .response_timeout(Duration::from_secs(2))
            .build()
            .expect("a valid seed node")
    };
    let refused = Cache::builder_from_cluster_client(client())
        .local(100)
        .build()
        .expect_err("no in-process tier on an application's cluster client");
    assert!(refused.is_config(), "{refused}");
    CACHE.set(
        Cache::builder_from_cluster_client(client())
            .prefix("app:")
            .build()
            .expect("a cache on the client"),
    );
    CACHE.ping_blocking().expect("the cluster answers");

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn cube(x: u64) -> u64 {
        CUBES.inc();
        x * x * x
    }

    #[redis_cached(ttl = 60, cache = CACHE)]
    async fn half(x: u64) -> u64 {
        HALVES.inc();
        x / 2
    }

    for _ in 0..2 {
        for x in 0..ARGS {
            assert_eq!(cube(x), x * x * x);
        }
    }
    assert_eq!(CUBES.get(), ARGS as usize, "each body ran once");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for _ in 0..2 {
            for x in 0..20 {
                assert_eq!(half(x).await, x / 2);
            }
        }
    });
    assert_eq!(HALVES.get(), 20, "each async body ran once");
    let stats = CACHE.stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.stores, stats.errors),
        (ARGS + 20, ARGS + 20, ARGS + 20, 0)
    );
    let keys = cluster.keys();
    assert_eq!(keys.len() as u64, ARGS + 20);
    assert!(keys.iter().all(|key| key.starts_with("app:")), "{keys:?}");
    assert_spread(&cluster, ARGS + 20);
    let pttl = cluster.pttl(&keys[0]);
    assert!((58_000..=60_000).contains(&pttl), "PTTL {pttl}");
    assert_eq!(cube_invalidate_all().unwrap(), ARGS);
    assert_eq!(cluster.keys().len(), 20, "only half's entries are left");
}
