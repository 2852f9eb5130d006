//! A value's shape tag, from its `Serialize`: a serializer that writes no
//! bytes, only [`Tag`] events. It says it is not human-readable, as bincode
//! does, so that every type takes the path it takes when encoded.

use serde::ser::{self, Serialize};

use super::tag::{Kind, Tag, VariantKind};

/// The shape tag of `value`; an error if its `Serialize` fails, or if it
/// serializes a sequence or map of unknown length, which bincode refuses too.
pub(crate) fn tag_of<T: Serialize + ?Sized>(value: &T) -> Result<u64, Failed> {
    let mut tag = Tag::new();
    value.serialize(&mut Writer(&mut tag))?;
    Ok(tag.finish())
}

/// Why a value's tag could not be made.
#[derive(Debug)]
pub(crate) struct Failed(pub(crate) String);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failed {}

impl ser::Error for Failed {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

struct Writer<'a>(&'a mut Tag);

type Done = Result<(), Failed>;

macro_rules! primitives {
    ($($method:ident($ty:ty) => $kind:ident),* $(,)?) => {$(
        fn $method(self, _: $ty) -> Done {
            self.0.kind(Kind::$kind);
            Ok(())
        }
    )*};
}

impl ser::Serializer for &mut Writer<'_> {
    type Ok = ();
    type Error = Failed;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    primitives! {
        serialize_bool(bool) => Bool,
        serialize_i8(i8) => I8,
        serialize_i16(i16) => I16,
        serialize_i32(i32) => I32,
        serialize_i64(i64) => I64,
        serialize_i128(i128) => I128,
        serialize_u8(u8) => U8,
        serialize_u16(u16) => U16,
        serialize_u32(u32) => U32,
        serialize_u64(u64) => U64,
        serialize_u128(u128) => U128,
        serialize_f32(f32) => F32,
        serialize_f64(f64) => F64,
        serialize_char(char) => Char,
        serialize_str(&str) => Str,
        serialize_bytes(&[u8]) => Bytes,
    }

    fn serialize_none(self) -> Done {
        self.0.kind(Kind::None);
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Done {
        self.0.kind(Kind::Some);
        value.serialize(self)
    }

    fn serialize_unit(self) -> Done {
        self.0.kind(Kind::Unit);
        Ok(())
    }

    fn serialize_unit_struct(self, name: &'static str) -> Done {
        self.0.named(Kind::UnitStruct, name);
        Ok(())
    }

    fn serialize_unit_variant(self, name: &'static str, index: u32, variant: &'static str) -> Done {
        self.0.variant(name, index, variant, VariantKind::Unit);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Done {
        self.0.named(Kind::NewtypeStruct, name);
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Done {
        self.0.variant(name, index, variant, VariantKind::Newtype);
        value.serialize(self)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self, Failed> {
        self.0.sized(Kind::Seq, known(len)?);
        Ok(self)
    }

    fn serialize_tuple(self, len: usize) -> Result<Self, Failed> {
        self.0.sized(Kind::Tuple, len);
        Ok(self)
    }

    fn serialize_tuple_struct(self, name: &'static str, len: usize) -> Result<Self, Failed> {
        self.0.named(Kind::TupleStruct, name);
        self.0.sized(Kind::Tuple, len);
        Ok(self)
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self, Failed> {
        self.0.variant(name, index, variant, VariantKind::Tuple);
        self.0.sized(Kind::Tuple, len);
        Ok(self)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self, Failed> {
        self.0.sized(Kind::Map, known(len)?);
        Ok(self)
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Self, Failed> {
        self.0.named(Kind::Struct, name);
        self.0.sized(Kind::Struct, len);
        Ok(self)
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self, Failed> {
        self.0.variant(name, index, variant, VariantKind::Struct);
        self.0.sized(Kind::Struct, len);
        Ok(self)
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// A sequence's or map's length, which bincode writes first and so needs.
fn known(len: Option<usize>) -> Result<usize, Failed> {
    len.ok_or_else(|| Failed("a sequence or map of unknown length".into()))
}

macro_rules! elements {
    ($($trait:ident :: $method:ident),* $(,)?) => {$(
        impl ser::$trait for &mut Writer<'_> {
            type Ok = ();
            type Error = Failed;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
                value.serialize(&mut **self)
            }

            fn end(self) -> Done {
                Ok(())
            }
        }
    )*};
}

elements! {
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
}

impl ser::SerializeMap for &mut Writer<'_> {
    type Ok = ();
    type Error = Failed;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Done {
        key.serialize(&mut **self)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        value.serialize(&mut **self)
    }

    fn end(self) -> Done {
        Ok(())
    }
}

macro_rules! fields {
    ($($trait:ident),*) => {$(
        impl ser::$trait for &mut Writer<'_> {
            type Ok = ();
            type Error = Failed;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Done {
                self.0.named(Kind::Field, key);
                value.serialize(&mut **self)
            }

            fn end(self) -> Done {
                Ok(())
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);
