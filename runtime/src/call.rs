//! The protocol of a cached call, written once over [`Io`] and driven by
//! the thin doors of `private.rs` (async, or blocking on the caller's thread):
//!
//! 1. the call's [`Digest`] becomes its key (a key that failed, because an
//!    argument would not serialize, is logged and the body runs uncached);
//! 2. lookup: the in-process tier, then one `GET` ([`Store::read`]);
//! 3. a fresh hit returns the value; a hit due for a refresh (`stale`,
//!    `refresh`) that claims it recomputes, inline or in a spawned task;
//! 4. a miss fills the key ([`Fill`]: single flight, lock, body, store).
//!
//! A door takes steps 1 and 2 in [`look_up`], whose fresh hit is the
//! answer, and only then sets up the body and the rest ([`finish`]): a hit
//! builds nothing it does not use. A call runs in its `debug` span
//! ([`metrics::span`]), which says how it was answered once the lookup is
//! done; a call whose span is disabled is not instrumented.
//!
//! Generated siblings use [`refresh`] (run and store) and [`invalidate`];
//! the typed API's `get_or_compute` is [`call_named`], steps 2 and 4 under
//! a key the caller names.

use std::future::Future;
use std::time::Duration;

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
use crate::spec::{Keyed, Spec, Unless, Values};
use crate::store::Store;
use crate::ttl::{self, Lifetime, Verdict};
use tracing::{Instrument, Span};

/// A cached call's lookup, taken before its body is set up: a fresh hit's
/// answer, or what the call has left to do, for [`finish`]. A hit never
/// builds the rest of the protocol's future (single flight, lock, store),
/// nor polls the body beside it. With its `debug` span enabled, the lookup
/// runs in the span, and so does what [`finish`] does.
pub(crate) async fn look_up<'a, I: Io, R, V>(
    io: I,
    spec: &'a Spec<'_>,
    cache: &'a Cache,
    keyed: Keyed,
    values: Values<R, V>,
    kit: Option<Kit<V>>,
) -> Looked<'a, R, V> {
    if !spec.when {
        return Looked::Uncached(Span::none());
    }
    let (values, digest) = (values.shaped(&keyed), keyed.digest);
    let span = metrics::span(spec.name);
    let (store, codec) = (cache.store(), values.codec);
    // A disabled span (`debug` off for the crate) is not entered at each
    // poll. Each arm makes its own future: one made before the `if` is
    // copied on every hit (about 100 instructions, counted).
    let looked = if span.is_disabled() {
        look(io, spec, store, digest, codec, kit, &span).await
    } else {
        let traced = look(io, spec, store, digest, codec, kit, &span);
        traced.instrument(span.clone()).await
    };
    match looked {
        None => Looked::Uncached(span),
        Some((_, Found::Fresh(value))) => Looked::Answered((values.rebuild)(value)),
        Some((key, found)) => Looked::Found(key, found, values, span),
    }
}

/// What a call's [`look_up`] found; the rest runs in the call's span.
pub(crate) enum Looked<'a, R, V> {
    /// A fresh hit: the call's result.
    Answered(R),
    /// The body runs, uncached: `when` is false, or the key failed.
    Uncached(Span),
    /// A hit due for a refresh that this call claimed, or a miss.
    Found(Key<'a>, Found<V>, Values<R, V>, Span),
}

/// The rest of a cached call after [`look_up`]: on a miss run `body` and
/// store its result; a refresh a hit claims runs inline.
pub(crate) async fn finish<I: Io, R, V>(
    io: I,
    spec: &Spec<'_>,
    cache: &Cache,
    looked: Looked<'_, R, V>,
    unless: Unless<R>,
    body: impl Future<Output = R>,
) -> R {
    proceed(io, spec, cache, looked, unless, || body, Inline).await
}

/// A cached call of an async function with `stale` or `refresh` whose body
/// owns everything it uses: [`look_up`] and [`finish`], but a hit due for a
/// refresh returns the value it found, and the refresh runs in a task
/// spawned on the caller's runtime.
pub(crate) async fn call_spawning<R, V, F, Fut>(
    spec: &Spec<'_>,
    cache: &Cache,
    keyed: Keyed,
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
    let looked = look_up(Async, spec, cache, keyed, values, kit).await;
    proceed(Async, spec, cache, looked, unless, body, Spawned).await
}

/// [`finish`] and [`call_spawning`]: steps 3 and 4 of the module docs, in
/// the call's span: a fresh hit returns the value, a claimed refresh runs
/// as `renew` says, a miss fills the key.
async fn proceed<I: Io, R, V, F, Fut>(
    io: I,
    spec: &Spec<'_>,
    cache: &Cache,
    looked: Looked<'_, R, V>,
    unless: Unless<R>,
    body: F,
    renew: impl Renew<I, R, V, F>,
) -> R
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
{
    let (key, found, values, span) = match looked {
        Looked::Answered(result) => return result,
        Looked::Uncached(span) => return in_span(body(), span).await,
        Looked::Found(key, found, values, span) => (key, found, values, span),
    };
    let rest = async {
        match found {
            Found::Fresh(value) => (values.rebuild)(value),
            Found::Renew(value, claim) => {
                let refresh = Refresh {
                    io,
                    cache,
                    key: &key,
                    spec,
                    values,
                    unless,
                    body,
                };
                renew.renew(refresh, value, claim).await
            }
            Found::Miss => {
                let fill = Fill::new(cache.store(), key.text(), spec);
                // Boxed, as a claimed refresh is: the miss's future (single
                // flight, lock, store) is the largest part of a call's, and
                // every call's future would otherwise carry it.
                Box::pin(fill.run(io, values, unless, body())).await
            }
        }
    };
    in_span(rest, span).await
}

