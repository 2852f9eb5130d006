//! The in-process backend (`mem://`): a bounded `moka` cache that keeps the
//! semantics of the Redis backend, per-entry TTLs included.
//!
//! Each value carries the instant it expires; a [`moka::Expiry`] turns that
//! into moka's per-entry expiry, so a read after that instant misses, like a
//! `GET` after `PX` ran out. Storing over a key replaces its value and its
//! TTL, like `SET … PX`. When the cache holds `max_entries` values, the least
//! recently used ones are evicted (Redis with `maxmemory-policy allkeys-lru`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::policy::EvictionPolicy;

/// The longest TTL kept; longer ones are cut to it (about 100 years), so an
/// expiry instant can always be computed.
const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// Values of one process, bounded by entry count.
pub(crate) struct MemoryBackend {
    entries: moka::sync::Cache<String, Entry>,
}

/// One stored value, when it stops being readable, and the tag sets
/// (`tags = [...]`) it was stored in.
#[derive(Clone)]
struct Entry {
    bytes: Arc<[u8]>,
    expires_at: Instant,
    sets: Arc<[String]>,
}

impl Entry {
    fn is_live(&self, now: Instant) -> bool {
        self.expires_at > now
    }

    fn remaining(&self, now: Instant) -> Duration {
        self.expires_at.saturating_duration_since(now)
    }
}

/// Tells moka when each entry expires: at its own `expires_at`, reset by every store.
struct PerEntry;

impl moka::Expiry<String, Entry> for PerEntry {
    fn expire_after_create(
        &self,
        _: &String,
        entry: &Entry,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(entry.remaining(created_at))
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        updated_at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.remaining(updated_at))
    }
}

impl MemoryBackend {
    /// An empty store holding at most `max_entries` values.
    pub(crate) fn new(max_entries: u64) -> Self {
        let entries = moka::sync::Cache::builder()
            .max_capacity(max_entries)
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(PerEntry)
            .build();
        Self { entries }
    }

