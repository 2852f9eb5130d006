//! Shapes of functions the attribute accepts and must keep as written.
#![deny(warnings)]

use std::borrow::Cow;

use redis_cached::redis_cached;
use serde::{Deserialize, Serialize};

// A user's own names must not break the generated code.
#[allow(dead_code)]
type Result = ();
#[allow(dead_code)]
mod redis {}
#[allow(dead_code)]
mod serde_json {}

#[derive(Serialize, Deserialize)]
pub struct Point {
    x: i32,
    y: i32,
}

/// Doc comments and visibility survive.
#[redis_cached(ttl = 60)]
pub fn plain(a: u64, b: &str) -> String {
    format!("{a}{b}")
}

#[redis_cached(ttl = "1h30m")]
pub(crate) async fn async_result(id: u64) -> std::result::Result<Point, std::io::Error> {
    if id == 0 {
        return Err(std::io::Error::other("zero"));
    }
    let n: i32 = "3".parse().map_err(std::io::Error::other)?;
    Ok(Point { x: n, y: n })
}

#[redis_cached(ttl = 5)]
fn option(id: u64) -> Option<Point> {
    (id > 0).then_some(Point { x: 1, y: 2 })
}

#[redis_cached(ttl = 5)]
fn patterns(Point { x, y }: Point, (a, mut b): (i32, i32), mut c: i32) -> i32 {
    b += 1;
    c += 1;
    x + y + a + b + c
}

#[redis_cached(ttl = 5)]
fn generic<T>(value: T) -> Vec<T>
where
    T: Serialize + for<'de> Deserialize<'de>,
{
    vec![value]
}

#[redis_cached(ttl = 5)]
fn borrowed(name: Cow<'_, str>, ids: &[u32], maybe: Option<&str>) -> usize {
    name.len() + ids.len() + maybe.map_or(0, str::len)
}

#[redis_cached(ttl = 5)]
async fn borrows_across_await(name: &str) -> usize {
    tokio::task::yield_now().await;
    name.len()
}

/// # Safety
/// None needed; `unsafe` must survive the rewrite.
#[redis_cached(ttl = 5)]
unsafe fn unsafe_fn(x: u8) -> u8 {
    x
}

#[redis_cached(ttl = 5)]
fn early_return(x: u8) -> u8 {
    if x > 10 {
        return 10;
    }
    x
}

pub struct Meters(pub u32);

impl Meters {
    #[redis_cached(ttl = 5)]
    pub fn double(x: u32) -> u32 {
        x * 2
    }
}

fn main() {
    let _ = plain(1, "a");
    let _ = async_result(1);
    let _ = option(1);
    let _ = patterns(Point { x: 1, y: 2 }, (1, 2), 3);
    let _ = generic(1u8);
    let _ = borrowed(Cow::Borrowed("a"), &[1], None);
    let _ = borrows_across_await("a");
    // SAFETY: unsafe_fn has no preconditions.
    let _ = unsafe { unsafe_fn(1) };
    let _ = early_return(1);
    let _ = Meters::double(1);
}

mod methods_and_arguments {
    use std::sync::Arc;

    use redis_cached::redis_cached;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize)]
    pub struct Keyed {
        pub id: u32,
    }

    pub struct Service;

    #[derive(Debug, Serialize, Deserialize)]
    pub enum LoadError {
        Missing,
    }

    impl Keyed {
        #[redis_cached(ttl = 5)]
        pub fn by_ref(&self, x: u32) -> u32 {
            self.id + x
        }

        #[redis_cached(ttl = 5, skip(self))]
        pub async fn by_arc(self: &Arc<Self>, x: u32) -> u32 {
            self.id + x
        }
    }

    impl Service {
        #[redis_cached(ttl = 5, skip(self), name = "svc::get", version = 3, cache_none = false)]
        pub fn get(&self, id: u32) -> Option<u32> {
            Some(id)
        }

        #[redis_cached(ttl = 5, skip(self), cache_err = true, unless = |r: &Result<u32, LoadError>| r.is_err())]
        pub async fn load(&self, id: u32) -> Result<u32, LoadError> {
            if id == 0 { Err(LoadError::Missing) } else { Ok(id) }
        }

        #[redis_cached(ttl = 5, key = id % 10)]
        pub fn bucket(_service: &Service, id: u32) -> u32 {
            id % 10
        }
    }

    #[redis_cached(ttl = 5)]
    pub fn impl_trait_arg(name: impl AsRef<str> + Serialize) -> usize {
        name.as_ref().len()
    }

    pub trait Repo {
        fn find(&self, id: u32) -> Option<u32>;
    }

    impl Repo for Service {
        #[redis_cached(ttl = 5, skip(self), siblings = false)]
        fn find(&self, id: u32) -> Option<u32> {
            Some(id)
        }
    }

    pub async fn use_siblings() {
        let arc = Arc::new(Keyed { id: 1 });
        let _ = arc.by_arc_refresh(1).await;
        let _ = Keyed { id: 1 }.by_ref_uncached(2);
        let _: Result<bool, redis_cached::Error> = Service.get_invalidate(1);
        let _: Result<u64, redis_cached::Error> = Service::load_invalidate_all().await;
        let _ = Service::bucket_refresh(&Service, 3);
        let _ = impl_trait_arg_invalidate("x");
        let _ = Service.find(1);
    }
}

