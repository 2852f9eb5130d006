#[redis_cached::redis_cached(ttl = 60)]
fn double(x: u64) -> u64 {
    x * 2
}

fn main() {
    double(1);
}
