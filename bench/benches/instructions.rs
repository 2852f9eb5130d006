//! Instructions per cache hit, counted by callgrind: what a hit costs the
//! client's CPU, a figure that does not move with the machine's load.
//!
//! Run it (it also runs after `compare`'s timed rows in `cargo bench -p bench`;
//! needs `redis-server`, and `valgrind` for the figures: without it the rows
//! are skipped with a line saying so):
//!
//! ```sh
//! cargo bench -p bench --bench instructions
//! ```
//!
//! Method: this process starts a `redis-server` (through the workspace's
//! test harness, `tests/harness`) and
//! stores every contestant's 64 keys. Then, for each contestant and value, it
//! runs itself twice under `valgrind --tool=callgrind`, as a child told what to
//! do by [`CHILD`] (the server's URL by [`URL_VAR`]): the child connects, reads
//! its 64 keys once (warm: a hit each, or, for the in-process rows, until
//! every key is answered in process), then makes [`SHORT`] or [`LONG`] hits
//! over the 64 keys in turn, in a task on a multi-thread tokio runtime with
//! one worker (where an application's handlers run), and checks that no call
//! ran its body and the last value is right. Callgrind counts the
//! instructions of every thread of the child, and nothing of the server,
//! which runs outside valgrind. A contestant's figure is
//! `(I(LONG) - I(SHORT)) / (LONG - SHORT)`: start-up, connecting and warming are
//! the same in both runs and cancel out.
//!
//! One build's figures repeat within 0.5% from run to run, whatever the
//! machine's load. Between builds they can move more: how much of the
//! generic decode (bincode through serde) the compiler inlines into each
//! contestant's code changes with the code around it, and once moved A's
//! 1 KiB figure from 28.0k to 32.0k, and its 64 KiB one from 294.5k to 310.8k
//! (when it shared its decode function with B). Compare contestants within
//! one run.
//!
//! Contestants, for a `u64`, a ~1 KiB struct and a 64 KiB `Vec<f64>` (the
//! values of `compare.rs`):
//! - A, hand-written: `GET` on a `redis` `ConnectionManager`, bincode 2 serde
//!   decode (standard configuration), the key `format!`ed from the argument;
//! - B, ours: `#[redis_cached(ttl = 600)]`;
//! - C, `cached` 4.x: `#[concurrent_cached]` with its `AsyncRedisCache` (as in
//!   `compare.rs`);
//! - L, our in-process tier: `#[redis_cached(ttl = 600, local = 128)]`;
//! - CL, `cached`'s `AsyncRedisCache` with `client_side_caching(true)`;
//! - F, the floor: A plus what every hit of B must do beyond it, and nothing
//!   else: the key is the keyed BLAKE3 digest of the argument and its type
//!   name written as 32 hex digits (keys an attacker can't forge, issue 15),
//!   the value starts with a format byte and its shape's fingerprint, which
//!   are checked (a deploy never reads the old shape, issue 14), and it is
//!   decoded with a size limit (the brief), its trailing bytes refused.
//!
//! Printed: instructions per hit of each, the ratios B/A (target ≤ 1.05),
//! C/A, L/CL (target ≤ 0.5) and F/A (B/A can't be below it), then where B's instructions go at `u64` and at
//! 64 KiB, from `callgrind_annotate` (names demangled; a function callgrind
//! knows by address only is named from `nm`), per hit (the short run's
//! figures subtracted from the long run's, per function, so set-up cancels
//! there too): B's top functions by self instructions, the functions B spends
//! more in than A, and redis-cached's own functions by inclusive
//! instructions. The callgrind files stay in `target/tmp/instructions/` for
//! `callgrind_annotate` or KCachegrind.
//!
//! `cargo bench -p bench -- instructions` runs only this (and `compare` with
//! no rows); contestants' letters and value names run only those
//! (`-- instructions B A series`); any other group name given to `compare`
//! skips this bench.
//!
//! Callgrind counts each iteration of a `rep movsb` as an instruction, so a
//! large `memcpy` counts about one instruction per byte: copies weigh more
//! here than in time.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::hint::black_box;
use std::io::Write;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use bincode::config::standard;
use cached::AsyncRedisCache;
use cached::ConcurrentCachedAsync;
use cached::macros::concurrent_cached;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use redis_cached::{Cache, redis_cached};
use serde::Deserialize;
use serde::{Serialize, de::DeserializeOwned};

#[path = "shared/values.rs"]
mod values;

use values::{Record, record, series, small};

