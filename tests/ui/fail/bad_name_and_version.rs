#[redis_cached::redis_cached(ttl = 60, name = "")]
fn empty(item: u64) -> u64 {
    item
}

#[redis_cached::redis_cached(ttl = 60, name = "shop::{price}")]
fn braces(item: u64) -> u64 {
    item
}

#[redis_cached::redis_cached(ttl = 60, name = shop)]
fn not_a_string(item: u64) -> u64 {
    item
}

#[redis_cached::redis_cached(ttl = 60, version = -1)]
fn negative(item: u64) -> u64 {
    item
}

#[redis_cached::redis_cached(ttl = 60, version = 99999999999)]
fn huge(item: u64) -> u64 {
    item
}

fn main() {}
