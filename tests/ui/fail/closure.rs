fn main() {
    let price = #[redis_cached::redis_cached(ttl = 60)]
    |x: u64| x * 2;
    price(1);
}
