//! The Redis Cluster backend: the `redis` crate's cluster clients, which
//! learn the slot map from the seed nodes, send each command to the node of
//! its key's slot, follow `MOVED`/`ASK` and reconnect after a failover.
//!
//! Async calls use one `cluster_async::ClusterConnection` per tokio runtime
//! they come from, as single-node calls use one `MultiplexedConnection`: the
//! same [`Slot`]s (`slots.rs`), found with the same [`runtime_slot`] and
//! dropped with their runtime, so the connection's task and its node connections run on
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
//!
//! Every node connection, the discovered nodes' too, authenticates with the
//! same user and password (the builder's, else the first seed URL's) and,
//! for `rediss://` seeds, trusts and presents the same certificates; so do
//! the in-process tier's connections to each primary (`tracking/cluster.rs`,
//! from [`seeds`](ClusterBackend::seeds)). A refused password is reported
//! as one (`ErrorKind::Auth`), and logged once until a command succeeds
//! again, as the breaker does on one server.

use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(feature = "sync")]
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
#[cfg(feature = "sync")]
use std::time::Instant;

use futures_util::FutureExt;
#[cfg(feature = "sync")]
use redis::ConnectionLike;
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{
    Client, Cmd, ErrorKind, FromRedisValue, IntoConnectionInfo, RedisError, RedisResult, Value,
};
use tokio::runtime::Handle;

use super::Timeouts;
use super::credentials::Credentials;
use super::io::{Io, Remote};
use super::slots::{Connecting, Slot, Slots, runtime_slot, spawned};
use super::tls::Tls;
use crate::error::public::ErrorKind as Kind;
use crate::error::{Error, timed_out};
use crate::redact::redact;
use crate::runtimes::{self, RunOn, io_runtime};

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
    /// Where async commands run: `CacheBuilder::own_runtime`.
    run_on: RunOn,
    /// The async connection of each runtime that calls come from.
    runtimes: Slots<ClusterConnection>,
    /// The async connection of calls from anywhere else, on the io runtime.
    own: Slot<ClusterConnection>,
    #[cfg(feature = "sync")]
    pool: OnceLock<r2d2::Pool<SyncManager>>,
    /// Why the sync pool's last attempt to connect failed, and when, if it
    /// did: a pool timeout then reports that cause (say, a refused password).
    #[cfg(feature = "sync")]
    last_sync_connect_error: Arc<Mutex<Option<(RedisError, Instant)>>>,
    /// The sync pool's last attempt to connect was refused its password:
    /// the pool is not waited on again within the connect timeout.
    #[cfg(feature = "sync")]
    sync_refused: Arc<AtomicBool>,
    /// A refused password was logged, and no command succeeded since.
    auth_failure_logged: AtomicBool,
}

