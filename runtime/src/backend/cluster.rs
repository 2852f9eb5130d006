//! The Redis Cluster backend: the `redis` crate's cluster clients, which
//! learn the slot map from the seed nodes, send each command to the node of
//! its key's slot, follow `MOVED`/`ASK` and reconnect after a failover.
//!
//! Async calls use one `cluster_async::ClusterConnection` per tokio runtime
//! they come from, as single-node calls use one `ConnectionManager`: the
//! same [`Slot`]s, found with the same [`runtime_slot`] and dropped with
//! their runtime, so the connection's task and its node connections run on
//! the caller's runtime. Callers elsewhere (see `runtimes.rs`) share one
//! made on the io runtime, and hand each command to it. A slot shares one
//! connect attempt between concurrent callers.
//!
//! Sync calls (the `sync` feature) take a `cluster::ClusterConnection` from an r2d2 pool of up to
//! `pool_size`: a sync cluster connection is not `Sync` and each command
//! holds it for a round trip, so a single one behind a mutex would let one
//! thread's call wait behind every other's. A sync cluster connection
//! learns the slot map when it is made and after a `MOVED`, but not after a
//! node stops answering: it would keep asking the dead primary. So a pooled
//! connection whose command could not reach a node is dropped, and the next
//! one made learns the map anew (the promoted replica, once there is one).
//!
//! Every command is bounded by the response timeout, retries and
//! redirections included. There is no process-wide pause after a failure
//! as on one server: one node down must not stop calls to the others.

#[cfg(feature = "sync")]
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::FutureExt;
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Client, Cmd, FromRedisValue, RedisResult, Value};
#[cfg(feature = "sync")]
use redis::{ConnectionLike, RedisError};
use tokio::runtime::Handle;

use super::io::{Io, Remote};
use super::redis::{Connecting, Slot, Slots, Timeouts, runtime_slot, spawned, timed_out};
use crate::error::Error;
use crate::runtimes::{self, io_runtime};

/// Retries of a command after a connection error or during a failover;
/// `MOVED` and `ASK` are followed within them. All of them fit in the
/// response timeout, which bounds the whole command.
const RETRIES: u32 = 3;
/// The longest pause between two retries, in ms.
const MAX_RETRY_WAIT_MS: u64 = 100;

/// A Redis Cluster, reached lazily through its seed nodes.
pub(crate) struct ClusterBackend {
    client: ClusterClient,
    /// A client per seed node, for the in-process tier's tracking (none on
    /// a client the application made).
    #[cfg_attr(not(feature = "local"), allow(dead_code))]
    seeds: Vec<Client>,
    timeouts: Timeouts,
    #[cfg_attr(not(feature = "sync"), allow(dead_code))]
    pool_size: u32,
    /// The async connection of each runtime that calls come from.
    runtimes: Slots<ClusterConnection>,
    /// The async connection of calls from anywhere else, on the io runtime.
    own: Slot<ClusterConnection>,
    #[cfg(feature = "sync")]
    pool: OnceLock<r2d2::Pool<SyncManager>>,
}

impl ClusterBackend {
    /// A backend on the cluster that `nodes` (URLs) belong to.
    pub(crate) fn new<S: AsRef<str>>(
        nodes: impl IntoIterator<Item = S>,
        timeouts: Timeouts,
        pool_size: u32,
    ) -> Result<Self, Error> {
        let nodes: Vec<String> = nodes
            .into_iter()
            .map(|node| node.as_ref().trim().to_owned())
            .filter(|node| !node.is_empty())
            .collect();
        if nodes.is_empty() {
            return Err(Error::Config(
                "a Redis Cluster needs at least one seed node URL".to_owned(),
            ));
        }
        let client = ClusterClientBuilder::new(nodes.iter().map(String::as_str))
            .connection_timeout(timeouts.connect)
            .response_timeout(timeouts.response)
            .retries(RETRIES)
            .min_retry_wait(1)
            .max_retry_wait(MAX_RETRY_WAIT_MS)
            .build()
            .map_err(|e| Error::Config(format!("Redis Cluster seed nodes: {e}")))?;
        let seeds = nodes
            .iter()
            .map(|node| Client::open(node.as_str()))
            .collect::<Result<_, _>>()
            .map_err(|e| Error::Config(format!("Redis Cluster seed node: {e}")))?;
        Ok(Self {
            seeds,
            ..Self::with_client(client, timeouts, pool_size)
        })
    }

