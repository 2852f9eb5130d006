//! What a cached call costs with `#[redis_cached]`, next to the same call
//! written by hand with the `redis` crate and next to the `cached` crate 4.1,
//! all against one `redis-server` this benchmark starts itself (through the
//! workspace's test harness, `tests/harness`), printed as one table.
//!
//! Run it (release profile; needs `redis-server` on `PATH`, and uses
//! `redis-benchmark` for a reference line when it is there):
//!
//! ```sh
//! cargo bench -p bench
//! ```
//!
//! Contestants:
//! - hand-written async: a `redis` `MultiplexedConnection`, `GET key`, bincode
//!   2 decode (serde, standard configuration); on a miss the value is
//!   computed, encoded and stored with `SET key value EX ttl`; the key is
//!   `format!`ed from the argument.
//! - hand-written sync: the same over a plain `redis::Connection`.
//! - ours async / ours sync: `#[redis_cached(ttl = 600, cache = CACHE)]` on an
//!   `async fn` / a `fn`.
//! - cached: `#[concurrent_cached]` with its `AsyncRedisCache` store (tokio,
//!   multiplexed connection, MessagePack values), built by the attribute's
//!   `ty`/`create` as its README shows: `redis = true` alone would take the
//!   URL from `CACHED_REDIS_CONNECTION_STRING`, which this process can't set
//!   for itself without `unsafe`.
//! - ours in-process tier: `#[redis_cached(ttl = 600, cache = LOCAL, local = 16)]`,
//!   against `cached`'s `AsyncRedisCache` with `client_side_caching(true)`.
//!   The tier has its own `Cache` (prefix `ours-local:`), so the client-side
//!   caching it turns on doesn't touch the plain rows.
//!
//! Rows, for a `u64`, a ~1 KiB struct and a 64 KiB `Vec<f64>`:
//! - hit: the key is in Redis; time per call, one caller. Async callers run
//!   on a current-thread tokio runtime, so the caller and its connection's
//!   driver share a thread and the figure doesn't depend on which worker a
//!   task landed on; sync callers run on the main thread.
//! - miss: every call has a fresh argument (GET miss, compute, SET); the keys
//!   of a round are deleted after it, so the server stays small.
//! - hits/s: 1, 8 and 64 tasks calling in a loop on a 2-worker tokio runtime
//!   (`u64` only); the hand-written tasks each clone one shared connection.
//! - in-process: a hit answered without a round trip.
//! - cluster (`compare/cluster.rs`): ours on a local 3-primary Redis Cluster
//!   against ours on the one server: hit, miss and 64 tasks' hits/s, `u64`.
//! - tracking (`compare/tracking.rs`): SETs/s of `redis-benchmark` against a
//!   fresh server while 0, 10 and 50 instances' trackers are connected and
//!   drained, broadcast against default-mode tracking.
//! - signed (`u64` and 1 KiB only): hit and miss of the same function on a
//!   cache with a `signing_key` (prefix `ours-signed:`), against ours
//!   unsigned, timed in the same rounds: the cost of HMAC-SHA256.
//! - compression (`compare/compression.rs`): ours with `compress = true`
//!   against ours without, for ~64 KiB and ~1 MiB lists of orders: bytes
//!   stored, hit and miss time.
//! - key digest (`u64` and 1 KiB arguments): one call's key digest
//!   (BLAKE3, through the same `__private::digest` generated code calls)
//!   against key format 2's xxh3-128 over the same bytes, without Redis.
//!
//! A run of every hit, miss and hits/s row also draws them as a chart
//! (`compare/chart.rs`) into `target/bench-chart.svg`; `bench/chart.svg`, which
//! bench/README.md shows, is a copy of one.
//!
//! Method: each contestant is warmed up, then the contestants of a row take
//! turns for [`ROUNDS`] rounds, each round starting one contestant later
//! (A B C, B C A, C A B, …) so that each runs in each place equally often;
//! a contestant's figure is its median round, and a ratio is ours / other
//! from the medians of this run.
//! Every round's last value is checked, and so are our hit and miss counters
//! (`Cache::stats`); a wrong value, a miscount or a cache error makes the
//! benchmark exit non-zero.
//!
//! The files, by job: `compare/fixtures.rs` (cached functions of the
//! values every bench shares, `shared/values.rs`, and the caches), `compare/baselines.rs` (the hand-written pattern, and every
//! contestant behind one interface), `compare/timing.rs` (rounds, medians,
//! checks), `compare/table.rs` (the printed table), `compare/rows.rs` (the
//! hit, miss, digest, hits/s and in-process rows), one file per further
//! group of rows (`cluster.rs`, `compression.rs`, `tracking.rs`), and
//! `compare/chart.rs`; this file is the command line: which rows, the
//! server, the summary. bench/README.md says what each row measures and how
//! to read a run.

