//! When Redis fails, the cache stops asking it and says so once: a refused
//! password or a refused connection is one `warn` however many calls follow,
//! an unusable default cache is one `error`, and one slow reply doesn't stop
//! Redis use (the breaker opens on a failure to connect, or on a run of
//! lost commands).

mod support;

use std::process::Command;
use std::time::Duration;

use redis_cached::{Cache, redis_cached};
use support::logs;
use support::{CacheSlot, Calls, TestRedis};

#[tokio::test]
async fn a_refused_password_is_one_warning_not_one_per_call() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let logs = logs::capture();
    let redis = TestRedis::start_with(&["--requirepass", "right"]);
    CACHE.set(
        Cache::builder(redis.url())
            .password("wrong")
            .build()
            .unwrap(),
    );

    #[redis_cached(ttl = 60, cache = CACHE)]
    async fn square(x: u64) -> u64 {
        CALLS.inc();
        x * x
    }

    for i in 0..200 {
        assert_eq!(square(i).await, i * i);
    }
    assert_eq!(CALLS.get(), 200, "every call ran its body");
    assert_eq!(
        CACHE.stats().errors,
        400,
        "a read and a write per call, counted"
    );
    let warnings = logs.at("WARN");
    assert!(
        (1..=3).contains(&warnings.len()),
        "a handful of warnings, not one per call: {warnings:#?}"
    );
    assert!(
        warnings[0].contains("authentication failed"),
        "the warning names the cause: {}",
        warnings[0]
    );
    assert!(logs.at("ERROR").is_empty(), "{:#?}", logs.at("ERROR"));
}

#[tokio::test]
async fn with_the_in_process_tier_a_refused_password_is_still_a_handful_of_warnings() {
    static CACHE: CacheSlot = CacheSlot::new();
    let logs = logs::capture();
    let redis = TestRedis::start_with(&["--requirepass", "right"]);
    CACHE.set(
        Cache::builder(redis.url())
            .password("wrong")
            .local(100)
            .build()
            .unwrap(),
    );

    #[redis_cached(ttl = 60, cache = CACHE)]
    async fn negate(x: i64) -> i64 {
        -x
    }

    for i in 0..200 {
        assert_eq!(negate(i).await, -i);
    }
    // The tracking connection retries (50 ms, 100 ms, 200 ms, …) meanwhile.
    support::eventually("the tracking connection retried", || {
        logs.lines()
            .iter()
            .filter(|line| line.contains("L1 tracking"))
            .count()
            >= 3
    });
    let warnings = logs.at("WARN");
    assert_eq!(
        warnings.len(),
        2,
        "the breaker's and the tracking connection's: {warnings:#?}"
    );
}

#[test]
fn a_refused_connection_is_one_warning_and_its_return_one_info() {
    static CACHE: CacheSlot = CacheSlot::new();
    let logs = logs::capture();
    let mut redis = TestRedis::start();
    let url = redis.url().to_owned();
    redis.stop();
    CACHE.set(
        Cache::builder(&url)
            .connect_timeout(Duration::from_millis(100))
            .build()
            .unwrap(),
    );

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn cube(x: u64) -> u64 {
        x * x * x
    }

    for i in 0..200 {
        assert_eq!(cube(i), i * i * i);
    }
    assert_eq!(logs.at("WARN").len(), 1, "{:#?}", logs.at("WARN"));
    // Redis comes back on the same port: a probe finds it, and says so once.
    let port = url.rsplit(':').next().unwrap().parse().unwrap();
    let _back = TestRedis::start_on(port, &[]);
    support::eventually("the breaker closes", || {
        cube(7);
        CACHE.ping_blocking().is_ok() && !logs.at("INFO").is_empty()
    });
    let infos = logs.at("INFO");
    assert_eq!(infos.len(), 1, "{infos:#?}");
    assert!(infos[0].contains("Redis answers again"), "{}", infos[0]);
    let stored = CACHE.stats().stores;
    cube(8);
    assert_eq!(CACHE.stats().stores, stored + 1, "calls use Redis again");
}

#[tokio::test]
async fn one_slow_reply_does_not_stop_redis_use() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let logs = logs::capture();
    let redis = TestRedis::start();
    CACHE.set(
        Cache::builder(redis.url())
            .response_timeout(Duration::from_millis(100))
            // Were one timeout to open the breaker, it would stay open all test.
            .connect_timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
    );

    #[redis_cached(ttl = 60, cache = CACHE)]
    async fn twice(x: u64) -> u64 {
        CALLS.inc();
        x * 2
    }

    CACHE.ping().await.unwrap();
    // Long enough for the call's GET and SET to time out, no longer.
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(250)
        .arg("ALL")
        .query(&mut redis.conn())
        .unwrap();
    assert_eq!(twice(1).await, 2);
    assert!(CACHE.stats().errors >= 1, "{:?}", CACHE.stats());
    // Waits for the pause to end (a plain connection has no timeout).
    let _: String = redis::cmd("PING").query(&mut redis.conn()).unwrap();
    // Redis is used again at once: the next call stores, the one after hits.
    let stores = CACHE.stats().stores;
    assert_eq!(twice(2).await, 4);
    assert_eq!(twice(2).await, 4);
    assert_eq!(CALLS.get(), 2);
    let stats = CACHE.stats();
    assert_eq!((stats.hits, stats.stores), (1, stores + 1), "{stats:?}");
    assert!(
        logs.lines()
            .iter()
            .all(|l| !l.contains("Redis is unavailable")),
        "the breaker did not open: {:#?}",
        logs.lines()
    );
}

#[test]
fn a_malformed_default_url_is_one_error_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_default_url_child"))
        .env("REDIS_CACHED_URL", "redis://127.0.0.1:notaport")
        .env_remove("REDIS_URL")
        .env("CALLS", "50")
        .output()
        .expect("run the child process");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let level = |level: &str| {
        stdout
            .lines()
            .filter(|line| line.split_whitespace().next() == Some(level))
            .count()
    };
    assert_eq!(level("ERROR"), 1, "{stdout}");
    assert_eq!(level("WARN"), 0, "{stdout}");
    assert!(
        stdout.ends_with("errors 100\n"),
        "both accesses of each call count: {stdout}"
    );
}
