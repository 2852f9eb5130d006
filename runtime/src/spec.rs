//! What the attribute says about one function: its [`Spec`] (name, times,
//! lock, in-process tier, this call's tags) and its store [`Policy`] (which part of a return
//! value is stored). Built by generated code, in a `static`.

use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};

use crate::codec::Codec;
use crate::error::Error;
use crate::key::{Digest, FunctionKey, KeyHasher};
use crate::shape::{Check, Known, Shape};
use crate::ttl::{IntoTtl, Lifetime};

/// What the attribute said about one function. Generated code keeps it in a
/// `static`; a function with `when = EXPR`, `ttl = EXPR` or `tags = [...]`
/// hands each call a copy with that call's values ([`Spec::when`],
/// [`Spec::ttl`], [`Spec::tags`]), which borrows the call's tags for `'t`.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'t> {
    pub(crate) name: &'static str,
    /// The function's value type's shape, traced on first use.
    shape: &'static Shape,
    pub(crate) lifetime: Lifetime,
    pub(crate) version: u32,
    /// `lock = …`: how long a miss may hold the cross-process lock.
    pub(crate) lock: Option<Duration>,
    /// `local = N`: this function's own in-process tier of `N` entries.
    pub(crate) local: Option<u64>,
    /// `when = EXPR`, for this call: when false the call neither reads nor
    /// writes the cache.
    pub(crate) when: bool,
    /// `sliding = true`: each hit resets the entry's TTL (`GETEX … PX`).
    pub(crate) sliding: bool,
    /// `compress = true` / `false`: compress this function's values, or
    /// never; unset, the cache's `compress_above` decides.
    pub(crate) compress: Option<bool>,
    /// `tags = [...]`, for this call: what `Cache::invalidate_tag` finds
    /// the entry it stores under.
    pub(crate) tags: &'t [String],
}

impl Spec<'static> {
    /// `name` is `module::path::fn_name` or the attribute's `name`; `ttl_ms`
    /// was checked positive by the macro, or is 0 for a `ttl = EXPR` that
    /// each call sets with [`Spec::ttl`]; `shape` is the function's own.
    pub const fn new(name: &'static str, ttl_ms: u64, shape: &'static Shape) -> Self {
        Self {
            name,
            shape,
            lifetime: Lifetime {
                ttl: Duration::from_millis(ttl_ms),
                stale: None,
                xfetch_beta: None,
            },
            version: 0,
            lock: None,
            local: None,
            when: true,
            sliding: false,
            compress: None,
            tags: &[],
        }
    }
}

