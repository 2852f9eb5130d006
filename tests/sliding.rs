//! `sliding = true` (time-to-idle): each hit resets the entry's TTL to a
//! full `ttl`, in the read's round trip (`GETEX … PX`); on Redis and `mem://`.

mod support;
#[path = "support/cluster.rs"]
mod test_cluster;

use std::time::Duration;

use redis_cached::Cache;
use support::{CacheSlot, Calls, Store, TestRedis};

macro_rules! suite {
    ($module:ident, $store:ident) => {
        mod $module {
            use super::*;

            #[test]
            fn an_entry_read_often_outlives_its_ttl_and_one_left_alone_expires() {
                static CACHE: CacheSlot = CacheSlot::new();
                static CALLS: Calls = Calls::new();
                let _store = Store::$store(&CACHE);

                #[redis_cached::redis_cached(ttl = "400ms", sliding = true, cache = CACHE)]
                fn session(id: u32) -> u32 {
                    CALLS.inc();
                    id
                }

                for _ in 0..8 {
                    assert_eq!(session(1), 1);
                    std::thread::sleep(Duration::from_millis(100));
                }
                assert_eq!(CALLS.get(), 1, "read every 100 ms, alive after 800 ms");
                std::thread::sleep(Duration::from_millis(800));
                assert_eq!(session(1), 1);
                assert_eq!(CALLS.get(), 2, "left alone for twice its ttl, it expired");
                let stats = CACHE.stats();
                assert_eq!((stats.hits, stats.misses, stats.errors), (7, 2, 0));
            }
        }
    };
}

suite!(on_redis, redis);
suite!(in_memory, memory);

#[tokio::test]
async fn a_hit_resets_the_pttl_to_the_full_ttl() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached::redis_cached(ttl = 60, sliding = true, cache = CACHE)]
    async fn profile(user: u32) -> String {
        CALLS.inc();
        format!("user {user}")
    }

    #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
    async fn fixed(user: u32) -> String {
        format!("user {user}")
    }

    assert_eq!(profile(1).await, "user 1");
    let key = redis.only_key();
    let _: () = redis::cmd("PEXPIRE")
        .arg(&key)
        .arg(5_000)
        .query(&mut redis.conn())
        .unwrap();
    assert!(redis.pttl(&key) <= 5_000);
    assert_eq!(profile(1).await, "user 1");
    assert_eq!(CALLS.get(), 1);
    let left = redis.pttl(&key);
    assert!(
        (59_000..=60_000).contains(&left),
        "back to the full ttl: {left}"
    );

    fixed(1).await;
    let fixed_key = redis
        .keys()
        .into_iter()
        .find(|k| k != &key)
        .expect("fixed's key");
    let _: () = redis::cmd("PEXPIRE")
        .arg(&fixed_key)
        .arg(5_000)
        .query(&mut redis.conn())
        .unwrap();
    fixed(1).await;
    assert!(
        redis.pttl(&fixed_key) <= 5_000,
        "without sliding a hit changes nothing"
    );
}

#[tokio::test]
async fn a_run_time_ttl_slides_to_the_value_of_the_call() {
    static CACHE: CacheSlot = CacheSlot::new();
    static TTL_SECS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(60);
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached::redis_cached(
        ttl = TTL_SECS.load(std::sync::atomic::Ordering::SeqCst),
        sliding = true,
        cache = CACHE
    )]
    async fn profile(user: u32) -> u32 {
        user
    }

    profile(1).await;
    let key = redis.only_key();
    assert!((59_000..=60_000).contains(&redis.pttl(&key)));
    TTL_SECS.store(600, std::sync::atomic::Ordering::SeqCst);
    profile(1).await;
    assert!((599_000..=600_000).contains(&redis.pttl(&key)));
}

#[test]
fn sliding_functions_skip_the_cache_wide_in_process_tier() {
    static CACHE: CacheSlot = CacheSlot::new();
    let redis = TestRedis::start();
    CACHE.set(Cache::builder(redis.url()).local(100).build().unwrap());

    #[redis_cached::redis_cached(ttl = 60, sliding = true, cache = CACHE)]
    fn profile(user: u32) -> u32 {
        user
    }

    for _ in 0..3 {
        assert_eq!(profile(1), 1);
    }
    let stats = CACHE.stats();
    assert_eq!(
        (stats.hits, stats.local_hits, stats.misses),
        (2, 0, 1),
        "every hit reached Redis"
    );
}

#[tokio::test]
async fn on_a_cluster_each_hit_slides_on_its_keys_primary() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let cluster = test_cluster::TestCluster::start();
    CACHE.set(cluster.cache());

    #[redis_cached::redis_cached(ttl = 60, sliding = true, cache = CACHE)]
    async fn profile(user: u64) -> u64 {
        CALLS.inc();
        user
    }

    for user in 0..30 {
        profile(user).await;
    }
    let keys = cluster.keys();
    assert_eq!(keys.len(), 30);
    let primaries: std::collections::BTreeSet<u16> =
        keys.iter().map(|k| cluster.primary_of(k)).collect();
    assert_eq!(primaries.len(), 3, "keys on every primary");
    for key in &keys {
        let _: () = redis::cmd("PEXPIRE")
            .arg(key)
            .arg(5_000)
            .query(&mut cluster.conn())
            .unwrap();
    }
    for user in 0..30 {
        profile(user).await;
    }
    assert_eq!(CALLS.get(), 30);
    for key in &keys {
        let left = cluster.pttl(key);
        assert!((59_000..=60_000).contains(&left), "{key}: {left}");
    }
    assert_eq!(CACHE.stats().errors, 0);
}
