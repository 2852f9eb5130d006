//! `tags = [...]`: string expressions over the arguments, owned or borrowed,
//! on sync and async functions, with the arguments that go with them.
#![deny(warnings)]

use std::borrow::Cow;

use redis_cached::redis_cached;

#[redis_cached(ttl = 60, tags = [format!("user:{user_id}"), "profiles"])]
fn profile(user_id: u64) -> String {
    user_id.to_string()
}

#[redis_cached(ttl = 60, stale = 30, lock = 5, local = 10, tags = [&region, Cow::Borrowed("prices")])]
async fn price(item: u64, region: String) -> Result<f64, std::io::Error> {
    Ok(item as f64 * region.len() as f64)
}

#[redis_cached(ttl = "5m", refresh = "xfetch", when = user != 0, tags = [user.to_string()])]
async fn feed(user: u64) -> Vec<u64> {
    vec![user]
}

fn main() {
    let _ = profile(1);
    let _ = profile_invalidate(1);
    let _ = redis_cached::default_cache().invalidate_tag_blocking("profiles");
    let _ = price(1, "eu".to_owned());
    let _ = feed(1);
}
