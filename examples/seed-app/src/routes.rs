//! The pages, and what each asks of Redis.

use std::fmt::Write;

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use redis::AsyncCommands;
use serde::Deserialize;
use tower_sessions::Session;

use crate::compute;
use crate::events;
use crate::html::{escape, page, unavailable};
use crate::state::AppState;
use crate::tasks;

/// The session's field that holds who logged in.
const USER: &str = "user";

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login))
        .route("/logout", get(logout))
        .route("/compute/{x}", get(compute_page))
        .route("/compute/{x}/invalidate", post(invalidate))
        .route("/tasks", get(tasks_page).post(enqueue))
        .route("/events", get(events::stream))
        .with_state(state)
}

/// `GET /`: the session's user (one `GET` of the session's key), or the
/// way to log in.
async fn home(State(state): State<AppState>, session: Session) -> Response {
    match session.get::<String>(USER).await {
        Ok(Some(user)) => {
            let body = format!(
                r#"<p id="welcome">Welcome, {}</p>
<p>Your session is the Redis key <code>seed:session:{{&lt;id&gt;}}</code>, kept for an hour after your last change.</p>"#,
                escape(&user)
            );
            page("Home", state.redis_up(), &body).into_response()
        }
        Ok(None) => Redirect::to("/login").into_response(),
        Err(error) => {
            tracing::debug!(%error, "session unreadable");
            unavailable("Sessions", state.redis_up())
        }
    }
}

async fn login_form(State(state): State<AppState>) -> Response {
    let body = r#"<form method="post" action="/login">
<label>Username <input id="username" name="username" required maxlength="64" autofocus></label>
<button id="login" type="submit">Log in</button>
</form>"#;
    page("Log in", state.redis_up(), body).into_response()
}

#[derive(Deserialize)]
struct Login {
    username: String,
}

/// `POST /login`: a new session (a fresh id, against fixation) holding the
/// user, written to Redis before the redirect so a failure shows here.
async fn login(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<Login>,
) -> Response {
    let user = form.username.trim();
    if user.is_empty() || user.chars().count() > 64 {
        return Redirect::to("/login").into_response();
    }
    let saved = async {
        session.cycle_id().await?;
        session.insert(USER, user).await?;
        session.save().await
    };
    match saved.await {
        Ok(()) => Redirect::to("/").into_response(),
        Err(error) => {
            tracing::debug!(%error, "session not saved");
            unavailable("Sessions", state.redis_up())
        }
    }
}

/// `GET /logout`: deletes the session's key, and the cookie.
async fn logout(State(state): State<AppState>, session: Session) -> Response {
    match session.flush().await {
        Ok(()) => Redirect::to("/login").into_response(),
        Err(error) => {
            tracing::debug!(%error, "session not deleted");
            unavailable("Sessions", state.redis_up())
        }
    }
}

