//! The tracer's fingerprints: equal for a type in every trace, different for
//! each kind of change the shape covers; and the types it must get through.

// Most types here are only ever read by the tracer: their fields never are.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::num::NonZeroU64;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};

use super::trace::{Untraceable, fingerprint};
use super::*;

fn fp<T: DeserializeOwned>() -> [u8; 16] {
    let traced = fingerprint::<T>();
    traced
        .unwrap_or_else(|why| panic!("{}: {why}", std::any::type_name::<T>()))
        .bytes
}

/// Whether `T` holds a string or byte buffer, by its trace.
fn holds_strings<T: DeserializeOwned>() -> bool {
    fingerprint::<T>().unwrap().holds_strings
}

#[test]
fn a_trace_says_whether_a_type_holds_strings() {
    assert!(!holds_strings::<Vec<f64>>());
    assert!(!holds_strings::<(u64, Option<Vec<u8>>, [u16; 3])>());
    assert!(holds_strings::<Tree>(), "a String deep inside");
    assert!(holds_strings::<Vec<Option<String>>>());
    assert!(!holds_strings::<List>());
    assert!(holds_strings::<Expr>(), "in one variant only");
}

/// Two versions of the same types, as two builds would have them.
mod v1 {
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub(super) struct Bounds {
        pub(super) min: i64,
        pub(super) max: i64,
    }
    #[derive(Deserialize)]
    pub(super) enum Status {
        Active,
        Suspended,
    }
    #[derive(Deserialize)]
    pub(super) struct Money {
        pub(super) cents: u32,
        pub(super) currency: String,
    }
    #[derive(Deserialize)]
    pub(super) struct Line {
        pub(super) sku: u64,
        pub(super) qty: u32,
    }
    #[derive(Deserialize)]
    pub(super) struct Order {
        pub(super) lines: Vec<Line>,
    }
}

mod v2 {
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub(super) struct Bounds {
        pub(super) max: i64,
        pub(super) min: i64,
    }
    #[derive(Deserialize)]
    pub(super) enum Status {
        Pending,
        Active,
        Suspended,
    }
    #[derive(Deserialize)]
    pub(super) enum Renamed {
        Active,
        Paused,
    }
    #[derive(Deserialize)]
    pub(super) struct Money {
        pub(super) cents: i32,
        pub(super) currency: String,
    }
    #[derive(Deserialize)]
    pub(super) struct Line {
        pub(super) sku: u64,
        pub(super) qty: u32,
        pub(super) gift: bool,
    }
    #[derive(Deserialize)]
    pub(super) struct Order {
        pub(super) lines: Vec<Line>,
    }
}

#[test]
fn a_type_has_one_fingerprint_and_each_change_another() {
    assert_eq!(fp::<v1::Bounds>(), fp::<v1::Bounds>());
    assert_ne!(fp::<v1::Bounds>(), fp::<v2::Bounds>(), "fields reordered");
    assert_ne!(fp::<v1::Status>(), fp::<v2::Status>(), "variant inserted");
    assert_ne!(
        fp::<v1::Status>(),
        fp::<v2::Renamed>(),
        "variant renamed (and enum)"
    );
    assert_ne!(fp::<v1::Money>(), fp::<v2::Money>(), "u32 to i32");
    assert_ne!(
        fp::<v1::Order>(),
        fp::<v2::Order>(),
        "field added inside a Vec"
    );
    let kinds = [
        fp::<u32>(),
        fp::<i32>(),
        fp::<u64>(),
        fp::<f64>(),
        fp::<f32>(),
        fp::<String>(),
        fp::<Vec<u8>>(),
        fp::<Option<u64>>(),
        fp::<(u64,)>(),
        fp::<(u64, u64)>(),
        fp::<Vec<u64>>(),
        fp::<BTreeMap<u64, u64>>(),
        fp::<char>(),
        fp::<bool>(),
        fp::<()>(),
    ];
    for (i, a) in kinds.iter().enumerate() {
        for b in &kinds[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // The same serde shape through other Rust types: the same fingerprint.
    assert_eq!(fp::<String>(), fp::<Box<str>>());
    assert_eq!(fp::<v1::Bounds>(), fp::<Box<v1::Bounds>>());
    assert_eq!(fp::<u64>(), fp::<Arc<u64>>());
    assert_eq!(fp::<HashMap<String, u32>>(), fp::<BTreeMap<String, u32>>());
}

#[test]
fn a_struct_renamed_or_moved_is_known_by_its_serde_name() {
    mod a {
        #[derive(serde::Deserialize)]
        pub(super) struct Point {
            pub(super) x: u8,
        }
    }
    mod b {
        #[derive(serde::Deserialize)]
        pub(super) struct Point {
            pub(super) x: u8,
        }
        #[derive(serde::Deserialize)]
        pub(super) struct Spot {
            pub(super) x: u8,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename = "Point")]
        pub(super) struct Renamed {
            pub(super) x: u8,
        }
    }
    assert_eq!(
        fp::<a::Point>(),
        fp::<b::Point>(),
        "same shape, other module"
    );
    assert_ne!(fp::<a::Point>(), fp::<b::Spot>(), "renamed");
    assert_eq!(
        fp::<a::Point>(),
        fp::<b::Renamed>(),
        "serde's name is the shape's"
    );
}

#[derive(Deserialize)]
struct Tree {
    label: String,
    children: Vec<Tree>,
}

#[derive(Deserialize)]
enum List {
    Cons(u32, Box<List>),
    Nil,
}

#[derive(Deserialize)]
enum Expr {
    Add(Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    Lit(i64),
    Let { name: String, value: Box<Expr> },
}

#[derive(Deserialize)]
struct Forest {
    trees: BTreeMap<String, Tree>,
    first: Option<Box<Forest>>,
    expr: Expr,
}

#[test]
fn recursive_types_trace_whichever_variant_comes_first() {
    for fp in [fp::<Tree>(), fp::<List>(), fp::<Expr>(), fp::<Forest>()] {
        assert_ne!(fp, [0; 16]);
    }
    assert_ne!(fp::<List>(), fp::<Expr>());
}

/// An e-mail address: a `String` that must hold an `@`.
#[derive(Deserialize)]
#[serde(try_from = "String")]
struct Email(String);

impl TryFrom<String> for Email {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.contains('@').then_some(Self(s)).ok_or("no @")
    }
}

/// A date that checks its parts, as `time`'s dates do in bincode (a tuple).
struct Date {
    year: i32,
    ordinal: u16,
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (year, ordinal) = <(i32, u16)>::deserialize(d)?;
        if ordinal == 0 || ordinal > 366 {
            return Err(serde::de::Error::custom("ordinal out of range"));
        }
        Ok(Self { year, ordinal })
    }
}

