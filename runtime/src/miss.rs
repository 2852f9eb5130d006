//! What a cached call does when its `GET` found nothing usable: join the
//! key's in-process [flight](crate::flight); as its leader, take the key's
//! cross-process [lock](crate::lock) if the function has `lock = …`, then run
//! the body, encode the result once, store it, hand the bytes to the waiters
//! and release the lock.
//!
//! Generic over the return type `R` and the stored value `V`; the caller
//! says which part of `R` is stored (`cacheable`) and how a stored value
//! becomes an `R` again (`rebuild`).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Serialize, de::DeserializeOwned};

use crate::Cache;
use crate::codec::Meta;
use crate::flight::{Joined, Leader};
use crate::lock::{self, Acquired, Lock};
use crate::ttl::Lifetime;

/// The miss path of a sync cached call.
pub(crate) fn fill_sync<V, R>(
    cache: &Cache,
    key: &str,
    lifetime: Lifetime,
    lock_time: Option<Duration>,
    cacheable: impl FnOnce(&R) -> Option<&V>,
    rebuild: impl FnOnce(V) -> R,
    body: impl FnOnce() -> R,
) -> R
where
    V: Serialize + DeserializeOwned,
{
    let leader = match cache.flights().join_sync(key) {
        Joined::Shared(bytes) => match cache.decode(key, &bytes) {
            Some(value) => return rebuild(value),
            None => None,
        },
        Joined::Leader(leader) => Some(leader),
        Joined::Alone => None,
    };
    let acquired = match lock_time.filter(|_| leader.is_some()) {
        Some(hold) => lock::acquire_sync(cache, key, hold),
        None => Acquired::Unlocked,
    };
    let lock = match locked(cache, key, acquired) {
        Ok(lock) => lock,
        Err((value, bytes)) => {
            finish(leader, Some(bytes));
            return rebuild(value);
        }
    };
    let started = Instant::now();
    let result = body();
    let meta = lifetime.meta(started.elapsed());
    let bytes = encoded(cache, key, cacheable(&result), meta);
    // Waiters get the bytes before the write, not after its round trip.
    finish(leader, bytes.clone());
    if let Some(bytes) = &bytes {
        cache.store_sync(key, bytes, lifetime.storage_ttl());
    }
    if let Some(lock) = lock {
        lock.release_sync();
    }
    result
}

/// The miss path of an async cached call: [`fill_sync`], awaiting.
pub(crate) async fn fill<V, R>(
    cache: &Cache,
    key: &str,
    lifetime: Lifetime,
    lock_time: Option<Duration>,
    cacheable: impl FnOnce(&R) -> Option<&V>,
    rebuild: impl FnOnce(V) -> R,
    body: impl Future<Output = R>,
) -> R
where
    V: Serialize + DeserializeOwned,
{
    let leader = match cache.flights().join(key).await {
        Joined::Shared(bytes) => match cache.decode(key, &bytes) {
            Some(value) => return rebuild(value),
            None => None,
        },
        Joined::Leader(leader) => Some(leader),
        Joined::Alone => None,
    };
    let acquired = match lock_time.filter(|_| leader.is_some()) {
        Some(hold) => lock::acquire(cache, key, hold).await,
        None => Acquired::Unlocked,
    };
    let lock = match locked(cache, key, acquired) {
        Ok(lock) => lock,
        Err((value, bytes)) => {
            finish(leader, Some(bytes));
            return rebuild(value);
        }
    };
    let started = Instant::now();
    let result = body.await;
    let meta = lifetime.meta(started.elapsed());
    let bytes = encoded(cache, key, cacheable(&result), meta);
    // Waiters get the bytes before the write, not after its round trip (nor
    // never, if this call is cancelled while writing).
    finish(leader, bytes.clone());
    if let Some(bytes) = &bytes {
        cache.store(key, bytes, lifetime.storage_ttl()).await;
    }
    if let Some(lock) = lock {
        lock.release().await;
    }
    result
}

/// The lock to release after computing, if any; or, as `Err`, the value
/// another process stored (decoded, and as bytes to share with the flight).
fn locked<'a, V: DeserializeOwned>(
    cache: &Cache,
    key: &str,
    acquired: Acquired<'a>,
) -> Result<Option<Lock<'a>>, (V, Arc<[u8]>)> {
    match acquired {
        Acquired::Owner(lock) => Ok(Some(lock)),
        Acquired::Unlocked => Ok(None),
        Acquired::Value(bytes) => match cache.decode(key, &bytes) {
            Some(value) => Err((value, Arc::from(bytes))),
            None => Ok(None),
        },
    }
}

/// The bytes to store and share for `value`, if it is to be cached and encodes.
fn encoded<V: Serialize>(
    cache: &Cache,
    key: &str,
    value: Option<&V>,
    meta: Meta,
) -> Option<Arc<[u8]>> {
    value
        .and_then(|value| cache.encode(key, value, meta))
        .map(Arc::from)
}

fn finish(leader: Option<Leader<'_>>, bytes: Option<Arc<[u8]>>) {
    if let Some(leader) = leader {
        leader.finish(bytes);
    }
}
