#[redis_cached::redis_cached(ttl = 60)]
fn prices(x: u64) -> Vec<impl std::fmt::Display> {
    vec![x]
}

fn main() {}
