//! The internal store behind a [`Cache`](crate::Cache) handle: the backend,
//! the settings and counters, the calls in flight and the in-process tier.
//! It turns values into bytes and back ([`codec`]), counts what happens,
//! and is the one place a cached call's cache failures are logged.
//! Everything a call does to Redis goes through it, written once over [`Io`].

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

use crate::backend::Backend;
use crate::backend::Io;
use crate::codec::{self, COMPRESS_ABOVE, Codec, Meta, Reading};
use crate::error::{Chain, Error};
use crate::flight::Flights;
use crate::key::{self, Digest, Key, TYPED};
#[cfg(feature = "local")]
use crate::local::Local;
use crate::local::{Kit, Tier};
use crate::metrics::{Event, Metrics, Outcome, Stats, Timer};
use crate::renew::{Claim, Renewals};
use crate::runtimes::RunOn;
use crate::shape::Check;
use crate::sign::{Seal, Signer};
use crate::tag;

/// See the module docs.
pub(crate) struct Store {
    backend: Backend,
    prefix: String,
    max_value_size: usize,
    metrics: Metrics,
    flights: Flights,
    renewals: Renewals,
    /// The in-process tier; `None` for a cache that is not on Redis.
    #[cfg(feature = "local")]
    local: Option<Local>,
    /// Signs what is stored and checks what is read, if set.
    signer: Option<Signer>,
    /// `CacheBuilder::compress_above`: values encoded larger are compressed.
    compress_above: Option<usize>,
    /// The functions a value of another shape was read for, logged once each.
    mismatched: Mutex<HashSet<Box<str>>>,
    /// Where async commands and waits run: `CacheBuilder::own_runtime`.
    run_on: RunOn,
}

impl Store {
    pub(crate) fn new(backend: Backend, prefix: String, max_value_size: usize) -> Self {
        Self {
            backend,
            prefix,
            max_value_size,
            metrics: Metrics::default(),
            flights: Flights::default(),
            renewals: Renewals::default(),
            #[cfg(feature = "local")]
            local: None,
            signer: None,
            compress_above: None,
            mismatched: Mutex::default(),
            run_on: RunOn::Caller,
        }
    }

    /// This store, running async commands and waits where `run_on` says.
    pub(crate) fn running_on(mut self, run_on: RunOn) -> Self {
        self.backend.set_run_on(run_on);
        self.run_on = run_on;
        self
    }

    /// Pauses for `duration` (a lock wait), where this store's waits run.
    pub(crate) async fn pause<I: Io>(&self, io: I, duration: Duration) {
        io.sleep(duration, self.run_on).await;
    }

    /// This store, compressing values whose encoding is over `bytes`, if set.
    pub(crate) fn compressed_above(mut self, bytes: Option<usize>) -> Self {
        self.compress_above = bytes;
        self
    }

    /// Above what size a function's values are compressed, given its
    /// `compress` (`wanted`): `false` never; `true` above the cache's
    /// threshold, or [`COMPRESS_ABOVE`] if it has none; unset, the cache's.
    fn compress_above(&self, wanted: Option<bool>) -> Option<usize> {
        match wanted {
            Some(false) => None,
            Some(true) => Some(self.compress_above.unwrap_or(COMPRESS_ABOVE)),
            None => self.compress_above,
        }
    }

    /// This store, with `local` as its in-process tier.
    #[cfg(feature = "local")]
    pub(crate) fn with_local(mut self, local: Option<Local>) -> Self {
        self.local = local;
        self
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
        #[cfg(feature = "local")]
        if let Some(local) = &self.local {
            return self.metrics.snapshot_with(local.invalidated());
        }
        self.metrics.snapshot()
    }

    /// The backend, for tests that look at which one a URL chose.
    #[cfg(all(test, feature = "sync", feature = "memory"))]
    pub(crate) fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The calls computing a value right now.
    pub(crate) fn flights(&self) -> &Flights {
        &self.flights
    }

    /// Claims the refresh of `key`, unless another call holds it.
    pub(crate) fn claim_renewal(&self, key: &Key<'_>) -> Option<Claim> {
        let claim = self.renewals.claim(key.digest)?;
        self.metrics.record(key.name(), Event::Refresh);
        Some(claim)
    }

