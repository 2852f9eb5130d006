//! Tracking for the in-process tier of a Redis Cluster cache: the same
//! broadcast tracking as on one server (`server.rs`), on a connection to
//! every primary, since each primary reports only the writes it serves.
//!
//! The tier is live only while every primary's connection is: when any of
//! them drops (a disconnection push, a failed `PING`), or the set of
//! primaries changes (a failover, a primary added or removed, checked every
//! [`CHECK_EVERY`]), the tier is flushed and all the connections are made
//! again from the slot map that `CLUSTER SLOTS` gives then. Slots that move
//! between tracked primaries need nothing: the old primary reports the
//! key's deletion, the new one its later writes.
//!
//! Each primary is reached as the seed that named it is: with its user and
//! password, and over TLS with its certificates if it is `rediss://`.

use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{Client, ConnectionAddr, Value};
use tokio::sync::{Notify, oneshot};

use super::connection::{MAX_BACKOFF, Mode, connect};
use crate::backend::Timeouts;
use crate::tables::Tables;

/// How often the connections are `PING`ed and the primaries re-read.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Keeps tracking up on every primary until `stopped` fires or the tier is gone.
pub(super) async fn track(
    seeds: Vec<Client>,
    prefix: String,
    timeouts: Timeouts,
    tables: Weak<Tables>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let down = Arc::new(Notify::new());
        match connect_all(&seeds, &prefix, &timeouts, &tables, &down).await {
            Ok((primaries, mut conns)) => {
                let Some(live) = tables.upgrade() else { return };
                live.set_live(true);
                drop(live);
                backoff = Duration::from_millis(50);
                let mut check = tokio::time::interval(CHECK_EVERY);
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        () = down.notified() => break,
                        _ = check.tick() => {
                            if let Err(why) = still_tracking(&mut conns, &primaries).await {
                                tracing::warn!(%why, "redis-cached: L1 tracking on the cluster lost");
                                break;
                            }
                        }
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "redis-cached: L1 tracking unavailable on the cluster; serving from Redis");
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

/// A tracking connection to each primary that `seeds` report.
async fn connect_all(
    seeds: &[Client],
    prefix: &str,
    timeouts: &Timeouts,
    tables: &Weak<Tables>,
    down: &Arc<Notify>,
) -> redis::RedisResult<(Vec<(String, u16)>, Vec<MultiplexedConnection>)> {
    let mut last_error = None;
    for seed in seeds {
        match primaries_from(seed, timeouts).await {
            Ok(primaries) => {
                let mut conns = Vec::with_capacity(primaries.len());
                for (host, port) in &primaries {
                    let info = seed.get_connection_info();
                    let info = info.clone().set_addr(at(info.addr(), host, *port));
                    let client = Client::open(info)?;
                    conns.push(
                        connect(&client, Mode::Broadcast(prefix), timeouts, tables, down).await?,
                    );
                }
                return Ok((primaries, conns));
            }
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error
        .unwrap_or_else(|| redis::RedisError::from(std::io::Error::other("no seed node given"))))
}

/// The address of the node at `host:port`, reached as `seed` is: over
/// TLS with the same certificates, if the seed is `rediss://`.
fn at(seed: &ConnectionAddr, host: &str, port: u16) -> ConnectionAddr {
    match seed {
        ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host: host.to_owned(),
            port,
            insecure: *insecure,
            tls_params: tls_params.clone(),
        },
        _ => ConnectionAddr::Tcp(host.to_owned(), port),
    }
}

/// The primaries, as `seed` sees them.
async fn primaries_from(
    seed: &Client,
    timeouts: &Timeouts,
) -> redis::RedisResult<Vec<(String, u16)>> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeouts.connect))
        .set_response_timeout(Some(timeouts.response));
    let mut conn = seed
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    primaries(&mut conn).await
}

/// The address of each primary that serves slots, from `CLUSTER SLOTS`, sorted.
async fn primaries(conn: &mut MultiplexedConnection) -> redis::RedisResult<Vec<(String, u16)>> {
    let ranges: Vec<Vec<Value>> = redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await?;
    let mut primaries = Vec::new();
    for range in ranges {
        let Some(Value::Array(primary)) = range.get(2) else {
            continue;
        };
        if let [host, port, ..] = primary.as_slice()
            && let (Ok(host), Ok(port)) = (
                redis::from_redis_value_ref::<String>(host),
                redis::from_redis_value_ref::<u16>(port),
            )
            && !primaries.contains(&(host.clone(), port))
        {
            primaries.push((host, port));
        }
    }
    primaries.sort();
    if primaries.is_empty() {
        return Err(redis::RedisError::from(std::io::Error::other(
            "CLUSTER SLOTS named no primary",
        )));
    }
    Ok(primaries)
}

/// Checks that every connection answers and the primaries are still `primaries`.
async fn still_tracking(
    conns: &mut [MultiplexedConnection],
    primaries: &[(String, u16)],
) -> Result<(), String> {
    for conn in conns.iter_mut() {
        redis::cmd("PING")
            .query_async::<()>(conn)
            .await
            .map_err(|e| e.to_string())?;
    }
    let now = match conns.first_mut() {
        Some(conn) => self::primaries(conn).await.map_err(|e| e.to_string())?,
        None => return Err("no primary".to_owned()),
    };
    if now != primaries {
        return Err(format!("the primaries changed: {primaries:?} -> {now:?}"));
    }
    Ok(())
}
