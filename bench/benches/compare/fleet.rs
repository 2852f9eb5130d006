//! The fleet rows: what the in-process tier's invalidations cost a Redis
//! Cluster of 3 primaries (started here with `redis-test`) as application
//! instances are added. 10,000 keys of one cached function are written by
//! 3 writer threads (one per primary, pipelines of 100 `SET`s of the key's
//! own value, keys in turn) while N instances hold their tiers:
//! - default mode (what the tier does): N `Cache`s in this process, each
//!   with its own tracking connections (one per primary) and `local` tier,
//!   instance i holding the tenth of the keys whose index ends in i % 10;
//!   each reads its keys every 20 ms, as a tier whose keys are hot would,
//!   so what a write invalidates is read (and tracked) again. Redis reports
//!   a write only to the instances holding the key: N / 10 of them (one
//!   tenth of the writes for N = 1).
//! - broadcast (what the tier did on a cluster before): N instances' worth
//!   of RESP3 connections, one per primary each, with `CLIENT TRACKING ON
//!   BCAST PREFIX <prefix>`, drained here: every write goes to all N.
//!
//!   Each instance reads again the keys of its tenth (by a hash of the
//!   name) that a push names, with one `GET`, as the tier did then.
//!
//! Printed: `SET`s per second (median of interleaved rounds), the CPU time
//! the primaries spent per `SET` (`INFO cpu`; the instances' reads
//! included), and the keys the instances were told of per write
//! (`Stats::invalidations` of the `Cache`s; the keys in the broadcast
//! pushes), beside the number of instances that hold a written key. Everything (3 `redis-server`s, the
//! writers, the instances) shares this machine's CPUs: the ratios between
//! rows are what to read.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ProtocolVersion, PushInfo, PushKind, Value};
use redis_cached::{Cache, redis_cached};
use redis_test::cluster::{RedisCluster, RedisClusterConfiguration};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

use super::super::BenchError;

/// The cached function's keys.
const KEYS: u64 = 10_000;
/// The cache prefix of the fleet.
const PREFIX: &str = "fleet:";
/// `SET`s per round, over all primaries.
const SETS: usize = 150_000;
/// `SET`s per pipeline.
const PIPELINE: usize = 100;
/// Interleaved rounds per row.
const ROUNDS: usize = 3;
/// How often a default-mode instance reads its keys.
const REREAD: Duration = Duration::from_millis(20);

/// The instances of the current row, by index.
static FLEET: OnceLock<std::sync::RwLock<Vec<Cache>>> = OnceLock::new();

thread_local! {
    /// Which instance this thread's (or task's, see [`as_instance`]) calls use.
    static WHO: Cell<usize> = const { Cell::new(0) };
}

/// The cache of the instance this call is made for.
fn instance() -> Cache {
    let fleet = FLEET.get().expect("fleet set").read().expect("fleet lock");
    fleet[WHO.with(Cell::get)].clone()
}

#[redis_cached(ttl = 3600, cache = instance(), local = 2_000, name = "fleet::item")]
async fn item(id: u64) -> u64 {
    id * 3 + 1
}

/// Calls `item(id)` as instance `who`.
async fn as_instance(who: usize, id: u64) -> u64 {
    // Set on this thread for the synchronous part of the call, where the
    // generated code picks its cache; a call completes on the thread it
    // started on only if it does not wait, so set it around each poll.
    let mut call = std::pin::pin!(item(id));
    std::future::poll_fn(|cx| {
        WHO.with(|w| w.set(who));
        call.as_mut().poll(cx)
    })
    .await
}

/// How an instance's tier learns of writes.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    None,
    Default,
    Broadcast,
}

