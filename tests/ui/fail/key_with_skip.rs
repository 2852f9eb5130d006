#[redis_cached::redis_cached(ttl = 60, key = item, skip(region))]
fn price(item: u64, region: String) -> u64 {
    let _ = region;
    item
}

fn main() {}
