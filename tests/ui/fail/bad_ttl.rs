#[redis_cached::redis_cached(ttl = 0)]
fn zero(x: u64) -> u64 {
    x
}

#[redis_cached::redis_cached(ttl = -5)]
fn negative(x: u64) -> u64 {
    x
}

#[redis_cached::redis_cached(ttl = "5 minutes")]
fn unknown_unit(x: u64) -> u64 {
    x
}

#[redis_cached::redis_cached(ttl = "0s")]
fn zero_string(x: u64) -> u64 {
    x
}

#[redis_cached::redis_cached(ttl = 1.5)]
fn float(x: u64) -> u64 {
    x
}

fn main() {}
