//! The Redis backend: async connections for `async fn`s and a small r2d2
//! pool of plain connections for plain `fn`s.
//!
//! An async command runs on the caller's task, over a `ConnectionManager`
//! that lives on the caller's tokio runtime: one per runtime, made on the
//! first call from it and dropped when the runtime shuts down (a `Cache`
//! outlives the runtimes that use it, as a sequence of `#[tokio::test]`s
//! does). Calls from elsewhere (see `runtimes.rs`) share one connection on
//! the crate's own io runtime, and each of their commands is handed to it.
//! Connecting is lazy: building a `Cache` never touches the network, and
//! while Redis is down each call waits at most the connect timeout
//! (concurrent calls from one runtime share one attempt).
//!
//! After a failure to reach Redis (no connection within the connect timeout,
//! a connection error, a response timeout), commands fail at once for one
//! connect timeout instead of each waiting for a new attempt: the one place
//! that decides when to stop asking a Redis that doesn't answer.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Cmd, Connection, ConnectionLike, FromRedisValue, RedisError, RedisResult};
use tokio::runtime::{Handle, Id};

use crate::error::Error;
use crate::runtimes::{self, io_runtime};

/// Connection settings a backend needs.
#[derive(Debug, Clone)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) response: Duration,
}

thread_local! {
    /// The slot this thread used last, and the backend (by id) it belongs to.
    static LAST_SLOT: RefCell<Option<(u64, Arc<Slot>)>> = const { RefCell::new(None) };
}

/// A Redis deployment, reached lazily.
pub(crate) struct RedisBackend {
    /// Tells backends apart in [`LAST_SLOT`], unlike an address, which is reused.
    id: u64,
    client: Client,
    timeouts: Timeouts,
    pool_size: u32,
    /// The async connection of each runtime that calls come from.
    runtimes: Slots,
    /// The async connection of calls from anywhere else, on the io runtime.
    own: Slot,
    pool: OnceLock<r2d2::Pool<SyncManager>>,
    /// When Redis last failed to answer, in ms since [`epoch_ms`]; 0: never.
    failed_at_ms: AtomicU64,
}

/// The async connection of each runtime that calls come from.
pub(super) type Slots<C = ConnectionManager> = Arc<RwLock<Vec<Arc<Slot<C>>>>>;

/// A connection attempt that callers share.
pub(super) type Connecting<C = ConnectionManager> = Shared<BoxFuture<'static, RedisResult<C>>>;

/// One async connection, and the runtime it lives on (`None`: the io
/// runtime). The cluster backend keeps its cluster connection in one too.
pub(super) struct Slot<C = ConnectionManager> {
    runtime: Option<Id>,
    /// Set once connected: the connection reconnects by itself from then on.
    ready: OnceLock<C>,
    /// The attempt under way, which callers join; `None`: none is.
    connecting: Mutex<Option<Connecting<C>>>,
}

impl RedisBackend {
    pub(crate) fn new(url: &str, timeouts: Timeouts, pool_size: u32) -> Result<Self, Error> {
        let client = Client::open(url).map_err(|e| Error::Config(format!("{url:?}: {e}")))?;
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Ok(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            client,
            timeouts,
            pool_size,
            runtimes: Arc::default(),
            own: Slot::new(None),
            pool: OnceLock::new(),
            failed_at_ms: AtomicU64::new(0),
        })
    }

    /// The client this backend connects with.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The connect and response timeouts of this backend.
    pub(crate) fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Runs one command on the async connection of the caller's runtime, on
    /// the caller's task; or, for callers elsewhere, on the io runtime.
    pub(crate) async fn query_async<T>(&self, cmd: Cmd) -> Result<T, Error>
    where
        T: FromRedisValue + Send + 'static,
    {
        self.available()?;
        let result = match runtimes::current() {
            Some(here) => match self.slot(&here).connection(|| self.connect_here()).await {
                Ok(mut conn) => cmd.query_async(&mut conn).await,
                Err(error) => Err(error),
            },
            None => self.query_on_io_runtime(cmd).await,
        };
        self.watch(result.map_err(Error::from))
    }

    async fn query_on_io_runtime<T>(&self, cmd: Cmd) -> RedisResult<T>
    where
        T: FromRedisValue + Send + 'static,
    {
        let runtime = io_runtime()?;
        let mut conn = self
            .own
            .connection(|| self.connect_on(runtime.handle()))
            .await?;
        runtime
            .spawn(async move { cmd.query_async::<T>(&mut conn).await })
            .await
            .unwrap_or_else(|_| Err(timed_out("command task")))
    }

    /// Runs one command on a pooled sync connection.
    pub(crate) fn query_blocking<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error> {
        self.available()?;
        let result = match self.pool().get() {
            Ok(mut conn) => cmd.query(&mut *conn).map_err(Error::from),
            Err(e) => Err(Error::Pool(e)),
        };
        self.watch(result)
    }

    /// The slot of the runtime `here`, made (and set to be dropped with
    /// the runtime) on first use. Each thread remembers the last slot it
    /// used, so the list is read only when a thread changes runtime or cache.
    fn slot(&self, here: &Handle) -> Arc<Slot> {
        let id = here.id();
        let remembered = LAST_SLOT.try_with(|last| match &*last.borrow() {
            Some((backend, slot)) if *backend == self.id && slot.runtime == Some(id) => {
                Some(slot.clone())
            }
            _ => None,
        });
        if let Ok(Some(slot)) = remembered {
            return slot;
        }
        let slot = self.find_or_add_slot(here, id);
        let _ = LAST_SLOT.try_with(|last| *last.borrow_mut() = Some((self.id, slot.clone())));
        slot
    }

    fn find_or_add_slot(&self, here: &Handle, id: Id) -> Arc<Slot> {
        runtime_slot(&self.runtimes, here, id)
    }

    /// Fails at once while a recent failure to reach Redis is fresh.
    fn available(&self) -> Result<(), Error> {
        let failed_at = self.failed_at_ms.load(Ordering::Relaxed);
        let pause = u64::try_from(self.timeouts.connect.as_millis()).unwrap_or(u64::MAX);
        if failed_at != 0 && epoch_ms().saturating_sub(failed_at) < pause {
            return Err(Error::Unavailable(self.timeouts.connect));
        }
        Ok(())
    }

    /// Notes whether a command reached Redis.
    fn watch<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        let unreachable = match &result {
            Err(Error::Pool(_)) => true,
            Err(Error::Redis(e)) => {
                e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
            }
            _ => false,
        };
        let at = if unreachable { epoch_ms().max(1) } else { 0 };
        if self.failed_at_ms.load(Ordering::Relaxed) != at {
            self.failed_at_ms.store(at, Ordering::Relaxed);
        }
        result
    }

    fn manager_config(&self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeouts.connect))
            .set_response_timeout(Some(self.timeouts.response))
            .set_number_of_retries(0)
    }

    /// A connection attempt driven by the callers that await it, on their runtime.
    fn connect_here(&self) -> Connecting {
        connect(
            self.client.clone(),
            self.manager_config(),
            self.timeouts.connect,
        )
        .boxed()
        .shared()
    }

    /// A connection attempt running on `runtime`, awaited from anywhere.
    fn connect_on(&self, runtime: &Handle) -> Connecting {
        let attempt = connect(
            self.client.clone(),
            self.manager_config(),
            self.timeouts.connect,
        );
        let task = runtime.spawn(attempt);
        async move {
            task.await
                .unwrap_or_else(|_| Err(timed_out("connect task")))
        }
        .boxed()
        .shared()
    }

    fn pool(&self) -> &r2d2::Pool<SyncManager> {
        self.pool.get_or_init(|| {
            let manager = SyncManager {
                client: self.client.clone(),
                timeouts: self.timeouts.clone(),
            };
            r2d2::Pool::builder()
                .max_size(self.pool_size)
                .min_idle(Some(0))
                .connection_timeout(self.timeouts.connect)
                // A PING before every command would double each call's round
                // trips; a broken connection shows as an error and fails open.
                .test_on_check_out(false)
                .error_handler(Box::new(r2d2::NopErrorHandler))
                .build_unchecked(manager)
        })
    }
}