/// `future`, run in `span` unless the span is disabled.
async fn in_span<T>(future: impl Future<Output = T>, span: Span) -> T {
    if span.is_disabled() {
        future.await
    } else {
        future.instrument(span).await
    }
}

/// What a hit due for a refresh that it claimed has to refresh the entry.
struct Refresh<'a, I, R, V, F> {
    io: I,
    cache: &'a Cache,
    key: &'a Key<'a>,
    spec: &'a Spec<'a>,
    values: Values<R, V>,
    unless: Unless<R>,
    body: F,
}

/// How a call refreshes the entry of a hit that claimed its refresh: the
/// one difference between [`call`] and [`call_spawning`].
trait Renew<I, R, V, F> {
    /// Refreshes, and answers with the value found (`value`) or the fresh one.
    async fn renew(self, refresh: Refresh<'_, I, R, V, F>, value: V, claim: Claim) -> R;
}

/// The call runs the body and stores its result, and returns it.
struct Inline;

impl<I: Io, R, V, F, Fut> Renew<I, R, V, F> for Inline
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
{
    async fn renew(self, refresh: Refresh<'_, I, R, V, F>, _: V, claim: Claim) -> R {
        let Refresh {
            io,
            cache,
            key,
            spec,
            values,
            unless,
            body,
        } = refresh;
        let fill = Fill::new(cache.store(), key.text(), spec);
        // Boxed: see the miss in `answer`.
        let result = Box::pin(fill.refresh(io, values, unless, body())).await;
        drop(claim);
        result
    }
}

/// The call returns the value it found; a task spawned on the caller's
/// runtime runs the body and stores its result.
struct Spawned;

impl<R, V, F, Fut> Renew<Async, R, V, F> for Spawned
where
    R: Send + 'static,
    V: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    async fn renew(self, refresh: Refresh<'_, Async, R, V, F>, value: V, claim: Claim) -> R {
        let Refresh {
            cache,
            key,
            spec,
            values,
            unless,
            body,
            ..
        } = refresh;
        let cache = cache.clone();
        let key = key.text().to_owned();
        let (spec, tags) = spec.detach();
        let refresh = async move {
            let spec = spec.tags(&tags);
            let fill = Fill::new(cache.store(), &key, &spec);
            fill.refresh(Async, values, unless, body()).await;
            drop(claim);
        };
        // Without a tokio runtime to spawn on, the claim is dropped and a later hit retries.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(refresh);
        }
        (values.rebuild)(value)
    }
}

/// `f_refresh`: runs `body` and stores its result whatever the cache holds;
/// with `when` false, only runs it.
pub(crate) async fn refresh<I: Io, R, V>(
    io: I,
    spec: &Spec<'_>,
    cache: &Cache,
    keyed: Keyed,
    values: Values<R, V>,
    unless: Unless<R>,
    body: impl Future<Output = R>,
) -> R {
    if !spec.when {
        return body.await;
    }
    let values = values.shaped(&keyed);
    let store = cache.store();
    match accept(spec, store, keyed.digest) {
        Some(key) => {
            let fill = Fill::new(store, key.text(), spec);
            fill.refresh(io, values, unless, body).await
        }
        None => body.await,
    }
}

/// `f_invalidate`: deletes the entry of one call; whether there was one.
/// Errors are returned, not counted.
pub(crate) async fn invalidate<I: Io>(
    io: I,
    spec: &Spec<'_>,
    cache: &Cache,
    keyed: Keyed,
) -> Result<bool, Error> {
    let store = cache.store();
    store
        .delete(io, store.key(spec.name, keyed.digest?).text())
        .await
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
    match store.read_named(io, key, values.codec.reading()).await {
        Ok((Some((value, _)), _)) => return (values.rebuild)(value),
        Ok((None, _)) => {}
        Err(error) => {
            store.read_failed::<V>(key, TYPED, &error);
        }
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
pub(crate) enum Found<V> {
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
        .read(io, &key, codec, tier.as_ref(), spec.slide())
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

impl<'a> Fill<'a> {
    /// How a call of `spec`'s function fills `key`.
    fn new(store: &'a Store, key: &'a str, spec: &Spec<'a>) -> Self {
        Self {
            store,
            key,
            lifetime: spec.lifetime,
            lock: spec.lock,
            compress: spec.compress,
            tags: spec.tags,
        }
    }
}
