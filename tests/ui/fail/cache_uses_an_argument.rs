use redis_cached::Cache;

struct Repo {
    cache: Cache,
}

impl Repo {
    #[redis_cached::redis_cached(ttl = 60, cache = self.cache, skip(self))]
    fn find(&self, id: u64) -> u64 {
        id
    }

    #[redis_cached::redis_cached(ttl = 60, cache = self.cache, skip(self), siblings = false)]
    fn fine(&self, id: u64) -> u64 {
        id
    }
}

fn main() {}
