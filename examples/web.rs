//! A web application with a cached query behind it, measured: axum serves
//!
//! - `GET /price/{item}?region=eu`: the price, from `price`, a cached async
//!   fn whose body stands for a 50 ms database query;
//! - `GET /uncached/price/{item}?region=eu`: the same handler without the
//!   cache (`price_uncached`, which runs the body), for comparison;
//! - `POST /price/{item}/invalidate?region=eu`: drops that cached price;
//! - `GET /metrics`: the `metrics` feature's counters, as Prometheus text.
//!
//! ```text
//! cargo run --release -p examples --example web
//! wrk -t2 -c32 -d10s --latency 'http://127.0.0.1:3000/price/7?region=eu'
//! wrk -t2 -c32 -d10s --latency 'http://127.0.0.1:3000/uncached/price/7?region=eu'
//! curl -s localhost:3000/metrics
//! ```
//!
//! Listens on 127.0.0.1, port `PORT` (default 3000). Uses `REDIS_CACHED_URL`
//! (else `REDIS_URL`, else `redis://127.0.0.1:6379`); without a reachable
//! Redis it says so and uses the in-memory cache. Prints no URL: one may
//! hold a password.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use redis_cached::{Cache, redis_cached};
use serde::Deserialize;

/// A price in cents of `item` in `region`, as the database would give it.
#[redis_cached(ttl = 60, name = "web::price")]
async fn price(item: String, region: String) -> u64 {
    tokio::time::sleep(Duration::from_millis(50)).await; // the query
    let digits: u64 = item.bytes().chain(region.bytes()).map(u64::from).sum();
    100 + digits % 900
}

/// `?region=…`, `eu` if absent.
#[derive(Deserialize)]
struct Region {
    region: Option<String>,
}

impl Region {
    fn name(self) -> String {
        self.region.unwrap_or_else(|| "eu".to_owned())
    }
}

async fn cached(Path(item): Path<String>, Query(region): Query<Region>) -> String {
    price(item, region.name()).await.to_string()
}

async fn uncached(Path(item): Path<String>, Query(region): Query<Region>) -> String {
    price_uncached(item, region.name()).await.to_string()
}

async fn invalidate(
    Path(item): Path<String>,
    Query(region): Query<Region>,
) -> (StatusCode, String) {
    match price_invalidate(item, region.name()).await {
        Ok(true) => (StatusCode::OK, "deleted\n".to_owned()),
        Ok(false) => (StatusCode::OK, "not cached\n".to_owned()),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, format!("{error}\n")),
    }
}

async fn scrape(State(prometheus): State<PrometheusHandle>) -> String {
    prometheus.render()
}

/// The cache at the URL of the environment if that Redis answers, else an
/// in-memory one.
async fn choose_cache() -> Cache {
    let url = redis_cached::env_url();
    let error = match Cache::new(&url) {
        Ok(cache) => match cache.ping().await {
            Ok(()) => return cache,
            Err(error) => error,
        },
        Err(error) => error,
    };
    // Not the URL itself: it may hold a password (the error shows it redacted).
    println!("No usable Redis ({error}); using the in-memory cache instead.");
    Cache::in_memory()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Histograms with buckets (not summaries): they add up across instances.
    let seconds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];
    let prometheus = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &seconds)?
        .install_recorder()?;
    let upkeep = prometheus.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    redis_cached::set_default(choose_cache().await).expect("no cached call ran yet");
    price_invalidate_all().await?;

    let app = Router::new()
        .route("/price/{item}", get(cached))
        .route("/uncached/price/{item}", get(uncached))
        .route("/price/{item}/invalidate", post(invalidate))
        .route("/metrics", get(scrape))
        .with_state(prometheus);
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_owned());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
