//! The Redis backend: a tokio `ConnectionManager` for async calls and a small
//! r2d2 pool of plain connections for sync calls.
//!
//! The async connection is made, and reconnected, on a dedicated one-thread
//! runtime owned by this crate ([`io_runtime`]), so a `Cache` keeps working
//! when the runtime that first used it shuts down (as each `#[tokio::test]`
//! does) and callers on any runtime share one connection. Connecting is
//! lazy: building a `Cache` never touches the network, and while Redis is
//! down each call waits at most the connect timeout (concurrent calls share
//! one attempt). Every command also runs on that runtime, so its response
//! timeout and any reconnect never depend on the caller's executor.
//!
//! After a failure to reach Redis (no connection within the connect timeout,
//! a connection error, a response timeout), commands fail at once for one
//! connect timeout instead of each waiting for a new attempt: the one place
//! that decides when to stop asking a Redis that doesn't answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Cmd, Connection, ConnectionLike, ScriptInvocation};

use crate::Error;

/// Connection settings a backend needs.
#[derive(Debug, Clone)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) response: Duration,
}

/// A Redis deployment, reached lazily.
pub(crate) struct RedisBackend {
    client: Client,
    timeouts: Timeouts,
    pool_size: u32,
    async_conn: Mutex<AsyncConn>,
    pool: OnceLock<r2d2::Pool<SyncManager>>,
    /// When Redis last failed to answer, in ms since [`epoch`]; 0: never.
    failed_at_ms: AtomicU64,
}

type Connecting = Shared<BoxFuture<'static, Result<ConnectionManager, redis::RedisError>>>;

/// The state of the shared async connection.
enum AsyncConn {
    /// Not connected, or the last attempt failed.
    Idle,
    /// An attempt is under way; callers join it.
    Connecting(Connecting),
    /// Connected; the manager reconnects by itself from here on.
    Ready(ConnectionManager),
}

