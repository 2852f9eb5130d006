//! The program a deploy ships twice, for `tests/deploy.rs`: built as the
//! package `deploy-v1` and as `deploy-v2`, both under the crate name
//! `deploy`, so that both builds' functions and types have the same paths
//! (`deploy::field_reorder::get`, `deploy::Bounds`) and their keys differ by
//! nothing but what the types are made of. The feature `v2` (on in
//! `deploy-v2` only) switches the definitions of the types an ordinary
//! refactor changed; every other type is the same code in both builds.
//!
//! Each case is a module ([`case!`]) holding what its body computes
//! (`value`), the cached function three ways (`get`, `get_async`, and
//! `get_local` with the in-process tier), and a [`Case`] that calls them and
//! checks every answer against `value`: an answer this build's body would
//! not have computed is a value of the other build's shape.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU64;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use redis_cached::Cache;
use serde::{Deserialize, Serialize};

/// Which build this is.
pub const BUILD: &str = if cfg!(feature = "v2") { "v2" } else { "v1" };

/// The cache every function of the program uses; the process running the
/// build sets it once.
pub static CACHE: Slot = Slot(OnceLock::new());

/// A [`Cache`] set once, at the start of the process.
pub struct Slot(OnceLock<Cache>);

impl Slot {
    /// Sets the cache; fails if it was set already.
    pub fn set(&self, cache: Cache) {
        assert!(self.0.set(cache).is_ok(), "the program's cache is set once");
    }
}

impl Deref for Slot {
    type Target = Cache;
    fn deref(&self) -> &Cache {
        self.0.get().expect("set deploy::CACHE before calling")
    }
}

/// One cached function of the program, as a test drives it.
pub struct Case {
    /// The case's module name.
    pub name: &'static str,
    /// Calls `get(x)`.
    pub get: fn(u64) -> Checked,
    /// Calls `get_local(x)` (the in-process tier, in front of the store).
    pub get_local: fn(u64) -> Checked,
    /// Calls `get_async(x)`.
    pub get_async: fn(u64) -> Pin<Box<dyn Future<Output = Checked> + Send>>,
    /// How often the body ran in this process, whichever way it was called.
    pub runs: fn() -> usize,
}

/// `Ok` if an answer is what this build's body computes for its argument;
/// else the answer and that value. An answer the body would not have given
/// is the other build's bytes, read as this build's type. (Of std types
/// only, so that both builds' `Case`s hold the same function types.)
pub type Checked = Result<(), String>;

/// Compares an answer with what the body computes.
pub fn check<T: PartialEq + std::fmt::Debug>(got: T, own: T) -> Checked {
    match got == own {
        true => Ok(()),
        false => Err(format!("{got:?}, its body computes {own:?}")),
    }
}

/// `$v1` in the first build, `$v2` in the second: for a value whose type
/// changed.
macro_rules! build {
    ($v1:expr, $v2:expr $(,)?) => {{
        #[cfg(not(feature = "v2"))]
        let value = $v1;
        #[cfg(feature = "v2")]
        let value = $v2;
        value
    }};
}

/// A case: `case!(name -> Type = |x| value)` makes `mod name` with
/// `value(x)`, the cached `get`, `get_async` and `get_local`, each counting
/// its body's runs, and their [`Case`] as `CASE`. The default name of each
/// (`deploy::name::get`, …) is the same in both builds.
macro_rules! case {
    ($(#[$doc:meta])* $name:ident -> $ty:ty = |$x:ident| $value:expr) => {
        $(#[$doc])*
        pub mod $name {
            #[allow(unused_imports)]
            use super::*;
            use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

            static RUNS: AtomicUsize = AtomicUsize::new(0);

            /// What the body computes, without counting a run.
            #[allow(unused_variables)] // a build's value may ignore `x`
            pub fn value($x: u64) -> $ty {
                $value
            }

            /// The cached function.
            #[redis_cached::redis_cached(ttl = 600, cache = crate::CACHE)]
            pub fn get(x: u64) -> $ty {
                RUNS.fetch_add(1, SeqCst);
                value(x)
            }

            /// The cached function, with the in-process tier.
            #[redis_cached::redis_cached(ttl = 600, cache = crate::CACHE, local = 1000)]
            pub fn get_local(x: u64) -> $ty {
                RUNS.fetch_add(1, SeqCst);
                value(x)
            }

            /// The cached function, async.
            #[redis_cached::redis_cached(ttl = 600, cache = crate::CACHE)]
            pub async fn get_async(x: u64) -> $ty {
                RUNS.fetch_add(1, SeqCst);
                value(x)
            }

            /// This case, for a test to drive.
            pub const CASE: Case = Case {
                name: stringify!($name),
                get: |x| check(get(x), value(x)),
                get_local: |x| check(get_local(x), value(x)),
                get_async: |x| Box::pin(async move { check(get_async(x).await, value(x)) }),
                runs: || RUNS.load(SeqCst),
            };
        }
    };
}

// The types a refactor changed. Each keeps its name (and so the name of the
// function's return type, which keys already hold): only its shape
// changed. The values the first build writes are picked so that today's
// decoder reads them whole as the second build's type, without an error (an
// error is a miss anyway): the worst case, a wrong answer. A renamed variant
// or struct and `Vec<u8>` → `String` keep their meaning, so the old bytes
// read as the very value the new body computes: there only the body's runs
// show that the new build read the old entry, which it must not (names and
// `String` vs bytes are part of the shape).

/// `min` and `max` swap places.
#[cfg(not(feature = "v2"))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bounds {
    pub min: i64,
    pub max: i64,
}

/// `min` and `max` swap places.
#[cfg(feature = "v2")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bounds {
    pub max: i64,
    pub min: i64,
}

