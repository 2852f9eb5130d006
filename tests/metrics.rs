//! The `metrics` feature: what cached calls did, by function, as the
//! application's `metrics` recorder sees it; and the `debug` span of each
//! call, which names the function and the outcome, never an argument.
//!
//! One `DebuggingRecorder` and one span-recording subscriber serve the whole
//! binary; each test reads the metrics of its own functions only.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};
use redis_cached::{Cache, redis_cached};
use support::{CacheSlot, Calls, TestRedis};
use tracing_subscriber::fmt::format::FmtSpan;

/// What the recorder received so far: counter totals and histogram sample
/// counts, by metric name and `function` label (and `op`/`kind` for errors).
/// The debugging recorder empties its values at each snapshot, so they are
/// added up here, and tests running in parallel each find their own.
struct Recorded {
    snapshotter: Snapshotter,
    totals: Mutex<HashMap<String, u64>>,
}

/// Installs the recorder and the span subscriber; every test forces it
/// first, so that no callsite is registered before the subscriber is there.
static RECORDED: LazyLock<Recorded> = LazyLock::new(|| {
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .without_time()
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(|| SpanBuffer)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("the only recorder");
    Recorded {
        snapshotter,
        totals: Mutex::new(HashMap::new()),
    }
});

/// The recorded total of `metric` for `function` (counters: the sum;
/// histograms: how many samples), over every other label.
fn total(metric: &str, function: &str) -> u64 {
    totals(metric, function, &[])
}

/// [`total`] for the series that also have all of `labels`.
fn totals(metric: &str, function: &str, labels: &[(&str, &str)]) -> u64 {
    let recorded = &*RECORDED;
    let mut totals = recorded
        .totals
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    for (key, _, _, value) in recorded.snapshotter.snapshot().into_vec() {
        let added = match value {
            DebugValue::Counter(n) => n,
            DebugValue::Histogram(samples) => samples.len() as u64,
            DebugValue::Gauge(_) => 0,
        };
        *totals.entry(series(&key)).or_default() += added;
    }
    let wanted = |series: &str| {
        series.starts_with(&format!("{metric}{{"))
            && series.contains(&format!("function={function},"))
            && labels
                .iter()
                .all(|(k, v)| series.contains(&format!("{k}={v},")))
    };
    totals
        .iter()
        .filter(|(series, _)| wanted(series))
        .map(|(_, n)| n)
        .sum()
}

/// `name{label=value,…,}` for a recorded key.
fn series(key: &CompositeKey) -> String {
    let kind = match key.kind() {
        MetricKind::Counter | MetricKind::Gauge => "",
        MetricKind::Histogram => "histogram:",
    };
    let labels: String = key
        .key()
        .labels()
        .map(|label| format!("{}={},", label.key(), label.value()))
        .collect();
    format!("{kind}{}{{{labels}}}", key.key().name())
}

/// The counters of `function` this suite looks at, in one tuple:
/// (hits, local hits, misses, stores, errors).
fn counters(function: &str) -> (u64, u64, u64, u64, u64) {
    (
        total("redis_cached_hits_total", function),
        total("redis_cached_local_hits_total", function),
        total("redis_cached_misses_total", function),
        total("redis_cached_stores_total", function),
        total("redis_cached_errors_total", function),
    )
}

#[test]
fn hits_misses_and_stores_are_counted_by_function_in_memory() {
    LazyLock::force(&RECORDED);
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    CACHE.set(Cache::new("mem://").expect("mem:// is valid"));

    #[redis_cached(ttl = 60, cache = CACHE, name = "metrics_mem_square")]
    fn square(x: u64) -> u64 {
        CALLS.inc();
        x * x
    }

    #[redis_cached(ttl = 60, cache = CACHE, name = "metrics_mem_other")]
    fn other(x: u64) -> u64 {
        x + 1
    }

    for x in [2, 2, 2, 3] {
        square(x);
    }
    other(1);
    assert_eq!(CALLS.get(), 2);
    assert_eq!(counters("metrics_mem_square"), (2, 0, 2, 2, 0));
    assert_eq!(counters("metrics_mem_other"), (0, 0, 1, 1, 0));
    assert_eq!(
        total(
            "histogram:redis_cached_lookup_seconds",
            "metrics_mem_square"
        ),
        4,
        "every lookup asked the backend"
    );
    assert_eq!(
        total("histogram:redis_cached_body_seconds", "metrics_mem_square"),
        2,
        "one body run per miss"
    );
}

