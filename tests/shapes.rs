//! Issue 14's paths that tests/deploy.rs doesn't take: `stale`, `refresh`
//! and `f_refresh` reading and writing only their own shape; a value of
//! another shape counted and logged once per function, at `warn`, with the
//! function's name and nothing of the value; a value of a format from before
//! shapes read as a miss once, not an error.

mod support;

use std::time::Duration;

use redis_cached::redis_cached;
use serde::{Deserialize, Serialize};
use support::logs;
use support::{CacheSlot, Calls, TestRedis};

/// The type a first build stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Bounds {
    min: i64,
    max: i64,
}

/// The same name, its fields swapped: what bincode alone would read the
/// first build's bytes as, silently.
mod swapped {
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    pub(crate) struct Bounds {
        pub(crate) max: i64,
        pub(crate) min: i64,
    }
}

#[test]
fn stale_refresh_and_f_refresh_read_and_write_only_their_own_shape() {
    static CACHE: CacheSlot = CacheSlot::new();
    static OLD: Calls = Calls::new();
    static NEW: Calls = Calls::new();
    let redis = TestRedis::start();
    CACHE.set(redis.cache());

    // Two builds of one function, pinned to one name: only the type differs.
    #[redis_cached(ttl = "100ms", stale = "30s", name = "shapes::bounds", cache = CACHE)]
    fn old(x: i64) -> Bounds {
        OLD.inc();
        Bounds {
            min: x,
            max: x + 10,
        }
    }

    #[redis_cached(ttl = "100ms", stale = "30s", name = "shapes::bounds", cache = CACHE)]
    fn new(x: i64) -> swapped::Bounds {
        NEW.inc();
        swapped::Bounds {
            max: x + 10,
            min: x,
        }
    }

    #[redis_cached(ttl = 60, refresh = "xfetch", name = "shapes::xfetch", cache = CACHE)]
    fn old_xfetch(x: i64) -> Bounds {
        OLD.inc();
        Bounds {
            min: x,
            max: x + 10,
        }
    }

    #[redis_cached(ttl = 60, refresh = "xfetch", name = "shapes::xfetch", cache = CACHE)]
    fn new_xfetch(x: i64) -> swapped::Bounds {
        NEW.inc();
        swapped::Bounds {
            max: x + 10,
            min: x,
        }
    }

    assert_eq!(old(1), Bounds { min: 1, max: 11 });
    assert_eq!(old_xfetch(1), Bounds { min: 1, max: 11 });
    std::thread::sleep(Duration::from_millis(150));
    // The old value is stale now: a stale read of the other shape would
    // serve it. It runs its own body instead, and so does `refresh`.
    assert_eq!(new(1), swapped::Bounds { max: 11, min: 1 });
    assert_eq!(new_xfetch(1), swapped::Bounds { max: 11, min: 1 });
    assert_eq!(NEW.get(), 2, "each new function ran its body");
    assert_eq!(redis.keys().len(), 4, "two keys per name, one per shape");
    // `f_refresh` stores under its own shape's key and leaves the other be.
    assert_eq!(new_refresh(2), swapped::Bounds { max: 12, min: 2 });
    assert_eq!(new(2), swapped::Bounds { max: 12, min: 2 });
    assert_eq!(old(2), Bounds { min: 2, max: 12 });
    assert_eq!((OLD.get(), NEW.get()), (3, 3));
    assert_eq!(CACHE.stats().shape_mismatches, 0, "never read: other keys");
}

#[test]
fn a_value_of_another_shape_is_a_miss_logged_once_per_function() {
    let logs = logs::capture();
    let redis = TestRedis::start();
    let cache = redis.cache();
    let ttl = Duration::from_secs(60);
    let bounds = Bounds {
        min: 123_456_789,
        max: 987_654_321,
    };
    block_on(cache.set("bounds", &bounds, ttl)).unwrap();
    for _ in 0..3 {
        let read = block_on(cache.get::<swapped::Bounds>("bounds"));
        assert_eq!(read.unwrap(), None);
    }
    let stats = cache.stats();
    assert_eq!(
        (stats.shape_mismatches, stats.misses, stats.errors),
        (3, 3, 0)
    );
    let warnings = logs.at("WARN");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("another shape"), "{}", warnings[0]);
    assert!(
        warnings[0].contains("function=\"typed\""),
        "{}",
        warnings[0]
    );
    for line in logs.lines() {
        for secret in ["123456789", "987654321", "bounds"] {
            assert!(!line.contains(secret), "{secret} logged: {line}");
        }
    }
    // The value is still there for its own shape.
    let read = block_on(cache.get::<Bounds>("bounds")).unwrap();
    assert_eq!(read, Some(bounds));
}

#[test]
fn a_value_written_before_shapes_is_a_miss_once_not_an_error() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    // Held so that this test's warning is not in another test's capture.
    let logs = logs::capture();
    let redis = TestRedis::start();
    CACHE.set(redis.cache());

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn seven(x: u64) -> u64 {
        CALLS.inc();
        x * 7
    }

    assert_eq!(seven(1), 7);
    let key = redis.only_key();
    // Format 2, as the release before shapes wrote 42: format byte, fresh
    // until (far future), compute ms, then bincode's 42.
    let mut old = vec![2];
    old.extend_from_slice(&u64::MAX.to_le_bytes());
    old.extend_from_slice(&0u32.to_le_bytes());
    old.push(42);
    redis.set_raw(&key, &old);
    assert_eq!(seven(1), 7, "the old value is not read");
    assert_eq!(CALLS.get(), 2);
    assert_ne!(redis.get_raw(&key).unwrap(), old, "overwritten");
    assert_eq!(seven(1), 7);
    assert_eq!(CALLS.get(), 2, "and hit from then on");
    let stats = CACHE.stats();
    assert_eq!((stats.shape_mismatches, stats.errors), (1, 0));
    let warnings = logs.at("WARN");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].contains("did not record shapes")
            && warnings[0].contains("function=\"shapes::seven\""),
        "{}",
        warnings[0]
    );
}

/// Runs a future of the typed API to completion on a one-thread runtime.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    runtime.expect("a runtime").block_on(future)
}