mod refreshing {
    use redis_cached::redis_cached;

    #[redis_cached(ttl = "1m", stale = "5m", refresh = "xfetch", beta = 2, lock = "10s")]
    pub async fn owned(id: u64, name: String) -> String {
        format!("{id}{name}")
    }

    #[redis_cached(ttl = "1m", stale = "5m")]
    pub async fn borrowed(name: &str) -> usize {
        name.len()
    }

    #[redis_cached(ttl = "1m", refresh = "xfetch")]
    pub fn sync(id: u64) -> u64 {
        id
    }

    pub fn assert_send() {
        fn is_send<T: Send>(_: T) {}
        is_send(owned(1, String::new()));
        is_send(borrowed("x"));
    }
}

mod cache_expressions {
    use std::sync::{Arc, LazyLock};

    use redis_cached::{Cache, redis_cached};

    static LAZY: LazyLock<Cache> = LazyLock::new(Cache::in_memory);
    static ARC: LazyLock<Arc<Cache>> = LazyLock::new(|| Arc::new(Cache::in_memory()));

    fn by_ref() -> &'static Cache {
        &LAZY
    }

    pub struct Repo {
        cache: Cache,
    }

    #[redis_cached(ttl = 5, cache = LAZY)]
    pub fn lazy(x: u8) -> u8 {
        x
    }

    #[redis_cached(ttl = 5, cache = *ARC)]
    pub fn arc(x: u8) -> u8 {
        x
    }

    #[redis_cached(ttl = 5, cache = by_ref())]
    pub fn reference(x: u8) -> u8 {
        x
    }

    impl Repo {
        #[redis_cached(ttl = 5, cache = self.cache, skip(self), siblings = false)]
        pub fn field(&self, x: u8) -> u8 {
            x
        }
    }
}

/// `local = N`: values kept decoded in process, cloned out on a hit.
pub mod local_tier {
    use redis_cached::redis_cached;
    use serde::{Deserialize, Serialize, de::DeserializeOwned};

    #[derive(Clone, Serialize, Deserialize)]
    pub struct Page {
        body: String,
    }

    #[redis_cached(ttl = 5, local = 100)]
    pub fn page(id: u64) -> Page {
        Page {
            body: id.to_string(),
        }
    }

    #[redis_cached(ttl = 5, local = 10, cache_none = false)]
    pub fn maybe(id: u64) -> Option<Page> {
        (id > 0).then(|| page(id))
    }

    #[redis_cached(ttl = "1m", stale = "5m", local = 10)]
    pub async fn spawning(id: u64) -> Result<u64, std::io::Error> {
        Ok(id)
    }

    #[redis_cached(ttl = 5, local = 10)]
    pub async fn borrowing(name: &str) -> String {
        name.to_owned()
    }

    #[redis_cached(ttl = 5, local = 10)]
    pub fn generic<T>(x: T) -> T
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        x
    }
}

mod run_time_ttl_and_condition {
    use std::time::Duration;

    use redis_cached::redis_cached;

    pub struct Settings {
        pub ttl: Duration,
    }

    pub fn settings() -> &'static Settings {
        static SETTINGS: Settings = Settings {
            ttl: Duration::from_secs(30),
        };
        &SETTINGS
    }

    const SECONDS: u64 = 60;

    #[redis_cached(ttl = settings().ttl, when = id != 0)]
    pub fn by_duration(id: u64) -> u64 {
        id
    }

    #[redis_cached(ttl = SECONDS, when = !name.is_empty())]
    pub async fn by_seconds(name: &str) -> String {
        name.to_owned()
    }

    #[redis_cached(ttl = &settings().ttl, stale = "1m")]
    pub fn by_reference(id: u64) -> u64 {
        id
    }

    fn own_ttl(n: &u64) -> Duration {
        Duration::from_secs(*n)
    }

    #[redis_cached(ttl = settings().ttl, sliding = true, when = id > 1)]
    pub async fn sliding(id: u64) -> Vec<u64> {
        vec![id]
    }

    #[redis_cached(ttl = 60, sliding = false, local = 10)]
    pub fn not_sliding(id: u64) -> u64 {
        id
    }

    #[redis_cached(ttl = 60, ttl_of = own_ttl)]
    pub async fn of_a_result(id: u64) -> Result<u64, std::io::Error> {
        Ok(id)
    }

    #[redis_cached(ttl = settings().ttl, ttl_of = |v: &Option<u64>| Duration::from_secs(v.unwrap_or(1)))]
    pub fn of_an_option(id: u64) -> Option<u64> {
        Some(id)
    }
}
