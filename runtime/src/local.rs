//! The in-process tier (L1): decoded values kept in front of Redis, so that
//! a hit costs neither a round trip nor a decode, only a clone.
//!
//! A function gets an L1 with `local = N` (its own table of at most `N`
//! values) or, with no `local` of its own, from its cache's
//! [`CacheBuilder::local`](crate::CacheBuilder::local) (one table shared by
//! all such functions). Entries are `Arc<dyn Any>` under the Redis key; the
//! key hashes the return type's name, so a downcast can only fail on a hash
//! collision, and a failed one is a miss.
//!
//! Coherence comes from Redis client-side caching (see `tracking.rs`): every
//! write or delete under the cache's prefix, by any client, sends an
//! `invalidate` message that removes the key here. Values are inserted only
//! from a `GET` reply, and only if no invalidation of that key arrived
//! between taking a [`Ticket`] (before the `GET`) and the insert: a reply
//! carrying a value older than an invalidation already processed is dropped.
//! While tracking is down (not yet connected, broken, reconnecting), the tier
//! is empty and nothing is inserted: every call reads Redis.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use moka::policy::EvictionPolicy;
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use crate::codec::Meta;
use crate::ttl;

/// How many generation counters the keys are spread over: an invalidation
/// of one key spoils only the tickets of keys in the same stripe.
const STRIPES: usize = 64;

/// How values of type `V` go into and out of the tier, where `V` is
/// `Clone + Send + Sync + 'static` (see [`Kit::of`]); without a kit, a
/// function's values are never kept in L1.
pub struct Kit<V> {
    keep: fn(&V) -> Arc<dyn Any + Send + Sync>,
    take: fn(&(dyn Any + Send + Sync)) -> Option<V>,
}

impl<V> Clone for Kit<V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V> Copy for Kit<V> {}

impl<V: Clone + Send + Sync + 'static> Kit<V> {
    /// The kit of a cloneable value type.
    pub const fn of() -> Self {
        Self {
            keep: |value| Arc::new(value.clone()),
            take: |any| any.downcast_ref::<V>().cloned(),
        }
    }
}

/// One function's part of the tier: its table, and how its values are kept.
pub(crate) struct Tier<'a, V> {
    local: &'a Local,
    table: Table,
    kit: Kit<V>,
    /// How long past its `ttl` Redis keeps a value (`stale`).
    stale: Duration,
}

impl<V> Tier<'_, V> {
    /// The value under `key`, if the tier holds one of type `V`.
    pub(crate) fn get(&self, key: &str) -> Option<(V, Meta)> {
        let entry = self.table.get(key)?;
        let value = (self.kit.take)(&*entry.value)?;
        Some((value, entry.meta))
    }

    /// A ticket for keeping what a `GET` of `key` is about to read; `None`
    /// (keep nothing) while tracking is down.
    pub(crate) fn ticket(&self, key: &str) -> Option<Ticket> {
        self.local.ticket(key)
    }

    /// Keeps a clone of `value`, read from Redis under `ticket`.
    pub(crate) fn keep(&self, ticket: Ticket, key: &str, value: &V, meta: Meta) {
        self.local.insert(
            &self.table,
            ticket,
            key,
            || (self.kit.keep)(value),
            meta,
            self.stale,
        );
    }
}

/// The L1 tier of one Redis-backed cache.
pub(crate) struct Local {
    tables: Arc<Tables>,
    /// Started once, on the first use of a table.
    tracking: Mutex<Option<crate::tracking::Tracker>>,
    /// What starts tracking: `None` once started.
    start: Mutex<Option<crate::tracking::Start>>,
}

/// Every table of one cache, and the state coherence needs.
pub(crate) struct Tables {
    /// The cache-wide table of `CacheBuilder::local`, if set.
    shared: Option<Table>,
    /// The tables of functions with `local = N`, by function name.
    own: RwLock<HashMap<&'static str, Table>>,
    /// Whether invalidations are being received: inserts are allowed.
    live: AtomicBool,
    /// Bumped by every invalidation of a key in the stripe (all, on a flush).
    generations: [AtomicU64; STRIPES],
}

/// One bounded table of decoded values.
/// Keys are hashed with xxh3 (they are our own, so need no DoS-resistant hash).
pub(crate) type Table = moka::sync::Cache<String, Entry, Xxh3DefaultBuilder>;

/// One decoded value, its metadata, and when Redis drops it.
#[derive(Clone)]
pub(crate) struct Entry {
    value: Arc<dyn Any + Send + Sync>,
    meta: Meta,
    expires_at: Instant,
}

/// Proof that a key's stripe had generation `generation` while tracking was live.
pub(crate) struct Ticket {
    stripe: usize,
    generation: u64,
}

