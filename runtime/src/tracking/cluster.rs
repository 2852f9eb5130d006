//! Tracking for the in-process tier of a Redis Cluster cache, in default
//! mode as on one server: a tracking connection to every primary, and the
//! slot map from `CLUSTER SLOTS`, so that each value kept is confirmed
//! over the connection of the primary serving its slot (see `tables.rs`).
//! That primary then reports the key's next write to this process alone
//! (and to the other processes that keep it): no process hears of writes
//! to keys it does not keep.
//!
//! Every [`CHECK_EVERY`], and as soon as a fill is answered `MOVED` or
//! `ASK` (its slot is moving or has moved), each connection is `PING`ed
//! and the slot map read again:
//! - a connection that ends (a disconnection push, a failed `PING`) drops
//!   the entries of its primary's slots, and nothing of them is kept until
//!   it is back (or a promoted replica serves them): the other primaries'
//!   entries stay;
//! - a slot whose primary changed (a failover, a resharding, a primary
//!   added or removed) drops its entries, and its values are confirmed over
//!   the new primary's connection from then on. Until the map says so, a
//!   fill answered `MOVED`/`ASK` keeps nothing; the caller was answered by
//!   the cluster client, which follows redirections. An entry kept before a
//!   slot moves is reported by its old primary when the migration deletes
//!   the key there.
//!
//! Each primary is reached as the seed that named it is: with its user and
//! password, and over TLS with its certificates if it is `rediss://`.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use redis::aio::MultiplexedConnection;
use redis::{Client, ConnectionAddr, Value};
use tokio::sync::{Notify, oneshot};

use super::connection::{MAX_BACKOFF, Sink, connect};
use crate::backend::Timeouts;
use crate::tables::{Readers, Tables};

/// How often the connections are `PING`ed and the slot map read again.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The least time between two readings of the slot map that `MOVED`
/// answers ask for: a slot in migration answers every fill with `ASK`.
const MIN_GAP: Duration = Duration::from_millis(100);

/// The slots of a Redis Cluster.
const SLOTS: usize = 16_384;

/// In the slot map, a slot that no primary serves.
const NO_OWNER: u16 = u16::MAX;

/// A primary's address, as `CLUSTER SLOTS` gives it.
type Address = (String, u16);

/// Keeps tracking up on every primary until `stopped` fires or the tier is gone.
pub(super) async fn track(
    seeds: Vec<Client>,
    timeouts: Timeouts,
    tables: Weak<Tables>,
    mut stopped: oneshot::Receiver<()>,
) {
    let Some(moved) = tables.upgrade().map(|tables| tables.moved()) else {
        return;
    };
    let down = Arc::new(Notify::new());
    let sink = Sink {
        tables: tables.clone(),
        down: down.clone(),
    };
    let mut state = State::default();
    let mut check = tokio::time::interval(CHECK_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = Instant::now();
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            () = down.notified() => {}
            () = moved.notified() => {
                let gap = MIN_GAP.saturating_sub(last.elapsed());
                tokio::select! {
                    _ = &mut stopped => return,
                    () = tokio::time::sleep(gap) => {}
                }
            }
            _ = check.tick() => {}
        }
        let Some(live) = tables.upgrade() else { return };
        state.update(&seeds, &timeouts, &live, &sink).await;
        last = Instant::now();
    }
}

/// One primary and its tracking connection.
struct Primary {
    address: Address,
    /// Its connection and the connection's serial; `None` while down.
    conn: Option<(u64, MultiplexedConnection)>,
    /// No new attempt to connect before this.
    retry_at: Instant,
    backoff: Duration,
    /// Whether this outage was logged at `warn`.
    reported: bool,
}

impl Primary {
    fn new(address: Address) -> Self {
        Self {
            address,
            conn: None,
            retry_at: Instant::now(),
            backoff: Duration::ZERO,
            reported: false,
        }
    }

    /// Notes a failed attempt (or a lost connection): retry after a backoff.
    fn failed(&mut self, error: &dyn std::fmt::Display) {
        let (host, port) = &self.address;
        if self.reported {
            tracing::debug!(%error, %host, port, "redis-cached: L1 tracking of a primary still unavailable");
        } else {
            tracing::warn!(%error, %host, port, "redis-cached: L1 tracking of a primary unavailable; its keys are served from Redis");
            self.reported = true;
        }
        self.conn = None;
        // The first attempt again at once, then with a growing backoff.
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).clamp(Duration::from_millis(50), MAX_BACKOFF);
    }
}

