//! The application's handles on Redis, shared by every request and the
//! worker: the reconnecting connection for its own commands, the queue's
//! storage, the events channel, and whether Redis answered lately.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis_cached::Cache;

use crate::events::Events;
use crate::tasks::Storage;

/// How long a command may take before the page says Redis is unavailable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long connecting may take (a stopped Redis refuses at once; this
/// bounds a Redis that does not answer at all).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How often the health check pings.
const PING_EVERY: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct AppState {
    /// The app's own commands: the sorted set, counters, `PUBLISH`.
    pub conn: ConnectionManager,
    /// Redis itself, for the pub/sub connection.
    pub client: redis::Client,
    /// The cache `#[redis_cached]` functions use (the default cache).
    pub cache: Cache,
    pub tasks: Storage,
    pub events: Events,
    up: Arc<AtomicBool>,
}

impl AppState {
    /// Makes the handles; connects to nothing yet, so it works with Redis
    /// down, and every handle connects (again) on its own when Redis is back.
    pub fn new(redis_url: &str, cache: Cache) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(redis_url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            // A page waits for one retry at most, then says Redis is down.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(Self {
            tasks: crate::tasks::storage(conn.clone()),
            conn,
            client,
            cache,
            events: Events::new(),
            up: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Whether Redis answered the last health check.
    pub fn redis_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Pings Redis through the cache every second, for the pages' banner.
    /// A ping also lets cached calls use Redis again at once after it comes
    /// back (see `Cache::ping`), instead of after the cache's breaker's wait.
    pub fn spawn_health_check(&self) {
        let state = self.clone();
        tokio::spawn(async move {
            loop {
                let up = state.cache.ping().await.is_ok();
                if state.up.swap(up, Ordering::Relaxed) != up {
                    if up {
                        tracing::info!("Redis answers");
                    } else {
                        tracing::warn!(
                            "Redis does not answer; sessions and the queue are unavailable, computations run uncached"
                        );
                    }
                }
                tokio::time::sleep(PING_EVERY).await;
            }
        });
    }

    /// Waits for the first health check, so the first page knows.
    pub async fn check_now(&self) {
        let up = self.cache.ping().await.is_ok();
        self.up.store(up, Ordering::Relaxed);
    }
}
