#[redis_cached::redis_cached(ttl = 60, when = user)]
fn profile(user: u64) -> String {
    user.to_string()
}

#[redis_cached::redis_cached(ttl = 60, when = Some(user))]
async fn name(user: u64) -> String {
    user.to_string()
}

fn main() {}