#[tokio::test]
async fn redis_hits_misses_stores_and_decode_errors_are_counted() {
    LazyLock::force(&RECORDED);
    static CACHE: CacheSlot = CacheSlot::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = 60, cache = CACHE, name = "metrics_redis_price")]
    async fn price(item: u64) -> u64 {
        item * 100
    }

    assert_eq!(price(7).await, 700);
    assert_eq!(price(7).await, 700);
    assert_eq!(counters("metrics_redis_price"), (1, 0, 1, 1, 0));
    redis.set_raw(&redis.only_key(), b"not a value");
    assert_eq!(price(7).await, 700);
    assert_eq!(counters("metrics_redis_price"), (1, 0, 2, 2, 1));
    let decode = [("op", "read"), ("kind", "decode")];
    assert_eq!(
        totals("redis_cached_errors_total", "metrics_redis_price", &decode),
        1
    );
    let stats = CACHE.stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.stores, stats.errors),
        (1, 2, 2, 1),
        "Cache::stats counts the same"
    );
}

#[tokio::test]
async fn local_hits_are_hits_too() {
    LazyLock::force(&RECORDED);
    static CACHE: CacheSlot = CacheSlot::new();
    let _redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = 60, cache = CACHE, local = 8, name = "metrics_local")]
    async fn local(x: u64) -> u64 {
        x
    }

    // The tier takes values once its tracking connection is up.
    support::eventually_async_within(
        support::PATIENCE,
        Duration::from_millis(5),
        "a hit in the tier",
        || async {
            if CACHE.stats().local_hits > 0 {
                return true;
            }
            local(1).await;
            false
        },
    )
    .await;
    let stats = CACHE.stats();
    assert_eq!(
        counters("metrics_local"),
        (stats.hits, stats.local_hits, stats.misses, stats.stores, 0)
    );
}

#[test]
fn lock_waits_and_refreshes_are_counted() {
    LazyLock::force(&RECORDED);
    static CACHE: CacheSlot = CacheSlot::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = 60, lock = "5s", cache = CACHE, name = "metrics_locked")]
    fn locked(x: u64) -> u64 {
        x
    }

    #[redis_cached(ttl = "100ms", stale = "30s", cache = CACHE, name = "metrics_stale")]
    fn stale(x: u64) -> u64 {
        x
    }

    locked(1);
    let key = redis.only_key();
    let mut conn = redis.conn();
    let () = redis::cmd("DEL").arg(&key).query(&mut conn).unwrap();
    let () = redis::cmd("SET")
        .arg(format!("{key}:lock"))
        .arg("another process")
        .arg("PX")
        .arg(50)
        .query(&mut conn)
        .unwrap();
    assert_eq!(locked(1), 1);
    assert_eq!(total("redis_cached_lock_waits_total", "metrics_locked"), 1);

    stale(1);
    std::thread::sleep(Duration::from_millis(150));
    stale(1);
    assert_eq!(total("redis_cached_refreshes_total", "metrics_stale"), 1);
    assert_eq!(
        total("histogram:redis_cached_body_seconds", "metrics_stale"),
        2
    );
}

/// What the subscriber wrote: events, and a line for each span closed.
static SPANS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct SpanBuffer;

impl Write for SpanBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut spans = SPANS.lock().unwrap_or_else(PoisonError::into_inner);
        spans.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The lines that closed a span of `function`.
fn closed_spans(function: &str) -> Vec<String> {
    let spans = SPANS.lock().unwrap_or_else(PoisonError::into_inner);
    String::from_utf8_lossy(&spans)
        .lines()
        .filter(|line| line.contains(function) && line.contains("close"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn each_call_has_a_debug_span_with_its_outcome_and_no_argument() {
    LazyLock::force(&RECORDED);
    static CACHE: CacheSlot = CacheSlot::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = 60, cache = CACHE, name = "metrics_span_lookup")]
    async fn lookup(secret: String) -> String {
        tracing::info!("body ran");
        secret.len().to_string()
    }

    lookup("hunter2-argument".to_owned()).await;
    lookup("hunter2-argument".to_owned()).await;
    redis.set_raw(&redis.only_key(), b"garbage");
    lookup("hunter2-argument".to_owned()).await;

    let closed = closed_spans("metrics_span_lookup");
    let outcomes: Vec<&str> = closed
        .iter()
        .map(|line| {
            ["miss", "hit", "error"]
                .into_iter()
                .find(|outcome| line.contains(&format!("outcome=\"{outcome}\"")))
                .unwrap_or(line)
        })
        .collect();
    assert_eq!(outcomes, ["miss", "hit", "error"], "{closed:#?}");
    assert!(
        closed.iter().all(|line| line.starts_with("DEBUG")),
        "{closed:#?}"
    );
    let spans = SPANS.lock().unwrap_or_else(PoisonError::into_inner);
    let all = String::from_utf8_lossy(&spans);
    assert!(
        all.contains("redis_cached{function=\"metrics_span_lookup\" outcome=\"miss\"}: "),
        "the body's event is inside the span: {all}"
    );
    assert!(!all.contains("hunter2"), "an argument was logged: {all}");
}