impl RedisBackend {
    pub(crate) fn new(url: &str, timeouts: Timeouts, pool_size: u32) -> Result<Self, Error> {
        let client = Client::open(url).map_err(|e| Error::Config(format!("{url:?}: {e}")))?;
        Ok(Self {
            client,
            timeouts,
            pool_size,
            async_conn: Mutex::new(AsyncConn::Idle),
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

    /// Runs one command on the shared async connection, on the io runtime.
    pub(crate) async fn query_async<T>(&self, cmd: Cmd) -> Result<T, Error>
    where
        T: redis::FromRedisValue + Send + 'static,
    {
        self.available()?;
        let mut conn = match self.connection().await {
            Ok(conn) => conn,
            Err(error) => {
                self.failed(true);
                return Err(error);
            }
        };
        let result = match io_runtime() {
            Ok(runtime) => runtime
                .spawn(async move { cmd.query_async::<T>(&mut conn).await })
                .await
                .unwrap_or_else(|_| Err(timed_out("command task"))),
            Err(error) => Err(error),
        };
        self.watch(result)
    }

    /// Runs one command on a pooled sync connection.
    pub(crate) fn query_sync<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error> {
        self.available()?;
        let result = match self.pool().get() {
            Ok(mut conn) => cmd.query(&mut *conn).map_err(Error::from),
            Err(e) => Err(Error::from(e)),
        };
        self.watch_sync(result)
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

    /// Notes whether an async command reached Redis.
    fn watch<T>(&self, result: Result<T, redis::RedisError>) -> Result<T, Error> {
        let unreachable = result.as_ref().err().is_some_and(|e| {
            e.is_io_error()
                || e.is_timeout()
                || e.is_connection_dropped()
                || e.is_connection_refusal()
        });
        self.failed(unreachable);
        Ok(result?)
    }

    /// Notes whether a sync command, or getting its connection, reached Redis.
    fn watch_sync<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        let unreachable = match &result {
            Err(Error::Pool(_)) => true,
            Err(Error::Redis(e)) => e.is_io_error() || e.is_timeout() || e.is_connection_dropped(),
            _ => false,
        };
        self.failed(unreachable);
        result
    }

    fn failed(&self, unreachable: bool) {
        let at = if unreachable { epoch_ms().max(1) } else { 0 };
        if self.failed_at_ms.load(Ordering::Relaxed) != at {
            self.failed_at_ms.store(at, Ordering::Relaxed);
        }
    }

    /// Deletes every key starting with `prefix`: `SCAN … MATCH <prefix>* COUNT 500`,
    /// each batch `UNLINK`ed as it comes. Returns how many keys were deleted.
    pub(crate) async fn delete_matching(&self, prefix: &str) -> Result<u64, Error> {
        let pattern = match_prefix(prefix);
        let mut cursor = 0;
        let mut deleted = 0;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) =
                self.query_async(scan(&pattern, cursor)).await?;
            if !keys.is_empty() {
                deleted += self.query_async::<u64>(unlink(&keys)).await?;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    /// Sync [`delete_matching`](Self::delete_matching), on one pooled connection.
    pub(crate) fn delete_matching_sync(&self, prefix: &str) -> Result<u64, Error> {
        let pattern = match_prefix(prefix);
        let mut conn = self.pool().get()?;
        let mut cursor = 0;
        let mut deleted = 0;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = scan(&pattern, cursor).query(&mut *conn)?;
            if !keys.is_empty() {
                deleted += unlink(&keys).query::<u64>(&mut *conn)?;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    /// Runs a Lua script on a pooled sync connection.
    pub(crate) fn invoke_sync<T: redis::FromRedisValue>(
        &self,
        script: &ScriptInvocation<'_>,
    ) -> Result<T, Error> {
        self.available()?;
        let result = match self.pool().get() {
            Ok(mut conn) => script.invoke(&mut *conn).map_err(Error::from),
            Err(e) => Err(Error::from(e)),
        };
        self.watch_sync(result)
    }

    async fn connection(&self) -> Result<ConnectionManager, Error> {
        let attempt = {
            let mut state = self.async_conn.lock().unwrap_or_else(|e| e.into_inner());
            match &*state {
                AsyncConn::Ready(manager) => return Ok(manager.clone()),
                AsyncConn::Connecting(attempt) => attempt.clone(),
                AsyncConn::Idle => {
                    let attempt = self.connect();
                    *state = AsyncConn::Connecting(attempt.clone());
                    attempt
                }
            }
        };
        let result = attempt.clone().await;
        let mut state = self.async_conn.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(&*state, AsyncConn::Connecting(current) if current.ptr_eq(&attempt)) {
            *state = match &result {
                Ok(manager) => AsyncConn::Ready(manager.clone()),
                Err(_) => AsyncConn::Idle,
            };
        }
        Ok(result?)
    }

    /// Starts a connection attempt on the io runtime, bounded by the connect timeout.
    fn connect(&self) -> Connecting {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeouts.connect))
            .set_response_timeout(Some(self.timeouts.response))
            .set_number_of_retries(0);
        let client = self.client.clone();
        let limit = self.timeouts.connect;
        let runtime = match io_runtime() {
            Ok(runtime) => runtime,
            Err(e) => return futures_util::future::ready(Err(e)).boxed().shared(),
        };
        let task = runtime.spawn(async move {
            let connect = ConnectionManager::new_with_config(client, config);
            match tokio::time::timeout(limit, connect).await {
                Ok(result) => result,
                Err(_) => Err(timed_out("connect")),
            }
        });
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

/// The `SCAN` pattern for keys starting with `prefix`: the prefix with the
/// glob characters `* ? [ ] \` escaped, then `*`.
fn match_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

/// One step of a `SCAN` for `pattern`, from `cursor`.
fn scan(pattern: &str, cursor: u64) -> Cmd {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(SCAN_COUNT);
    cmd
}

/// How many keys one `SCAN` step looks at.
const SCAN_COUNT: u32 = 500;

/// `UNLINK` of one batch of keys; answers how many existed.
fn unlink(keys: &[Vec<u8>]) -> Cmd {
    let mut cmd = redis::cmd("UNLINK");
    cmd.arg(keys);
    cmd
}

fn timed_out(what: &str) -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what} timed out"),
    ))
}

/// Milliseconds since this process first asked, for [`RedisBackend::available`].
fn epoch_ms() -> u64 {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    u64::try_from(START.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The runtime that owns every async Redis connection of the process.
pub(crate) fn io_runtime() -> Result<&'static tokio::runtime::Runtime, redis::RedisError> {
    static RUNTIME: LazyLock<std::io::Result<tokio::runtime::Runtime>> = LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("redis-cached-io")
            .enable_all()
            .build()
    });
    match &*RUNTIME {
        Ok(runtime) => Ok(runtime),
        Err(e) => {
            Err(std::io::Error::new(e.kind(), format!("starting the io runtime: {e}")).into())
        }
    }
}

/// Waits for `duration` on the io runtime's timer, so that async callers on
/// any executor (or on a tokio runtime without timers) can pause. Returns at
/// once if that runtime could not start: nothing else in the backend works
/// then either, and the caller's next command fails.
pub(crate) async fn sleep(duration: Duration) {
    if let Ok(runtime) = io_runtime() {
        // A JoinError means the runtime is shutting down: stop waiting.
        let _ = runtime.spawn(tokio::time::sleep(duration)).await;
    }
}

/// Makes sync connections with the cache's timeouts for the r2d2 pool.
struct SyncManager {
    client: Client,
    timeouts: Timeouts,
}

impl r2d2::ManageConnection for SyncManager {
    type Connection = Connection;
    type Error = redis::RedisError;

    fn connect(&self) -> Result<Connection, redis::RedisError> {
        let conn = self
            .client
            .get_connection_with_timeout(self.timeouts.connect)?;
        conn.set_read_timeout(Some(self.timeouts.response))?;
        conn.set_write_timeout(Some(self.timeouts.response))?;
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut Connection) -> Result<(), redis::RedisError> {
        redis::cmd("PING").query(conn)
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        !conn.is_open()
    }
}

#[cfg(test)]
mod tests {
    use super::match_prefix;

    #[test]
    fn glob_characters_in_a_prefix_are_escaped() {
        assert_eq!(match_prefix("app:"), "app:*");
        assert_eq!(match_prefix(""), "*");
        assert_eq!(match_prefix(r"a*b?[1]\:"), r"a\*b\?\[1\]\\:*");
    }
}
