//! Where cached values live, and the operations a call needs of it, each
//! written once over [`Io`]: a Redis command for the Redis backends (the
//! same one, most of them, for one server and a cluster), an immediate
//! answer for the in-memory one.

mod breaker;
#[cfg(feature = "cluster")]
mod cluster;
mod credentials;
mod io;
#[cfg(feature = "memory")]
mod memory;
mod redis;
mod sentinel;
mod slots;
#[cfg(feature = "sync")]
mod sync_pool;
mod tags;
#[cfg(all(test, feature = "sync", feature = "memory"))]
mod tests;
mod tls;

use std::future::Future;
use std::time::Duration;

use ::redis::{Cmd, FromRedisValue};

#[cfg(feature = "cluster")]
pub(crate) use self::cluster::ClusterBackend;
pub(crate) use self::credentials::Credentials;
pub(crate) use self::io::{Async, Io, Remote};
#[cfg(feature = "sync")]
pub(crate) use self::io::{Blocking, block_on};
#[cfg(feature = "memory")]
pub(crate) use self::memory::MemoryBackend;
pub(crate) use self::redis::RedisBackend;
#[cfg(feature = "sentinel")]
pub(crate) use self::sentinel::SentinelSpec;
#[cfg(feature = "local")]
pub(crate) use self::sentinel::Target;
pub(crate) use self::sentinel::is_url as is_sentinel_url;
pub(crate) use self::tls::Tls;
use crate::error::{Error, Reach};
use crate::runtimes::RunOn;

/// Deletes `KEYS[1]` only if it holds `ARGV[1]`: a lock is released by its
/// owner only, never by a process whose lock expired and was taken over.
const UNLOCK: &str = r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end"#;

/// How many keys one `SCAN` step looks at.
const SCAN_COUNT: u32 = 500;

/// Connection settings a backend needs.
#[derive(Debug, Clone)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) response: Duration,
}

/// The store behind a [`Cache`](crate::Cache).
// One per cache, behind its `Arc`: the variants' sizes don't matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Backend {
    /// A Redis deployment.
    Redis(RedisBackend),
    /// A Redis Cluster.
    #[cfg(feature = "cluster")]
    Cluster(ClusterBackend),
    /// Values kept in this process (`mem://`), with the same semantics as Redis.
    #[cfg(feature = "memory")]
    Memory(MemoryBackend),
    /// A cache whose configuration could not be used (say, a malformed
    /// `REDIS_CACHED_URL`): every operation fails with this message, so every
    /// cached call fails open and counts an error. The problem was logged
    /// once, when the cache was made.
    Unusable(String),
}

impl Backend {
    /// Sends async commands where `run_on` says (the Redis deployments;
    /// the others send none).
    pub(crate) fn set_run_on(&mut self, run_on: RunOn) {
        match self {
            Self::Redis(redis) => redis.set_run_on(run_on),
            #[cfg(feature = "cluster")]
            Self::Cluster(cluster) => cluster.set_run_on(run_on),
            #[cfg(feature = "memory")]
            Self::Memory(_) => {}
            Self::Unusable(_) => {}
        }
    }

    /// Whether `error`, a failure of this backend, was logged already: a
    /// refusal of the open breaker, a connection failure while the breaker
    /// is open (it logged why when it opened), a cluster's refused password
    /// after the first, or any failure of an unusable backend (logged when
    /// it was made).
    pub(crate) fn logged(&self, error: &Error) -> bool {
        match self {
            Self::Redis(redis) => {
                matches!(error, Error::Unavailable(_))
                    || (error.reach() != Reach::Answered && redis.is_open())
            }
            // No breaker: one dead node must not stop calls to the others.
            #[cfg(feature = "cluster")]
            Self::Cluster(cluster) => cluster.logged(error),
            #[cfg(feature = "memory")]
            Self::Memory(_) => false,
            Self::Unusable(_) => true,
        }
    }

    /// The bytes stored under `key`, if any.
    pub(crate) async fn get<I: Io>(&self, io: I, key: &str) -> Result<Option<Vec<u8>>, Error> {
        match self.usable()? {
            Usable::Redis(redis) => io.query(&redis, &Cmd::get(key)).await,
            #[cfg(feature = "memory")]
            Usable::Memory(memory) => Ok(memory.get(key)),
        }
    }

    /// The bytes stored under `key`, if any, with the key's TTL reset to
    /// `ttl_ms` milliseconds in the same round trip (`GETEX … PX`, Redis
    /// 6.2+): `sliding = true`.
    pub(crate) async fn get_ex<I: Io>(
        &self,
        io: I,
        key: &str,
        ttl_ms: u64,
    ) -> Result<Option<Vec<u8>>, Error> {
        match self.usable()? {
            Usable::Redis(redis) => io.query(&redis, &get_ex(key, ttl_ms)).await,
            #[cfg(feature = "memory")]
            Usable::Memory(memory) => Ok(memory.get_ex(key, ttl_ms)),
        }
    }

