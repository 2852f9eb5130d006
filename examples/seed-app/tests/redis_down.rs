//! Redis stops while a user is logged in: every page still answers, saying
//! what is unavailable, and the computation runs uncached. When Redis is
//! back the app uses it again by itself: no restart.

mod support;

use support::{App, Browser, TestRedis};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_answer_while_redis_is_down_and_recover_when_it_is_back() {
    let mut redis = TestRedis::start();
    let port = redis.port();
    let app = App::start(&redis);
    let browser = Browser::start().await;

    browser.goto(&app.url("/login")).await;
    browser.fill("#username", "carol").await;
    browser.click("#login").await;
    assert_eq!(browser.text("#welcome").await, "Welcome, carol");

    redis.stop();

    // The home page can't read the session: it says so, and keeps the cookie.
    browser.goto(&app.url("/")).await;
    assert_eq!(browser.path().await, "/");
    assert!(
        browser
            .text("#unavailable")
            .await
            .starts_with("Sessions unavailable"),
        "the page says sessions are unavailable"
    );
    assert!(
        browser
            .client
            .get_named_cookie("seed_session")
            .await
            .is_ok()
    );

    // Logging in can't store a session either.
    browser.goto(&app.url("/login")).await;
    browser.fill("#username", "dave").await;
    browser.click("#login").await;
    assert!(
        browser
            .text("#unavailable")
            .await
            .starts_with("Sessions unavailable")
    );

    // The computation runs, uncached: twice for two requests.
    browser.goto(&app.url("/compute/4")).await;
    assert_eq!(browser.text("#value").await, "40");
    assert_eq!(
        browser.attr("#outcome", "data-hit").await.as_deref(),
        Some("false")
    );
    assert!(
        browser
            .text("#outcome")
            .await
            .contains("uncached: Redis is down")
    );
    assert_eq!(browser.text("#body-runs").await, "1");
    assert!(browser.text("#popular").await.starts_with("Unavailable"));
    browser.goto(&app.url("/compute/4")).await;
    assert_eq!(browser.text("#value").await, "40");
    assert_eq!(
        browser.attr("#outcome", "data-hit").await.as_deref(),
        Some("false")
    );
    assert_eq!(browser.text("#body-runs").await, "2");
    assert_eq!(
        browser.attr("#redis", "class").await.as_deref(),
        Some("down")
    );

    // The queue is unavailable, and so is invalidation.
    browser.goto(&app.url("/tasks")).await;
    assert!(
        browser
            .text("#unavailable")
            .await
            .starts_with("The task queue unavailable")
    );
    let answer = support::post_form(app.port, "/tasks", "task=lost");
    assert_eq!(answer.status, 503, "no task can be queued");
    let answer = support::post_form(app.port, "/compute/4/invalidate", "");
    assert_eq!(answer.status, 503, "nothing can be invalidated");

    // Redis comes back (empty: the old session is gone with it).
    let redis = TestRedis::start_on(port);
    browser
        .reload_until(
            &app.url("/login"),
            "#redis",
            "the app sees Redis again",
            |text| text == "Redis: up",
        )
        .await;
    browser.goto(&app.url("/")).await;
    assert_eq!(
        browser.path().await,
        "/login",
        "the session was in the old Redis"
    );
    browser.fill("#username", "carol").await;
    browser.click("#login").await;
    assert_eq!(browser.text("#welcome").await, "Welcome, carol");
    assert_eq!(redis.keys("seed:session:*").len(), 1);

    // The cache is used again: a miss stored, then a hit.
    browser.goto(&app.url("/compute/4")).await;
    assert_eq!(
        browser.attr("#outcome", "data-hit").await.as_deref(),
        Some("false")
    );
    assert_eq!(browser.text("#body-runs").await, "3");
    assert_eq!(redis.keys("seed:calculate_expensive_operation:*").len(), 1);
    browser.goto(&app.url("/compute/4")).await;
    assert_eq!(
        browser.attr("#outcome", "data-hit").await.as_deref(),
        Some("true")
    );
    assert_eq!(browser.text("#body-runs").await, "3");

    // And the worker takes tasks again.
    browser.goto(&app.url("/tasks")).await;
    browser.fill("#task", "after the outage").await;
    browser.click("#enqueue").await;
    browser
        .wait_for_text("#events", "the task is done", |events| {
            events.contains("task done: after the outage")
        })
        .await;

    browser.close().await;
}
