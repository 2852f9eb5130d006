//! The process-wide default cache, used by every `#[redis_cached]` function
//! without a `cache = …` argument.

use std::sync::OnceLock;

use crate::cache::Cache;

static DEFAULT: OnceLock<Cache> = OnceLock::new();

/// The URL used when neither `REDIS_CACHED_URL` nor `REDIS_URL` is set.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// Makes `cache` the default for functions without `cache = …`.
///
/// Call it once at start-up, before the first cached call. If the default
/// was already set, or already created from the environment by a cached
/// call, nothing changes and `cache` is handed back.
///
/// ```
/// let cache = redis_cached::Cache::builder("redis://127.0.0.1:6379").prefix("app:").build().unwrap();
/// redis_cached::set_default(cache).expect("set before the first cached call");
/// assert_eq!(redis_cached::default_cache().prefix(), "app:");
/// ```
pub fn set_default(cache: Cache) -> Result<(), Cache> {
    DEFAULT.set(cache)
}

/// The default cache: the one given to [`set_default`], else one built on
/// first use from `REDIS_CACHED_URL`, else `REDIS_URL`, else [`DEFAULT_URL`].
/// `REDIS_CACHED_URL=mem://` keeps the values in this process instead
/// (see [`Cache::in_memory`]); several comma-separated URLs
/// (`redis://10.0.0.1:6379,redis://10.0.0.2:6379`) are the seed nodes of a
/// Redis Cluster (see `CacheBuilder::cluster`; the `cluster` feature).
///
/// A malformed URL in the environment does not panic: it is logged once at
/// `error` (with its password replaced by `***`), and every cached call runs
/// uncached (and counts an error, logged at `debug`).
pub fn default_cache() -> &'static Cache {
    DEFAULT.get_or_init(from_env)
}

/// The URL the default cache uses: `REDIS_CACHED_URL`, else `REDIS_URL`,
/// else [`DEFAULT_URL`].
///
/// ```
/// // With neither variable set:
/// # if std::env::var_os("REDIS_CACHED_URL").is_none() && std::env::var_os("REDIS_URL").is_none() {
/// assert_eq!(redis_cached::env_url(), redis_cached::DEFAULT_URL);
/// # }
/// ```
pub fn env_url() -> String {
    ["REDIS_CACHED_URL", "REDIS_URL"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok())
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
}

fn from_env() -> Cache {
    Cache::new(&env_url()).unwrap_or_else(|error| {
        tracing::error!(%error, "redis-cached: the default cache is unusable; cached functions run uncached");
        let message = match error.inner() {
            crate::error::Error::Config(message) => message.clone(),
            other => other.to_string(),
        };
        Cache::unusable(format!("the default cache: {message}"))
    })
}