    /// Stores `bytes` under `key` for `ttl_ms` milliseconds (`SET … PX`).
    pub(crate) async fn set<I: Io>(
        &self,
        io: I,
        key: &str,
        bytes: &[u8],
        ttl_ms: u64,
    ) -> Result<(), Error> {
        match self.usable()? {
            Usable::Redis(redis) => io.query(&redis, &set(key, bytes, ttl_ms)).await,
            #[cfg(feature = "memory")]
            Usable::Memory(memory) => {
                memory.set(key, bytes, ttl_ms);
                Ok(())
            }
        }
    }

    /// Stores `bytes` under `key` for `ttl_ms` milliseconds, named in each
    /// tag set of `sets`, whose TTLs are raised to cover it (see `tags.rs`).
    pub(crate) async fn set_tagged<I: Io>(
        &self,
        io: I,
        key: &str,
        bytes: &[u8],
        ttl_ms: u64,
        sets: &[String],
    ) -> Result<(), Error> {
        match self.usable()? {
            Usable::Redis(Deployment::Redis(redis)) => {
                tags::set_tagged_at_once(io, redis, key, bytes, ttl_ms, sets).await
            }
            #[cfg(feature = "cluster")]
            Usable::Redis(Deployment::Cluster(cluster)) => {
                tags::set_tagged_in_order(io, cluster, key, bytes, ttl_ms, sets).await
            }
            #[cfg(feature = "memory")]
            Usable::Memory(memory) => {
                memory.set_tagged(key, bytes, ttl_ms, sets);
                Ok(())
            }
        }
    }

    /// Deletes every key the tag set `tag_set` names that `is_entry`
    /// accepts, and the set's members; how many keys were deleted.
    pub(crate) async fn invalidate_tag<I: Io>(
        &self,
        io: I,
        tag_set: &str,
        is_entry: impl Fn(&str) -> bool,
    ) -> Result<u64, Error> {
        match self.usable()? {
            Usable::Redis(redis) => tags::invalidate(io, &redis, tag_set, is_entry).await,
            #[cfg(feature = "memory")]
            Usable::Memory(memory) => Ok(memory.invalidate_tag(tag_set)),
        }
    }

    /// Deletes `key`; whether it existed (Redis: `UNLINK`, which frees the
    /// value off the main thread).
    pub(crate) async fn del<I: Io>(&self, io: I, key: &str) -> Result<bool, Error> {
        match self.usable()? {
            Usable::Redis(redis) => Ok(io.query::<u64>(&redis, &unlink(&[key])).await? > 0),
            #[cfg(feature = "memory")]
            Usable::Memory(memory) => Ok(memory.del(key)),
        }
    }

    /// Deletes every key that starts with `prefix` (taken literally: glob
    /// characters in it match only themselves); how many were deleted.
    /// On Redis: `SCAN … MATCH <prefix>* COUNT 500` (never `KEYS`), each
    /// batch `UNLINK`ed as it comes; on a cluster, on every primary.
    pub(crate) async fn delete_matching<I: Io>(&self, io: I, prefix: &str) -> Result<u64, Error> {
        match self.usable()? {
            Usable::Redis(Deployment::Redis(redis)) => {
                delete_scanned(io, redis, redis, &match_prefix(prefix)).await
            }
            #[cfg(feature = "cluster")]
            Usable::Redis(Deployment::Cluster(cluster)) => {
                cluster.delete_matching(io, &match_prefix(prefix)).await
            }
            #[cfg(feature = "memory")]
            Usable::Memory(memory) => Ok(memory.delete_matching(prefix)),
        }
    }

    /// Takes `lock_key` for `token` unless someone holds it (`SET … NX PX`);
    /// whether it was taken.
    pub(crate) async fn try_lock<I: Io>(
        &self,
        io: I,
        lock_key: &str,
        token: &str,
        ttl_ms: u64,
    ) -> Result<bool, Error> {
        match self.usable()? {
            Usable::Redis(redis) => {
                let lock = lock(lock_key, token, ttl_ms);
                Ok(io.query::<Option<String>>(&redis, &lock).await?.is_some())
            }
            // One process: its flights already let one call compute.
            #[cfg(feature = "memory")]
            Usable::Memory(_) => Ok(true),
        }
    }

    /// The bytes under `key`, and whether `lock_key` exists, in one round
    /// trip (`MGET`; the two keys share a hash slot).
    pub(crate) async fn peek<I: Io>(
        &self,
        io: I,
        key: &str,
        lock_key: &str,
    ) -> Result<(Option<Vec<u8>>, bool), Error> {
        match self.usable()? {
            Usable::Redis(redis) => {
                let (value, lock): (Option<Vec<u8>>, Option<Vec<u8>>) =
                    io.query(&redis, &Cmd::mget(&[key, lock_key])).await?;
                Ok((value, lock.is_some()))
            }
            #[cfg(feature = "memory")]
            Usable::Memory(memory) => Ok((memory.get(key), false)),
        }
    }

    /// Deletes `lock_key` if it still holds `token`; whether it did.
    pub(crate) async fn unlock<I: Io>(
        &self,
        io: I,
        lock_key: &str,
        token: &str,
    ) -> Result<bool, Error> {
        match self.usable()? {
            Usable::Redis(redis) => {
                Ok(io.query::<u8>(&redis, &unlock(lock_key, token)).await? == 1)
            }
            #[cfg(feature = "memory")]
            Usable::Memory(_) => Ok(true),
        }
    }

