//! One of the processes of `cross_process_lock.rs`: calls a `lock = "5s"`
//! function once on the Redis at the URL given as its argument, and prints
//! the result. The body counts its runs in Redis under `test:runs`.

use std::sync::LazyLock;
use std::time::Duration;

use redis_cached::{Cache, redis_cached};

fn url() -> String {
    std::env::args().nth(1).unwrap_or_default()
}

static CACHE: LazyLock<Cache> = LazyLock::new(|| Cache::new(&url()).expect("a redis:// URL"));

#[redis_cached(ttl = 60, lock = "5s", cache = CACHE)]
async fn expensive(x: u64) -> u64 {
    let mut conn = redis::Client::open(url())
        .and_then(|client| client.get_connection())
        .expect("connect to the test server");
    let _: i64 = redis::cmd("INCR")
        .arg("test:runs")
        .query(&mut conn)
        .expect("INCR");
    // Long enough for the other processes to find the lock taken.
    tokio::time::sleep(Duration::from_millis(300)).await;
    x * 3
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!("{}", expensive(14).await);
}
