#[redis_cached::redis_cached(ttl = 60)]
fn bump(counter: &mut u64, by: u64) -> u64 {
    *counter += by;
    *counter
}

fn main() {}
