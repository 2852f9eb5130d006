//! The tables of the in-process tier (L1) and what keeps them coherent
//! with Redis: decoded values by [`Digest`], a live flag (set while
//! tracking receives invalidations, see `tracking/`), and generation
//! counters that keep a value read before an invalidation out of the tier.
//!
//! Values are inserted only from a `GET` reply, and only if no invalidation
//! of that key arrived between taking a [`Ticket`] (before the `GET`) and the
//! insert: a reply carrying a value older than an invalidation already
//! processed is dropped. While tracking is down (not yet connected, broken,
//! reconnecting), the tables are empty and take nothing.
//!
//! On one server the `GET`s whose values the tier keeps go over the tracking
//! connection itself (the ticket's [`reader`](Ticket::reader)): Redis then
//! reports writes of exactly the keys this process keeps, and the one
//! connection whose loss would silence those reports is the one tracking
//! watches.

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use quick_cache::sync::DefaultLifecycle;
use quick_cache::{OptionsBuilder, UnitWeighter};
use redis::aio::MultiplexedConnection;

use crate::codec::Meta;
use crate::key::Digest;
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
    /// The tracking connection in default mode, over which the values kept
    /// must be read; `None` in broadcast mode (any connection will do).
    reader: ArcSwapOption<MultiplexedConnection>,
}

/// One bounded table of decoded values, by digest: `quick_cache` (S3-FIFO
/// eviction), whose reads cost a fraction of `moka`'s on this path, the
/// hottest of the crate. Entries expire lazily: a read past an entry's
/// `expires_at` removes it and misses.
pub(crate) type Table = Arc<quick_cache::sync::Cache<Digest, Entry, UnitWeighter, DigestHash>>;

/// One decoded value, its metadata, and when Redis drops it.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) value: Arc<dyn Any + Send + Sync>,
    pub(crate) meta: Meta,
    expires_at: Instant,
}

/// Proof that a key's stripe had generation `generation` while tracking was
/// live, and the connection to read the key over.
pub(crate) struct Ticket {
    stripe: usize,
    generation: u64,
    reader: Option<MultiplexedConnection>,
}

impl Ticket {
    /// The connection the value must be read over for the tier to keep it
    /// (tracking in default mode); `None`: any connection.
    pub(crate) fn reader(&self) -> Option<&MultiplexedConnection> {
        self.reader.as_ref()
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
            reader: ArcSwapOption::empty(),
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

    /// A ticket for inserting what a `GET` of `key` is about to read; `None`
    /// (insert nothing) while tracking is down.
    pub(crate) fn ticket(&self, key: Digest) -> Option<Ticket> {
        let stripe = stripe(key);
        let generation = self.generations[stripe].load(SeqCst);
        // Live before the reader: tracking sets its reader before it goes
        // live, so a live tier's ticket carries it, and no value read over
        // another connection (which Redis would not track for us) is kept.
        if !self.is_live() {
            return None;
        }
        let reader = self.reader.load().as_deref().cloned();
        Some(Ticket {
            stripe,
            generation,
            reader,
        })
    }

    /// Keeps the value `value` makes, read from Redis under `ticket`, until
    /// Redis drops it (`stale` past the end of its freshness); unless `key`
    /// was invalidated since the ticket was taken.
    pub(crate) fn insert(
        &self,
        table: &Table,
        ticket: Ticket,
        key: Digest,
        value: impl FnOnce() -> Arc<dyn Any + Send + Sync>,
        meta: Meta,
        stale: Duration,
    ) {
        let until_ms = meta
            .fresh_until_ms
            .saturating_add(u64::try_from(stale.as_millis()).unwrap_or(u64::MAX));
        let left = until_ms.saturating_sub(ttl::now_ms());
        if left == 0 {
            return;
        }
        let entry = Entry {
            value: value(),
            meta,
            expires_at: Instant::now() + Duration::from_millis(left).min(MAX_LIFE),
        };
        table.insert(key, entry);
        // An invalidation bumps the generation before it removes keys, so
        // either it removes this entry, or this check sees the bump.
        let generation = &self.generations[ticket.stripe];
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

    /// Sets the connection the kept values are read over: the tracking
    /// connection in default mode, set before [`set_live`](Self::set_live)
    /// turns the tables on.
    pub(crate) fn set_reader(&self, reader: Option<MultiplexedConnection>) {
        self.reader.store(reader.map(Arc::new));
    }

    /// Tracking came up (inserts allowed) or went down (flush, no inserts).
    pub(crate) fn set_live(&self, live: bool) {
        self.live.store(live, SeqCst);
        if !live {
            self.flush();
        }
    }
}
