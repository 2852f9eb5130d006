//! The internal store behind a [`Cache`](crate::Cache) handle: the backend,
//! the settings and counters, the calls in flight and the in-process tier.
//! It turns values into bytes and back ([`codec`]), counts what happens,
//! and is the one place a cached call's cache failures are logged.
//! Everything a call does to Redis goes through it, written once over [`Io`].

use std::time::Duration;

use redis::Cmd;

use crate::backend::Backend;
use crate::backend::Io;
use crate::codec::{Codec, Meta};
use crate::error::{Chain, Error};
use crate::flight::Flights;
use crate::key::{Digest, Key};
use crate::local::{Kit, Local, Tier};
use crate::metrics::{Metrics, Stats};
use crate::renew::{Claim, Renewals};
use crate::sign::{Seal, Signer};
use crate::tables::Ticket;

/// See the module docs.
pub(crate) struct Store {
    backend: Backend,
    prefix: String,
    max_value_size: usize,
    metrics: Metrics,
    flights: Flights,
    renewals: Renewals,
    /// The in-process tier; `None` for a cache that is not on Redis.
    local: Option<Local>,
    /// Signs what is stored and checks what is read, if set.
    signer: Option<Signer>,
}

impl Store {
    pub(crate) fn new(
        backend: Backend,
        prefix: String,
        max_value_size: usize,
        local: Option<Local>,
    ) -> Self {
        Self {
            backend,
            prefix,
            max_value_size,
            metrics: Metrics::default(),
            flights: Flights::default(),
            renewals: Renewals::default(),
            local,
            signer: None,
        }
    }

    /// This store, signing every value it stores and reading only values
    /// signed with the same secret for their key, if `signer` is set.
    pub(crate) fn signed(mut self, signer: Option<Signer>) -> Self {
        self.signer = signer;
        self
    }

    /// What a value stored under `key` is signed with, if values are.
    fn seal<'a>(&'a self, key: &'a str) -> Option<Seal<'a>> {
        self.signer.as_ref().map(|signer| Seal { signer, key })
    }

    /// The string every key starts with.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// What the counters read now.
    pub(crate) fn stats(&self) -> Stats {
        self.metrics.snapshot()
    }

    /// The backend, for tests that look at which one a URL chose.
    #[cfg(test)]
    pub(crate) fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The calls computing a value right now.
    pub(crate) fn flights(&self) -> &Flights {
        &self.flights
    }

    /// Claims the refresh of `key`, unless another call holds it.
    pub(crate) fn claim_renewal(&self, key: Digest) -> Option<Claim> {
        self.renewals.claim(key)
    }

    /// The key of a call of the function `name` with this digest.
    pub(crate) fn key<'a>(&'a self, name: &'a str, digest: Digest) -> Key<'a> {
        Key::new(digest, &self.prefix, name)
    }

