//! `seed-app worker` as a process of its own: tasks queued while no worker
//! runs wait in Redis (through a restart of the web server too), a worker
//! started later processes each once, and a worker that replaces a stopped
//! one runs none of them again.

mod support;

use std::collections::HashMap;

use redis::Commands;
use support::{App, TestRedis, get, post_form, wait_until};

fn runs(redis: &TestRedis) -> HashMap<String, u64> {
    redis.conn().hgetall("seed:task-runs").expect("HGETALL")
}

/// The `<li>`s of the list `id` on the tasks page.
fn items(body: &str, id: &str) -> usize {
    let start = body
        .find(&format!(r#"<ul id="{id}">"#))
        .unwrap_or_else(|| panic!("no list {id} in {body}"));
    let list = &body[start..];
    let list = &list[..list.find("</ul>").expect("the list's end")];
    list.matches("<li").count()
}

#[test]
fn tasks_wait_for_a_worker_process_and_each_runs_once() {
    let redis = TestRedis::start();
    let web = App::web(&redis);

    for task in ["a", "b", "c"] {
        let answer = post_form(web.port, "/tasks", &format!("task={task}"));
        assert_eq!(answer.status, 303, "queued, then back to the list");
        assert!(answer.head.contains("location: /tasks"), "{}", answer.head);
    }
    let page = get(web.port, "/tasks").body;
    assert_eq!(
        items(&page, "queued"),
        3,
        "no worker yet: all queued\n{page}"
    );
    assert_eq!(items(&page, "processed"), 0);

    // The web server restarts: the tasks are still there.
    drop(web);
    let web = App::web(&redis);
    let page = get(web.port, "/tasks").body;
    assert_eq!(
        items(&page, "queued"),
        3,
        "the queue outlived the process\n{page}"
    );
    assert!(runs(&redis).is_empty(), "nothing ran without a worker");

    // A worker process takes them, one run each.
    let worker = App::worker(&redis);
    let done = wait_until("the worker ran the three tasks", || {
        let runs = runs(&redis);
        (runs.len() == 3).then_some(runs)
    });
    assert!(done.values().all(|&runs| runs == 1), "{done:?}");
    let page = get(web.port, "/tasks").body;
    assert_eq!(items(&page, "processed"), 3, "{page}");
    assert_eq!(items(&page, "queued"), 0, "{page}");
    assert_eq!(page.matches(r#"data-runs="1""#).count(), 3, "{page}");

    // It stops (finishing what it had), another one starts: only the new
    // task runs.
    worker.terminate();
    let _worker = App::worker(&redis);
    assert_eq!(post_form(web.port, "/tasks", "task=d").status, 303);
    let done = wait_until("the new worker ran the fourth task", || {
        let runs = runs(&redis);
        (runs.len() == 4).then_some(runs)
    });
    assert!(
        done.values().all(|&runs| runs == 1),
        "none ran twice: {done:?}"
    );
    let page = get(web.port, "/tasks").body;
    assert_eq!(items(&page, "processed"), 4, "{page}");
}
