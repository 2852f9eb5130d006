//! The surface used by code that `#[redis_cached]` generates. Not public API:
//! it may change in any release.

use std::future::Future;
use std::time::Duration;

pub use serde::Serialize;
pub use serde::de::DeserializeOwned;

pub use crate::global::default_cache;
pub use crate::key::KeyHasher;
pub use crate::local::Kit;
use crate::renew::{self, Claim};
use crate::ttl::{self, Lifetime, Verdict};
use crate::{Cache, Error};

/// What the attribute said about one function.
#[derive(Debug)]
pub struct Spec {
    name: &'static str,
    lifetime: Lifetime,
    version: u32,
    /// `lock = …`: how long a miss may hold the cross-process lock.
    lock: Option<Duration>,
    /// `local = N`: this function's own in-process tier of `N` entries.
    local: Option<u64>,
}

impl Spec {
    /// `name` is `module::path::fn_name` or the attribute's `name`; `ttl_ms`
    /// was checked positive by the macro.
    pub const fn new(name: &'static str, ttl_ms: u64) -> Self {
        Self {
            name,
            lifetime: Lifetime {
                ttl: Duration::from_millis(ttl_ms),
                stale: None,
                xfetch_beta: None,
            },
            version: 0,
            lock: None,
            local: None,
        }
    }

    /// The attribute's `version`, mixed into the hash when not 0.
    pub const fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// `lock = …`: on a miss, compute under a Redis lock held for at most
    /// `lock_ms` (checked positive by the macro).
    pub const fn lock(mut self, lock_ms: u64) -> Self {
        self.lock = Some(Duration::from_millis(lock_ms));
        self
    }

    /// `local = N`: keep up to `entries` decoded values in this process
    /// (checked positive by the macro).
    pub const fn local(mut self, entries: u64) -> Self {
        self.local = Some(entries);
        self
    }

    /// `stale = …`: serve a value up to `stale_ms` past its ttl while one call refreshes it.
    pub const fn stale(mut self, stale_ms: u64) -> Self {
        self.lifetime.stale = Some(Duration::from_millis(stale_ms));
        self
    }

    /// `refresh = "xfetch"`, with XFetch's `beta` (checked positive by the macro).
    pub const fn xfetch(mut self, beta: f64) -> Self {
        self.lifetime.xfetch_beta = Some(beta);
        self
    }
}

impl Spec {
    /// The in-process tier this function's values go through in `cache`, if any.
    fn tier<'c, V>(
        &self,
        cache: &'c Cache,
        kit: Option<Kit<V>>,
    ) -> Option<crate::local::Tier<'c, V>> {
        let stale = self.lifetime.stale.unwrap_or_default();
        cache.tier(self.name, self.local, kit, stale)
    }
}

/// `unless = …`: a result for which this returns true is not stored.
pub type Unless<R> = Option<fn(&R) -> bool>;

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

/// For `Option<T>` with `cache_none = false`: stores `Some` values only.
pub struct SomeOnly;

impl<T: Serialize + DeserializeOwned> Store<Option<T>> for SomeOnly {
    type Value = T;
    fn cacheable(result: &Option<T>) -> Option<&T> {
        result.as_ref()
    }
    fn rebuild(value: T) -> Option<T> {
        Some(value)
    }
}

/// `cache = EXPR`: a [`Cache`], or anything that derefs to one (a
/// `LazyLock<Cache>`, a `&Cache`, an `Arc<Cache>`).
pub fn as_cache<C: ?Sized + AsCache>(cache: &C) -> &Cache {
    cache.as_cache()
}

/// What `cache = EXPR` accepts.
pub trait AsCache {
    /// The cache.
    fn as_cache(&self) -> &Cache;
}

impl AsCache for Cache {
    fn as_cache(&self) -> &Cache {
        self
    }
}

impl<C: ?Sized + std::ops::Deref<Target = Cache>> AsCache for C {
    fn as_cache(&self) -> &Cache {
        self
    }
}

/// Makes a missing `Serialize + DeserializeOwned` on a return type an error
/// at that type (the macro applies it with the type's span).
pub fn assert_value<T: Serialize + DeserializeOwned>() {}

/// Makes a value type that can't be kept in the in-process tier an error at
/// that type, for functions with `local = N`.
pub fn assert_local<T: Clone + Send + Sync + 'static>() {}

