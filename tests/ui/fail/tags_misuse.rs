#[redis_cached::redis_cached(ttl = 60, tags = "user")]
fn not_a_list(user: u64) -> u64 {
    user
}

#[redis_cached::redis_cached(ttl = 60, tags = [])]
fn empty(user: u64) -> u64 {
    user
}

#[redis_cached::redis_cached(ttl = 60, sliding = true, tags = ["users"])]
fn sliding(user: u64) -> u64 {
    user
}

fn main() {}
