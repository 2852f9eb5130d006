#[redis_cached::redis_cached(ttl = 60, compress = 1)]
fn a_number(x: u64) -> u64 {
    x
}

#[redis_cached::redis_cached(ttl = 60, compress = "yes")]
fn a_string(x: u64) -> u64 {
    x
}

fn main() {}
