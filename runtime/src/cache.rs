//! The [`Cache`] handle: one store (a Redis deployment, or this process's
//! memory) plus the settings and counters shared by every function cached
//! in it. Made by [`CacheBuilder`](crate::CacheBuilder) (`builder.rs`);
//! what it holds is the internal [`Store`] (`store.rs`).

use std::sync::Arc;

use crate::backend::Async;
use crate::backend::Backend;
#[cfg(feature = "sync")]
use crate::backend::{Blocking, block_on};
use crate::error::public::Error;
use crate::metrics::Stats;
use crate::store::Store;

/// A handle to a cache: cheap to clone, safe to share between threads and runtimes.
///
/// Building one never touches the network; the connection is made on first
/// use and re-made when it breaks.
///
/// ```
/// use std::time::Duration;
/// use redis_cached::Cache;
///
/// let cache = Cache::builder("redis://127.0.0.1:6379/0")
///     .prefix("shop:")
///     .connect_timeout(Duration::from_millis(250))
///     .build()
///     .unwrap();
/// assert_eq!(cache.prefix(), "shop:");
/// ```
#[derive(Clone)]
pub struct Cache {
    store: Arc<Store>,
}

impl Cache {
    /// A cache whose every operation fails with `message`: cached calls run
    /// their bodies, and the failure is logged and counted.
    pub(crate) fn unusable(message: String) -> Self {
        Self::from_store(Store::new(
            Backend::Unusable(message),
            String::new(),
            // No limit: a call's write then fails with the cache's error, not
            // with a size limit no one set.
            usize::MAX,
        ))
    }

    pub(crate) fn from_store(store: Store) -> Self {
        Self {
            store: Arc::new(store),
        }
    }

    /// What this handle holds, for the calls of `call.rs`.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The string every key of this cache starts with.
    pub fn prefix(&self) -> &str {
        self.store.prefix()
    }

    /// What the cache's counters read now.
    pub fn stats(&self) -> Stats {
        self.store.stats()
    }

    /// Checks that Redis answers, connecting if needed (for health checks and
    /// start-up). An in-memory cache always answers.
    ///
    /// It always asks Redis, even while cached calls skip it after recent
    /// failures, and a success lets them use it again. The error says why:
    /// [`ErrorKind::Auth`](crate::ErrorKind::Auth) for a refused password,
    /// `Connection` or `Timeout` for a Redis that can't be reached.
    pub async fn ping(&self) -> Result<(), Error> {
        Ok(self.store.ping(Async).await?)
    }

    /// Blocking [`ping`](Self::ping), on the pool used by sync functions.
    #[cfg(feature = "sync")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sync")))]
    pub fn ping_blocking(&self) -> Result<(), Error> {
        Ok(block_on(self.store.ping(Blocking))?)
    }

