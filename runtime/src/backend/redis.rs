//! The Redis backend: async connections for `async fn`s and (the `sync`
//! feature) a small pool of plain connections for plain `fn`s
//! (`sync_pool.rs`).
//!
//! An async command runs on the caller's task, over a multiplexed connection
//! that lives on the caller's tokio runtime: one per runtime, in its slot
//! (`slots.rs`), made on the first call from it and dropped when the runtime
//! shuts down. Each thread remembers the slot it used last and keeps spare
//! clones of its connection. Calls from elsewhere (see `runtimes.rs`) share
//! one connection on the crate's own io runtime, and each of their commands
//! is handed to it.
//! Connecting is lazy: building a `Cache` never touches the network, and
//! while Redis is down each call waits at most the connect timeout
//! (concurrent calls from one runtime share one attempt).
//!
//! Every command passes the backend's [`Breaker`]: after a failure to
//! connect, or a run of lost commands, commands fail at once instead of each
//! waiting for Redis, and one probe at a time finds out when it is back.
//! The breaker's changes of state are logged here, once each.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, Cmd, FromRedisValue, IntoConnectionInfo, RedisError, RedisResult,
};
use tokio::runtime::{Handle, Id};

use super::Timeouts;
use super::breaker::{Admit, Breaker, Change};
use super::credentials::Credentials;
use super::sentinel::Target;
#[cfg(feature = "sentinel")]
use super::sentinel::{SentinelPrimary, SentinelSpec};
use super::slots::{Connecting, Slot, Slots, runtime_slot, spawned};
#[cfg(feature = "sync")]
use super::sync_pool::SyncPool;
use super::tls::Tls;
use crate::error::{Chain, Error, timed_out};
use crate::redact::redact;
use crate::runtimes::{self, RunOn, io_runtime};

thread_local! {
    /// What this thread remembers of the slot it used last.
    static LAST: RefCell<Option<Remembered>> = const { RefCell::new(None) };
}

/// The slot a thread used last (of the backend with id `backend`), and spare
/// clones of its connection made in `generation`: a call takes one and gives
/// it back, so that it doesn't touch the reference counts that every thread
/// of the runtime shares (with 64 tasks on 2 threads, those counts cost more
/// than the rest of a hit's work on this side of the socket).
struct Remembered {
    backend: u64,
    slot: Arc<Slot>,
    generation: u64,
    spare: Vec<MultiplexedConnection>,
}

/// The most spare connection clones a thread keeps.
const SPARE: usize = 64;

/// A Redis deployment, reached lazily.
pub(crate) struct RedisBackend {
    /// Tells backends apart in [`LAST`], unlike an address, which is reused.
    id: u64,
    /// The server, or the sentinels that name it.
    target: Target,
    timeouts: Timeouts,
    /// Where async commands run: `CacheBuilder::own_runtime`.
    run_on: RunOn,
    /// The async connection of each runtime that calls come from.
    runtimes: Slots,
    /// The async connection of calls from anywhere else, on the io runtime.
    own: Slot,
    /// The connections of sync calls.
    #[cfg(feature = "sync")]
    sync: SyncPool,
    /// Whether to ask Redis at all; see the module docs.
    breaker: Breaker,
}

impl RedisBackend {
    pub(crate) fn new(
        url: &str,
        credentials: &Credentials,
        tls: &Tls,
        timeouts: Timeouts,
        pool_size: u32,
    ) -> Result<Self, Error> {
        // The error of `redis` names no URL today; were it ever to, redact it.
        let config = |e: RedisError| {
            let shown = redact(url);
            Error::Config(format!("{shown}: {}", e.to_string().replace(url, &shown)))
        };
        let info = credentials.apply(url.into_connection_info().map_err(config)?);
        let client = tls.client(info).map_err(config)?;
        Ok(Self::with_client(client, timeouts, pool_size))
    }

    /// A backend on the primary that the sentinels of `spec` name (see
    /// `sentinel.rs`); `credentials` and `tls` as for [`new`](Self::new).
    #[cfg(feature = "sentinel")]
    pub(crate) fn sentinel(
        spec: &SentinelSpec,
        credentials: &Credentials,
        tls: &Tls,
        timeouts: Timeouts,
        pool_size: u32,
    ) -> Result<Self, Error> {
        let primary = SentinelPrimary::new(spec, credentials, tls)?;
        let target = Target::Sentinel(Arc::new(primary));
        Ok(Self::with_target(target, timeouts, pool_size))
    }

    /// A backend on a client the application configured itself.
    pub(crate) fn with_client(client: Client, timeouts: Timeouts, pool_size: u32) -> Self {
        super::tls::prepare(&client);
        Self::with_target(Target::Server(client), timeouts, pool_size)
    }