/// Expires each entry at its own `expires_at`.
struct PerEntry;

impl moka::Expiry<String, Entry> for PerEntry {
    fn expire_after_create(&self, _: &String, entry: &Entry, now: Instant) -> Option<Duration> {
        Some(entry.expires_at.saturating_duration_since(now))
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.expires_at.saturating_duration_since(now))
    }
}

fn table(entries: u64) -> Table {
    moka::sync::Cache::builder()
        .max_capacity(entries)
        .eviction_policy(EvictionPolicy::tiny_lfu())
        .expire_after(PerEntry)
        .build_with_hasher(Xxh3DefaultBuilder)
}

fn stripe(key: &str) -> usize {
    // The key ends in a hash of the arguments; xxh3 spreads it anyway.
    (xxhash_rust::xxh3::xxh3_64(key.as_bytes()) % STRIPES as u64) as usize
}

impl Local {
    /// A tier whose functions without `local = N` share `shared` entries
    /// (none if `None`), kept coherent by the tracking that `start` begins
    /// on first use.
    pub(crate) fn new(shared: Option<u64>, start: crate::tracking::Start) -> Self {
        let tables = Tables {
            shared: shared.map(table),
            own: RwLock::new(HashMap::new()),
            live: AtomicBool::new(false),
            generations: std::array::from_fn(|_| AtomicU64::new(0)),
        };
        Self {
            tables: Arc::new(tables),
            tracking: Mutex::new(None),
            start: Mutex::new(Some(start)),
        }
    }

    /// The part of the tier of the function `name` with `local = own` (its
    /// own table) or without (the shared table), whose values `kit` keeps and
    /// Redis keeps `stale` past their ttl; `None` if the function has no L1.
    /// Starts tracking on first use.
    pub(crate) fn tier<V>(
        &self,
        name: &'static str,
        own: Option<u64>,
        kit: Option<Kit<V>>,
        stale: Duration,
    ) -> Option<Tier<'_, V>> {
        let kit = kit?;
        let table = self.table(name, own)?;
        Some(Tier {
            local: self,
            table,
            kit,
            stale,
        })
    }

    fn table(&self, name: &'static str, own: Option<u64>) -> Option<Table> {
        let table = match own {
            None => self.tables.shared.clone()?,
            Some(entries) => self.own_table(name, entries),
        };
        if !self.tables.live.load(SeqCst) {
            self.start_tracking();
        }
        Some(table)
    }

    fn own_table(&self, name: &'static str, entries: u64) -> Table {
        let own = self
            .tables
            .own
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(table) = own.get(name) {
            return table.clone();
        }
        drop(own);
        let mut own = self
            .tables
            .own
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        own.entry(name).or_insert_with(|| table(entries)).clone()
    }

    fn start_tracking(&self) {
        let start = self
            .start
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(start) = start {
            let tracker = start.spawn(Arc::downgrade(&self.tables));
            *self.tracking.lock().unwrap_or_else(PoisonError::into_inner) = tracker;
        }
    }

    /// A ticket for inserting what a `GET` of `key` is about to read; `None`
    /// (insert nothing) while tracking is down.
    fn ticket(&self, key: &str) -> Option<Ticket> {
        let stripe = stripe(key);
        let generation = self.tables.generations[stripe].load(SeqCst);
        self.tables
            .live
            .load(SeqCst)
            .then_some(Ticket { stripe, generation })
    }

    /// Keeps the value `value` makes, read from Redis under `ticket`, until
    /// Redis drops it (`stale` past the end of its freshness); unless `key`
    /// was invalidated since the ticket was taken.
    fn insert(
        &self,
        table: &Table,
        ticket: Ticket,
        key: &str,
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
        table.insert(key.to_owned(), entry);
        // An invalidation bumps the generation before it removes keys, so
        // either it removes this entry, or this check sees the bump.
        let generation = &self.tables.generations[ticket.stripe];
        if generation.load(SeqCst) != ticket.generation || !self.tables.live.load(SeqCst) {
            table.invalidate(key);
        }
    }
}

/// The longest an entry is kept (about 100 years), so an instant can be computed.
const MAX_LIFE: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

impl Tables {
    fn each(&self, mut f: impl FnMut(&Table)) {
        if let Some(shared) = &self.shared {
            f(shared);
        }
        let own = self.own.read().unwrap_or_else(PoisonError::into_inner);
        own.values().for_each(f);
    }

    /// Drops `keys`, which another client (or this one) wrote or deleted.
    pub(crate) fn invalidate<K: AsRef<[u8]>>(&self, keys: &[K]) {
        for key in keys {
            let Ok(key) = std::str::from_utf8(key.as_ref()) else {
                // Our keys are UTF-8; another client's key is none of ours.
                continue;
            };
            self.generations[stripe(key)].fetch_add(1, SeqCst);
            self.each(|table| table.invalidate(key));
        }
    }