/// Prints the fleet rows.
pub(super) fn rows(rt: &Runtime) -> Result<(), BenchError> {
    let cluster = RedisCluster::new(RedisClusterConfiguration {
        num_nodes: 3,
        num_replicas: 0,
        ..Default::default()
    });
    let nodes: Vec<String> = cluster
        .iter_servers()
        .filter_map(|server| server.host_and_port())
        .map(|(host, port)| format!("redis://{host}:{port}"))
        .collect();
    FLEET.get_or_init(Default::default);
    // The keys and their values, stored by one instance without a tier.
    let writer = Cache::builder(&nodes.join(","))
        .prefix(PREFIX)
        .build()
        .map_err(|e| format!("fleet cache: {e}"))?;
    *FLEET.get().ok_or("fleet")?.write().map_err(|_| "lock")? = vec![writer.clone()];
    let deadline = Instant::now() + Duration::from_secs(20);
    while rt.block_on(writer.ping()).is_err() {
        if Instant::now() > deadline {
            return Err("the fleet's cluster never answered".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    rt.block_on(async {
        for id in 0..KEYS {
            as_instance(0, id).await;
        }
    });
    let primaries = keys_by_primary(&nodes)?;

    let rows = [
        (0, Mode::None),
        (1, Mode::Default),
        (10, Mode::Default),
        (10, Mode::Broadcast),
        (50, Mode::Default),
        (50, Mode::Broadcast),
    ];
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    let mut told = vec![0u64; rows.len()];
    let mut writes = vec![0u64; rows.len()];
    // A round unmeasured: the servers' buffers and the writers warm up.
    sets_per_sec(&primaries)?;
    let baseline = clients(&primaries)?;
    for _ in 0..ROUNDS {
        for (row, &(instances, mode)) in rows.iter().enumerate() {
            let held = Held::start(rt, &nodes, instances, mode)?;
            let before = held.told();
            let cpu_before = redis_cpu(&primaries)?;
            figures[row].push(sets_per_sec(&primaries)?);
            // The last pushes of the round are still on their way: wait
            // until none has come for 200 ms.
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut last = held.told();
            loop {
                std::thread::sleep(Duration::from_millis(200));
                let now = held.told();
                if now == last || Instant::now() > deadline {
                    break;
                }
                last = now;
            }
            // µs of the primaries' CPU per SET (the instances' reads too).
            cpu[row].push((redis_cpu(&primaries)? - cpu_before) * 1e6 / SETS as f64);
            told[row] += held.told() - before;
            writes[row] += SETS as u64;
            held.stop(rt);
            // The next row starts once this one's connections are gone.
            let deadline = Instant::now() + Duration::from_secs(10);
            while clients(&primaries)? > baseline && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    println!();
    println!(
        "fleet rows: SETs/s on a 3-primary Redis Cluster ({SETS} SETs of {KEYS} keys per round, \
         3 writer threads, pipelines of {PIPELINE}) while N instances hold their tiers, each a \
         tenth of the keys; median of {ROUNDS} interleaved rounds; all on this machine"
    );
    println!(
        "{:<42} {:>10} {:>8} {:>14} {:>18} {:>16}",
        "row", "SETs/s", "vs 0", "Redis µs/SET", "keys told / write", "holders / write"
    );
    let base = super::median(&mut figures[0].clone());
    for (row, &(instances, mode)) in rows.iter().enumerate() {
        let name = match mode {
            Mode::None => "no trackers".to_owned(),
            Mode::Default => format!("{instances} instances, default mode (the tier)"),
            Mode::Broadcast => format!("{instances} instances, BCAST PREFIX"),
        };
        let holders = match mode {
            Mode::None => 0.0,
            Mode::Default => instances as f64 / 10.0,
            Mode::Broadcast => instances as f64,
        };
        let sets = super::median(&mut figures[row]);
        println!(
            "{name:<42} {sets:>10.0} {:>8.2} {:>14.2} {:>18.2} {holders:>16.1}",
            sets / base,
            super::median(&mut cpu[row]),
            told[row] as f64 / writes[row].max(1) as f64,
        );
    }
    Ok(())
}

/// The instances of one row, and what they were told.
struct Held {
    /// Default mode: the instances' readers run until this is set.
    stop: Arc<AtomicBool>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    /// Broadcast: the connections and the keys their pushes named.
    conns: Vec<MultiplexedConnection>,
    drains: Vec<tokio::task::JoinHandle<()>>,
    pushed: Arc<AtomicU64>,
    caches: Vec<Cache>,
}

impl Held {
    fn start(
        rt: &Runtime,
        nodes: &[String],
        instances: usize,
        mode: Mode,
    ) -> Result<Self, BenchError> {
        let mut held = Self {
            stop: Arc::new(AtomicBool::new(false)),
            readers: Vec::new(),
            conns: Vec::new(),
            drains: Vec::new(),
            pushed: Arc::new(AtomicU64::new(0)),
            caches: Vec::new(),
        };
        match mode {
            Mode::None => {}
            Mode::Default => {
                for _ in 0..instances {
                    let cache = Cache::builder(&nodes.join(","))
                        .prefix(PREFIX)
                        .build()
                        .map_err(|e| format!("fleet cache: {e}"))?;
                    held.caches.push(cache);
                }
                *FLEET.get().ok_or("fleet")?.write().map_err(|_| "lock")? = held.caches.clone();
                // Every instance holds its tenth before the round starts.
                rt.block_on(warm(instances))?;
                for who in 0..instances {
                    let stop = held.stop.clone();
                    held.readers.push(rt.spawn(async move {
                        while !stop.load(Ordering::Relaxed) {
                            for id in tenth(who) {
                                as_instance(who, id).await;
                            }
                            tokio::time::sleep(REREAD).await;
                        }
                    }));
                }
            }
            Mode::Broadcast => {
                let pushed = held.pushed.clone();
                let (conns, drains) = rt.block_on(broadcast(nodes, instances, &pushed))?;
                held.conns = conns;
                held.drains = drains;
            }
        }
        Ok(held)
    }

    /// The keys the instances were told of so far.
    fn told(&self) -> u64 {
        let caches: u64 = self.caches.iter().map(|c| c.stats().invalidations).sum();
        caches + self.pushed.load(Ordering::Relaxed)
    }

    fn stop(mut self, rt: &Runtime) {
        self.stop.store(true, Ordering::Relaxed);
        for reader in self.readers.drain(..) {
            let _ = rt.block_on(reader);
        }
        self.drains.iter().for_each(tokio::task::JoinHandle::abort);
        self.conns.clear();
        // The instances' tracking ends as their caches are dropped.
        self.caches.clear();
        if let Some(fleet) = FLEET.get()
            && let Ok(mut fleet) = fleet.write()
        {
            fleet.truncate(1);
        }
    }
}

/// The keys instance `who` holds: a tenth of them.
fn tenth(who: usize) -> impl Iterator<Item = u64> {
    (who as u64 % 10..KEYS).step_by(10)
}

/// Reads until every instance's tier holds its tenth.
async fn warm(instances: usize) -> Result<(), BenchError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let fleet = FLEET.get().ok_or("fleet")?;
    for who in 0..instances {
        let cache = fleet.read().map_err(|_| "lock")?[who].clone();
        loop {
            let before = cache.stats().local_hits;
            for id in tenth(who) {
                as_instance(who, id).await;
            }
            if cache.stats().local_hits >= before + KEYS / 10 {
                break;
            }
            if Instant::now() > deadline {
                return Err("the fleet's tiers never held their keys".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    Ok(())
}

/// `instances` instances' worth of broadcast tracking connections, one per
/// primary each, drained; the keys their pushes name are counted in `pushed`.
async fn broadcast(
    nodes: &[String],
    instances: usize,
    pushed: &Arc<AtomicU64>,
) -> Result<(Vec<MultiplexedConnection>, Vec<tokio::task::JoinHandle<()>>), BenchError> {
    let mut conns = Vec::new();
    let mut drains = Vec::new();
    let primaries = primary_urls(nodes)?;
    for who in 0..instances {
        for url in &primaries {
            let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
            let pushed = pushed.clone();
            // Counted as they arrive; the keys this instance holds are
            // handed on to be read again.
            let count = move |push: PushInfo| {
                if push.kind == PushKind::Invalidate
                    && let Some(Value::Array(keys)) = push.data.first()
                {
                    pushed.fetch_add(keys.len() as u64, Ordering::Relaxed);
                    for key in keys {
                        if let Value::BulkString(key) = key
                            && holds(who, key)
                        {
                            let _ = tx.send(key.clone());
                        }
                    }
                }
                Ok::<(), std::convert::Infallible>(())
            };
            let client = resp3(url)?;
            let mut conn = client
                .get_multiplexed_async_connection_with_config(
                    &AsyncConnectionConfig::new().set_push_sender(count),
                )
                .await?;
            redis::cmd("CLIENT")
                .arg(&["TRACKING", "ON", "BCAST", "PREFIX", PREFIX])
                .exec_async(&mut conn)
                .await?;
            let mut reader = conn.clone();
            // As the tier read them then: one GET, no tracking needed.
            drains.push(tokio::spawn(async move {
                while let Some(key) = rx.recv().await {
                    let mut get = redis::cmd("GET");
                    get.arg(key);
                    let _: Result<Option<Vec<u8>>, _> = get.query_async(&mut reader).await;
                }
            }));
            conns.push(conn);
        }
    }
    Ok((conns, drains))
}

/// Whether broadcast instance `who` holds the key named `key`: a tenth of
/// the keys each, by a hash of the name (the default-mode instances'
/// tenths go by argument; the share is the same).
fn holds(who: usize, key: &[u8]) -> bool {
    let hash = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    hash % 10 == who as u64 % 10
}

/// How many clients the primaries have, together.
fn clients(primaries: &[Primary]) -> Result<u64, BenchError> {
    let mut total = 0;
    for (url, _) in primaries {
        let mut conn = Client::open(url.as_str())?.get_connection()?;
        let info: String = redis::cmd("INFO").arg("clients").query(&mut conn)?;
        total += info
            .lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    // This function's own connection, counted on each.
    Ok(total.saturating_sub(primaries.len() as u64))
}

/// The CPU time (user + system, in seconds) the primaries have used.
fn redis_cpu(primaries: &[Primary]) -> Result<f64, BenchError> {
    let mut total = 0.0;
    for (url, _) in primaries {
        let mut conn = Client::open(url.as_str())?.get_connection()?;
        let info: String = redis::cmd("INFO").arg("cpu").query(&mut conn)?;
        total += info
            .lines()
            .filter(|l| l.starts_with("used_cpu_sys:") || l.starts_with("used_cpu_user:"))
            .filter_map(|l| l.split(':').nth(1)?.trim().parse::<f64>().ok())
            .sum::<f64>();
    }
    Ok(total)
}

/// The URL of `url` speaking RESP3, which carries the invalidation pushes.
fn resp3(url: &str) -> Result<Client, BenchError> {
    let info = Client::open(url)?.get_connection_info().clone();
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    Ok(Client::open(info.set_redis_settings(settings))?)
}

/// The URL of each node that is a primary.
fn primary_urls(nodes: &[String]) -> Result<Vec<String>, BenchError> {
    let mut primaries = Vec::new();
    for url in nodes {
        let mut conn = Client::open(url.as_str())?.get_connection()?;
        let role: Vec<Value> = redis::cmd("ROLE").query(&mut conn)?;
        if matches!(role.first(), Some(Value::BulkString(r)) if r == b"master") {
            primaries.push(url.clone());
        }
    }
    Ok(primaries)
}

/// A primary's URL, and the keys it holds with their values.
type Primary = (String, Vec<(String, Vec<u8>)>);

/// Each primary's URL, and the keys (with their values) it holds.
fn keys_by_primary(nodes: &[String]) -> Result<Vec<Primary>, BenchError> {
    let mut all = Vec::new();
    for url in primary_urls(nodes)? {
        let mut conn = Client::open(url.as_str())?.get_connection()?;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{PREFIX}*"))
            .query(&mut conn)?;
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.get(key);
        }
        let values: Vec<Vec<u8>> = pipe.query(&mut conn)?;
        all.push((url, keys.into_iter().zip(values).collect::<Vec<_>>()));
    }
    let total: usize = all.iter().map(|(_, keys)| keys.len()).sum();
    if total as u64 != KEYS {
        return Err(format!("the fleet's cluster holds {total} keys, not {KEYS}").into());
    }
    Ok(all)
}

/// `SETS` writes of the keys with their own values, a third from each of
/// 3 threads (one per primary), in pipelines: how many per second.
fn sets_per_sec(primaries: &[Primary]) -> Result<f64, BenchError> {
    let started = Instant::now();
    let per_primary = SETS / primaries.len().max(1);
    std::thread::scope(|scope| {
        let writers: Vec<_> = primaries
            .iter()
            .map(|(url, keys)| {
                scope.spawn(move || -> Result<(), BenchError> {
                    let mut conn = Client::open(url.as_str())?.get_connection()?;
                    let mut next = keys.iter().cycle();
                    for _ in 0..per_primary / PIPELINE {
                        let mut pipe = redis::pipe();
                        for (key, value) in next.by_ref().take(PIPELINE) {
                            pipe.set(key, value).ignore();
                        }
                        pipe.exec(&mut conn)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for writer in writers {
            writer.join().map_err(|_| "a writer panicked")??;
        }
        Ok::<(), BenchError>(())
    })?;
    Ok((per_primary / PIPELINE * PIPELINE * primaries.len()) as f64
        / started.elapsed().as_secs_f64())
}
