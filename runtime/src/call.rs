//! The protocol of a cached call, written once over [`Io`] and driven by
//! the thin doors of `private.rs` (async, or blocking on the caller's thread):
//!
//! 1. the call's [`Digest`] becomes its key (a key that failed, because an
//!    argument would not serialize, is logged and the body runs uncached);
//! 2. lookup: the in-process tier, then one `GET` ([`Store::lookup`]);
//! 3. a fresh hit returns the value; a hit due for a refresh (`stale`,
//!    `refresh`) that claims it recomputes, inline or in a spawned task;
//! 4. a miss fills the key ([`Fill`]: single flight, lock, body, store).
//!
//! A call runs in its `debug` span ([`metrics::span`]), which says how it
//! was answered once the lookup is done.
//!
//! Generated siblings use [`refresh`] (run and store) and [`invalidate`];
//! the typed API's `get_or_compute` is [`call_named`], steps 2 and 4 under
//! a key the caller names.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::backend::{Async, Io};
use crate::cache::Cache;
use crate::codec::Codec;
use crate::codec::Meta;
use crate::error::Error;
use crate::key::{Digest, Key, TYPED};
use crate::local::Kit;
use crate::metrics::{self, Outcome};
use crate::miss::Fill;
use crate::renew::Claim;
use crate::spec::{Spec, Unless, Values};
use crate::store::Store;
use crate::ttl::{self, Lifetime, Verdict};
use tracing::{Instrument, Span};

/// A cached call: lookup; on a hit return the value, on a miss run `body`
/// and store its result. A refresh a hit claims runs inline.
#[allow(clippy::too_many_arguments)] // One per thing the attribute says; a struct would only be unpacked.
pub(crate) async fn call<I: Io, R, V>(
    io: I,
    spec: &Spec<'_>,
    cache: &Cache,
    digest: Result<Digest, Error>,
    values: Values<R, V>,
    unless: Unless<R>,
    kit: Option<Kit<V>>,
    body: impl Future<Output = R>,
) -> R {
    if !spec.when {
        return body.await;
    }
    let values = values.shaped(spec);
    let span = metrics::span(spec.name);
    let call = answer(io, spec, cache, digest, values, unless, kit, body, &span);
    call.instrument(span.clone()).await
}

/// [`call`] in its `span`.
#[allow(clippy::too_many_arguments)] // Those of `call`, and its span.
async fn answer<I: Io, R, V>(
    io: I,
    spec: &Spec<'_>,
    cache: &Cache,
    digest: Result<Digest, Error>,
    values: Values<R, V>,
    unless: Unless<R>,
    kit: Option<Kit<V>>,
    body: impl Future<Output = R>,
    span: &Span,
) -> R {
    let store = cache.store();
    let Some((key, found)) = look(io, spec, store, digest, values.codec, kit, span).await else {
        return body.await;
    };
    match found {
        Found::Fresh(value) => (values.rebuild)(value),
        Found::Renew(_, claim) => {
            let result = compute(io, store, key.text(), spec, values, unless, body).await;
            drop(claim);
            result
        }
        Found::Miss => {
            let fill = Fill::new(store, &key, spec);
            fill.run(io, values, unless, body).await
        }
    }
}

/// [`call`] for async functions with `stale` or `refresh` whose body owns
/// everything it uses: a hit due for a refresh returns the value it found,
/// and the refresh runs in a task spawned on the caller's runtime.
pub(crate) async fn call_spawning<R, V, F, Fut>(
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
    if !spec.when {
        return body().await;
    }
    let values = values.shaped(spec);
    let span = metrics::span(spec.name);
    let call = answer_spawning(spec, cache, digest, values, unless, kit, body, &span);
    call.instrument(span.clone()).await
}

/// [`call_spawning`] in its `span`.
#[allow(clippy::too_many_arguments)] // Those of `call_spawning`, and its span.
async fn answer_spawning<R, V, F, Fut>(
    spec: &Spec<'_>,
    cache: &Cache,
    digest: Result<Digest, Error>,
    values: Values<R, V>,
    unless: Unless<R>,
    kit: Option<Kit<V>>,
    body: F,
    span: &Span,
) -> R
where
    R: Send + 'static,
    V: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    let store = cache.store();
    let Some((key, found)) = look(Async, spec, store, digest, values.codec, kit, span).await else {
        return body().await;
    };
    match found {
        Found::Fresh(value) => (values.rebuild)(value),
        Found::Renew(value, claim) => {
            let cache = cache.clone();
            let key = key.text().to_owned();
            let (spec, tags) = spec.detach();
            let refresh = async move {
                let store = cache.store();
                let spec = spec.tags(&tags);
                compute(Async, store, &key, &spec, values, unless, body()).await;
                drop(claim);
            };
            // Without a tokio runtime to spawn on, the claim is dropped and a later hit retries.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(refresh);
            }
            (values.rebuild)(value)
        }
        Found::Miss => {
            let fill = Fill::new(store, &key, spec);
            fill.run(Async, values, unless, body()).await
        }
    }
}