    /// A backend on a cluster client the application configured itself: its
    /// own timeouts and retries bound each command (`timeouts` only bounds
    /// connecting), and it has no seed clients, so no tracking.
    pub(crate) fn with_client(client: ClusterClient, timeouts: Timeouts, pool_size: u32) -> Self {
        Self {
            client,
            seeds: Vec::new(),
            timeouts,
            pool_size,
            runtimes: Slots::default(),
            own: Slot::new(None),
            #[cfg(feature = "sync")]
            pool: OnceLock::new(),
        }
    }

    /// A client per seed node.
    #[cfg(feature = "local")]
    pub(crate) fn seeds(&self) -> &[Client] {
        &self.seeds
    }

    /// The connect and response timeouts of this backend.
    #[cfg(feature = "local")]
    pub(crate) fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Deletes the keys matching `pattern` on every primary: `SCAN` on each,
    /// `UNLINK` of each batch through the cluster (keys grouped by slot).
    pub(crate) async fn delete_matching<I: Io>(&self, io: I, pattern: &str) -> Result<u64, Error> {
        let mut deleted = 0;
        for (host, port) in self.primaries(io).await? {
            let node = Node {
                cluster: self,
                host,
                port,
            };
            deleted += super::delete_scanned(io, &node, self, pattern).await?;
        }
        Ok(deleted)
    }

    /// The address of each primary that serves slots, from `CLUSTER SLOTS`.
    async fn primaries<I: Io>(&self, io: I) -> Result<Vec<(String, u16)>, Error> {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("SLOTS");
        let ranges: Vec<Vec<Value>> = io.query(self, cmd).await?;
        let mut primaries: Vec<(String, u16)> = Vec::new();
        for range in ranges {
            let Some(Value::Array(primary)) = range.get(2) else {
                continue;
            };
            let address = match primary.as_slice() {
                [host, port, ..] => {
                    let host = String::from_redis_value_ref(host);
                    let port = u16::from_redis_value_ref(port);
                    host.ok().zip(port.ok())
                }
                _ => None,
            };
            if let Some(address) = address
                && !primaries.contains(&address)
            {
                primaries.push(address);
            }
        }
        if primaries.is_empty() {
            return Err(Error::Config(
                "CLUSTER SLOTS named no primary: is this a Redis Cluster?".to_owned(),
            ));
        }
        Ok(primaries)
    }

    /// Runs `cmd` on the async connection, sent where its keys say or, with
    /// `route`, to one node.
    async fn route_async<T>(&self, cmd: Cmd, route: Option<RoutingInfo>) -> Result<T, Error>
    where
        T: FromRedisValue + Send + 'static,
    {
        let query = |mut conn: ClusterConnection| async move {
            match route {
                Some(route) => Ok(T::from_redis_value(conn.route_command(cmd, route).await?)?),
                None => cmd.query_async::<T>(&mut conn).await,
            }
        };
        let result = match runtimes::current() {
            Some(here) => {
                let slot = runtime_slot(&self.runtimes, &here, here.id());
                match slot.connection(|| self.connect_here()).await {
                    Ok(conn) => query(conn).await,
                    Err(error) => Err(error),
                }
            }
            None => {
                async {
                    let runtime = io_runtime()?;
                    let conn = self
                        .own
                        .connection(|| self.connect_on(runtime.handle()))
                        .await?;
                    runtime
                        .spawn(query(conn))
                        .await
                        .unwrap_or_else(|_| Err(timed_out("command task")))
                }
                .await
            }
        };
        result.map_err(Error::Redis)
    }

