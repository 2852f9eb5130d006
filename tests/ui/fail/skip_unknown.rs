#[redis_cached::redis_cached(ttl = 60, skip(nope, self))]
fn price(item: u64, (a, b): (u8, u8)) -> u64 {
    item + u64::from(a + b)
}

#[redis_cached::redis_cached(ttl = 60, skip = item)]
fn cost(item: u64) -> u64 {
    item
}

fn main() {}
