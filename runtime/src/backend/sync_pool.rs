//! The sync connections of one server (the `sync` feature): an r2d2 pool
//! of plain connections, one taken for each command of a plain `fn`.
//!
//! The pool is made on first use: r2d2 starts threads for every pool, which
//! a cache that only async calls use should not pay for. A connection that
//! broke, or whose node stopped being the primary (behind Sentinel), bumps
//! the pool's epoch, and connections made before are dropped at check-out
//! rather than used: a `PING` before every command would double each
//! call's round trips.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use redis::{Cmd, Connection, ConnectionLike, FromRedisValue, RedisError, RedisResult};

use super::Timeouts;
use super::sentinel::Target;
use crate::error::Error;

/// One server's pool of sync connections, made on first use.
pub(super) struct SyncPool {
    pool: OnceLock<r2d2::Pool<SyncManager>>,
    /// How the pool makes its connections, kept until it is made.
    manager: SyncManager,
    /// The most connections the pool holds.
    size: u32,
}

impl SyncPool {
    /// A pool, not yet made, of up to `size` connections to `target`.
    pub(super) fn new(target: Target, timeouts: Timeouts, size: u32) -> Self {
        Self {
            pool: OnceLock::new(),
            manager: SyncManager {
                target,
                timeouts,
                last_error: Arc::default(),
                epoch: Arc::default(),
            },
            size,
        }
    }

    /// Runs `cmd` on a pooled connection; one that broke ends the epoch.
    pub(super) fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error> {
        match self.pool().get() {
            Ok(mut conn) => {
                let result = cmd.query(&mut conn.conn);
                if result
                    .as_ref()
                    .is_err_and(|e| self.manager.target.is_broken(e))
                {
                    self.manager.epoch.fetch_add(1, Ordering::Release);
                }
                result.map_err(Error::Redis)
            }
            Err(e) => {
                let cause = self
                    .manager
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                Err(cause.map_or(Error::Pool(e), Error::Connect))
            }
        }
    }

    /// The pool, made on the first call.
    fn pool(&self) -> &r2d2::Pool<SyncManager> {
        self.pool.get_or_init(|| {
            r2d2::Pool::builder()
                .max_size(self.size)
                .min_idle(Some(0))
                .connection_timeout(self.manager.timeouts.connect)
                // Checks only the epoch; a connection that broke unseen
                // shows as an error and fails open.
                .test_on_check_out(true)
                .error_handler(Box::new(r2d2::NopErrorHandler))
                .build_unchecked(self.manager.clone())
        })
    }
}

/// Makes sync connections with the cache's timeouts for the r2d2 pool.
#[derive(Clone)]
struct SyncManager {
    target: Target,
    timeouts: Timeouts,
    /// Why the last attempt to connect failed, if it did: a pool timeout
    /// then reports that cause (say, a refused password).
    last_error: Arc<Mutex<Option<RedisError>>>,
    /// Bumped when a connection broke or its node stopped being the
    /// primary: connections made before are dropped, not used.
    epoch: Arc<AtomicU64>,
}

/// A pooled sync connection, and the epoch it was made in.
struct Pooled {
    conn: Connection,
    epoch: u64,
}

impl r2d2::ManageConnection for SyncManager {
    type Connection = Pooled;
    type Error = RedisError;

    fn connect(&self) -> RedisResult<Pooled> {
        let connect = || {
            let epoch = self.epoch.load(Ordering::Acquire);
            let client = self.target.client_blocking(self.timeouts.connect)?;
            let conn = client.get_connection_with_timeout(self.timeouts.connect)?;
            conn.set_read_timeout(Some(self.timeouts.response))?;
            conn.set_write_timeout(Some(self.timeouts.response))?;
            Ok(Pooled { conn, epoch })
        };
        let result = connect();
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = result.as_ref().err().cloned();
        result
    }

    /// Whether `conn` is of the current epoch; asks Redis nothing.
    fn is_valid(&self, conn: &mut Pooled) -> RedisResult<()> {
        if self.is_stale(conn) {
            Err(std::io::Error::from(std::io::ErrorKind::NotConnected).into())
        } else {
            Ok(())
        }
    }

    fn has_broken(&self, conn: &mut Pooled) -> bool {
        !conn.conn.is_open() || self.is_stale(conn)
    }
}

impl SyncManager {
    /// Whether `conn` was made before the current epoch.
    fn is_stale(&self, conn: &Pooled) -> bool {
        conn.epoch != self.epoch.load(Ordering::Acquire)
    }
}