impl ClusterBackend {
    /// A backend on the cluster that `nodes` (URLs) belong to, reached
    /// with these credentials and certificates.
    pub(crate) fn new<S: AsRef<str>>(
        nodes: impl IntoIterator<Item = S>,
        credentials: &Credentials,
        tls: &Tls,
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
        // The errors of `redis` name no URL today; were one to, redact it.
        let config = |e: &dyn std::fmt::Display| {
            let mut text = e.to_string();
            let mut shown = Vec::with_capacity(nodes.len());
            for node in &nodes {
                let redacted = redact(node);
                text = text.replace(node.as_str(), &redacted);
                shown.push(redacted);
            }
            Error::Config(format!("Redis Cluster {}: {text}", shown.join(",")))
        };
        let mut builder = ClusterClientBuilder::new(nodes.iter().map(String::as_str))
            .connection_timeout(timeouts.connect)
            .response_timeout(timeouts.response)
            .retries(RETRIES)
            .min_retry_wait(1)
            .max_retry_wait(MAX_RETRY_WAIT_MS);
        if let Some(username) = &credentials.username {
            builder = builder.username(username);
        }
        if let Some(password) = &credentials.password {
            builder = builder.password(password);
        }
        let builder = tls
            .for_cluster(builder, nodes.iter().map(String::as_str))
            .map_err(|reason| Error::Config(reason.to_owned()))?;
        let client = builder.build().map_err(|e| config(&e))?;
        let seeds = nodes
            .iter()
            .map(|node| {
                let info = node.as_str().into_connection_info()?;
                tls.client(credentials.apply(info))
            })
            .collect::<Result<_, _>>()
            .map_err(|e| config(&e))?;
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
            run_on: RunOn::Caller,
            runtimes: Slots::default(),
            own: Slot::new(None),
            #[cfg(feature = "sync")]
            pool: OnceLock::new(),
            #[cfg(feature = "sync")]
            last_sync_connect_error: Arc::default(),
            #[cfg(feature = "sync")]
            sync_refused: Arc::default(),
            auth_failure_logged: AtomicBool::new(false),
        }
    }

    /// Sends async commands where `run_on` says.
    pub(crate) fn set_run_on(&mut self, run_on: RunOn) {
        self.run_on = run_on;
    }

    /// Whether `error`, a failure of this backend, was logged already: a
    /// refused password, after the first since a command last succeeded.
    pub(crate) fn logged(&self, error: &Error) -> bool {
        error.kind() == Kind::Auth && self.auth_failure_logged.swap(true, Ordering::Relaxed)
    }

    /// Notes that a command succeeded: the next refused password is news.
    fn succeeded(&self) {
        // A read first: a store on every command would make every thread
        // contend for the flag's cache line.
        if self.auth_failure_logged.load(Ordering::Relaxed) {
            self.auth_failure_logged.store(false, Ordering::Relaxed);
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
        let ranges: Vec<Vec<Value>> = io.query(self, &cmd).await?;
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
    async fn route_async<T>(&self, cmd: &Cmd, route: Option<RoutingInfo>) -> Result<T, Error>
    where
        T: FromRedisValue + Send + 'static,
    {
        let connect_error = |e| Error::Connect(named(e));
        let result = match runtimes::current(self.run_on) {
            Some(here) => {
                let slot = runtime_slot(&self.runtimes, &here, here.id());
                let conn = slot
                    .connection(|| self.connect_here())
                    .await
                    .map_err(connect_error)?;
                send(conn, cmd, route).await
            }
            None => {
                let runtime = io_runtime().map_err(Error::Connect)?;
                let conn = self
                    .own
                    .connection(|| self.connect_on(runtime.handle()))
                    .await
                    .map_err(connect_error)?;
                let cmd = cmd.clone();
                let query = async move { send(conn, &cmd, route).await };
                runtimes::on_io(query, "command task").await
            }
        };
        self.outcome(result)
    }

    /// `result` as this crate's, noting a success.
    fn outcome<T>(&self, result: RedisResult<T>) -> Result<T, Error> {
        if result.is_ok() {
            self.succeeded();
        }
        result.map_err(|e| Error::Redis(named(e)))
    }

    /// Runs `cmd` on a pooled sync connection, routed as in [`route_async`](Self::route_async).
    #[cfg(feature = "sync")]
    fn route_blocking<T: FromRedisValue>(
        &self,
        cmd: &Cmd,
        route: Option<RoutingInfo>,
    ) -> Result<T, Error> {
        let mut pooled = match self.refused_recently() {
            // An idle connection still works; no new one will be let in.
            Some(refusal) => self.pool().try_get().ok_or(refusal)?,
            None => self.pool().get().map_err(|e| {
                let cause = self.last_sync_connect_error();
                cause.map_or(Error::Pool(e), |(cause, _)| Error::Connect(cause))
            })?,
        };
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
        self.outcome(result)
    }

    /// Why the sync pool's last attempt to connect failed, and when.
    #[cfg(feature = "sync")]
    fn last_sync_connect_error(&self) -> Option<(RedisError, Instant)> {
        self.last_sync_connect_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The refusal of the sync pool's password, if it came less than the
    /// connect timeout ago: without it, a sync call would wait for the
    /// whole connect timeout while the pool tried again and again. (A
    /// password is the cluster's, unlike a node that is down, so this
    /// stops nothing that could succeed.)
    #[cfg(feature = "sync")]
    fn refused_recently(&self) -> Option<Error> {
        if !self.sync_refused.load(Ordering::Relaxed) {
            return None;
        }
        let (cause, at) = self.last_sync_connect_error()?;
        (at.elapsed() < self.timeouts.connect).then_some(Error::Connect(cause))
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
                .build_unchecked(SyncManager {
                    client: self.client.clone(),
                    last_error: self.last_sync_connect_error.clone(),
                    refused: self.sync_refused.clone(),
                })
        })
    }
}

