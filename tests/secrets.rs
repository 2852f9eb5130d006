//! No password in anything the crate prints: a URL with a password is
//! used in each way that can fail (malformed, refused, wrong password, a
//! refused TLS handshake, the default cache from the environment), and the
//! password (and a TLS client key) must appear in no
//! error (`Display`, `{:#}`, `Debug`, sources), no `Debug` of the builder or
//! cache, and no log line at any level.

mod support;

use std::process::Command;
use std::time::Duration;

use redis_cached::{Cache, ErrorKind, redis_cached};
use support::logs::{self, Capture};
use support::tls::{Pki, TlsRedis};
use support::{CacheSlot, TestRedis};

const SECRET: &str = "Pa55-s3cr3t";

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

fn assert_hidden(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} shows the password: {text}");
}

fn assert_no_secret_logged(logs: &Capture) {
    for line in logs.lines() {
        assert_hidden("a log line", &line);
    }
}

#[test]
fn malformed_urls_are_shown_without_their_password() {
    let logs = logs::capture();
    let urls = [
        format!("redis://app:{SECRET}@127.0.0.1:notaport"),
        format!("redis://app:{SECRET}@127.0.0.1:6379/notadb"),
        format!("redis://:{SECRET}@0.0.0.0:6379"),
        format!("http://app:{SECRET}@127.0.0.1:6379"),
        format!("redis://app:{SECRET}@"),
        format!("app:{SECRET}@127.0.0.1:6379"),
        format!("mem://app:{SECRET}@somewhere"),
        format!("redis+unix:///nowhere.sock?db=x&pass={SECRET}"),
        // Redis Cluster seed nodes.
        format!("redis://app:{SECRET}@127.0.0.1:7000,redis://app:{SECRET}@127.0.0.1:notaport"),
        format!("redis://app:{SECRET}@127.0.0.1:7000,redis://app:other@127.0.0.1:7001"),
        format!("redis://app:{SECRET}@127.0.0.1:7000,redis+unix:///nowhere.sock"),
    ];
    for url in &urls {
        let error = Cache::new(url).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config, "{url}: {error}");
        assert_hidden(url, &texts(&error));
        assert!(error.to_string().contains("***"), "{error}");
    }
    assert_no_secret_logged(&logs);
}

#[test]
fn the_builder_and_the_cache_print_no_password() {
    let url = format!("redis://app:{SECRET}@127.0.0.1:6379/0");
    let builder = Cache::builder(&url).password(SECRET).prefix("p:");
    let printed = format!("{builder:?}");
    assert_hidden("CacheBuilder's Debug", &printed);
    assert!(
        printed.contains("redis://app:***@127.0.0.1:6379/0"),
        "{printed}"
    );
    assert!(printed.contains("p:"), "{printed}");
    let cache = builder.build().unwrap();
    assert_hidden("Cache's Debug", &format!("{cache:?}"));
}

#[tokio::test]
async fn a_refused_connection_shows_no_password() {
    static CACHE: CacheSlot = CacheSlot::new();
    let logs = logs::capture();
    let mut redis = TestRedis::start();
    let url = redis
        .url()
        .replace("redis://", &format!("redis://app:{SECRET}@"));
    redis.stop();
    CACHE.set(
        Cache::builder(&url)
            .connect_timeout(Duration::from_millis(200))
            .build()
            .unwrap(),
    );

    #[redis_cached(ttl = 60, cache = CACHE)]
    async fn echo(x: u32) -> u32 {
        x
    }

    let error = CACHE.ping().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connection, "{error}");
    assert_hidden("ping's error", &texts(&error));
    let error = CACHE.ping_blocking().unwrap_err();
    assert_hidden("ping_blocking's error", &texts(&error));
    for i in 0..5 {
        assert_eq!(echo(i).await, i);
    }
    let error = CACHE.invalidate_all("f").await.unwrap_err();
    assert_hidden("invalidate_all's error", &texts(&error));
    assert!(!logs.at("WARN").is_empty(), "the failure was logged");
    assert_no_secret_logged(&logs);
}

