//! What a cached call does when its lookup found nothing usable: join the
//! key's in-process [flight](crate::flight); as its leader, take the key's
//! cross-process [`lock`] if the function has `lock = …`, then run
//! the body, encode the result once, hand the bytes to the waiters, store
//! them and release the lock. A refresh ([`Fill::refresh`]) runs the body
//! and stores the same way, without the flight and the lock.
//!
//! Generic over the return type `R` and the stored value `V`; the function's
//! [`Values`] say which part of `R` is stored and how a stored value becomes
//! an `R` again.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::Io;
use crate::codec::Codec;
use crate::flight::{Joined, Leader};
use crate::lock::{self, Acquired, Lock};
use crate::spec::{Unless, Values};
use crate::store::Store;
use crate::ttl::Lifetime;

/// How a missed call computes and stores its value.
#[derive(Clone, Copy)]
pub(crate) struct Fill<'a> {
    pub(crate) store: &'a Store,
    pub(crate) key: &'a str,
    pub(crate) lifetime: Lifetime,
    /// `lock = …`: how long the cross-process lock may be held.
    pub(crate) lock: Option<Duration>,
    /// `compress = …`: whether values are compressed (unset: as the cache says).
    pub(crate) compress: Option<bool>,
    /// `tags = [...]`: the tags the value is stored with.
    pub(crate) tags: &'a [String],
}

impl Fill<'_> {
    /// The miss path of a cached call.
    pub(crate) async fn run<I: Io, V, R>(
        self,
        io: I,
        values: Values<R, V>,
        unless: Unless<R>,
        body: impl Future<Output = R>,
    ) -> R {
        let Self {
            store,
            key,
            lock,
            tags,
            ..
        } = self;
        let codec = values.codec;
        let leader = match store.flights().join(io, key).await {
            Joined::Shared(bytes) => match store.read_shared(codec, key, &bytes) {
                Some(value) => return (values.rebuild)(value),
                None => None,
            },
            Joined::Leader(leader) => Some(leader),
            Joined::Alone => None,
        };
        let acquired = match lock.filter(|_| leader.is_some()) {
            Some(hold) => lock::acquire(io, store, key, hold).await,
            None => Acquired::Unlocked,
        };
        let lock = match locked(store, codec, key, acquired) {
            Ok(lock) => lock,
            Err((value, bytes)) => {
                finish(leader, Some(bytes));
                return (values.rebuild)(value);
            }
        };
        let (result, bytes, keep) = self.compute(values, unless, body).await;
        // Waiters get the bytes before the write, not after its round trip
        // (nor never, if this call is cancelled while writing). A value with
        // a zero ttl (`ttl = EXPR`, `ttl_of`) is shared with them, not stored.
        finish(leader, bytes.clone());
        if let (Some(bytes), Some(keep)) = (&bytes, keep) {
            store.store_tagged(io, key, bytes, keep, tags).await;
        }
        if let Some(lock) = lock {
            lock.release(io, store).await;
        }
        result
    }

    /// `f_refresh`, and a hit that claimed its refresh: runs `body` and
    /// stores its result whatever the cache holds (no flight, no lock).
    pub(crate) async fn refresh<I: Io, V, R>(
        self,
        io: I,
        values: Values<R, V>,
        unless: Unless<R>,
        body: impl Future<Output = R>,
    ) -> R {
        let (result, bytes, keep) = self.compute(values, unless, body).await;
        if let (Some(bytes), Some(keep)) = (bytes, keep) {
            let (store, key, tags) = (self.store, self.key, self.tags);
            store.store_tagged(io, key, &bytes, keep, tags).await;
        }
        result
    }

    /// Runs `body`, reports how long it took, and encodes what `values`
    /// pick of its result unless `unless` vetoes it: the one place that
    /// decides what a computed result stores. The result, its bytes (`None`:
    /// nothing to store, or it could not be encoded, logged), and how long
    /// Redis keeps them (`None`: a zero TTL, shared with waiters, not stored).
    async fn compute<V, R>(
        &self,
        values: Values<R, V>,
        unless: Unless<R>,
        body: impl Future<Output = R>,
    ) -> (R, Option<Arc<Vec<u8>>>, Option<Duration>) {
        let Self {
            store,
            key,
            lifetime,
            compress,
            ..
        } = *self;
        let started = Instant::now();
        let result = body.await;
        let computed = started.elapsed();
        store.ran(key, computed);
        let Some(value) = values.picker(unless)(&result) else {
            return (result, None, None);
        };
        let lifetime = values.lifetime(lifetime, value);
        let meta = lifetime.meta(computed);
        let bytes = store.encode(values.codec, key, value, meta, compress);
        let keep = lifetime.keep(key);
        (result, bytes.map(Arc::new), keep)
    }
}

/// The lock to release after computing, if any; or, as `Err`, the value
/// another process stored (decoded, and as bytes to share with the flight).
fn locked<V>(
    store: &Store,
    codec: Codec<V>,
    key: &str,
    acquired: Acquired,
) -> Result<Option<Lock>, (V, Arc<Vec<u8>>)> {
    match acquired {
        Acquired::Owner(lock) => Ok(Some(lock)),
        Acquired::Unlocked => Ok(None),
        Acquired::Value(bytes) => match store.read_shared(codec, key, &bytes) {
            Some(value) => Err((value, Arc::new(bytes))),
            None => Ok(None),
        },
    }
}

fn finish(leader: Option<Leader<'_>>, bytes: Option<Arc<Vec<u8>>>) {
    if let Some(leader) = leader {
        leader.finish(bytes);
    }
}
