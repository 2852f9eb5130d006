//! The tables of the in-process tier (L1) and what keeps them coherent
//! with Redis: decoded values by [`Digest`], a live flag (set while
//! tracking receives invalidations, see `tracking/`), generation counters
//! that keep a value read before an invalidation out of the tier, and the
//! tracking connections ([`Readers`]) the values kept are confirmed over.
//!
//! A value is kept only once a `GET` over the tracking connection of the
//! key's server (on a Redis Cluster, of the primary serving its slot) has
//! returned the same bytes (a *fill*), and only if no invalidation of that
//! key arrived between taking a [`Ticket`] (before the caller's own `GET`)
//! and the insert: Redis then reports the key's next write to that
//! connection, and a reply older than an invalidation already processed is
//! dropped. The caller is answered from its own `GET`, over its own
//! connection, and the fill runs in the background on the io runtime: a call
//! that misses the tier waits for no other thread, so a write is seen as
//! soon as its invalidation arrives. While tracking is down (not yet
//! connected, broken, reconnecting), the tables are empty and take nothing;
//! on a cluster, while one primary's connection is down, only the entries
//! of that primary's slots are dropped and none of them is kept.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use quick_cache::sync::DefaultLifecycle;
use quick_cache::{OptionsBuilder, UnitWeighter};
use redis::aio::MultiplexedConnection;
use redis::{Cmd, RedisResult};
use tokio::sync::Notify;
use xxhash_rust::xxh3::xxh3_64;

use crate::codec::Meta;
use crate::key::{Digest, Key};
use crate::runtimes::io_runtime;
use crate::ttl;

/// How many generation counters the keys are spread over: an invalidation
/// of one key spoils only the tickets of keys in the same stripe.
const STRIPES: usize = 64;

/// The longest an entry is kept (about 100 years), so an instant can be computed.
const MAX_LIFE: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// Every table of one cache, and the state coherence needs.
pub(crate) struct Tables {
    /// The cache-wide table of `CacheBuilder::local`, if set.
    shared: Option<Table>,
    /// The tables of functions with `local = N`, by function name.
    /// A short list (one entry per function with `local = N`), searched
    /// by the name's address first: no hashing on a hit's path.
    own: RwLock<Vec<(&'static str, Table)>>,
    /// Whether invalidations are being received: inserts are allowed.
    live: AtomicBool,
    /// Bumped by every invalidation of a key in the stripe (all, on a flush).
    generations: [AtomicU64; STRIPES],
    /// The tracking connections the values kept are confirmed over.
    readers: ArcSwapOption<Readers>,
    /// The keys whose fill is in flight (one at a time per key), with the
    /// fingerprint of the bytes it confirms.
    filling: Mutex<HashMap<Digest, u64, DigestHash>>,
    /// Told when a fill found its key's slot served by another primary:
    /// the cluster's tracking reads the slot map again.
    moved: Arc<Notify>,
    /// Keys Redis reported written (or deleted, or expired).
    invalidated: AtomicU64,
}

/// The slots of a Redis Cluster.
const SLOTS: usize = 16_384;

/// Where the values kept are confirmed: the tracking connection of the
/// server, or on a Redis Cluster of each slot's primary. Each connection
/// has a serial, by which its end or its database's flush is reported.
pub(crate) struct Readers {
    /// For each slot, the index in `conns` of the primary serving it;
    /// empty on one server, whose connection is `conns[0]`.
    owners: Arc<[u16]>,
    /// Each server's connection and its serial; `None` while it is down.
    conns: Vec<Option<(u64, MultiplexedConnection)>>,
}

impl Readers {
    /// The one server's tracking connection, numbered `serial`.
    pub(crate) fn one(serial: u64, conn: MultiplexedConnection) -> Self {
        Self {
            owners: Arc::new([]),
            conns: vec![Some((serial, conn))],
        }
    }

