//! Where cached values live.

mod redis;

use std::sync::LazyLock;

pub(crate) use self::redis::{RedisBackend, Timeouts, sleep};

/// Deletes `KEYS[1]` only if it holds `ARGV[1]`: a lock is released by its
/// owner only, never by a process whose lock expired and was taken over.
static UNLOCK: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end"#,
    )
});

/// The store behind a [`Cache`](crate::Cache).
#[expect(clippy::large_enum_variant, reason = "one per Cache, behind its Arc")]
pub(crate) enum Backend {
    /// A Redis deployment.
    Redis(RedisBackend),
    /// A cache whose configuration could not be used (say, a malformed
    /// `REDIS_CACHED_URL`): every operation fails with this message, so every
    /// cached call fails open and the problem shows up in logs and counters.
    Unusable(String),
}

impl Backend {
    fn unusable(message: &str) -> crate::Error {
        crate::Error::Config(message.to_owned())
    }

    /// The bytes stored under `key`, if any.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, crate::Error> {
        match self {
            Self::Redis(redis) => redis.query_async(::redis::cmd("GET").arg(key)).await,
            Self::Unusable(message) => Err(Self::unusable(message)),
        }
    }

    /// Sync [`get`](Self::get).
    pub(crate) fn get_sync(&self, key: &str) -> Result<Option<Vec<u8>>, crate::Error> {
        match self {
            Self::Redis(redis) => redis.query_sync(::redis::cmd("GET").arg(key)),
            Self::Unusable(message) => Err(Self::unusable(message)),
        }
    }

    /// Stores `bytes` under `key` for `ttl_ms` milliseconds.
    pub(crate) async fn set(
        &self,
        key: &str,
        bytes: &[u8],
        ttl_ms: u64,
    ) -> Result<(), crate::Error> {
        match self {
            Self::Redis(redis) => redis.query_async(&set_px(key, bytes, ttl_ms)).await,
            Self::Unusable(message) => Err(Self::unusable(message)),
        }
    }

    /// Sync [`set`](Self::set).
    pub(crate) fn set_sync(
        &self,
        key: &str,
        bytes: &[u8],
        ttl_ms: u64,
    ) -> Result<(), crate::Error> {
        match self {
            Self::Redis(redis) => redis.query_sync(&set_px(key, bytes, ttl_ms)),
            Self::Unusable(message) => Err(Self::unusable(message)),
        }
    }

    /// Takes `lock_key` for `token` unless someone holds it (`SET … NX PX`);
    /// whether it was taken.
    pub(crate) async fn try_lock(
        &self,
        lock_key: &str,
        token: &str,
        ttl_ms: u64,
    ) -> Result<bool, crate::Error> {
        match self {
            Self::Redis(redis) => {
                let taken: Option<String> = redis
                    .query_async(&set_nx_px(lock_key, token, ttl_ms))
                    .await?;
                Ok(taken.is_some())
            }
            Self::Unusable(message) => Err(Self::unusable(message)),
        }
    }

    /// Sync [`try_lock`](Self::try_lock).
    pub(crate) fn try_lock_sync(
        &self,
        lock_key: &str,
        token: &str,
        ttl_ms: u64,
    ) -> Result<bool, crate::Error> {
        match self {
            Self::Redis(redis) => {
                let taken: Option<String> =
                    redis.query_sync(&set_nx_px(lock_key, token, ttl_ms))?;
                Ok(taken.is_some())
            }
            Self::Unusable(message) => Err(Self::unusable(message)),
        }
    }

    /// The bytes under `key`, and whether `lock_key` exists, in one round
    /// trip (`MGET`; the two keys share a hash slot).
    pub(crate) async fn peek(
        &self,
        key: &str,
        lock_key: &str,
    ) -> Result<(Option<Vec<u8>>, bool), crate::Error> {
        match self {
            Self::Redis(redis) => {
                let (value, lock): (Option<Vec<u8>>, Option<Vec<u8>>) = redis
                    .query_async(::redis::cmd("MGET").arg(key).arg(lock_key))
                    .await?;
                Ok((value, lock.is_some()))
            }
            Self::Unusable(message) => Err(Self::unusable(message)),
        }
    }

    /// Sync [`peek`](Self::peek).
    pub(crate) fn peek_sync(
        &self,
        key: &str,
        lock_key: &str,
    ) -> Result<(Option<Vec<u8>>, bool), crate::Error> {
        match self {
            Self::Redis(redis) => {
                let (value, lock): (Option<Vec<u8>>, Option<Vec<u8>>) =
                    redis.query_sync(::redis::cmd("MGET").arg(key).arg(lock_key))?;
                Ok((value, lock.is_some()))
            }
            Self::Unusable(message) => Err(Self::unusable(message)),
        }
    }

    /// Deletes `lock_key` if it still holds `token`; whether it did.
    pub(crate) async fn unlock(&self, lock_key: &str, token: &str) -> Result<bool, crate::Error> {
        match self {
            Self::Redis(redis) => {
                let deleted: u8 = redis.invoke_async(UNLOCK.key(lock_key).arg(token)).await?;
                Ok(deleted == 1)
            }
            Self::Unusable(message) => Err(Self::unusable(message)),
        }
    }

    /// Sync [`unlock`](Self::unlock).
    pub(crate) fn unlock_sync(&self, lock_key: &str, token: &str) -> Result<bool, crate::Error> {
        match self {
            Self::Redis(redis) => {
                let deleted: u8 = redis.invoke_sync(UNLOCK.key(lock_key).arg(token))?;
                Ok(deleted == 1)
            }
            Self::Unusable(message) => Err(Self::unusable(message)),
        }
    }

    /// Checks that the store answers.
    pub(crate) async fn ping(&self) -> Result<(), crate::Error> {
        match self {
            Self::Redis(redis) => redis.query_async(&::redis::cmd("PING")).await,
            Self::Unusable(message) => Err(Self::unusable(message)),
        }
    }

    /// Sync [`ping`](Self::ping).
    pub(crate) fn ping_sync(&self) -> Result<(), crate::Error> {
        match self {
            Self::Redis(redis) => redis.query_sync(&::redis::cmd("PING")),
            Self::Unusable(message) => Err(Self::unusable(message)),
        }
    }
}

fn set_px(key: &str, bytes: &[u8], ttl_ms: u64) -> ::redis::Cmd {
    let mut cmd = ::redis::cmd("SET");
    cmd.arg(key).arg(bytes).arg("PX").arg(ttl_ms);
    cmd
}

fn set_nx_px(key: &str, token: &str, ttl_ms: u64) -> ::redis::Cmd {
    let mut cmd = ::redis::cmd("SET");
    cmd.arg(key).arg(token).arg("NX").arg("PX").arg(ttl_ms);
    cmd
}
