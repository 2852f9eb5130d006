#[redis_cached::redis_cached(ttl = 60, tags = ["users", user_id])]
fn profile(user_id: u64) -> String {
    user_id.to_string()
}

fn main() {}