/// Connects a manager, within `limit`.
async fn connect(
    client: Client,
    config: ConnectionManagerConfig,
    limit: Duration,
) -> RedisResult<ConnectionManager> {
    let connect = ConnectionManager::new_with_config(client, config);
    match tokio::time::timeout(limit, connect).await {
        Ok(result) => result,
        Err(_) => Err(timed_out("connect")),
    }
}

impl<C: Clone + Send + Sync + 'static> Slot<C> {
    pub(super) fn new(runtime: Option<Id>) -> Self {
        Self {
            runtime,
            ready: OnceLock::new(),
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
        if let Some(manager) = self.ready.get() {
            return Ok(manager.clone());
        }
        let attempt = {
            let mut connecting = self
                .connecting
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(manager) = self.ready.get() {
                return Ok(manager.clone());
            }
            connecting.get_or_insert_with(connect).clone()
        };
        let result = attempt.clone().await;
        if let Ok(manager) = &result {
            let _ = self.ready.set(manager.clone());
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
}

/// The slot of the runtime `here` (whose id is `id`) in `runtimes`, added
/// (and set to be removed when the runtime shuts down) on first use.
pub(super) fn runtime_slot<C: Clone + Send + Sync + 'static>(
    runtimes: &Slots<C>,
    here: &Handle,
    id: Id,
) -> Arc<Slot<C>> {
    let find = |slots: &[Arc<Slot<C>>]| slots.iter().find(|s| s.runtime == Some(id)).cloned();
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

pub(super) fn timed_out(what: &str) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what} timed out"),
    ))
}

/// Milliseconds since this process first asked, for [`RedisBackend::available`].
fn epoch_ms() -> u64 {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    u64::try_from(START.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Makes sync connections with the cache's timeouts for the r2d2 pool.
struct SyncManager {
    client: Client,
    timeouts: Timeouts,
}

impl r2d2::ManageConnection for SyncManager {
    type Connection = Connection;
    type Error = RedisError;

    fn connect(&self) -> RedisResult<Connection> {
        let conn = self
            .client
            .get_connection_with_timeout(self.timeouts.connect)?;
        conn.set_read_timeout(Some(self.timeouts.response))?;
        conn.set_write_timeout(Some(self.timeouts.response))?;
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut Connection) -> RedisResult<()> {
        redis::cmd("PING").query(conn)
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        !conn.is_open()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> RedisBackend {
        let timeouts = Timeouts {
            connect: Duration::from_millis(100),
            response: Duration::from_millis(100),
        };
        RedisBackend::new("redis://127.0.0.1:1", timeouts, 1).unwrap()
    }

    #[test]
    fn a_runtimes_slot_is_dropped_with_the_runtime() {
        let backend = backend();
        for _ in 0..3 {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let here = runtimes::current().expect("a capable runtime");
                let slot = backend.slot(&here);
                assert!(Arc::ptr_eq(&slot, &backend.slot(&here)), "found again");
            });
            assert_eq!(backend.runtimes.read().unwrap().len(), 1);
            drop(runtime);
            assert!(backend.runtimes.read().unwrap().is_empty(), "pruned");
        }
    }
}