    /// Deletes every cached value of the function `name`, for all arguments,
    /// and returns how many were deleted: the next call of each recomputes.
    ///
    /// `name` is the function's name as its keys hold it: the attribute's
    /// `name = "…"` if it has one, else `module::path::fn_name`, e.g.
    /// `concat!(module_path!(), "::price")` from the function's own module.
    /// For a method it is `module::path::method`, without the type:
    /// same-named methods of several types in one module are invalidated
    /// together (give them distinct `name`s to keep them apart). Other
    /// functions' entries, including those of a function whose name merely
    /// starts the same (`price_eu`), are kept. The generated
    /// `f_invalidate_all()` calls this with `f`'s name and cache.
    ///
    /// On Redis this walks the keys with `SCAN … MATCH <prefix><name>:*`
    /// (never `KEYS`, so Redis keeps serving other clients) and deletes them
    /// with `UNLINK` in batches; glob characters in the prefix or name match
    /// only themselves. A call that stores a value while this runs may keep it.
    /// Unlike a cached call, this does not fail open: a Redis error is returned.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), redis_cached::Error> {
    /// let cache = redis_cached::default_cache();
    /// let deleted = cache.invalidate_all("shop::prices::price").await?;
    /// println!("dropped {deleted} cached prices");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn invalidate_all(&self, name: &str) -> Result<u64, Error> {
        let prefix = self.function_prefix(name);
        Ok(self.store.delete_matching(Async, &prefix).await?)
    }

    /// Blocking [`invalidate_all`](Self::invalidate_all), for sync code, on
    /// the pool used by sync functions.
    #[cfg(feature = "sync")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sync")))]
    pub fn invalidate_all_blocking(&self, name: &str) -> Result<u64, Error> {
        let prefix = self.function_prefix(name);
        Ok(block_on(self.store.delete_matching(Blocking, &prefix))?)
    }

    /// Deletes every cached value stored with the tag `tag` (by functions
    /// with `tags = [...]`, across functions) and returns how many were
    /// deleted: the next call of each recomputes.
    ///
    /// On Redis the entries are found in the tag's set (see the
    /// [key format](crate::guide::key_format)), which this empties; only keys of this cache's entries
    /// are ever deleted, whatever the set holds. A call that stores a value
    /// while this runs may keep it. Unlike a cached call, this does not
    /// fail open: a Redis error is returned, and calling again finishes
    /// the job.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), redis_cached::Error> {
    /// let cache = redis_cached::default_cache();
    /// let deleted = cache.invalidate_tag("user:7").await?;
    /// println!("dropped {deleted} cached values of user 7");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn invalidate_tag(&self, tag: &str) -> Result<u64, Error> {
        Ok(self.store.invalidate_tag(Async, tag).await?)
    }

    /// Blocking [`invalidate_tag`](Self::invalidate_tag), for sync code, on
    /// the pool used by sync functions.
    #[cfg(feature = "sync")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sync")))]
    pub fn invalidate_tag_blocking(&self, tag: &str) -> Result<u64, Error> {
        Ok(block_on(self.store.invalidate_tag(Blocking, tag))?)
    }

    /// The start shared by every key of the function `name`, and by no
    /// other function's: `<prefix><name>:{` (names can't hold `{`, so
    /// `m::f` doesn't catch `m::f::g:{…}` or `m::f_eu:{…}`).
    fn function_prefix(&self, name: &str) -> String {
        format!("{}{}:{{", self.prefix(), name)
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("prefix", &self.prefix())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, feature = "sync", feature = "memory"))]
mod tests {
    use super::*;

    #[test]
    fn mem_url_makes_an_in_memory_cache_and_nothing_else_follows_it() {
        let cache = Cache::builder("mem://").prefix("p:").build().unwrap();
        assert!(matches!(cache.store.backend(), Backend::Memory(_)));
        assert_eq!(cache.prefix(), "p:");
        let err = Cache::new("mem://somewhere").unwrap_err();
        assert_eq!(err.kind(), crate::error::public::ErrorKind::Config, "{err}");
        assert!(err.to_string().contains("mem://somewhere"), "{err}");
        assert!(matches!(
            Cache::in_memory().store.backend(),
            Backend::Memory(_)
        ));
    }

    #[test]
    fn invalidate_all_takes_one_function_under_the_cache_prefix() {
        let cache = Cache::builder("mem://").prefix("app:").build().unwrap();
        let store = cache.store();
        let ttl = std::time::Duration::from_secs(60);
        let meta = crate::codec::Meta {
            fresh_until_ms: u64::MAX,
            compute_ms: 0,
        };
        for (i, key) in ["app:m::f:{1}", "app:m::f:{2}", "app:m::f2:{1}", "m::f:{3}"]
            .into_iter()
            .enumerate()
        {
            let bytes = store
                .encode(crate::codec::Codec::of(), key, &i, meta, None)
                .unwrap();
            block_on(store.store(Blocking, key, &bytes, ttl));
        }
        assert_eq!(cache.invalidate_all_blocking("m::f").unwrap(), 2);
        assert!(
            block_on(store.read_bytes(Blocking, "app:m::f2:{1}"))
                .unwrap()
                .is_some()
        );
        assert!(
            block_on(store.read_bytes(Blocking, "m::f:{3}"))
                .unwrap()
                .is_some()
        );
        assert_eq!(cache.invalidate_all_blocking("m::f").unwrap(), 0);
    }

    #[test]
    fn an_unusable_cache_returns_its_error_from_explicit_calls() {
        let cache = Cache::unusable("bad url".to_owned());
        let err = cache.invalidate_all_blocking("f").unwrap_err();
        assert!(err.to_string().contains("bad url"), "{err}");
        assert!(cache.ping_blocking().is_err());
        assert_eq!(cache.stats().errors, 0, "explicit calls are not counted");
    }
}
