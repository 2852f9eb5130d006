struct Shop;

#[redis_cached::redis_cached(ttl = 60)]
impl Shop {
    fn price() -> u64 {
        1
    }
}

fn main() {}
