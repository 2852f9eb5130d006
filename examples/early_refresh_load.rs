//! Issue 4's load scenario for early refresh, kept out of `cargo test`
//! because it takes 20 s: 8 tasks call, for 10 s, an async fn with a 1 s ttl,
//! once with `stale = "30s"` (body 100 ms) and once with `refresh =
//! "xfetch"` (body 20 ms). After the first call nobody should miss (so no
//! caller waits for the body) and the body should run about once per ttl,
//! not once per caller.
//!
//! `cargo run --release --example early_refresh_load` (starts its own
//! `redis-server`); exits with an error if a check fails.

use std::future::Future;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis_cached::{Cache, redis_cached};

static SERVER: LazyLock<redis_test::server::RedisServer> =
    LazyLock::new(redis_test::server::RedisServer::new);

fn cache(prefix: &str) -> Cache {
    let (host, port) = SERVER.host_and_port().expect("a TCP server");
    Cache::builder(&format!("redis://{host}:{port}"))
        .prefix(prefix)
        .build()
        .expect("a valid url")
}

static STALE: LazyLock<Cache> = LazyLock::new(|| cache("stale:"));
static XFETCH: LazyLock<Cache> = LazyLock::new(|| cache("xfetch:"));
static STALE_RUNS: AtomicU64 = AtomicU64::new(0);
static XFETCH_RUNS: AtomicU64 = AtomicU64::new(0);

#[redis_cached(ttl = 1, stale = "30s", cache = STALE)]
async fn stale_hot() -> u64 {
    STALE_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    42
}

#[redis_cached(ttl = 1, refresh = "xfetch", cache = XFETCH)]
async fn xfetch_hot() -> u64 {
    XFETCH_RUNS.fetch_add(1, Ordering::SeqCst);
    // XFetch refreshes about `delta * beta * ln(rate * delta)` before expiry:
    // the body must be short next to the ttl, as in the paper.
    tokio::time::sleep(Duration::from_millis(20)).await;
    42
}

/// 8 tasks calling `call` every 5 ms for 10 s; the slowest call.
async fn load<F: Future<Output = u64> + Send + 'static>(
    call: fn() -> F,
) -> Result<Duration, String> {
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn(async move {
                let started = Instant::now();
                let mut slowest = Duration::ZERO;
                while started.elapsed() < Duration::from_secs(10) {
                    let t = Instant::now();
                    if call().await != 42 {
                        return Err("a wrong value".to_owned());
                    }
                    slowest = slowest.max(t.elapsed());
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Ok(slowest)
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for task in tasks {
        slowest = slowest.max(task.await.map_err(|e| e.to_string())??);
    }
    Ok(slowest)
}

/// Runs one scenario and checks it.
async fn scenario<F: Future<Output = u64> + Send + 'static>(
    label: &str,
    call: fn() -> F,
    runs: &AtomicU64,
    cache: &Cache,
) -> Result<(), String> {
    if call().await != 42 {
        return Err(format!("{label}: a wrong value"));
    }
    let slowest = load(call).await?;
    let stats = cache.stats();
    let runs = runs.load(Ordering::SeqCst);
    println!(
        "{label}: slowest call after the first {slowest:?}; body runs {runs}; misses {}; hits {}",
        stats.misses, stats.hits
    );
    if stats.misses != 1 {
        return Err(format!(
            "{label}: {} misses, expected only the first",
            stats.misses
        ));
    }
    if !(5..=25).contains(&runs) {
        return Err(format!(
            "{label}: the body ran {runs} times in 10 s of a 1 s ttl"
        ));
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while STALE.ping().await.is_err() {
        if Instant::now() > deadline {
            return Err("redis-server never answered".to_owned());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    scenario("stale", stale_hot, &STALE_RUNS, &STALE).await?;
    scenario("xfetch", xfetch_hot, &XFETCH_RUNS, &XFETCH).await?;
    Ok(())
}
