use std::time::Duration;

// The stored value of a `Result<T, E>` function is `T`.
#[redis_cached::redis_cached(ttl = 60, ttl_of = |r: &Result<u64, String>| Duration::from_secs(1))]
fn whole_result(x: u64) -> Result<u64, String> {
    Ok(x)
}

// `ttl_of` returns a `Duration`, not seconds.
#[redis_cached::redis_cached(ttl = 60, ttl_of = |n: &u64| *n)]
fn seconds(x: u64) -> u64 {
    x
}

fn main() {}