/// Whether a function's values can go in its cache's in-process tier:
/// `(&Probe::<V>::new()).kit()` is `Some` for a `V` that is
/// `Clone + Send + Sync + 'static` (through [`Cloneable`]) and `None` for
/// any other (through [`NotCloneable`], found only after autoref).
pub struct Probe<V>(std::marker::PhantomData<V>);

// No `Default`: a probe is only ever made by generated code, with `new`.
#[allow(clippy::new_without_default)]
impl<V> Probe<V> {
    /// A probe of `V`.
    pub const fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

/// The kit of a value type that can be kept in process.
pub trait Cloneable<V> {
    /// `Some` kit.
    fn kit(&self) -> Option<Kit<V>>;
}

impl<V: Clone + Send + Sync + 'static> Cloneable<V> for Probe<V> {
    fn kit(&self) -> Option<Kit<V>> {
        Some(Kit::of())
    }
}

/// The fallback for value types that can't be kept in process.
pub trait NotCloneable<V> {
    /// No kit.
    fn kit(&self) -> Option<Kit<V>>;
}

impl<V> NotCloneable<V> for &Probe<V> {
    fn kit(&self) -> Option<Kit<V>> {
        None
    }
}

/// The key of this call: the arguments' hash, the return type, the version.
fn key<R>(spec: &Spec, cache: &Cache, key: KeyHasher) -> Result<String, Error> {
    let mut key = key.type_name(std::any::type_name::<R>());
    if spec.version != 0 {
        key = key.arg(&spec.version);
    }
    key.finish(cache.prefix(), spec.name)
}

/// [`key`] for a cached call: a failure is logged and counted, and the call runs uncached.
fn call_key<R>(spec: &Spec, cache: &Cache, hasher: KeyHasher) -> Option<String> {
    key::<R>(spec, cache, hasher)
        .map_err(|error| cache.failed("key", spec.name, &error))
        .ok()
}

/// A hit's value and, if it is due for a refresh that this call claimed,
/// the claim; `None` on a miss.
enum Found<V> {
    Miss,
    Fresh(V),
    Renew(V, Claim),
}

fn judge<V>(
    spec: &Spec,
    cache: &Cache,
    key: &str,
    found: Option<(V, crate::codec::Meta)>,
) -> Found<V> {
    let Some((value, meta)) = found else {
        return Found::Miss;
    };
    if !spec.lifetime.renews() {
        return Found::Fresh(value);
    }
    match spec.lifetime.verdict(meta, ttl::now_ms(), ttl::uniform) {
        Verdict::Fresh => Found::Fresh(value),
        Verdict::Renew => match cache.claim_renewal(key) {
            Some(claim) => Found::Renew(value, claim),
            None => Found::Fresh(value),
        },
    }
}

/// A cached call of a sync function: `GET`; on a hit return the value, on a
/// miss run `body` and `SET … PX ttl`. With an in-process tier (`kit` and
/// `local`), a value held there is returned without the `GET`, and a value
/// the `GET` found is kept there (see `local.rs`). Concurrent misses of one key share one
/// run of `body` (see `flight.rs`); a hit due for a refresh (`stale`,
/// `refresh`) that claims it recomputes inline (see `renew.rs`).
pub fn call_sync<P: Store<R>, R>(
    spec: &Spec,
    cache: &Cache,
    key: KeyHasher,
    unless: Unless<R>,
    kit: Option<Kit<P::Value>>,
    body: impl FnOnce() -> R,
) -> R {
    let Some(key) = call_key::<R>(spec, cache, key) else {
        return body();
    };
    let storable = picker::<P, R>(unless);
    let tier = spec.tier(cache, kit);
    let found = cache.lookup_tiered_sync(&key, tier.as_ref());
    match judge(spec, cache, &key, found) {
        Found::Fresh(value) => P::rebuild(value),
        Found::Renew(_, claim) => {
            renew::compute_sync(cache, claim.key(), spec.lifetime, storable, body)
        }
        Found::Miss => crate::miss::fill_sync(
            cache,
            &key,
            spec.lifetime,
            spec.lock,
            storable,
            P::rebuild,
            body,
        ),
    }
}