    /// The in-process tier of the function `name` (`local = own`), whose
    /// values Redis keeps `stale` past their ttl; `None` if it has none.
    pub(crate) fn tier<V>(
        &self,
        name: &'static str,
        own: Option<u64>,
        kit: Option<Kit<V>>,
        stale: Duration,
    ) -> Option<Tier<'_, V>> {
        self.local.as_ref()?.tier(name, own, kit, stale)
    }

    /// Reads and decodes the value of `key`: from `tier` if it holds it (no
    /// round trip), else with a `GET`, keeping what it finds in `tier`; with
    /// `slide` (`sliding = true`), a `GETEX … PX` that also resets the key's
    /// TTL to it. Every failure (Redis down, garbage bytes) is logged,
    /// counted, and reported as a miss.
    pub(crate) async fn lookup<I: Io, T>(
        &self,
        io: I,
        key: &Key<'_>,
        codec: Codec<T>,
        tier: Option<&Tier<'_, T>>,
        slide: Option<Duration>,
    ) -> Option<(T, Meta)> {
        if let Some(hit) = tier.and_then(|tier| tier.get(key.digest)) {
            self.metrics.local_hit();
            return Some(hit);
        }
        let mut ticket = tier.and_then(|tier| tier.ticket(key.digest));
        let fetched = match (slide, ticket.as_ref().map(Ticket::reader)) {
            // `GETEX` writes: Redis would not track the key; keep nothing.
            (Some(ttl), _) => {
                ticket = None;
                self.backend.get_ex(io, key.text(), millis(ttl)).await
            }
            (None, None | Some(None)) => self.backend.get(io, key.text()).await,
            // Tracked: read over the tracking connection, so that Redis
            // reports this key's next write to it. Should that connection
            // have just failed, tracking is going down: read elsewhere, keep
            // nothing.
            (None, Some(Some(reader))) => match io.query_on(reader, Cmd::get(key.text())).await {
                Ok(found) => Ok(found),
                Err(_) => {
                    ticket = None;
                    self.backend.get(io, key.text()).await
                }
            },
        };
        let decoded = match fetched {
            Ok(Some(bytes)) => {
                (codec.decode)(&bytes, self.seal(key.text()), self.max_value_size).map(Some)
            }
            Ok(None) => Ok(None),
            Err(error) => Err(error),
        };
        match decoded {
            Ok(Some(found)) => {
                self.metrics.hit();
                if let (Some(tier), Some(ticket)) = (tier, ticket) {
                    tier.keep(ticket, key.digest, &found.0, found.1);
                }
                return Some(found);
            }
            Ok(None) => {}
            Err(error) => self.failed("read", key.text(), &error),
        }
        self.metrics.miss();
        None
    }

    /// Decodes bytes another call computed or stored; a failure is logged
    /// and counted, and the caller computes the value itself.
    pub(crate) fn decode<T>(&self, codec: Codec<T>, key: &str, bytes: &[u8]) -> Option<T> {
        (codec.decode)(bytes, self.seal(key), self.max_value_size)
            .inspect_err(|error| self.failed("read", key, error))
            .ok()
            .map(|(value, _)| value)
    }

    /// Encodes `value` for `key`; `None` (logged and counted) if it can't be
    /// encoded or is over the size limit, and so won't be stored.
    pub(crate) fn encode<T>(
        &self,
        codec: Codec<T>,
        key: &str,
        value: &T,
        meta: Meta,
    ) -> Option<Vec<u8>> {
        (codec.encode)(value, meta, self.seal(key), self.max_value_size)
            .inspect_err(|error| self.failed("write", key, error))
            .ok()
    }

    /// Stores encoded `bytes` under `key`; failures are logged and counted.
    pub(crate) async fn store<I: Io>(&self, io: I, key: &str, bytes: &[u8], ttl: Duration) {
        match self.backend.set(io, key, bytes, millis(ttl)).await {
            Ok(()) => self.metrics.store(),
            Err(error) => self.failed("write", key, &error),
        }
    }

    /// The bytes under `key`, unread; errors are returned, not counted.
    pub(crate) async fn fetch<I: Io>(&self, io: I, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.backend.get(io, key).await
    }

    /// Deletes `key`; whether it existed. Errors are returned, not counted.
    pub(crate) async fn delete<I: Io>(&self, io: I, key: &str) -> Result<bool, Error> {
        self.backend.del(io, key).await
    }

    /// Deletes every key starting with `prefix`, taken literally; how many
    /// were deleted. Errors are returned, not counted.
    pub(crate) async fn delete_matching<I: Io>(&self, io: I, prefix: &str) -> Result<u64, Error> {
        self.backend.delete_matching(io, prefix).await
    }

    /// Checks that the backend answers.
    pub(crate) async fn ping<I: Io>(&self, io: I) -> Result<(), Error> {
        self.backend.ping(io).await
    }

    /// Takes `lock_key` for `token` for `hold`, unless someone holds it.
    pub(crate) async fn try_lock<I: Io>(
        &self,
        io: I,
        lock_key: &str,
        token: &str,
        hold: Duration,
    ) -> Result<bool, Error> {
        self.backend
            .try_lock(io, lock_key, token, millis(hold))
            .await
    }

    /// The bytes under `key`, and whether `lock_key` is held, in one round trip.
    pub(crate) async fn peek<I: Io>(
        &self,
        io: I,
        key: &str,
        lock_key: &str,
    ) -> Result<(Option<Vec<u8>>, bool), Error> {
        self.backend.peek(io, key, lock_key).await
    }

    /// Releases `lock_key` if it still holds `token`; whether it did.
    pub(crate) async fn unlock<I: Io>(
        &self,
        io: I,
        lock_key: &str,
        token: &str,
    ) -> Result<bool, Error> {
        self.backend.unlock(io, lock_key, token).await
    }

    /// Logs and counts a failure of a cached call's cache access. The one
    /// place every such failure passes through. Failures logged already (the
    /// breaker's refusals, an unusable cache's) are logged at `debug` only:
    /// a Redis that is down is one `warn`, not one per call.
    pub(crate) fn failed(&self, action: &str, key: &str, error: &Error) {
        self.metrics.error();
        let logged = self.backend.logged(error);
        let error = Chain(error);
        if logged {
            tracing::debug!(%key, %error, "redis-cached: cache {action} failed; the function runs uncached");
        } else {
            tracing::warn!(%key, %error, "redis-cached: cache {action} failed; the function runs uncached");
        }
    }
}

