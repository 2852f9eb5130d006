//! What a cached call costs with `#[redis_cached]`, next to the same call
//! written by hand with the `redis` crate and next to the `cached` crate 4.1,
//! all against one `redis-server` this benchmark starts itself (through
//! `redis-test`), printed as one table.
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
//! the README shows, is a copy of one.
//!
//! Method: each contestant is warmed up, then the contestants of a row take
//! turns (A B C A B C …) for [`ROUNDS`] rounds; a contestant's figure is its
//! median round, and a ratio is ours / other from the medians of this run.
//! Every round's last value is checked, and so are our hit and miss counters
//! (`Cache::stats`); a wrong value, a miscount or a cache error makes the
//! benchmark exit non-zero.

use std::collections::HashSet;
use std::fmt::Debug;
use std::future::Future;
use std::hint::black_box;
use std::io::Write;
use std::marker::PhantomData;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, Instant};

use bincode::config::standard;
use cached::AsyncRedisCache;
use cached::ConcurrentCachedAsync;
use cached::macros::concurrent_cached;
use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, Commands};
use redis_cached::__private::{Spec, digest};
use redis_cached::{Cache, Stats, redis_cached};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tokio::runtime::Runtime;

#[path = "compare/chart.rs"]
mod chart;
#[path = "compare/cluster.rs"]
mod cluster;
#[path = "compare/compression.rs"]
mod compression;
#[path = "compare/tracking.rs"]
mod tracking;

/// Interleaved rounds per row.
const ROUNDS: usize = 15;
/// About how long one contestant's round of a latency row takes.
const LATENCY_ROUND: Duration = Duration::from_millis(30);
/// How long one contestant's round of a throughput row lasts.
const THROUGHPUT_ROUND: Duration = Duration::from_millis(100);
/// The TTL every contestant stores with, in seconds.
const TTL: u64 = 600;
/// The argument of every hit.
const HIT_ID: u64 = 42;

/// The URL of the server this run started.
static URL: OnceLock<String> = OnceLock::new();

fn url() -> &'static str {
    URL.get().map_or("redis://127.0.0.1:6379", String::as_str)
}

/// Our cache for the plain rows.
static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder(url())
        .prefix("ours:")
        .build()
        .unwrap_or_else(|_| Cache::in_memory())
});

/// Our cache for the in-process tier.
static LOCAL: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder(url())
        .prefix("ours-local:")
        .build()
        .unwrap_or_else(|_| Cache::in_memory())
});

/// Our cache for the signed rows.
static SIGNED: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder(url())
        .prefix("ours-signed:")
        .signing_key("the benchmark's signing key, 32+ bytes")
        .build()
        .unwrap_or_else(|_| Cache::in_memory())
});

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

// ---------------------------------------------------------------------------
// The values

/// About 1 KiB encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    name: String,
    email: String,
    scores: Vec<u32>,
    tags: Vec<String>,
}

fn small(id: u64) -> u64 {
    id * 3
}

fn record(id: u64) -> Record {
    Record {
        id,
        name: format!("customer number {id:>20}"),
        email: format!("customer.{id}@example.invalid"),
        scores: (0..200).map(|i| u32::MAX - i).collect(),
        tags: (0..8).map(|i| format!("tag-{i:>8}")).collect(),
    }
}

/// 8192 `f64`s: 64 KiB.
fn series(id: u64) -> Vec<f64> {
    (0..8192).map(|i| (id + i) as f64 * 1.000_001).collect()
}

// ---------------------------------------------------------------------------
// Each contestant's cached functions, per value size

#[redis_cached(ttl = 600, cache = CACHE)]
async fn ours_async_small(id: u64) -> u64 {
    small(id)
}

#[redis_cached(ttl = 600, cache = CACHE)]
fn ours_sync_small(id: u64) -> u64 {
    small(id)
}

#[redis_cached(ttl = 600, cache = LOCAL, local = 16)]
async fn ours_local_small(id: u64) -> u64 {
    small(id)
}

#[redis_cached(ttl = 600, cache = SIGNED)]
async fn ours_signed_small(id: u64) -> u64 {
    small(id)
}

#[concurrent_cached(
    ty = "AsyncRedisCache<u64, u64>",
    create = { cached_store("cached:small:", false).await },
    map_error = |e| BenchError(format!("cached: {e:?}"))
)]
async fn cached_small(id: u64) -> Result<u64, BenchError> {
    Ok(small(id))
}

/// [`cached_small`] for the throughput rows.
#[concurrent_cached(
    ty = "AsyncRedisCache<u64, u64>",
    create = { cached_store("cached:small-tasks:", false).await },
    map_error = |e| BenchError(format!("cached: {e:?}"))
)]
async fn cached_small_tasks(id: u64) -> Result<u64, BenchError> {
    Ok(small(id))
}