/// `Pending` comes in at the top.
#[cfg(not(feature = "v2"))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Status {
    Active,
    Suspended,
}

/// `Pending` comes in at the top.
#[cfg(feature = "v2")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Status {
    Pending,
    Active,
    Suspended,
}

/// `Editor` is renamed `Author`.
#[cfg(not(feature = "v2"))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Role {
    Viewer,
    Editor,
}

/// `Editor` is renamed `Author`.
#[cfg(feature = "v2")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Role {
    Viewer,
    Author,
}

/// `cents` becomes signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Money {
    #[cfg(not(feature = "v2"))]
    pub cents: u32,
    #[cfg(feature = "v2")]
    pub cents: i32,
    pub currency: String,
}

/// `value` becomes an `f64`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    #[cfg(not(feature = "v2"))]
    pub value: u64,
    #[cfg(feature = "v2")]
    pub value: f64,
    pub unit: String,
}

/// The top byte of every first-build `Reading::value`: the length of what
/// follows the value (`"ns"`, 3 bytes), so that an `f64`, which takes 8 of
/// its 9 bytes, leaves the 9th to be read as the unit's length.
const READING_TOP: u64 = 3 << 56;

/// An order; its `Line`s gain a field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub lines: Vec<Line>,
    pub flags: Vec<u8>,
}

/// `gift` is added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub sku: u32,
    pub qty: u32,
    #[cfg(feature = "v2")]
    pub gift: bool,
}

/// A cart; its `Item`s lose a field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cart {
    pub items: Vec<Item>,
    pub tags: Vec<u8>,
}

/// `gift` is removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub sku: u32,
    pub qty: u32,
    #[cfg(not(feature = "v2"))]
    pub gift: bool,
}

/// Its field's struct is renamed (`Address` → `Place`). A rename of the
/// return type itself changes the key today already: keys hold its name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shipment {
    #[cfg(not(feature = "v2"))]
    pub to: Address,
    #[cfg(feature = "v2")]
    pub to: Place,
}

/// Renamed `Place` by the second build.
#[cfg(not(feature = "v2"))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub city: String,
}

/// `Address`, renamed.
#[cfg(feature = "v2")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Place {
    pub city: String,
}

/// `Option<String>` becomes `String`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    #[cfg(not(feature = "v2"))]
    pub nickname: Option<String>,
    #[cfg(feature = "v2")]
    pub nickname: String,
}

/// `Vec<u8>` becomes `String` (the same bytes in bincode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Blob {
    #[cfg(not(feature = "v2"))]
    pub data: Vec<u8>,
    #[cfg(feature = "v2")]
    pub data: String,
}

case!(field_reorder -> Bounds = |x| Bounds { min: x as i64, max: x as i64 + 10 });
case!(variant_inserted -> Status = |x| match x % 2 {
    0 => Status::Active,
    _ => Status::Suspended,
});
case!(variant_renamed -> Role = |x| match x % 2 {
    0 => Role::Viewer,
    _ => build!(Role::Editor, Role::Author),
});
case!(u32_to_i32 -> Money = |x| Money {
    cents: build!(100 * x as u32 + 1, 100 * x as i32 + 1),
    currency: "EUR".into(),
});
case!(u64_to_f64 -> Reading = |x| Reading {
    value: build!(READING_TOP | x, (READING_TOP | x) as f64),
    unit: "ns".into(),
});
// `flags: [0]` after one line: the second build reads the line's `gift` from
// the flags' length (1: `true`) and an empty `flags` from the 0.
case!(nested_field_added -> Order = |x| Order {
    lines: vec![build!(
        Line { sku: x as u32, qty: 2 },
        Line { sku: x as u32, qty: 2, gift: false },
    )],
    flags: build!(vec![0], vec![]),
});
// A gift line and no tags: the second build reads `tags` from `gift` (1)
// and the empty tags' length (0).
case!(nested_field_removed -> Cart = |x| Cart {
    items: vec![build!(
        Item { sku: x as u32, qty: 2, gift: true },
        Item { sku: x as u32, qty: 2 },
    )],
    tags: vec![],
});
case!(struct_renamed -> Shipment = |x| Shipment {
    to: build!(Address { city: format!("city {x}") }, Place { city: format!("city {x}") }),
});
case!(option_to_value -> Profile = |x| Profile {
    nickname: build!(None, format!("user {x}")),
});
case!(bytes_to_string -> Blob = |x| Blob {
    data: build!(format!("blob {x}").into_bytes(), format!("blob {x}")),
});