use std::collections::HashSet;
use std::process::ExitCode;

use redis::Commands;
use redis_cached::Stats;

#[path = "compare/baselines.rs"]
mod baselines;
#[path = "compare/chart.rs"]
mod chart;
#[path = "compare/cluster.rs"]
mod cluster;
#[path = "compare/compression.rs"]
mod compression;
#[path = "compare/fixtures.rs"]
mod fixtures;
#[path = "compare/rows.rs"]
mod rows;
#[path = "compare/table.rs"]
mod table;
#[path = "compare/timing.rs"]
mod timing;
#[path = "compare/tracking.rs"]
mod tracking;
#[path = "shared/values.rs"]
mod values;

// What the files above share, named here so each reaches it as `super::…`.
use baselines::{
    AsyncCall, Cached, CachedCsc, CachedTasks, HAND_MISSES, HandAsync, HandSync, OursAsync,
    OursLocal, OursSigned, OursSync, SyncCall, xxh3_digest,
};
use fixtures::{
    CACHE, HIT_ID, LOCAL, OneKib, SIGNED, SixtyFourKib, Size, Slot, Small, TTL, cached_small_tasks,
    cached_store, small,
};
use rows::{Bench, Kind};
use table::{Table, Target, Unit};
use timing::{
    Ids, LATENCY_ROUND, ROUNDS, Samples, calls_for, check, counted, hand_counted, hits_per_sec,
    time_async, time_sync, turns, warm_csc, warm_local,
};

/// Whatever went wrong; the benchmark stops on it.
#[derive(Debug, Clone, PartialEq)]
struct BenchError(String);

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<redis::RedisError> for BenchError {
    fn from(e: redis::RedisError) -> Self {
        Self(format!("redis: {e}"))
    }
}

impl From<bincode::error::EncodeError> for BenchError {
    fn from(e: bincode::error::EncodeError) -> Self {
        Self(format!("bincode: {e}"))
    }
}

impl From<String> for BenchError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for BenchError {
    fn from(message: &str) -> Self {
        Self(message.to_owned())
    }
}

/// `redis-benchmark`'s GET line against the same server, if it is installed.
fn reference(host: &str, port: u16) -> String {
    let port = port.to_string();
    let args = [
        "-h", host, "-p", &port, "-t", "get", "-c", "50", "-n", "100000", "-q",
    ];
    let shown = format!("redis-benchmark {}", args.join(" "));
    match std::process::Command::new("redis-benchmark")
        .args(args)
        .output()
    {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text
                .split(['\r', '\n'])
                .map(str::trim)
                .rfind(|l| !l.is_empty());
            format!("reference, {shown}: {}", line.unwrap_or("(no output)"))
        }
        Ok(out) => format!("reference, {shown}: failed ({})", out.status),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            "reference: redis-benchmark is not installed; no reference line".to_owned()
        }
        Err(e) => format!("reference, {shown}: could not run it: {e}"),
    }
}

/// The 1-minute load average, where the system tells it (Linux): figures
/// from a busy machine favour whoever hands a call to fewer threads.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn show_stats(name: &str, s: Stats) {
    println!(
        "{name}: {} hits ({} in process), {} misses, {} stores, {} errors",
        s.hits, s.local_hits, s.misses, s.stores, s.errors
    );
}

