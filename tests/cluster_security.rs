//! A cache on a Redis Cluster that is locked down, started by each test:
//! a password and an ACL user, TLS with a client certificate (mTLS). The
//! right credentials and certificates cache on every primary, sync and
//! async, with the in-process tier kept coherent over the same connections;
//! a wrong password is a clear error from `ping`, logged once by cached
//! calls, which run uncached; no password is ever shown.

mod support;
#[path = "support/cluster.rs"]
mod test_cluster;

use std::future::Future;
use std::process::Command;
use std::time::Duration;

use redis_cached::{Cache, CacheBuilder, ErrorKind, redis_cached};
use support::logs::{self, Capture};
use support::{CacheSlot, Calls, eventually};
use test_cluster::{APP_PASSWORD, APP_USER, Secured, TestCluster};

/// The `default` user's password on the clusters of these tests.
const ROOT_PASSWORD: &str = "root-pw";
/// A wrong password, which must show nowhere.
const SECRET: &str = "Pa55-s3cr3t";
/// Enough distinct arguments that every primary gets keys.
const ARGS: u64 = 60;

/// Declares, in a test, its `CACHE` and `CALLS`, and cached functions on
/// them: `square` (sync), `cube` (async, with a `lock`) and `label`
/// (sync, `String`).
macro_rules! cached_functions {
    () => {
        static CACHE: CacheSlot = CacheSlot::new();
        static CALLS: Calls = Calls::new();

        #[redis_cached(ttl = 60, cache = CACHE)]
        fn square(x: u64) -> u64 {
            CALLS.inc();
            x * x
        }

        // With the lock: `SET NX`, `MGET` and an `EVAL` that calls `DEL`.
        #[redis_cached(ttl = 60, lock = "5s", cache = CACHE)]
        async fn cube(x: u64) -> u64 {
            CALLS.inc();
            x * x * x
        }

        #[redis_cached(ttl = 60, cache = CACHE)]
        fn label(id: u64) -> String {
            format!("label {id} #{}", CALLS.next())
        }
    };
}

fn password_cluster() -> TestCluster {
    TestCluster::start_secured(Secured {
        password: Some(ROOT_PASSWORD),
        ..Secured::default()
    })
}