    #[cfg_attr(not(feature = "sync"), allow(unused_variables))]
    fn with_target(target: Target, timeouts: Timeouts, pool_size: u32) -> Self {
        let pause = u64::try_from(timeouts.connect.as_millis()).unwrap_or(u64::MAX);
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            #[cfg(feature = "sync")]
            sync: SyncPool::new(target.clone(), timeouts.clone(), pool_size),
            target,
            timeouts,
            run_on: RunOn::Caller,
            runtimes: Arc::default(),
            own: Slot::new(None),
            breaker: Breaker::new(pause),
        }
    }

    /// Sends async commands where `run_on` says.
    pub(crate) fn set_run_on(&mut self, run_on: RunOn) {
        self.run_on = run_on;
    }

    /// Where this backend connects.
    #[cfg(feature = "local")]
    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// The connect and response timeouts of this backend.
    #[cfg(feature = "local")]
    pub(crate) fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Runs one command on the async connection of the caller's runtime, on
    /// the caller's task; or, for callers elsewhere, on the io runtime.
    pub(crate) async fn query_async<T>(&self, cmd: &Cmd) -> Result<T, Error>
    where
        T: FromRedisValue + Send + 'static,
    {
        let admitted = self.available()?;
        self.watch(admitted, self.send_async(cmd).await)
    }

    /// [`query_async`](Self::query_async) even while the breaker is open,
    /// for `PING`: a health check asks Redis itself, and its answer counts.
    pub(crate) async fn query_async_now<T>(&self, cmd: &Cmd) -> Result<T, Error>
    where
        T: FromRedisValue + Send + 'static,
    {
        self.watch(Admit::Probe, self.send_async(cmd).await)
    }

    async fn send_async<T>(&self, cmd: &Cmd) -> Result<T, Error>
    where
        T: FromRedisValue + Send + 'static,
    {
        match runtimes::current(self.run_on) {
            Some(here) => self.query_here(&here, cmd).await,
            None => self.query_on_io_runtime(cmd).await,
        }
    }

    async fn query_here<T>(&self, here: &Handle, cmd: &Cmd) -> Result<T, Error>
    where
        T: FromRedisValue + Send + 'static,
    {
        let id = here.id();
        let (mut conn, generation) = match self.take_here(id) {
            Some(taken) => taken,
            None => {
                let slot = self.slot(here);
                let conn = slot
                    .connection(|| self.connect_here())
                    .await
                    .map_err(Error::Connect)?;
                (conn, slot.generation())
            }
        };
        let result = cmd.query_async(&mut conn).await;
        if result.as_ref().is_err_and(|e| self.target.is_broken(e)) {
            self.slot(here).forget();
        } else {
            self.give_back(id, conn, generation);
        }
        result.map_err(Error::Redis)
    }

    /// A connection of the runtime `id` and its generation, if this thread
    /// remembers that runtime's slot and it is connected: the common case,
    /// with no lock, and, but for the first calls, no shared count touched.
    fn take_here(&self, id: Id) -> Option<(MultiplexedConnection, u64)> {
        let take = |last: &RefCell<Option<Remembered>>| {
            let mut last = last.borrow_mut();
            let last = last.as_mut().filter(|last| last.is_of(self, id))?;
            let generation = last.slot.generation();
            if generation != last.generation {
                last.spare.clear();
                last.generation = generation;
            }
            let conn = match last.spare.pop() {
                Some(conn) => conn,
                None => last.slot.ready()?,
            };
            Some((conn, generation))
        };
        LAST.try_with(take).ok().flatten()
    }

    /// Keeps `conn`, taken in `generation`, as a spare of this thread.
    fn give_back(&self, id: Id, conn: MultiplexedConnection, generation: u64) {
        let _ = LAST.try_with(|last| {
            let mut last = last.borrow_mut();
            let last = last.as_mut().filter(|last| last.is_of(self, id));
            if let Some(last) = last.filter(|last| last.generation == generation)
                && last.spare.len() < SPARE
            {
                last.spare.push(conn);
            }
        });
    }

    async fn query_on_io_runtime<T>(&self, cmd: &Cmd) -> Result<T, Error>
    where
        T: FromRedisValue + Send + 'static,
    {
        let runtime = io_runtime().map_err(Error::Redis)?;
        let mut conn = self
            .own
            .connection(|| self.connect_on(runtime.handle()))
            .await
            .map_err(Error::Connect)?;
        let cmd = cmd.clone();
        let query = async move { cmd.query_async::<T>(&mut conn).await };
        let result = runtimes::on_io(query, "command task").await;
        if result.as_ref().is_err_and(|e| self.target.is_broken(e)) {
            self.own.forget();
        }
        result.map_err(Error::Redis)
    }

    /// Runs one command on a pooled sync connection.
    #[cfg(feature = "sync")]
    pub(crate) fn query_blocking<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error> {
        let admitted = self.available()?;
        self.watch(admitted, self.sync.query(cmd))
    }

    /// [`query_blocking`](Self::query_blocking) even while the breaker is
    /// open, for `PING`.
    #[cfg(feature = "sync")]
    pub(crate) fn query_blocking_now<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error> {
        self.watch(Admit::Probe, self.sync.query(cmd))
    }

    /// The slot of the runtime `here`, made (and set to be dropped with
    /// the runtime) on first use. Each thread remembers the last slot it
    /// used, so the list is read only when a thread changes runtime or cache.
    fn slot(&self, here: &Handle) -> Arc<Slot> {
        let id = here.id();
        let remembered = LAST.try_with(|last| {
            let last = last.borrow();
            let last = last.as_ref().filter(|last| last.is_of(self, id));
            last.map(|last| last.slot.clone())
        });
        if let Ok(Some(slot)) = remembered {
            return slot;
        }
        let slot = self.find_or_add_slot(here, id);
        let _ = LAST.try_with(|last| {
            *last.borrow_mut() = Some(Remembered {
                backend: self.id,
                slot: slot.clone(),
                generation: slot.generation(),
                spare: Vec::new(),
            });
        });
        slot
    }

    fn find_or_add_slot(&self, here: &Handle, id: Id) -> Arc<Slot> {
        runtime_slot(&self.runtimes, here, id)
    }

    /// Whether the breaker is open: Redis failed moments ago, its failure
    /// was logged, and commands fail at once.
    pub(crate) fn is_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// Fails at once while the breaker is open (unless this command is its probe).
    fn available(&self) -> Result<Admit, Error> {
        match self.breaker.admit(epoch_ms) {
            Admit::Refuse => Err(Error::Unavailable(self.timeouts.connect)),
            admitted => Ok(admitted),
        }
    }

    /// Tells the breaker how a command went, and logs what that changed.
    fn watch<T>(&self, admitted: Admit, result: Result<T, Error>) -> Result<T, Error> {
        let reach = match &result {
            Ok(_) => crate::error::Reach::Answered,
            Err(error) => error.reach(),
        };
        match (self.breaker.record(admitted, reach, epoch_ms), &result) {
            (Some(Change::Opened(failures)), Err(error)) => tracing::warn!(
                error = %Chain(error),
                failures,
                "redis-cached: Redis is unavailable; cached calls run uncached without asking it, \
                 and one call tries it again every {:?}",
                self.timeouts.connect
            ),
            (Some(Change::Closed), _) => {
                tracing::info!("redis-cached: Redis answers again; cached calls use it");
            }
            _ => {}
        }
        result
    }

    fn config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeouts.connect))
            .set_response_timeout(Some(self.timeouts.response))
    }

    /// A connection attempt driven by the callers that await it, on their runtime.
    fn connect_here(&self) -> Connecting {
        connect(self.target.clone(), self.config(), self.timeouts.connect)
            .boxed()
            .shared()
    }

    /// A connection attempt running on `runtime`, awaited from anywhere.
    fn connect_on(&self, runtime: &Handle) -> Connecting {
        let attempt = connect(self.target.clone(), self.config(), self.timeouts.connect);
        spawned(runtime, attempt)
    }
}