    /// Counts a miss that found `key` locked by another process, and waits.
    pub(crate) fn lock_waited(&self, key: &str) {
        self.metrics.record(self.name_of(key), Event::LockWait);
    }

    /// Reports how long the body of the call of `key` took.
    pub(crate) fn ran(&self, key: &str, took: Duration) {
        self.metrics.record(self.name_of(key), Event::Body(took));
    }

    /// The function whose key (or lock) is `key`.
    fn name_of<'k>(&self, key: &'k str) -> &'k str {
        key::name_of(key, &self.prefix)
    }

    /// The key of a call of the function `name` with this digest.
    pub(crate) fn key<'a>(&'a self, name: &'a str, digest: Digest) -> Key<'a> {
        Key::new(digest, &self.prefix, name)
    }

    /// The in-process tier of the function `name` (`local = own`), whose
    /// values Redis keeps `stale` past their ttl; `None` if it has none.
    #[cfg(feature = "local")]
    pub(crate) fn tier<V>(
        &self,
        name: &'static str,
        own: Option<u64>,
        kit: Option<Kit<V>>,
        stale: Duration,
    ) -> Option<Tier<'_, V>> {
        self.local.as_ref()?.tier(name, own, kit, stale)
    }

    /// No function has an in-process tier without the `local` feature.
    #[cfg(not(feature = "local"))]
    pub(crate) fn tier<V>(
        &self,
        _: &'static str,
        _: Option<u64>,
        _: Option<Kit<V>>,
        _: Duration,
    ) -> Option<Tier<'_, V>> {
        None
    }

    /// A cached call's read of `key`: from `tier` if it holds it (no round
    /// trip), else one `GET` (with `slide`, `sliding = true`, a
    /// `GETEX … PX` that also resets the key's TTL), keeping what it finds
    /// in `tier`. Counted as a hit or a miss; every failure (Redis down,
    /// garbage bytes) is logged, counted and a miss, and the [`Outcome`]
    /// tells them apart.
    pub(crate) async fn read<I: Io, T>(
        &self,
        io: I,
        key: &Key<'_>,
        codec: Codec<T>,
        tier: Option<&Tier<'_, T>>,
        slide: Option<Duration>,
    ) -> (Option<(T, Meta)>, Outcome) {
        if let Some(hit) = tier.and_then(|tier| tier.get(key.digest)) {
            self.metrics.record(key.name(), Event::LocalHit);
            return (Some(hit), Outcome::LocalHit);
        }
        let timer = Timer::start();
        // `GETEX` writes: Redis would not track the key; keep nothing.
        // Otherwise the tier keeps the value once its tracking connection
        // has read the same bytes.
        let ticket = tier
            .filter(|_| slide.is_none())
            .and_then(|tier| tier.ticket(key));
        let (text, name) = (key.text(), key.name());
        let fetched = self.get(io, text, slide).await;
        let (found, outcome) = match &fetched {
            Ok(bytes) => self.counted(text, name, codec.reading(), bytes.as_deref()),
            Err(error) => self.read_failed(text, name, error),
        };
        self.metrics.record(name, timer.lookup());
        if let (Some(found), Some(tier), Some(ticket), Ok(Some(bytes))) =
            (&found, tier, ticket, fetched)
        {
            tier.keep(ticket, key, &found.0, found.1, bytes);
        }
        (found, outcome)
    }

    /// The typed API's read of `key`, a key the caller named, decoded as
    /// `reading` says and counted as [`read`](Self::read) counts; a Redis
    /// failure is returned, uncounted.
    pub(crate) async fn read_named<I: Io, T>(
        &self,
        io: I,
        key: &str,
        reading: Reading<T>,
    ) -> Result<(Option<(T, Meta)>, Outcome), Error> {
        let fetched = self.get(io, key, None).await?;
        Ok(self.counted(key, TYPED, reading, fetched.as_deref()))
    }

    /// The bytes under `key`, undecoded and uncounted; errors are returned.
    pub(crate) async fn read_bytes<I: Io>(
        &self,
        io: I,
        key: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        self.backend.get(io, key).await
    }

    /// Bytes another call computed or stored for `key` (its flight's
    /// leader, the holder of its lock), decoded; a failure is logged and
    /// counted, and the caller computes the value itself.
    pub(crate) fn read_shared<T>(&self, codec: Codec<T>, key: &str, bytes: &[u8]) -> Option<T> {
        codec
            .decode(bytes, self.seal(key), self.max_value_size)
            .inspect_err(|error| {
                self.unread(key, self.name_of(key), error);
            })
            .ok()
            .map(|(value, _)| value)
    }

    /// A read of `key` (of the function `name`) that Redis failed: logged,
    /// counted, and a miss.
    pub(crate) fn read_failed<T>(
        &self,
        key: &str,
        name: &str,
        error: &Error,
    ) -> (Option<(T, Meta)>, Outcome) {
        self.failed("read", key, error);
        self.metrics.record(name, Event::Miss);
        (None, Outcome::Error)
    }

    /// The bytes under `key`, with one `GET`, or with `slide` a
    /// `GETEX … PX` that resets its TTL.
    async fn get<I: Io>(
        &self,
        io: I,
        key: &str,
        slide: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, Error> {
        match slide {
            Some(ttl) => self.backend.get_ex(io, key, millis(ttl)).await,
            None => self.backend.get(io, key).await,
        }
    }

    /// `fetched`, the bytes under `key`, decoded as `reading` says, counted
    /// as a hit or a miss of the function `name`; bytes that don't decode
    /// (garbage, a bad signature) are logged, counted and a miss
    /// ([`Outcome::Error`]), a value of another shape a miss
    /// ([`Outcome::Miss`]) counted apart.
    fn counted<T>(
        &self,
        key: &str,
        name: &str,
        reading: Reading<T>,
        fetched: Option<&[u8]>,
    ) -> (Option<(T, Meta)>, Outcome) {
        let (found, outcome) = match fetched {
            None => (None, Outcome::Miss),
            Some(bytes) => match reading.decode(bytes, self.seal(key), self.max_value_size) {
                Ok(found) => (Some(found), Outcome::Hit),
                Err(error) => (None, self.unread(key, name, &error)),
            },
        };
        let event = if found.is_some() {
            Event::Hit
        } else {
            Event::Miss
        };
        self.metrics.record(name, event);
        (found, outcome)
    }

    /// Logs and counts bytes under `key` (of the function `name`) that
    /// could not be read: a value of another shape is counted as such and
    /// logged at `warn` once per function; anything else is a failure
    /// ([`failed`](Self::failed)). How the lookup ended.
    fn unread(&self, key: &str, name: &str, error: &Error) -> Outcome {
        let Error::Shape(why) = error else {
            self.failed("read", key, error);
            return Outcome::Error;
        };
        self.metrics.record(name, Event::Mismatch);
        let mut logged = self
            .mismatched
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if logged.contains(name) {
            tracing::debug!(
                function = name,
                "redis-cached: a cached value {why}; the function runs and its value replaces it"
            );
        } else {
            logged.insert(name.into());
            tracing::warn!(
                function = name,
                "redis-cached: a cached value {why}; the function runs and its value replaces it \
                 (logged once per function)"
            );
        }
        Outcome::Miss
    }

    /// Encodes `value` for `key`, compressed as the function's `compress`
    /// and the cache say; `None` (logged and counted) if it can't be encoded
    /// or is over the size limit, and so won't be stored.
    pub(crate) fn encode<T>(
        &self,
        codec: Codec<T>,
        key: &str,
        value: &T,
        meta: Meta,
        compress: Option<bool>,
    ) -> Option<Vec<u8>> {
        let above = self.compress_above(compress);
        codec
            .encode(value, meta, self.seal(key), self.max_value_size, above)
            .inspect_err(|error| self.failed("write", key, error))
            .ok()
    }

    /// Encodes `value` for `key` as [`encode`](Self::encode) does (signed if
    /// values are, compressed as the cache says, refused over the size
    /// limit), for any serializable
    /// value, sized or not. Errors are returned, not counted.
    pub(crate) fn try_encode<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        meta: Meta,
    ) -> Result<Vec<u8>, Error> {
        let above = self.compress_above(None);
        let seal = self.seal(key);
        codec::encode(value, Check::Value, meta, seal, self.max_value_size, above)
    }

    /// Stores encoded `bytes` under `key`; failures are logged and counted.
    pub(crate) async fn store<I: Io>(&self, io: I, key: &str, bytes: &[u8], ttl: Duration) {
        if let Err(error) = self.try_store(io, key, bytes, ttl).await {
            self.failed("write", key, &error);
        }
    }

    /// Stores encoded `bytes` under `key`, counting the store; a failure is
    /// returned, uncounted.
    pub(crate) async fn try_store<I: Io>(
        &self,
        io: I,
        key: &str,
        bytes: &[u8],
        ttl: Duration,
    ) -> Result<(), Error> {
        self.backend.set(io, key, bytes, millis(ttl)).await?;
        self.metrics.record(self.name_of(key), Event::Store);
        Ok(())
    }

    /// [`store`](Self::store), the entry belonging to each of `tags`
    /// (`tags = [...]`): `invalidate_tag` of any of them deletes it.
    pub(crate) async fn store_tagged<I: Io>(
        &self,
        io: I,
        key: &str,
        bytes: &[u8],
        ttl: Duration,
        tags: &[String],
    ) {
        if tags.is_empty() {
            return self.store(io, key, bytes, ttl).await;
        }
        let sets: Vec<String> = tags.iter().map(|t| tag::set_key(&self.prefix, t)).collect();
        match self
            .backend
            .set_tagged(io, key, bytes, millis(ttl), &sets)
            .await
        {
            Ok(()) => self.metrics.record(self.name_of(key), Event::Store),
            Err(error) => self.failed("write", key, &error),
        }
    }

    /// Deletes every entry stored with `tag`; how many. Errors are
    /// returned, not counted.
    pub(crate) async fn invalidate_tag<I: Io>(&self, io: I, tag: &str) -> Result<u64, Error> {
        let set = tag::set_key(&self.prefix, tag);
        let is_entry = |member: &str| tag::is_entry_key(&self.prefix, member);
        self.backend.invalidate_tag(io, &set, is_entry).await
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
    pub(crate) fn failed(&self, action: &'static str, key: &str, error: &Error) {
        let failure = Event::Error(action, error.kind());
        self.metrics.record(self.name_of(key), failure);
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

#[cfg(all(test, feature = "sync", feature = "memory"))]
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
        Store::new(backend, prefix.to_owned(), 1 << 20)
    }

    fn put(store: &Store, key: &str, value: u8) {
        let bytes = store.encode(Codec::of(), key, &value, META, None).unwrap();
        block_on(store.store(Blocking, key, &bytes, TTL));
    }

    fn get(store: &Store, key: &str) -> Option<u8> {
        block_on(store.read_bytes(Blocking, key))
            .unwrap()
            .map(|bytes| store.read_shared(Codec::of(), key, &bytes).unwrap())
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
        let lookup = |key| store.read(Async, key, codec, None, None);
        assert_eq!(lookup(&key).await, (None, Outcome::Miss));
        let bytes = store.encode(codec, key.text(), &5, META, None).unwrap();
        store.store(Async, key.text(), &bytes, TTL).await;
        assert_eq!(lookup(&key).await, (Some((5, META)), Outcome::Hit));
        store.store(Async, key.text(), b"garbage", TTL).await;
        assert_eq!(lookup(&key).await, (None, Outcome::Error));
        let stats = store.stats();
        assert_eq!(
            (stats.hits, stats.misses, stats.errors, stats.stores),
            (1, 2, 1, 2)
        );
    }

    #[test]
    fn a_function_s_compress_overrides_the_cache_s_threshold() {
        let plain = memory("");
        let cache_wide = memory("").compressed_above(Some(100));
        assert_eq!(plain.compress_above(None), None);
        assert_eq!(plain.compress_above(Some(true)), Some(COMPRESS_ABOVE));
        assert_eq!(plain.compress_above(Some(false)), None);
        assert_eq!(cache_wide.compress_above(None), Some(100));
        assert_eq!(cache_wide.compress_above(Some(true)), Some(100));
        assert_eq!(cache_wide.compress_above(Some(false)), None);
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
        let store = Store::new(Backend::Unusable("bad url".to_owned()), String::new(), 0);
        let err = block_on(store.delete_matching(Blocking, "f")).unwrap_err();
        assert!(err.to_string().contains("bad url"), "{err}");
        assert!(block_on(store.delete(Blocking, "k")).is_err());
        assert_eq!(store.stats().errors, 0, "explicit calls are not counted");
    }
}
