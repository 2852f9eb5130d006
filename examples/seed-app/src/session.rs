//! Sessions in Redis: tower-sessions' middleware (the cookie, the id, when a
//! session is saved or dropped) over a [`SessionStore`] written on this
//! crate's typed API: a session is one value under `<prefix>{<id>}`, set
//! with the session's expiry as its TTL and deleted at logout.
//!
//! Why not `tower-sessions-redis-store`: it talks to Redis through `fred`, a
//! second Redis client with its own connections, reconnection and TLS
//! settings, beside the `redis` crate this application (and the crate it
//! shows) already uses. The typed API is four short calls, and it brings
//! what the cache has: one connection per runtime, the breaker that stops
//! asking a Redis that is down, and no password in any error.

use std::time::Duration;

use async_trait::async_trait;
use redis_cached::Cache;
use tower_sessions::cookie::time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

/// The Redis key prefix of sessions: a session is `seed:session:{<id>}`.
pub const PREFIX: &str = "seed:session:";

/// Session records in Redis, through `cache`'s typed API.
#[derive(Clone)]
pub struct RedisSessionStore {
    cache: Cache,
}

impl std::fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessionStore")
            .field("prefix", &self.cache.prefix())
            .finish()
    }
}

impl RedisSessionStore {
    /// A store on `cache`, whose prefix should be [`PREFIX`].
    pub fn new(cache: Cache) -> Self {
        Self { cache }
    }
}

/// What the store keeps: the record as JSON text. Its data are
/// `serde_json::Value`s, which the cache's binary codec can't read back
/// (they need a self-describing format), and a string it stores as is.
fn encode(record: &Record) -> session_store::Result<String> {
    serde_json::to_string(record).map_err(|error| session_store::Error::Encode(error.to_string()))
}

fn backend(error: redis_cached::Error) -> session_store::Error {
    session_store::Error::Backend(error.to_string())
}

/// How long Redis should keep `record`: until its expiry, zero if past.
fn ttl(record: &Record) -> Duration {
    let left = record.expiry_date - OffsetDateTime::now_utc();
    Duration::try_from(left).unwrap_or(Duration::ZERO)
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // Ids are 128 random bits; a taken one is drawn again all the same.
        while self
            .cache
            .get::<String>(&record.id.to_string())
            .await
            .map_err(backend)?
            .is_some()
        {
            record.id = Id::default();
        }
        self.save(record).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let key = record.id.to_string();
        let ttl = ttl(record);
        if ttl.is_zero() {
            // Expired already: what it held must not stay readable.
            return self.delete(&record.id).await;
        }
        self.cache
            .set(&key, &encode(record)?, ttl)
            .await
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(json) = self
            .cache
            .get::<String>(&id.to_string())
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let record: Record = serde_json::from_str(&json)
            .map_err(|error| session_store::Error::Decode(error.to_string()))?;
        Ok((record.expiry_date > OffsetDateTime::now_utc()).then_some(record))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.cache
            .delete(&id.to_string())
            .await
            .map(drop)
            .map_err(backend)
    }
}