fn run() -> Result<(), BenchError> {
    // The workspace's test harness starts it and waits until it answers.
    let server = harness::Server::start();
    let (host, port) = ("127.0.0.1", server.port());
    let url = server.url().to_owned();
    fixtures::connect(&url)?;

    let one = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let two = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let client = redis::Client::open(url.as_str())?;
    let mut admin = client.get_connection()?;
    let info: String = redis::cmd("INFO").arg("server").query(&mut admin)?;
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?")
        .to_owned();
    let conn = one.block_on(client.get_multiplexed_async_connection())?;
    let conn_two = two.block_on(client.get_multiplexed_async_connection())?;
    one.block_on(CACHE.ping())
        .map_err(|e| format!("ours: ping: {e}"))?;
    one.block_on(LOCAL.ping())
        .map_err(|e| format!("ours in-process: ping: {e}"))?;
    one.block_on(SIGNED.ping())
        .map_err(|e| format!("ours signed: ping: {e}"))?;

    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    println!("redis-cached against the hand-written pattern and the cached crate 4.1");
    println!("command: cargo bench -p bench");
    println!(
        "one redis-server {version} for all ({}, {cpus} CPUs); {ROUNDS} interleaved rounds \
         per row, median round per contestant; ratio = ours / other, from this run's medians",
        std::env::consts::ARCH
    );
    println!(
        "latency rows (hit, miss, in-process hit): time per call, one caller on a \
         current-thread tokio runtime (sync: the plain thread); ratio < 1 means ours is faster"
    );
    println!(
        "throughput rows (hits/s): calls per second, tasks on a 2-worker tokio runtime; \
         ratio > 1 means ours is faster"
    );
    println!("target: what the project aims for; met: whether this run met it");
    println!("load average (1 min) at the start: {}", load());
    println!();
    Table::header();

    let mut b = Bench {
        one,
        two,
        conn,
        conn_two,
        sync_conn: client.get_connection()?,
        admin,
        keep: HashSet::new(),
        next_id: 1_000_000,
        table: Table { missed: 0 },
    };
    // `cargo bench -p bench -- miss local`: only those groups of rows.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let wants = |group: &str| only.is_empty() || only.iter().any(|o| o == group);
    if wants("hit") {
        b.latency::<Small>(Kind::Hit)?;
        b.latency::<OneKib>(Kind::Hit)?;
        b.latency::<SixtyFourKib>(Kind::Hit)?;
    }
    if wants("digest") {
        b.key_digest::<Small>()?;
        b.key_digest::<OneKib>()?;
    }
    b.keep = b.admin.keys::<_, Vec<String>>("*")?.into_iter().collect();
    if wants("miss") {
        b.latency::<Small>(Kind::Miss)?;
        b.latency::<OneKib>(Kind::Miss)?;
        b.latency::<SixtyFourKib>(Kind::Miss)?;
    }
    if wants("compression") {
        b.compression()?;
    }
    if wants("throughput") {
        for tasks in [1, 8, 64] {
            b.throughput(tasks)?;
        }
    }
    if wants("local") {
        b.in_process::<Small>()?;
        b.in_process::<OneKib>()?;
        b.in_process::<SixtyFourKib>()?;
    }
    let redis_cluster = if wants("cluster") {
        let started = cluster::start()?;
        b.cluster()?;
        Some(started)
    } else {
        None
    };
    if wants("tracking") {
        tracking::rows(&b.two)?;
    }

    println!();
    println!("{}", reference(host, port));
    show_stats("ours (plain rows)", CACHE.stats());
    show_stats("ours (in-process rows)", LOCAL.stats());
    show_stats("ours (cluster rows)", cluster::stats());
    show_stats("ours (signed rows)", SIGNED.stats());
    println!("load average (1 min) at the end: {}", load());
    println!("targets missed: {}", b.table.missed);
    if let Some(path) = chart::write()? {
        println!("chart: {}", path.display());
    }
    let errors = CACHE.stats().errors
        + LOCAL.stats().errors
        + cluster::stats().errors
        + SIGNED.stats().errors;
    drop(b);
    drop(server);
    drop(redis_cluster);
    if errors > 0 {
        return Err(format!(
            "ours counted {errors} cache errors: the rows measured the fail-open path"
        )
        .into());
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            ExitCode::FAILURE
        }
    }
}