/// What tracking knows of the cluster: the primaries, and which of them
/// serves each slot, as last published to the tables.
#[derive(Default)]
struct State {
    primaries: Vec<Primary>,
    /// For each slot, the index in `primaries` of its primary; empty
    /// before the first map.
    owners: Vec<Option<usize>>,
    /// Whether the tables have readers from this state.
    published: bool,
    /// Whether the loss of the whole map was logged.
    reported: bool,
}

impl State {
    /// Checks the connections, reads the slot map, connects to the
    /// primaries that lack a connection, and publishes the result to
    /// `tables`, dropping the entries of every slot that changed hands.
    async fn update(
        &mut self,
        seeds: &[Client],
        timeouts: &Timeouts,
        tables: &Tables,
        sink: &Sink,
    ) {
        self.check_connections(tables).await;
        let map = match self.slot_map(seeds, timeouts).await {
            Ok(map) => map,
            Err(error) => {
                if self.primaries.iter().all(|p| p.conn.is_none()) {
                    self.lose_everything(tables, &error);
                }
                return;
            }
        };
        self.reported = false;
        let before: Vec<Address> = self.primaries.iter().map(|p| p.address.clone()).collect();
        let owned_before = std::mem::take(&mut self.owners);
        let mut changed = self.adopt(&map);
        changed |= self.connect_missing(seeds, timeouts, sink).await;
        // Each primary's index in `before`, if it was a primary then.
        let was: Vec<Option<usize>> = (self.primaries.iter())
            .map(|p| before.iter().position(|a| *a == p.address))
            .collect();
        // A slot moved if a primary served it and another (or none) does now.
        let moved: Vec<bool> = (0..SLOTS)
            .map(|slot| match owned_before.get(slot).copied().flatten() {
                Some(old) => self.owners[slot].and_then(|new| was[new]) != Some(old),
                None => false,
            })
            .collect();
        let any_moved = moved.iter().any(|&m| m);
        if !(changed || any_moved || !self.published) {
            return;
        }
        // The readers first, then the flush: see `Tables::ticket`.
        tables.set_readers(Some(self.readers()));
        if any_moved && self.published {
            tables.flush_slots(|slot| moved[usize::from(slot)]);
        }
        tables.set_live(true);
        self.published = true;
    }

    /// `PING`s every connection; one that fails is lost (its primary's
    /// entries dropped), and is made again by [`connect_missing`](Self::connect_missing).
    async fn check_connections(&mut self, tables: &Tables) {
        let pings = self.primaries.iter().map(|primary| {
            let conn = primary.conn.clone();
            async move {
                let (serial, mut conn) = conn?;
                let pong = redis::cmd("PING").query_async::<()>(&mut conn).await;
                pong.err().map(|error| (serial, error))
            }
        });
        let failures = join_all(pings).await;
        for (primary, failure) in self.primaries.iter_mut().zip(failures) {
            if let Some((serial, error)) = failure {
                tables.lost(serial);
                primary.failed(&error);
            }
        }
    }