    /// Runs `cmd` on a pooled sync connection, routed as in [`route_async`](Self::route_async).
    #[cfg(feature = "sync")]
    fn route_blocking<T: FromRedisValue>(
        &self,
        cmd: &Cmd,
        route: Option<RoutingInfo>,
    ) -> Result<T, Error> {
        let mut pooled = self.pool().get().map_err(Error::Pool)?;
        let result = match route {
            Some(route) => pooled
                .conn
                .route_command(cmd, route)
                .and_then(|value| Ok(T::from_redis_value(value)?)),
            None => cmd.query(&mut pooled.conn),
        };
        if let Err(error) = &result {
            pooled.broken = unreachable(error);
        }
        result.map_err(Error::Redis)
    }

    /// A connection attempt driven by the callers that await it, on their
    /// runtime, within the connect timeout.
    fn connect_here(&self) -> Connecting<ClusterConnection> {
        connect(self.client.clone(), self.timeouts.connect)
            .boxed()
            .shared()
    }

    /// A connection attempt running on `runtime`, within the connect timeout.
    fn connect_on(&self, runtime: &Handle) -> Connecting<ClusterConnection> {
        spawned(runtime, connect(self.client.clone(), self.timeouts.connect))
    }

    #[cfg(feature = "sync")]
    fn pool(&self) -> &r2d2::Pool<SyncManager> {
        self.pool.get_or_init(|| {
            r2d2::Pool::builder()
                .max_size(self.pool_size)
                .min_idle(Some(0))
                .connection_timeout(self.timeouts.connect)
                .test_on_check_out(false)
                .error_handler(Box::new(r2d2::NopErrorHandler))
                .build_unchecked(SyncManager(self.client.clone()))
        })
    }
}

async fn connect(client: ClusterClient, limit: Duration) -> RedisResult<ClusterConnection> {
    match tokio::time::timeout(limit, client.get_async_connection()).await {
        Ok(result) => result,
        Err(_) => Err(timed_out("connect")),
    }
}

/// Whether `error` says a node could not be reached, rather than that it
/// refused the command.
#[cfg(feature = "sync")]
fn unreachable(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
}

/// A pooled sync cluster connection, and whether a node it asked was unreachable.
#[cfg(feature = "sync")]
struct SyncConnection {
    conn: redis::cluster::ClusterConnection,
    broken: bool,
}

/// Makes sync cluster connections for the r2d2 pool, and drops the broken ones.
#[cfg(feature = "sync")]
struct SyncManager(ClusterClient);

#[cfg(feature = "sync")]
impl r2d2::ManageConnection for SyncManager {
    type Connection = SyncConnection;
    type Error = RedisError;

    fn connect(&self) -> RedisResult<SyncConnection> {
        Ok(SyncConnection {
            conn: self.0.get_connection()?,
            broken: false,
        })
    }

    fn is_valid(&self, conn: &mut SyncConnection) -> RedisResult<()> {
        redis::cmd("PING").query(&mut conn.conn)
    }

    fn has_broken(&self, conn: &mut SyncConnection) -> bool {
        conn.broken || !conn.conn.is_open()
    }
}

impl Remote for ClusterBackend {
    fn query_async<T: FromRedisValue + Send + 'static>(
        &self,
        cmd: Cmd,
    ) -> impl Future<Output = Result<T, Error>> + Send {
        self.route_async(cmd, None)
    }

    #[cfg(feature = "sync")]
    fn query_blocking<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error> {
        self.route_blocking(cmd, None)
    }
}

/// One node of a cluster, for commands that are about the node rather than
/// a key (`SCAN`).
struct Node<'a> {
    cluster: &'a ClusterBackend,
    host: String,
    port: u16,
}

impl Node<'_> {
    fn route(&self) -> RoutingInfo {
        RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: self.host.clone(),
            port: self.port,
        })
    }
}

impl Remote for Node<'_> {
    fn query_async<T: FromRedisValue + Send + 'static>(
        &self,
        cmd: Cmd,
    ) -> impl Future<Output = Result<T, Error>> + Send {
        self.cluster.route_async(cmd, Some(self.route()))
    }

    #[cfg(feature = "sync")]
    fn query_blocking<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error> {
        self.cluster.route_blocking(cmd, Some(self.route()))
    }
}
