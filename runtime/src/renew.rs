//! Refreshing a value that a hit found stale (`stale = …`) or drew for an
//! early refresh (`refresh = "xfetch"`): one call per key at a time, in
//! this process, recomputes and stores it; other hits keep returning the
//! value they found.
//!
//! Async functions whose arguments are owned run the refresh in a spawned
//! tokio task, so the caller that triggers it returns at once. Sync
//! functions, and async functions that borrow (`&str`, `&self`) and so
//! can't hand their body to a task, refresh inline: the one caller that
//! claims the refresh waits for the body and returns the new value.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use serde::Serialize;

use crate::Cache;
use crate::ttl::Lifetime;

/// The keys being refreshed in one cache.
#[derive(Debug, Default)]
pub(crate) struct Renewals {
    keys: Mutex<HashSet<String>>,
}

/// The right to refresh one key; released when dropped (also on panic or
/// cancellation). Owns what it needs, so it can move into a spawned task.
pub(crate) struct Claim {
    cache: Cache,
    key: String,
}

impl Cache {
    /// Claims the refresh of `key`, unless another call holds it.
    pub(crate) fn claim_renewal(&self, key: &str) -> Option<Claim> {
        let mut keys = self
            .renewals()
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        keys.insert(key.to_owned()).then(|| Claim {
            cache: self.clone(),
            key: key.to_owned(),
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut keys = self
            .cache
            .renewals()
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        keys.remove(&self.key);
    }
}

impl Claim {
    /// The key this claim refreshes.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// The cache this claim refreshes in.
    pub(crate) fn cache(&self) -> &Cache {
        &self.cache
    }
}

/// Runs `body`, stores what `storable` picks of its result (with fresh
/// metadata), and returns the result.
pub(crate) fn compute_sync<V: Serialize, R>(
    cache: &Cache,
    key: &str,
    lifetime: Lifetime,
    storable: impl FnOnce(&R) -> Option<&V>,
    body: impl FnOnce() -> R,
) -> R {
    let started = Instant::now();
    let result = body();
    let meta = lifetime.meta(started.elapsed());
    if let Some(bytes) = storable(&result).and_then(|value| cache.encode(key, value, meta)) {
        cache.store_sync(key, &bytes, lifetime.storage_ttl());
    }
    result
}

/// Async [`compute_sync`].
pub(crate) async fn compute<V: Serialize, R>(
    cache: &Cache,
    key: &str,
    lifetime: Lifetime,
    storable: impl FnOnce(&R) -> Option<&V>,
    body: impl Future<Output = R>,
) -> R {
    let started = Instant::now();
    let result = body.await;
    let meta = lifetime.meta(started.elapsed());
    if let Some(bytes) = storable(&result).and_then(|value| cache.encode(key, value, meta)) {
        cache.store(key, &bytes, lifetime.storage_ttl()).await;
    }
    result
}

/// Starts `refresh` on the caller's tokio runtime; `false` (and `refresh`
/// dropped, which releases its claim) if there is none.
pub(crate) fn spawn(refresh: impl Future<Output = ()> + Send + 'static) -> bool {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(refresh);
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::Cache;

    #[test]
    fn one_claim_per_key_until_dropped() {
        let cache = Cache::in_memory();
        let claim = cache.claim_renewal("a").expect("first claim");
        assert_eq!(claim.key(), "a");
        assert!(cache.claim_renewal("a").is_none(), "held");
        let other = cache.claim_renewal("b");
        assert!(other.is_some(), "keys are independent");
        drop(claim);
        assert!(cache.claim_renewal("a").is_some(), "released on drop");
    }
}
