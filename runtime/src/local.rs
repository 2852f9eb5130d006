//! The in-process tier (L1): decoded values kept in front of Redis, so that
//! a hit costs neither a round trip nor a decode, only a clone.
//!
//! A function gets an L1 with `local = N` (its own table of at most `N`
//! values) or, with no `local` of its own, from its cache's
//! [`CacheBuilder::local`](crate::CacheBuilder::local) (one table shared by
//! all such functions). Entries are `Arc<dyn Any>` under the call's
//! [`Digest`]; the digest covers the function and its return type, so a
//! downcast can only fail on a hash collision, and a failed one is a miss.
//!
//! Coherence comes from Redis client-side caching: `tracking/` receives
//! the invalidations and `tables.rs` applies them; this file is what a call
//! sees of the tier.
//!
//! Without the `local` feature, only [`Kit`] is left (generated code still
//! names it) and no function has a tier: [`Tier`] can't be made.

use std::any::Any;
use std::sync::Arc;
#[cfg(feature = "local")]
use std::sync::{Mutex, PoisonError};
#[cfg(feature = "local")]
use std::time::Duration;

use crate::codec::Meta;
use crate::key::{Digest, Key};
#[cfg(feature = "local")]
pub(crate) use crate::tables::Ticket;
#[cfg(feature = "local")]
use crate::tables::{Kept, Table, Tables};
#[cfg(feature = "local")]
use crate::tracking::{Start, Tracker};

/// How values of type `V` go into and out of the tier, where `V` is
/// `Clone + Send + Sync + 'static` (see [`Kit::of`]); without a kit, a
/// function's values are never kept in L1.
#[cfg_attr(not(feature = "local"), allow(dead_code))]
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
#[cfg(feature = "local")]
pub(crate) struct Tier<'a, V> {
    tables: &'a Arc<Tables>,
    table: Table,
    kit: Kit<V>,
    /// How long past its `ttl` Redis keeps a value (`stale`).
    stale: Duration,
}

#[cfg(feature = "local")]
impl<V> Tier<'_, V> {
    /// The value under `key`, if the tier holds one of type `V`.
    pub(crate) fn get(&self, key: Digest) -> Option<(V, Meta)> {
        let entry = crate::tables::live(&self.table, key)?;
        let value = (self.kit.take)(&*entry.value)?;
        Some((value, entry.meta))
    }

    /// A ticket for keeping what a `GET` of `key` is about to read; `None`
    /// (keep nothing) while the tracking that would report its next write
    /// is down.
    pub(crate) fn ticket(&self, key: &Key<'_>) -> Option<Ticket> {
        self.tables.ticket(key)
    }

    /// Keeps a clone of `value`, decoded from `bytes`, which a `GET` of
    /// `key` read under `ticket`, once the tracking connection has read the
    /// same bytes (in the background: the caller does not wait).
    pub(crate) fn keep(
        &self,
        ticket: Ticket,
        key: &Key<'_>,
        value: &V,
        meta: Meta,
        bytes: Vec<u8>,
    ) {
        let kept = self.kept(value, meta);
        self.tables.fill(&self.table, ticket, key, kept, bytes);
    }

    fn kept(&self, value: &V, meta: Meta) -> Kept {
        Kept {
            value: (self.kit.keep)(value),
            meta,
            stale: self.stale,
        }
    }
}

/// The L1 tier of one Redis-backed cache.
#[cfg(feature = "local")]
pub(crate) struct Local {
    tables: Arc<Tables>,
    /// Started once, on the first use of a table.
    tracking: Mutex<Option<Tracker>>,
    /// What starts tracking: `None` once started.
    start: Mutex<Option<Start>>,
}

#[cfg(feature = "local")]
impl Local {
    /// A tier whose functions without `local = N` share `shared` entries
    /// (none if `None`), kept coherent by the tracking that `start` begins
    /// on first use.
    pub(crate) fn new(shared: Option<u64>, start: Start) -> Self {
        Self {
            tables: Arc::new(Tables::new(shared)),
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
        let table = self.tables.table(name, own)?;
        if !self.tables.is_live() {
            self.start_tracking();
        }
        Some(Tier {
            tables: &self.tables,
            table,
            kit,
            stale,
        })
    }

    /// How many keys Redis reported written to this tier's tracking.
    pub(crate) fn invalidated(&self) -> u64 {
        self.tables.invalidated()
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
}

/// Without the `local` feature no function has an in-process tier: there
/// is no value of this type, and `Store::tier` is always `None`.
#[cfg(not(feature = "local"))]
pub(crate) struct Tier<'a, V>(std::convert::Infallible, std::marker::PhantomData<&'a V>);

#[cfg(not(feature = "local"))]
impl<V> Tier<'_, V> {
    pub(crate) fn get(&self, _: Digest) -> Option<(V, Meta)> {
        match self.0 {}
    }

    pub(crate) fn ticket(&self, _: &Key<'_>) -> Option<Ticket> {
        match self.0 {}
    }

    pub(crate) fn keep(&self, ticket: Ticket, _: &Key<'_>, _: &V, _: Meta, _: Vec<u8>) {
        match ticket {}
    }
}