    /// The bytes stored under `key`, unless absent or expired.
    pub(crate) fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.entries.get(key).map(|entry| entry.bytes.to_vec())
    }

    /// The bytes stored under `key`, unless absent or expired, whose TTL is
    /// reset to `ttl_ms` milliseconds in the same step (`GETEX … PX`).
    pub(crate) fn get_ex(&self, key: &str, ttl_ms: u64) -> Option<Vec<u8>> {
        use moka::ops::compute::{CompResult, Op};
        let expires_at = Instant::now() + Duration::from_millis(ttl_ms).min(MAX_TTL);
        let result = self.entries.entry_by_ref(key).and_compute_with(|found| {
            match found.filter(|entry| entry.value().is_live(Instant::now())) {
                Some(entry) => Op::Put(Entry {
                    expires_at,
                    ..entry.value().clone()
                }),
                None => Op::Nop,
            }
        });
        match result {
            CompResult::ReplacedWith(entry) | CompResult::Inserted(entry) => {
                Some(entry.value().bytes.to_vec())
            }
            _ => None,
        }
    }

    /// Stores `bytes` under `key` for `ttl_ms` milliseconds, replacing any value and TTL.
    pub(crate) fn set(&self, key: &str, bytes: &[u8], ttl_ms: u64) {
        self.set_tagged(key, bytes, ttl_ms, &[]);
    }

    /// [`set`](Self::set), the value belonging to the tag sets `sets`.
    /// Here an entry carries its tags: there is no set to keep, and an
    /// entry stored again without a tag no longer has it.
    pub(crate) fn set_tagged(&self, key: &str, bytes: &[u8], ttl_ms: u64, sets: &[String]) {
        let ttl = Duration::from_millis(ttl_ms).min(MAX_TTL);
        let entry = Entry {
            bytes: bytes.into(),
            expires_at: Instant::now() + ttl,
            sets: sets.into(),
        };
        self.entries.insert(key.to_owned(), entry);
    }

    /// Deletes every entry stored in the tag set `tag_set`; how many were live.
    pub(crate) fn invalidate_tag(&self, tag_set: &str) -> u64 {
        let tagged: Vec<Arc<String>> = self
            .entries
            .iter()
            .filter(|(_, entry)| entry.sets.iter().any(|set| set == tag_set))
            .map(|(key, _)| key)
            .collect();
        let deleted = tagged.iter().filter(|key| self.del(key)).count();
        u64::try_from(deleted).unwrap_or(u64::MAX)
    }

    /// Deletes `key`; whether it held a live value.
    pub(crate) fn del(&self, key: &str) -> bool {
        let removed = self.entries.remove(key);
        removed.is_some_and(|entry| entry.is_live(Instant::now()))
    }

    /// Deletes every key starting with `prefix`; how many held live values.
    pub(crate) fn delete_matching(&self, prefix: &str) -> u64 {
        let matching: Vec<Arc<String>> = self
            .entries
            .iter()
            .map(|(key, _)| key)
            .filter(|key| key.starts_with(prefix))
            .collect();
        let deleted = matching.iter().filter(|key| self.del(key)).count();
        u64::try_from(deleted).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_read_until_its_ttl_runs_out() {
        let store = MemoryBackend::new(100);
        store.set("short", b"s", 60);
        store.set("long", b"l", 60_000);
        assert_eq!(store.get("short").as_deref(), Some(&b"s"[..]));
        std::thread::sleep(Duration::from_millis(90));
        assert_eq!(store.get("short"), None);
        assert_eq!(store.get("long").as_deref(), Some(&b"l"[..]));
        assert!(
            !store.del("short"),
            "an expired key does not count as deleted"
        );
        assert!(store.del("long"));
        assert!(!store.del("long"));
    }

    #[test]
    fn storing_again_replaces_value_and_ttl() {
        let store = MemoryBackend::new(100);
        store.set("k", b"old", 60_000);
        store.set("k", b"new", 60);
        assert_eq!(store.get("k").as_deref(), Some(&b"new"[..]));
        std::thread::sleep(Duration::from_millis(90));
        assert_eq!(store.get("k"), None, "the second TTL applies");

        store.set("k", b"again", 60);
        store.set("k", b"kept", 60_000);
        std::thread::sleep(Duration::from_millis(90));
        assert_eq!(store.get("k").as_deref(), Some(&b"kept"[..]));
    }

    #[test]
    fn get_ex_resets_the_ttl_of_a_live_value_only() {
        let store = MemoryBackend::new(100);
        store.set("k", b"v", 150);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(store.get_ex("k", 150).as_deref(), Some(&b"v"[..]));
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(store.get("k").as_deref(), Some(&b"v"[..]), "slid");
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(store.get_ex("k", 150), None, "expired, and not revived");
        assert_eq!(store.get("k"), None);
        assert_eq!(store.get_ex("absent", 150), None);
        assert_eq!(store.get("absent"), None, "nothing is created");
    }

    #[test]
    fn it_holds_at_most_max_entries_and_keeps_the_recent_ones() {
        let store = MemoryBackend::new(10);
        for i in 0..100 {
            store.set(&format!("k{i}"), &[i], 60_000);
        }
        store.entries.run_pending_tasks();
        assert_eq!(store.entries.entry_count(), 10);
        assert_eq!(store.get("k99").as_deref(), Some(&[99][..]));
        assert_eq!(store.get("k0"), None);
    }

    #[test]
    fn delete_matching_takes_exactly_the_prefix() {
        let store = MemoryBackend::new(1_000);
        for i in 0..300 {
            store.set(&format!("app:f:{{{i}}}"), b"v", 60_000);
        }
        store.set("app:f2:{0}", b"v", 60_000);
        store.set("app:g:{0}", b"v", 60_000);
        store.set("app:f:{gone}", b"v", 1);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(store.delete_matching("app:f:"), 300);
        assert_eq!(store.get("app:f:{7}"), None);
        assert_eq!(store.get("app:f2:{0}").as_deref(), Some(&b"v"[..]));
        assert_eq!(store.get("app:g:{0}").as_deref(), Some(&b"v"[..]));
        assert_eq!(store.delete_matching("app:f:"), 0);
    }

    #[test]
    fn invalidate_tag_deletes_the_entries_stored_with_it_now() {
        let store = MemoryBackend::new(100);
        let sets = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        store.set_tagged("a", b"v", 60_000, &sets(&["t", "u"]));
        store.set_tagged("b", b"v", 60_000, &sets(&["t"]));
        store.set_tagged("c", b"v", 60_000, &sets(&["u"]));
        store.set("d", b"v", 60_000);
        store.set_tagged("e", b"v", 60_000, &sets(&["t"]));
        store.set("e", b"v", 60_000);
        assert_eq!(store.invalidate_tag("t"), 2, "e was stored again untagged");
        assert_eq!(store.get("a"), None);
        assert_eq!(store.get("b"), None);
        assert!(store.get("c").is_some() && store.get("d").is_some() && store.get("e").is_some());
        assert_eq!(store.invalidate_tag("t"), 0);
        assert_eq!(store.get_ex("c", 60_000).as_deref(), Some(&b"v"[..]));
        assert_eq!(store.invalidate_tag("u"), 1, "get_ex keeps the tags");
    }
}
