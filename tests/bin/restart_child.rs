//! A separate process for `tests/restart.rs`: computes `slow_double(21)`
//! through the default cache (configured by `REDIS_CACHED_URL`) and prints
//! whether its body ran.

use redis_cached::redis_cached;

#[redis_cached(ttl = 60)]
fn slow_double(x: u64) -> u64 {
    println!("body ran");
    x * 2
}

fn main() {
    println!("result {}", slow_double(21));
}