/// Set in a child's environment: `<contestant> <value> <hits>`.
const CHILD: &str = "REDIS_CACHED_INSTRUCTIONS_CHILD";
/// Set in a child's environment: the server's URL.
const URL_VAR: &str = "REDIS_CACHED_INSTRUCTIONS_URL";
/// Keys each contestant reads in turn.
const KEYS: u64 = 64;
/// Hits of the short run.
const SHORT: u64 = 200;
/// Hits of the long run.
const LONG: u64 = 1_200;
/// The TTL every contestant stores with, in seconds.
const TTL: u64 = 600;
/// Functions shown per profile.
const TOP: usize = 15;
/// B/A at most.
const REDIS_TARGET: f64 = 1.05;
/// L/CL at most.
const LOCAL_TARGET: f64 = 0.5;

static URL: OnceLock<String> = OnceLock::new();

fn url() -> &'static str {
    URL.get().map_or("redis://127.0.0.1:6379", String::as_str)
}

/// B's cache.
static CACHE: LazyLock<Cache> = LazyLock::new(|| cache("instr:"));

/// L's cache: its own, so the client-side caching its tier turns on does not
/// touch B.
static LOCAL: LazyLock<Cache> = LazyLock::new(|| cache("instr-local:"));

fn cache(prefix: &str) -> Cache {
    Cache::builder(url())
        .prefix(prefix)
        .build()
        .unwrap_or_else(|e| panic!("ours: building the cache failed: {e}"))
}

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

impl From<std::io::Error> for BenchError {
    fn from(e: std::io::Error) -> Self {
        Self(format!("io: {e}"))
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
// The contestants' functions

/// Body runs of every contestant, misses of the hand-written one: a run of
/// hits must not add to it.
static BODIES: AtomicU64 = AtomicU64::new(0);

/// `value`, counted as a body run.
fn ran<T>(value: T) -> T {
    BODIES.fetch_add(1, Ordering::Relaxed);
    value
}

#[redis_cached(ttl = 600, cache = CACHE)]
async fn ours_small(id: u64) -> u64 {
    ran(small(id))
}

#[redis_cached(ttl = 600, cache = LOCAL, local = 128)]
async fn local_small(id: u64) -> u64 {
    ran(small(id))
}

#[concurrent_cached(
    ty = "AsyncRedisCache<u64, u64>",
    create = { store("instr-cached:small:", false).await },
    map_error = |e| BenchError(format!("cached: {e:?}"))
)]
async fn cached_small(id: u64) -> Result<u64, BenchError> {
    Ok(ran(small(id)))
}

#[redis_cached(ttl = 600, cache = CACHE)]
async fn ours_record(id: u64) -> Record {
    ran(record(id))
}

#[redis_cached(ttl = 600, cache = LOCAL, local = 128)]
async fn local_record(id: u64) -> Record {
    ran(record(id))
}

#[concurrent_cached(
    ty = "AsyncRedisCache<u64, Record>",
    create = { store("instr-cached:record:", false).await },
    map_error = |e| BenchError(format!("cached: {e:?}"))
)]
async fn cached_record(id: u64) -> Result<Record, BenchError> {
    Ok(ran(record(id)))
}

#[redis_cached(ttl = 600, cache = CACHE)]
async fn ours_series(id: u64) -> Vec<f64> {
    ran(series(id))
}

#[redis_cached(ttl = 600, cache = LOCAL, local = 128)]
async fn local_series(id: u64) -> Vec<f64> {
    ran(series(id))
}

#[concurrent_cached(
    ty = "AsyncRedisCache<u64, Vec<f64>>",
    create = { store("instr-cached:series:", false).await },
    map_error = |e| BenchError(format!("cached: {e:?}"))
)]
async fn cached_series(id: u64) -> Result<Vec<f64>, BenchError> {
    Ok(ran(series(id)))
}

/// A `cached` Redis store on this run's server; `create` of the attribute
/// must produce a store, so a failure here stops the benchmark.
async fn store<V>(prefix: &str, client_side_caching: bool) -> AsyncRedisCache<u64, V>
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
    /// For the table, and a child's command line.
    const LABEL: &'static str;
    /// For hand-written keys, `cached` prefixes and file names.
    const KEY: &'static str;
    fn make(id: u64) -> Self::V;
    fn ours(id: u64) -> impl Future<Output = Self::V> + Send;
    fn local(id: u64) -> impl Future<Output = Self::V> + Send;
    fn cached(id: u64) -> impl Future<Output = Result<Self::V, BenchError>> + Send;
}

#[derive(Clone, Copy)]
struct Small;

