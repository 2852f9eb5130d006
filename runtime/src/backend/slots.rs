//! The async connection of each tokio runtime that calls come from, for one
//! server (`redis.rs`) and for a cluster (`cluster.rs`) alike.
//!
//! A connection lives on the runtime whose tasks use it, so it must not
//! outlive that runtime: a `Cache` outlives the runtimes that use it, as a
//! sequence of `#[tokio::test]`s does. So each runtime gets a [`Slot`] in the
//! backend's [`Slots`], made on its first call and removed when the runtime
//! shuts down; callers elsewhere share one slot whose connection was made
//! on the io runtime ([`spawned`]). A slot shares one connect attempt
//! between concurrent callers, and, once connected, is read without a lock.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

use arc_swap::ArcSwapOption;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use redis::RedisResult;
use redis::aio::MultiplexedConnection;
use tokio::runtime::{Handle, Id};

use crate::error::timed_out;

/// The async connection of each runtime that calls come from.
pub(super) type Slots<C = MultiplexedConnection> = Arc<RwLock<Vec<Arc<Slot<C>>>>>;

/// A connection attempt that callers share.
pub(super) type Connecting<C = MultiplexedConnection> = Shared<BoxFuture<'static, RedisResult<C>>>;

/// One async connection, and the runtime it lives on (`None`: the io
/// runtime). The cluster backend keeps its cluster connection in one too.
///
/// For one server, a `MultiplexedConnection` rather than the `redis` crate's
/// `ConnectionManager`: the manager's reconnection costs every command a
/// shared future and two more reference counts, which both worker threads of
/// a runtime contend for; here a broken connection is simply forgotten and
/// the next call makes a new one.
pub(super) struct Slot<C = MultiplexedConnection> {
    runtime: Option<Id>,
    /// The connection, once made; emptied when it breaks.
    ready: ArcSwapOption<C>,
    /// Bumped each time the connection is forgotten: spare clones of an
    /// older generation are of a broken connection.
    generation: AtomicU64,
    /// The attempt under way, which callers join; `None`: none is.
    connecting: Mutex<Option<Connecting<C>>>,
}

impl<C: Clone + Send + Sync + 'static> Slot<C> {
    /// An empty slot of the runtime `runtime` (`None`: the io runtime).
    pub(super) fn new(runtime: Option<Id>) -> Self {
        Self {
            runtime,
            ready: ArcSwapOption::empty(),
            generation: AtomicU64::new(0),
            connecting: Mutex::new(None),
        }
    }

    /// The connection, made with `connect` if there is none; concurrent
    /// callers share one attempt, and after a failed one the next call tries
    /// again. Once connected, a call takes no lock.
    pub(super) async fn connection(
        &self,
        connect: impl FnOnce() -> Connecting<C>,
    ) -> RedisResult<C> {
        if let Some(conn) = self.ready() {
            return Ok(conn);
        }
        let attempt = {
            let mut connecting = self
                .connecting
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(conn) = self.ready() {
                return Ok(conn);
            }
            connecting.get_or_insert_with(connect).clone()
        };
        let result = attempt.clone().await;
        if let Ok(conn) = &result {
            self.ready.store(Some(Arc::new(conn.clone())));
        }
        let mut connecting = self
            .connecting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if connecting
            .as_ref()
            .is_some_and(|current| current.ptr_eq(&attempt))
        {
            *connecting = None;
        }
        result
    }

    /// The connection, if one is made; takes no lock and makes none.
    pub(super) fn ready(&self) -> Option<C> {
        self.ready.load().as_deref().cloned()
    }

    /// How many times the connection was forgotten: see [`forget`](Self::forget).
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether this is the slot of the runtime `id`.
    pub(super) fn is_of(&self, id: Id) -> bool {
        self.runtime == Some(id)
    }

    /// Forgets a connection that broke (closed, or its driver gone): the
    /// next call makes a new one.
    pub(super) fn forget(&self) {
        // Emptied before the bump: a call that reads the new generation
        // can't then take the old connection.
        self.ready.store(None);
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// The slot of the runtime `here` (whose id is `id`) in `runtimes`, added
/// (and set to be removed when the runtime shuts down) on first use.
pub(super) fn runtime_slot<C: Clone + Send + Sync + 'static>(
    runtimes: &Slots<C>,
    here: &Handle,
    id: Id,
) -> Arc<Slot<C>> {
    let find = |slots: &[Arc<Slot<C>>]| slots.iter().find(|s| s.is_of(id)).cloned();
    if let Some(slot) = find(&runtimes.read().unwrap_or_else(PoisonError::into_inner)) {
        return slot;
    }
    let mut slots = runtimes.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(slot) = find(&slots) {
        return slot;
    }
    let slot = Arc::new(Slot::new(Some(id)));
    slots.push(slot.clone());
    // A task that never ends: the runtime drops it when it shuts down.
    let prune = Prune {
        slots: Arc::downgrade(runtimes),
        runtime: id,
    };
    here.spawn(async move {
        let _prune = prune;
        std::future::pending::<()>().await;
    });
    slot
}

/// Removes a runtime's slot when the runtime drops the task holding this.
struct Prune<C> {
    slots: Weak<RwLock<Vec<Arc<Slot<C>>>>>,
    runtime: Id,
}

impl<C> Drop for Prune<C> {
    fn drop(&mut self) {
        if let Some(slots) = self.slots.upgrade() {
            let mut slots = slots.write().unwrap_or_else(PoisonError::into_inner);
            slots.retain(|slot| slot.runtime != Some(self.runtime));
        }
    }
}

/// `attempt` running on `runtime`, shared by the callers that await it
/// from anywhere (the connection of callers without a usable runtime).
pub(super) fn spawned<C: Clone + Send + Sync + 'static>(
    runtime: &Handle,
    attempt: impl Future<Output = RedisResult<C>> + Send + 'static,
) -> Connecting<C> {
    let task = runtime.spawn(attempt);
    async move {
        task.await
            .unwrap_or_else(|_| Err(timed_out("connect task")))
    }
    .boxed()
    .shared()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtimes_slot_is_dropped_with_the_runtime() {
        let slots: Slots<u8> = Slots::default();
        for _ in 0..3 {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let here = Handle::current();
                let slot = runtime_slot(&slots, &here, here.id());
                let again = runtime_slot(&slots, &here, here.id());
                assert!(Arc::ptr_eq(&slot, &again), "found again");
            });
            assert_eq!(slots.read().unwrap().len(), 1);
            drop(runtime);
            assert!(slots.read().unwrap().is_empty(), "pruned");
        }
    }
}