/// `GET /compute/{x}`: the cached operation, whether this request ran it,
/// and the sorted set of the values asked for most.
async fn compute_page(State(state): State<AppState>, Path(x): Path<i64>) -> Response {
    let computed = compute::compute(x).await;
    let redis_up = state.redis_up();
    // Counted after the call, so the page's list includes this request.
    let counted = compute::count(&state, x).await;
    let ms = computed.took.as_secs_f64() * 1000.0;
    let outcome = match (computed.ran, redis_up) {
        (false, _) => format!("cache hit: answered in {ms:.1} ms without running the operation"),
        (true, true) => format!("cache miss: computed in {ms:.0} ms and stored in Redis"),
        (true, false) => format!("computed in {ms:.0} ms, uncached: Redis is down"),
    };
    let stats = state.cache.stats();
    let mut body = format!(
        r#"<p><code>calculate_expensive_operation({x})</code> = <strong id="value">{value}</strong></p>
<p id="outcome" data-hit="{hit}">{outcome}</p>
<p>Runs of the operation in this process: <span id="body-runs">{runs}</span>. The cache's counters: {hits} hits, {misses} misses, {errors} errors.</p>
<form method="post" action="/compute/{x}/invalidate"><button id="invalidate" type="submit">Invalidate the cached result</button></form>
<h2>Most computed (sorted set <code>{popular}</code>)</h2>
"#,
        value = computed.value,
        hit = !computed.ran,
        runs = compute::body_runs(),
        hits = stats.hits,
        misses = stats.misses,
        errors = stats.errors,
        popular = compute::POPULAR,
    );
    match (counted, compute::most_computed(&state, 5).await) {
        (Ok(()), Ok(top)) => {
            body.push_str(r#"<ol id="popular">"#);
            for (value, count) in top {
                let plural = if count == 1 { "" } else { "s" };
                let _ = write!(body, "<li>{value}: {count} request{plural}</li>");
            }
            body.push_str("</ol>");
        }
        _ => body.push_str(r#"<p id="popular">Unavailable: Redis does not answer.</p>"#),
    }
    page(&format!("Compute {x}"), redis_up, &body).into_response()
}

/// `POST /compute/{x}/invalidate`: deletes the cached result through the
/// generated `calculate_expensive_operation_invalidate`, and tells every
/// page.
async fn invalidate(State(state): State<AppState>, Path(x): Path<i64>) -> Response {
    match compute::calculate_expensive_operation_invalidate(x).await {
        Ok(deleted) => {
            let what = if deleted { "deleted" } else { "was not cached" };
            events::publish(&state, format!("cache invalidated: {x} ({what})")).await;
            let body = format!(
                r#"<p id="invalidated">The cached result for {x} {what}.</p>
<p><a id="again" href="/compute/{x}">Compute {x} again</a></p>"#
            );
            page("Invalidated", state.redis_up(), &body).into_response()
        }
        Err(error) => {
            tracing::debug!(%error, "not invalidated");
            unavailable("Invalidation", state.redis_up())
        }
    }
}

#[derive(Deserialize)]
struct NewTask {
    task: String,
}

/// `POST /tasks`: pushes the task onto the queue.
async fn enqueue(State(state): State<AppState>, Form(form): Form<NewTask>) -> Response {
    let name = form.task.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Redirect::to("/tasks").into_response();
    }
    match tasks::enqueue(&state, name.to_owned()).await {
        Ok(()) => Redirect::to("/tasks").into_response(),
        Err(error) => {
            tracing::debug!(%error, "task not queued");
            unavailable("The task queue", state.redis_up())
        }
    }
}

/// `GET /tasks`: the form, then the queue's tasks by status, with how many
/// finished runs each processed one had (the hash `seed:task-runs`).
async fn tasks_page(State(state): State<AppState>) -> Response {
    let listed = tasks::list(&state, 100).await;
    let mut conn = state.conn.clone();
    let runs = conn
        .hgetall::<_, std::collections::HashMap<String, u64>>(tasks::RUNS)
        .await;
    let (Ok(listed), Ok(runs)) = (listed, runs) else {
        return unavailable("The task queue", state.redis_up());
    };
    let mut queued = String::new();
    let mut processed = String::new();
    for task in &listed {
        let name = escape(&task.name);
        match &task.status {
            apalis_core::task::status::Status::Done => {
                let runs = runs.get(&task.id).copied().unwrap_or(0);
                let _ = write!(
                    processed,
                    r#"<li data-runs="{runs}">{name} <small>(runs: {runs})</small></li>"#
                );
            }
            status => {
                let _ = write!(queued, "<li>{name} <small>({status})</small></li>");
            }
        }
    }
    let body = format!(
        r#"<form method="post" action="/tasks">
<label>Task <input id="task" name="task" required maxlength="200"></label>
<button id="enqueue" type="submit">Enqueue</button>
</form>
<h2>Queued</h2>
<ul id="queued">{queued}</ul>
<h2>Processed</h2>
<ul id="processed">{processed}</ul>"#
    );
    page("Tasks", state.redis_up(), &body).into_response()
}