#[redis_cached(ttl = 600, cache = CACHE)]
async fn ours_async_record(id: u64) -> Record {
    record(id)
}

#[redis_cached(ttl = 600, cache = CACHE)]
fn ours_sync_record(id: u64) -> Record {
    record(id)
}

#[redis_cached(ttl = 600, cache = LOCAL, local = 16)]
async fn ours_local_record(id: u64) -> Record {
    record(id)
}

#[redis_cached(ttl = 600, cache = SIGNED)]
async fn ours_signed_record(id: u64) -> Record {
    record(id)
}

#[concurrent_cached(
    ty = "AsyncRedisCache<u64, Record>",
    create = { cached_store("cached:record:", false).await },
    map_error = |e| BenchError(format!("cached: {e:?}"))
)]
async fn cached_record(id: u64) -> Result<Record, BenchError> {
    Ok(record(id))
}

#[redis_cached(ttl = 600, cache = CACHE)]
async fn ours_async_series(id: u64) -> Vec<f64> {
    series(id)
}

#[redis_cached(ttl = 600, cache = CACHE)]
fn ours_sync_series(id: u64) -> Vec<f64> {
    series(id)
}

#[redis_cached(ttl = 600, cache = LOCAL, local = 16)]
async fn ours_local_series(id: u64) -> Vec<f64> {
    series(id)
}

#[concurrent_cached(
    ty = "AsyncRedisCache<u64, Vec<f64>>",
    create = { cached_store("cached:series:", false).await },
    map_error = |e| BenchError(format!("cached: {e:?}"))
)]
async fn cached_series(id: u64) -> Result<Vec<f64>, BenchError> {
    Ok(series(id))
}

/// A `cached` Redis store on this run's server; `create` of the attribute
/// must produce a store, so a failure here stops the benchmark.
async fn cached_store<V>(prefix: &str, client_side_caching: bool) -> AsyncRedisCache<u64, V>
where
    V: Serialize + DeserializeOwned + Send + Sync + Clone,
{
    AsyncRedisCache::builder(prefix)
        .connection_string(url())
        .ttl(Duration::from_secs(TTL))
        .client_side_caching(client_side_caching)
        .build()
        .await
        .unwrap_or_else(|e| panic!("cached: building its Redis store failed: {e}"))
}

/// One value size: its values and each contestant's function for it.
trait Size: Copy + Send + Sync + 'static {
    type V: Serialize + DeserializeOwned + Clone + PartialEq + Debug + Send + Sync + 'static;
    /// For the table.
    const LABEL: &'static str;
    /// For hand-written keys and `cached` prefixes.
    const KEY: &'static str;
    /// At most this many misses per round (the server keeps a round's keys).
    const MISSES_PER_ROUND: u64;
    /// Whether the signed rows measure this size.
    const SIGNED: bool;
    fn make(id: u64) -> Self::V;
    fn ours_async(id: u64) -> impl Future<Output = Self::V> + Send;
    /// On the signed cache (only called if [`SIGNED`](Self::SIGNED)).
    fn ours_signed(id: u64) -> impl Future<Output = Self::V> + Send;
    fn ours_sync(id: u64) -> Self::V;
    fn ours_local(id: u64) -> impl Future<Output = Self::V> + Send;
    fn cached(id: u64) -> impl Future<Output = Result<Self::V, BenchError>> + Send;
}

#[derive(Clone, Copy)]
struct Small;

impl Size for Small {
    type V = u64;
    const LABEL: &'static str = "u64";
    const KEY: &'static str = "small";
    const MISSES_PER_ROUND: u64 = 400;
    const SIGNED: bool = true;
    fn make(id: u64) -> u64 {
        small(id)
    }
    fn ours_signed(id: u64) -> impl Future<Output = u64> + Send {
        ours_signed_small(id)
    }
    fn ours_async(id: u64) -> impl Future<Output = u64> + Send {
        ours_async_small(id)
    }
    fn ours_sync(id: u64) -> u64 {
        ours_sync_small(id)
    }
    fn ours_local(id: u64) -> impl Future<Output = u64> + Send {
        ours_local_small(id)
    }
    fn cached(id: u64) -> impl Future<Output = Result<u64, BenchError>> + Send {
        cached_small(id)
    }
}

#[derive(Clone, Copy)]
struct OneKib;