#[derive(Deserialize)]
struct Checked {
    id: NonZeroU64,
    ip: IpAddr,
    email: Email,
    born: Date,
    shared: Arc<String>,
    tags: HashMap<String, Vec<NonZeroU64>>,
}

#[test]
fn leaves_that_check_their_input_are_given_samples_until_they_accept() {
    assert_ne!(fp::<Checked>(), fp::<Checked>().map(|b| !b));
    assert_eq!(
        fp::<Email>(),
        fp::<String>(),
        "try_from a String: a String's shape"
    );
    assert_eq!(fp::<NonZeroU64>(), fp::<u64>(), "the same wire shape");
}

/// A type only a self-describing format can read.
struct Anything;

impl<'de> Deserialize<'de> for Anything {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Self)
    }
}

/// A type no sample satisfies.
struct Picky(String);

impl<'de> Deserialize<'de> for Picky {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        (s == "exactly this")
            .then_some(Self(s))
            .ok_or_else(|| serde::de::Error::custom("no"))
    }
}

#[test]
fn what_can_t_be_traced_is_checked_per_value() {
    assert!(matches!(
        fingerprint::<Anything>(),
        Err(Untraceable::NotBincode(_))
    ));
    assert!(matches!(fingerprint::<Picky>(), Err(Untraceable::Other(_))));
    let picky = traced::<Picky>();
    assert_eq!(picky.check, Check::Value);
    assert_eq!(picky, traced::<Picky>(), "its key part is stable too");
    assert_ne!(picky.key, traced::<String>().key);
    assert!(matches!(traced::<v1::Bounds>().check, Check::Type { .. }));
}

#[test]
fn a_shape_cell_keeps_one_entry_per_type() {
    let shape = Shape::new();
    let a = shape.of::<v1::Bounds>(traced::<v1::Bounds>);
    let b = shape.of::<v2::Bounds>(traced::<v2::Bounds>);
    assert_ne!(a, b, "another instantiation gets its own");
    assert_eq!(shape.of::<v1::Bounds>(|| unreachable!()), a);
    assert_eq!(shape.of::<v2::Bounds>(|| unreachable!()), b);
}

/// A value's tag, written from `Serialize` and read back through `read.rs`.
fn round_trip<T: Serialize + DeserializeOwned>(value: &T) -> (u64, u64) {
    let written = write::tag_of(value).unwrap();
    let bytes = bincode::serde::encode_to_vec(value, crate::codec::CONFIG).unwrap();
    let seed = read::Tagged::<T>::new();
    let ((_, read), _) =
        bincode::serde::seed_decode_from_slice(seed, &bytes, crate::codec::CONFIG).unwrap();
    (written, read)
}

#[derive(Serialize, Deserialize)]
enum Every {
    Unit,
    Newtype(u8),
    Tuple(i16, Option<String>),
    Struct {
        a: Vec<(u32, char)>,
        b: BTreeMap<String, f32>,
    },
}

#[derive(Serialize, Deserialize)]
struct Wrapper(u64);

#[derive(Serialize, Deserialize)]
struct Pair(u8, i128);

#[derive(Serialize, Deserialize)]
struct Unit;

#[test]
fn a_value_s_tag_reads_back_as_it_was_written() {
    let checks = [
        round_trip(&7u64),
        round_trip(&String::from("x")),
        round_trip(&vec![1u8, 2, 3]),
        round_trip(&Some(vec![Some(1.5f64), None])),
        round_trip(&Every::Unit),
        round_trip(&Every::Newtype(1)),
        round_trip(&Every::Tuple(-1, Some("a".into()))),
        round_trip(&Every::Struct {
            a: vec![(1, 'c')],
            b: [("k".to_owned(), 0.5)].into(),
        }),
        round_trip(&(Wrapper(1), Pair(2, -3), Unit, ())),
        round_trip(&"127.0.0.1".parse::<IpAddr>().unwrap()),
        round_trip(&NonZeroU64::new(5).unwrap()),
        round_trip(&HashMap::from([(1u8, vec![true])])),
        round_trip(&[1u16; 4]),
        round_trip(&Arc::new(Box::new(u128::MAX))),
    ];
    for (i, (written, read)) in checks.into_iter().enumerate() {
        assert_eq!(written, read, "case {i}");
    }
    // Differs by value shape, not by data.
    assert_eq!(write::tag_of(&1u64).unwrap(), write::tag_of(&2u64).unwrap());
    assert_ne!(write::tag_of(&1u64).unwrap(), write::tag_of(&1u32).unwrap());
    assert_ne!(
        write::tag_of(&Every::Unit).unwrap(),
        write::tag_of(&Every::Newtype(0)).unwrap()
    );
}