    /// A cluster's: `owners[slot]` is the index in `conns` of the primary
    /// serving the slot (all [`SLOTS`] of them), whose connection is down if
    /// `None`.
    #[cfg(feature = "cluster")]
    pub(crate) fn slots(
        owners: Arc<[u16]>,
        conns: Vec<Option<(u64, MultiplexedConnection)>>,
    ) -> Self {
        debug_assert_eq!(owners.len(), SLOTS);
        Self { owners, conns }
    }

    /// The slot of the key named `key` (0 on one server) and the connection
    /// it must be confirmed over, if that is up.
    fn of(&self, key: &str) -> Option<(u16, &MultiplexedConnection)> {
        if self.owners.is_empty() {
            let (_, conn) = self.conns.first()?.as_ref()?;
            return Some((0, conn));
        }
        let slot = slot(key.as_bytes());
        let owner = *self.owners.get(usize::from(slot))?;
        let (_, conn) = self.conns.get(usize::from(owner))?.as_ref()?;
        Some((slot, conn))
    }

    /// The index in `conns` of the connection numbered `serial`.
    fn index_of(&self, serial: u64) -> Option<usize> {
        self.conns
            .iter()
            .position(|conn| conn.as_ref().is_some_and(|(s, _)| *s == serial))
    }

    /// Whether `slot` is served by the connection at `index` (on one
    /// server, every slot is).
    fn serves(&self, index: usize, slot: u16) -> bool {
        self.owners.is_empty() || self.owners.get(usize::from(slot)).copied() == Some(index as u16)
    }
}

/// The Redis Cluster slot of the key named `key`: CRC16 (XMODEM) of its
/// hash tag (the part between the first `{` and the next `}`, if not
/// empty) or of the whole name, modulo 16384.
pub(crate) fn slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    let mut crc: u16 = 0;
    for &byte in tagged.unwrap_or(key) {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % SLOTS as u16
}

/// One bounded table of decoded values, by digest: `quick_cache` (S3-FIFO
/// eviction), whose reads cost a fraction of `moka`'s on this path, the
/// hottest of the crate. Entries expire lazily: a read past an entry's
/// `expires_at` removes it and misses.
pub(crate) type Table = Arc<quick_cache::sync::Cache<Digest, Entry, UnitWeighter, DigestHash>>;

/// One decoded value, its metadata, when Redis drops it, its slot, and the
/// fingerprint of the bytes it was decoded from.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) value: Arc<dyn Any + Send + Sync>,
    pub(crate) meta: Meta,
    expires_at: Instant,
    slot: u16,
    fingerprint: u64,
}

/// Proof that a key's stripe had generation `generation` while tracking was
/// live, and the connection to confirm the key's value over.
pub(crate) struct Ticket {
    stripe: usize,
    generation: u64,
    slot: u16,
    /// Of the bytes to keep, once known.
    fingerprint: u64,
    /// `None` only in unit tests, which insert directly.
    reader: Option<MultiplexedConnection>,
}

/// A value on its way into a table: decoded, with its metadata, and how
/// long past its freshness Redis keeps it (`stale`).
pub(crate) struct Kept {
    pub(crate) value: Arc<dyn Any + Send + Sync>,
    pub(crate) meta: Meta,
    pub(crate) stale: Duration,
}

/// Removes a key from [`Tables::filling`] when its fill ends, whichever
/// way, unless a newer fill of the key took its place.
struct Filling {
    tables: Arc<Tables>,
    digest: Digest,
    fingerprint: u64,
}

impl Drop for Filling {
    fn drop(&mut self) {
        let mut filling = self.tables.lock_filling();
        if filling.get(&self.digest) == Some(&self.fingerprint) {
            filling.remove(&self.digest);
        }
    }
}

/// A table of at most `entries` values; `None` if the options are refused.
fn table(entries: u64) -> Option<Table> {
    // Sized up front for at most this many: a large bound costs memory as it fills.
    let presized = usize::try_from(entries.min(1024)).unwrap_or(1024);
    let options = OptionsBuilder::new()
        .estimated_items_capacity(presized)
        .weight_capacity(entries)
        .build()
        .ok()?;
    let lifecycle = DefaultLifecycle::default();
    let cache =
        quick_cache::sync::Cache::with_options(options, UnitWeighter, DigestHash, lifecycle);
    Some(Arc::new(cache))
}