    /// The slot ranges and their primaries, from `CLUSTER SLOTS` asked of a
    /// tracked primary, else of the seeds.
    async fn slot_map(
        &self,
        seeds: &[Client],
        timeouts: &Timeouts,
    ) -> redis::RedisResult<Vec<(u16, u16, Address)>> {
        for primary in &self.primaries {
            if let Some((_, conn)) = &primary.conn
                && let Ok(map) = slot_map(&mut conn.clone()).await
            {
                return Ok(map);
            }
        }
        let mut last_error = None;
        for seed in seeds {
            let config = redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeouts.connect))
                .set_response_timeout(Some(timeouts.response));
            let asked = async {
                let mut conn = seed
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                slot_map(&mut conn).await
            };
            match asked.await {
                Ok(map) => return Ok(map),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| io_error("no seed node given")))
    }

    /// Takes `map` as the cluster's: keeps the primaries (and connections)
    /// still in it, adds the new ones, drops the others, and sets each
    /// slot's owner. Whether the set of primaries changed.
    fn adopt(&mut self, map: &[(u16, u16, Address)]) -> bool {
        let mut addresses: Vec<&Address> = Vec::new();
        for (_, _, address) in map {
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
        let mut kept: Vec<Primary> = Vec::with_capacity(addresses.len());
        let mut changed = addresses.len() != self.primaries.len();
        for address in addresses {
            match self.primaries.iter().position(|p| &p.address == address) {
                Some(index) => kept.push(self.primaries.swap_remove(index)),
                None => {
                    changed = true;
                    kept.push(Primary::new(address.clone()));
                }
            }
        }
        // Those left are no longer primaries: their connections close.
        self.primaries = kept;
        self.owners = vec![None; SLOTS];
        for (start, end, address) in map {
            let index = self.primaries.iter().position(|p| &p.address == address);
            for slot in *start..=(*end).min(SLOTS as u16 - 1) {
                self.owners[usize::from(slot)] = index;
            }
        }
        changed
    }

    /// Connects to each primary without a connection whose backoff is
    /// over, all at once. Whether any connected.
    async fn connect_missing(
        &mut self,
        seeds: &[Client],
        timeouts: &Timeouts,
        sink: &Sink,
    ) -> bool {
        let Some(seed) = seeds.first() else {
            return false;
        };
        let now = Instant::now();
        let attempts = self.primaries.iter().map(|primary| {
            let due = primary.conn.is_none() && primary.retry_at <= now;
            let (host, port) = primary.address.clone();
            let sink = sink.clone();
            async move {
                if !due {
                    return None;
                }
                let info = seed.get_connection_info();
                let info = info.clone().set_addr(at(info.addr(), &host, port));
                let connected = match Client::open(info) {
                    Ok(client) => connect(&client, timeouts, sink).await,
                    Err(error) => Err(error),
                };
                Some(connected)
            }
        });
        let results = join_all(attempts).await;
        let mut any = false;
        for (primary, result) in self.primaries.iter_mut().zip(results) {
            match result {
                Some(Ok(conn)) => {
                    if primary.reported {
                        let (host, port) = &primary.address;
                        tracing::info!(%host, port, "redis-cached: L1 tracking of a primary restored");
                    }
                    primary.conn = Some(conn);
                    primary.backoff = Duration::ZERO;
                    primary.reported = false;
                    any = true;
                }
                Some(Err(error)) => primary.failed(&error),
                None => {}
            }
        }
        any
    }

    /// What the tables confirm values over, from this state.
    fn readers(&self) -> Readers {
        let owners = self
            .owners
            .iter()
            .map(|index| {
                index
                    .and_then(|i| u16::try_from(i).ok())
                    .unwrap_or(NO_OWNER)
            })
            .collect();
        let conns = self.primaries.iter().map(|p| p.conn.clone()).collect();
        Readers::slots(owners, conns)
    }

    /// Neither a primary nor a seed answers: the whole tier is dropped and
    /// takes nothing until the map is read again.
    fn lose_everything(&mut self, tables: &Tables, error: &redis::RedisError) {
        if !self.reported {
            tracing::warn!(%error, "redis-cached: L1 tracking unavailable on the cluster; serving from Redis");
            self.reported = true;
        }
        tables.set_readers(None);
        tables.set_live(false);
        self.published = false;
        self.owners.clear();
    }
}

fn io_error(text: &'static str) -> redis::RedisError {
    redis::RedisError::from(std::io::Error::other(text))
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

/// Each slot range and the address of its primary, from `CLUSTER SLOTS`.
async fn slot_map(
    conn: &mut MultiplexedConnection,
) -> redis::RedisResult<Vec<(u16, u16, Address)>> {
    let ranges: Vec<Vec<Value>> = redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await?;
    let mut map = Vec::with_capacity(ranges.len());
    for range in ranges {
        let [start, end, Value::Array(primary), ..] = range.as_slice() else {
            continue;
        };
        if let [host, port, ..] = primary.as_slice()
            && let (Ok(start), Ok(end), Ok(host), Ok(port)) = (
                redis::from_redis_value_ref::<u16>(start),
                redis::from_redis_value_ref::<u16>(end),
                redis::from_redis_value_ref::<String>(host),
                redis::from_redis_value_ref::<u16>(port),
            )
        {
            map.push((start, end, (host, port)));
        }
    }
    if map.is_empty() {
        return Err(io_error("CLUSTER SLOTS named no primary"));
    }
    Ok(map)
}
