//! The surface used by code that `#[redis_cached]` generates: the door into
//! the runtime. Not public API: it may change in any release.
//!
//! Each cached function calls [`digest`] with its arguments, then one of
//! the calls below with its [`Spec`], its [`Values`] (made from its store
//! [`Policy`], the one place its serde bounds are checked) and its body. A
//! call and its `_blocking` twin are the same protocol (`call.rs`), driven
//! asynchronously or on the caller's thread.

use std::future::Future;

pub use serde::Serialize;
pub use serde::de::DeserializeOwned;

use crate::backend::{Async, Blocking, block_on};
use crate::cache::Cache;
use crate::call;
use crate::error::Error;
pub use crate::global::default_cache;
pub use crate::key::{Digest, KeyHasher};
pub use crate::local::Kit;
pub use crate::spec::{Always, OkOnly, Policy, SomeOnly, Spec, Unless, Values, values};
pub use crate::tag::IntoTag;
pub use crate::ttl::IntoTtl;

/// A `tags = [...]` expression's value, as the tag it stands for.
pub fn tag(tag: impl IntoTag) -> String {
    tag.into_tag()
}

/// The digest of a call of the function `spec` describes, returning `R`,
/// whose arguments `feed` adds; an error if one of them would not serialize.
pub fn digest<R: ?Sized>(
    spec: &Spec<'_>,
    feed: impl FnOnce(&mut KeyHasher),
) -> Result<Digest, Error> {
    Digest::of::<R>(spec.name, spec.version, feed)
}

/// A cached call of an async function: on a hit return the stored value, on
/// a miss await `body` and store its result. See `call.rs`.
pub async fn call<R, V>(
    spec: &Spec<'_>,
    cache: &Cache,
    digest: Result<Digest, Error>,
    values: Values<R, V>,
    unless: Unless<R>,
    kit: Option<Kit<V>>,
    body: impl Future<Output = R>,
) -> R {
    call::call(Async, spec, cache, digest, values, unless, kit, body).await
}

/// `call` for a plain function, on the caller's thread.
pub fn call_blocking<R, V>(
    spec: &Spec<'_>,
    cache: &Cache,
    digest: Result<Digest, Error>,
    values: Values<R, V>,
    unless: Unless<R>,
    kit: Option<Kit<V>>,
    body: impl FnOnce() -> R,
) -> R {
    let body = async move { body() };
    block_on(call::call(
        Blocking, spec, cache, digest, values, unless, kit, body,
    ))
}

/// `call` for functions with `stale` or `refresh` whose body owns what it
/// uses: a refresh runs in a task spawned on the caller's runtime.
pub async fn call_spawning<R, V, F, Fut>(
    spec: &Spec<'_>,
    cache: &Cache,
    digest: Result<Digest, Error>,
    values: Values<R, V>,
    unless: Unless<R>,
    kit: Option<Kit<V>>,
    body: F,
) -> R
where
    R: Send + 'static,
    V: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    call::call_spawning(spec, cache, digest, values, unless, kit, body).await
}

/// `f_refresh`: runs `body` and stores its result whatever the cache holds.
pub async fn refresh<R, V>(
    spec: &Spec<'_>,
    cache: &Cache,
    digest: Result<Digest, Error>,
    values: Values<R, V>,
    unless: Unless<R>,
    body: impl Future<Output = R>,
) -> R {
    call::refresh(Async, spec, cache, digest, values, unless, body).await
}

/// [`refresh`] for a plain function.
pub fn refresh_blocking<R, V>(
    spec: &Spec<'_>,
    cache: &Cache,
    digest: Result<Digest, Error>,
    values: Values<R, V>,
    unless: Unless<R>,
    body: impl FnOnce() -> R,
) -> R {
    let body = async move { body() };
    block_on(call::refresh(
        Blocking, spec, cache, digest, values, unless, body,
    ))
}

/// `f_invalidate`: deletes the entry of one call; whether there was one.
pub async fn invalidate(
    spec: &Spec<'_>,
    cache: &Cache,
    digest: Result<Digest, Error>,
) -> Result<bool, crate::Error> {
    Ok(call::invalidate(Async, spec, cache, digest).await?)
}

/// [`invalidate`] for a plain function.
pub fn invalidate_blocking(
    spec: &Spec<'_>,
    cache: &Cache,
    digest: Result<Digest, Error>,
) -> Result<bool, crate::Error> {
    Ok(block_on(call::invalidate(Blocking, spec, cache, digest))?)
}

/// `f_invalidate_all`: deletes every entry of the function.
pub async fn invalidate_all(spec: &Spec<'_>, cache: &Cache) -> Result<u64, crate::Error> {
    cache.invalidate_all(spec.name).await
}

/// [`invalidate_all`] for a plain function.
pub fn invalidate_all_blocking(spec: &Spec<'_>, cache: &Cache) -> Result<u64, crate::Error> {
    cache.invalidate_all_blocking(spec.name)
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