async fn connect(client: ClusterClient, limit: Duration) -> RedisResult<ClusterConnection> {
    match tokio::time::timeout(limit, client.get_async_connection()).await {
        Ok(result) => result,
        Err(_) => Err(timed_out("connect")),
    }
}

/// `error`, or an authentication failure if that is what it reports: the
/// cluster clients report a password every seed node refused as an I/O
/// error that quotes the nodes' errors.
fn named(error: RedisError) -> RedisError {
    const REFUSALS: [&str; 3] = ["WRONGPASS", "NOAUTH", "authentication failed"];
    let refused = error.kind() == ErrorKind::Io
        && error.detail().is_some_and(|detail| {
            let detail = detail.to_ascii_lowercase();
            REFUSALS
                .iter()
                .any(|refusal| detail.contains(&refusal.to_ascii_lowercase()))
        });
    if refused {
        RedisError::from((
            ErrorKind::AuthenticationFailed,
            "the cluster's nodes refused the user or password",
        ))
    } else {
        error
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
struct SyncManager {
    client: ClusterClient,
    /// See [`ClusterBackend::last_sync_connect_error`].
    last_error: Arc<Mutex<Option<(RedisError, Instant)>>>,
    /// See [`ClusterBackend::sync_refused`].
    refused: Arc<AtomicBool>,
}

#[cfg(feature = "sync")]
impl r2d2::ManageConnection for SyncManager {
    type Connection = SyncConnection;
    type Error = RedisError;

    fn connect(&self) -> RedisResult<SyncConnection> {
        let result = self.client.get_connection().map_err(named);
        let error = result.as_ref().err();
        let refused = error.is_some_and(|e| e.kind() == ErrorKind::AuthenticationFailed);
        self.refused.store(refused, Ordering::Relaxed);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = error.map(|e| (e.clone(), Instant::now()));
        Ok(SyncConnection {
            conn: result?,
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

/// Sends `cmd` on `conn`, where its keys say or, with `route`, to one node.
async fn send<T: FromRedisValue>(
    mut conn: ClusterConnection,
    cmd: &Cmd,
    route: Option<RoutingInfo>,
) -> RedisResult<T> {
    match route {
        Some(route) => Ok(T::from_redis_value(
            conn.route_command(cmd.clone(), route).await?,
        )?),
        None => cmd.query_async(&mut conn).await,
    }
}

impl Remote for ClusterBackend {
    fn query_async<T: FromRedisValue + Send + 'static>(
        &self,
        cmd: &Cmd,
    ) -> impl Future<Output = Result<T, Error>> + Send {
        // Boxed: unboxed, its 2 KiB would be part of every cached call's
        // future (which holds one for each backend a call may use), on one
        // server too, and be copied with it.
        Box::pin(self.route_async(cmd, None))
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
        cmd: &Cmd,
    ) -> impl Future<Output = Result<T, Error>> + Send {
        Box::pin(self.cluster.route_async(cmd, Some(self.route())))
    }

    #[cfg(feature = "sync")]
    fn query_blocking<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error> {
        self.cluster.route_blocking(cmd, Some(self.route()))
    }
}