#[tokio::test]
async fn a_wrong_password_shows_no_password() {
    static CACHE: CacheSlot = CacheSlot::new();
    let logs = logs::capture();
    let redis = TestRedis::start_with(&["--requirepass", "the-right-one"]);
    let url = redis
        .url()
        .replace("redis://", &format!("redis://:{SECRET}@"));
    CACHE.set(Cache::new(&url).unwrap());

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn echo(x: u32) -> u32 {
        x
    }

    let error = CACHE.ping().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Auth, "{error}");
    assert_hidden("ping's error", &texts(&error));
    let error = CACHE.ping_blocking().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Auth, "{error}");
    assert_hidden("ping_blocking's error", &texts(&error));
    for i in 0..5 {
        assert_eq!(echo(i), i);
    }
    // The same through the builder, with a user.
    let cache = Cache::builder(redis.url())
        .username("default")
        .password(SECRET)
        .build()
        .unwrap();
    let error = cache.ping().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Auth, "{error}");
    assert_hidden("ping's error", &texts(&error));
    assert_hidden("the cache's Debug", &format!("{cache:?}"));
    assert!(!logs.at("WARN").is_empty(), "the failure was logged");
    assert_no_secret_logged(&logs);
}

#[tokio::test]
async fn a_refused_tls_handshake_shows_no_password_and_no_key() {
    static CACHE: CacheSlot = CacheSlot::new();
    let logs = logs::capture();
    // Wants a client certificate from its own CA.
    let redis = TlsRedis::start(true, &[]);
    let url = redis
        .url()
        .replace("rediss://", &format!("rediss://app:{SECRET}@"));
    let other = Pki::new();
    let quick = |builder: redis_cached::CacheBuilder| {
        builder
            .connect_timeout(Duration::from_millis(500))
            .build()
            .unwrap()
    };
    let caches = [
        // The server refuses: no client certificate.
        quick(Cache::builder(&url).tls_ca(redis.pki.ca_cert.clone())),
        // The server refuses: a client certificate of another CA.
        quick(
            Cache::builder(&url)
                .tls_ca(redis.pki.ca_cert.clone())
                .tls_client_cert(other.client_cert.clone(), other.client_key.clone()),
        ),
        // The client refuses: the server's CA is not trusted.
        quick(Cache::builder(redis.url()).password(SECRET)),
    ];
    let key_lines: Vec<&str> = other
        .client_key
        .lines()
        .filter(|line| !line.starts_with("---"))
        .collect();
    let assert_nothing_shown = |what: &str, text: &str| {
        assert_hidden(what, text);
        for line in &key_lines {
            assert!(!text.contains(line), "{what} shows the client key: {text}");
        }
    };
    for cache in &caches {
        let error = cache.ping().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Connection, "{error}");
        assert_nothing_shown("ping's error", &texts(&error));
        let error = cache.ping_blocking().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Connection, "{error}");
        assert_nothing_shown("ping_blocking's error", &texts(&error));
        let error = cache.invalidate_all("f").await.unwrap_err();
        assert_nothing_shown("invalidate_all's error", &texts(&error));
        assert_nothing_shown("the cache's Debug", &format!("{cache:?}"));
    }
    let [first, ..] = caches;
    CACHE.set(first);

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn echo(x: u32) -> u32 {
        x
    }

    #[redis_cached(ttl = 60, cache = CACHE)]
    async fn echo_async(x: u32) -> u32 {
        x
    }

    for i in 0..5 {
        assert_eq!(echo(i), i);
        assert_eq!(echo_async(i).await, i);
    }
    assert!(!logs.at("WARN").is_empty(), "the failure was logged");
    for line in logs.lines() {
        assert_nothing_shown("a log line", &line);
    }
}

#[test]
fn a_malformed_default_url_is_logged_without_its_password() {
    let url = format!("redis://app:{SECRET}@127.0.0.1:notaport");
    let output = Command::new(env!("CARGO_BIN_EXE_default_url_child"))
        .env("REDIS_CACHED_URL", &url)
        .env_remove("REDIS_URL")
        .env("CALLS", "3")
        .output()
        .expect("run the child process");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_hidden("the child's output", &stdout);
    assert_hidden("the child's errors", &stderr);
    assert!(
        stdout.contains("redis://app:***@127.0.0.1:notaport"),
        "{stdout}"
    );
}
