//! What cached calls did: counters per [`Cache`](crate::Cache) ([`Stats`]),
//! the same events by function through the `metrics` facade with the
//! `metrics` feature (`metrics/export.rs`), and the `tracing` span of a call.
//!
//! Every event passes [`Metrics::record`]; the store decides when.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
#[cfg(feature = "metrics")]
use std::time::Instant;

use crate::error::public::ErrorKind;

#[cfg(feature = "metrics")]
mod export;

/// Live counters, shared by every call through one cache.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// Hits answered by Redis.
    hits: AtomicU64,
    local_hits: AtomicU64,
    misses: AtomicU64,
    stores: AtomicU64,
    errors: AtomicU64,
    shape_mismatches: AtomicU64,
}

/// What the counters of a [`Cache`](crate::Cache) read at one moment.
///
/// ```
/// let cache = redis_cached::Cache::new("redis://127.0.0.1:6379").unwrap();
/// let stats = cache.stats();
/// assert_eq!(stats.hits + stats.misses, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Calls answered from the cache without running the body.
    pub hits: u64,
    /// Of [`hits`](Self::hits), those answered by the in-process tier
    /// (`local`) without asking Redis.
    pub local_hits: u64,
    /// Calls whose `GET` found nothing usable (key absent, Redis failing, or
    /// stored bytes unusable). Each ran the body, or received the result of a
    /// concurrent call of the same key that did (single flight).
    pub misses: u64,
    /// Values written to the cache.
    pub stores: u64,
    /// Failures talking to Redis or decoding what it held. Each one was
    /// logged: at `warn`, or at `debug` when its cause was logged already
    /// (Redis known to be down, an unusable default cache).
    pub errors: u64,
    /// Values found under a key but written by a type of another serde
    /// shape (another build, another type behind the same typed-API key),
    /// or by a release before shapes were recorded. Each was a miss, also
    /// counted in [`misses`](Self::misses); the first of each function was
    /// logged at `warn`. See [shapes](crate::guide::key_format#shapes).
    pub shape_mismatches: u64,
    /// Keys of the in-process tier (`local`) that Redis reported written,
    /// deleted or expired, through client-side caching: Redis reports a
    /// key only to the processes whose tier read it, so this counts what
    /// the tier's coherence costs this process (and Redis, which sent each).
    pub invalidations: u64,
}

/// One thing a cached call did, for [`Metrics::record`].
#[derive(Debug, Clone, Copy)]
// What the variants hold is read by the `metrics` feature's export only.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) enum Event {
    /// A hit answered by Redis.
    Hit,
    /// A hit answered by the in-process tier.
    LocalHit,
    Miss,
    /// A value written to the cache.
    Store,
    /// A failure of the cache access `op` (`read`, `write`, `key`, `lock`…).
    Error(&'static str, ErrorKind),
    /// A value of another shape was read: a miss, not an error.
    Mismatch,
    /// A miss found another process holding the key's lock, and waited.
    LockWait,
    /// A hit due for a refresh (`stale`, `refresh`) claimed it.
    Refresh,
    /// A lookup that asked Redis took this long (see [`Timer`]).
    Lookup(Duration),
    /// The function's body took this long.
    Body(Duration),
}

impl Metrics {
    /// Counts `event` of the function `name`, and, with the `metrics`
    /// feature, reports it to the application's recorder.
    #[inline]
    pub(crate) fn record(&self, name: &str, event: Event) {
        let counter = match event {
            Event::Hit => &self.hits,
            Event::LocalHit => &self.local_hits,
            Event::Miss => &self.misses,
            Event::Store => &self.stores,
            Event::Error(..) => &self.errors,
            Event::Mismatch => &self.shape_mismatches,
            Event::LockWait | Event::Refresh | Event::Lookup(_) | Event::Body(_) => {
                return export(name, event);
            }
        };
        counter.fetch_add(1, Relaxed);
        export(name, event);
    }

    /// [`snapshot`](Self::snapshot), with the in-process tier's count of
    /// invalidations, which the tier keeps.
    #[cfg(feature = "local")]
    pub(crate) fn snapshot_with(&self, invalidations: u64) -> Stats {
        Stats {
            invalidations,
            ..self.snapshot()
        }
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let local_hits = self.local_hits.load(Relaxed);
        Stats {
            hits: self.hits.load(Relaxed) + local_hits,
            local_hits,
            misses: self.misses.load(Relaxed),
            stores: self.stores.load(Relaxed),
            errors: self.errors.load(Relaxed),
            shape_mismatches: self.shape_mismatches.load(Relaxed),
            invalidations: 0,
        }
    }
}

/// Reports `event` to the `metrics` recorder: nothing without the feature.
#[cfg(feature = "metrics")]
#[inline]
fn export(name: &str, event: Event) {
    export::record(name, event);
}

#[cfg(not(feature = "metrics"))]
#[inline(always)]
fn export(_: &str, _: Event) {}

/// When a lookup started: a clock read with the `metrics` feature, nothing
/// (and no clock read) without.
pub(crate) struct Timer {
    #[cfg(feature = "metrics")]
    started: Instant,
}

impl Timer {
    #[inline]
    pub(crate) fn start() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            started: Instant::now(),
        }
    }

    /// The [`Event::Lookup`] of a lookup that started at this timer.
    #[inline]
    pub(crate) fn lookup(self) -> Event {
        #[cfg(feature = "metrics")]
        let took = self.started.elapsed();
        #[cfg(not(feature = "metrics"))]
        let took = Duration::ZERO;
        Event::Lookup(took)
    }
}

/// How a cached call was answered, as its span's `outcome` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Redis held a fresh value.
    Hit,
    /// The in-process tier held a fresh value.
    LocalHit,
    /// Nothing usable was stored: the body ran (or a concurrent call's did).
    Miss,
    /// The value found was due for a refresh, and this call claimed it.
    Stale,
    /// The cache failed (key, read): the body ran.
    Error,
}

impl Outcome {
    /// The value of the span's `outcome` field.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::LocalHit => "local_hit",
            Self::Miss => "miss",
            Self::Stale => "stale",
            Self::Error => "error",
        }
    }
}

/// The span of one cached call of the function `name`, at `debug`: its
/// `function` and, once the lookup is done, its `outcome`. Never an
/// argument. When `debug` is off for this crate it is disabled, and costs
/// a level check.
#[inline]
pub(crate) fn span(name: &'static str) -> tracing::Span {
    tracing::debug_span!(
        "redis_cached",
        function = name,
        outcome = tracing::field::Empty
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_count_into_the_stats() {
        let metrics = Metrics::default();
        for event in [
            Event::Hit,
            Event::LocalHit,
            Event::Miss,
            Event::Store,
            Event::Error("read", ErrorKind::Decode),
            Event::LockWait,
            Event::Refresh,
            Event::Body(Duration::from_millis(3)),
            Timer::start().lookup(),
        ] {
            metrics.record("m::f", event);
        }
        let stats = metrics.snapshot();
        assert_eq!(
            (
                stats.hits,
                stats.local_hits,
                stats.misses,
                stats.stores,
                stats.errors
            ),
            (2, 1, 1, 1, 1)
        );
    }
}
