//! Live events: whoever does something (a worker finishing a task, a page
//! invalidating a cached value) `PUBLISH`es a line on one Redis channel;
//! each web process subscribes to it and pushes every line to its open pages
//! as server-sent events (`GET /events`). Through Redis, so a worker in
//! another process reaches the pages too.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use redis::AsyncCommands;
use tokio::sync::broadcast;

use crate::state::AppState;

/// The Redis channel every event goes through.
pub const CHANNEL: &str = "seed:events";

/// This process's fan-out of the channel to its open pages.
#[derive(Clone)]
pub struct Events {
    local: broadcast::Sender<String>,
}

impl Events {
    pub fn new() -> Self {
        Self {
            local: broadcast::channel(256).0,
        }
    }
}

/// Publishes `line` to every page of every web process. Events are best
/// effort: with Redis down, the line is logged and dropped.
pub async fn publish(state: &AppState, line: String) {
    let mut conn = state.conn.clone();
    if let Err(error) = conn.publish::<_, _, ()>(CHANNEL, &line).await {
        tracing::debug!(%error, "event not published");
    }
}

/// Subscribes to [`CHANNEL`] for as long as the process runs, subscribing
/// again after Redis comes back.
pub fn spawn_listener(state: &AppState) {
    let client = state.client.clone();
    let local = state.events.local.clone();
    tokio::spawn(async move {
        loop {
            if let Err(error) = listen(&client, &local).await {
                tracing::debug!(%error, "event subscription lost; subscribing again");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

async fn listen(
    client: &redis::Client,
    local: &broadcast::Sender<String>,
) -> redis::RedisResult<()> {
    let connect = client.get_async_pubsub();
    let mut pubsub = tokio::time::timeout(Duration::from_secs(1), connect)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    pubsub.subscribe(CHANNEL).await?;
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let line: String = message.get_payload()?;
        // No page open: nobody to tell.
        let _ = local.send(line);
    }
    Ok(())
}

/// `GET /events`: the events published from now on, one SSE message each.
pub async fn stream(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = state.events.local.subscribe();
    let lines = futures_util::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(line) => return Some((Ok(Event::default().data(line)), receiver)),
                // A slow page misses some events, and gets the next ones.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(lines).keep_alive(KeepAlive::default())
}
