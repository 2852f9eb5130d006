//! The other contestants, and every contestant behind one interface: the
//! hand-written pattern (async and sync), the key digest of key format 2,
//! and adapters that make ours, `cached` and the hand-written code each an
//! [`AsyncCall`] or a [`SyncCall`], so one timing loop serves them all.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use bincode::config::standard;
use cached::{AsyncRedisCache, ConcurrentCachedAsync};
use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, Commands};
use serde::{Serialize, de::DeserializeOwned};

use super::{BenchError, Size, TTL, cached_small_tasks};

// ---------------------------------------------------------------------------
// The hand-written pattern

/// Misses of the hand-written functions, so a hit row can check it measured hits.
pub(super) static HAND_MISSES: AtomicU64 = AtomicU64::new(0);

/// Read-through caching as one writes it by hand over a multiplexed connection.
pub(super) async fn hand_async<S: Size>(
    conn: &mut MultiplexedConnection,
    id: u64,
) -> Result<S::V, BenchError> {
    let key = format!("hand:{}:{id}", S::KEY);
    let found: Option<Vec<u8>> = conn.get(&key).await?;
    if let Some(Ok((value, _))) =
        found.map(|bytes| bincode::serde::decode_from_slice(&bytes, standard()))
    {
        return Ok(value);
    }
    HAND_MISSES.fetch_add(1, Ordering::Relaxed);
    let value = S::make(id);
    let bytes = bincode::serde::encode_to_vec(&value, standard())?;
    let () = conn.set_ex(&key, bytes, TTL).await?;
    Ok(value)
}

/// [`hand_async`] over a plain connection.
pub(super) fn hand_sync<S: Size>(
    conn: &mut redis::Connection,
    id: u64,
) -> Result<S::V, BenchError> {
    let key = format!("hand-sync:{}:{id}", S::KEY);
    let found: Option<Vec<u8>> = conn.get(&key)?;
    if let Some(Ok((value, _))) =
        found.map(|bytes| bincode::serde::decode_from_slice(&bytes, standard()))
    {
        return Ok(value);
    }
    HAND_MISSES.fetch_add(1, Ordering::Relaxed);
    let value = S::make(id);
    let bytes = bincode::serde::encode_to_vec(&value, standard())?;
    let () = conn.set_ex(&key, bytes, TTL)?;
    Ok(value)
}

/// Key format 2's digest, as the crate computed it before BLAKE3: xxh3-128
/// over the format tag, the name, the argument's type name and bincode
/// bytes (streamed), and the return type's name.
pub(super) fn xxh3_digest<A: Serialize, R>(name: &str, arg: &A) -> u128 {
    use xxhash_rust::xxh3::Xxh3Default;
    struct Stream<'a>(&'a mut Xxh3Default);
    impl bincode::enc::write::Writer for Stream<'_> {
        fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
            self.0.update(bytes);
            Ok(())
        }
    }
    fn type_name(h: &mut Xxh3Default, name: &str) {
        h.update(&(name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
    }
    let mut h = Xxh3Default::new();
    h.update(b"redis-cached/key/2");
    type_name(&mut h, name);
    type_name(&mut h, std::any::type_name::<A>());
    let _ = bincode::serde::encode_into_writer(arg, Stream(&mut h), standard());
    type_name(&mut h, std::any::type_name::<R>());
    h.digest128()
}

// ---------------------------------------------------------------------------
// Contestants behind one interface, so one timing loop serves them all

/// A contestant called from async code.
pub(super) trait AsyncCall<V> {
    fn call(&mut self, id: u64) -> impl Future<Output = Result<V, BenchError>> + Send;
}

/// A contestant called from a plain thread.
pub(super) trait SyncCall<V> {
    fn call(&mut self, id: u64) -> Result<V, BenchError>;
}

#[derive(Clone)]
pub(super) struct HandAsync<S> {
    pub(super) conn: MultiplexedConnection,
    pub(super) size: PhantomData<S>,
}

impl<S: Size> AsyncCall<S::V> for HandAsync<S> {
    fn call(&mut self, id: u64) -> impl Future<Output = Result<S::V, BenchError>> + Send {
        hand_async::<S>(&mut self.conn, id)
    }
}

pub(super) struct HandSync<'c, S> {
    pub(super) conn: &'c mut redis::Connection,
    pub(super) size: PhantomData<S>,
}

impl<S: Size> SyncCall<S::V> for HandSync<'_, S> {
    fn call(&mut self, id: u64) -> Result<S::V, BenchError> {
        hand_sync::<S>(self.conn, id)
    }
}

#[derive(Clone, Copy)]
pub(super) struct OursAsync<S>(pub(super) PhantomData<S>);

impl<S: Size> AsyncCall<S::V> for OursAsync<S> {
    async fn call(&mut self, id: u64) -> Result<S::V, BenchError> {
        Ok(S::ours_async(id).await)
    }
}

#[derive(Clone, Copy)]
pub(super) struct OursSigned<S>(pub(super) PhantomData<S>);

impl<S: Size> AsyncCall<S::V> for OursSigned<S> {
    async fn call(&mut self, id: u64) -> Result<S::V, BenchError> {
        Ok(S::ours_signed(id).await)
    }
}

#[derive(Clone, Copy)]
pub(super) struct OursSync<S>(pub(super) PhantomData<S>);

impl<S: Size> SyncCall<S::V> for OursSync<S> {
    fn call(&mut self, id: u64) -> Result<S::V, BenchError> {
        Ok(S::ours_sync(id))
    }
}

#[derive(Clone, Copy)]
pub(super) struct OursLocal<S>(pub(super) PhantomData<S>);

impl<S: Size> AsyncCall<S::V> for OursLocal<S> {
    async fn call(&mut self, id: u64) -> Result<S::V, BenchError> {
        Ok(S::ours_local(id).await)
    }
}

#[derive(Clone, Copy)]
pub(super) struct Cached<S>(pub(super) PhantomData<S>);

impl<S: Size> AsyncCall<S::V> for Cached<S> {
    fn call(&mut self, id: u64) -> impl Future<Output = Result<S::V, BenchError>> + Send {
        S::cached(id)
    }
}

/// `cached` for the throughput rows: its own function, so that its store's
/// connection lives on the 2-worker runtime (a store stays on the runtime
/// that built it).
#[derive(Clone, Copy)]
pub(super) struct CachedTasks;

impl AsyncCall<u64> for CachedTasks {
    fn call(&mut self, id: u64) -> impl Future<Output = Result<u64, BenchError>> + Send {
        cached_small_tasks(id)
    }
}

/// `cached`'s store with client-side caching, read directly.
pub(super) struct CachedCsc<V> {
    pub(super) store: AsyncRedisCache<u64, V>,
}

impl<V> CachedCsc<V>
where
    V: Serialize + DeserializeOwned + Send + Sync + Clone,
{
    /// A read that must hit (it takes `&self`, so a warm-up can retry it).
    pub(super) async fn get(&self, id: u64) -> Result<V, BenchError> {
        match self.store.async_cache_get(&id).await {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err("cached + client-side caching: a miss where a hit was due".into()),
            Err(e) => Err(format!("cached + client-side caching: {e}").into()),
        }
    }
}

impl<V> AsyncCall<V> for CachedCsc<V>
where
    V: Serialize + DeserializeOwned + Send + Sync + Clone,
{
    fn call(&mut self, id: u64) -> impl Future<Output = Result<V, BenchError>> + Send {
        self.get(id)
    }
}
