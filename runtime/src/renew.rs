//! Who refreshes a value that a hit found stale (`stale = …`) or drew for an
//! early refresh (`refresh = "xfetch"`): one call per key at a time, in this
//! process, holds a [`Claim`]; other hits keep returning the value they found.
//! The refresh itself is part of the call (`call.rs`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use crate::key::Digest;

/// The keys being refreshed in one cache.
#[derive(Debug, Default)]
pub(crate) struct Renewals {
    keys: Arc<Mutex<HashSet<Digest>>>,
}

/// The right to refresh one key; released when dropped (also on panic or
/// cancellation). Owns what it needs, so it can move into a spawned task.
#[derive(Debug)]
pub(crate) struct Claim {
    keys: Arc<Mutex<HashSet<Digest>>>,
    key: Digest,
}

impl Renewals {
    /// Claims the refresh of `key`, unless another call holds it.
    pub(crate) fn claim(&self, key: Digest) -> Option<Claim> {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        keys.insert(key).then(|| Claim {
            keys: Arc::clone(&self.keys),
            key,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        keys.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_claim_per_key_until_dropped() {
        let renewals = Renewals::default();
        let claim = renewals.claim(Digest(1)).expect("first claim");
        assert!(renewals.claim(Digest(1)).is_none(), "held");
        let other = renewals.claim(Digest(2));
        assert!(other.is_some(), "keys are independent");
        drop(claim);
        assert!(renewals.claim(Digest(1)).is_some(), "released on drop");
    }
}