/// The live entry under `key` in `table`, removing it if it has expired.
pub(crate) fn live(table: &Table, key: Digest) -> Option<Entry> {
    let entry = table.get(&key)?;
    if entry.expires_at > Instant::now() {
        return Some(entry);
    }
    table.remove(&key);
    None
}

/// Hashes a [`Digest`] for the tables by taking 64 of its bits: it is a
/// cryptographic hash already, so hashing it again would buy nothing.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DigestHash;

/// The hasher [`DigestHash`] builds.
#[derive(Debug, Default)]
pub(crate) struct DigestHasher(u64);

impl std::hash::BuildHasher for DigestHash {
    type Hasher = DigestHasher;
    fn build_hasher(&self) -> DigestHasher {
        DigestHasher(0)
    }
}

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u128(&mut self, digest: u128) {
        self.0 ^= digest as u64;
    }

    /// Anything else (never a `Digest`) is folded in 8 bytes at a time.
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
}

fn stripe(key: Digest) -> usize {
    (key.0 % STRIPES as u128) as usize
}

impl Tables {
    /// No values yet, not live; functions without `local = N` share
    /// `shared` entries (none if `None`).
    pub(crate) fn new(shared: Option<u64>) -> Self {
        Self {
            shared: shared.and_then(table),
            own: RwLock::new(Vec::new()),
            live: AtomicBool::new(false),
            generations: std::array::from_fn(|_| AtomicU64::new(0)),
            readers: ArcSwapOption::empty(),
            filling: Mutex::new(HashMap::with_hasher(DigestHash)),
            moved: Arc::new(Notify::new()),
            invalidated: AtomicU64::new(0),
        }
    }

    /// The table of the function `name` with `local = own` (its own table)
    /// or without (the shared table, if any).
    pub(crate) fn table(&self, name: &'static str, own: Option<u64>) -> Option<Table> {
        let Some(entries) = own else {
            return self.shared.clone();
        };
        let find = |tables: &[(&str, Table)]| {
            tables
                .iter()
                .find(|(of, _)| std::ptr::eq(*of, name) || *of == name)
                .map(|(_, table)| table.clone())
        };
        if let Some(table) = find(&self.own.read().unwrap_or_else(PoisonError::into_inner)) {
            return Some(table);
        }
        let mut tables = self.own.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(table) = find(&tables) {
            return Some(table);
        }
        let made = table(entries)?;
        tables.push((name, made.clone()));
        Some(made)
    }

    /// Whether invalidations are being received.
    pub(crate) fn is_live(&self) -> bool {
        self.live.load(SeqCst)
    }

    /// A ticket for keeping what a `GET` of `key` is about to read; `None`
    /// (keep nothing) while tracking is down, or, on a cluster, while the
    /// connection to the primary of the key's slot is.
    pub(crate) fn ticket(&self, key: &Key<'_>) -> Option<Ticket> {
        let stripe = stripe(key.digest);
        let generation = self.generations[stripe].load(SeqCst);
        // The generation before the readers: a reader taken away (its
        // connection lost, its slots moved) is taken away before the flush
        // that bumps the generations, so a ticket that still got it has an
        // old generation, and its value is not kept.
        if !self.is_live() {
            return None;
        }
        let readers = self.readers.load();
        let (slot, reader) = readers.as_deref()?.of(key.text())?;
        Some(Ticket {
            stripe,
            generation,
            slot,
            fingerprint: 0,
            reader: Some(reader.clone()),
        })
    }

    /// A ticket without a reader, for a key in `slot`, for unit tests
    /// that insert directly.
    #[cfg(test)]
    pub(crate) fn bare_ticket(&self, key: Digest, slot: u16) -> Option<Ticket> {
        let stripe = stripe(key);
        let generation = self.generations[stripe].load(SeqCst);
        self.is_live().then_some(Ticket {
            stripe,
            generation,
            slot,
            fingerprint: 0,
            reader: None,
        })
    }

