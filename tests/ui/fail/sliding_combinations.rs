#[redis_cached::redis_cached(ttl = 60, sliding = true, local = 100)]
fn with_local(x: u64) -> u64 {
    x
}

#[redis_cached::redis_cached(ttl = 60, sliding = true, stale = "1m", refresh = "xfetch")]
async fn with_renewal(x: u64) -> u64 {
    x
}

#[redis_cached::redis_cached(ttl = 60, sliding = true, ttl_of = |_: &u64| std::time::Duration::ZERO)]
fn with_ttl_of(x: u64) -> u64 {
    x
}

#[redis_cached::redis_cached(ttl = 60, sliding = 1)]
fn not_a_flag(x: u64) -> u64 {
    x
}

fn main() {}