impl Size for Small {
    type V = u64;
    const LABEL: &'static str = "u64";
    const KEY: &'static str = "small";
    fn make(id: u64) -> u64 {
        small(id)
    }
    fn ours(id: u64) -> impl Future<Output = u64> + Send {
        ours_small(id)
    }
    fn local(id: u64) -> impl Future<Output = u64> + Send {
        local_small(id)
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
    fn make(id: u64) -> Record {
        record(id)
    }
    fn ours(id: u64) -> impl Future<Output = Record> + Send {
        ours_record(id)
    }
    fn local(id: u64) -> impl Future<Output = Record> + Send {
        local_record(id)
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
    fn make(id: u64) -> Vec<f64> {
        series(id)
    }
    fn ours(id: u64) -> impl Future<Output = Vec<f64>> + Send {
        ours_series(id)
    }
    fn local(id: u64) -> impl Future<Output = Vec<f64>> + Send {
        local_series(id)
    }
    fn cached(id: u64) -> impl Future<Output = Result<Vec<f64>, BenchError>> + Send {
        cached_series(id)
    }
}

/// The `cached` prefix of CL's keys.
fn csc_prefix<S: Size>() -> String {
    format!("instr-csc:{}:", S::KEY)
}

// ---------------------------------------------------------------------------
// The contestants behind one interface

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Hand,
    Ours,
    Cached,
    Local,
    Csc,
    Floor,
}

impl Who {
    const ALL: [Self; 6] = [
        Self::Hand,
        Self::Ours,
        Self::Cached,
        Self::Local,
        Self::Csc,
        Self::Floor,
    ];

    /// Its letter in the table and in a child's command line.
    fn tag(self) -> &'static str {
        match self {
            Self::Hand => "A",
            Self::Ours => "B",
            Self::Cached => "C",
            Self::Local => "L",
            Self::Csc => "CL",
            Self::Floor => "F",
        }
    }

    fn of(tag: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|who| who.tag() == tag)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Hand => "hand-written GET + bincode decode, ConnectionManager",
            Self::Ours => "ours, #[redis_cached(ttl = 600)]",
            Self::Cached => "cached 4.x, #[concurrent_cached] + AsyncRedisCache",
            Self::Local => "ours in process, local = 128",
            Self::Csc => "cached, AsyncRedisCache with client-side caching",
            Self::Floor => {
                "A + a keyed BLAKE3 key, a checked shape, a size-limited decode: B's floor"
            }
        }
    }
}

/// A contestant, ready to be called.
trait Hit<V> {
    fn call(&mut self, id: u64) -> impl Future<Output = Result<V, BenchError>> + Send;
}

/// A: read-through caching as one writes it by hand over a `ConnectionManager`.
struct Hand<S> {
    conn: ConnectionManager,
    size: PhantomData<S>,
}

impl<S: Size> Hand<S> {
    async fn connect() -> Result<Self, BenchError> {
        Ok(Self {
            conn: manager().await?,
            size: PhantomData,
        })
    }
}

/// A `ConnectionManager` on this run's server, as A and F read through.
async fn manager() -> Result<ConnectionManager, BenchError> {
    let client = redis::Client::open(url())?;
    Ok(client.get_connection_manager().await?)
}

impl<S: Size> Hit<S::V> for Hand<S> {
    async fn call(&mut self, id: u64) -> Result<S::V, BenchError> {
        let key = format!("instr-hand:{}:{id}", S::KEY);
        let found: Option<Vec<u8>> = self.conn.get(&key).await?;
        if let Some(Ok((value, _))) =
            found.map(|bytes| bincode::serde::decode_from_slice(&bytes, standard()))
        {
            return Ok(value);
        }
        let value = ran(S::make(id));
        let bytes = bincode::serde::encode_to_vec(&value, standard())?;
        let () = self.conn.set_ex(&key, bytes, TTL).await?;
        Ok(value)
    }
}

/// F: A with what B must do beyond it (see the module docs).
struct Floor<S> {
    conn: ConnectionManager,
    size: PhantomData<S>,
}

/// F's function key (B derives one per function, once).
const FLOOR_KEY: [u8; 32] = *b"redis-cached instructions floor!";
/// F's format byte, then its values' shape fingerprint.
const FLOOR_FORMAT: u8 = 0xF5;
const FLOOR_SHAPE: u64 = 0x5eed_5eed_5eed_5eed;
/// Bytes before F's payload.
const FLOOR_HEADER: usize = 9;

impl<S: Size> Floor<S> {
    async fn connect() -> Result<Self, BenchError> {
        Ok(Self {
            conn: manager().await?,
            size: PhantomData,
        })
    }

