#[redis_cached::redis_cached]
fn price(x: u64) -> u64 {
    x
}

#[redis_cached::redis_cached()]
fn cost(x: u64) -> u64 {
    x
}

fn main() {}
