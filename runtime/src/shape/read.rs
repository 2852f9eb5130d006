//! A value's shape tag, taken while it decodes: [`Checked`] wraps bincode's
//! deserializer and feeds [`Tag`] the events the reading type asks for (a
//! `u32`, a struct `Bounds` with fields `min`, `max`, the variant at the
//! index read…), as `write.rs` feeds the writer's. One pass over the bytes:
//! the value is not walked a second time to be checked.
//!
//! Only visitors of compound values are wrapped (to reach their elements);
//! a primitive goes straight to bincode after its event.

use std::marker::PhantomData;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

use super::tag::{Kind, Tag, VariantKind};

/// A seed that decodes a `T` and the shape tag of what it read:
/// `bincode::serde::seed_decode_from_slice(Tagged::new(), …)`.
pub(crate) struct Tagged<T>(PhantomData<T>);

impl<T> Tagged<T> {
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }
}

impl<'de, T: de::Deserialize<'de>> DeserializeSeed<'de> for Tagged<T> {
    type Value = (T, u64);

    fn deserialize<D: Deserializer<'de>>(self, inner: D) -> Result<(T, u64), D::Error> {
        let mut tag = Tag::new();
        let value = T::deserialize(Checked {
            inner,
            tag: &mut tag,
        })?;
        Ok((value, tag.finish()))
    }
}

/// A deserializer whose reads are also [`Tag`] events.
struct Checked<'t, D> {
    inner: D,
    tag: &'t mut Tag,
}

/// A visitor of a compound value, whose elements are read through [`Checked`].
struct Wrap<'t, V> {
    visitor: V,
    tag: &'t mut Tag,
    /// A struct's (or struct variant's) fields, named before each element.
    fields: &'static [&'static str],
    /// Whether this is a sequence, whose length is only known in `visit_seq`.
    seq: bool,
}

impl<'t, V> Wrap<'t, V> {
    fn new(visitor: V, tag: &'t mut Tag) -> Self {
        Self {
            visitor,
            tag,
            fields: &[],
            seq: false,
        }
    }
}

macro_rules! primitives {
    ($($method:ident => $kind:ident),* $(,)?) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.tag.kind(Kind::$kind);
            self.inner.$method(visitor)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Checked<'_, D> {
    type Error = D::Error;

    primitives! {
        deserialize_bool => Bool,
        deserialize_i8 => I8,
        deserialize_i16 => I16,
        deserialize_i32 => I32,
        deserialize_i64 => I64,
        deserialize_i128 => I128,
        deserialize_u8 => U8,
        deserialize_u16 => U16,
        deserialize_u32 => U32,
        deserialize_u64 => U64,
        deserialize_u128 => U128,
        deserialize_f32 => F32,
        deserialize_f64 => F64,
        deserialize_char => Char,
        deserialize_str => Str,
        deserialize_string => Str,
        deserialize_bytes => Bytes,
        deserialize_byte_buf => Bytes,
        deserialize_unit => Unit,
    }

    // bincode refuses these three: no type that needs them decodes.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_any(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_identifier(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_ignored_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_option(Wrap::new(visitor, self.tag))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.tag.named(Kind::UnitStruct, name);
        self.inner.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.tag.named(Kind::NewtypeStruct, name);
        let visitor = Wrap::new(visitor, self.tag);
        self.inner.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let visitor = Wrap {
            seq: true,
            ..Wrap::new(visitor, self.tag)
        };
        self.inner.deserialize_seq(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.tag.sized(Kind::Tuple, len);
        let visitor = Wrap::new(visitor, self.tag);
        self.inner.deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.tag.named(Kind::TupleStruct, name);
        self.tag.sized(Kind::Tuple, len);
        let visitor = Wrap::new(visitor, self.tag);
        self.inner.deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_map(Wrap::new(visitor, self.tag))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.tag.named(Kind::Struct, name);
        self.tag.sized(Kind::Struct, fields.len());
        let visitor = Wrap {
            fields,
            ..Wrap::new(visitor, self.tag)
        };
        self.inner.deserialize_struct(name, fields, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = Enum {
            visitor,
            tag: self.tag,
            name,
            variants,
        };
        self.inner.deserialize_enum(name, variants, visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.visitor.expecting(f)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.tag.kind(Kind::None);
        self.visitor.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<V::Value, D::Error> {
        self.tag.kind(Kind::Some);
        self.visitor.visit_some(Checked {
            inner,
            tag: self.tag,
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, inner: D) -> Result<V::Value, D::Error> {
        self.visitor.visit_newtype_struct(Checked {
            inner,
            tag: self.tag,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, access: A) -> Result<V::Value, A::Error> {
        // A tuple's or struct's length was taken already; a sequence's is
        // bincode's size hint, the length it read.
        if self.seq {
            self.tag.sized(Kind::Seq, access.size_hint().unwrap_or(0));
        }
        self.visitor.visit_seq(Elements {
            access,
            tag: self.tag,
            fields: self.fields,
            read: 0,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<V::Value, A::Error> {
        self.tag.sized(Kind::Map, access.size_hint().unwrap_or(0));
        self.visitor.visit_map(Entries {
            access,
            tag: self.tag,
        })
    }
}

/// The elements of a sequence, tuple or struct.
struct Elements<'t, A> {
    access: A,
    tag: &'t mut Tag,
    fields: &'static [&'static str],
    read: usize,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Elements<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        if let Some(field) = self.fields.get(self.read) {
            self.tag.named(Kind::Field, field);
        }
        self.read += 1;
        self.access.next_element_seed(Seed {
            seed,
            tag: self.tag,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.access.size_hint()
    }
}

/// The entries of a map.
struct Entries<'t, A> {
    access: A,
    tag: &'t mut Tag,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Entries<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.access.next_key_seed(Seed {
            seed,
            tag: self.tag,
        })
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.access.next_value_seed(Seed {
            seed,
            tag: self.tag,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.access.size_hint()
    }
}

/// An element's seed, reading through [`Checked`].
struct Seed<'t, S> {
    seed: S,
    tag: &'t mut Tag,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, inner: D) -> Result<S::Value, D::Error> {
        self.seed.deserialize(Checked {
            inner,
            tag: self.tag,
        })
    }
}

/// The visitor of an enum: the variant's event is made once its index is
/// read and the reading type says what the variant holds.
struct Enum<'t, V> {
    visitor: V,
    tag: &'t mut Tag,
    name: &'static str,
    variants: &'static [&'static str],
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Enum<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.visitor.expecting(f)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, access: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_enum(Variants {
            access,
            tag: self.tag,
            name: self.name,
            variants: self.variants,
        })
    }
}

struct Variants<'t, A> {
    access: A,
    tag: &'t mut Tag,
    name: &'static str,
    variants: &'static [&'static str],
}

