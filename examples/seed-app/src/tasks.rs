//! The task queue: apalis' Redis storage holds the tasks (pushed by
//! `POST /tasks`), and a worker, in this process or another, takes each one
//! and processes it for about a second, as the article's worker does.
//!
//! apalis delivers a task at least once: a task whose worker stopped
//! answering (killed mid-task) goes back to the queue. So the worker counts
//! each finished run in the hash [`RUNS`] and skips a task that has one,
//! which a redelivered task whose first run had finished would be: none
//! runs twice unless its worker dies during its one second of work.

use std::time::Duration;

use apalis_core::backend::ext::BackendExt;
use apalis_core::backend::{Filter, ListAllTasks, TaskSink};
use apalis_core::error::BoxDynError;
use apalis_core::task::data::Data;
use apalis_core::task::status::Status;
use apalis_core::task::task_id::TaskId;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_redis::RedisStorage;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tower::limit::ConcurrencyLimitLayer;

use crate::events;
use crate::state::AppState;

/// The queue's name: apalis' keys start with it (`seed:tasks:active`, …).
pub const QUEUE: &str = "seed:tasks";

/// Finished runs by task id (`HINCRBY`): a task processed once has 1.
pub const RUNS: &str = "seed:task-runs";

/// How long processing a task takes, as in the article.
const WORK: Duration = Duration::from_secs(1);

/// How often an idle worker asks the queue for a task. Without it, apalis
/// asks again only at its next heartbeat (or when a task of its own ends):
/// a task pushed by another process would wait for up to
/// [`HEARTBEAT`].
const POLL: Duration = Duration::from_millis(250);

/// How often a worker tells the queue it is alive. One silent for two of
/// these is dead, and another worker's next heartbeat puts its task back
/// in the queue.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// A task as the form gave it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedTask {
    pub name: String,
}

pub type Storage = RedisStorage<SeedTask, ConnectionManager>;

pub fn storage(conn: ConnectionManager) -> Storage {
    let config = apalis_redis::Config::default()
        .queue(QUEUE)
        .heartbeat_interval(HEARTBEAT)
        // Dead after two silent heartbeats (apalis' default is ten).
        .missed_heartbeats(2)
        .batch_size(1);
    RedisStorage::new(conn).with_config(config)
}

/// Puts a task in the queue.
pub async fn enqueue(state: &AppState, name: String) -> Result<(), String> {
    let mut storage = state.tasks.clone();
    storage
        .push(SeedTask { name })
        .await
        .map_err(|error| error.to_string())
}

/// A task as `GET /tasks` lists it.
pub struct Listed {
    pub id: String,
    pub name: String,
    pub status: Status,
}

/// The queue's tasks, oldest first (ids are ULIDs), at most `n`.
pub async fn list(state: &AppState, n: u32) -> Result<Vec<Listed>, String> {
    let filter = Filter {
        status: None,
        page: 1,
        page_size: Some(n),
    };
    let tasks = state
        .tasks
        .list_all_tasks(&filter)
        .await
        .map_err(|error| error.to_string())?;
    Ok(tasks
        .into_iter()
        .map(|task| Listed {
            id: task
                .ctx()
                .task_id()
                .map(ToString::to_string)
                .unwrap_or_default(),
            name: serde_json::from_slice::<SeedTask>(&task.args)
                .map(|task| task.name)
                .unwrap_or_else(|_| "(unreadable)".to_owned()),
            status: task.ctx().status(),
        })
        .collect())
}

/// What the worker's handler is given besides the task.
#[derive(Clone)]
struct Worker {
    state: AppState,
    name: String,
}

/// Processes one task: a second of work, then one more finished run in
/// [`RUNS`] and a "task done" event. A task that has a finished run already
/// is a redelivery, and is not processed again.
async fn process(task: SeedTask, id: TaskId, worker: Data<Worker>) -> Result<(), BoxDynError> {
    let mut conn = worker.state.conn.clone();
    let id = id.to_string();
    let runs: Option<u64> = conn.hget(RUNS, &id).await?;
    if runs.is_some_and(|runs| runs > 0) {
        tracing::info!(task = %id, "already processed; not running it again");
        return Ok(());
    }
    tracing::info!(task = %id, name = %task.name, worker = %worker.name, "processing");
    tokio::time::sleep(WORK).await;
    conn.hincr::<_, _, _, ()>(RUNS, &id, 1).await?;
    events::publish(&worker.state, format!("task done: {}", task.name)).await;
    Ok(())
}

/// Runs a worker until `stop` turns true, then lets its task in progress
/// finish. When Redis fails, the worker stops with an error; it is made
/// again (under a new name: apalis refuses a name seen alive lately) once
/// Redis answers the health check.
pub async fn work(state: AppState, mut stop: watch::Receiver<bool>) {
    let base = format!("seed-worker-{}", std::process::id());
    for attempt in 0u64.. {
        let name = format!("{base}-{attempt}");
        let worker = WorkerBuilder::new(name.clone())
            .backend(state.tasks.clone().poll_with_interval(POLL))
            // One task at a time, as the article's worker: more workers
            // (processes) process more at once.
            .layer(ConcurrencyLimitLayer::new(1))
            .data(Worker {
                state: state.clone(),
                name: name.clone(),
            })
            .build(process);
        let mut signal = stop.clone();
        let stopped = async move {
            let _ = signal.wait_for(|stop| *stop).await;
            Ok::<(), std::io::Error>(())
        };
        tracing::info!(worker = %name, "worker started");
        match worker.run_until(stopped).await {
            Ok(()) => {}
            Err(error) => {
                tracing::warn!(worker = %name, %error, "worker stopped; starting again when Redis answers")
            }
        }
        // Again once Redis answers the health check (a second at most).
        tokio::time::sleep(Duration::from_millis(250)).await;
        while !state.redis_up() && !*stop.borrow() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = stop.wait_for(|stop| *stop) => {}
            }
        }
        if *stop.borrow() {
            return;
        }
    }
}
