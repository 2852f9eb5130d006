//! The surface used by code that `#[redis_cached]` generates: the door into
//! the runtime. Not public API: it may change in any release.
//!
//! Each cached function calls [`digest`] with its arguments, then one of
//! the calls below with its [`Spec`], its [`Values`] (made from its store
//! [`Policy`], the one place its serde bounds are checked) and its body. A
//! call and its twin for plain `fn`s (a method of [`SyncDoors`]) are the
//! same protocol (`call.rs`), driven asynchronously or on the caller's
//! thread.
//!
//! Plain `fn`s reach their doors through [`sync`], and `local = N` passes
//! [`local`]: each is bounded on a trait implemented only when its Cargo
//! feature is on, so a build without the feature fails at the function with
//! a message naming the feature, rather than with "cannot find function".

use std::future::Future;
use std::pin::pin;

pub use serde::Serialize;
pub use serde::de::DeserializeOwned;

use crate::backend::Async;
#[cfg(feature = "sync")]
use crate::backend::{Blocking, block_on};
use crate::body::{self, Slot};
use crate::cache::Cache;
use crate::call::{self, Looked};
pub use crate::global::default_cache;
pub use crate::key::{Digest, KeyHasher};
pub use crate::local::Kit;
pub use crate::shape::Shape;
pub use crate::spec::{Always, Keyed, OkOnly, Policy, SomeOnly, Spec, Unless, Values, values};
pub use crate::tag::IntoTag;
pub use crate::ttl::IntoTtl;

/// A `tags = [...]` expression's value, as the tag it stands for.
pub fn tag(tag: impl IntoTag) -> String {
    tag.into_tag()
}

/// The digest of a call of the function `spec` describes, storing the
/// values `values` says, whose arguments `feed` adds; an error if one of
/// them would not serialize. Traces the values' shape on the first call.
#[inline]
pub fn digest<R, V>(
    spec: &Spec<'_>,
    values: Values<R, V>,
    feed: impl FnOnce(&mut KeyHasher<'_>),
) -> Keyed {
    spec.digest(&values, feed)
}

/// A cached call of an async function: on a hit return the stored value, on
/// a miss await `body` and store its result. See `call.rs`; the body is
/// polled beside the protocol (`body.rs`), which is then compiled once per
/// `R` and `V`, not once per function.
pub async fn call<R, V>(
    spec: &Spec<'_>,
    cache: &Cache,
    digest: Keyed,
    values: Values<R, V>,
    unless: Unless<R>,
    kit: Option<Kit<V>>,
    body: impl Future<Output = R>,
) -> R {
    let looked = call::look_up(Async, spec, cache, digest, values, kit).await;
    if let Looked::Answered(result) = looked {
        return result;
    }
    let slot = Slot::new();
    let protocol = pin!(call::finish(Async, spec, cache, looked, unless, slot.run()));
    body::drive(&slot, protocol, pin!(body)).await
}

/// `call` for functions with `stale` or `refresh` whose body owns what it
/// uses: a refresh runs in a task spawned on the caller's runtime.
pub async fn call_spawning<R, V, F, Fut>(
    spec: &Spec<'_>,
    cache: &Cache,
    digest: Keyed,
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
    digest: Keyed,
    values: Values<R, V>,
    unless: Unless<R>,
    body: impl Future<Output = R>,
) -> R {
    let slot = Slot::new();
    let protocol = pin!(call::refresh(
        Async,
        spec,
        cache,
        digest,
        values,
        unless,
        slot.run()
    ));
    body::drive(&slot, protocol, pin!(body)).await
}

/// `f_invalidate`: deletes the entry of one call; whether there was one.
pub async fn invalidate(
    spec: &Spec<'_>,
    cache: &Cache,
    digest: Keyed,
) -> Result<bool, crate::Error> {
    Ok(call::invalidate(Async, spec, cache, digest).await?)
}

/// `f_invalidate_all`: deletes every entry of the function named `name`
/// in keys.
pub async fn invalidate_all(name: &str, cache: &Cache) -> Result<u64, crate::Error> {
    cache.invalidate_all(name).await
}

/// A Cargo feature of redis-cached that is on: the type the feature doors'
/// bounds ([`SyncFeature`], [`LocalFeature`]) are implemented for.
#[derive(Debug, Clone, Copy)]
pub struct Feature;

/// Implemented for [`Feature`] when the `sync` feature is on: plain `fn`s
/// reach their doors through [`sync`].
#[diagnostic::on_unimplemented(
    message = "a cached plain `fn` needs the `sync` feature of redis-cached",
    label = "this function is not `async`",
    note = "enable it in Cargo.toml: redis-cached = {{ version = \"0.1\", features = [\"sync\"] }}, or make the function `async`"
)]
pub trait SyncFeature {
    /// The doors of plain `fn`s.
    type Doors;
    /// Them.
    const DOORS: Self::Doors;
}

