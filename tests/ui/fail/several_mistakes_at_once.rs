#[redis_cached::redis_cached(ttl = 0, bogus = 1)]
const fn everything(counter: &mut u64) -> impl Copy {
    *counter
}

fn main() {}