impl Size for OneKib {
    type V = Record;
    const LABEL: &'static str = "1KiB struct";
    const KEY: &'static str = "record";
    const MISSES_PER_ROUND: u64 = 300;
    const SIGNED: bool = true;
    fn make(id: u64) -> Record {
        record(id)
    }
    fn ours_signed(id: u64) -> impl Future<Output = Record> + Send {
        ours_signed_record(id)
    }
    fn ours_async(id: u64) -> impl Future<Output = Record> + Send {
        ours_async_record(id)
    }
    fn ours_sync(id: u64) -> Record {
        ours_sync_record(id)
    }
    fn ours_local(id: u64) -> impl Future<Output = Record> + Send {
        ours_local_record(id)
    }
    fn cached(id: u64) -> impl Future<Output = Result<Record, BenchError>> + Send {
        cached_record(id)
    }
}

#[derive(Clone, Copy)]
struct SixtyFourKib;

impl Size for SixtyFourKib {
    type V = Vec<f64>;
    const LABEL: &'static str = "64KiB Vec<f64>";
    const KEY: &'static str = "series";
    const MISSES_PER_ROUND: u64 = 40;
    const SIGNED: bool = false;
    fn make(id: u64) -> Vec<f64> {
        series(id)
    }
    fn ours_signed(id: u64) -> impl Future<Output = Vec<f64>> + Send {
        ours_async_series(id)
    }
    fn ours_async(id: u64) -> impl Future<Output = Vec<f64>> + Send {
        ours_async_series(id)
    }
    fn ours_sync(id: u64) -> Vec<f64> {
        ours_sync_series(id)
    }
    fn ours_local(id: u64) -> impl Future<Output = Vec<f64>> + Send {
        ours_local_series(id)
    }
    fn cached(id: u64) -> impl Future<Output = Result<Vec<f64>, BenchError>> + Send {
        cached_series(id)
    }
}

// ---------------------------------------------------------------------------
// The hand-written pattern

/// Misses of the hand-written functions, so a hit row can check it measured hits.
static HAND_MISSES: AtomicU64 = AtomicU64::new(0);

/// Read-through caching as one writes it by hand over a multiplexed connection.
async fn hand_async<S: Size>(
    conn: &mut MultiplexedConnection,
    id: u64,
) -> Result<S::V, BenchError> {
    let key = format!("hand:{}:{id}", S::KEY);
    let found: Option<Vec<u8>> = conn.get(&key).await?;
    if let Some(Ok((value, _))) =
        found.map(|bytes| bincode::serde::decode_from_slice(&bytes, standard()))
    {
        return Ok(value);
    }
    HAND_MISSES.fetch_add(1, Ordering::Relaxed);
    let value = S::make(id);
    let bytes = bincode::serde::encode_to_vec(&value, standard())?;
    let () = conn.set_ex(&key, bytes, TTL).await?;
    Ok(value)
}

/// [`hand_async`] over a plain connection.
fn hand_sync<S: Size>(conn: &mut redis::Connection, id: u64) -> Result<S::V, BenchError> {
    let key = format!("hand-sync:{}:{id}", S::KEY);
    let found: Option<Vec<u8>> = conn.get(&key)?;
    if let Some(Ok((value, _))) =
        found.map(|bytes| bincode::serde::decode_from_slice(&bytes, standard()))
    {
        return Ok(value);
    }
    HAND_MISSES.fetch_add(1, Ordering::Relaxed);
    let value = S::make(id);
    let bytes = bincode::serde::encode_to_vec(&value, standard())?;
    let () = conn.set_ex(&key, bytes, TTL)?;
    Ok(value)
}

/// Key format 2's digest, as the crate computed it before BLAKE3: xxh3-128
/// over the format tag, the name, the argument's type name and bincode
/// bytes (streamed), and the return type's name.
fn xxh3_digest<A: Serialize, R>(name: &str, arg: &A) -> u128 {
    use xxhash_rust::xxh3::Xxh3Default;
    struct Stream<'a>(&'a mut Xxh3Default);
    impl bincode::enc::write::Writer for Stream<'_> {
        fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
            self.0.update(bytes);
            Ok(())
        }
    }
    fn type_name(h: &mut Xxh3Default, name: &str) {
        h.update(&(name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
    }
    let mut h = Xxh3Default::new();
    h.update(b"redis-cached/key/2");
    type_name(&mut h, name);
    type_name(&mut h, std::any::type_name::<A>());
    let _ = bincode::serde::encode_into_writer(arg, Stream(&mut h), standard());
    type_name(&mut h, std::any::type_name::<R>());
    h.digest128()
}

// ---------------------------------------------------------------------------
// Contestants behind one interface, so one timing loop serves them all

/// A contestant called from async code.
trait AsyncCall<V> {
    fn call(&mut self, id: u64) -> impl Future<Output = Result<V, BenchError>> + Send;
}

/// A contestant called from a plain thread.
trait SyncCall<V> {
    fn call(&mut self, id: u64) -> Result<V, BenchError>;
}

#[derive(Clone)]
struct HandAsync<S> {
    conn: MultiplexedConnection,
    size: PhantomData<S>,
}

impl<S: Size> AsyncCall<S::V> for HandAsync<S> {
    fn call(&mut self, id: u64) -> impl Future<Output = Result<S::V, BenchError>> + Send {
        hand_async::<S>(&mut self.conn, id)
    }
}

struct HandSync<'c, S> {
    conn: &'c mut redis::Connection,
    size: PhantomData<S>,
}

