#[redis_cached::redis_cached(ttl = 60, cache_none = false)]
fn price(item: u64) -> u64 {
    item
}

#[redis_cached::redis_cached(ttl = 60, cache_err = true)]
fn find(item: u64) -> Option<u64> {
    Some(item)
}

#[redis_cached::redis_cached(ttl = 60, cache_err = true)]
fn aliased(item: u64) -> std::io::Result<u64> {
    Ok(item)
}

#[redis_cached::redis_cached(ttl = 60, cache_none = "no")]
fn not_a_bool(item: u64) -> Option<u64> {
    Some(item)
}

fn main() {}
