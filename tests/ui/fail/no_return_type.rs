#[redis_cached::redis_cached(ttl = 60)]
fn log_price(x: u64) {
    println!("{x}");
}

fn main() {}
