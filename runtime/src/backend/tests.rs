//! The Redis and in-memory backends give the same answers to the same
//! operations: one suite, run on a throwaway `redis-server` and on memory.

use std::time::Duration;

use harness::Server;

use super::{Backend, MemoryBackend, RedisBackend, Timeouts, match_prefix};
use crate::backend::{Async, Blocking, Io, block_on};

/// A prefix with every glob character Redis knows, so an unescaped `MATCH`
/// would take the decoys below too.
const PREFIX: &str = r"a*b?[1]\:f:";
const DECOYS: [&str; 4] = [r"a*b?[1]\:f", r"aXbY1\:f:{0}", r"a*b?[1]\:g:{0}", "f:{0}"];
/// More than one `SCAN … COUNT 500` step returns.
const MATCHING: usize = 1_200;

/// A throwaway `redis-server` (the workspace's test harness starts it and
/// waits until it answers), and a backend on it.
fn redis() -> (Server, Backend) {
    let server = Server::start();
    let timeouts = Timeouts {
        connect: Duration::from_secs(1),
        response: Duration::from_secs(1),
    };
    let backend = RedisBackend::new(
        server.url(),
        &Default::default(),
        &Default::default(),
        timeouts,
        2,
    )
    .unwrap();
    let backend = Backend::Redis(backend);
    block_on(backend.ping(Blocking)).expect("the backend reaches the server");
    (server, backend)
}

fn memory() -> Backend {
    Backend::Memory(MemoryBackend::new(10_000))
}

async fn suite<I: Io>(io: I, store: &Backend) {
    store.set(io, "k", b"v", 60_000).await.unwrap();
    assert_eq!(
        store.get(io, "k").await.unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert!(store.del(io, "k").await.unwrap());
    assert!(!store.del(io, "k").await.unwrap());
    assert_eq!(store.get(io, "k").await.unwrap(), None);

    store.set(io, "brief", b"v", 50).await.unwrap();
    io.sleep(Duration::from_millis(80)).await;
    assert_eq!(store.get(io, "brief").await.unwrap(), None);
    assert!(
        !store.del(io, "brief").await.unwrap(),
        "expired keys are not deleted"
    );

    for decoy in DECOYS {
        store.set(io, decoy, b"keep", 60_000).await.unwrap();
    }
    for i in 0..MATCHING {
        let key = format!("{PREFIX}{{{i}}}");
        store.set(io, &key, b"v", 60_000).await.unwrap();
    }
    assert_eq!(
        store.delete_matching(io, PREFIX).await.unwrap(),
        MATCHING as u64
    );
    let gone = format!("{PREFIX}{{7}}");
    assert_eq!(store.get(io, &gone).await.unwrap(), None);
    for decoy in DECOYS {
        let kept = store.get(io, decoy).await.unwrap();
        assert_eq!(kept.as_deref(), Some(&b"keep"[..]), "{decoy}");
    }
    assert_eq!(store.delete_matching(io, PREFIX).await.unwrap(), 0);

    assert!(store.try_lock(io, "l", "me", 60_000).await.unwrap());
    assert_eq!(
        store.peek(io, "k", "l").await.unwrap().0,
        None,
        "no value yet"
    );
    assert!(store.unlock(io, "l", "me").await.unwrap());
}

#[test]
fn redis_driven_on_the_callers_thread() {
    let (_server, store) = redis();
    block_on(suite(Blocking, &store));
}

#[test]
fn memory_driven_on_the_callers_thread() {
    block_on(suite(Blocking, &memory()));
}

#[tokio::test]
async fn redis_async() {
    let (_server, store) = redis();
    suite(Async, &store).await;
}

#[tokio::test]
async fn memory_async() {
    suite(Async, &memory()).await;
}

#[test]
fn a_lock_is_released_by_its_owner_only() {
    let (_server, store) = redis();
    let io = Blocking;
    assert!(block_on(store.try_lock(io, "l", "me", 60_000)).unwrap());
    assert!(!block_on(store.try_lock(io, "l", "you", 60_000)).unwrap());
    assert!(!block_on(store.unlock(io, "l", "you")).unwrap());
    assert!(block_on(store.peek(io, "k", "l")).unwrap().1, "still held");
    assert!(block_on(store.unlock(io, "l", "me")).unwrap());
    assert!(!block_on(store.peek(io, "k", "l")).unwrap().1);
}

#[test]
fn glob_characters_in_a_prefix_are_escaped() {
    assert_eq!(match_prefix("app:"), "app:*");
    assert_eq!(match_prefix(""), "*");
    assert_eq!(match_prefix(r"a*b?[1]\:"), r"a\*b\?\[1\]\\:*");
}

#[test]
fn unusable_returns_its_message() {
    let store = Backend::Unusable("bad url".to_owned());
    let err = block_on(store.delete_matching(Blocking, "p")).unwrap_err();
    assert!(err.to_string().contains("bad url"), "{err}");
    assert!(block_on(store.del(Blocking, "k")).is_err());
}
