//! Where cached values live.

mod memory;
mod redis;
#[cfg(test)]
mod tests;

use std::sync::LazyLock;

pub(crate) use self::memory::MemoryBackend;
pub(crate) use self::redis::{RedisBackend, Timeouts, io_runtime, sleep};

/// Deletes `KEYS[1]` only if it holds `ARGV[1]`: a lock is released by its
/// owner only, never by a process whose lock expired and was taken over.
const UNLOCK_SOURCE: &str = r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end"#;

/// [`UNLOCK_SOURCE`] as a script, for sync connections (`EVALSHA`, loading it if needed).
static UNLOCK: LazyLock<::redis::Script> = LazyLock::new(|| ::redis::Script::new(UNLOCK_SOURCE));

/// The store behind a [`Cache`](crate::Cache).
pub(crate) enum Backend {
    /// A Redis deployment.
    Redis(RedisBackend),
    /// Values kept in this process (`mem://`), with the same semantics as Redis.
    Memory(MemoryBackend),
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
            Self::Redis(redis) => redis.query_async(::redis::Cmd::get(key)).await,
            Self::Memory(memory) => Ok(memory.get(key)),
            Self::Unusable(message) => Err(Self::unusable(message)),
        }
    }

    /// Sync [`get`](Self::get).
    pub(crate) fn get_sync(&self, key: &str) -> Result<Option<Vec<u8>>, crate::Error> {
        match self {
            Self::Redis(redis) => redis.query_sync(::redis::cmd("GET").arg(key)),
            Self::Memory(memory) => Ok(memory.get(key)),
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
            Self::Redis(redis) => redis.query_async(set_px(key, bytes, ttl_ms)).await,
            Self::Memory(memory) => {
                memory.set(key, bytes, ttl_ms);
                Ok(())
            }
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
            Self::Memory(memory) => {
                memory.set(key, bytes, ttl_ms);
                Ok(())
            }
            Self::Unusable(message) => Err(Self::unusable(message)),
        }
    }

    /// Deletes `key`; whether it existed (Redis: `UNLINK`, which frees the
    /// value off the main thread).
    pub(crate) async fn del(&self, key: &str) -> Result<bool, crate::Error> {
        match self {
            Self::Redis(redis) => Ok(redis.query_async::<u64>(unlink(key)).await? > 0),
            Self::Memory(memory) => Ok(memory.del(key)),
            Self::Unusable(message) => Err(Self::unusable(message)),
        }
    }

    /// Sync [`del`](Self::del).
    pub(crate) fn del_sync(&self, key: &str) -> Result<bool, crate::Error> {
        match self {
            Self::Redis(redis) => Ok(redis.query_sync::<u64>(&unlink(key))? > 0),
            Self::Memory(memory) => Ok(memory.del(key)),
            Self::Unusable(message) => Err(Self::unusable(message)),
        }
    }

    /// Deletes every key that starts with `prefix` (taken literally: glob
    /// characters in it match only themselves); how many were deleted.
    /// On Redis this walks the keyspace with `SCAN`, never `KEYS`.
    pub(crate) async fn delete_matching(&self, prefix: &str) -> Result<u64, crate::Error> {
        match self {
            Self::Redis(redis) => redis.delete_matching(prefix).await,
            Self::Memory(memory) => Ok(memory.delete_matching(prefix)),
            Self::Unusable(message) => Err(Self::unusable(message)),
        }
    }

    /// Sync [`delete_matching`](Self::delete_matching).
    pub(crate) fn delete_matching_sync(&self, prefix: &str) -> Result<u64, crate::Error> {
        match self {
            Self::Redis(redis) => redis.delete_matching_sync(prefix),
            Self::Memory(memory) => Ok(memory.delete_matching(prefix)),
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
                    .query_async(set_nx_px(lock_key, token, ttl_ms))
                    .await?;
                Ok(taken.is_some())
            }
            // One process: its flights already let one call compute.
            Self::Memory(_) => Ok(true),
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
            // One process: its flights already let one call compute.
            Self::Memory(_) => Ok(true),
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
                    .query_async(::redis::Cmd::mget(&[key, lock_key]))
                    .await?;
                Ok((value, lock.is_some()))
            }
            Self::Memory(memory) => Ok((memory.get(key), false)),
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
            Self::Memory(memory) => Ok((memory.get(key), false)),
            Self::Unusable(message) => Err(Self::unusable(message)),
        }
    }

    /// Deletes `lock_key` if it still holds `token`; whether it did.
    pub(crate) async fn unlock(&self, lock_key: &str, token: &str) -> Result<bool, crate::Error> {
        match self {
            Self::Redis(redis) => {
                let mut eval = ::redis::cmd("EVAL");
                eval.arg(UNLOCK_SOURCE).arg(1).arg(lock_key).arg(token);
                let deleted: u8 = redis.query_async(eval).await?;
                Ok(deleted == 1)
            }
            Self::Memory(_) => Ok(true),
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
            Self::Memory(_) => Ok(true),
            Self::Unusable(message) => Err(Self::unusable(message)),
        }
    }

    /// Checks that the store answers.
    pub(crate) async fn ping(&self) -> Result<(), crate::Error> {
        match self {
            Self::Redis(redis) => redis.query_async(::redis::cmd("PING")).await,
            Self::Memory(_) => Ok(()),
            Self::Unusable(message) => Err(Self::unusable(message)),
        }
    }

    /// Sync [`ping`](Self::ping).
    pub(crate) fn ping_sync(&self) -> Result<(), crate::Error> {
        match self {
            Self::Redis(redis) => redis.query_sync(&::redis::cmd("PING")),
            Self::Memory(_) => Ok(()),
            Self::Unusable(message) => Err(Self::unusable(message)),
        }
    }
}

fn set_px(key: &str, bytes: &[u8], ttl_ms: u64) -> ::redis::Cmd {
    let mut cmd = ::redis::cmd("SET");
    cmd.arg(key).arg(bytes).arg("PX").arg(ttl_ms);
    cmd
}

fn unlink(key: &str) -> ::redis::Cmd {
    let mut cmd = ::redis::cmd("UNLINK");
    cmd.arg(key);
    cmd
}

fn set_nx_px(key: &str, token: &str, ttl_ms: u64) -> ::redis::Cmd {
    let mut cmd = ::redis::cmd("SET");
    cmd.arg(key).arg(token).arg("NX").arg("PX").arg(ttl_ms);
    cmd
}