    /// `instr-floor:<value>:{<32 hex digits>}`: the first 16 bytes of the
    /// keyed digest of the argument's bytes and its type's name.
    fn key(id: u64) -> String {
        let mut fed = [0u8; 11];
        fed[..8].copy_from_slice(&id.to_le_bytes());
        fed[8..].copy_from_slice(b"u64");
        let digest = blake3::keyed_hash(&FLOOR_KEY, &fed);
        let first: [u8; 16] = digest.as_bytes()[..16].try_into().unwrap_or_default();
        let mut key = String::with_capacity(64);
        key.push_str("instr-floor:");
        key.push_str(S::KEY);
        key.push_str(":{");
        key.push_str(const_hex::Buffer::<16>::new().format(&first));
        key.push('}');
        key
    }

    /// The value in `bytes`, if its header is F's and it decodes, whole,
    /// within 1 MiB.
    fn decode<V: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Option<V> {
        let (header, payload) = bytes.split_at_checked(FLOOR_HEADER)?;
        let shape = u64::from_le_bytes(header[1..].try_into().ok()?);
        if header[0] != FLOOR_FORMAT || shape != FLOOR_SHAPE {
            return None;
        }
        let limited = standard().with_limit::<{ 1 << 20 }>();
        let (value, read) = bincode::serde::decode_from_slice(payload, limited).ok()?;
        (read == payload.len()).then_some(value)
    }
}

impl<S: Size> Hit<S::V> for Floor<S> {
    async fn call(&mut self, id: u64) -> Result<S::V, BenchError> {
        let key = Self::key(id);
        let found: Option<Vec<u8>> = self.conn.get(&key).await?;
        if let Some(value) = found.and_then(|bytes| Self::decode(&bytes)) {
            return Ok(value);
        }
        let value = ran(S::make(id));
        let mut bytes = vec![FLOOR_FORMAT];
        bytes.extend_from_slice(&FLOOR_SHAPE.to_le_bytes());
        bincode::serde::encode_into_std_write(&value, &mut bytes, standard())?;
        let () = self.conn.set_ex(&key, bytes, TTL).await?;
        Ok(value)
    }
}

/// B.
struct Ours<S>(PhantomData<S>);

impl<S: Size> Hit<S::V> for Ours<S> {
    async fn call(&mut self, id: u64) -> Result<S::V, BenchError> {
        Ok(S::ours(id).await)
    }
}

/// C.
struct Cached<S>(PhantomData<S>);

impl<S: Size> Hit<S::V> for Cached<S> {
    fn call(&mut self, id: u64) -> impl Future<Output = Result<S::V, BenchError>> + Send {
        S::cached(id)
    }
}

/// L.
struct Local<S>(PhantomData<S>);

impl<S: Size> Hit<S::V> for Local<S> {
    async fn call(&mut self, id: u64) -> Result<S::V, BenchError> {
        Ok(S::local(id).await)
    }
}

/// CL: `cached`'s store with client-side caching, read directly.
struct Csc<V> {
    store: AsyncRedisCache<u64, V>,
}

impl<V> Hit<V> for Csc<V>
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
// The child: one contestant's hits, under callgrind

/// What a child was told: `<contestant> <value key> <hits>`.
fn child(task: &str) -> Result<(), BenchError> {
    let bad = || {
        BenchError(format!(
            "{CHILD}={task:?}: not `<contestant> <value> <hits>`"
        ))
    };
    let mut words = task.split_whitespace();
    let who = words.next().and_then(Who::of).ok_or_else(bad)?;
    let value = words.next().ok_or_else(bad)?.to_owned();
    let n: u64 = words.next().and_then(|n| n.parse().ok()).ok_or_else(bad)?;
    let url = std::env::var(URL_VAR).map_err(|_| format!("{URL_VAR} is not set"))?;
    URL.set(url).map_err(|_| "URL set twice")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let hits = async move {
        match value.as_str() {
            v if v == Small::KEY => measure::<Small>(who, n).await,
            v if v == OneKib::KEY => measure::<OneKib>(who, n).await,
            v if v == SixtyFourKib::KEY => measure::<SixtyFourKib>(who, n).await,
            v => Err(format!("no value {v:?}").into()),
        }
    };
    rt.block_on(rt.spawn(hits))
        .map_err(|e| format!("the calling task failed: {e}"))?
}

