//! The `metrics` feature: every [`Event`] of a cached call, labelled with
//! the function's name, through the `metrics` facade to the recorder the
//! application installed (a Prometheus, StatsD or OpenTelemetry exporter).
//!
//! A hit must stay cheap, so a function's handles are registered once per
//! thread and recorder and kept in a thread-local map by name: an event
//! costs a hash of the name and the recorder's own update, not a registry
//! lookup. The map is emptied when the thread's recorder changes (one
//! installed after the first calls, a test's local recorder). Errors, also
//! labelled with what failed and how, are registered each time: they are
//! rare, and a failing call waits for Redis anyway.

use std::cell::RefCell;
use std::collections::HashMap;

use metrics::{Counter, Histogram, Unit};
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use super::Event;
use crate::error::public::ErrorKind;

/// Calls answered from the cache, by Redis or the in-process tier.
pub(crate) const HITS: &str = "redis_cached_hits_total";
/// Of the hits, those answered by the in-process tier.
pub(crate) const LOCAL_HITS: &str = "redis_cached_local_hits_total";
/// Calls that found nothing usable and ran the body (or shared a concurrent run).
pub(crate) const MISSES: &str = "redis_cached_misses_total";
/// Values written to the cache.
pub(crate) const STORES: &str = "redis_cached_stores_total";
/// Failures of the cache, by `op` and `kind`; each call still got its value.
pub(crate) const ERRORS: &str = "redis_cached_errors_total";
/// Values read back by a type of another shape (a miss each; see `shape.rs`).
pub(crate) const SHAPE_MISMATCHES: &str = "redis_cached_shape_mismatches_total";
/// Misses that waited for another process's `lock`.
pub(crate) const LOCK_WAITS: &str = "redis_cached_lock_waits_total";
/// Refreshes of values due for one (`stale`, `refresh`).
pub(crate) const REFRESHES: &str = "redis_cached_refreshes_total";
/// Lookups that asked Redis: the read and the decoding.
pub(crate) const LOOKUP_SECONDS: &str = "redis_cached_lookup_seconds";
/// Runs of the function's body.
pub(crate) const BODY_SECONDS: &str = "redis_cached_body_seconds";

/// The label every metric has: the function's name as the key holds it.
pub(crate) const FUNCTION: &str = "function";

/// One function's registered metrics.
struct Handles {
    hits: Counter,
    local_hits: Counter,
    misses: Counter,
    stores: Counter,
    lock_waits: Counter,
    refreshes: Counter,
    lookup: Histogram,
    body: Histogram,
}

/// The handles this thread registered with `recorder`, by function name.
#[derive(Default)]
struct Registered {
    /// The address of the recorder they were registered with.
    recorder: usize,
    by_name: HashMap<Box<str>, Handles, Xxh3DefaultBuilder>,
}

thread_local! {
    static REGISTERED: RefCell<Registered> = RefCell::new(Registered::default());
}

/// Reports `event` of the function `name` to the current recorder.
pub(super) fn record(name: &str, event: Event) {
    if let Event::Error(op, kind) = event {
        let kind = kind_label(kind);
        metrics::counter!(ERRORS, FUNCTION => name.to_owned(), "op" => op, "kind" => kind)
            .increment(1);
        return;
    }
    // Rare, as errors are: registered each time.
    if let Event::Mismatch = event {
        metrics::counter!(SHAPE_MISMATCHES, FUNCTION => name.to_owned()).increment(1);
        return;
    }
    // Nothing is reported from a thread-local's destructor, nor from a
    // recorder that would make a cached call while registering.
    let _ = REGISTERED.try_with(|registered| {
        let Ok(mut registered) = registered.try_borrow_mut() else {
            return;
        };
        let recorder =
            metrics::with_recorder(|recorder| std::ptr::from_ref(recorder).cast::<()>().addr());
        if registered.recorder != recorder {
            registered.by_name.clear();
            registered.recorder = recorder;
            describe();
        }
        if let Some(handles) = registered.by_name.get(name) {
            return handles.record(event);
        }
        let handles = Handles::register(name);
        handles.record(event);
        registered.by_name.insert(name.into(), handles);
    });
}

impl Handles {
    fn register(name: &str) -> Self {
        let label = || [(FUNCTION, name.to_owned())];
        Self {
            hits: metrics::counter!(HITS, &label()),
            local_hits: metrics::counter!(LOCAL_HITS, &label()),
            misses: metrics::counter!(MISSES, &label()),
            stores: metrics::counter!(STORES, &label()),
            lock_waits: metrics::counter!(LOCK_WAITS, &label()),
            refreshes: metrics::counter!(REFRESHES, &label()),
            lookup: metrics::histogram!(LOOKUP_SECONDS, &label()),
            body: metrics::histogram!(BODY_SECONDS, &label()),
        }
    }

    fn record(&self, event: Event) {
        match event {
            Event::Hit => self.hits.increment(1),
            Event::LocalHit => {
                self.hits.increment(1);
                self.local_hits.increment(1);
            }
            Event::Miss => self.misses.increment(1),
            Event::Store => self.stores.increment(1),
            Event::LockWait => self.lock_waits.increment(1),
            Event::Refresh => self.refreshes.increment(1),
            Event::Lookup(took) => self.lookup.record(took),
            Event::Body(took) => self.body.record(took),
            Event::Error(..) | Event::Mismatch => {}
        }
    }
}

/// Tells the recorder what each metric means (Prometheus's `# HELP`).
fn describe() {
    metrics::describe_counter!(
        HITS,
        "Calls answered from the cache, by Redis or in process"
    );
    metrics::describe_counter!(LOCAL_HITS, "Hits answered by the in-process tier");
    metrics::describe_counter!(MISSES, "Calls that found nothing usable and ran the body");
    metrics::describe_counter!(STORES, "Values written to the cache");
    metrics::describe_counter!(ERRORS, "Failures of the cache; the call ran uncached");
    metrics::describe_counter!(
        SHAPE_MISMATCHES,
        "Values read back by a type of another shape; each was a miss"
    );
    metrics::describe_counter!(LOCK_WAITS, "Misses that waited for another process's lock");
    metrics::describe_counter!(REFRESHES, "Refreshes of values due for one");
    metrics::describe_histogram!(LOOKUP_SECONDS, Unit::Seconds, "Reads that asked Redis");
    metrics::describe_histogram!(BODY_SECONDS, Unit::Seconds, "Runs of the function's body");
}

/// The `kind` label of an error.
fn kind_label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::Connection => "connection",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Auth => "auth",
        ErrorKind::Config => "config",
        ErrorKind::Redis => "redis",
        ErrorKind::Encode => "encode",
        ErrorKind::Decode => "decode",
        ErrorKind::TooLarge => "too_large",
        _ => "other",
    }
}
