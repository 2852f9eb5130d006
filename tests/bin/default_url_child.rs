//! A separate process for `tests/breaker.rs` and `tests/secrets.rs`: makes
//! `CALLS` (default 50) cached calls through the default cache, configured
//! by `REDIS_CACHED_URL`, with every log line (all levels, no colours, no
//! times) written to stdout, then prints `errors N`.

use redis_cached::redis_cached;

#[redis_cached(ttl = 60)]
fn double(x: u64) -> u64 {
    x * 2
}

fn main() {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .without_time()
        .with_writer(std::io::stdout)
        .init();
    let calls: u64 = std::env::var("CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    for i in 0..calls {
        assert_eq!(double(i), i * 2);
    }
    println!("errors {}", redis_cached::default_cache().stats().errors);
}