/// Connects `who`, warms it, then makes `n` hits; see the module docs.
async fn measure<S: Size>(who: Who, n: u64) -> Result<(), BenchError> {
    match who {
        Who::Hand => hits::<S, _>(who, &mut Hand::<S>::connect().await?, n).await,
        Who::Ours => {
            let c = &mut Ours::<S>(PhantomData);
            warm(c).await?;
            let before = CACHE.stats().hits;
            hits::<S, _>(who, c, n).await?;
            counted("hits", n, CACHE.stats().hits - before)
        }
        Who::Cached => hits::<S, _>(who, &mut Cached::<S>(PhantomData), n).await,
        Who::Floor => hits::<S, _>(who, &mut Floor::<S>::connect().await?, n).await,
        Who::Local => {
            let c = &mut Local::<S>(PhantomData);
            warm_local::<S>().await?;
            let before = LOCAL.stats().local_hits;
            hits::<S, _>(who, c, n).await?;
            counted("in-process hits", n, LOCAL.stats().local_hits - before)
        }
        Who::Csc => {
            let c = &mut Csc {
                store: store::<S::V>(&csc_prefix::<S>(), true).await,
            };
            // Its reply cache is filled by the first read of each key.
            warm(c).await?;
            warm(c).await?;
            hits::<S, _>(who, c, n).await
        }
    }
}

/// One read of each key.
async fn warm<V, C: Hit<V>>(c: &mut C) -> Result<(), BenchError> {
    for id in 0..KEYS {
        black_box(c.call(id).await?);
    }
    Ok(())
}

/// Reads every key until one round is answered in process for all of them
/// (tracking is up and each value is in the tier).
async fn warm_local<S: Size>() -> Result<(), BenchError> {
    harness::retry_async(
        Duration::from_secs(60),
        Duration::from_millis(5),
        || async {
            let before = LOCAL.stats().local_hits;
            warm(&mut Local::<S>(PhantomData)).await?;
            if LOCAL.stats().local_hits - before == KEYS {
                Ok(())
            } else {
                Err(BenchError::from(
                    "ours in process: the in-process tier never answered",
                ))
            }
        },
    )
    .await
}

/// `n` calls over the keys in turn, warmed first (but for those warmed
/// apart); fails if one ran its body or the last value is wrong.
async fn hits<S: Size, C: Hit<S::V>>(who: Who, c: &mut C, n: u64) -> Result<(), BenchError> {
    if matches!(who, Who::Hand | Who::Cached | Who::Floor) {
        warm(c).await?;
    }
    let bodies = BODIES.load(Ordering::Relaxed);
    let mut last = None;
    for i in 0..n {
        last = Some(black_box(c.call(i % KEYS).await?));
    }
    let ran = BODIES.load(Ordering::Relaxed) - bodies;
    if ran > 0 {
        return Err(format!("{}: {ran} of {n} hits ran the body", who.tag()).into());
    }
    let id = (n - 1) % KEYS;
    if last.as_ref() != Some(&S::make(id)) {
        return Err(format!("{}: a wrong {} for {id}", who.tag(), S::LABEL).into());
    }
    Ok(())
}

fn counted(what: &str, n: u64, counted: u64) -> Result<(), BenchError> {
    if counted == n {
        Ok(())
    } else {
        Err(format!("{n} calls counted {counted} {what}").into())
    }
}

// ---------------------------------------------------------------------------
// The parent: a server, the keys, and a child under callgrind per figure

/// Stores each contestant's keys, so every child's calls are hits.
async fn store_keys<S: Size>() -> Result<(), BenchError> {
    warm(&mut Hand::<S>::connect().await?).await?;
    warm(&mut Floor::<S>::connect().await?).await?;
    warm(&mut Ours::<S>(PhantomData)).await?;
    warm(&mut Cached::<S>(PhantomData)).await?;
    warm(&mut Local::<S>(PhantomData)).await?;
    // Through a store without client-side caching: one with it keeps
    // answering `None` after its own set (see `compare.rs`).
    let plain = store::<S::V>(&csc_prefix::<S>(), false).await;
    for id in 0..KEYS {
        plain
            .async_cache_set(id, S::make(id))
            .await
            .map_err(|e| format!("cached set: {e}"))?;
    }
    Ok(())
}

/// Where the callgrind files go.
fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("instructions")
}

fn out_file(who: Who, key: &str, n: u64) -> PathBuf {
    out_dir().join(format!("callgrind.{}.{key}.{n}.out", who.tag()))
}

/// Runs this benchmark as a child under callgrind making `n` hits, keeping
/// its profile; the instructions it counted.
fn count(who: Who, key: &str, n: u64) -> Result<u64, BenchError> {
    let file = &out_file(who, key, n);
    let out = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", file.display()))
        .arg(std::env::current_exe()?)
        .env(CHILD, format!("{} {key} {n}", who.tag()))
        .env(URL_VAR, url())
        .output()?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "{} {key} {n}: the child under callgrind failed ({}):\n{}",
            who.tag(),
            out.status,
            tail.join("\n")
        )
        .into());
    }
    let text = std::fs::read_to_string(file)?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|n| n.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("{}: no totals line", file.display()).into())
}