    /// Drops everything (Redis flushed, or tracking went down).
    pub(crate) fn flush(&self) {
        for generation in &self.generations {
            generation.fetch_add(1, SeqCst);
        }
        self.each(|table| table.invalidate_all());
    }

    /// Tracking came up (inserts allowed) or went down (flush, no inserts).
    pub(crate) fn set_live(&self, live: bool) {
        if !live {
            self.live.store(false, SeqCst);
            self.flush();
        } else {
            self.live.store(true, SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: Meta = Meta {
        fresh_until_ms: u64::MAX / 2,
        compute_ms: 0,
    };

    fn live_tier() -> Local {
        let local = Local::new(Some(100), crate::tracking::Start::none());
        local.tables.set_live(true);
        local
    }

    fn tier<'a, V: Clone + Send + Sync + 'static>(
        local: &'a Local,
        name: &'static str,
    ) -> Tier<'a, V> {
        local
            .tier(name, None, Some(Kit::of()), Duration::ZERO)
            .unwrap()
    }

    fn read<V: Clone + Send + Sync + 'static>(tier: &Tier<'_, V>, key: &str, value: V) {
        let ticket = tier.ticket(key).unwrap();
        tier.keep(ticket, key, &value, META);
    }

    #[test]
    fn a_value_read_under_a_valid_ticket_is_kept_and_cloned_out() {
        let local = live_tier();
        read(&tier(&local, "f"), "k", vec![1u8, 2]);
        assert_eq!(
            tier::<Vec<u8>>(&local, "f").get("k"),
            Some((vec![1, 2], META))
        );
        assert_eq!(
            tier::<u32>(&local, "f").get("k"),
            None,
            "another type is a miss"
        );
    }

    #[test]
    fn an_invalidation_between_ticket_and_insert_keeps_the_value_out() {
        let local = live_tier();
        let tier = tier::<u8>(&local, "f");
        let ticket = tier.ticket("k").unwrap();
        local.tables.invalidate(&["k"]);
        tier.keep(ticket, "k", &1, META);
        assert_eq!(tier.get("k"), None);
    }

    #[test]
    fn invalidations_drop_keys_from_every_table() {
        let local = live_tier();
        let shared = tier::<u8>(&local, "f");
        let own = local
            .tier("g", Some(10), Some(Kit::<u8>::of()), Duration::ZERO)
            .unwrap();
        read(&shared, "a", 1);
        read(&own, "b", 1);
        read(&own, "c", 1);
        assert_eq!(
            shared.get("b"),
            None,
            "a function with `local` has its own table"
        );
        local.tables.invalidate(&["a", "b"]);
        assert_eq!(shared.get("a"), None);
        assert_eq!(own.get("b"), None);
        assert_eq!(own.get("c"), Some((1, META)));
    }

    #[test]
    fn while_tracking_is_down_the_tier_is_empty_and_takes_nothing() {
        let local = live_tier();
        let tier = tier::<u8>(&local, "f");
        read(&tier, "k", 1);
        let pending = tier.ticket("j").unwrap();
        local.tables.set_live(false);
        assert_eq!(tier.get("k"), None);
        assert!(tier.ticket("k").is_none());
        tier.keep(pending, "j", &1, META);
        assert_eq!(tier.get("j"), None);
    }

    #[test]
    fn a_function_without_local_or_kit_has_no_tier() {
        let local = Local::new(None, crate::tracking::Start::none());
        let kit = Some(Kit::<u8>::of());
        assert!(local.tier("f", None, kit, Duration::ZERO).is_none());
        assert!(local.tier("f", Some(5), kit, Duration::ZERO).is_some());
        assert!(
            local
                .tier::<u8>("f", Some(5), None, Duration::ZERO)
                .is_none()
        );
    }

    #[test]
    fn a_value_is_kept_only_while_redis_keeps_it() {
        let local = live_tier();
        let past = Meta {
            fresh_until_ms: ttl::now_ms().saturating_sub(10),
            compute_ms: 0,
        };
        let plain = tier::<u8>(&local, "f");
        plain.keep(plain.ticket("k").unwrap(), "k", &1, past);
        assert_eq!(plain.get("k"), None);
        let stale = local
            .tier("f", None, Some(Kit::<u8>::of()), Duration::from_secs(60))
            .unwrap();
        stale.keep(stale.ticket("k").unwrap(), "k", &1, past);
        assert_eq!(stale.get("k"), Some((1, past)), "`stale` values live on");
    }
}
