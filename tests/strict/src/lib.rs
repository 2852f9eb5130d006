//! Cached functions in a crate with every lint a strict library turns on:
//! what `#[redis_cached]` generates must add no warning, whatever shape the
//! function has (one-expression bodies, blocks, `?`, methods, borrowed
//! arguments, `Option` and `Result`, sync and async) and whichever argument
//! the attribute is given. Bodies are written on one line where rustfmt
//! allows it: braces nested in the generated code, around a one-expression
//! body, were an `unused_braces` warning at the user's code.
#![forbid(unsafe_code)]
#![deny(
    warnings,
    missing_docs,
    unreachable_pub,
    rust_2018_idioms,
    unused_qualifications,
    clippy::all
)]

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis_cached::{Cache, redis_cached};
use serde::{Deserialize, Serialize};

/// The cache every function here uses: in this process.
pub static CACHE: LazyLock<Cache> = LazyLock::new(Cache::in_memory);

/// How many times bodies ran.
pub static RUNS: AtomicU64 = AtomicU64::new(0);

fn ran() {
    RUNS.fetch_add(1, Ordering::Relaxed);
}

/// An error a body returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failed(pub String);

impl From<std::num::ParseIntError> for Failed {
    fn from(e: std::num::ParseIntError) -> Self {
        Self(e.to_string())
    }
}

/// A value kept in process (`local = N` needs `Clone`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// Its text.
    pub body: String,
}

/// One expression, async.
#[rustfmt::skip]
#[redis_cached(ttl = 60, cache = CACHE)]
pub async fn one_expression(x: u64) -> u64 { x + 1 }

/// One expression, sync.
#[rustfmt::skip]
#[redis_cached(ttl = 60, cache = CACHE)]
pub fn one_expression_sync(x: u64) -> u64 { x * 2 }

/// A block with statements, `?` and an early return, async.
#[redis_cached(ttl = "5m", cache = CACHE)]
pub async fn parse(text: String) -> Result<u64, Failed> {
    ran();
    if text.is_empty() {
        return Err(Failed("empty".into()));
    }
    let n: u64 = text.trim().parse()?;
    Ok(n)
}

/// The same, sync, borrowing its argument.
#[redis_cached(ttl = "5m", cache = CACHE)]
pub fn parse_sync(text: &str) -> Result<u64, Failed> {
    ran();
    let n: u64 = text.trim().parse()?;
    Ok(n)
}

/// Borrowed arguments of several kinds, one expression.
#[rustfmt::skip]
#[redis_cached(ttl = 60, cache = CACHE)]
pub fn borrowed(name: Cow<'_, str>, ids: &[u32], maybe: Option<&str>) -> usize { name.len() + ids.len() + maybe.map_or(0, str::len) }

/// Borrowed across an await.
#[rustfmt::skip]
#[redis_cached(ttl = 60, cache = CACHE)]
pub async fn borrowed_async(name: &str) -> usize { name.len() }

/// `Option`, with `cache_none = false`.
#[rustfmt::skip]
#[redis_cached(ttl = 60, cache = CACHE, cache_none = false)]
pub async fn find(id: u64) -> Option<Page> { (id > 0).then(|| Page { body: id.to_string() }) }

/// `Result` with `cache_err = true` and `unless`.
#[rustfmt::skip]
#[redis_cached(ttl = 60, cache = CACHE, cache_err = true, unless = |r: &Result<u64, Failed>| r == &Ok(0))]
pub fn checked(x: u64) -> Result<u64, Failed> { if x == 7 { Err(Failed("seven".into())) } else { Ok(x) } }

/// An expectation about the body of a free function.
#[rustfmt::skip]
#[redis_cached(ttl = 60, cache = CACHE)]
#[expect(clippy::identity_op, reason = "the expectation is the point")]
pub fn expecting(x: u64) -> u64 { x * 1 }

/// A free function whose body declares an item that names `Self`: the
/// function is still free (its siblings are not looked for in an `impl`).
#[redis_cached(ttl = 60, cache = CACHE)]
pub fn nested_item(x: u64) -> u64 {
    struct Wrap(u64);
    impl Wrap {
        fn new(x: u64) -> Self {
            Self(x)
        }
    }
    Wrap::new(x).0
}

/// Patterns in parameters.
#[redis_cached(ttl = 60, cache = CACHE)]
pub fn patterns((a, mut b): (u64, u64), mut c: u64) -> u64 {
    b += 1;
    c += 1;
    a + b + c
}

/// Generic, with a type and a const parameter.
#[rustfmt::skip]
#[redis_cached(ttl = 60, cache = CACHE)]
pub fn generic<T: Serialize + Clone, const N: usize>(value: T) -> Vec<usize> { vec![N; size_of_val(&value)] }

/// An `impl Trait` argument.
#[rustfmt::skip]
#[redis_cached(ttl = 60, cache = CACHE)]
pub fn impl_arg(name: impl AsRef<str> + Serialize) -> usize { name.as_ref().len() }

/// The attribute's other arguments, those that shape keys and storage.
#[rustfmt::skip]
#[redis_cached(
    ttl = Duration::from_secs(30),
    cache = CACHE,
    key = id % 10,
    name = "strict::keyed",
    version = 2,
    when = id != 0,
    ttl_of = |v: &u64| Duration::from_secs(*v + 1),
    compress = false,
    tags = [format!("id:{id}"), "strict"],
    crate = redis_cached,
)]
pub async fn keyed(id: u64) -> u64 { id % 10 }

