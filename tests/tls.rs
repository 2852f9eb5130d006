//! `rediss://` against a `redis-server` that speaks only TLS, with
//! certificates the test makes: cached calls hit, miss and expire as over
//! `redis://`, sync and async; a server that demands a client certificate
//! (mTLS) takes a cache that presents one and refuses one that doesn't; a
//! server certificate from a CA the cache doesn't trust is refused. A
//! refusal is an error of kind `Connection` from `ping` that names its
//! cause and shows no key material, and cached calls run uncached. The
//! in-process tier's tracking connection works over TLS too.

mod support;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use redis_cached::{Cache, ErrorKind, redis_cached};
use support::tls::{Pki, TlsRedis};
use support::{CacheSlot, Calls, eventually};

/// Every text an error can be printed as, sources included.
fn texts(error: &redis_cached::Error) -> String {
    let mut all = format!("{error}\n{error:#}\n{error:?}\n");
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        all.push_str(&format!("{s}\n{s:?}\n"));
        source = s.source();
    }
    all
}

/// Fails if `text` shows any line of the client's private key.
fn assert_no_key(pki: &Pki, what: &str, text: &str) {
    assert!(!text.contains("PRIVATE KEY"), "{what}: {text}");
    for line in pki
        .client_key
        .lines()
        .filter(|line| !line.starts_with("---"))
    {
        assert!(!text.contains(line), "{what} shows the key: {text}");
    }
}

