//! The Redis and in-memory backends give the same answers to the same
//! operations: one suite, run on a throwaway `redis-server` and on memory.

use std::time::{Duration, Instant};

use redis_test::server::RedisServer;

use super::{Backend, MemoryBackend, RedisBackend, Timeouts};

/// A prefix with every glob character Redis knows, so an unescaped `MATCH`
/// would take the decoys below too.
const PREFIX: &str = r"a*b?[1]\:f:";
const DECOYS: [&str; 4] = [r"a*b?[1]\:f", r"aXbY1\:f:{0}", r"a*b?[1]\:g:{0}", "f:{0}"];
/// More than one `SCAN … COUNT 500` step returns.
const MATCHING: usize = 1_200;

fn redis() -> (RedisServer, Backend) {
    let server = RedisServer::new();
    let (host, port) = server.host_and_port().expect("a TCP server");
    let timeouts = Timeouts {
        connect: Duration::from_secs(1),
        response: Duration::from_secs(1),
    };
    let backend = RedisBackend::new(&format!("redis://{host}:{port}"), timeouts, 2).unwrap();
    let backend = Backend::Redis(backend);
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = backend.ping_sync() {
        assert!(Instant::now() < deadline, "redis-server did not start: {e}");
        std::thread::sleep(Duration::from_millis(20));
    }
    (server, backend)
}

fn memory() -> Backend {
    Backend::Memory(MemoryBackend::new(10_000))
}

fn suite_sync(store: &Backend) {
    store.set_sync("k", b"v", 60_000).unwrap();
    assert_eq!(store.get_sync("k").unwrap().as_deref(), Some(&b"v"[..]));
    assert!(store.del_sync("k").unwrap());
    assert!(!store.del_sync("k").unwrap());
    assert_eq!(store.get_sync("k").unwrap(), None);

    store.set_sync("brief", b"v", 50).unwrap();
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(store.get_sync("brief").unwrap(), None);
    assert!(
        !store.del_sync("brief").unwrap(),
        "expired keys are not deleted"
    );

    for decoy in DECOYS {
        store.set_sync(decoy, b"keep", 60_000).unwrap();
    }
    for i in 0..MATCHING {
        store
            .set_sync(&format!("{PREFIX}{{{i}}}"), b"v", 60_000)
            .unwrap();
    }
    assert_eq!(store.delete_matching_sync(PREFIX).unwrap(), MATCHING as u64);
    assert_eq!(store.get_sync(&format!("{PREFIX}{{7}}")).unwrap(), None);
    for decoy in DECOYS {
        let kept = store.get_sync(decoy).unwrap();
        assert_eq!(kept.as_deref(), Some(&b"keep"[..]), "{decoy}");
    }
    assert_eq!(store.delete_matching_sync(PREFIX).unwrap(), 0);
}

async fn suite_async(store: &Backend) {
    store.set("k", b"v", 60_000).await.unwrap();
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert!(store.del("k").await.unwrap());
    assert!(!store.del("k").await.unwrap());
    assert_eq!(store.get("k").await.unwrap(), None);

    store.set("brief", b"v", 50).await.unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(store.get("brief").await.unwrap(), None);
    assert!(
        !store.del("brief").await.unwrap(),
        "expired keys are not deleted"
    );

    for decoy in DECOYS {
        store.set(decoy, b"keep", 60_000).await.unwrap();
    }
    for i in 0..MATCHING {
        let key = format!("{PREFIX}{{{i}}}");
        store.set(&key, b"v", 60_000).await.unwrap();
    }
    assert_eq!(
        store.delete_matching(PREFIX).await.unwrap(),
        MATCHING as u64
    );
    assert_eq!(store.get(&format!("{PREFIX}{{7}}")).await.unwrap(), None);
    for decoy in DECOYS {
        let kept = store.get(decoy).await.unwrap();
        assert_eq!(kept.as_deref(), Some(&b"keep"[..]), "{decoy}");
    }
    assert_eq!(store.delete_matching(PREFIX).await.unwrap(), 0);
}

#[test]
fn redis_sync() {
    let (_server, store) = redis();
    suite_sync(&store);
}

#[test]
fn memory_sync() {
    suite_sync(&memory());
}

#[tokio::test]
async fn redis_async() {
    let (_server, store) = redis();
    suite_async(&store).await;
}

#[tokio::test]
async fn memory_async() {
    suite_async(&memory()).await;
}

#[test]
fn unusable_returns_its_message() {
    let store = Backend::Unusable("bad url".to_owned());
    let err = store.delete_matching_sync("p").unwrap_err();
    assert!(err.to_string().contains("bad url"), "{err}");
    assert!(store.del_sync("k").is_err());
}