/// Instructions per hit of `who` for `S`.
fn per_hit<S: Size>(who: Who) -> Result<f64, BenchError> {
    let short = count(who, S::KEY, SHORT)?;
    let long = count(who, S::KEY, LONG)?;
    Ok((long as f64 - short as f64) / (LONG - SHORT) as f64)
}

/// What `cargo bench -p bench -- …` asks of this bench: everything when
/// nothing is named; `instructions` alone, or contestants' letters (`A`,
/// `B`, …) and value names (`small`, `record`, `series`) to run only those.
struct Selection {
    who: Vec<Who>,
    values: Vec<String>,
}

impl Selection {
    /// `None` if the arguments name only other benches' groups.
    fn from_args() -> Option<Self> {
        let args: Vec<String> = std::env::args()
            .skip(1)
            .filter(|arg| !arg.starts_with('-'))
            .collect();
        let who: Vec<Who> = args.iter().filter_map(|a| Who::of(a)).collect();
        let keys = [Small::KEY, OneKib::KEY, SixtyFourKib::KEY];
        let values: Vec<String> = args
            .iter()
            .filter(|a| keys.contains(&a.as_str()))
            .cloned()
            .collect();
        let named =
            args.iter().any(|a| a == "instructions") || !who.is_empty() || !values.is_empty();
        if !args.is_empty() && !named {
            return None;
        }
        Some(Self {
            who: if who.is_empty() {
                Who::ALL.to_vec()
            } else {
                who
            },
            values: if values.is_empty() {
                keys.map(str::to_owned).to_vec()
            } else {
                values
            },
        })
    }

    fn wants<S: Size>(&self) -> bool {
        self.values.iter().any(|v| v == S::KEY)
    }

    fn runs(&self, who: Who) -> bool {
        self.who.contains(&who)
    }
}

/// Each contestant's instructions per hit for one value, in [`Who::ALL`]'s
/// order; `None` for one not run.
struct Row {
    label: &'static str,
    figures: [Option<f64>; 6],
}

impl Row {
    fn of(&self, who: Who) -> f64 {
        let i = Who::ALL.iter().position(|w| *w == who).unwrap_or(0);
        self.figures[i].unwrap_or(f64::NAN)
    }
}

fn row<S: Size>(selection: &Selection) -> Result<Row, BenchError> {
    let mut figures = [None; 6];
    for (figure, who) in figures.iter_mut().zip(Who::ALL) {
        if selection.runs(who) {
            *figure = Some(per_hit::<S>(who)?);
        }
    }
    Ok(Row {
        label: S::LABEL,
        figures,
    })
}

/// Prints `row`; how many targets it missed.
fn show(row: &Row) -> usize {
    let ratio = |a: Who, b: Who| row.of(a) / row.of(b);
    let (b_a, c_a, l_cl, f_a) = (
        ratio(Who::Ours, Who::Hand),
        ratio(Who::Cached, Who::Hand),
        ratio(Who::Local, Who::Csc),
        ratio(Who::Floor, Who::Hand),
    );
    // A ratio of a contestant not run is NaN, and judged on nothing.
    let mut missed = Vec::new();
    if b_a > REDIS_TARGET {
        missed.push(format!("B/A > {REDIS_TARGET}"));
    }
    if l_cl > LOCAL_TARGET {
        missed.push(format!("L/CL > {LOCAL_TARGET}"));
    }
    let judged = !b_a.is_nan() || !l_cl.is_nan();
    let figures: String = row
        .figures
        .iter()
        .map(|f| match f {
            Some(f) => format!(" {f:>9.0}"),
            None => format!(" {:>9}", "-"),
        })
        .collect();
    let met = if !judged {
        "-".to_owned()
    } else if missed.is_empty() {
        "yes".to_owned()
    } else {
        format!("NO ({})", missed.join(", "))
    };
    println!(
        "{:<15}{figures} {b_a:>6.3} {c_a:>6.3} {l_cl:>6.3} {f_a:>6.3}  {met}",
        row.label
    );
    let _ = std::io::stdout().flush();
    missed.len()
}

// ---------------------------------------------------------------------------
// The profile

/// Instructions by function, as `callgrind_annotate` counts them.
type Costs = HashMap<String, u64>;

