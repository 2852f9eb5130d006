#[redis_cached::redis_cached(ttl = 60)]
struct Price(u64);

fn main() {}
