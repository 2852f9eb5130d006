//! The manual's longer pages: how the cache behaves where a paragraph on an
//! item would not do, and how to run it in production.
//!
//! Each argument of the attribute is documented on
//! [`redis_cached`](macro@crate::redis_cached), each setting of a cache on
//! [`CacheBuilder`](crate::CacheBuilder); these pages hold the rest.
//!
//! | page | for |
//! |---|---|
//! | [`features`] | what each Cargo feature enables, what a build without it refuses, why the defaults |
//! | [`connecting`] | the default cache, URLs, credentials, a `redis::Client` of your own, how connections are made |
//! | [`errors`] | what a cached call does when Redis fails: failing open, the breaker, timeouts, error kinds |
//! | [`consistency`] | concurrent misses (single flight, `lock`), early refresh and stale values, which to choose |
//! | [`local_tier`] | the in-process tier (`local`) and how client-side caching keeps it coherent |
//! | [`typed_api`] | [`Cache::get`](crate::Cache::get), `set`, `get_or_compute`: keys you name |
//! | [`key_format`] | how keys are derived and values stored |
//! | [`testing`] | `mem://` and the in-memory cache, for tests |
//! | [`metrics`] | the `metrics` feature's counters and histograms, and the per-call span |
//! | [`deploying`] | the checklist for production, ACL users |
//! | [`tls`] | `rediss://`, private CAs and mTLS, client and server side |
//! | [`signing`] | signed values, and handling the signing key |
//! | [`cluster`] | Redis Cluster |
//! | [`sentinel`] | a primary behind Redis Sentinel |
//!
//! The pages are Markdown files next to this module (`runtime/src/guide/`),
//! included as the docs of empty modules: they read as plain files in the
//! repository, and rustdoc checks their links and compiles their examples
//! as doctests.

#[doc = include_str!("features.md")]
pub mod features {}

#[doc = include_str!("connecting.md")]
pub mod connecting {}

#[doc = include_str!("errors.md")]
pub mod errors {}

#[doc = include_str!("consistency.md")]
pub mod consistency {}

#[doc = include_str!("local_tier.md")]
pub mod local_tier {}

#[doc = include_str!("typed_api.md")]
pub mod typed_api {}

#[doc = include_str!("key_format.md")]
pub mod key_format {}

#[doc = include_str!("testing.md")]
pub mod testing {}

#[doc = include_str!("metrics.md")]
pub mod metrics {}

#[doc = include_str!("deploying.md")]
pub mod deploying {}

#[doc = include_str!("tls.md")]
pub mod tls {}

#[doc = include_str!("signing.md")]
pub mod signing {}

#[doc = include_str!("cluster.md")]
pub mod cluster {}

#[doc = include_str!("sentinel.md")]
pub mod sentinel {}
