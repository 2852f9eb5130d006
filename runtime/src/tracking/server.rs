//! Tracking on one server: the connection, kept up with a `PING` every few
//! seconds and re-established with backoff, is the one the values kept are
//! confirmed over (see `tables.rs`); while it is down the tier is flushed
//! and takes nothing.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

use super::connection::{MAX_BACKOFF, Sink, connect};
use crate::backend::{Target, Timeouts};
use crate::tables::{Readers, Tables};

/// How often the tracking connection is checked with `PING`.
const PING_EVERY: Duration = Duration::from_secs(5);

/// Keeps tracking up until `stopped` fires or the tier is gone; each
/// connection goes to the node `target` names at the time.
pub(super) async fn track(
    target: Target,
    timeouts: Timeouts,
    tables: Weak<Tables>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut backoff = Duration::from_millis(50);
    // Whether this outage was logged at `warn`: once per outage, not per attempt.
    let mut reported = false;
    loop {
        let down = Arc::new(Notify::new());
        let sink = Sink {
            tables: tables.clone(),
            down: down.clone(),
        };
        let connected = match target.client(timeouts.connect).await {
            Ok(client) => connect(&client, &timeouts, sink).await,
            Err(error) => Err(error),
        };
        match connected {
            Ok((serial, mut conn)) => {
                let Some(live) = tables.upgrade() else { return };
                live.set_readers(Some(Readers::one(serial, conn.clone())));
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
            // The readers first: a ticket that still got the old one took
            // its generation before this flush, so its value is not kept.
            Some(tables) => {
                tables.set_readers(None);
                tables.set_live(false);
            }
            None => return,
        }
        tokio::select! {
            _ = &mut stopped => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