impl<'t> Spec<'t> {
    /// `tags = [...]`, evaluated for one call: the entry it stores is
    /// deleted by `Cache::invalidate_tag` of any of them.
    #[must_use]
    pub fn tags<'a>(self, tags: &'a [String]) -> Spec<'a>
    where
        't: 'a,
    {
        Spec { tags, ..self }
    }

    /// This spec without its tags, and the tags, owned: for a refresh that
    /// runs in a spawned task, which puts them back with [`Spec::tags`].
    pub(crate) fn detach(&self) -> (Spec<'static>, Vec<String>) {
        (Spec { tags: &[], ..*self }, self.tags.to_vec())
    }

    /// `compress = on`: with `true`, values over the cache's `compress_above`
    /// (or 1 KiB if it has none) are stored compressed; with `false`, none are.
    pub const fn compress(mut self, on: bool) -> Self {
        self.compress = Some(on);
        self
    }

    /// `sliding = true`: each hit resets the entry's TTL to a full `ttl`, in
    /// the read's round trip. The macro refuses it with `stale`, `refresh`,
    /// `ttl_of` and `local`, and gives such functions no in-process tier.
    pub const fn sliding(mut self) -> Self {
        self.sliding = true;
        self
    }

    /// The digest of a call whose arguments `feed` adds, with the check its
    /// values are read with: both from the shape of the function's values,
    /// `V`, traced with `values`'s codec on the first call and looked up
    /// once per call.
    #[inline]
    pub(crate) fn digest<R, V>(
        &self,
        values: &Values<R, V>,
        feed: impl FnOnce(&mut KeyHasher<'_>),
    ) -> Keyed {
        let known = self.known(values);
        Keyed {
            digest: Digest::of(&FunctionKey::from_bytes(known.digest_key), feed),
            check: known.traced.check,
        }
    }

    #[inline]
    fn known<R, V>(&self, values: &Values<R, V>) -> Known {
        let digest_key =
            |shape: &[u8; 16]| FunctionKey::new(self.name, shape, self.version).to_bytes();
        self.shape.of::<V>(values.codec.trace, digest_key)
    }

    /// The TTL a hit resets its entry to: `ttl` if sliding (and not zero).
    pub(crate) fn slide(&self) -> Option<Duration> {
        Some(self.lifetime.ttl).filter(|ttl| self.sliding && !ttl.is_zero())
    }

    /// `when = EXPR`, evaluated for one call: `false` runs the body with no
    /// cache read or write.
    #[must_use]
    pub const fn when(mut self, when: bool) -> Self {
        self.when = when;
        self
    }

    /// `ttl = EXPR`, evaluated for one call. A zero TTL stores nothing.
    #[must_use]
    pub fn ttl(mut self, ttl: impl IntoTtl) -> Self {
        self.lifetime.ttl = ttl.into_ttl();
        self
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

/// `unless = …`: a result for which this returns true is not stored.
pub type Unless<R> = Option<fn(&R) -> bool>;

/// Which part of a return value `R` is cached, and how it is rebuilt on a hit.
pub trait Policy<R> {
    /// What is encoded and stored.
    type Value: Serialize + DeserializeOwned;
    /// The part of `result` to store, or `None` to store nothing.
    fn cacheable(result: &R) -> Option<&Self::Value>;
    /// The return value for a stored value.
    fn rebuild(value: Self::Value) -> R;
}

/// Stores every return value as is (plain types, `Option` with its `None`s).
pub struct Always;

impl<R: Serialize + DeserializeOwned> Policy<R> for Always {
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

impl<T: Serialize + DeserializeOwned, E> Policy<Result<T, E>> for OkOnly {
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

impl<T: Serialize + DeserializeOwned> Policy<Option<T>> for SomeOnly {
    type Value = T;
    fn cacheable(result: &Option<T>) -> Option<&T> {
        result.as_ref()
    }
    fn rebuild(value: T) -> Option<T> {
        Some(value)
    }
}

/// A call's digest (or why its arguments could not be hashed), and the
/// check its function's values are read with: what `digest` works
/// out from the function's shape, handed to the call so that the shape is
/// looked up once per call.
#[derive(Debug)]
pub struct Keyed {
    pub(crate) digest: Result<Digest, Error>,
    pub(crate) check: Check,
}

impl Keyed {
    /// The call's digest, or why its arguments could not be hashed.
    pub fn into_digest(self) -> Result<Digest, Error> {
        self.digest
    }
}

/// A function's [`Policy`] and its value type's `Codec`, as plain
/// functions. Generated code makes it with [`values`], where the serde
/// bounds are checked (and a missing derive is reported, once); the calls
/// that take it have no bounds to fail.
pub struct Values<R, V> {
    cacheable: fn(&R) -> Option<&V>,
    pub(crate) rebuild: fn(V) -> R,
    pub(crate) codec: Codec<V>,
    /// `ttl_of = …`: a stored value's own TTL, bounded by `ttl`.
    ttl_of: Option<fn(&V) -> Duration>,
}

impl<R, V> Clone for Values<R, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R, V> Copy for Values<R, V> {}

/// The [`Values`] of a function returning `R` under the policy `P`.
pub fn values<P: Policy<R>, R>() -> Values<R, P::Value> {
    Values {
        cacheable: P::cacheable,
        rebuild: P::rebuild,
        codec: Codec::of(),
        ttl_of: None,
    }
}

impl<R, V> Values<R, V> {
    /// These values, read and written with the shape check of the call
    /// `keyed` (its function's, traced on the first call).
    #[inline]
    pub(crate) fn shaped(self, keyed: &Keyed) -> Self {
        Self {
            codec: self.codec.checking(keyed.check),
            ..self
        }
    }

    /// `ttl_of = …`: each stored value lives its own TTL, as `ttl_of`
    /// computes it from the value, but never longer than the function's
    /// `ttl`.
    #[must_use]
    pub fn ttl_of(mut self, ttl_of: fn(&V) -> Duration) -> Self {
        self.ttl_of = Some(ttl_of);
        self
    }

    /// The lifetime `value` is stored with: the call's, shortened to the
    /// value's own TTL if `ttl_of` gives one below it.
    pub(crate) fn lifetime(&self, lifetime: Lifetime, value: &V) -> Lifetime {
        match self.ttl_of {
            Some(ttl_of) => lifetime.within(ttl_of(value)),
            None => lifetime,
        }
    }

    /// Picks what of a result to store, unless `unless` vetoes it.
    pub(crate) fn picker(self, unless: Unless<R>) -> impl Fn(&R) -> Option<&V> + Copy {
        move |result| (self.cacheable)(result).filter(|_| !unless.is_some_and(|veto| veto(result)))
    }
}