/// The functions of a callgrind file and their instructions, self or
/// inclusive, as `callgrind_annotate` shows them (names demangled).
fn annotate(file: &Path, inclusive: bool, names: &Symbols) -> Result<Costs, BenchError> {
    let out = Command::new("callgrind_annotate")
        .args(["--threshold=100", "--auto=no", "--show-percs=no"])
        .arg(format!(
            "--inclusive={}",
            if inclusive { "yes" } else { "no" }
        ))
        .arg(file)
        .output()?;
    if !out.status.success() {
        return Err(format!("callgrind_annotate {}: {}", file.display(), out.status).into());
    }
    let mut functions = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((count, name)) = line.trim_start().split_once(' ') else {
            continue;
        };
        let Ok(count) = count.replace(',', "").parse::<u64>() else {
            continue;
        };
        let name = name.trim();
        if name == "PROGRAM TOTALS" {
            continue;
        }
        *functions.entry(names.function(name)).or_insert(0) += count;
    }
    Ok(functions)
}

/// The symbols of this executable, for the functions callgrind names by
/// address only (assembly without a symbol type: BLAKE3's SIMD kernels).
struct Symbols(Vec<(u64, String)>);

impl Symbols {
    /// Read with `nm`, if it is installed; else none.
    fn read() -> Self {
        let exe = std::env::current_exe().ok();
        let out = exe.and_then(|exe| {
            Command::new("nm")
                .args(["--defined-only", "--demangle"])
                .arg(exe)
                .output()
                .ok()
        });
        let mut symbols: Vec<(u64, String)> = out
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let mut words = line.splitn(3, ' ');
                let address = u64::from_str_radix(words.next()?, 16).ok()?;
                let _kind = words.next()?;
                Some((address, words.next()?.to_owned()))
            })
            .collect();
        symbols.sort();
        Self(symbols)
    }

    /// `callgrind_annotate`'s `file:function [object]` as the function's
    /// name, an address as the symbol it falls in.
    fn function(&self, shown: &str) -> String {
        let name = shown.rsplit_once(" [").map_or(shown, |(name, _)| name);
        // The file, up to a single `:` (a Rust path's are doubled).
        let name = match name.find(':') {
            Some(i) if !name[i + 1..].starts_with(':') => &name[i + 1..],
            _ => name,
        };
        let Some(address) = name
            .strip_prefix("0x")
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        else {
            return name.to_owned();
        };
        let i = self.0.partition_point(|(a, _)| *a <= address);
        match i.checked_sub(1).map(|i| &self.0[i]) {
            Some((start, symbol)) => format!("{symbol} (+{:#x})", address - start),
            None => name.to_owned(),
        }
    }
}

/// Instructions per hit by function: `long`'s costs less `short`'s.
fn per_hit_costs(short: &Costs, long: &Costs) -> HashMap<String, f64> {
    long.iter()
        .map(|(name, n)| {
            let before = short.get(name).copied().unwrap_or(0);
            let diff = *n as f64 - before as f64;
            (name.clone(), diff / (LONG - SHORT) as f64)
        })
        .collect()
}

/// Per-hit costs of `who`'s run for `S`, self or inclusive.
fn costs<S: Size>(
    who: Who,
    inclusive: bool,
    names: &Symbols,
) -> Result<HashMap<String, f64>, BenchError> {
    let short = annotate(&out_file(who, S::KEY, SHORT), inclusive, names)?;
    let long = annotate(&out_file(who, S::KEY, LONG), inclusive, names)?;
    Ok(per_hit_costs(&short, &long))
}

/// Where B's instructions go for `S`: its top functions (self), those it
/// spends more in than A (if A ran), and the crate's own (inclusive).
fn profile<S: Size>(selection: &Selection, names: &Symbols) -> Result<(), BenchError> {
    let b = costs::<S>(Who::Ours, false, names)?;
    println!();
    println!(
        "B at {}: top {TOP} functions, self instructions per hit",
        S::LABEL
    );
    for (n, name) in top(b.iter().map(|(k, v)| (*v, k.as_str()))) {
        println!("{n:>9.0}  {}", shorten(name));
    }
    if selection.runs(Who::Hand) {
        let a = costs::<S>(Who::Hand, false, names)?;
        println!();
        println!(
            "B - A at {}: top {TOP} functions B spends more self instructions in than A, per hit",
            S::LABEL
        );
        println!("{:>9} {:>9} {:>9}  function", "B - A", "A", "B");
        let extra = b
            .iter()
            .map(|(k, v)| (v - a.get(k).copied().unwrap_or(0.0), k.as_str()));
        for (n, name) in top(extra) {
            let (a, b) = (a.get(name).copied().unwrap_or(0.0), b[name]);
            println!("{n:>9.0} {a:>9.0} {b:>9.0}  {}", shorten(name));
        }
    }
    let inclusive = costs::<S>(Who::Ours, true, names)?;
    println!();
    println!(
        "B at {}: top {TOP} of redis-cached's functions, inclusive instructions per hit",
        S::LABEL
    );
    let ours = inclusive
        .iter()
        .filter(|(k, _)| k.contains("redis_cached::"))
        .map(|(k, v)| (*v, k.as_str()));
    for (n, name) in top(ours) {
        println!("{n:>9.0}  {}", shorten(name));
    }
    Ok(())
}

