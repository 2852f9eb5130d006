const SECONDS: i32 = 60;

#[redis_cached::redis_cached(ttl = SECONDS)]
fn signed(x: u64) -> u64 {
    x
}

#[redis_cached::redis_cached(ttl = format!("{}m", x))]
async fn text(x: u64) -> u64 {
    x
}

fn main() {}
