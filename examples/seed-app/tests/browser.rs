//! A user's visit, in a real headless Chromium: log in, be welcomed,
//! compute twice (the second from the cache), invalidate, queue two tasks
//! and see them processed, log out. Each step checks what the page shows
//! and what Redis holds.

mod support;

use redis::Commands;
use support::{App, Browser, TestRedis};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_logs_in_computes_queues_tasks_and_logs_out() {
    let redis = TestRedis::start();
    let app = App::start(&redis);
    let browser = Browser::start().await;

    // Without a session, the home page sends the user to log in.
    browser.goto(&app.url("/")).await;
    assert_eq!(browser.path().await, "/login");
    assert!(redis.keys("seed:session:*").is_empty());

    // Logging in starts a session, kept in Redis, and welcomes the user.
    browser.fill("#username", "alice").await;
    browser.click("#login").await;
    assert_eq!(browser.text("#welcome").await, "Welcome, alice");
    assert_eq!(browser.path().await, "/");
    let sessions = redis.keys("seed:session:*");
    assert_eq!(sessions.len(), 1, "one session key: {sessions:?}");
    let ttl: i64 = redis.conn().ttl(&sessions[0]).expect("TTL");
    assert!(
        (3500..=3600).contains(&ttl),
        "the session expires in an hour, not {ttl} s"
    );
    let cookie = browser
        .client
        .get_named_cookie("seed_session")
        .await
        .expect("the session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(
        cookie.same_site(),
        Some(tower_sessions::cookie::SameSite::Lax)
    );
    assert!(cookie.expires().is_some(), "the cookie has an expiry");
    assert!(
        !cookie.value().contains("alice"),
        "the cookie holds an id, not the session"
    );

    // The first computation runs the operation and stores its result.
    browser.goto(&app.url("/compute/21")).await;
    assert_eq!(browser.text("#value").await, "210");
    assert_eq!(
        browser.attr("#outcome", "data-hit").await.as_deref(),
        Some("false")
    );
    assert_eq!(browser.text("#body-runs").await, "1");
    let cached = redis.keys("seed:calculate_expensive_operation:*");
    assert_eq!(cached.len(), 1, "one cached result: {cached:?}");

    // The second is answered by Redis, without running it.
    browser.goto(&app.url("/compute/21")).await;
    assert_eq!(browser.text("#value").await, "210");
    assert_eq!(
        browser.attr("#outcome", "data-hit").await.as_deref(),
        Some("true")
    );
    assert!(browser.text("#outcome").await.starts_with("cache hit"));
    assert_eq!(browser.text("#body-runs").await, "1");
    // Both requests counted in the sorted set, shown on the page.
    assert_eq!(browser.text("#popular li").await, "21: 2 requests");
    let score: f64 = redis.conn().zscore("seed:computed", 21).expect("ZSCORE");
    assert_eq!(score, 2.0);

    // Invalidating deletes the key through the generated sibling, and
    // publishes the event every page listens to.
    let mut subscriber = redis.conn();
    let mut pubsub = subscriber.as_pubsub();
    pubsub.subscribe("seed:events").expect("SUBSCRIBE");
    browser.click("#invalidate").await;
    assert!(
        browser.text("#invalidated").await.contains("deleted"),
        "the page says the cached result is gone"
    );
    assert!(
        redis
            .keys("seed:calculate_expensive_operation:*")
            .is_empty()
    );
    pubsub
        .set_read_timeout(Some(support::PATIENCE))
        .expect("a read timeout");
    let event: String = pubsub
        .get_message()
        .expect("the invalidation event")
        .get_payload()
        .expect("text");
    assert_eq!(event, "cache invalidated: 21 (deleted)");
    drop(pubsub);

    // Two tasks: queued, then processed by the worker once each, the page
    // told live (server-sent events from Redis pub/sub).
    browser.goto(&app.url("/tasks")).await;
    browser.fill("#task", "first").await;
    browser.click("#enqueue").await;
    browser.fill("#task", "second").await;
    browser.click("#enqueue").await;
    assert_eq!(browser.path().await, "/tasks");
    browser
        .wait_for_text(
            "#events",
            "the page is told the second task is done",
            |events| events.contains("task done: second"),
        )
        .await;
    browser.goto(&app.url("/tasks")).await;
    let processed = browser.text("#processed").await;
    assert!(
        processed.contains("first (runs: 1)") && processed.contains("second (runs: 1)"),
        "both tasks processed once: {processed:?}"
    );
    assert_eq!(browser.text("#queued").await, "");
    let runs: std::collections::HashMap<String, u64> =
        redis.conn().hgetall("seed:task-runs").expect("HGETALL");
    assert_eq!(runs.len(), 2, "two tasks ran: {runs:?}");
    assert!(
        runs.values().all(|&runs| runs == 1),
        "each ran once: {runs:?}"
    );

    // Logging out deletes the session's key and the cookie.
    browser.goto(&app.url("/logout")).await;
    assert_eq!(browser.path().await, "/login");
    assert!(
        redis.keys("seed:session:*").is_empty(),
        "the session key is gone"
    );
    assert!(
        browser
            .client
            .get_named_cookie("seed_session")
            .await
            .is_err()
    );
    browser.goto(&app.url("/")).await;
    assert_eq!(browser.path().await, "/login");

    browser.close().await;
}
