//! Keeps the [L1 tier](crate::local)'s tables (`tables.rs`) coherent with Redis through client-side
//! caching in broadcast mode: one dedicated RESP3 connection per cache,
//! named `redis-cached-tracking`, runs `CLIENT TRACKING ON BCAST PREFIX
//! <cache prefix>`. From then on Redis pushes an `invalidate` message with
//! the names of the keys that any client writes, deletes, or that expire,
//! under the prefix; a null one when the database is flushed. Broadcast mode
//! needs no reads on this connection, so reads keep going over the shared
//! async connection and the sync pool.
//!
//! Each message is applied as it is read, on the io runtime. The tier is
//! live (takes inserts) only while this connection is: when it drops (a
//! disconnection push, or a failed `PING` every few seconds), the tier is
//! flushed and calls read Redis until it is re-established, in the background,
//! with backoff.

use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::{Notify, oneshot};

use crate::backend::Timeouts;
use crate::runtimes::io_runtime;
use crate::tables::Tables;

/// The name the tracking connection gives itself (`CLIENT SETNAME`).
pub(crate) const CLIENT_NAME: &str = "redis-cached-tracking";

/// How often the tracking connection is checked with `PING`.
const PING_EVERY: Duration = Duration::from_secs(5);

/// The longest wait between two attempts to re-establish tracking.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What tracking needs to start: the Redis deployment and the prefix.
pub(crate) struct Start {
    target: Option<(Client, String, Timeouts)>,
    /// A Redis Cluster's seed nodes: tracking runs on every primary
    /// (`cluster_tracking.rs`); empty: one server.
    seeds: Vec<Client>,
}

/// A running tracking task; it ends when this is dropped.
pub(crate) struct Tracker {
    _stop: oneshot::Sender<()>,
}

impl Start {
    /// Tracking of the keys under `prefix` on the deployment of `client`.
    pub(crate) fn new(client: Client, prefix: String, timeouts: Timeouts) -> Self {
        Self {
            target: Some((client, prefix, timeouts)),
            seeds: Vec::new(),
        }
    }

    /// Tracking of the keys under `prefix` on every primary of the Redis
    /// Cluster that `seeds` belong to; no tracking without seeds.
    pub(crate) fn cluster(seeds: Vec<Client>, prefix: String, timeouts: Timeouts) -> Self {
        Self {
            target: seeds.first().map(|seed| (seed.clone(), prefix, timeouts)),
            seeds,
        }
    }

    /// No tracking: for unit tests of the tier.
    #[cfg(test)]
    pub(crate) fn none() -> Self {
        Self {
            target: None,
            seeds: Vec::new(),
        }
    }

    /// Starts tracking for `tables` on the io runtime; `None` if there is
    /// nothing to track or the runtime could not start (the tier stays off).
    pub(crate) fn spawn(self, tables: Weak<Tables>) -> Option<Tracker> {
        let (client, prefix, timeouts) = self.target?;
        let runtime = io_runtime()
            .inspect_err(|error| tracing::warn!(%error, "redis-cached: no L1 tier"))
            .ok()?;
        let (stop, stopped) = oneshot::channel();
        if self.seeds.is_empty() {
            runtime.spawn(track(client, prefix, timeouts, tables, stopped));
        } else {
            let track =
                crate::cluster_tracking::track(self.seeds, prefix, timeouts, tables, stopped);
            runtime.spawn(track);
        }
        Some(Tracker { _stop: stop })
    }
}

/// Keeps tracking up until `stopped` fires or the tier is gone.
async fn track(
    client: Client,
    prefix: String,
    timeouts: Timeouts,
    tables: Weak<Tables>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut backoff = Duration::from_millis(50);
    // Whether this outage was logged at `warn`: once per outage, not per attempt.
    let mut reported = false;
    loop {
        let down = Arc::new(Notify::new());
        match connect(&client, &prefix, &timeouts, &tables, &down).await {
            Ok(mut conn) => {
                let Some(live) = tables.upgrade() else { return };
                live.set_live(true);
                drop(live);
                backoff = Duration::from_millis(50);
                reported = false;
                let mut ping = tokio::time::interval(PING_EVERY);
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        () = down.notified() => break,
                        _ = ping.tick() => {
                            let pong = redis::cmd("PING").query_async::<()>(&mut conn).await;
                            if let Err(error) = pong {
                                tracing::warn!(%error, "redis-cached: L1 tracking connection lost");
                                reported = true;
                                break;
                            }
                        }
                    }
                }
            }
            Err(error) if reported => {
                tracing::debug!(%error, "redis-cached: L1 tracking still unavailable");
            }
            Err(error) => {
                tracing::warn!(%error, "redis-cached: L1 tracking unavailable; serving from Redis");
                reported = true;
            }
        }
        match tables.upgrade() {
            Some(tables) => tables.set_live(false),
            None => return,
        }
        tokio::select! {
            _ = &mut stopped => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Opens the tracking connection; its pushes invalidate `tables`, and its
/// end notifies `down`.
pub(crate) async fn connect(
    client: &Client,
    prefix: &str,
    timeouts: &Timeouts,
    tables: &Weak<Tables>,
    down: &Arc<Notify>,
) -> redis::RedisResult<MultiplexedConnection> {
    let info = client.get_connection_info().clone();
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    let client = Client::open(info.set_redis_settings(settings))?;
    let pushes = {
        let tables = tables.clone();
        let down = down.clone();
        move |push: PushInfo| {
            receive(&tables, &down, push);
            Ok::<(), std::convert::Infallible>(())
        }
    };
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeouts.connect))
        .set_response_timeout(Some(timeouts.response))
        .set_push_sender(pushes);
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(CLIENT_NAME)
        .query_async::<()>(&mut conn)
        .await?;
    let mut tracking = redis::cmd("CLIENT");
    tracking.arg("TRACKING").arg("ON").arg("BCAST");
    if !prefix.is_empty() {
        tracking.arg("PREFIX").arg(prefix);
    }
    tracking.query_async::<()>(&mut conn).await?;
    Ok(conn)
}

/// Applies one push of the tracking connection.
fn receive(tables: &Weak<Tables>, down: &Notify, push: PushInfo) {
    let Some(tables) = tables.upgrade() else {
        return;
    };
    match push.kind {
        PushKind::Invalidate => match push.data.first() {
            Some(Value::Array(keys)) => {
                let keys: Vec<&[u8]> = keys
                    .iter()
                    .filter_map(|key| match key {
                        Value::BulkString(bytes) => Some(bytes.as_slice()),
                        _ => None,
                    })
                    .collect();
                tables.invalidate(&keys);
            }
            // A null key list: the database was flushed.
            _ => tables.flush(),
        },
        PushKind::Disconnection => {
            tables.set_live(false);
            down.notify_one();
        }
        _ => {}
    }
}
