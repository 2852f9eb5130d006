#[redis_cached::redis_cached(ttl = 60, ttls = 60)]
fn extra_letter(x: u64) -> u64 {
    x
}

#[redis_cached::redis_cached(ttl = 60, lcok = "5s")]
fn swapped_letters(x: u64) -> u64 {
    x
}

#[redis_cached::redis_cached(ttl = 60, cache_nones = false, bogus = 1)]
fn one_near_miss_one_not(x: Option<u64>) -> Option<u64> {
    x
}

fn main() {}
