//! Where cached values live.

mod memory;
mod redis;
#[cfg(test)]
mod tests;

pub(crate) use self::memory::MemoryBackend;
pub(crate) use self::redis::{RedisBackend, Timeouts};

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
            Self::Redis(redis) => redis.query_async(::redis::cmd("GET").arg(key)).await,
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
            Self::Redis(redis) => redis.query_async(&set_px(key, bytes, ttl_ms)).await,
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
            Self::Redis(redis) => Ok(redis.query_async::<u64>(&unlink(key)).await? > 0),
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

    /// Checks that the store answers.
    pub(crate) async fn ping(&self) -> Result<(), crate::Error> {
        match self {
            Self::Redis(redis) => redis.query_async(&::redis::cmd("PING")).await,
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
