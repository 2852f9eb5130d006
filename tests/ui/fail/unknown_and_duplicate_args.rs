#[redis_cached::redis_cached(ttl = 60, tll = 60)]
fn typo(x: u64) -> u64 {
    x
}

#[redis_cached::redis_cached(ttl = 60, ttl = 30)]
fn twice(x: u64) -> u64 {
    x
}

#[redis_cached::redis_cached(ttl)]
fn no_value(x: u64) -> u64 {
    x
}

fn main() {}
