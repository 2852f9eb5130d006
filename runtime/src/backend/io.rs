//! The one thing sync and async calls do differently: how they reach Redis
//! and how they wait. The protocol of a call (`call.rs`, `miss.rs`,
//! `lock.rs`, `flight.rs`, the backend's operations) is written once, as
//! `async fn`s generic over [`Io`]:
//!
//! - [`Async`] sends each command over a connection of the caller's runtime
//!   (or the crate's own; see `runtimes.rs`) and awaits;
//! - [`Blocking`] (the `sync` feature) sends it over a pooled sync
//!   connection and returns a future that is already complete, so
//!   [`block_on`] finishes the whole call in one poll, on the caller's
//!   thread, with no runtime.

use std::future::Future;
#[cfg(feature = "sync")]
use std::future::ready;
#[cfg(feature = "sync")]
use std::pin::pin;
#[cfg(feature = "sync")]
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use event_listener::EventListener;
#[cfg(feature = "sync")]
use event_listener::Listener;
use redis::{Cmd, FromRedisValue};

use super::redis::RedisBackend;
use crate::error::Error;
use crate::runtimes::RunOn;

/// A Redis deployment commands are sent to: one server ([`RedisBackend`]),
/// a cluster, or one node of a cluster.
pub(crate) trait Remote: Sync {
    /// Runs one command from an async call.
    fn query_async<T: FromRedisValue + Send + 'static>(
        &self,
        cmd: &Cmd,
    ) -> impl Future<Output = Result<T, Error>> + Send;

    /// Runs one command from a sync call, blocking the thread.
    #[cfg(feature = "sync")]
    fn query_blocking<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error>;
}

impl Remote for RedisBackend {
    fn query_async<T: FromRedisValue + Send + 'static>(
        &self,
        cmd: &Cmd,
    ) -> impl Future<Output = Result<T, Error>> + Send {
        RedisBackend::query_async(self, cmd)
    }

    #[cfg(feature = "sync")]
    fn query_blocking<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error> {
        RedisBackend::query_blocking(self, cmd)
    }
}

/// How a call does its I/O and waits; see the module docs.
pub(crate) trait Io: Copy + Send + Sync + 'static {
    /// Runs one command on `redis`.
    fn query<T: FromRedisValue + Send + 'static>(
        self,
        redis: &impl Remote,
        cmd: &Cmd,
    ) -> impl Future<Output = Result<T, Error>> + Send;

    /// Sends `PING` to `redis`, even while its breaker is open.
    fn ping(self, redis: &RedisBackend) -> impl Future<Output = Result<(), Error>> + Send;

    /// Pauses for `duration`, an async call on the timer of the runtime
    /// `run_on` names.
    fn sleep(self, duration: Duration, run_on: RunOn) -> impl Future<Output = ()> + Send;

    /// Waits until `listener` is notified.
    fn wait(self, listener: EventListener) -> impl Future<Output = ()> + Send;
}

/// The I/O of `async fn`s: awaits, never blocks a thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Async;

/// The I/O of plain `fn`s: blocks the calling thread; every future it
/// returns is complete.
#[cfg(feature = "sync")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Blocking;

impl Io for Async {
    fn query<T: FromRedisValue + Send + 'static>(
        self,
        redis: &impl Remote,
        cmd: &Cmd,
    ) -> impl Future<Output = Result<T, Error>> + Send {
        redis.query_async(cmd)
    }

    async fn ping(self, redis: &RedisBackend) -> Result<(), Error> {
        redis.query_async_now(&redis::cmd("PING")).await
    }

    fn sleep(self, duration: Duration, run_on: RunOn) -> impl Future<Output = ()> + Send {
        crate::runtimes::sleep(duration, run_on)
    }

    fn wait(self, listener: EventListener) -> impl Future<Output = ()> + Send {
        listener
    }
}

#[cfg(feature = "sync")]
impl Io for Blocking {
    fn query<T: FromRedisValue + Send + 'static>(
        self,
        redis: &impl Remote,
        cmd: &Cmd,
    ) -> impl Future<Output = Result<T, Error>> + Send {
        ready(redis.query_blocking(cmd))
    }

    fn ping(self, redis: &RedisBackend) -> impl Future<Output = Result<(), Error>> + Send {
        ready(redis.query_blocking_now(&redis::cmd("PING")))
    }

    fn sleep(self, duration: Duration, _: RunOn) -> impl Future<Output = ()> + Send {
        std::thread::sleep(duration);
        ready(())
    }

    fn wait(self, listener: EventListener) -> impl Future<Output = ()> + Send {
        listener.wait();
        ready(())
    }
}

/// Runs a future made with [`Blocking`] I/O to completion on this thread.
///
/// Such a future completes on its first poll. Should one ever be pending,
/// it is polled again every millisecond rather than trusted to wake us.
#[cfg(feature = "sync")]
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park_timeout(Duration::from_millis(1));
    }
}

#[cfg(all(test, feature = "sync"))]
mod tests {
    use super::*;

    #[test]
    fn block_on_finishes_complete_futures_and_pending_ones_too() {
        assert_eq!(block_on(async { 7 }), 7);
        let mut polls = 0;
        let twice = std::future::poll_fn(|_| {
            polls += 1;
            if polls < 3 {
                Poll::Pending
            } else {
                Poll::Ready(polls)
            }
        });
        assert_eq!(block_on(twice), 3);
    }

    #[test]
    fn blocking_waits_return_when_notified() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};

        let event = event_listener::Event::new();
        let listener = event.listen();
        let notified = Arc::new(AtomicBool::new(false));
        let (done, returned) = std::sync::mpsc::channel();
        let waiter = {
            let notified = Arc::clone(&notified);
            std::thread::spawn(move || {
                block_on(Blocking.wait(listener));
                let _ = done.send(notified.load(Ordering::SeqCst));
            })
        };
        assert!(
            returned.recv_timeout(Duration::from_millis(50)).is_err(),
            "the wait returned before any notification"
        );
        notified.store(true, Ordering::SeqCst);
        event.notify(usize::MAX);
        let after_notification = returned
            .recv_timeout(Duration::from_secs(5))
            .expect("the wait returns within 5 s of the notification");
        assert!(
            after_notification,
            "the wait returned after the notification"
        );
        waiter.join().expect("the waiting thread");
    }
}