impl<S: Size> SyncCall<S::V> for HandSync<'_, S> {
    fn call(&mut self, id: u64) -> Result<S::V, BenchError> {
        hand_sync::<S>(self.conn, id)
    }
}

#[derive(Clone, Copy)]
struct OursAsync<S>(PhantomData<S>);

impl<S: Size> AsyncCall<S::V> for OursAsync<S> {
    async fn call(&mut self, id: u64) -> Result<S::V, BenchError> {
        Ok(S::ours_async(id).await)
    }
}

#[derive(Clone, Copy)]
struct OursSigned<S>(PhantomData<S>);

impl<S: Size> AsyncCall<S::V> for OursSigned<S> {
    async fn call(&mut self, id: u64) -> Result<S::V, BenchError> {
        Ok(S::ours_signed(id).await)
    }
}

#[derive(Clone, Copy)]
struct OursSync<S>(PhantomData<S>);

impl<S: Size> SyncCall<S::V> for OursSync<S> {
    fn call(&mut self, id: u64) -> Result<S::V, BenchError> {
        Ok(S::ours_sync(id))
    }
}

#[derive(Clone, Copy)]
struct OursLocal<S>(PhantomData<S>);

impl<S: Size> AsyncCall<S::V> for OursLocal<S> {
    async fn call(&mut self, id: u64) -> Result<S::V, BenchError> {
        Ok(S::ours_local(id).await)
    }
}

#[derive(Clone, Copy)]
struct Cached<S>(PhantomData<S>);

impl<S: Size> AsyncCall<S::V> for Cached<S> {
    fn call(&mut self, id: u64) -> impl Future<Output = Result<S::V, BenchError>> + Send {
        S::cached(id)
    }
}

/// `cached` for the throughput rows: its own function, so that its store's
/// connection lives on the 2-worker runtime (a store stays on the runtime
/// that built it).
#[derive(Clone, Copy)]
struct CachedTasks;

impl AsyncCall<u64> for CachedTasks {
    fn call(&mut self, id: u64) -> impl Future<Output = Result<u64, BenchError>> + Send {
        cached_small_tasks(id)
    }
}

/// `cached`'s store with client-side caching, read directly.
struct CachedCsc<V> {
    store: AsyncRedisCache<u64, V>,
}

impl<V> AsyncCall<V> for CachedCsc<V>
where
    V: Serialize + DeserializeOwned + Send + Sync + Clone,
{
    async fn call(&mut self, id: u64) -> Result<V, BenchError> {
        match self.store.async_cache_get(&id).await {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err("cached + client-side caching: a miss where a hit was due".into()),
            Err(e) => Err(format!("cached + client-side caching: {e}").into()),
        }
    }
}

// ---------------------------------------------------------------------------
// Timing

/// The arguments of one round: `n` calls with `first`, or with `first..first + n`.
#[derive(Clone, Copy)]
struct Ids {
    first: u64,
    n: u64,
    fresh: bool,
}

impl Ids {
    /// `n` calls with the hit argument.
    fn hit(n: u64) -> Self {
        Self {
            first: HIT_ID,
            n,
            fresh: false,
        }
    }

    fn id(self, i: u64) -> u64 {
        if self.fresh {
            self.first + i
        } else {
            self.first
        }
    }

    fn last(self) -> u64 {
        self.id(self.n - 1)
    }
}

/// Time per call over one round, and the round's last value.
async fn time_async<V, C: AsyncCall<V>>(c: &mut C, ids: Ids) -> Result<(Duration, V), BenchError> {
    let started = Instant::now();
    let mut last = None;
    for i in 0..ids.n {
        last = Some(black_box(c.call(ids.id(i)).await?));
    }
    let elapsed = started.elapsed();
    Ok((elapsed / ids.n as u32, last.ok_or("an empty round")?))
}

/// [`time_async`] for a sync contestant.
fn time_sync<V, C: SyncCall<V>>(c: &mut C, ids: Ids) -> Result<(Duration, V), BenchError> {
    let started = Instant::now();
    let mut last = None;
    for i in 0..ids.n {
        last = Some(black_box(c.call(ids.id(i))?));
    }
    let elapsed = started.elapsed();
    Ok((elapsed / ids.n as u32, last.ok_or("an empty round")?))
}

