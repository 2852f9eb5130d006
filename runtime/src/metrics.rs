//! Counters of what cached calls did, per [`Cache`](crate::Cache).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters, shared by every call through one cache.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// Hits answered by Redis.
    hits: AtomicU64,
    local_hits: AtomicU64,
    misses: AtomicU64,
    stores: AtomicU64,
    errors: AtomicU64,
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
}

impl Metrics {
    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Relaxed);
    }

    /// A hit in the in-process tier: one counter, so such a hit stays cheap;
    /// [`snapshot`](Self::snapshot) adds it to `hits`.
    pub(crate) fn local_hit(&self) {
        self.local_hits.fetch_add(1, Relaxed);
    }

    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Relaxed);
    }

    pub(crate) fn store(&self) {
        self.stores.fetch_add(1, Relaxed);
    }

    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let local_hits = self.local_hits.load(Relaxed);
        Stats {
            hits: self.hits.load(Relaxed) + local_hits,
            local_hits,
            misses: self.misses.load(Relaxed),
            stores: self.stores.load(Relaxed),
            errors: self.errors.load(Relaxed),
        }
    }
}
