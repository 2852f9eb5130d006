//! Shapes of functions the attribute accepts and must keep as written.
#![deny(warnings)]

use std::borrow::Cow;

use redis_cached::redis_cached;
use serde::{Deserialize, Serialize};

// A user's own names must not break the generated code.
#[allow(dead_code)]
type Result = ();
#[allow(dead_code)]
mod redis {}
#[allow(dead_code)]
mod serde_json {}

#[derive(Serialize, Deserialize)]
pub struct Point {
    x: i32,
    y: i32,
}

/// Doc comments and visibility survive.
#[redis_cached(ttl = 60)]
pub fn plain(a: u64, b: &str) -> String {
    format!("{a}{b}")
}

#[redis_cached(ttl = "1h30m")]
pub(crate) async fn async_result(id: u64) -> std::result::Result<Point, std::io::Error> {
    if id == 0 {
        return Err(std::io::Error::other("zero"));
    }
    let n: i32 = "3".parse().map_err(std::io::Error::other)?;
    Ok(Point { x: n, y: n })
}

#[redis_cached(ttl = 5)]
fn option(id: u64) -> Option<Point> {
    (id > 0).then_some(Point { x: 1, y: 2 })
}

#[redis_cached(ttl = 5)]
fn patterns(Point { x, y }: Point, (a, mut b): (i32, i32), mut c: i32) -> i32 {
    b += 1;
    c += 1;
    x + y + a + b + c
}

#[redis_cached(ttl = 5)]
fn generic<T>(value: T) -> Vec<T>
where
    T: Serialize + for<'de> Deserialize<'de>,
{
    vec![value]
}

#[redis_cached(ttl = 5)]
fn borrowed(name: Cow<'_, str>, ids: &[u32], maybe: Option<&str>) -> usize {
    name.len() + ids.len() + maybe.map_or(0, str::len)
}

#[redis_cached(ttl = 5)]
async fn borrows_across_await(name: &str) -> usize {
    tokio::task::yield_now().await;
    name.len()
}

/// # Safety
/// None needed; `unsafe` must survive the rewrite.
#[redis_cached(ttl = 5)]
unsafe fn unsafe_fn(x: u8) -> u8 {
    x
}

#[redis_cached(ttl = 5)]
fn early_return(x: u8) -> u8 {
    if x > 10 {
        return 10;
    }
    x
}

pub struct Meters(pub u32);

impl Meters {
    #[redis_cached(ttl = 5)]
    pub fn double(x: u32) -> u32 {
        x * 2
    }
}

fn main() {
    let _ = plain(1, "a");
    let _ = async_result(1);
    let _ = option(1);
    let _ = patterns(Point { x: 1, y: 2 }, (1, 2), 3);
    let _ = generic(1u8);
    let _ = borrowed(Cow::Borrowed("a"), &[1], None);
    let _ = borrows_across_await("a");
    // SAFETY: unsafe_fn has no preconditions.
    let _ = unsafe { unsafe_fn(1) };
    let _ = early_return(1);
    let _ = Meters::double(1);
}