/// Whole milliseconds, at least 1 (Redis refuses `PX 0`).
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemoryBackend;
    use crate::backend::{Async, Blocking, block_on};

    const META: Meta = Meta {
        fresh_until_ms: u64::MAX,
        compute_ms: 0,
    };
    const TTL: Duration = Duration::from_secs(60);

    fn memory(prefix: &str) -> Store {
        let backend = Backend::Memory(MemoryBackend::new(1_000));
        Store::new(backend, prefix.to_owned(), 1 << 20, None)
    }

    fn put(store: &Store, key: &str, value: u8) {
        let bytes = store.encode(Codec::of(), key, &value, META).unwrap();
        block_on(store.store(Blocking, key, &bytes, TTL));
    }

    fn get(store: &Store, key: &str) -> Option<u8> {
        block_on(store.fetch(Blocking, key))
            .unwrap()
            .map(|bytes| store.decode(Codec::of(), key, &bytes).unwrap())
    }

    #[test]
    fn delete_reports_whether_the_key_was_there() {
        let store = memory("");
        put(&store, "k", 1);
        assert!(block_on(store.delete(Blocking, "k")).unwrap());
        assert!(!block_on(store.delete(Blocking, "k")).unwrap());
        assert_eq!(get(&store, "k"), None);
    }

    #[tokio::test]
    async fn a_lookup_counts_hits_misses_and_garbage() {
        let store = memory("p:");
        let key = store.key("m::f", Digest(7));
        let codec = Codec::<u8>::of();
        assert_eq!(store.lookup(Async, &key, codec, None, None).await, None);
        let bytes = store.encode(codec, key.text(), &5, META).unwrap();
        store.store(Async, key.text(), &bytes, TTL).await;
        assert_eq!(
            store.lookup(Async, &key, codec, None, None).await,
            Some((5, META))
        );
        store.store(Async, key.text(), b"garbage", TTL).await;
        assert_eq!(store.lookup(Async, &key, codec, None, None).await, None);
        let stats = store.stats();
        assert_eq!(
            (stats.hits, stats.misses, stats.errors, stats.stores),
            (1, 2, 1, 2)
        );
    }

    #[test]
    fn delete_matching_takes_one_prefix() {
        let store = memory("app:");
        put(&store, "app:m::f:{1}", 1);
        put(&store, "app:m::f:{2}", 2);
        put(&store, "app:m::f2:{1}", 3);
        assert_eq!(
            block_on(store.delete_matching(Blocking, "app:m::f:{")).unwrap(),
            2
        );
        assert_eq!(get(&store, "app:m::f2:{1}"), Some(3));
    }

    #[test]
    fn an_unusable_store_returns_its_error_from_explicit_calls() {
        let store = Store::new(
            Backend::Unusable("bad url".to_owned()),
            String::new(),
            0,
            None,
        );
        let err = block_on(store.delete_matching(Blocking, "f")).unwrap_err();
        assert!(err.to_string().contains("bad url"), "{err}");
        assert!(block_on(store.delete(Blocking, "k")).is_err());
        assert_eq!(store.stats().errors, 0, "explicit calls are not counted");
    }
}