/// A cached call of an async function: like [`call_sync`], awaiting `body`.
/// Used where `body` borrows, so a refresh runs inline.
pub async fn call_async<P: Store<R>, R>(
    spec: &Spec,
    cache: &Cache,
    key: KeyHasher,
    unless: Unless<R>,
    kit: Option<Kit<P::Value>>,
    body: impl Future<Output = R>,
) -> R {
    let Some(key) = call_key::<R>(spec, cache, key) else {
        return body.await;
    };
    let storable = picker::<P, R>(unless);
    let tier = spec.tier(cache, kit);
    let found = cache.lookup_tiered(&key, tier.as_ref()).await;
    match judge(spec, cache, &key, found) {
        Found::Fresh(value) => P::rebuild(value),
        Found::Renew(_, claim) => {
            renew::compute(cache, claim.key(), spec.lifetime, storable, body).await
        }
        Found::Miss => {
            crate::miss::fill(
                cache,
                &key,
                spec.lifetime,
                spec.lock,
                storable,
                P::rebuild,
                body,
            )
            .await
        }
    }
}

/// [`call_async`] for functions with `stale` or `refresh` whose body owns
/// everything it uses: a hit due for a refresh returns the value it found,
/// and the refresh runs in a task spawned on the caller's runtime.
pub async fn call_async_spawning<P, R, F, Fut>(
    spec: &'static Spec,
    cache: &Cache,
    key: KeyHasher,
    unless: Unless<R>,
    kit: Option<Kit<P::Value>>,
    body: F,
) -> R
where
    P: Store<R> + 'static,
    P::Value: Send,
    R: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    let Some(key) = call_key::<R>(spec, cache, key) else {
        return body().await;
    };
    let tier = spec.tier(cache, kit);
    let found = cache.lookup_tiered(&key, tier.as_ref()).await;
    match judge(spec, cache, &key, found) {
        Found::Fresh(value) => P::rebuild(value),
        Found::Renew(value, claim) => {
            let refresh = async move {
                let storable = picker::<P, R>(unless);
                let cache = claim.cache().clone();
                renew::compute(&cache, claim.key(), spec.lifetime, storable, body()).await;
                drop(claim);
            };
            // Without a tokio runtime to spawn on, the claim is dropped and a later hit retries.
            renew::spawn(refresh);
            P::rebuild(value)
        }
        Found::Miss => {
            let storable = picker::<P, R>(unless);
            crate::miss::fill(
                cache,
                &key,
                spec.lifetime,
                spec.lock,
                storable,
                P::rebuild,
                body(),
            )
            .await
        }
    }
}

/// Picks what of a result to store: its cacheable part, unless `unless` vetoes it.
fn picker<P: Store<R>, R>(unless: Unless<R>) -> impl Fn(&R) -> Option<&P::Value> + Copy {
    move |result| P::cacheable(result).filter(|_| !unless.is_some_and(|veto| veto(result)))
}

/// `f_refresh`: runs `body` and stores its result whatever the cache holds.
pub fn refresh_sync<P: Store<R>, R>(
    spec: &Spec,
    cache: &Cache,
    key: KeyHasher,
    unless: Unless<R>,
    body: impl FnOnce() -> R,
) -> R {
    match call_key::<R>(spec, cache, key) {
        Some(key) => renew::compute_sync(cache, &key, spec.lifetime, picker::<P, R>(unless), body),
        None => body(),
    }
}

/// Async [`refresh_sync`].
pub async fn refresh_async<P: Store<R>, R>(
    spec: &Spec,
    cache: &Cache,
    key: KeyHasher,
    unless: Unless<R>,
    body: impl Future<Output = R>,
) -> R {
    match call_key::<R>(spec, cache, key) {
        Some(key) => renew::compute(cache, &key, spec.lifetime, picker::<P, R>(unless), body).await,
        None => body.await,
    }
}

/// `f_invalidate`: deletes the entry of one call; whether there was one.
pub fn invalidate_sync<R>(spec: &Spec, cache: &Cache, key: KeyHasher) -> Result<bool, Error> {
    cache.delete_sync(&self::key::<R>(spec, cache, key)?)
}

/// Async [`invalidate_sync`].
pub async fn invalidate_async<R>(
    spec: &Spec,
    cache: &Cache,
    key: KeyHasher,
) -> Result<bool, Error> {
    cache.delete(&self::key::<R>(spec, cache, key)?).await
}

/// `f_invalidate_all`: deletes every entry of the function.
pub fn invalidate_all_sync(spec: &Spec, cache: &Cache) -> Result<u64, Error> {
    cache.invalidate_all_blocking(spec.name)
}

/// Async [`invalidate_all_sync`].
pub async fn invalidate_all_async(spec: &Spec, cache: &Cache) -> Result<u64, Error> {
    cache.invalidate_all(spec.name).await
}
