//! Keeps the [L1 tier](crate::local)'s tables (`tables.rs`) coherent with
//! Redis through client-side caching in default mode (`CLIENT TRACKING
//! ON`), over dedicated RESP3 connections (`connection.rs`), named
//! `redis-cached-tracking`: one per cache on one server (`server.rs`), one
//! per primary on a Redis Cluster (`cluster.rs`, which also follows the
//! slot map).
//!
//! A value is kept only once the tracking connection of its server (of its
//! slot's primary) has read it too (a *fill*, see `tables.rs`), so Redis
//! remembers exactly the keys this process keeps and reports a write only
//! to the processes that read the key. No other connection takes part: data
//! connections (and the cluster client's node connections) that break and
//! are remade need nothing, and no `REDIRECT` has to follow a tracking
//! connection's client id.
//!
//! Redis pushes an `invalidate` message with the names of the keys written,
//! deleted or expired; a null one when the database is flushed. Each is
//! applied as it is read, on the io runtime. Values are kept only while
//! tracking is up: when a connection drops (a disconnection push, or a
//! failed `PING`), the entries it covered (all of them on one server, its
//! primary's slots on a cluster) are dropped and calls read Redis until it
//! is re-established, in the background, with backoff.

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

/// What tracking needs to start: the Redis deployment.
pub(crate) struct Start {
    target: Option<(Target, Timeouts)>,
    /// A Redis Cluster's seed nodes, through which its primaries are found
    /// (`cluster.rs`); no seeds: one server.
    #[cfg(feature = "cluster")]
    seeds: Vec<Client>,
}

/// A running tracking task; it ends when this is dropped.
pub(crate) struct Tracker {
    _stop: oneshot::Sender<()>,
}

impl Start {
    /// Tracking of the keys that the tier reads from the server `target`
    /// names (behind Sentinel: the primary it names each time tracking
    /// connects).
    pub(crate) fn new(target: Target, timeouts: Timeouts) -> Self {
        Self {
            target: Some((target, timeouts)),
            #[cfg(feature = "cluster")]
            seeds: Vec::new(),
        }
    }

    /// Tracking of the keys that the tier reads from the Redis Cluster that
    /// `seeds` belong to, on each of its primaries; no tracking without seeds.
    #[cfg(feature = "cluster")]
    pub(crate) fn cluster(seeds: Vec<Client>, timeouts: Timeouts) -> Self {
        Self {
            target: seeds
                .first()
                .map(|seed| (Target::Server(seed.clone()), timeouts)),
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
        let (target, timeouts) = self.target?;
        let runtime = io_runtime()
            .inspect_err(|error| tracing::warn!(%error, "redis-cached: no L1 tier"))
            .ok()?;
        let (stop, stopped) = oneshot::channel();
        #[cfg(feature = "cluster")]
        if !self.seeds.is_empty() {
            runtime.spawn(cluster::track(self.seeds, timeouts, tables, stopped));
            return Some(Tracker { _stop: stop });
        }
        runtime.spawn(server::track(target, timeouts, tables, stopped));
        Some(Tracker { _stop: stop })
    }
}
