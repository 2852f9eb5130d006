//! Where cached values live.

mod redis;

pub(crate) use self::redis::{RedisBackend, Timeouts};

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
