//! A cached function's body, polled beside the call's protocol rather than
//! inside it, so that the protocol (`call.rs`, `miss.rs`) is compiled once
//! per return and stored type, not once per cached function.
//!
//! Every `async` body has a type of its own. Had the protocol's futures
//! held it, each cached function would get its own copy of the whole
//! protocol (lookup, single flight, lock, store): about 60 KiB of machine
//! code per function in a debug build, and most of the build cost of an
//! annotated function. Instead the protocol is given [`Slot::run`], a future
//! of one type for every function, which asks for the result; [`drive`]
//! polls the protocol and, when it asks, the body, and hands the result
//! over. A `dyn Future` would erase the type too, but it would decide once
//! for all bodies whether the call's future is `Send`; here, as before, the
//! call's future is `Send` exactly when the body's future (and the result)
//! is.
//!
//! The body is polled in the span that was current where the protocol
//! asked for it (the call's span), as it was when the protocol held it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tracing::Span;

/// Where the body's result goes from the body to the protocol.
pub(crate) struct Slot<R> {
    /// The protocol awaits the result and it is not there yet: the body
    /// must be polled.
    wanted: AtomicBool,
    /// The result, once the body has returned, until the protocol takes it;
    /// and the span the protocol asked in.
    state: Mutex<State<R>>,
}

struct State<R> {
    result: Option<R>,
    span: Option<Span>,
}

impl<R> Slot<R> {
    /// An empty slot.
    pub(crate) fn new() -> Self {
        Self {
            wanted: AtomicBool::new(false),
            state: Mutex::new(State {
                result: None,
                span: None,
            }),
        }
    }

    /// The body's result, as the protocol awaits it.
    pub(crate) fn run(&self) -> Run<'_, R> {
        Run(self)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<R>> {
        // Nothing panics while holding the lock; a poisoned lock holds a consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The future the protocol awaits in place of the body.
pub(crate) struct Run<'a, R>(&'a Slot<R>);

impl<R> Future for Run<'_, R> {
    type Output = R;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<R> {
        let slot = self.0;
        let mut state = slot.lock();
        if let Some(result) = state.result.take() {
            return Poll::Ready(result);
        }
        // No waker to keep: `drive` polls the body as soon as this returns,
        // and the protocol again once the body is done.
        state.span = Some(Span::current());
        slot.wanted.store(true, Ordering::Relaxed);
        Poll::Pending
    }
}

/// Runs `protocol`, which awaits `slot.run()` at most once, and, when it
/// does, `body`, whose result it then receives. The caller pins both where
/// it stands (`pin!`), so that this is no future of its own to compile
/// for each body.
pub(crate) fn drive<'a, R, P, B>(
    slot: &'a Slot<R>,
    protocol: Pin<&'a mut P>,
    body: Pin<&'a mut B>,
) -> Drive<'a, R, P, B>
where
    P: Future<Output = R>,
    B: Future<Output = R>,
{
    Drive {
        slot,
        protocol,
        body: Some(body),
    }
}

/// The future [`drive`] returns.
pub(crate) struct Drive<'a, R, P, B> {
    slot: &'a Slot<R>,
    protocol: Pin<&'a mut P>,
    /// `None` once it has returned.
    body: Option<Pin<&'a mut B>>,
}

impl<R, P, B> Future for Drive<'_, R, P, B>
where
    P: Future<Output = R>,
    B: Future<Output = R>,
{
    type Output = R;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        let this = self.get_mut();
        loop {
            if this.slot.wanted.load(Ordering::Relaxed) {
                if let Some(body) = &mut this.body {
                    let span = this.slot.lock().span.clone();
                    let entered = span.as_ref().map(Span::enter);
                    let polled = body.as_mut().poll(cx);
                    drop(entered);
                    let Poll::Ready(result) = polled else {
                        return Poll::Pending;
                    };
                    this.body = None;
                    this.slot.wanted.store(false, Ordering::Relaxed);
                    this.slot.lock().result = Some(result);
                }
            }
            match this.protocol.as_mut().poll(cx) {
                Poll::Ready(result) => return Poll::Ready(result),
                // It asked for the body just now: poll the body.
                Poll::Pending
                    if this.slot.wanted.load(Ordering::Relaxed) && this.body.is_some() => {}
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::cell::Cell;
    use std::pin::pin;

    /// Polls until ready; the futures here wake themselves.
    fn block_on<F: Future>(future: F) -> F::Output {
        let mut future = pin!(future);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
        }
    }

    /// Returns `Pending` once, then `Ready`.
    async fn yield_once() {
        let mut yielded = false;
        std::future::poll_fn(|cx| {
            if yielded {
                Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await;
    }

    #[test]
    fn the_protocol_gets_the_result_of_a_body_that_yields() {
        let slot = Slot::new();
        let ran = Cell::new(0);
        let protocol = async {
            yield_once().await;
            let result = slot.run().await;
            yield_once().await;
            result * 10
        };
        let body = async {
            ran.set(ran.get() + 1);
            yield_once().await;
            4
        };
        assert_eq!(block_on(drive(&slot, pin!(protocol), pin!(body))), 40);
        assert_eq!(ran.get(), 1);
    }

    #[test]
    fn a_protocol_that_does_not_ask_never_polls_the_body() {
        let slot = Slot::<u32>::new();
        let ran = Cell::new(false);
        let protocol = async {
            yield_once().await;
            7
        };
        let body = async {
            ran.set(true);
            1
        };
        assert_eq!(block_on(drive(&slot, pin!(protocol), pin!(body))), 7);
        assert!(!ran.get());
    }
}