    /// Keeps `kept` (decoded from `bytes`, read from Redis under `ticket`
    /// as the value of `key`) in `table` once the key's tracking connection
    /// has read the same bytes: in the background, on the io runtime; at
    /// most one such fill per key at a time. See [`insert`](Self::insert).
    ///
    /// The caller's read, over another connection than the tracking one,
    /// may be newer than what the tier holds or is about to keep (a write
    /// whose invalidation is still on its way): then that is dropped, as an
    /// invalidation would drop it, so that no call returns an older value
    /// than one returned before.
    pub(crate) fn fill(
        self: &Arc<Self>,
        table: &Table,
        mut ticket: Ticket,
        key: &Key<'_>,
        kept: Kept,
        bytes: Vec<u8>,
    ) {
        let digest = key.digest;
        let Some(mut reader) = ticket.reader.take() else {
            return;
        };
        let Ok(runtime) = io_runtime() else { return };
        let fingerprint = xxh3_64(&bytes);
        {
            let mut filling = self.lock_filling();
            let in_flight = filling.get(&digest).copied();
            let held = table.peek(&digest).map(|entry| entry.fingerprint);
            if in_flight.is_some_and(|f| f != fingerprint) || held.is_some_and(|f| f != fingerprint)
            {
                // Bumped before the removal, as by `invalidate`.
                self.generations[ticket.stripe].fetch_add(1, SeqCst);
                table.remove_if(&digest, |entry| entry.fingerprint != fingerprint);
            }
            if in_flight == Some(fingerprint) || held == Some(fingerprint) {
                return;
            }
            filling.insert(digest, fingerprint);
        }
        // Any generation from before the tracking connection's read will
        // do: the value kept is the one that read returns.
        ticket.generation = self.generations[ticket.stripe].load(SeqCst);
        ticket.fingerprint = fingerprint;
        let filling = Filling {
            tables: self.clone(),
            digest,
            fingerprint,
        };
        let table = table.clone();
        let get = Cmd::get(key.text());
        runtime.spawn(async move {
            let now: RedisResult<Option<Vec<u8>>> = get.query_async(&mut reader).await;
            let tables = &filling.tables;
            match now {
                // Redis reports this key's next write to `reader`.
                Ok(Some(now)) if now == bytes => tables.insert(&table, ticket, digest, kept),
                // Not the slot's primary any more: MOVED, ASK, or the like.
                Err(error) if error.is_cluster_error() => tables.moved.notify_one(),
                // Written since, or gone, or the connection failed.
                _ => {}
            }
        });
    }

