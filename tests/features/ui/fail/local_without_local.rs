#[redis_cached::redis_cached(ttl = 60, local = 100)]
async fn double(x: u64) -> u64 {
    x * 2
}

fn main() {
    drop(double(1));
}
