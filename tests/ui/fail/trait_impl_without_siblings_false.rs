trait Repo {
    fn get(&self, id: u64) -> Option<String>;
}

struct PgRepo;

impl Repo for PgRepo {
    #[redis_cached::redis_cached(ttl = 60, skip(self))]
    fn get(&self, id: u64) -> Option<String> {
        Some(id.to_string())
    }
}

fn main() {}