/// Every case whose type changed shape between the builds.
pub const CHANGED: &[Case] = &[
    field_reorder::CASE,
    variant_inserted::CASE,
    variant_renamed::CASE,
    u32_to_i32::CASE,
    u64_to_f64::CASE,
    nested_field_added::CASE,
    nested_field_removed::CASE,
    struct_renamed::CASE,
    option_to_value::CASE,
    bytes_to_string::CASE,
];

// The types no build changes, the same code in both: leaf types whose
// `Deserialize` checks its input, maps, pointers, renames, recursion.

/// Plain fields, as a pointer's target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub x: u64,
    pub y: u64,
}

/// chrono's date-times (strings, parsed on the way in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chrono {
    pub at: chrono::DateTime<chrono::Utc>,
    pub local: chrono::NaiveDateTime,
    pub day: chrono::NaiveDate,
}

/// `time`'s date-times (tuples of numbers, range-checked on the way in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Time {
    pub at: time::OffsetDateTime,
    pub local: time::PrimitiveDateTime,
    pub day: time::Date,
}

/// Names changed by `#[serde(rename)]` on the type, a field and a variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Account")]
pub struct Renamed {
    #[serde(rename = "id")]
    pub user_id: u64,
    pub kind: Kind,
}

/// A variant with a serde name of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Kind {
    #[serde(rename = "personal")]
    Person,
    Company,
}

/// A tree: a struct that holds itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub value: u64,
    pub children: Vec<Node>,
}

/// A list: an enum that holds itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum List {
    Cons(u64, Box<List>),
    Nil,
}

/// An address that must hold an `@`, checked as it is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl TryFrom<String> for Email {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match text.contains('@') {
            true => Ok(Self(text)),
            false => Err(format!("{text:?} is no email address")),
        }
    }
}

impl From<Email> for String {
    fn from(email: Email) -> String {
        email.0
    }
}

/// 2023-11-14T22:13:20Z plus `x` seconds.
fn seconds(x: u64) -> i64 {
    1_700_000_000 + x as i64
}

case!(point -> Point = |x| Point { x, y: x + 1 });
case!(uuid_id -> uuid::Uuid = |x| uuid::Uuid::from_u128(0x6f1c_2a4e_9b3d_4f70_8c21_5e6a_0000_0000 | x as u128));
case!(chrono_time -> Chrono = |x| {
    let at = chrono::DateTime::from_timestamp(seconds(x), 0).expect("in range");
    Chrono { at, local: at.naive_utc(), day: at.date_naive() }
});
case!(time_time -> Time = |x| {
    let at = time::OffsetDateTime::from_unix_timestamp(seconds(x)).expect("in range");
    Time { at, local: time::PrimitiveDateTime::new(at.date(), at.time()), day: at.date() }
});
case!(decimal -> rust_decimal::Decimal = |x| rust_decimal::Decimal::new(101 * x as i64 + 5, 2));
case!(ip_addr -> IpAddr = |x| match x % 2 {
    0 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, x as u8)),
    _ => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, x as u16)),
});
case!(non_zero -> NonZeroU64 = |x| NonZeroU64::MIN.saturating_add(x));
// One entry: the test compares what the builds print, and a decoded map of
// more lists them in another order.
case!(hash_map -> HashMap<String, u64> = |x| HashMap::from([(format!("k{x}"), x)]));
case!(btree_map -> BTreeMap<u64, String> = |x| (0..3).map(|i| (x + i, format!("v{i}"))).collect());
case!(boxed -> Box<Point> = |x| Box::new(Point { x, y: 2 * x }));
case!(arc -> Arc<Point> = |x| Arc::new(Point { x, y: 3 * x }));
case!(serde_rename -> Renamed = |x| Renamed {
    user_id: x,
    kind: match x % 2 {
        0 => Kind::Person,
        _ => Kind::Company,
    },
});
case!(tree -> Node = |x| Node {
    value: x,
    children: vec![
        Node { value: x + 1, children: vec![] },
        Node { value: x + 2, children: vec![Node { value: x + 3, children: vec![] }] },
    ],
});
case!(list -> List = |x| (0..3).fold(List::Nil, |tail, i| List::Cons(x + i, Box::new(tail))));
case!(email -> Email = |x| Email::try_from(format!("user{x}@example.com")).expect("has an @"));

/// Every case whose type is the same in both builds.
pub const UNCHANGED: &[Case] = &[
    point::CASE,
    uuid_id::CASE,
    chrono_time::CASE,
    time_time::CASE,
    decimal::CASE,
    ip_addr::CASE,
    non_zero::CASE,
    hash_map::CASE,
    btree_map::CASE,
    boxed::CASE,
    arc::CASE,
    serde_rename::CASE,
    tree::CASE,
    list::CASE,
    email::CASE,
];
