#[redis_cached::redis_cached(ttl = 60)]
const fn price(x: u64) -> u64 {
    x
}

fn main() {}
