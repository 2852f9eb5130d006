//! Where async work runs: on the caller's own tokio runtime, else on a
//! one-thread runtime owned by this crate ([`io_runtime`]): under another
//! executor (`futures::executor::block_on`, smol, …), outside any runtime,
//! or for every call of a cache built with
//! [`CacheBuilder::own_runtime`](crate::CacheBuilder::own_runtime).
//!
//! A caller's tokio runtime is taken as it is: it must have IO and timers
//! (`enable_all`, as `#[tokio::main]` and `#[tokio::test]` runtimes do).
//! tokio can't be asked whether a runtime has them without a panic where it
//! has not, and finding out that way took a socket and a process-wide panic
//! hook; a cache whose callers run on runtimes without them says so with
//! `own_runtime` instead.

use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use redis::RedisResult;
use tokio::runtime::{Handle, Runtime};

use crate::error::timed_out;

/// Where a cache's async commands and waits run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum RunOn {
    /// On the caller's tokio runtime, if the caller is on one; else on the
    /// io runtime.
    #[default]
    Caller,
    /// Always on the io runtime (`CacheBuilder::own_runtime`).
    Own,
}

/// The caller's tokio runtime, where `run_on` lets async work run on it.
pub(crate) fn current(run_on: RunOn) -> Option<Handle> {
    match run_on {
        RunOn::Caller => Handle::try_current().ok(),
        RunOn::Own => None,
    }
}

/// The runtime that runs async work for callers whose runtime can't: a
/// current-thread runtime, driven by a thread of its own
/// (`redis-cached-io`) that blocks on it for the life of the process.
/// Tasks spawned from any thread run there; one thread is all this work
/// needs (it only waits on sockets and timers), and tokio's multi-thread
/// scheduler is not compiled in for it.
pub(crate) fn io_runtime() -> Result<&'static Runtime, redis::RedisError> {
    static RUNTIME: LazyLock<std::io::Result<&'static Runtime>> = LazyLock::new(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let runtime: &'static Runtime = Box::leak(Box::new(runtime));
        std::thread::Builder::new()
            .name("redis-cached-io".to_owned())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
        Ok(runtime)
    });
    match &*RUNTIME {
        Ok(runtime) => Ok(runtime),
        Err(e) => {
            Err(std::io::Error::new(e.kind(), format!("starting the io runtime: {e}")).into())
        }
    }
}

/// Runs `work` on the io runtime and awaits what it returns, from any
/// executor; a task that could not finish is `what` timing out.
pub(crate) async fn on_io<T: Send + 'static>(
    work: impl Future<Output = RedisResult<T>> + Send + 'static,
    what: &str,
) -> RedisResult<T> {
    io_runtime()?
        .spawn(work)
        .await
        .unwrap_or_else(|_| Err(timed_out(what)))
}

/// [`on_io`] for a thread that blocks (a Sentinel lookup from a sync
/// call): waits at most `limit` if given (else until the work ends, which
/// its own timeouts bound).
#[cfg(all(feature = "sync", feature = "sentinel"))]
pub(crate) fn on_io_blocking<T: Send + 'static>(
    work: impl Future<Output = RedisResult<T>> + Send + 'static,
    limit: Option<Duration>,
    what: &str,
) -> RedisResult<T> {
    let (reply, replied) = std::sync::mpsc::sync_channel(1);
    io_runtime()?.spawn(async move {
        let _ = reply.send(work.await);
    });
    match limit {
        Some(limit) => replied.recv_timeout(limit).ok(),
        None => replied.recv().ok(),
    }
    .unwrap_or_else(|| Err(timed_out(what)))
}

/// Waits for `duration`: on the caller's runtime's timer where `run_on`
/// lets it, else on the io runtime's (returning at once if that could not
/// start: nothing else works then either, and the caller's next command
/// fails).
pub(crate) async fn sleep(duration: Duration, run_on: RunOn) {
    if current(run_on).is_some() {
        tokio::time::sleep(duration).await;
    } else if let Ok(runtime) = io_runtime() {
        // A JoinError means the runtime is shutting down: stop waiting.
        // Made inside the task: the caller's runtime may have no timer to make it on.
        let _ = runtime
            .spawn(async move { tokio::time::sleep(duration).await })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(builder: &mut tokio::runtime::Builder) -> Runtime {
        builder.build().unwrap()
    }

    #[test]
    fn a_callers_tokio_runtime_is_used_as_it_is_unless_the_cache_says_otherwise() {
        let full = runtime(tokio::runtime::Builder::new_current_thread().enable_all());
        let multi = runtime(tokio::runtime::Builder::new_multi_thread().enable_all());
        let bare = runtime(&mut tokio::runtime::Builder::new_current_thread());
        for rt in [&full, &multi, &bare] {
            let id = rt.block_on(async { current(RunOn::Caller).map(|here| here.id()) });
            assert_eq!(id, Some(rt.handle().id()), "nothing probed: taken as it is");
            assert!(rt.block_on(async { current(RunOn::Own).is_none() }));
        }
        assert!(current(RunOn::Caller).is_none(), "outside any runtime");
        assert!(futures_block_on(async { current(RunOn::Caller).is_none() }));
    }

    /// Another executor: polls `future` on this thread, outside any tokio runtime.
    fn futures_block_on<F: Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
                return output;
            }
            std::thread::yield_now();
        }
    }

    #[test]
    fn the_io_runtime_runs_tasks_spawned_from_other_threads() {
        let runtime = io_runtime().unwrap();
        let task = runtime.spawn(async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            std::thread::current().name().map(str::to_owned)
        });
        let name = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(task)
                .unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(name.as_deref(), Some("redis-cached-io"));
    }

    #[test]
    fn sleep_works_without_timers_on_the_callers_runtime_when_told_to() {
        let bare = runtime(&mut tokio::runtime::Builder::new_current_thread());
        let started = std::time::Instant::now();
        bare.block_on(sleep(Duration::from_millis(20), RunOn::Own));
        assert!(started.elapsed() >= Duration::from_millis(20));
        let started = std::time::Instant::now();
        futures_block_on(sleep(Duration::from_millis(20), RunOn::Caller));
        assert!(started.elapsed() >= Duration::from_millis(20));
    }
}
