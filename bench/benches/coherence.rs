//! How long a process's in-process tier serves a value after it changed:
//! the coherence window of `local = N`, on one server and on a Redis
//! Cluster, through a failover and a resharding.
//!
//! ```sh
//! cargo bench -p bench --bench coherence                 # every scenario
//! cargo bench -p bench --bench coherence -- server       # one of: server cluster failover reshard
//! ```
//!
//! A database (a `redis-server` of its own, not the cache's) holds a counter
//! per key; 6 reader processes (3 calling a plain `fn`, 3 an `async fn` on a
//! 2-worker tokio runtime) call `value(k)` for every key in a loop, a round
//! every 200 µs, each with `#[redis_cached(ttl = 600, local = 1000)]` on a
//! body that reads the counter. The writer (this process) changes the data
//! as cache-aside code does, 200 times and more: `INCR` of a counter, then
//! `value_invalidate(k)`, then a pause of 10–15 ms. A reader's window for
//! one write is the time from `value_invalidate` returning to the reader's
//! first call that returned the new value (0 if it had it already).
//!
//! Scenarios: `server` (one cache server); `cluster` (3 primaries with a
//! replica each); `failover` (the same, and a primary is killed with
//! `SIGKILL` a second into the writes: its keys run uncached until its
//! replica is promoted, then are cached again); `reshard` (3 primaries; a
//! second into the writes `redis-cli --cluster reshard` moves every slot of
//! the primary holding key 0 to another, under the load, and the writes go
//! on until it is done and a while after). On a cluster the writer waits
//! for the replica to acknowledge each invalidation (`WAIT 1`), so that a
//! failover cannot bring an old value back from a replica that had not
//! received the delete: that would be Redis losing a write, not the tier.
//!
//! Checked, and the benchmark fails otherwise: no reader serves a value
//! more than 100 ms after a newer one's invalidation returned (a wrong
//! answer: an invalidation late or lost), and at the end every reader
//! returns the last values (`lost` counts those that don't). Also shown:
//! `back`, values older than one the same reader returned before. Outside
//! an outage there are none; while a primary is down, calls for its keys
//! fail open and return what the body reads from the database, newer than
//! the cache until the writer's invalidation gets through after the
//! promotion: cache-aside, not the tier.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis_cached::{Cache, redis_cached};
use redis_test::cluster::{RedisCluster, RedisClusterConfiguration};
use redis_test::server::RedisServer;

/// Reader processes.
const READERS: usize = 6;
/// Keys written and read.
const KEYS: u64 = 6;
/// Writes of a scenario (more when a failover or a resharding is waited for).
const WRITES: usize = 200;
/// The pause between a reader's rounds over the keys.
const READER_PAUSE: Duration = Duration::from_micros(200);
/// A value served this long (µs) after a newer one's invalidation returned
/// is a wrong answer: an invalidation late or lost.
const LATE_US: u64 = 100_000;
/// The cache's key prefix.
const PREFIX: &str = "coherence:";

type Error = Box<dyn std::error::Error>;

/// Where the cache lives (a URL; comma-separated nodes for a cluster).
static TARGET: OnceLock<String> = OnceLock::new();
/// The database's URL.
static DB: OnceLock<String> = OnceLock::new();

static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder(TARGET.get().expect("target set"))
        .prefix(PREFIX)
        .build()
        .expect("a valid target")
});

/// The database connection of a sync body.
static DB_SYNC: LazyLock<Mutex<redis::Connection>> = LazyLock::new(|| {
    let client = redis::Client::open(DB.get().expect("db set").as_str()).expect("db url");
    Mutex::new(client.get_connection().expect("the database answers"))
});

/// The database connection of an async body.
static DB_ASYNC: OnceLock<redis::aio::MultiplexedConnection> = OnceLock::new();

fn counter(k: u64) -> String {
    format!("counter:{k}")
}

#[redis_cached(ttl = 600, cache = CACHE, local = 1000, name = "coherence::value")]
fn value(k: u64) -> u64 {
    let mut db = DB_SYNC.lock().unwrap_or_else(|e| e.into_inner());
    redis::cmd("GET")
        .arg(counter(k))
        .query::<Option<u64>>(&mut *db)
        .expect("the database answers")
        .unwrap_or(0)
}