/// Fails unless `value` is what `S` computes for `id`.
fn check<S: Size>(who: &str, id: u64, value: &S::V) -> Result<(), BenchError> {
    if *value == S::make(id) {
        Ok(())
    } else {
        Err(format!("{who} returned a wrong {} for {id}", S::LABEL).into())
    }
}

/// How many calls make a round of about `round`, at `per_call` each.
fn calls_for(round: Duration, per_call: Duration, max: u64) -> u64 {
    let n = round.as_secs_f64() / per_call.as_secs_f64().max(1e-9);
    (n as u64).clamp(5, max)
}

/// The median; NaN for a contestant that didn't run (no signed 64 KiB rows).
fn median(samples: &mut [f64]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// A contestant's samples (seconds per call, or calls per second).
#[derive(Default)]
struct Samples(Vec<f64>);

impl Samples {
    fn push(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64());
    }

    fn median(&mut self) -> f64 {
        median(&mut self.0)
    }
}

// ---------------------------------------------------------------------------
// The table

#[derive(Clone, Copy)]
enum Target {
    None,
    AtMost(f64),
    AtLeast(f64),
}

#[derive(Clone, Copy)]
enum Unit {
    Latency,
    Throughput,
    Bytes,
}

struct Table {
    missed: usize,
}

impl Table {
    fn header() {
        println!(
            "{:<16} {:<15} {:<40} {:>10} {:>10} {:>7} {:>8}  met",
            "row", "value", "ours / other", "ours", "other", "ratio", "target"
        );
    }

    #[allow(clippy::too_many_arguments)] // one table line
    fn line(
        &mut self,
        row: &str,
        value: &str,
        comparison: &str,
        unit: Unit,
        ours: f64,
        other: f64,
        target: Target,
    ) {
        let show = |x: f64| match unit {
            Unit::Latency => format!("{:.2?}", Duration::from_secs_f64(x)),
            Unit::Throughput if x >= 1e6 => format!("{:.2}M/s", x / 1e6),
            Unit::Throughput => format!("{:.1}k/s", x / 1e3),
            Unit::Bytes => format!("{:.1}KiB", x / 1024.0),
        };
        let ratio = ours / other;
        let (target, met) = match target {
            Target::None => ("-".to_owned(), ""),
            Target::AtMost(t) => (format!("<= {t:.2}"), if ratio <= t { "yes" } else { "NO" }),
            Target::AtLeast(t) => (format!(">= {t:.2}"), if ratio >= t { "yes" } else { "NO" }),
        };
        if met == "NO" {
            self.missed += 1;
        }
        println!(
            "{row:<16} {value:<15} {comparison:<40} {:>10} {:>10} {ratio:>7.3} {target:>8}  {met}",
            show(ours),
            show(other)
        );
        let _ = std::io::stdout().flush();
    }
}

// ---------------------------------------------------------------------------
// The rows

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Hit,
    Miss,
}

/// Everything the rows share.
struct Bench {
    /// A current-thread runtime for the latency rows: a call, its
    /// connection's driver and the timing loop share one thread, so no row
    /// depends on which worker a task happened to land on.
    one: Runtime,
    /// The 2-worker runtime of the throughput rows.
    two: Runtime,
    /// The hand-written pattern's connection on `one`.
    conn: MultiplexedConnection,
    /// Its connection on `two`.
    conn_two: MultiplexedConnection,
    sync_conn: redis::Connection,
    /// For cleaning up after misses.
    admin: redis::Connection,
    /// Keys that existed before the miss rows; everything else is a miss's.
    keep: HashSet<String>,
    next_id: u64,
    table: Table,
}

impl Bench {
    fn fresh(&mut self, n: u64) -> Ids {
        let ids = Ids {
            first: self.next_id,
            n,
            fresh: true,
        };
        self.next_id += n;
        ids
    }

    fn ids(&mut self, kind: Kind, n: u64) -> Ids {
        match kind {
            Kind::Hit => Ids::hit(n),
            Kind::Miss => self.fresh(n),
        }
    }

    /// Deletes the keys the misses wrote.
    /// After a contestant's miss round, deletes what it stored, so that each
    /// contestant's misses meet the server as the first one's did (writing and
    /// freeing 64 KiB values changes what the next writer's `SET` costs the
    /// server, whatever the client).
    fn settle(&mut self, kind: Kind) -> Result<(), BenchError> {
        match kind {
            Kind::Miss => self.clean_up(),
            Kind::Hit => Ok(()),
        }
    }

