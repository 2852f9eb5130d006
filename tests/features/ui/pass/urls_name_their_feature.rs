//! Without features: `async fn`s on one Redis build, and a URL that needs a
//! feature is a configuration error naming it.

use redis_cached::{Cache, ErrorKind};

#[redis_cached::redis_cached(ttl = 60)]
async fn double(x: u64) -> u64 {
    x * 2
}

fn main() {
    drop(double(1));
    for (url, feature) in [
        ("mem://", "the `memory` feature"),
        ("redis://10.0.0.1:6379,redis://10.0.0.2:6379", "the `cluster` feature"),
        ("redis+sentinel://10.0.0.1:26379/mymaster", "the `sentinel` feature"),
    ] {
        let error = Cache::new(url).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config, "{url}");
        assert!(error.to_string().contains(feature), "{url}: {error}");
    }
    assert!(Cache::new("redis://127.0.0.1:6379").is_ok());
}