#[redis_cached(ttl = 600, cache = CACHE, local = 1000, name = "coherence::value")]
async fn value_async(k: u64) -> u64 {
    let mut db = DB_ASYNC.get().expect("connected").clone();
    redis::cmd("GET")
        .arg(counter(k))
        .query_async::<Option<u64>>(&mut db)
        .await
        .expect("the database answers")
        .unwrap_or(0)
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Scenario {
    Server,
    Cluster,
    Failover,
    Reshard,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Cluster => "cluster",
            Self::Failover => "failover",
            Self::Reshard => "reshard",
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let result = match args.first().map(String::as_str) {
        Some("reader") => reader(&args[1..]),
        _ => run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coherence benchmark failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), Error> {
    let all = [
        Scenario::Server,
        Scenario::Cluster,
        Scenario::Failover,
        Scenario::Reshard,
    ];
    let chosen: Vec<Scenario> = all
        .into_iter()
        .filter(|s| args.is_empty() || args.iter().any(|a| a == s.name()))
        .collect();
    // One process per scenario: the cache's targets are set once a process.
    let child = std::env::var_os("COHERENCE_CHILD").is_some();
    if !child {
        println!(
            "coherence rows: {READERS} reader processes (3 sync, 3 async) with local = 1000 over \
             {KEYS} keys, a round every {:?}; a writer doing INCR + value_invalidate every \
             10-15 ms; window = invalidate returned -> the reader returns the new value for good; \
             wrong = a value served > {} ms after a newer one's invalidation; back = a value older \
             than one the reader returned before",
            reader_pause(),
            LATE_US / 1000
        );
        println!(
            "{:<10} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9} {:>6} {:>6} {:>5} {:>5} {:>10}",
            "scenario",
            "writes",
            "windows",
            "p50 ms",
            "p99 ms",
            "max ms",
            "sync p99",
            "wrong",
            "raced",
            "lost",
            "back",
            "local hit%"
        );
    }
    if chosen.len() > 1 {
        let mut failed = Vec::new();
        for scenario in chosen {
            let status = Command::new(std::env::current_exe()?)
                .arg(scenario.name())
                .env("COHERENCE_CHILD", "1")
                .status()?;
            if !status.success() {
                failed.push(scenario.name());
            }
        }
        if !failed.is_empty() {
            return Err(format!("failed: {failed:?}").into());
        }
        return Ok(());
    }
    let mut failed = Vec::new();
    for scenario in chosen {
        let row = scenario_row(scenario)?;
        println!(
            "{:<10} {:>7} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>6} {:>6} {:>5} {:>5} {:>10.1}",
            scenario.name(),
            row.writes,
            row.windows.len(),
            percentile(&row.windows, 0.50),
            percentile(&row.windows, 0.99),
            percentile(&row.windows, 1.0),
            percentile(&row.sync_windows, 0.99),
            row.wrong,
            row.raced,
            row.lost,
            row.backwards,
            row.local_hit_percent,
        );
        if let Some(note) = &row.note {
            println!("           {note}");
        }
        if row.wrong > 0 || row.lost > 0 {
            failed.push(scenario.name());
        }
    }
    if !failed.is_empty() {
        return Err(format!("wrong answers or lost invalidations in {failed:?}").into());
    }
    Ok(())
}

/// What one scenario measured.
struct Row {
    writes: usize,
    /// Every reader's window for every write, in ms.
    windows: Vec<f64>,
    sync_windows: Vec<f64>,
    /// Values served more than [`LATE_US`] after a newer one's invalidation.
    wrong: u64,
    /// The same, served by Redis: a reader that computed a value before the
    /// writer's `INCR` stored it after the writer's invalidation (the race
    /// every cache-aside writer has), and Redis holds it until the next
    /// write of the key.
    raced: u64,
    /// Values older than one the same reader returned before (with a cache
    /// primary down, calls fail open and return what the body reads, newer
    /// than the cache until the writer's invalidation gets through).
    backwards: u64,
    lost: u64,
    local_hit_percent: f64,
    note: Option<String>,
}

/// The cache's deployment for one scenario.
enum Deployment {
    Server(RedisServer),
    Cluster(RedisCluster),
}

impl Deployment {
    fn start(scenario: Scenario) -> Self {
        match scenario {
            Scenario::Server => Self::Server(RedisServer::new()),
            Scenario::Cluster | Scenario::Failover => {
                Self::Cluster(RedisCluster::new(RedisClusterConfiguration {
                    num_nodes: 6,
                    num_replicas: 1,
                    ..Default::default()
                }))
            }
            Scenario::Reshard => Self::Cluster(RedisCluster::new(RedisClusterConfiguration {
                num_nodes: 3,
                num_replicas: 0,
                ..Default::default()
            })),
        }
    }

    fn target(&self) -> String {
        let url = |server: &RedisServer| {
            let (host, port) = server.host_and_port().expect("a TCP server");
            format!("redis://{host}:{port}")
        };
        match self {
            Self::Server(server) => url(server),
            Self::Cluster(cluster) => cluster
                .iter_servers()
                .map(url)
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// A running reader process.
struct Reader {
    child: Child,
    stdin: ChildStdin,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    sync: bool,
}

impl Reader {
    fn spawn(index: usize, target: &str, db: &str) -> Result<Self, Error> {
        let sync = index.is_multiple_of(2);
        let mut child = Command::new(std::env::current_exe()?)
            .args(["reader", target, db, if sync { "sync" } else { "async" }])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().ok_or("reader stdin")?;
        let stdout = child.stdout.take().ok_or("reader stdout")?;
        Ok(Self {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            sync,
        })
    }

    fn expect_line(&mut self, want: &str) -> Result<(), Error> {
        match self.lines.next() {
            Some(Ok(line)) if line == want => Ok(()),
            other => Err(format!("a reader said {other:?}, not {want}").into()),
        }
    }
}

/// What a reader reported: when it first returned each value, and its counters.
#[derive(Default)]
struct Report {
    /// `(key, value, µs, from the tier)` each time a key's value changed,
    /// in order.
    changes: Vec<(u64, u64, u64, bool)>,
    backwards: u64,
    last: HashMap<u64, u64>,
    calls: u64,
    local_hits: u64,
}

fn scenario_row(scenario: Scenario) -> Result<Row, Error> {
    let db_server = RedisServer::new();
    let (host, port) = db_server.host_and_port().ok_or("db address")?;
    let db = format!("redis://{host}:{port}");
    let mut deployment = Deployment::start(scenario);
    let target = deployment.target();
    let mut db_conn = connect_retrying(&db)?;
    for k in 0..KEYS {
        redis::cmd("SET")
            .arg(counter(k))
            .arg(1)
            .exec(&mut db_conn)?;
    }
    // The writer's own cache (no in-process tier): sets the targets once.
    TARGET.set(target.clone()).ok();
    DB.set(db.clone()).ok();
    let mut cluster = match &deployment {
        Deployment::Cluster(_) => Some(cluster_conn(&target)?),
        Deployment::Server(_) => None,
    };
    wait_for_cache()?;
    // Each key's slot, for `WAIT` on its primary (cluster).
    let slots: Vec<u16> = match &mut cluster {
        Some(conn) => (0..KEYS)
            .map(|k| key_slot(conn, k))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };

    let mut readers = (0..READERS)
        .map(|i| Reader::spawn(i, &target, &db))
        .collect::<Result<Vec<_>, _>>()?;
    for reader in &mut readers {
        reader.expect_line("ready")?;
    }

    let mut writes: Vec<(u64, u64, u64)> = Vec::new();
    let started = Instant::now();
    let mut event: Option<EventState> = None;
    let mut note = None;
    let mut i = 0usize;
    loop {
        let goal_met = writes.len() >= WRITES && event.as_mut().is_none_or(EventState::done);
        if goal_met {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err("the scenario did not finish in 2 minutes".into());
        }
        if event.is_none() && started.elapsed() > Duration::from_secs(1) {
            let slot = slots.first().copied().unwrap_or(0);
            event = Some(EventState::begin(scenario, &mut deployment, &target, slot)?);
        }
        let k = i as u64 % KEYS;
        i += 1;
        let v: u64 = redis::cmd("INCR").arg(counter(k)).query(&mut db_conn)?;
        let retry_until = Instant::now() + Duration::from_secs(60);
        while let Err(e) = value_invalidate(k) {
            if Instant::now() > retry_until {
                return Err(format!("value_invalidate({k}) failed for a minute: {e}").into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let (Some(conn), true) = (&mut cluster, scenario != Scenario::Reshard) {
            wait_for_replica(conn, slots[k as usize]);
        }
        writes.push((k, v, now_us()));
        let pause = 10 + fastrand_u64(6);
        std::thread::sleep(Duration::from_millis(pause));
    }
    if let Some(e) = &event {
        note = Some(e.describe()).filter(|note| !note.is_empty());
    }
    // The last writes settle; then every reader must hold the last values.
    std::thread::sleep(Duration::from_millis(500));
    let mut reports = Vec::new();
    for reader in &mut readers {
        writeln!(reader.stdin, "stop")?;
    }
    for reader in &mut readers {
        reports.push(read_report(reader)?);
        let _ = reader.child.wait();
    }

    let last_values: HashMap<u64, u64> = writes.iter().map(|&(k, v, _)| (k, v)).collect();
    let mut windows = Vec::new();
    let mut sync_windows = Vec::new();
    let mut wrong = 0;
    let mut lost = 0;
    let (mut calls, mut local_hits) = (0, 0);
    let mut backwards = 0;
    let mut raced = 0;
    for (reader, report) in readers.iter().zip(&reports) {
        backwards += report.backwards;
        calls += report.calls;
        local_hits += report.local_hits;
        for (k, v) in &last_values {
            if report.last.get(k) != Some(v) {
                lost += 1;
            }
        }
        for &(k, v, at) in &writes {
            let changes: Vec<(u64, u64, bool)> = (report.changes.iter())
                .filter(|c| c.0 == k)
                .map(|&(_, v, t, local)| (v, t, local))
                .collect();
            // When the reader returned `v` or newer for good: the change
            // after its last older value.
            let last_older = changes.iter().rposition(|&(seen, ..)| seen < v);
            let reached = match last_older {
                Some(i) => changes.get(i + 1).map(|&(_, t, _)| t),
                None => changes.first().map(|&(_, t, _)| t),
            };
            let Some(reached) = reached else { continue };
            let window = reached.saturating_sub(at);
            // Late: whether the older value came from the tier or from Redis.
            let from_tier = last_older.is_some_and(|i| changes[i].2);
            let late = u64::from(window > LATE_US);
            // An older value returned well after this write's invalidation.
            let stale = |&&(seen, t, _): &&(u64, u64, bool)| seen < v && t > at + LATE_US;
            let stale_tier = changes.iter().filter(|c| stale(c) && c.2).count() as u64;
            let stale_redis = changes.iter().filter(|c| stale(c) && !c.2).count() as u64;
            if from_tier {
                wrong += late;
            } else {
                raced += late;
            }
            wrong += stale_tier;
            raced += stale_redis;
            let window = window as f64 / 1000.0;
            windows.push(window);
            if reader.sync {
                sync_windows.push(window);
            }
        }
    }
    drop(deployment);
    Ok(Row {
        writes: writes.len(),
        windows,
        sync_windows,
        wrong,
        raced,
        backwards,
        lost,
        local_hit_percent: 100.0 * local_hits as f64 / calls.max(1) as f64,
        note,
    })
}

/// A failover or a resharding, begun during the writes.
enum EventState {
    None,
    Failover {
        killed_at: Instant,
        port: u16,
        promoted_after: Option<Duration>,
        /// The nodes still up, asked who serves `slot`.
        survivors: Vec<String>,
        slot: u16,
    },
    Reshard {
        child: Child,
        began: Instant,
        ended: Option<Duration>,
        moved: String,
    },
}

impl EventState {
    /// Begins the scenario's event on the primary of `slot`.
    fn begin(
        scenario: Scenario,
        deployment: &mut Deployment,
        target: &str,
        slot: u16,
    ) -> Result<Self, Error> {
        let Deployment::Cluster(cluster) = deployment else {
            return Ok(Self::None);
        };
        let mut conn = cluster_conn(target)?;
        let owner = owner_of(&mut conn, slot)?;
        match scenario {
            Scenario::Failover => {
                let server = cluster
                    .servers
                    .iter_mut()
                    .find(|s| s.host_and_port().is_some_and(|(_, p)| p == owner))
                    .ok_or("the primary of key 0")?;
                server.process.kill()?;
                let _ = server.process.wait();
                let survivors = (cluster.iter_servers())
                    .filter_map(|s| s.host_and_port())
                    .filter(|(_, port)| *port != owner)
                    .map(|(host, port)| format!("redis://{host}:{port}"))
                    .collect();
                Ok(Self::Failover {
                    killed_at: Instant::now(),
                    port: owner,
                    promoted_after: None,
                    survivors,
                    slot,
                })
            }
            Scenario::Reshard => {
                let ids = node_ids(cluster)?;
                let from = ids.iter().find(|(p, _)| *p == owner).ok_or("owner id")?;
                let to = ids.iter().find(|(p, _)| *p != owner).ok_or("another id")?;
                let child = Command::new("redis-cli")
                    .args(["--cluster", "reshard", &format!("127.0.0.1:{owner}")])
                    .args(["--cluster-from", &from.1, "--cluster-to", &to.1])
                    .args(["--cluster-slots", "16384", "--cluster-yes"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()?;
                Ok(Self::Reshard {
                    child,
                    began: Instant::now(),
                    ended: None,
                    moved: format!("every slot of :{owner} to :{}", to.0),
                })
            }
            _ => Ok(Self::None),
        }
    }

    /// Whether the event is over and enough writes followed it.
    fn done(&mut self) -> bool {
        match self {
            Self::None => true,
            Self::Failover {
                killed_at,
                port,
                promoted_after,
                survivors,
                slot,
            } => {
                let promoted = || {
                    survivors.iter().all(|url| {
                        redis::Client::open(url.as_str())
                            .and_then(|client| client.get_connection())
                            .map_err(Error::from)
                            .and_then(|mut conn| owner_of(&mut conn, *slot))
                            .is_ok_and(|owner| owner != *port)
                    })
                };
                if promoted_after.is_none() && promoted() {
                    *promoted_after = Some(killed_at.elapsed());
                }
                promoted_after
                    .is_some_and(|after| killed_at.elapsed() > after + Duration::from_secs(2))
            }
            Self::Reshard {
                child,
                began,
                ended,
                ..
            } => {
                if ended.is_none() && child.try_wait().ok().flatten().is_some() {
                    *ended = Some(began.elapsed());
                }
                ended.is_some_and(|after| began.elapsed() > after + Duration::from_secs(2))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::None => String::new(),
            Self::Failover {
                port,
                promoted_after,
                ..
            } => format!(
                "SIGKILL of the primary :{port} of key 0; its replica serving after {:.1} s",
                promoted_after.unwrap_or_default().as_secs_f64()
            ),
            Self::Reshard { ended, moved, .. } => format!(
                "redis-cli --cluster reshard moved {moved} in {:.1} s under the load",
                ended.unwrap_or_default().as_secs_f64()
            ),
        }
    }
}

/// A small random number below `n`, without a dependency.
fn fastrand_u64(n: u64) -> u64 {
    now_us().wrapping_mul(6364136223846793005) % n.max(1)
}

fn connect_retrying(url: &str) -> Result<redis::Connection, Error> {
    let client = redis::Client::open(url)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.get_connection() {
            Ok(conn) => return Ok(conn),
            Err(e) if Instant::now() > deadline => return Err(e.into()),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn cluster_conn(target: &str) -> Result<redis::cluster::ClusterConnection, Error> {
    let nodes: Vec<&str> = target.split(',').collect();
    let client = redis::cluster::ClusterClient::builder(nodes)
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(2))
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match client.get_connection() {
            Ok(conn) => return Ok(conn),
            Err(e) if Instant::now() > deadline => return Err(e.into()),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Waits until the cache answers, then stores every key's first value.
fn wait_for_cache() -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while CACHE.ping_blocking().is_err() {
        if Instant::now() > deadline {
            return Err("the cache never answered".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for k in 0..KEYS {
        value_refresh(k);
    }
    Ok(())
}

/// The Redis key of `value(k)`: the one key its invalidation deletes.
fn key_of(conn: &mut redis::cluster::ClusterConnection, k: u64) -> Result<String, Error> {
    let before = keys(conn)?;
    value_invalidate(k)?;
    let after = keys(conn)?;
    value_refresh(k);
    let gone: Vec<&String> = before.iter().filter(|key| !after.contains(key)).collect();
    match gone.as_slice() {
        [key] => Ok((*key).clone()),
        other => Err(format!("the key of value({k}): {other:?}").into()),
    }
}

fn keys(conn: &mut redis::cluster::ClusterConnection) -> Result<Vec<String>, Error> {
    let mut all = Vec::new();
    for port in primaries(conn)? {
        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: "127.0.0.1".to_owned(),
            port,
        });
        let mut scan = redis::cmd("KEYS");
        scan.arg(format!("{PREFIX}*"));
        let found = conn.route_command(&scan, route)?;
        let found: Vec<String> = redis::from_redis_value(found)?;
        all.extend(found);
    }
    Ok(all)
}

/// The slot of `value(k)`'s key.
fn key_slot(conn: &mut redis::cluster::ClusterConnection, k: u64) -> Result<u16, Error> {
    let key = key_of(conn, k)?;
    Ok(redis::cmd("CLUSTER").arg("KEYSLOT").arg(&key).query(conn)?)
}

/// `WAIT 1` on the primary of `slot`: the replica has the invalidation.
fn wait_for_replica(conn: &mut redis::cluster::ClusterConnection, slot: u16) {
    let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
        slot,
        SlotAddr::Master,
    )));
    let mut wait = redis::cmd("WAIT");
    wait.arg(1).arg(200);
    let _ = conn.route_command(&wait, route);
}

/// The ports of the primaries, from `CLUSTER SLOTS`.
fn primaries(conn: &mut redis::cluster::ClusterConnection) -> Result<Vec<u16>, Error> {
    let ranges: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER").arg("SLOTS").query(conn)?;
    let mut ports = Vec::new();
    for range in ranges {
        if let Some(redis::Value::Array(node)) = range.get(2)
            && let Some(port) = node.get(1)
        {
            let port: u16 = redis::from_redis_value(port.clone())?;
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
    }
    Ok(ports)
}

/// The port of the primary serving `slot`.
fn owner_of(conn: &mut impl redis::ConnectionLike, slot: u16) -> Result<u16, Error> {
    let ranges: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER").arg("SLOTS").query(conn)?;
    for range in ranges {
        let (start, end): (u16, u16) = (
            redis::from_redis_value(range[0].clone())?,
            redis::from_redis_value(range[1].clone())?,
        );
        if (start..=end).contains(&slot)
            && let Some(redis::Value::Array(node)) = range.get(2)
        {
            return Ok(redis::from_redis_value(node[1].clone())?);
        }
    }
    Err(format!("no primary serves slot {slot}").into())
}

/// Each primary's port and node id.
fn node_ids(cluster: &RedisCluster) -> Result<Vec<(u16, String)>, Error> {
    let mut ids = Vec::new();
    for server in cluster.iter_servers() {
        let (host, port) = server.host_and_port().ok_or("address")?;
        let mut conn = connect_retrying(&format!("redis://{host}:{port}"))?;
        let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut conn)?;
        let primary = matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master");
        if primary {
            ids.push((port, redis::cmd("CLUSTER").arg("MYID").query(&mut conn)?));
        }
    }
    Ok(ids)
}

fn read_report(reader: &mut Reader) -> Result<Report, Error> {
    let mut report = Report::default();
    for line in reader.lines.by_ref() {
        let line = line?;
        let fields: Vec<u64> = line
            .split(' ')
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        match (line.split(' ').next(), fields.as_slice()) {
            (Some("change"), &[k, v, t, local]) => report.changes.push((k, v, t, local == 1)),
            (Some("last"), &[k, v]) => {
                report.last.insert(k, v);
            }
            (Some("counts"), &[calls, local, backwards]) => {
                report.calls = calls;
                report.local_hits = local;
                report.backwards = backwards;
            }
            (Some("end"), _) => return Ok(report),
            _ => return Err(format!("a reader said {line:?}").into()),
        }
    }
    Err("a reader ended without a report".into())
}

fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

/// A reader process: `reader <target> <db> sync|async`.
fn reader(args: &[String]) -> Result<(), Error> {
    let [target, db, kind] = args else {
        return Err("reader <target> <db> sync|async".into());
    };
    TARGET.set(target.clone()).ok();
    DB.set(db.clone()).ok();
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            stop.store(true, Ordering::SeqCst);
        });
    }
    let mut state = ReaderState::default();
    let out = std::io::stdout();
    let pause = reader_pause();
    if kind == "sync" {
        LazyLock::force(&DB_SYNC);
        warm(value)?;
        writeln!(out.lock(), "ready")?;
        while !stop.load(Ordering::SeqCst) {
            for k in 0..KEYS {
                let before = CACHE.stats().local_hits;
                let v = value(k);
                state.saw(k, v, CACHE.stats().local_hits > before);
            }
            if pause > Duration::ZERO {
                std::thread::sleep(pause);
            }
        }
    } else {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let client = redis::Client::open(db.as_str())?;
            DB_ASYNC
                .set(client.get_multiplexed_async_connection().await?)
                .ok();
            let deadline = Instant::now() + Duration::from_secs(30);
            'warm: loop {
                let before = CACHE.stats().local_hits;
                for k in 0..KEYS {
                    value_async(k).await;
                }
                if CACHE.stats().local_hits >= before + KEYS {
                    break 'warm;
                }
                if Instant::now() > deadline {
                    return Err::<(), Error>("the tier never answered".into());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            writeln!(out.lock(), "ready")?;
            while !stop.load(Ordering::SeqCst) {
                for k in 0..KEYS {
                    let before = CACHE.stats().local_hits;
                    let v = value_async(k).await;
                    state.saw(k, v, CACHE.stats().local_hits > before);
                }
                if pause > Duration::ZERO {
                    tokio::time::sleep(pause).await;
                } else {
                    tokio::task::yield_now().await;
                }
            }
            Ok(())
        })?;
    }
    let stats = CACHE.stats();
    let mut out = out.lock();
    for (k, v, t, local) in &state.changes {
        writeln!(out, "change {k} {v} {t} {}", u8::from(*local))?;
    }
    for (k, v) in &state.last {
        writeln!(out, "last {k} {v}")?;
    }
    writeln!(
        out,
        "counts {} {} {}",
        state.calls, stats.local_hits, state.backwards
    )?;
    writeln!(out, "end")?;
    Ok(())
}

/// Calls until every key was answered by the tier.
fn warm(mut call: impl FnMut(u64) -> u64) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let before = CACHE.stats().local_hits;
        for k in 0..KEYS {
            call(k);
        }
        if CACHE.stats().local_hits >= before + KEYS {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the tier never answered".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What a reader saw.
#[derive(Default)]
struct ReaderState {
    /// `(key, value, µs, from the tier)` each time a key's value changed.
    changes: Vec<(u64, u64, u64, bool)>,
    last: HashMap<u64, u64>,
    calls: u64,
    backwards: u64,
}

impl ReaderState {
    /// Notes that a call for `k` returned `v`, from the tier if `local`.
    fn saw(&mut self, k: u64, v: u64, local: bool) {
        self.calls += 1;
        let last = self.last.entry(k).or_insert(0);
        if v != *last {
            self.changes.push((k, v, now_us(), local));
            self.backwards += u64::from(v < *last);
            *last = v;
        }
    }
}

/// The pause between a reader's rounds: [`READER_PAUSE`], or
/// `COHERENCE_PAUSE_US` µs (0: readers spin).
fn reader_pause() -> Duration {
    std::env::var("COHERENCE_PAUSE_US")
        .ok()
        .and_then(|us| us.parse().ok())
        .map_or(READER_PAUSE, Duration::from_micros)
}
