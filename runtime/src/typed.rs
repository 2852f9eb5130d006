//! The typed API: [`Cache::get`], [`set`](Cache::set),
//! [`delete`](Cache::delete), [`get_or_compute`](Cache::get_or_compute) and
//! [`try_get_or_compute`](Cache::try_get_or_compute), with their `_blocking`
//! forms (the `sync` feature), for code that can't use the attribute. A
//! door like `private.rs`: each method is one call into `call.rs` or the
//! store, driven async or on the caller's thread.
//!
//! Keys are the caller's own strings, stored as `<prefix>{<key>}`
//! (`key::named`), apart from every attribute key. Values go through the
//! same codec (envelope, signing, `max_value_size`) and counters as the
//! attribute's. The in-process tier (`local`) is not used: every read asks
//! Redis.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::{Async, Io};
#[cfg(feature = "sync")]
use crate::backend::{Blocking, block_on};
use crate::cache::Cache;
use crate::call;
use crate::codec::Reading;
use crate::error::public::Error;
use crate::spec::{Always, OkOnly, values};
use crate::ttl::Lifetime;

impl Cache {
    /// The value stored under `key` by [`set`](Self::set) or
    /// [`get_or_compute`](Self::get_or_compute), or `None` if there is none.
    ///
    /// Bytes under the key that don't decode as a `T` (another type, garbage,
    /// a value not signed with this cache's `signing_key`) are a miss,
    /// `Ok(None)`, counted in [`Stats::errors`](crate::Stats::errors) and
    /// logged. A Redis failure is returned, as by
    /// [`invalidate_all`](Self::invalidate_all). Counts a hit or a miss.
    ///
    /// The Redis key is `<prefix>{<key>}` (see the [key format](crate::guide::key_format));
    /// no attribute's key is ever one of these.
    ///
    /// ```
    /// # async fn run() -> Result<(), redis_cached::Error> {
    /// let cache = redis_cached::Cache::in_memory();
    /// let ttl = std::time::Duration::from_secs(60);
    /// cache.set("greeting", "hello", ttl).await?;
    /// assert_eq!(cache.get::<String>("greeting").await?.as_deref(), Some("hello"));
    /// assert_eq!(cache.get::<String>("farewell").await?, None);
    /// # Ok(())
    /// # }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(run()).unwrap();
    /// ```
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        self.get_with(Async, key).await
    }

    /// Blocking [`get`](Self::get), on the pool used by sync functions.
    #[cfg(feature = "sync")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sync")))]
    pub fn get_blocking<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        block_on(self.get_with(Blocking, key))
    }

    /// Stores `value` under `key` for `ttl` (`SET … PX`), replacing what the
    /// key held. A zero `ttl` stores nothing and leaves the key as it was,
    /// as a zero `ttl = EXPR` does for the attribute.
    ///
    /// A value that can't be encoded, or whose encoding is over the cache's
    /// `max_value_size`, is not stored and is returned as an error
    /// ([`ErrorKind::Encode`](crate::ErrorKind::Encode),
    /// [`TooLarge`](crate::ErrorKind::TooLarge)), as is a Redis failure.
    /// Counts a store.
    ///
    /// Any serializable value, sized or not: a `str` set here reads back as
    /// a `String`, a `[u8]` as a `Vec<u8>`.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), Error> {
        self.set_with(Async, key, value, ttl).await
    }

    /// Blocking [`set`](Self::set), on the pool used by sync functions.
    #[cfg(feature = "sync")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sync")))]
    pub fn set_blocking<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), Error> {
        block_on(self.set_with(Blocking, key, value, ttl))
    }

    /// Deletes `key`'s value, and returns whether there was one. A Redis
    /// failure is returned.
    pub async fn delete(&self, key: &str) -> Result<bool, Error> {
        let key = self.named(key);
        Ok(self.store().delete(Async, &key).await?)
    }

    /// Blocking [`delete`](Self::delete), on the pool used by sync functions.
    #[cfg(feature = "sync")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sync")))]
    pub fn delete_blocking(&self, key: &str) -> Result<bool, Error> {
        let key = self.named(key);
        Ok(block_on(self.store().delete(Blocking, &key))?)
    }

    /// The value under `key`; if there is none, awaits `compute`, stores its
    /// value for `ttl` and returns it: what `#[redis_cached]` does for a
    /// function, under a key you name.
    ///
    /// As with the attribute: concurrent calls for one key through one
    /// `Cache` run `compute` once, and the others get its value (single
    /// flight); a Redis that fails or holds bytes that don't decode as a `T`
    /// never fails the call, `compute` runs and its value is returned, the
    /// failure counted in [`Stats::errors`](crate::Stats::errors) and
    /// logged; a value over `max_value_size`, or a zero `ttl`, is returned
    /// and not stored. `compute` is called only on a miss.
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// # async fn load_profile(id: u64) -> String { format!("user {id}") }
    /// # async fn run() {
    /// let cache = redis_cached::Cache::new("redis://127.0.0.1:6379").unwrap();
    /// let id = 42;
    /// let profile: String = cache
    ///     .get_or_compute(&format!("profile:{id}"), Duration::from_secs(300), || {
    ///         load_profile(id)
    ///     })
    ///     .await;
    /// # }
    /// ```
    pub async fn get_or_compute<T, F, Fut>(&self, key: &str, ttl: Duration, compute: F) -> T
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let key = self.named(key);
        let body = async move { compute().await };
        call::call_named(Async, self, &key, ttl, values::<Always, T>(), body).await
    }

    /// Blocking [`get_or_compute`](Self::get_or_compute): `compute` runs on
    /// the caller's thread, and concurrent callers on other threads wait for it.
    #[cfg(feature = "sync")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sync")))]
    pub fn get_or_compute_blocking<T, F>(&self, key: &str, ttl: Duration, compute: F) -> T
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> T,
    {
        let key = self.named(key);
        let body = async move { compute() };
        block_on(call::call_named(
            Blocking,
            self,
            &key,
            ttl,
            values::<Always, T>(),
            body,
        ))
    }

    /// [`get_or_compute`](Self::get_or_compute) for a `compute` that can
    /// fail: an `Ok` value is stored and returned, an `Err` is returned and
    /// not stored (`E` needs no serde), as the attribute does for a function
    /// returning `Result`. Callers that waited on a failed `compute` run
    /// their own, rather than share its error.
    ///
    /// ```
    /// # async fn run() {
    /// use std::time::Duration;
    ///
    /// let cache = redis_cached::Cache::in_memory();
    /// let ttl = Duration::from_secs(60);
    /// let failed: Result<u32, String> = cache
    ///     .try_get_or_compute("rate", ttl, || async { Err("upstream down".to_owned()) })
    ///     .await;
    /// assert!(failed.is_err());
    /// let rate = cache
    ///     .try_get_or_compute("rate", ttl, || async { Ok::<u32, String>(7) })
    ///     .await;
    /// assert_eq!(rate, Ok(7));
    /// # }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(run());
    /// ```
    pub async fn try_get_or_compute<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Duration,
        compute: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let key = self.named(key);
        let body = async move { compute().await };
        call::call_named(Async, self, &key, ttl, values::<OkOnly, _>(), body).await
    }

    /// Blocking [`try_get_or_compute`](Self::try_get_or_compute).
    #[cfg(feature = "sync")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sync")))]
    pub fn try_get_or_compute_blocking<T, E, F>(
        &self,
        key: &str,
        ttl: Duration,
        compute: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Result<T, E>,
    {
        let key = self.named(key);
        let body = async move { compute() };
        block_on(call::call_named(
            Blocking,
            self,
            &key,
            ttl,
            values::<OkOnly, _>(),
            body,
        ))
    }

    /// The Redis key of the typed API's `key`.
    fn named(&self, key: &str) -> String {
        crate::key::named(self.prefix(), key)
    }

    async fn get_with<I: Io, T: DeserializeOwned>(
        &self,
        io: I,
        key: &str,
    ) -> Result<Option<T>, Error> {
        let key = self.named(key);
        let (found, _) = self.store().read_named(io, &key, Reading::of()).await?;
        Ok(found.map(|(value, _)| value))
    }

    async fn set_with<I: Io, T: Serialize + ?Sized>(
        &self,
        io: I,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), Error> {
        let key = self.named(key);
        let lifetime = Lifetime::of(ttl);
        let Some(keep) = lifetime.keep(&key) else {
            return Ok(());
        };
        let store = self.store();
        let bytes = store.try_encode(&key, value, lifetime.meta(Duration::ZERO))?;
        Ok(store.try_store(io, &key, &bytes, keep).await?)
    }
}