/// Sync and async calls miss, then hit, with their TTL, on every primary;
/// the in-process tier hears of a write by another client on any primary;
/// `invalidate_all` empties every primary. `cache`, on `cluster` with a
/// `local` tier, is fresh, and the functions of [`cached_functions`] use it.
async fn caches_on_every_primary<F: Future<Output = u64>>(
    cluster: &TestCluster,
    (cache, calls): (&Cache, &Calls),
    square: impl Fn(u64) -> u64,
    cube: impl Fn(u64) -> F,
    label: impl Fn(u64) -> String,
) {
    cache.ping().await.expect("ping");
    cache.ping_blocking().expect("ping_blocking");
    let runs = calls.get();
    for x in 0..ARGS {
        assert_eq!(square(x), x * x);
        assert_eq!(cube(x).await, x * x * x);
    }
    for x in 0..ARGS {
        assert_eq!(square(x), x * x);
        assert_eq!(cube(x).await, x * x * x);
    }
    assert_eq!(calls.get() - runs, 2 * ARGS as usize, "each body ran once");
    let stats = cache.stats();
    assert_eq!(
        (stats.misses, stats.stores, stats.errors),
        (2 * ARGS, 2 * ARGS, 0)
    );
    assert_eq!(stats.hits + stats.local_hits, 2 * ARGS);
    let per_primary = cluster.keys_per_primary();
    assert_eq!(per_primary.len(), 3, "{per_primary:?}");
    assert!(
        per_primary.iter().all(|(_, keys)| *keys > 0),
        "keys on every primary: {per_primary:?}"
    );
    let keys = cluster.keys();
    assert_eq!(keys.len() as u64, 2 * ARGS);
    for key in keys.iter().step_by(7) {
        let pttl = cluster.pttl(key);
        assert!((58_000..=60_000).contains(&pttl), "PTTL {key}: {pttl}");
    }

    // The in-process tier: a delete by another client, on whichever
    // primary holds the key, reaches it over the tracking connections.
    let keys = cluster.keys_of(0..20, |id| {
        label(id);
    });
    let mut ports = Vec::new();
    for (id, key) in keys.iter().enumerate() {
        let port = cluster.primary_of(key);
        if ports.contains(&port) {
            continue;
        }
        ports.push(port);
        let id = id as u64;
        let first = label(id);
        let before = cache.stats().local_hits;
        eventually("a hit in the in-process tier", || {
            assert_eq!(label(id), first);
            cache.stats().local_hits > before
        });
        let _: () = cluster.on_node(port, redis::cmd("UNLINK").arg(key));
        eventually("the delete heard from its primary", || label(id) != first);
    }
    assert_eq!(ports.len(), 3, "a key on every primary");

    let mut deleted = 0;
    for name in ["square", "cube", "label"] {
        let name = format!("{}::{name}", module_path!());
        deleted += cache.invalidate_all(&name).await.expect("invalidate_all");
    }
    assert_eq!(deleted, 2 * ARGS + 20, "every key, from every primary");
    assert_eq!(cluster.keys(), Vec::<String>::new());
    assert_eq!(cache.stats().errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_user_and_a_password_cache_on_every_primary() {
    cached_functions!();
    let cluster = password_cluster();
    let app = format!("{APP_USER}:{APP_PASSWORD}");
    let others = [
        // The `default` user's password (`requirepass`) in the URLs.
        Cache::cluster(cluster.nodes_with(&format!(":{ROOT_PASSWORD}"))).unwrap(),
        // The ACL user in the URLs, one seed node.
        Cache::cluster(&cluster.nodes_with(&app)[..1]).unwrap(),
        // Comma-separated, as in `REDIS_CACHED_URL`.
        Cache::new(&cluster.nodes_with(&app).join(",")).unwrap(),
        // The builder's password replaces the URLs'.
        CacheBuilder::cluster(cluster.nodes_with("app:stale"))
            .password(APP_PASSWORD)
            .build()
            .unwrap(),
    ];
    for cache in &others {
        cache.ping().await.unwrap();
        cache.ping_blocking().unwrap();
    }
    CACHE.set(
        cluster
            .builder()
            .username(APP_USER)
            .password(APP_PASSWORD)
            .local(1_000)
            .build()
            .unwrap(),
    );
    caches_on_every_primary(&cluster, (&CACHE, &CALLS), square, cube, label).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_a_password_caches_on_every_primary() {
    cached_functions!();
    let cluster = TestCluster::start_secured(Secured {
        password: Some(ROOT_PASSWORD),
        tls: true,
        mtls: true,
    });
    let pki = cluster.pki.as_ref().expect("TLS");
    // Without a client certificate the nodes refuse the handshake.
    let refused = CacheBuilder::cluster(&cluster.nodes)
        .tls_ca(pki.ca_cert.clone())
        .password(ROOT_PASSWORD)
        .connect_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let error = refused.ping().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connection, "{error}");
    // Certificates go only with `rediss://` nodes.
    let plain = cluster.nodes[0].replace("rediss://", "redis://");
    let Err(error) = CacheBuilder::cluster([cluster.nodes[1].as_str(), &plain])
        .tls_ca(pki.ca_cert.clone())
        .build()
    else {
        panic!("certificates for a redis:// node are refused");
    };
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
    assert!(error.to_string().contains("rediss://"), "{error}");

    CACHE.set(
        cluster
            .builder()
            .password(ROOT_PASSWORD)
            .local(1_000)
            .build()
            .unwrap(),
    );
    caches_on_every_primary(&cluster, (&CACHE, &CALLS), square, cube, label).await;
}

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

fn assert_no_secret_logged(logs: &Capture) {
    for line in logs.lines() {
        assert!(
            !line.contains(SECRET),
            "a log line shows the password: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_an_auth_error_logged_once_and_shown_nowhere() {
    cached_functions!();
    let logs = logs::capture();
    let cluster = password_cluster();
    let quick = |builder: CacheBuilder| {
        builder
            .connect_timeout(Duration::from_millis(300))
            .build()
            .unwrap()
    };
    let wrong = [
        quick(CacheBuilder::cluster(
            cluster.nodes_with(&format!(":{SECRET}")),
        )),
        quick(CacheBuilder::cluster(
            cluster.nodes_with(&format!("{APP_USER}:{SECRET}")),
        )),
        quick(cluster.builder().username(APP_USER).password(SECRET)),
        quick(cluster.builder().password(SECRET)),
        // No password at all.
        quick(cluster.builder()),
    ];
    for cache in &wrong {
        for error in [
            cache.ping().await.unwrap_err(),
            cache.ping_blocking().unwrap_err(),
        ] {
            assert_eq!(error.kind(), ErrorKind::Auth, "{error}");
            assert!(
                error.to_string().contains("authentication failed"),
                "{error}"
            );
            let shown = texts(&error);
            assert!(
                !shown.contains(SECRET),
                "the error shows the password: {shown}"
            );
        }
        let shown = format!("{cache:?}");
        assert!(!shown.contains(SECRET), "the cache's Debug: {shown}");
    }

    // Cached calls run uncached; the failure is logged once.
    let [first, ..] = wrong;
    CACHE.set(first);
    let runs = CALLS.get();
    for x in 0..5 {
        assert_eq!(square(x), x * x);
        assert_eq!(cube(x).await, x * x * x);
        assert!(label(x).starts_with("label"));
    }
    assert_eq!(CALLS.get() - runs, 15, "every call ran its body");
    // A read and a write per call, and `cube`'s lock.
    assert_eq!(CACHE.stats().errors, 15 * 2 + 5);
    let warnings: Vec<String> = (logs.at("WARN").into_iter())
        .filter(|line| line.contains("authentication failed"))
        .collect();
    assert_eq!(warnings.len(), 1, "logged once: {warnings:#?}");
    assert_no_secret_logged(&logs);
    assert_eq!(cluster.keys(), Vec::<String>::new());
}

#[test]
fn the_default_cache_on_a_cluster_with_a_wrong_password_logs_once_and_runs_uncached() {
    let cluster = password_cluster();
    let url = cluster.nodes_with(&format!(":{SECRET}")).join(",");
    let output = Command::new(env!("CARGO_BIN_EXE_default_url_child"))
        .env("REDIS_CACHED_URL", &url)
        .env_remove("REDIS_URL")
        .env("CALLS", "20")
        .output()
        .expect("run the child process");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stdout.contains(SECRET), "{stdout}");
    assert!(!stderr.contains(SECRET), "{stderr}");
    assert!(
        stdout.contains("errors 40"),
        "a read and a write per call: {stdout}"
    );
    let warnings: Vec<&str> = (stdout.lines())
        .filter(|line| ["WARN", "ERROR"].contains(&line.split_whitespace().next().unwrap_or("")))
        .collect();
    assert_eq!(warnings.len(), 1, "{stdout}");
    assert!(warnings[0].contains("authentication failed"), "{stdout}");
    assert_eq!(cluster.keys(), Vec::<String>::new());
}