    fn clean_up(&mut self) -> Result<(), BenchError> {
        let keys: Vec<String> = self.admin.keys("*")?;
        let gone: Vec<&String> = keys.iter().filter(|k| !self.keep.contains(*k)).collect();
        if !gone.is_empty() {
            let () = redis::cmd("DEL").arg(&gone).query(&mut self.admin)?;
        }
        Ok(())
    }

    /// Times one round of `c` on the current-thread runtime.
    fn timed<V, C: AsyncCall<V>>(&self, c: &mut C, ids: Ids) -> Result<(Duration, V), BenchError> {
        self.one.block_on(time_async(c, ids))
    }

    /// Runs one round of every contestant of a hit or miss row, and checks
    /// that each call was a hit (or a miss); `warm_up`: a hit round's first
    /// calls may miss.
    fn round<S: Size>(
        &mut self,
        kind: Kind,
        n: u64,
        warm_up: bool,
        s: &mut [Samples; 6],
    ) -> Result<(), BenchError> {
        let mut hand = HandAsync::<S> {
            conn: self.conn.clone(),
            size: PhantomData,
        };
        let ids = self.ids(kind, n);
        let misses = HAND_MISSES.load(Ordering::Relaxed);
        let (t, v) = self.timed(&mut hand, ids)?;
        check::<S>("hand-written async", ids.last(), &v)?;
        if !warm_up {
            hand_counted("hand-written async", kind, n, misses)?;
        }
        s[0].push(t);
        self.settle(kind)?;

        let ids = self.ids(kind, n);
        let before = CACHE.stats();
        let (t, v) = self.timed(&mut OursAsync::<S>(PhantomData), ids)?;
        check::<S>("ours async", ids.last(), &v)?;
        if !warm_up {
            counted("ours async", kind, n, before, CACHE.stats())?;
        }
        s[1].push(t);
        self.settle(kind)?;

        let ids = self.ids(kind, n);
        let (t, v) = self.timed(&mut Cached::<S>(PhantomData), ids)?;
        check::<S>("cached", ids.last(), &v)?;
        s[2].push(t);
        self.settle(kind)?;

        let ids = self.ids(kind, n);
        let before = CACHE.stats();
        let (t, v) = time_sync(&mut OursSync::<S>(PhantomData), ids)?;
        check::<S>("ours sync", ids.last(), &v)?;
        if !warm_up {
            counted("ours sync", kind, n, before, CACHE.stats())?;
        }
        s[3].push(t);
        self.settle(kind)?;

        let ids = self.ids(kind, n);
        let mut hand = HandSync::<S> {
            conn: &mut self.sync_conn,
            size: PhantomData,
        };
        let misses = HAND_MISSES.load(Ordering::Relaxed);
        let (t, v) = time_sync(&mut hand, ids)?;
        check::<S>("hand-written sync", ids.last(), &v)?;
        if !warm_up {
            hand_counted("hand-written sync", kind, n, misses)?;
        }
        s[4].push(t);

        if S::SIGNED {
            let ids = self.ids(kind, n);
            let before = SIGNED.stats();
            let (t, v) = self.timed(&mut OursSigned::<S>(PhantomData), ids)?;
            check::<S>("ours signed", ids.last(), &v)?;
            if !warm_up {
                counted("ours signed", kind, n, before, SIGNED.stats())?;
            }
            s[5].push(t);
        }

        if kind == Kind::Miss {
            self.clean_up()?;
        }
        Ok(())
    }

    /// The hit or miss lines of one value size.
    fn latency<S: Size>(&mut self, kind: Kind) -> Result<(), BenchError> {
        // Warm up (a hit row's first call stores the value) and size the rounds
        // on the hand-written async call.
        let mut warm: [Samples; 6] = Default::default();
        self.round::<S>(kind, 20, true, &mut warm)?;
        let per_call = Duration::from_secs_f64(warm[0].median());
        let max = match kind {
            Kind::Hit => 100_000,
            Kind::Miss => S::MISSES_PER_ROUND,
        };
        let n = calls_for(LATENCY_ROUND, per_call, max);
        self.round::<S>(kind, n, true, &mut warm)?;

        let mut s: [Samples; 6] = Default::default();
        for _ in 0..ROUNDS {
            self.round::<S>(kind, n, false, &mut s)?;
        }
        let [hand, ours, cached, ours_sync, hand_sync, signed] = s.each_mut().map(Samples::median);
        chart::latency(kind, S::LABEL, [hand, ours, cached]);
        let (row, target) = match kind {
            Kind::Hit => ("hit", 1.05),
            Kind::Miss => ("miss", 1.10),
        };
        let t = &mut self.table;
        let l = Unit::Latency;
        t.line(
            row,
            S::LABEL,
            "async / hand-written async",
            l,
            ours,
            hand,
            Target::AtMost(target),
        );
        t.line(
            row,
            S::LABEL,
            "async / cached",
            l,
            ours,
            cached,
            Target::None,
        );
        t.line(
            row,
            S::LABEL,
            "sync / hand-written sync",
            l,
            ours_sync,
            hand_sync,
            Target::AtMost(target),
        );
        if S::SIGNED {
            t.line(
                row,
                S::LABEL,
                "signed async / async",
                l,
                signed,
                ours,
                Target::None,
            );
        }
        Ok(())
    }

