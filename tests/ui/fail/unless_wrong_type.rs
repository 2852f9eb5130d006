#[redis_cached::redis_cached(ttl = 60, unless = |n: &u32| *n == 0)]
fn count(items: u64) -> u64 {
    items
}

fn main() {}
