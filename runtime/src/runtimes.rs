//! Where async work runs: on the caller's own tokio runtime when it can
//! drive a connection (it was built with IO and timers, as `#[tokio::main]`
//! and `#[tokio::test]` runtimes are), else on a one-thread runtime owned by
//! this crate ([`io_runtime`]): under another executor, under
//! `futures::executor::block_on`, or on a runtime built without
//! `enable_io`/`enable_time`.
//!
//! tokio has no way to ask a runtime whether it has IO and timers other than
//! to use them, which panics if it has not; so the first call on each thread
//! of each runtime tries both under `catch_unwind`, with the panic message
//! kept quiet (see [`quietly`]). In a build with `panic = "abort"` nothing is
//! tried, and async commands always run on the crate's own runtime.

use std::cell::Cell;
use std::future::Future;
use std::sync::{LazyLock, Once};
use std::time::Duration;

use redis::RedisResult;
use tokio::runtime::{Handle, Id, Runtime};

use crate::error::timed_out;

thread_local! {
    /// The runtime this thread last ran a call on, and whether it can drive connections.
    static LAST: Cell<Option<(Id, bool)>> = const { Cell::new(None) };
    /// Set while this thread probes a runtime: its panics are expected.
    static PROBING: Cell<bool> = const { Cell::new(false) };
}

/// The caller's tokio runtime, if it can drive a connection: it has IO and
/// timers. Cheap after the first call on a thread.
pub(crate) fn current() -> Option<Handle> {
    let handle = Handle::try_current().ok()?;
    let id = handle.id();
    let capable = match LAST.try_with(Cell::get) {
        Ok(Some((last, capable))) if last == id => capable,
        _ => {
            let capable = can_drive_connections(&handle);
            let _ = LAST.try_with(|last| last.set(Some((id, capable))));
            capable
        }
    };
    capable.then_some(handle)
}

/// Whether `handle`'s runtime has IO and timers.
fn can_drive_connections(handle: &Handle) -> bool {
    if cfg!(not(panic = "unwind")) {
        return false;
    }
    let _entered = handle.enter();
    quietly(|| {
        drop(tokio::time::sleep(Duration::ZERO));
        let socket = std::net::UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
        socket.set_nonblocking(true)?;
        tokio::net::UdpSocket::from_std(socket).map(drop)
    })
    .is_ok_and(|bound| bound.is_ok())
}

/// Runs `probe`, catching a panic without printing it. Installs, once, a
/// panic hook that stays silent for panics of a probing thread and hands
/// every other panic to the hook that was there before.
fn quietly<T>(probe: impl FnOnce() -> T) -> std::thread::Result<T> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !PROBING.try_with(Cell::get).unwrap_or(false) {
                previous(info);
            }
        }));
    });
    let _ = PROBING.try_with(|probing| probing.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(probe));
    let _ = PROBING.try_with(|probing| probing.set(false));
    result
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

/// Waits for `duration`: on the caller's runtime's timer if it has one,
/// else on the io runtime's (returning at once if that could not start:
/// nothing else works then either, and the caller's next command fails).
pub(crate) async fn sleep(duration: Duration) {
    if current().is_some() {
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
    fn runtimes_with_io_and_timers_drive_their_own_connections() {
        let full = runtime(tokio::runtime::Builder::new_current_thread().enable_all());
        assert!(full.block_on(async { current().is_some() }));
        let multi = runtime(tokio::runtime::Builder::new_multi_thread().enable_all());
        assert!(multi.block_on(async { current().is_some() }));
    }

    #[test]
    fn runtimes_without_io_or_timers_and_other_executors_do_not() {
        let bare = runtime(&mut tokio::runtime::Builder::new_current_thread());
        assert!(bare.block_on(async { current().is_none() }));
        let no_io = runtime(tokio::runtime::Builder::new_current_thread().enable_time());
        assert!(no_io.block_on(async { current().is_none() }));
        let no_time = runtime(tokio::runtime::Builder::new_current_thread().enable_io());
        assert!(no_time.block_on(async { current().is_none() }));
        assert!(current().is_none(), "outside any runtime");
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
    fn sleep_works_without_timers_on_the_callers_runtime() {
        let bare = runtime(&mut tokio::runtime::Builder::new_current_thread());
        let started = std::time::Instant::now();
        bare.block_on(sleep(Duration::from_millis(20)));
        assert!(started.elapsed() >= Duration::from_millis(20));
    }
}
