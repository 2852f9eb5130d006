struct Connection;

#[redis_cached::redis_cached(ttl = 60)]
fn price(conn: &Connection, item: u64) -> u64 {
    let _ = conn;
    item
}

fn main() {}