/// `f_refresh`: runs `body` and stores its result whatever the cache holds;
/// with `when` false, only runs it.
pub(crate) async fn refresh<I: Io, R, V>(
    io: I,
    spec: &Spec<'_>,
    cache: &Cache,
    digest: Result<Digest, Error>,
    values: Values<R, V>,
    unless: Unless<R>,
    body: impl Future<Output = R>,
) -> R {
    if !spec.when {
        return body.await;
    }
    let values = values.shaped(spec);
    let store = cache.store();
    match accept(spec, store, digest) {
        Some(key) => compute(io, store, key.text(), spec, values, unless, body).await,
        None => body.await,
    }
}

/// `f_invalidate`: deletes the entry of one call; whether there was one.
/// Errors are returned, not counted.
pub(crate) async fn invalidate<I: Io>(
    io: I,
    spec: &Spec<'_>,
    cache: &Cache,
    digest: Result<Digest, Error>,
) -> Result<bool, Error> {
    let store = cache.store();
    store.delete(io, store.key(spec.name, digest?).text()).await
}

/// The typed API's `get_or_compute`: the same lookup (one `GET`, no
/// in-process tier) and miss ([`Fill`]: single flight, body, store) as a
/// cached call, under `key`, its Redis key as the caller named it, for
/// `ttl` (zero: the value is returned, not stored).
pub(crate) async fn call_named<I: Io, R, V>(
    io: I,
    cache: &Cache,
    key: &str,
    ttl: Duration,
    values: Values<R, V>,
    body: impl Future<Output = R>,
) -> R {
    let store = cache.store();
    if let (Some((value, _)), _) = store
        .read(io, key, TYPED, values.codec.reading(), None)
        .await
    {
        return (values.rebuild)(value);
    }
    let fill = Fill {
        store,
        key,
        lifetime: Lifetime::of(ttl),
        lock: None,
        compress: None,
        tags: &[],
    };
    fill.run(io, values, None, body).await
}

/// The key of a call, or `None` (logged and counted) if its digest failed.
fn accept<'a>(
    spec: &'a Spec<'_>,
    store: &'a Store,
    digest: Result<Digest, Error>,
) -> Option<Key<'a>> {
    digest
        .map(|digest| store.key(spec.name, digest))
        .map_err(|error| store.failed("key", spec.name, &error))
        .ok()
}

/// What a lookup found, and, for a hit due for a refresh that this call
/// claimed, the claim.
enum Found<V> {
    Miss,
    Fresh(V),
    Renew(V, Claim),
}

/// Steps 1 to 3 of the module docs: the key, and what its lookup found;
/// `None` if there is no key. Records the outcome in the call's `span`.
async fn look<'a, I: Io, V>(
    io: I,
    spec: &'a Spec<'_>,
    store: &'a Store,
    digest: Result<Digest, Error>,
    codec: Codec<V>,
    kit: Option<Kit<V>>,
    span: &Span,
) -> Option<(Key<'a>, Found<V>)> {
    let Some(key) = accept(spec, store, digest) else {
        span.record("outcome", Outcome::Error.as_str());
        return None;
    };
    let stale = spec.lifetime.stale.unwrap_or_default();
    let tier = store.tier(spec.name, spec.local, kit, stale);
    let (found, outcome) = store
        .lookup(io, &key, codec, tier.as_ref(), spec.slide())
        .await;
    let found = judge(spec, store, &key, found);
    let outcome = match found {
        Found::Renew(..) => Outcome::Stale,
        _ => outcome,
    };
    span.record("outcome", outcome.as_str());
    Some((key, found))
}

fn judge<V>(spec: &Spec<'_>, store: &Store, key: &Key<'_>, found: Option<(V, Meta)>) -> Found<V> {
    let Some((value, meta)) = found else {
        return Found::Miss;
    };
    if !spec.lifetime.renews() {
        return Found::Fresh(value);
    }
    match spec.lifetime.verdict(meta, ttl::now_ms(), ttl::uniform) {
        Verdict::Fresh => Found::Fresh(value),
        Verdict::Renew => match store.claim_renewal(key) {
            Some(claim) => Found::Renew(value, claim),
            None => Found::Fresh(value),
        },
    }
}

/// Runs `body` and stores what `values` pick of its result, unless `unless`
/// vetoes it (with fresh metadata); returns the result.
async fn compute<I: Io, R, V>(
    io: I,
    store: &Store,
    key: &str,
    spec: &Spec<'_>,
    values: Values<R, V>,
    unless: Unless<R>,
    body: impl Future<Output = R>,
) -> R {
    let started = Instant::now();
    let result = body.await;
    let computed = started.elapsed();
    store.ran(key, computed);
    if let Some(value) = values.picker(unless)(&result) {
        let lifetime = values.lifetime(spec.lifetime, value);
        let meta = lifetime.meta(computed);
        if let Some(keep) = lifetime.keep(key) {
            if let Some(bytes) = store.encode(values.codec, key, value, meta, spec.compress) {
                store.store_tagged(io, key, &bytes, keep, spec.tags).await;
            }
        }
    }
    result
}

impl<'a> Fill<'a> {
    fn new(store: &'a Store, key: &'a Key<'a>, spec: &Spec<'a>) -> Self {
        Self {
            store,
            key: key.text(),
            lifetime: spec.lifetime,
            lock: spec.lock,
            compress: spec.compress,
            tags: spec.tags,
        }
    }
}
