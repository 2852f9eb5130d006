//! In-process single flight: concurrent misses of one key share one run of
//! the body, whoever ends up running it, and nobody hangs when it fails.

mod support;

use std::collections::BTreeSet;

use support::{CacheSlot, Calls, TestRedis, incr, wait_for_misses, wait_for_misses_async};

/// The Redis counter every body below `INCR`s.
const RUNS: &str = "test:runs";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tasks_on_a_cold_key_run_the_body_once() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    const TASKS: usize = 1000;
    let redis = TestRedis::start_for(&CACHE);
    URL.get_or_init(|| redis.url().to_owned());

    /// Not `Clone`: waiters decode their own copy.
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Report(String);

    #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
    async fn report(id: u32) -> Report {
        CALLS.inc();
        incr(&URL.get().cloned().unwrap_or_default(), RUNS);
        // Finish only once every task has missed, so all of them are waiting.
        wait_for_misses_async(&CACHE, TASKS as u64).await;
        // A task counts its miss just before it joins the flight: give the
        // last ones time to join, or (on a loaded machine) one that joins
        // after the flight ended would start a second one, as flight.rs
        // documents.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        Report(format!("report {id}"))
    }

    let tasks: Vec<_> = (0..TASKS).map(|_| tokio::spawn(report(7))).collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Report("report 7".into()));
    }
    assert_eq!(CALLS.get(), 1);
    assert_eq!(redis.counter(RUNS), 1);
    let stats = CACHE.stats();
    assert_eq!((stats.misses, stats.stores, stats.errors), (1000, 1, 0));
    let keys = redis.keys();
    assert_eq!(keys.len(), 2, "the value and the counter: {keys:?}");
    assert!(keys.iter().any(|key| key.ends_with('}')), "{keys:?}");
    assert_eq!(report(7).await, Report("report 7".into()), "a hit now");
    assert_eq!(CALLS.get(), 1);
}

#[test]
fn eight_threads_on_a_sync_fn_run_the_body_once() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    const THREADS: usize = 8;
    let redis = TestRedis::start_for(&CACHE);
    URL.get_or_init(|| redis.url().to_owned());

    #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
    fn square(x: u64) -> u64 {
        CALLS.inc();
        incr(&URL.get().cloned().unwrap_or_default(), RUNS);
        wait_for_misses(&CACHE, THREADS as u64);
        x * x
    }

    let results: Vec<u64> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..THREADS).map(|_| s.spawn(|| square(12))).collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(results, vec![144; THREADS]);
    assert_eq!(CALLS.get(), 1);
    assert_eq!(redis.counter(RUNS), 1);
    assert_eq!(CACHE.stats().stores, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_leader_hands_over_to_a_waiter() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    const WAITERS: usize = 10;
    let redis = TestRedis::start_for(&CACHE);
    URL.get_or_init(|| redis.url().to_owned());

    #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
    async fn slow(x: u32) -> String {
        let run = CALLS.next();
        incr(&URL.get().cloned().unwrap_or_default(), RUNS);
        if run == 1 {
            // The first run never finishes: its caller gives up on it.
            std::future::pending::<()>().await;
        }
        format!("slow {x}")
    }

    let leader = tokio::spawn(slow(3));
    wait_for_misses_async(&CACHE, 1).await;
    let waiters: Vec<_> = (0..WAITERS).map(|_| tokio::spawn(slow(3))).collect();
    wait_for_misses_async(&CACHE, 1 + WAITERS as u64).await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap(), "slow 3");
    }
    assert_eq!(CALLS.get(), 2, "the cancelled run and one takeover");
    assert_eq!(redis.counter(RUNS), 2);
    assert_eq!(CACHE.stats().stores, 1);
}

#[test]
fn a_panicking_sync_leader_hands_over_to_a_waiter() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    const THREADS: usize = 4;
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
    fn fragile(x: u32) -> u32 {
        let run = CALLS.next();
        wait_for_misses(&CACHE, THREADS as u64);
        if run == 1 {
            panic!("the first run fails");
        }
        x + 1
    }

    let results: Vec<_> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..THREADS).map(|_| s.spawn(|| fragile(41))).collect();
        threads.into_iter().map(|t| t.join().ok()).collect()
    });
    let mut results: Vec<Option<u32>> = results;
    results.sort();
    assert_eq!(results, vec![None, Some(42), Some(42), Some(42)]);
    assert_eq!(CALLS.get(), 2, "the panicking run and one takeover");
    assert_eq!(redis.keys().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_async_leader_hands_over_to_a_waiter() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    const TASKS: usize = 4;
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
    async fn fragile(x: u32) -> u32 {
        let run = CALLS.next();
        wait_for_misses_async(&CACHE, TASKS as u64).await;
        if run == 1 {
            panic!("the first run fails");
        }
        x + 1
    }

    let tasks: Vec<_> = (0..TASKS).map(|_| tokio::spawn(fragile(41))).collect();
    let mut panics = 0;
    let mut values = Vec::new();
    for task in tasks {
        match task.await {
            Ok(value) => values.push(value),
            Err(error) if error.is_panic() => panics += 1,
            Err(error) => panic!("unexpected {error}"),
        }
    }
    assert_eq!((panics, values), (1, vec![42; TASKS - 1]));
    assert_eq!(CALLS.get(), 2, "the panicking run and one takeover");
    assert_eq!(redis.keys().len(), 1);
}

#[test]
fn an_err_is_not_shared_each_waiter_runs_the_body() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    const THREADS: usize = 4;
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached::redis_cached(ttl = 60, cache = CACHE)]
    fn flaky(x: u32) -> Result<u32, usize> {
        let run = CALLS.next();
        wait_for_misses(&CACHE, THREADS as u64);
        if x > 0 {
            return Err(run);
        }
        Ok(x)
    }

    let errors: BTreeSet<usize> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..THREADS).map(|_| s.spawn(|| flaky(1))).collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap().unwrap_err())
            .collect()
    });
    assert_eq!(
        errors,
        (1..=THREADS).collect(),
        "each caller got its own Err"
    );
    assert!(redis.keys().is_empty(), "{:?}", redis.keys());
}