    /// Checks that the store answers.
    pub(crate) async fn ping<I: Io>(&self, io: I) -> Result<(), Error> {
        match self.usable()? {
            // Even while the breaker is open: a health check asks Redis.
            Usable::Redis(Deployment::Redis(redis)) => io.ping(redis).await,
            #[cfg(feature = "cluster")]
            Usable::Redis(Deployment::Cluster(cluster)) => {
                io.query(cluster, &::redis::cmd("PING")).await
            }
            #[cfg(feature = "memory")]
            Usable::Memory(_) => Ok(()),
        }
    }

    /// What answers this backend's operations, or, for an unusable one,
    /// the error each of them fails with.
    fn usable(&self) -> Result<Usable<'_>, Error> {
        match self {
            Self::Redis(redis) => Ok(Usable::Redis(Deployment::Redis(redis))),
            #[cfg(feature = "cluster")]
            Self::Cluster(cluster) => Ok(Usable::Redis(Deployment::Cluster(cluster))),
            #[cfg(feature = "memory")]
            Self::Memory(memory) => Ok(Usable::Memory(memory)),
            Self::Unusable(message) => Err(unusable(message)),
        }
    }
}

/// What answers the operations of a [`Backend`] that is usable.
enum Usable<'a> {
    /// A Redis deployment, sent a command for each.
    Redis(Deployment<'a>),
    /// This process's memory, which answers at once.
    #[cfg(feature = "memory")]
    Memory(&'a MemoryBackend),
}

/// A Redis deployment: one server or a cluster. Most operations send both
/// the same command, so each is written once, over this one [`Remote`],
/// which picks the deployment where it sends the command.
#[derive(Clone, Copy)]
enum Deployment<'a> {
    /// One server, or the primary its sentinels name.
    Redis(&'a RedisBackend),
    /// A Redis Cluster.
    #[cfg(feature = "cluster")]
    Cluster(&'a ClusterBackend),
}

impl Remote for Deployment<'_> {
    fn query_async<T: FromRedisValue + Send + 'static>(
        &self,
        cmd: &Cmd,
    ) -> impl Future<Output = Result<T, Error>> + Send {
        let deployment = *self;
        async move {
            match deployment {
                Self::Redis(redis) => redis.query_async(cmd).await,
                #[cfg(feature = "cluster")]
                Self::Cluster(cluster) => cluster.query_async(cmd).await,
            }
        }
    }

    #[cfg(feature = "sync")]
    fn query_blocking<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error> {
        match self {
            Self::Redis(redis) => redis.query_blocking(cmd),
            #[cfg(feature = "cluster")]
            Self::Cluster(cluster) => cluster.query_blocking(cmd),
        }
    }
}

fn unusable(message: &str) -> Error {
    Error::Config(message.to_owned())
}

/// `SCAN`s `scan_on` for keys matching `pattern` and `UNLINK`s each batch
/// through `unlink_on` (on a cluster: the scanned node, and the cluster,
/// which sends each key to its slot's node); how many were deleted.
async fn delete_scanned<I: Io>(
    io: I,
    scan_on: &impl Remote,
    unlink_on: &impl Remote,
    pattern: &str,
) -> Result<u64, Error> {
    let mut cursor = 0;
    let mut deleted = 0;
    loop {
        let mut scan = ::redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        let (next, keys): (u64, Vec<Vec<u8>>) = io.query(scan_on, &scan).await?;
        if !keys.is_empty() {
            deleted += io.query::<u64>(unlink_on, &unlink(&keys)).await?;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

/// `GETEX key PX ttl_ms`.
fn get_ex(key: &str, ttl_ms: u64) -> Cmd {
    let mut cmd = ::redis::cmd("GETEX");
    cmd.arg(key).arg("PX").arg(ttl_ms);
    cmd
}

/// `SET key bytes PX ttl_ms`.
fn set(key: &str, bytes: &[u8], ttl_ms: u64) -> Cmd {
    let mut cmd = ::redis::cmd("SET");
    cmd.arg(key).arg(bytes).arg("PX").arg(ttl_ms);
    cmd
}

/// `SET lock_key token NX PX ttl_ms`.
fn lock(lock_key: &str, token: &str, ttl_ms: u64) -> Cmd {
    let mut cmd = ::redis::cmd("SET");
    cmd.arg(lock_key).arg(token).arg("NX").arg("PX").arg(ttl_ms);
    cmd
}

/// The compare-and-delete of `lock_key` by its `token`'s owner.
fn unlock(lock_key: &str, token: &str) -> Cmd {
    let mut eval = ::redis::cmd("EVAL");
    eval.arg(UNLOCK).arg(1).arg(lock_key).arg(token);
    eval
}

/// `UNLINK` of `keys`; answers how many existed.
fn unlink<K: ::redis::ToRedisArgs>(keys: &[K]) -> Cmd {
    let mut cmd = ::redis::cmd("UNLINK");
    cmd.arg(keys);
    cmd
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
