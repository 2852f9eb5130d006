//! What the `metrics` feature costs a hit, with a Prometheus recorder
//! installed: a cached call answered by the in-memory backend (its counter
//! and lookup histogram are updated through handles kept per thread), next
//! to the same hit before any recorder is installed, and to what one event
//! costs through those handles and through the registry lookup that
//! `metrics::counter!` with a label does on every use. Also what the span
//! every cached call runs in costs when `debug` is off (no subscriber
//! here): the same `debug_span!` around a ready future, next to the future
//! alone.
//!
//! ```sh
//! cargo bench -p bench --features metrics --bench metrics
//! ```
//!
//! Each figure is the median of 15 rounds of 200 000 calls.

use std::future::{Future, ready};
use std::hint::black_box;
use std::pin::pin;
use std::sync::LazyLock;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusBuilder;
use redis_cached::{Cache, redis_cached};
use tracing::Instrument;

const ROUNDS: usize = 15;
const CALLS: u32 = 200_000;

static CACHE: LazyLock<Cache> = LazyLock::new(|| Cache::new("mem://").expect("mem:// is valid"));

#[redis_cached(ttl = 600, cache = CACHE, name = "bench::square")]
fn square(x: u64) -> u64 {
    x * x
}

/// The median time per call of `f`, over [`ROUNDS`] rounds of [`CALLS`].
fn per_call(mut f: impl FnMut()) -> Duration {
    let mut rounds: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..CALLS {
                f();
            }
            started.elapsed() / CALLS
        })
        .collect();
    rounds.sort();
    rounds[ROUNDS / 2]
}

/// Polls a future that is ready at once, as an executor would.
fn poll<F: Future>(future: F) -> F::Output {
    let mut context = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => unreachable!("a ready future"),
    }
}

fn main() {
    let name = black_box("bench::square");
    let bare = per_call(|| {
        black_box(poll(ready(black_box(7u64))));
    });
    let spanned = per_call(|| {
        let span = tracing::debug_span!(
            "redis_cached",
            function = name,
            outcome = tracing::field::Empty
        );
        span.record("outcome", "hit");
        black_box(poll(ready(black_box(7u64)).instrument(span.clone())));
    });
    square(7);
    let unrecorded = per_call(|| {
        black_box(square(black_box(7)));
    });
    // Installed after the first calls: the handles kept for the no-op
    // recorder are dropped and registered again with this one.
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder");
    let before = CACHE.stats().hits;
    let hit = per_call(|| {
        black_box(square(black_box(7)));
    });
    let handle = metrics::counter!("bench_events_total", "function" => name);
    let cached = per_call(|| handle.increment(1));
    let looked_up = per_call(|| {
        metrics::counter!("bench_events_total", "function" => name).increment(1);
    });
    let stats = CACHE.stats();
    assert_eq!(stats.misses, 1, "one miss, then hits");
    assert!(
        prometheus.render().contains(&format!(
            "redis_cached_hits_total{{function=\"bench::square\"}} {}",
            stats.hits - before
        )),
        "the recorder saw every hit"
    );
    println!(
        "metrics feature on, Prometheus recorder installed; median of {ROUNDS} rounds of {CALLS} calls"
    );
    println!("mem:// hit of a cached fn, no recorder installed yet:       {unrecorded:>8.1?}");
    println!("mem:// hit of a cached fn (hit counter + lookup histogram): {hit:>8.1?}");
    println!("one counter event through a kept handle:                   {cached:>8.1?}");
    println!("one counter event through counter!(name, label) each time: {looked_up:>8.1?}");
    println!("a ready future, polled:                                    {bare:>8.1?}");
    println!("the same in a disabled debug span (as each cached call):   {spanned:>8.1?}");
}