impl<'de, 't, A: EnumAccess<'de>> EnumAccess<'de> for Variants<'t, A> {
    type Error = A::Error;
    type Variant = Variant<'t, A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        let mut index = None;
        let (value, access) = self.access.variant_seed(Index {
            seed,
            index: &mut index,
        })?;
        // bincode gives the index as a u32; anything else is no variant.
        let index = index.unwrap_or(u32::MAX);
        let variant = self.variants.get(index as usize).copied().unwrap_or("");
        Ok((
            value,
            Variant {
                access,
                tag: self.tag,
                name: self.name,
                index,
                variant,
            },
        ))
    }
}

/// The variant read, and how its content is read.
struct Variant<'t, A> {
    access: A,
    tag: &'t mut Tag,
    name: &'static str,
    index: u32,
    variant: &'static str,
}

impl<A> Variant<'_, A> {
    fn event(&mut self, holds: VariantKind) {
        self.tag.variant(self.name, self.index, self.variant, holds);
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Variant<'_, A> {
    type Error = A::Error;

    fn unit_variant(mut self) -> Result<(), A::Error> {
        self.event(VariantKind::Unit);
        self.access.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        mut self,
        seed: T,
    ) -> Result<T::Value, A::Error> {
        self.event(VariantKind::Newtype);
        self.access.newtype_variant_seed(Seed {
            seed,
            tag: self.tag,
        })
    }

    fn tuple_variant<V: Visitor<'de>>(
        mut self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.event(VariantKind::Tuple);
        self.tag.sized(Kind::Tuple, len);
        self.access.tuple_variant(len, Wrap::new(visitor, self.tag))
    }

    fn struct_variant<V: Visitor<'de>>(
        mut self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.event(VariantKind::Struct);
        self.tag.sized(Kind::Struct, fields.len());
        let visitor = Wrap {
            fields,
            ..Wrap::new(visitor, self.tag)
        };
        self.access.struct_variant(fields, visitor)
    }
}

/// The seed of a variant's identifier, which notes the index bincode read.
struct Index<'i, S> {
    seed: S,
    index: &'i mut Option<u32>,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Index<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, inner: D) -> Result<S::Value, D::Error> {
        self.seed.deserialize(IndexOf {
            inner,
            index: self.index,
        })
    }
}

/// bincode's deserializer of a variant index (a `u32`), noting the index
/// whichever way the identifier's `Deserialize` asks for it.
struct IndexOf<'i, D> {
    inner: D,
    index: &'i mut Option<u32>,
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for IndexOf<'_, D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_any(Noting {
            visitor,
            index: self.index,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// A visitor that notes the unsigned integer it is given.
struct Noting<'i, V> {
    visitor: V,
    index: &'i mut Option<u32>,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Noting<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.visitor.expecting(f)
    }

    fn visit_u32<E: de::Error>(self, v: u32) -> Result<V::Value, E> {
        *self.index = Some(v);
        self.visitor.visit_u32(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<V::Value, E> {
        *self.index = u32::try_from(v).ok();
        self.visitor.visit_u64(v)
    }
}
