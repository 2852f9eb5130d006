//! Keeps the [L1 tier](crate::local)'s tables (`tables.rs`) coherent with Redis through client-side
//! caching in broadcast mode: one dedicated RESP3 connection per cache
//! (`connection.rs`; per primary of a Redis Cluster, `cluster.rs`; one
//! server's loop is `server.rs`),
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

#[cfg(feature = "cluster")]
mod cluster;
mod connection;
mod server;

use std::sync::Weak;

#[cfg(feature = "cluster")]
use redis::Client;
use tokio::sync::oneshot;

use crate::backend::{Target, Timeouts};
use crate::runtimes::io_runtime;
use crate::tables::Tables;

/// What tracking needs to start: the Redis deployment and the prefix.
pub(crate) struct Start {
    target: Option<(Target, String, Timeouts)>,
    /// A Redis Cluster's seed nodes: tracking runs on every primary
    /// (`cluster.rs`); empty: one server.
    #[cfg(feature = "cluster")]
    seeds: Vec<Client>,
}

/// A running tracking task; it ends when this is dropped.
pub(crate) struct Tracker {
    _stop: oneshot::Sender<()>,
}

impl Start {
    /// Tracking of the keys under `prefix` on the server `target` (behind
    /// Sentinel: on the primary it names each time tracking connects).
    pub(crate) fn new(target: Target, prefix: String, timeouts: Timeouts) -> Self {
        Self {
            target: Some((target, prefix, timeouts)),
            #[cfg(feature = "cluster")]
            seeds: Vec::new(),
        }
    }

    /// Tracking of the keys under `prefix` on every primary of the Redis
    /// Cluster that `seeds` belong to; no tracking without seeds.
    #[cfg(feature = "cluster")]
    pub(crate) fn cluster(seeds: Vec<Client>, prefix: String, timeouts: Timeouts) -> Self {
        Self {
            target: seeds
                .first()
                .map(|seed| (Target::Server(seed.clone()), prefix, timeouts)),
            seeds,
        }
    }

    /// No tracking: for unit tests of the tier.
    #[cfg(test)]
    pub(crate) fn none() -> Self {
        Self {
            target: None,
            #[cfg(feature = "cluster")]
            seeds: Vec::new(),
        }
    }

    /// Starts tracking for `tables` on the io runtime; `None` if there is
    /// nothing to track or the runtime could not start (the tier stays off).
    pub(crate) fn spawn(self, tables: Weak<Tables>) -> Option<Tracker> {
        let (target, prefix, timeouts) = self.target?;
        let runtime = io_runtime()
            .inspect_err(|error| tracing::warn!(%error, "redis-cached: no L1 tier"))
            .ok()?;
        let (stop, stopped) = oneshot::channel();
        #[cfg(feature = "cluster")]
        if !self.seeds.is_empty() {
            runtime.spawn(cluster::track(
                self.seeds, prefix, timeouts, tables, stopped,
            ));
            return Some(Tracker { _stop: stop });
        }
        runtime.spawn(server::track(target, prefix, timeouts, tables, stopped));
        Some(Tracker { _stop: stop })
    }
}