    fn lock_filling(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, u64, DigestHash>> {
        self.filling.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Told when a fill found its key's slot served elsewhere.
    #[cfg(feature = "cluster")]
    pub(crate) fn moved(&self) -> Arc<Notify> {
        self.moved.clone()
    }

    /// How many keys Redis reported written.
    pub(crate) fn invalidated(&self) -> u64 {
        self.invalidated.load(Relaxed)
    }

    /// Keeps `kept`, read from Redis under `ticket`, until Redis drops it
    /// (`stale` past the end of its freshness); unless `key` was
    /// invalidated since the ticket was taken.
    pub(crate) fn insert(&self, table: &Table, ticket: Ticket, key: Digest, kept: Kept) {
        let Kept { value, meta, stale } = kept;
        let until_ms = meta
            .fresh_until_ms
            .saturating_add(u64::try_from(stale.as_millis()).unwrap_or(u64::MAX));
        let left = until_ms.saturating_sub(ttl::now_ms());
        let generation = &self.generations[ticket.stripe];
        // Already spoiled: not even for a moment (a newer fill of the key
        // may have kept its value, which this one would overwrite).
        if left == 0 || generation.load(SeqCst) != ticket.generation {
            return;
        }
        let entry = Entry {
            value,
            meta,
            expires_at: Instant::now() + Duration::from_millis(left).min(MAX_LIFE),
            slot: ticket.slot,
            fingerprint: ticket.fingerprint,
        };
        table.insert(key, entry);
        // An invalidation bumps the generation before it removes keys, so
        // either it removes this entry, or this check sees the bump.
        if generation.load(SeqCst) != ticket.generation || !self.is_live() {
            table.remove(&key);
        }
    }

    fn each(&self, mut f: impl FnMut(&Table)) {
        if let Some(shared) = &self.shared {
            f(shared);
        }
        let own = self.own.read().unwrap_or_else(PoisonError::into_inner);
        own.iter().for_each(|(_, table)| f(table));
    }

    /// Drops `keys` (Redis key names), which another client (or this one)
    /// wrote or deleted; names that are not one of our value keys are skipped.
    pub(crate) fn invalidate<K: AsRef<[u8]>>(&self, keys: &[K]) {
        for key in keys.iter().filter_map(|key| Digest::parse(key.as_ref())) {
            self.invalidated.fetch_add(1, Relaxed);
            self.generations[stripe(key)].fetch_add(1, SeqCst);
            self.each(|table| {
                table.remove(&key);
            });
        }
    }

    /// Drops everything (Redis flushed, or tracking went down).
    pub(crate) fn flush(&self) {
        for generation in &self.generations {
            generation.fetch_add(1, SeqCst);
        }
        self.each(|table| table.clear());
    }

    /// Drops the entries of the slots `doomed` names (a cluster's primary
    /// lost or flushed, slots moved), and keeps out what was being read
    /// before (every generation is bumped: a few other keys' pending values
    /// are not kept either, which costs a miss, never staleness).
    pub(crate) fn flush_slots(&self, doomed: impl Fn(u16) -> bool) {
        for generation in &self.generations {
            generation.fetch_add(1, SeqCst);
        }
        self.each(|table| table.retain(|_, entry| !doomed(entry.slot)));
    }

    /// Sets the connections the kept values are confirmed over, before
    /// [`set_live`](Self::set_live) turns the tables on; `None` when
    /// tracking is down.
    pub(crate) fn set_readers(&self, readers: Option<Readers>) {
        self.readers.store(readers.map(Arc::new));
    }

    /// The connection numbered `serial` ended: nothing more is confirmed
    /// over it, and the entries of the slots it served (all, on one server)
    /// are dropped.
    pub(crate) fn lost(&self, serial: u64) {
        let mut gone = None;
        self.readers.rcu(|current| {
            gone = current.as_deref().and_then(|r| r.index_of(serial));
            let (Some(readers), Some(index)) = (current.as_deref(), gone) else {
                return current.clone();
            };
            let mut conns = readers.conns.clone();
            conns[index] = None;
            Some(Arc::new(Readers {
                owners: readers.owners.clone(),
                conns,
            }))
        });
        // Taken away above, flushed now: see `ticket`.
        if let Some(index) = gone {
            self.flushed(index);
        }
    }

    /// The server of the connection numbered `serial` flushed its database
    /// (a null invalidation): the entries of its slots are dropped.
    pub(crate) fn flushed_by(&self, serial: u64) {
        let index = self
            .readers
            .load()
            .as_deref()
            .and_then(|r| r.index_of(serial));
        match index {
            Some(index) => self.flushed(index),
            // Not a current connection: drop everything, to be safe.
            None => self.flush(),
        }
    }

    /// Drops the entries of the slots that the connection at `index` serves.
    fn flushed(&self, index: usize) {
        let readers = self.readers.load_full();
        match readers {
            Some(readers) if !readers.owners.is_empty() => {
                self.flush_slots(|slot| readers.serves(index, slot));
            }
            _ => self.flush(),
        }
    }

    /// Tracking came up (inserts allowed) or went down (flush, no inserts).
    pub(crate) fn set_live(&self, live: bool) {
        self.live.store(live, SeqCst);
        if !live {
            self.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::slot;

    #[test]
    fn slots_are_redis_cluster_s_crc16_of_the_hash_tag() {
        // Values of `CLUSTER KEYSLOT`.
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b"hello"), 866);
        // The tag alone counts; an empty one does not.
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"app:m::f:{0123abcd}"), slot(b"0123abcd"));
        assert_eq!(slot(b"foo{}{bar}"), 8363);
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
    }
}