    /// One call's key digest for an argument of this size: ours (BLAKE3)
    /// against key format 2's xxh3-128 over the same bytes.
    fn key_digest<S: Size>(&mut self) -> Result<(), BenchError> {
        static SPEC: Spec = Spec::new("bench::key_digest", 600_000);
        let arg = S::make(HIT_ID);
        let blake3 = || digest::<S::V>(&SPEC, |k| k.arg(black_box(&arg)));
        let xxh3 = || xxh3_digest::<S::V, S::V>("bench::key_digest", black_box(&arg));
        // Size rounds on a first pass, then interleave.
        let started = Instant::now();
        for _ in 0..1000 {
            black_box(blake3().map_err(|e| format!("digest: {e}"))?);
        }
        let per_call = started.elapsed() / 1000;
        let n = calls_for(LATENCY_ROUND, per_call, 1_000_000);
        let mut s: [Samples; 2] = Default::default();
        for _ in 0..ROUNDS {
            let started = Instant::now();
            for _ in 0..n {
                black_box(blake3().map_err(|e| format!("digest: {e}"))?);
            }
            s[0].push(started.elapsed() / n as u32);
            let started = Instant::now();
            for _ in 0..n {
                black_box(xxh3());
            }
            s[1].push(started.elapsed() / n as u32);
        }
        let [ours, old] = s.each_mut().map(Samples::median);
        self.table.line(
            "key digest",
            S::LABEL,
            "BLAKE3 / xxh3-128 (key format 2)",
            Unit::Latency,
            ours,
            old,
            Target::None,
        );
        Ok(())
    }

    /// Hits/s of `u64` values with `tasks` concurrent tasks.
    fn throughput(&mut self, tasks: usize) -> Result<(), BenchError> {
        let hand = HandAsync::<Small> {
            conn: self.conn_two.clone(),
            size: PhantomData,
        };
        let ours = OursAsync::<Small>(PhantomData);
        let theirs = CachedTasks;
        let rt = &self.two;
        let mut s: [Samples; 3] = Default::default();
        for round in 0..=ROUNDS {
            let rates = [
                rt.block_on(hits_per_sec("hand-written async", &hand, tasks))?,
                rt.block_on(hits_per_sec("ours async", &ours, tasks))?,
                rt.block_on(hits_per_sec("cached", &theirs, tasks))?,
            ];
            // Round 0 warms up.
            if round > 0 {
                for (samples, rate) in s.iter_mut().zip(rates) {
                    samples.0.push(rate);
                }
            }
        }
        let [hand, ours, cached] = s.each_mut().map(Samples::median);
        chart::throughput(tasks, [hand, ours, cached]);
        let row = match tasks {
            1 => "hits/s 1 task".to_owned(),
            n => format!("hits/s {n} tasks"),
        };
        let (vs_hand, vs_cached) = if tasks == 64 {
            (Target::AtLeast(0.95), Target::AtLeast(1.0))
        } else {
            (Target::None, Target::None)
        };
        let t = &mut self.table;
        let u = Unit::Throughput;
        t.line(
            &row,
            Small::LABEL,
            "async / hand-written async",
            u,
            ours,
            hand,
            vs_hand,
        );
        t.line(
            &row,
            Small::LABEL,
            "async / cached",
            u,
            ours,
            cached,
            vs_cached,
        );
        Ok(())
    }

