#[redis_cached::redis_cached(ttl = 60, crate = 5)]
fn one(id: u64) -> u64 {
    id
}

#[redis_cached::redis_cached(ttl = 60, crate = "not a path", crate = "redis_cached")]
fn two(id: u64) -> u64 {
    id
}

fn main() {}
