struct Service {
    rate: u64,
}

impl Service {
    #[redis_cached::redis_cached(ttl = 60)]
    fn quote(&self, item: u64) -> u64 {
        item * self.rate
    }
}

fn main() {}
