struct Counter(u64);

impl Counter {
    #[redis_cached::redis_cached(ttl = 60, skip(self))]
    fn bump(&mut self, by: u64) -> u64 {
        self.0 += by;
        self.0
    }
}

fn main() {}
