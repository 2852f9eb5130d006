//! The shape tag of one value: a 64-bit hash of the serde data model events
//! its serialization makes (names, kinds, arities), never of the data in
//! them. `write.rs` computes it from a value's `Serialize`, `read.rs` from
//! the calls a type's `Deserialize` makes while it decodes stored bytes;
//! both feed the same events through [`Tag`], so a value read back by a type
//! of the writer's shape gives the writer's tag.
//!
//! The hash is xxh3 (stable across builds and platforms); it guards against
//! accidents, not adversaries: a value is only ever read from the cache's
//! own Redis, and a signed cache checks a value's HMAC before anything else.

use xxhash_rust::xxh3::Xxh3Default;

/// One event of the serde data model, as [`Tag`] hashes it. `str` and
/// `String` are one kind, as are borrowed and owned bytes: bincode writes
/// them alike, and a type may read either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Bool = 1,
    I8,
    I16,
    I32,
    I64,
    I128,
    U8,
    U16,
    U32,
    U64,
    U128,
    F32,
    F64,
    Char,
    Str,
    Bytes,
    Unit,
    None,
    Some,
    UnitStruct,
    NewtypeStruct,
    Seq,
    Tuple,
    TupleStruct,
    Map,
    Struct,
    Field,
    Variant,
}

/// What a variant holds, after [`Kind::Variant`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum VariantKind {
    Unit = 1,
    Newtype,
    Tuple,
    Struct,
}

/// A running shape tag.
pub(crate) struct Tag(Xxh3Default);

impl Tag {
    pub(crate) fn new() -> Self {
        Self(Xxh3Default::new())
    }

    /// An event without a payload (a primitive, `None`, `Some`, `()`).
    #[inline]
    pub(crate) fn kind(&mut self, kind: Kind) {
        self.0.update(&[kind as u8]);
    }

    /// An event, then a length (of a seq, tuple, map or struct).
    #[inline]
    pub(crate) fn sized(&mut self, kind: Kind, len: usize) {
        self.kind(kind);
        self.len(len);
    }

    /// An event, then a name (of a struct, a field).
    pub(crate) fn named(&mut self, kind: Kind, name: &str) {
        self.kind(kind);
        self.name(name);
    }

    /// The variant `variant`, at `index` of the enum `name`, holding `holds`.
    pub(crate) fn variant(&mut self, name: &str, index: u32, variant: &str, holds: VariantKind) {
        self.named(Kind::Variant, name);
        self.0.update(&index.to_le_bytes());
        self.name(variant);
        self.0.update(&[holds as u8]);
    }

    /// A name, length-prefixed so that names can't run together.
    fn name(&mut self, name: &str) {
        self.len(name.len());
        self.0.update(name.as_bytes());
    }

    fn len(&mut self, len: usize) {
        self.0.update(&(len as u64).to_le_bytes());
    }

    /// The tag of the events so far.
    pub(crate) fn finish(&self) -> u64 {
        self.0.digest()
    }
}