/// The [`TOP`] largest of `costs`.
fn top<'a>(costs: impl Iterator<Item = (f64, &'a str)>) -> Vec<(f64, &'a str)> {
    let mut costs: Vec<(f64, &str)> = costs.collect();
    costs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    costs.truncate(TOP);
    costs
}

/// A function's name cut to a line.
fn shorten(name: &str) -> String {
    const WIDTH: usize = 160;
    if name.chars().count() <= WIDTH {
        name.to_owned()
    } else {
        let cut: String = name.chars().take(WIDTH - 1).collect();
        format!("{cut}…")
    }
}

// ---------------------------------------------------------------------------
// The run

/// Why the rows can't be measured here, if they can't.
fn valgrind() -> Result<String, String> {
    match Command::new("valgrind").arg("--version").output() {
        Ok(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        }
        Ok(out) => Err(format!("`valgrind --version` failed ({})", out.status)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err("valgrind is not installed (Debian: apt-get install valgrind)".to_owned())
        }
        Err(e) => Err(format!("valgrind could not be run: {e}")),
    }
}

fn run() -> Result<(), BenchError> {
    let Some(selection) = Selection::from_args() else {
        return Ok(());
    };
    println!();
    let valgrind = match valgrind() {
        Ok(version) => version,
        Err(why) => {
            println!("instructions per hit: skipped, and the profile of B with them: {why}");
            return Ok(());
        }
    };
    // The workspace's test harness starts it and waits until it answers.
    let server = harness::Server::start();
    URL.set(server.url().to_owned())
        .map_err(|_| "URL set twice")?;
    std::fs::create_dir_all(out_dir())?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    harness::retry(harness::PATIENCE, Duration::from_millis(20), || {
        rt.block_on(CACHE.ping())
    })
    .map_err(|e| format!("ours: the cache never reached {}: {e}", url()))?;
    rt.block_on(async {
        store_keys::<Small>().await?;
        store_keys::<OneKib>().await?;
        store_keys::<SixtyFourKib>().await
    })?;

    println!(
        "instructions per hit ({valgrind} --tool=callgrind, the client process only: \
         (I({LONG} hits) - I({SHORT} hits)) / {}, over {KEYS} warm keys, calls in a task on a multi-thread tokio runtime with 1 worker)",
        LONG - SHORT
    );
    for who in Who::ALL {
        println!("  {:<2} {}", who.tag(), who.name());
    }
    println!(
        "{:<15} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6} {:>6} {:>6} {:>6}  met (B/A <= {REDIS_TARGET}, L/CL <= {LOCAL_TARGET})",
        "value", "A", "B", "C", "L", "CL", "F", "B/A", "C/A", "L/CL", "F/A"
    );
    let mut missed = 0;
    if selection.wants::<Small>() {
        missed += show(&row::<Small>(&selection)?);
    }
    if selection.wants::<OneKib>() {
        missed += show(&row::<OneKib>(&selection)?);
    }
    if selection.wants::<SixtyFourKib>() {
        missed += show(&row::<SixtyFourKib>(&selection)?);
    }
    println!("instruction targets missed: {missed}");

    let annotate = Command::new("callgrind_annotate").arg("--version").output();
    if selection.runs(Who::Ours) && annotate.is_err() {
        println!("B's profile: skipped: callgrind_annotate is not installed");
    } else if selection.runs(Who::Ours) {
        let names = Symbols::read();
        if selection.wants::<Small>() {
            profile::<Small>(&selection, &names)?;
        }
        if selection.wants::<SixtyFourKib>() {
            profile::<SixtyFourKib>(&selection, &names)?;
        }
    }
    println!();
    println!("callgrind files: {}", out_dir().display());
    drop(server);
    Ok(())
}

fn main() -> ExitCode {
    let result = match std::env::var(CHILD) {
        Ok(task) => child(&task),
        Err(_) => run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("instructions benchmark failed: {e}");
            ExitCode::FAILURE
        }
    }
}