#[cfg(feature = "sync")]
impl SyncFeature for Feature {
    type Doors = SyncDoors;
    const DOORS: SyncDoors = SyncDoors;
}

/// The doors of a plain `fn`; without the `sync` feature, a compile error
/// at the function that names the feature.
pub fn sync<F: SyncFeature>(_: F) -> F::Doors {
    F::DOORS
}

/// Implemented for [`Feature`] when the `local` feature is on: `local = N`
/// passes [`local`].
#[diagnostic::on_unimplemented(
    message = "`local = N` needs the `local` feature of redis-cached",
    label = "the in-process tier is not compiled in",
    note = "enable it in Cargo.toml: redis-cached = {{ version = \"0.1\", features = [\"local\"] }}, or remove `local`"
)]
pub trait LocalFeature {}

#[cfg(feature = "local")]
impl LocalFeature for Feature {}

/// `local = N`; without the `local` feature, a compile error at `local`
/// that names the feature.
pub fn local<F: LocalFeature>(_: F) {}

/// The doors of plain `fn`s: the calls above, on the caller's thread.
#[cfg(feature = "sync")]
#[derive(Debug, Clone, Copy)]
pub struct SyncDoors;

#[cfg(feature = "sync")]
impl SyncDoors {
    /// `call` for a plain function, on the caller's thread.
    #[allow(clippy::too_many_arguments)]
    pub fn call<R, V>(
        self,
        spec: &Spec<'_>,
        cache: &Cache,
        digest: Keyed,
        values: Values<R, V>,
        unless: Unless<R>,
        kit: Option<Kit<V>>,
        body: impl FnOnce() -> R,
    ) -> R {
        let looked = block_on(call::look_up(Blocking, spec, cache, digest, values, kit));
        if let Looked::Answered(result) = looked {
            return result;
        }
        let slot = Slot::new();
        let protocol = pin!(call::finish(
            Blocking,
            spec,
            cache,
            looked,
            unless,
            slot.run(),
        ));
        block_on(body::drive(&slot, protocol, pin!(async move { body() })))
    }

    /// [`refresh`](fn@refresh) for a plain function.
    pub fn refresh<R, V>(
        self,
        spec: &Spec<'_>,
        cache: &Cache,
        digest: Keyed,
        values: Values<R, V>,
        unless: Unless<R>,
        body: impl FnOnce() -> R,
    ) -> R {
        let slot = Slot::new();
        let protocol = pin!(call::refresh(
            Blocking,
            spec,
            cache,
            digest,
            values,
            unless,
            slot.run()
        ));
        block_on(body::drive(&slot, protocol, pin!(async move { body() })))
    }

    /// [`invalidate`](fn@invalidate) for a plain function.
    pub fn invalidate(
        self,
        spec: &Spec<'_>,
        cache: &Cache,
        digest: Keyed,
    ) -> Result<bool, crate::Error> {
        Ok(block_on(call::invalidate(Blocking, spec, cache, digest))?)
    }

    /// [`invalidate_all`](fn@invalidate_all) for a plain function.
    pub fn invalidate_all(self, name: &str, cache: &Cache) -> Result<u64, crate::Error> {
        cache.invalidate_all_blocking(name)
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
