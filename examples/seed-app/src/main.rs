//! The seed article's web application, whole, in Rust: sessions, the cached
//! expensive operation, a task queue and live events, all kept in Redis.
//!
//! ```text
//! cargo run -p seed-app            # the web server on 127.0.0.1:3000, and a worker
//! cargo run -p seed-app -- web     # the web server alone
//! cargo run -p seed-app -- worker  # a worker alone
//! ```
//!
//! Reads `REDIS_URL` (default `redis://127.0.0.1:6379`), `PORT` (default
//! 3000), `SESSION_SECRET` (64 bytes or more, signing the session cookie;
//! without it, a random key for this process) and `RUST_LOG` (default
//! `info`). See the package's README for what each page shows of Redis.

use std::time::Duration;

use redis_cached::Cache;
use tokio::sync::watch;
use tower_sessions::cookie::SameSite;
use tower_sessions::cookie::time::Duration as CookieDuration;
use tower_sessions::{Expiry, SessionManagerLayer};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

mod compute;
mod config;
mod events;
mod html;
mod routes;
mod session;
mod state;
mod tasks;

use config::Config;
use session::RedisSessionStore;
use state::AppState;

/// How long a session lasts after its last change.
const SESSION_IDLE: CookieDuration = CookieDuration::hours(1);

#[tokio::main]
async fn main() {
    // Logs go to stderr: stdout has the one line that says where it listens.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|filter| filter.parse().ok())
        .unwrap_or_else(|| "info".parse().expect("a valid filter"));
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with::<tracing_subscriber::filter::Targets>(filter)
        .init();
    if let Err(error) = run().await {
        eprintln!("seed-app: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let config = Config::from_env()?;
    // Errors from here on name no URL: it may hold a password (the cache's
    // errors show it with the password replaced).
    let cache = Cache::builder(&config.redis_url)
        .prefix("seed:")
        .connect_timeout(Duration::from_millis(500))
        .build()
        .map_err(|error| format!("REDIS_URL is not usable: {error}"))?;
    redis_cached::set_default(cache.clone())
        .map_err(|_| "the default cache was set already".to_owned())?;
    let state = AppState::new(&config.redis_url, cache)
        .map_err(|error| format!("REDIS_URL is not usable: {:?}", error.kind()))?;
    state.check_now().await;
    state.spawn_health_check();
    if !state.redis_up() {
        tracing::warn!("Redis does not answer yet; the pages say so until it does");
    }

    let (stop, stopped) = watch::channel(false);
    let worker = config
        .mode
        .works()
        .then(|| tokio::spawn(tasks::work(state.clone(), stopped)));

    if config.mode.serves() {
        let sessions = Cache::builder(&config.redis_url)
            .prefix(session::PREFIX)
            .connect_timeout(Duration::from_millis(500))
            .build()
            .map_err(|error| format!("REDIS_URL is not usable: {error}"))?;
        if !config.session_key_from_env {
            tracing::warn!(
                "SESSION_SECRET is not set: session cookies are signed with a key made for this \
                 process, so sessions end when it stops"
            );
        }
        let layer = SessionManagerLayer::new(RedisSessionStore::new(sessions))
            .with_name("seed_session")
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            // Served over plain HTTP on 127.0.0.1; behind TLS, set it to true.
            .with_secure(false)
            .with_expiry(Expiry::OnInactivity(SESSION_IDLE))
            .with_signed(config.session_key.clone());
        events::spawn_listener(&state);
        let app = routes::router(state.clone()).layer(layer);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(|error| format!("cannot listen on 127.0.0.1:{}: {error}", config.port))?;
        let address = listener.local_addr().map_err(|error| error.to_string())?;
        println!("listening on http://{address}");
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "the server stopped");
            }
        });
    }

    shutdown_signal().await;
    tracing::info!("stopping");
    let _ = stop.send(true);
    if let Some(worker) = worker {
        // The task in progress finishes (about a second), then the worker
        // leaves the queue; the web server's open pages are simply dropped.
        let _ = tokio::time::timeout(Duration::from_secs(5), worker).await;
    }
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
