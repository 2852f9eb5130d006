//! The article's expensive operation, cached with `#[redis_cached]`, and
//! the most-computed values as a Redis sorted set.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::AsyncCommands;
use redis_cached::redis_cached;

use crate::state::AppState;

/// The sorted set of how often each value was asked for.
pub const POPULAR: &str = "seed:computed";

/// How long the operation takes, as in the article.
const WORK: Duration = Duration::from_secs(2);

/// How many times this process ran the operation's body to its end (a
/// request dropped mid-way, its client gone, cancels its run).
static BODY_RUNS: AtomicU64 = AtomicU64::new(0);

tokio::task_local! {
    /// Set by the body when it runs inside [`compute`]'s call.
    static RAN: Cell<bool>;
}

/// The article's `calculate_expensive_operation`: `x * 10`, after about two
/// seconds of work. Cached for five minutes under `seed:<name>:<digest>`; a
/// Redis that is down makes every call run it (the cache fails open).
#[redis_cached(ttl = 300, name = "calculate_expensive_operation")]
pub async fn calculate_expensive_operation(x: i64) -> i64 {
    let _ = RAN.try_with(|ran| ran.set(true));
    tokio::time::sleep(WORK).await;
    BODY_RUNS.fetch_add(1, Ordering::Relaxed);
    x.wrapping_mul(10)
}

pub struct Computed {
    pub value: i64,
    /// Whether this request ran the body: a miss (or Redis down). `false`:
    /// the value came from Redis, or from a concurrent request's run of the
    /// same `x` (single flight).
    pub ran: bool,
    pub took: Duration,
}

/// Calls the cached function and tells whether this call ran its body.
/// Robust under concurrent requests, unlike comparing `Cache::stats()`
/// before and after, which counts every request's hits and misses.
pub async fn compute(x: i64) -> Computed {
    let start = std::time::Instant::now();
    let (value, ran) = RAN
        .scope(Cell::new(false), async move {
            let value = calculate_expensive_operation(x).await;
            (value, RAN.with(Cell::get))
        })
        .await;
    Computed {
        value,
        ran,
        took: start.elapsed(),
    }
}

/// How many times this process ran the body to its end.
pub fn body_runs() -> u64 {
    BODY_RUNS.load(Ordering::Relaxed)
}

/// Counts one request for `x` in the sorted set (`ZINCRBY`).
pub async fn count(state: &AppState, x: i64) -> redis::RedisResult<()> {
    let mut conn = state.conn.clone();
    conn.zincr::<_, _, _, ()>(POPULAR, x, 1).await
}

/// The `n` values asked for most, with their counts (`ZREVRANGE … WITHSCORES`).
pub async fn most_computed(state: &AppState, n: isize) -> redis::RedisResult<Vec<(i64, u64)>> {
    let mut conn = state.conn.clone();
    conn.zrevrange_withscores(POPULAR, 0, n - 1).await
}