    /// Our in-process tier against `cached` with client-side caching.
    fn in_process<S: Size>(&mut self) -> Result<(), BenchError> {
        let rt = &self.one;
        let mut ours = OursLocal::<S>(PhantomData);
        rt.block_on(warm_local(&mut ours))?;

        // Set through another store: a store with client-side caching keeps
        // answering `None` after its own set (the set's pipelined GET of the
        // old value stays in its reply cache). Then warm its reply cache.
        let prefix = format!("cached-csc:{}:", S::KEY);
        let mut theirs = rt.block_on(async {
            cached_store::<S::V>(&prefix, false)
                .await
                .async_cache_set(HIT_ID, S::make(HIT_ID))
                .await
                .map_err(|e| format!("cached set: {e}"))?;
            let mut theirs = CachedCsc {
                store: cached_store::<S::V>(&prefix, true).await,
            };
            warm_csc(&mut theirs).await?;
            Ok::<_, BenchError>(theirs)
        })?;

        let (per_call, _) = self.timed(&mut ours, Ids::hit(1000))?;
        let n = calls_for(LATENCY_ROUND, per_call, 1_000_000);
        let mut s: [Samples; 2] = Default::default();
        for _ in 0..ROUNDS {
            let ids = Ids::hit(n);
            let before = LOCAL.stats();
            let (t, v) = self.timed(&mut ours, ids)?;
            check::<S>("ours in-process", ids.last(), &v)?;
            let local_hits = LOCAL.stats().local_hits - before.local_hits;
            if local_hits != n {
                return Err(
                    format!("ours in-process: {local_hits} of {n} hits were in process").into(),
                );
            }
            s[0].push(t);
            let (t, v) = self.timed(&mut theirs, ids)?;
            check::<S>("cached + client-side caching", ids.last(), &v)?;
            s[1].push(t);
        }
        let [ours, theirs] = s.each_mut().map(Samples::median);
        self.table.line(
            "in-process hit",
            S::LABEL,
            "local / cached + client-side caching",
            Unit::Latency,
            ours,
            theirs,
            Target::AtMost(0.5),
        );
        Ok(())
    }
}

/// Fails unless `n` calls of ours counted `n` hits (or misses) and no error.
fn counted(who: &str, kind: Kind, n: u64, before: Stats, after: Stats) -> Result<(), BenchError> {
    let (what, counted) = match kind {
        Kind::Hit => ("hits", after.hits - before.hits),
        Kind::Miss => ("misses", after.misses - before.misses),
    };
    let errors = after.errors - before.errors;
    if counted == n && errors == 0 {
        Ok(())
    } else {
        Err(format!("{who}: {n} calls counted {counted} {what} and {errors} errors").into())
    }
}

/// Fails unless `n` hand-written calls missed `n` times (misses) or never (hits).
fn hand_counted(who: &str, kind: Kind, n: u64, misses_before: u64) -> Result<(), BenchError> {
    let misses = HAND_MISSES.load(Ordering::Relaxed) - misses_before;
    let expected = if kind == Kind::Miss { n } else { 0 };
    if misses == expected {
        Ok(())
    } else {
        Err(format!("{who}: {n} calls missed {misses} times, not {expected}").into())
    }
}

/// `tasks` tasks calling `c` for [`THROUGHPUT_ROUND`]; the `u64` hits per second.
async fn hits_per_sec<C>(who: &'static str, c: &C, tasks: usize) -> Result<f64, BenchError>
where
    C: AsyncCall<u64> + Clone + Send + 'static,
{
    let started = Instant::now();
    let deadline = started + THROUGHPUT_ROUND;
    let expected = small(HIT_ID);
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let mut c = c.clone();
            tokio::spawn(async move {
                let mut calls = 0_u64;
                while Instant::now() < deadline {
                    if c.call(HIT_ID).await? != expected {
                        return Err(BenchError(format!("{who} returned a wrong u64")));
                    }
                    calls += 1;
                }
                Ok(calls)
            })
        })
        .collect();
    let mut calls = 0;
    for handle in handles {
        calls += handle
            .await
            .map_err(|e| format!("{who}: a task failed: {e}"))??;
    }
    Ok(calls as f64 / started.elapsed().as_secs_f64())
}

/// Calls `c` until our tier answers (tracking is up and the value is in it).
async fn warm_local<V, C: AsyncCall<V>>(c: &mut C) -> Result<(), BenchError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let before = LOCAL.stats().local_hits;
    while LOCAL.stats().local_hits < before + 100 {
        if Instant::now() > deadline {
            return Err("ours: the in-process tier never answered".into());
        }
        black_box(c.call(HIT_ID).await?);
        tokio::time::sleep(Duration::from_micros(100)).await;
    }
    Ok(())
}

/// Reads until `cached`'s reply cache answers (the first reads may miss).
async fn warm_csc<V>(c: &mut CachedCsc<V>) -> Result<(), BenchError>
where
    V: Serialize + DeserializeOwned + Send + Sync + Clone,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut hits = 0;
    while hits < 100 {
        if c.call(HIT_ID).await.is_ok() {
            hits += 1;
        } else if Instant::now() > deadline {
            return Err("cached + client-side caching never found the value".into());
        } else {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    Ok(())
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
    URL.set(url.clone()).map_err(|_| "URL set twice")?;

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
        .map_err(|e| format!("ours: ping: {e}"))?;
    one.block_on(SIGNED.ping())
        .map_err(|e| format!("ours: ping: {e}"))?;

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
