#[redis_cached::redis_cached(ttl = 60, refresh = "lru")]
fn unknown_strategy(x: u64) -> u64 {
    x
}

#[redis_cached::redis_cached(ttl = 60, beta = 2.0)]
fn beta_without_refresh(x: u64) -> u64 {
    x
}

#[redis_cached::redis_cached(ttl = 60, refresh = "xfetch", beta = 0.0)]
fn zero_beta(x: u64) -> u64 {
    x
}

#[redis_cached::redis_cached(ttl = 60, stale = 0)]
fn zero_stale(x: u64) -> u64 {
    x
}

#[redis_cached::redis_cached(ttl = 60, lock = "soon")]
fn bad_lock(x: u64) -> u64 {
    x
}

fn main() {}