/// Asserts that both pings of `cache` fail with a connection error whose
/// sources name `cause` (rustls's name for it) and that shows no key.
async fn assert_refused(cache: &Cache, pki: &Pki, cause: &str) {
    let error = cache.ping().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connection, "{error}");
    assert!(texts(&error).contains(cause), "{}", texts(&error));
    assert_no_key(pki, "ping's error", &texts(&error));
    let error = cache.ping_blocking().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connection, "{error}");
    assert!(texts(&error).contains(cause), "{}", texts(&error));
    assert_no_key(pki, "ping_blocking's error", &texts(&error));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_misses_and_ttl_over_rediss() {
    static CACHE: CacheSlot = CacheSlot::new();
    static SYNC_RUNS: Calls = Calls::new();
    static ASYNC_RUNS: Calls = Calls::new();
    let redis = TlsRedis::start(false, &[]);
    CACHE.set(
        Cache::builder(redis.url())
            .tls_ca(redis.pki.ca_cert.clone())
            .prefix("tls:")
            .build()
            .unwrap(),
    );

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn square(x: u64) -> u64 {
        SYNC_RUNS.inc();
        x * x
    }

    #[redis_cached(ttl = 30, cache = CACHE)]
    async fn cube(x: u64) -> u64 {
        ASYNC_RUNS.inc();
        x * x * x
    }

    CACHE.ping().await.expect("ping over TLS");
    CACHE.ping_blocking().expect("ping_blocking over TLS");
    for _ in 0..3 {
        assert_eq!(square(7), 49);
        assert_eq!(cube(3).await, 27);
    }
    assert_eq!(SYNC_RUNS.get(), 1, "the sync body ran once");
    assert_eq!(ASYNC_RUNS.get(), 1, "the async body ran once");
    let stats = CACHE.stats();
    assert_eq!((stats.misses, stats.hits, stats.errors), (2, 4, 0));

    let keys = redis.keys();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let ttls: Vec<i64> = keys.iter().map(|key| redis.pttl(key)).collect();
    let (mut square_ttl, mut cube_ttl) = (ttls[0], ttls[1]);
    if square_ttl < cube_ttl {
        (square_ttl, cube_ttl) = (cube_ttl, square_ttl);
    }
    assert!(30_000 < square_ttl && square_ttl <= 60_000, "{ttls:?}");
    assert!(0 < cube_ttl && cube_ttl <= 30_000, "{ttls:?}");

    square_invalidate(7).expect("invalidate over TLS");
    assert_eq!(square(7), 49);
    assert_eq!(SYNC_RUNS.get(), 2, "the invalidated entry missed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_takes_only_a_client_with_a_certificate() {
    static WITHOUT: CacheSlot = CacheSlot::new();
    static RUNS: Calls = Calls::new();
    let redis = TlsRedis::start(true, &[]);

    let with = redis.builder().prefix("mtls:").build().unwrap();
    with.ping().await.expect("ping with a client certificate");
    with.ping_blocking()
        .expect("ping_blocking with a client certificate");
    let printed = format!("{:?}", redis.builder());
    assert_no_key(&redis.pki, "the builder's Debug", &printed);
    assert!(!printed.contains("BEGIN CERTIFICATE"), "{printed}");

    WITHOUT.set(
        Cache::builder(redis.url())
            .tls_ca(redis.pki.ca_cert.clone())
            .connect_timeout(Duration::from_millis(500))
            .build()
            .unwrap(),
    );
    assert_refused(&WITHOUT, &redis.pki, "CertificateRequired").await;

    #[redis_cached(ttl = 60, cache = WITHOUT)]
    async fn echo(x: u32) -> u32 {
        RUNS.inc();
        x
    }
    for _ in 0..3 {
        assert_eq!(echo(5).await, 5);
    }
    assert_eq!(RUNS.get(), 3, "every call ran uncached");
    assert!(redis.keys().is_empty(), "{:?}", redis.keys());
}

#[test]
fn the_in_process_tier_is_kept_coherent_over_tls() {
    static CACHE: CacheSlot = CacheSlot::new();
    static VERSION: AtomicU64 = AtomicU64::new(1);
    let redis = TlsRedis::start(true, &[]);
    CACHE.set(redis.builder().build().unwrap());

    #[redis_cached(ttl = 60, cache = CACHE, local = 10)]
    fn version(id: u64) -> u64 {
        id * 1000 + VERSION.load(SeqCst)
    }

    assert_eq!(version(1), 1001);
    eventually("a hit in the in-process tier", || {
        assert_eq!(version(1), 1001);
        CACHE.stats().local_hits > 0
    });
    // Another client deletes the key: the tracking connection, over TLS
    // with the client certificate, tells the tier, and the body runs again.
    VERSION.store(2, SeqCst);
    let keys = redis.keys();
    let _: u64 = redis::cmd("DEL")
        .arg(&keys)
        .query(&mut redis.conn())
        .expect("DEL");
    eventually("the new value", || version(1) == 1002);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_server_certificate_is_refused() {
    // Also on 127.0.0.2, an address its certificate doesn't name.
    let redis = TlsRedis::start(false, &["--bind", "127.0.0.1", "127.0.0.2"]);
    let quick = |builder: redis_cached::CacheBuilder| {
        builder
            .connect_timeout(Duration::from_millis(500))
            .build()
            .unwrap()
    };

    // The built-in roots don't know the test's CA.
    let cache = quick(Cache::builder(redis.url()));
    assert_refused(&cache, &redis.pki, "UnknownIssuer").await;

    // Nor does another CA, even with a client certificate of it.
    let other = Pki::new();
    let cache = quick(
        Cache::builder(redis.url())
            .tls_ca(other.ca_cert.clone())
            .tls_client_cert(other.client_cert.clone(), other.client_key.clone()),
    );
    assert_refused(&cache, &other, "invalid peer certificate").await;

    // The right CA, but a name the certificate doesn't hold.
    let port = redis.url().rsplit(':').next().unwrap_or_default();
    let cache = quick(
        Cache::builder(&format!("rediss://127.0.0.2:{port}")).tls_ca(redis.pki.ca_cert.clone()),
    );
    assert_refused(&cache, &redis.pki, "NotValidForName").await;
}

#[test]
fn certificates_need_rediss_and_must_parse() {
    let error = Cache::builder("redis://127.0.0.1:6379")
        .tls_ca(Pki::new().ca_cert)
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config, "{error:#}");
    assert!(error.to_string().contains("rediss://"), "{error}");

    let secret =
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw!!\n-----END PRIVATE KEY-----\n";
    let error = Cache::builder("rediss://127.0.0.1:6379")
        .tls_client_cert(Pki::new().client_cert, secret)
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config, "{error:#}");
    assert!(!texts(&error).contains("c2VjcmV0"), "{}", texts(&error));

    // A cluster's seed nodes: the same two rules.
    let error =
        redis_cached::CacheBuilder::cluster(["rediss://127.0.0.1:7000", "redis://127.0.0.1:7001"])
            .tls_ca(Pki::new().ca_cert)
            .build()
            .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config, "{error:#}");
    assert!(error.to_string().contains("rediss://"), "{error}");
    let error = redis_cached::CacheBuilder::cluster(["rediss://127.0.0.1:7000"])
        .tls_client_cert(Pki::new().client_cert, secret)
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config, "{error:#}");
    assert!(!texts(&error).contains("c2VjcmV0"), "{}", texts(&error));
}
