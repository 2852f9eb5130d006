//! A tracking connection: RESP3, named [`CLIENT_NAME`], with `CLIENT
//! TRACKING ON` (default mode: Redis reports writes of the keys this
//! connection read), its pushes applied to the tables as they are read.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::Notify;

use crate::backend::Timeouts;
use crate::tables::Tables;

/// The name every tracking connection gives itself (`CLIENT SETNAME`).
pub(crate) const CLIENT_NAME: &str = "redis-cached-tracking";

/// The longest wait between two attempts to re-establish tracking.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Where the pushes of one tracking connection go.
#[derive(Clone)]
pub(super) struct Sink {
    pub(super) tables: Weak<Tables>,
    /// Told when the connection ends.
    pub(super) down: Arc<Notify>,
}

/// A number for a new connection, unique in this process: the tables know
/// each connection by it (see `Readers`).
fn next_serial() -> u64 {
    static SERIAL: AtomicU64 = AtomicU64::new(1);
    SERIAL.fetch_add(1, Relaxed)
}

/// Opens a tracking connection to the server `client` names; returns it
/// with its serial. Its pushes invalidate `sink.tables` (a flush of the
/// server's database, or the connection's end, drops the entries of the
/// slots it serves: all of them on one server), and its end notifies
/// `sink.down`.
pub(super) async fn connect(
    client: &Client,
    timeouts: &Timeouts,
    sink: Sink,
) -> redis::RedisResult<(u64, MultiplexedConnection)> {
    let serial = next_serial();
    let info = client.get_connection_info().clone();
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    let client = Client::open(info.set_redis_settings(settings))?;
    let pushes = move |push: PushInfo| {
        receive(&sink, serial, push);
        Ok::<(), std::convert::Infallible>(())
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
    redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .query_async::<()>(&mut conn)
        .await?;
    Ok((serial, conn))
}

/// Applies one push of the tracking connection numbered `serial`.
fn receive(sink: &Sink, serial: u64, push: PushInfo) {
    let Some(tables) = sink.tables.upgrade() else {
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
            // A null key list: the server's database was flushed.
            _ => tables.flushed_by(serial),
        },
        PushKind::Disconnection => {
            tables.lost(serial);
            sink.down.notify_one();
        }
        _ => {}
    }
}
