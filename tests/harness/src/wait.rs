//! Bounded waits. A test that waits for something to happen (a server to
//! answer, a background refresh to land, a failover to finish) polls through
//! these, so a hang fails the test with what it waited for.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long [`eventually`] and [`eventually_async`] wait before they fail
/// the test: a bound on a hang, not a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// How often [`eventually`] and [`eventually_async`] ask.
const POLL: Duration = Duration::from_millis(2);

/// Calls `attempt` until it returns `Ok`, every `every`, for at most
/// `limit`; then returns its last error. The one polling loop of the
/// blocking waits.
pub fn retry<T, E>(
    limit: Duration,
    every: Duration,
    mut attempt: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let deadline = Instant::now() + limit;
    loop {
        match attempt() {
            Ok(value) => return Ok(value),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(every),
        }
    }
}

/// Polls `done` until it holds; fails the test if it doesn't within
/// [`PATIENCE`].
pub fn eventually(what: &str, done: impl FnMut() -> bool) {
    eventually_within(PATIENCE, POLL, what, done);
}

/// [`eventually`], asking every `every` for at most `limit` (for what takes
/// longer, such as a failover, or is costly to ask).
pub fn eventually_within(
    limit: Duration,
    every: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
) {
    retry(limit, every, || if done() { Ok(()) } else { Err(()) })
        .unwrap_or_else(|()| panic!("never happened: {what}"));
}

/// [`eventually`] for async tests: sleeps on the tokio timer between
/// attempts, so tasks of a current-thread runtime (a background refresh)
/// run meanwhile. `done` returns a future, so it may await (a cached call:
/// `|| async { price(1).await == 2 }`); a plain check is
/// `|| ready(CALLS.get() == 2)`.
pub async fn eventually_async<F>(what: &str, done: impl FnMut() -> F)
where
    F: Future<Output = bool>,
{
    eventually_async_within(PATIENCE, POLL, what, done).await;
}

/// [`eventually_async`], asking every `every` for at most `limit`.
pub async fn eventually_async_within<F>(
    limit: Duration,
    every: Duration,
    what: &str,
    mut done: impl FnMut() -> F,
) where
    F: Future<Output = bool>,
{
    retry_async(limit, every, || {
        let done = done();
        async move { if done.await { Ok(()) } else { Err(()) } }
    })
    .await
    .unwrap_or_else(|()| panic!("never happened: {what}"));
}

/// [`retry`] for async code: sleeps on the tokio timer between attempts.
/// The one polling loop of the async waits.
pub async fn retry_async<T, E, F>(
    limit: Duration,
    every: Duration,
    mut attempt: impl FnMut() -> F,
) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(every).await,
        }
    }
}
