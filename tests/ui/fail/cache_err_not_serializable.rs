#[derive(Debug)]
struct DbError;

#[redis_cached::redis_cached(ttl = 60, cache_err = true)]
fn load(id: u64) -> Result<u64, DbError> {
    if id == 0 { Err(DbError) } else { Ok(id) }
}

fn main() {}