/// Without the `local` feature: no value of this type, as of [`Tier`].
#[cfg(not(feature = "local"))]
pub(crate) enum Ticket {}

#[cfg(all(test, feature = "local"))]
mod tests {
    use super::*;
    use crate::ttl;

    const META: Meta = Meta {
        fresh_until_ms: u64::MAX / 2,
        compute_ms: 0,
    };
    const K: Digest = Digest(1);
    const J: Digest = Digest(2);

    fn live_tier() -> Local {
        let local = Local::new(Some(100), Start::none());
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

    /// A ticket as [`Tier::ticket`] gives one, without its reader.
    fn ticket<V>(tier: &Tier<'_, V>, key: Digest) -> Option<Ticket> {
        tier.tables.bare_ticket(key, 0)
    }

    /// Keeps `value` under `ticket` as a fill that read the same bytes does.
    fn keep<V>(tier: &Tier<'_, V>, ticket: Ticket, key: Digest, value: &V, meta: Meta) {
        let kept = tier.kept(value, meta);
        tier.tables.insert(&tier.table, ticket, key, kept);
    }

    fn read<V: Clone + Send + Sync + 'static>(tier: &Tier<'_, V>, key: Digest, value: V) {
        let ticket = ticket(tier, key).unwrap();
        keep(tier, ticket, key, &value, META);
    }

    /// The Redis key name of `key`, as an invalidation message carries it.
    fn name(key: Digest) -> String {
        crate::key::Key::new(key, "p:", "m::f").text().to_owned()
    }

    #[test]
    fn a_value_read_under_a_valid_ticket_is_kept_and_cloned_out() {
        let local = live_tier();
        read(&tier(&local, "f"), K, vec![1u8, 2]);
        assert_eq!(
            tier::<Vec<u8>>(&local, "f").get(K),
            Some((vec![1, 2], META))
        );
        assert_eq!(
            tier::<u32>(&local, "f").get(K),
            None,
            "another type is a miss"
        );
    }

    #[test]
    fn an_invalidation_between_ticket_and_insert_keeps_the_value_out() {
        let local = live_tier();
        let tier = tier::<u8>(&local, "f");
        let ticket = ticket(&tier, K).unwrap();
        local.tables.invalidate(&[name(K)]);
        keep(&tier, ticket, K, &1, META);
        assert_eq!(tier.get(K), None);
    }

    #[test]
    fn invalidations_drop_keys_from_every_table() {
        let local = live_tier();
        let shared = tier::<u8>(&local, "f");
        let own = local
            .tier("g", Some(10), Some(Kit::<u8>::of()), Duration::ZERO)
            .unwrap();
        let (a, b, c) = (Digest(10), Digest(11), Digest(12));
        read(&shared, a, 1);
        read(&own, b, 1);
        read(&own, c, 1);
        assert_eq!(
            shared.get(b),
            None,
            "a function with `local` has its own table"
        );
        let lock = format!("{}:lock", name(c));
        local
            .tables
            .invalidate(&[name(a), name(b), lock, "other".to_owned()]);
        assert_eq!(shared.get(a), None);
        assert_eq!(own.get(b), None);
        assert_eq!(own.get(c), Some((1, META)), "a lock key is not c's value");
    }

    #[test]
    fn while_tracking_is_down_the_tier_is_empty_and_takes_nothing() {
        let local = live_tier();
        let tier = tier::<u8>(&local, "f");
        read(&tier, K, 1);
        let pending = ticket(&tier, J).unwrap();
        local.tables.set_live(false);
        assert_eq!(tier.get(K), None);
        assert!(ticket(&tier, K).is_none());
        keep(&tier, pending, J, &1, META);
        assert_eq!(tier.get(J), None);
    }

    #[test]
    fn a_flush_of_some_slots_drops_only_their_entries() {
        let local = live_tier();
        let tier = tier::<u8>(&local, "f");
        for (key, slot) in [(K, 1), (J, 2)] {
            let ticket = local.tables.bare_ticket(key, slot).unwrap();
            keep(&tier, ticket, key, &1, META);
        }
        let pending = local.tables.bare_ticket(Digest(3), 2).unwrap();
        local.tables.flush_slots(|slot| slot == 1);
        assert_eq!(tier.get(K), None, "slot 1 flushed");
        assert_eq!(tier.get(J), Some((1, META)), "slot 2 kept");
        keep(&tier, pending, Digest(3), &1, META);
        assert_eq!(tier.get(Digest(3)), None, "read before the flush: not kept");
    }

    #[test]
    fn a_function_without_local_or_kit_has_no_tier() {
        let local = Local::new(None, Start::none());
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
        keep(&plain, ticket(&plain, K).unwrap(), K, &1, past);
        assert_eq!(plain.get(K), None);
        let stale = local
            .tier("f", None, Some(Kit::<u8>::of()), Duration::from_secs(60))
            .unwrap();
        keep(&stale, ticket(&stale, K).unwrap(), K, &1, past);
        assert_eq!(stale.get(K), Some((1, past)), "`stale` values live on");
    }
}
