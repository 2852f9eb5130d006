//! The surface used by code that `#[redis_cached]` generates. Not public API:
//! it may change in any release.

use std::future::Future;
use std::time::Duration;

pub use serde::Serialize;
pub use serde::de::DeserializeOwned;

use crate::Cache;
pub use crate::global::default_cache;
pub use crate::key::KeyHasher;

/// What the attribute said about one function.
#[derive(Debug)]
pub struct Spec {
    name: &'static str,
    ttl: Duration,
    /// `lock = …`: how long a miss may hold the cross-process lock.
    lock: Option<Duration>,
}

impl Spec {
    /// `name` is `module::path::fn_name`; `ttl_ms` was checked positive by the macro.
    pub const fn new(name: &'static str, ttl_ms: u64) -> Self {
        Self {
            name,
            ttl: Duration::from_millis(ttl_ms),
            lock: None,
        }
    }

    /// `lock = …`: on a miss, compute under a Redis lock held for at most
    /// `lock_ms` (checked positive by the macro).
    pub const fn lock(self, lock_ms: u64) -> Self {
        Self {
            lock: Some(Duration::from_millis(lock_ms)),
            ..self
        }
    }
}

/// Which part of a return value `R` is cached, and how it is rebuilt on a hit.
pub trait Store<R> {
    /// What is encoded and stored.
    type Value: Serialize + DeserializeOwned;
    /// The part of `result` to store, or `None` to store nothing.
    fn cacheable(result: &R) -> Option<&Self::Value>;
    /// The return value for a stored value.
    fn rebuild(value: Self::Value) -> R;
}

/// Stores every return value as is (plain types, `Option` with its `None`s).
pub struct Always;

impl<R: Serialize + DeserializeOwned> Store<R> for Always {
    type Value = R;
    fn cacheable(result: &R) -> Option<&R> {
        Some(result)
    }
    fn rebuild(value: R) -> R {
        value
    }
}

/// For `Result<T, E>`: stores `Ok` values only; `E` need not be serializable.
pub struct OkOnly;

impl<T: Serialize + DeserializeOwned, E> Store<Result<T, E>> for OkOnly {
    type Value = T;
    fn cacheable(result: &Result<T, E>) -> Option<&T> {
        result.as_ref().ok()
    }
    fn rebuild(value: T) -> Result<T, E> {
        Ok(value)
    }
}

/// Makes a missing `Serialize + DeserializeOwned` on a return type an error
/// at that type (the macro applies it with the type's span).
pub fn assert_value<T: Serialize + DeserializeOwned>() {}

/// The key of this call, or `None` (logged and counted) if an argument could not be serialized.
fn key<R>(spec: &Spec, cache: &Cache, key: KeyHasher) -> Option<String> {
    let key = key.type_name(std::any::type_name::<R>());
    match key.finish(cache.prefix(), spec.name) {
        Ok(key) => Some(key),
        Err(error) => {
            cache.failed("key", spec.name, &error);
            None
        }
    }
}

/// A cached call of a sync function: `GET`; on a miss run `body`, then `SET … PX ttl`.
/// Concurrent misses of one key share one run of `body` (see `flight.rs`).
pub fn call_sync<P: Store<R>, R>(
    spec: &Spec,
    cache: &Cache,
    key: KeyHasher,
    body: impl FnOnce() -> R,
) -> R {
    let Some(key) = self::key::<R>(spec, cache, key) else {
        return body();
    };
    if let Some(value) = cache.lookup_sync::<P::Value>(&key) {
        return P::rebuild(value);
    }
    crate::miss::fill_sync(
        cache,
        &key,
        spec.ttl,
        spec.lock,
        P::cacheable,
        P::rebuild,
        body,
    )
}

/// A cached call of an async function: like [`call_sync`], awaiting `body` on a miss.
pub async fn call_async<P: Store<R>, R>(
    spec: &Spec,
    cache: &Cache,
    key: KeyHasher,
    body: impl Future<Output = R>,
) -> R {
    let Some(key) = self::key::<R>(spec, cache, key) else {
        return body.await;
    };
    if let Some(value) = cache.lookup::<P::Value>(&key).await {
        return P::rebuild(value);
    }
    crate::miss::fill(
        cache,
        &key,
        spec.ttl,
        spec.lock,
        P::cacheable,
        P::rebuild,
        body,
    )
    .await
}
