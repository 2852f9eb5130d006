//! ACL users and passwords, in the URL or on the builder: the right ones
//! cache, a wrong one is a clear error from `ping` naming the cause.

mod support;

use redis_cached::{Cache, ErrorKind, redis_cached};
use support::{CacheSlot, Calls, TestRedis};

/// A server whose `default` user needs `root-pw` and with an ACL user
/// `app` (password `app-pw`) that may use the cache's commands.
fn server_with_acl() -> TestRedis {
    let redis = TestRedis::start_with(&["--requirepass", "root-pw"]);
    let url = redis.url().replace("redis://", "redis://:root-pw@");
    let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "app", "on", ">app-pw", "~*", "+@all"][..])
        .query(&mut conn)
        .unwrap();
    redis
}

fn with_credentials(redis: &TestRedis, credentials: &str) -> String {
    redis
        .url()
        .replace("redis://", &format!("redis://{credentials}@"))
}

#[tokio::test]
async fn credentials_in_the_url_or_on_the_builder_are_used() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = server_with_acl();

    #[redis_cached(ttl = 60, cache = CACHE)]
    async fn inc(x: u32) -> u32 {
        CALLS.inc();
        x + 1
    }

    let caches = [
        Cache::new(&with_credentials(&redis, "app:app-pw")).unwrap(),
        Cache::new(&with_credentials(&redis, ":root-pw")).unwrap(),
        Cache::builder(redis.url())
            .username("app")
            .password("app-pw")
            .build()
            .unwrap(),
        // The builder's password replaces the URL's.
        Cache::builder(&with_credentials(&redis, "app:stale"))
            .password("app-pw")
            .build()
            .unwrap(),
    ];
    for cache in &caches {
        cache.ping().await.unwrap();
        cache.ping_blocking().unwrap();
    }
    let [first, ..] = caches;
    CACHE.set(first);
    assert_eq!(inc(1).await, 2);
    assert_eq!(inc(1).await, 2);
    assert_eq!(CALLS.get(), 1, "the second call was a hit");
    assert_eq!(redis.keys_as_root().len(), 1);
}

#[tokio::test]
async fn a_wrong_password_is_an_auth_error_from_ping() {
    let redis = server_with_acl();
    let wrong = [
        Cache::new(&with_credentials(&redis, "app:nope")).unwrap(),
        Cache::new(&with_credentials(&redis, ":nope")).unwrap(),
        Cache::builder(redis.url())
            .password("nope")
            .build()
            .unwrap(),
        Cache::new(redis.url()).unwrap(),
    ];
    for cache in &wrong {
        let error = cache.ping().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Auth, "{error}");
        assert!(error.is_auth());
        assert!(
            error.to_string().contains("authentication failed"),
            "{error}"
        );
        let error = cache.ping_blocking().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Auth, "{error}");
    }
    // A later ping still says why, not merely that Redis is unavailable.
    let error = wrong[0].ping().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Auth, "{error}");
}
