//! The tracking connection itself: RESP3, named [`CLIENT_NAME`], with
//! `CLIENT TRACKING ON` (default mode: Redis reports writes of the keys this
//! connection read) or `CLIENT TRACKING ON BCAST PREFIX <prefix>` (every
//! write under the prefix), its pushes applied to the tables as they are
//! read.

use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::Notify;

use crate::backend::Timeouts;
use crate::tables::Tables;

/// The name the tracking connection gives itself (`CLIENT SETNAME`).
pub(crate) const CLIENT_NAME: &str = "redis-cached-tracking";

/// The longest wait between two attempts to re-establish tracking.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What a tracking connection asks Redis to report.
pub(super) enum Mode<'a> {
    /// The keys that this connection itself reads (`CLIENT TRACKING ON`).
    Read,
    /// Every key under this prefix (`CLIENT TRACKING ON BCAST PREFIX`): on
    /// a Redis Cluster only.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    Broadcast(&'a str),
}

/// Opens the tracking connection; its pushes invalidate `tables`, and its
/// end notifies `down`.
pub(super) async fn connect(
    client: &Client,
    mode: Mode<'_>,
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
    tracking.arg("TRACKING").arg("ON");
    if let Mode::Broadcast(prefix) = mode {
        tracking.arg("BCAST");
        if !prefix.is_empty() {
            tracking.arg("PREFIX").arg(prefix);
        }
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
