#[redis_cached::redis_cached(ttl = 60, local = 0)]
fn nothing_kept(x: u32) -> u32 {
    x
}

#[redis_cached::redis_cached(ttl = 60, local = "many")]
fn unreadable(x: u32) -> u32 {
    x
}

fn main() {}
