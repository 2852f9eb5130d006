//! Memoize functions in Redis with one attribute.
//!
//! ```no_run
//! use redis_cached::redis_cached;
//!
//! #[redis_cached(ttl = "5m")]
//! async fn price(item: u64, region: &str) -> Result<f64, std::io::Error> {
//!     // expensive: runs only when Redis has no value for (item, region)
//!     Ok(item as f64 * 1.2)
//! }
//! ```
//!
//! Each call hashes its arguments into a key, reads the key with one `GET`,
//! and on a hit returns the stored value without running the body. On a
//! miss the body runs and its result is stored with `SET … PX <ttl>`. If Redis
//! is down, slow, or holds bytes that don't decode, the body runs and its
//! result is returned: a cache never breaks the function it caches. Such
//! failures are logged through `tracing` and counted in [`Cache::stats`].
//!
//! For tests and single-process programs, [`Cache::in_memory`] (or the URL
//! `mem://`) keeps the values in this process, with the same TTL semantics.
//!
//! Concurrent misses of one key in one process share one run of the body;
//! with `lock = "5s"`, concurrent misses across processes do too, through a
//! Redis lock next to the key.
//!
//! Next to a cached `f`, the attribute generates `f_refresh` (run and store),
//! `f_uncached` (the body alone), `f_invalidate` (delete one call's entry) and
//! `f_invalidate_all` (delete every entry of `f`); [`Cache::invalidate_all`]
//! does the latter by name, and [`Cache::invalidate_tag`] deletes the
//! entries of every function that stored them with a tag (`tags = [...]`).
//! Unlike cached calls, invalidation returns Redis errors instead of failing
//! open.
//!
//! Code that can't use the attribute reads and writes typed values under keys
//! it names, with the same encoding and counters: [`Cache::get`],
//! [`Cache::set`] and [`Cache::delete`] return Redis errors;
//! [`Cache::get_or_compute`] has the attribute's single flight and fails open
//! (`_blocking` forms for sync code).
//!
//! # Where to read on
//!
//! - [`redis_cached`](macro@redis_cached): what can be cached, every
//!   argument of the attribute (one section each, with an example), the
//!   generated functions, and which combinations are refused.
//! - [`Cache`] and [`CacheBuilder`]: a cache of your own, every setting
//!   with its default; [`default_cache`] and [`set_default`].
//! - [`guide`]: the longer pages: [connecting](guide::connecting), [when
//!   Redis fails](guide::errors), [stampedes and early
//!   refresh](guide::consistency), [the in-process tier](guide::local_tier),
//!   [the typed API](guide::typed_api), [key format](guide::key_format),
//!   [testing with `mem://`](guide::testing), [metrics](guide::metrics),
//!   [deploying](guide::deploying), [TLS](guide::tls),
//!   [signing](guide::signing), [Redis Cluster](guide::cluster),
//!   [Sentinel](guide::sentinel), and the [Cargo features](guide::features).
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backend;
mod body;
mod builder;
mod cache;
mod call;
mod codec;
mod error;
mod flight;
mod global;
pub mod guide;
mod key;
mod local;
mod lock;
mod metrics;
mod miss;
mod redact;
mod renew;
mod runtimes;
mod shape;
mod sign;
mod spec;
mod store;
#[cfg(feature = "local")]
mod tables;
mod tag;
#[cfg(feature = "local")]
mod tracking;
mod ttl;
mod typed;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use builder::CacheBuilder;
pub use cache::Cache;
pub use error::public::{Error, ErrorKind};
pub use global::{DEFAULT_URL, default_cache, env_url, set_default};
pub use metrics::Stats;
pub use redis_cached_macros::redis_cached;

// Every Rust block of README.md compiles as a doctest (`cargo test --doc`).
// Only under `cfg(doctest)`: the packaged crate has README.md elsewhere.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