/// `skip`, `lock`, `stale`, `refresh`, `beta` and `local`, async, owning its arguments (spawned refreshes).
#[rustfmt::skip]
#[redis_cached(ttl = 60, cache = CACHE, skip(verbose), lock = "5s", stale = "1m", refresh = "xfetch", beta = 1.5, local = 100, compress = true)]
pub async fn refreshed(id: u64, verbose: bool) -> Page { Page { body: if verbose { format!("page {id}") } else { id.to_string() } } }

/// The same, sync.
#[rustfmt::skip]
#[redis_cached(ttl = 60, cache = CACHE, skip(verbose), lock = 5, stale = "1m", refresh = "xfetch", local = 100)]
pub fn refreshed_sync(id: u64, verbose: bool) -> Page { Page { body: if verbose { format!("page {id}") } else { id.to_string() } } }

/// `sliding`, with a run-time TTL in seconds.
#[rustfmt::skip]
#[redis_cached(ttl = SECONDS, cache = CACHE, sliding = true)]
pub async fn sliding(id: u64) -> u64 { id }

/// Whole seconds, for `sliding`'s `ttl`.
pub const SECONDS: u64 = 60;

/// A service whose methods are cached.
#[derive(Debug, Serialize)]
pub struct Prices {
    /// Multiplies every price.
    pub rate: u64,
}

impl Prices {
    /// A method, one expression.
    #[rustfmt::skip]
    #[redis_cached(ttl = 60, cache = CACHE)]
    pub fn price(&self, item: u64) -> u64 { item * self.rate }

    /// A method, async, with a block and `?`.
    #[redis_cached(ttl = 60, cache = CACHE, skip(self))]
    pub async fn quote(&self, item: &str) -> Result<u64, Failed> {
        ran();
        let item: u64 = item.parse()?;
        Ok(item * self.rate)
    }

    /// A method on an `Arc` receiver.
    #[rustfmt::skip]
    #[redis_cached(ttl = 60, cache = CACHE, skip(self))]
    pub fn shared(self: &Arc<Self>, item: u64) -> u64 { item + self.rate }

    /// An associated function that names `Self`.
    #[rustfmt::skip]
    #[redis_cached(ttl = 60, cache = CACHE)]
    pub fn standard(rate: u64) -> Option<u64> { Self::rate_of(rate) }

    /// An associated function that names neither `self` nor `Self`.
    #[rustfmt::skip]
    #[redis_cached(ttl = 60, cache = CACHE)]
    pub async fn doubled(x: u64) -> u64 { x * 2 }

    /// A method whose cache is a field (so no `f_invalidate_all`).
    #[rustfmt::skip]
    #[redis_cached(ttl = 60, cache = *self.cache(), skip(self), siblings = false)]
    pub fn from_field(&self, x: u64) -> u64 { x + self.rate }

    /// Deprecated, with an expectation about its body (met in `f_uncached`,
    /// which holds the body of a method).
    #[rustfmt::skip]
    #[redis_cached(ttl = 60, cache = CACHE)]
    #[deprecated = "use `price`"]
    #[expect(clippy::identity_op, reason = "the expectation is the point")]
    pub fn old_price(&self, item: u64) -> u64 { item * 1 + self.rate }

    fn rate_of(rate: u64) -> Option<u64> {
        (rate > 0).then_some(rate)
    }

    fn cache(&self) -> &'static LazyLock<Cache> {
        &CACHE
    }
}

/// A trait whose implementation is cached (`siblings = false`).
pub trait Repo {
    /// A row.
    fn row(&self, id: u64) -> Option<String>;
    /// A row, async.
    fn row_async(&self, id: u64) -> impl Future<Output = Option<String>> + Send;
}

impl Repo for Prices {
    #[rustfmt::skip]
    #[redis_cached(ttl = 60, cache = CACHE, skip(self), siblings = false)]
    fn row(&self, id: u64) -> Option<String> { Some(id.to_string()) }

    #[rustfmt::skip]
    #[redis_cached(ttl = 60, cache = CACHE, skip(self), siblings = false)]
    async fn row_async(&self, id: u64) -> Option<String> { Some(format!("{id}")) }
}