/// Connects to `target` (behind Sentinel: asks for the primary first), within `limit`.
async fn connect(
    target: Target,
    config: AsyncConnectionConfig,
    limit: Duration,
) -> RedisResult<MultiplexedConnection> {
    let connect = async {
        let client = target.client(limit).await?;
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    };
    match tokio::time::timeout(limit, connect).await {
        Ok(result) => result,
        Err(_) => Err(timed_out("connect")),
    }
}

impl Remembered {
    /// Whether this is `backend`'s slot of the runtime `id`.
    fn is_of(&self, backend: &RedisBackend, id: Id) -> bool {
        self.backend == backend.id && self.slot.is_of(id)
    }
}

/// Milliseconds since this process first asked, for the breaker.
fn epoch_ms() -> u64 {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    u64::try_from(START.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> RedisBackend {
        let timeouts = Timeouts {
            connect: Duration::from_millis(100),
            response: Duration::from_millis(100),
        };
        let (credentials, tls) = (Credentials::default(), Tls::default());
        RedisBackend::new("redis://127.0.0.1:1", &credentials, &tls, timeouts, 1).unwrap()
    }

    #[test]
    fn a_thread_remembers_its_runtimes_slot() {
        let backend = backend();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let here = runtimes::current(RunOn::Caller).expect("a runtime");
            let slot = backend.slot(&here);
            assert!(Arc::ptr_eq(&slot, &backend.slot(&here)), "remembered");
            let registered = backend.runtimes.read().unwrap()[0].clone();
            assert!(Arc::ptr_eq(&slot, &registered), "the runtime's slot");
        });
    }
}
