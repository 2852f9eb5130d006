//! Key derivation: a stable 128-bit digest of a call's function, types and
//! argument values.
//!
//! A key reads `<prefix><name>:{<digest>}`. `name` is `module::path::fn_name`
//! (or the attribute's `name`), `digest` is BLAKE3 truncated to 128 bits (its
//! first 16 bytes), as 32 hex digits, over, in order: the key format's tag,
//! the name, every key argument's type name and bincode encoding (or those
//! of the `key = …` value), the receiver's type, the function's type
//! parameters and const parameter values, the 16 bytes of the stored type's
//! shape (`shape.rs`: a build whose type changed shape uses other keys),
//! and the attribute's `version` when it is not 0.
//! Bytes are streamed into the hasher as bincode writes them, through a
//! buffer on the stack (no allocation): bincode writes a few bytes at a
//! time, and a BLAKE3 update costs far more than a copy.
//!
//! The hash is cryptographic because arguments often come from users (a
//! search query, a user name, a path): with a fast non-cryptographic hash, a
//! crafted argument could be made to collide with another user's key and so
//! read that user's value or plant one where they read. Finding a collision
//! of 128 bits of BLAKE3 takes about 2^64 work; a second preimage for a given
//! key, 2^128.
//!
//! The digest alone tells calls apart (it covers the name), so the
//! in-process tier keys its tables by it. The braces make it a Redis Cluster
//! hash tag, so a key and the keys derived from it (its lock) share a slot.
//! No raw argument bytes appear in a key, and nothing in it depends on the
//! process (no `DefaultHasher`, no addresses): the same build computes the
//! same key everywhere.

use std::sync::OnceLock;

use serde::Serialize;

use crate::error::Error;

/// The key format's tag, hashed first: bump it when what is hashed changes.
const FORMAT: &[u8] = b"redis-cached/key/4";

/// Accumulates the digest of one call's key parts.
///
/// Generated code calls [`arg`](Self::arg) once per key argument; the first
/// argument that fails to serialize is kept and reported by `Digest::of`.
pub struct KeyHasher {
    hasher: Buffered,
    error: Option<bincode::error::EncodeError>,
}

impl KeyHasher {
    fn new(name: &str) -> Self {
        let mut hasher = Self {
            hasher: Buffered {
                hasher: None,
                buf: [0; BUF],
                len: 0,
            },
            error: None,
        };
        hasher.hasher.update(FORMAT);
        hasher.type_name(name);
        hasher
    }

    /// Adds a value and its type's name.
    pub fn arg<T: Serialize + ?Sized>(&mut self, value: &T) {
        self.type_name(std::any::type_name::<T>());
        if self.error.is_none() {
            let into = Stream(&mut self.hasher);
            self.error =
                bincode::serde::encode_into_writer(value, into, crate::codec::CONFIG).err();
        }
    }

    /// Adds a type's name, length-prefixed so that names can't run together.
    pub fn type_name(&mut self, name: &str) {
        self.hasher.update(&(name.len() as u64).to_le_bytes());
        self.hasher.update(name.as_bytes());
    }
}

/// Bytes buffered before BLAKE3 sees them: four of its blocks, small
/// enough that a `KeyHasher` stays cheap to make and move.
const BUF: usize = 256;

/// BLAKE3 fed a chunk at a time; the same digest as feeding it every write.
/// Most keys fit the buffer and are hashed in one `blake3::hash`; the
/// streaming state (about 1.9 KiB) is made, boxed, only for longer ones, so
/// that making and moving a `KeyHasher` stays cheap.
struct Buffered {
    hasher: Option<Box<blake3::Hasher>>,
    buf: [u8; BUF],
    len: usize,
}

impl Buffered {
    fn update(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > BUF {
            self.flush();
            if bytes.len() >= BUF {
                self.streaming().update(bytes);
                return;
            }
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn streaming(&mut self) -> &mut blake3::Hasher {
        self.hasher.get_or_insert_with(Box::default)
    }

    fn flush(&mut self) {
        let Self { hasher, buf, len } = self;
        hasher.get_or_insert_with(Box::default).update(&buf[..*len]);
        *len = 0;
    }

    fn finalize(mut self) -> blake3::Hash {
        match &mut self.hasher {
            None => blake3::hash(&self.buf[..self.len]),
            Some(hasher) => {
                hasher.update(&self.buf[..self.len]);
                hasher.finalize()
            }
        }
    }
}

/// Feeds what bincode writes into the hasher.
struct Stream<'a>(&'a mut Buffered);

impl bincode::enc::write::Writer for Stream<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.update(bytes);
        Ok(())
    }
}

/// The digest of one call: which entry it reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub(crate) u128);

impl Digest {
    /// The digest of a call of the function `name` whose values have the
    /// shape `shape` (`Traced::key`), whose arguments `feed` adds; `version`
    /// is mixed in when not 0. Fails with the error of the first argument
    /// that could not be serialized.
    pub(crate) fn of(
        name: &str,
        shape: &[u8; 16],
        version: u32,
        feed: impl FnOnce(&mut KeyHasher),
    ) -> Result<Self, Error> {
        let mut hasher = KeyHasher::new(name);
        feed(&mut hasher);
        hasher.hasher.update(shape);
        if version != 0 {
            hasher.arg(&version);
        }
        match hasher.error {
            Some(error) => Err(error.into()),
            None => Ok(Self::from_hash(&hasher.hasher.finalize())),
        }
    }

    /// The first 16 bytes of a BLAKE3 hash, read big-endian so that the
    /// key's 32 hex digits are the first 32 of the hash's usual hex form.
    fn from_hash(hash: &blake3::Hash) -> Self {
        let mut first = [0; 16];
        first.copy_from_slice(&hash.as_bytes()[..16]);
        Self(u128::from_be_bytes(first))
    }

    /// The digest written in a key by [`Key::text`], if `key` is one of ours
    /// (for the in-process tier's invalidations).
    #[cfg(feature = "local")]
    pub(crate) fn parse(key: &[u8]) -> Option<Self> {
        let hex = key.strip_suffix(b"}")?;
        let hex = hex.get(hex.len().checked_sub(HEX + 2)?..)?;
        let hex = hex.strip_prefix(b":{")?;
        let hex = std::str::from_utf8(hex).ok()?;
        u128::from_str_radix(hex, 16).ok().map(Self)
    }
}

/// Hex digits in a key's digest.
const HEX: usize = 32;

/// One call's key: its digest, and its text in Redis, written on first use
/// (a hit in the in-process tier never needs it).
#[derive(Debug)]
pub(crate) struct Key<'a> {
    pub(crate) digest: Digest,
    prefix: &'a str,
    name: &'a str,
    text: OnceLock<String>,
}

impl<'a> Key<'a> {
    pub(crate) fn new(digest: Digest, prefix: &'a str, name: &'a str) -> Self {
        Self {
            digest,
            prefix,
            name,
            text: OnceLock::new(),
        }
    }

    /// The function's name (`module::path::fn_name`, or the attribute's `name`).
    pub(crate) fn name(&self) -> &'a str {
        self.name
    }

    /// `<prefix><name>:{<32 hex digits>}`.
    pub(crate) fn text(&self) -> &str {
        self.text.get_or_init(|| {
            let mut key = String::with_capacity(self.prefix.len() + self.name.len() + HEX + 3);
            key.push_str(self.prefix);
            key.push_str(self.name);
            key.push_str(":{");
            // const-hex encodes the 16 bytes at once (SIMD), not digit by digit.
            key.push_str(const_hex::Buffer::<16>::new().format(&self.digest.0.to_be_bytes()));
            key.push('}');
            key
        })
    }
}

/// The function name the counters and metrics give keys of the typed API
/// (their own text would make a label per key).
pub(crate) const TYPED: &str = "typed";

/// The Redis key of a key given to the typed API (`Cache::get`, …):
/// `<prefix>{<key>}`. An attribute's key has its function's name right after
/// the prefix, and a name is never empty and holds no brace, so no key of
/// one is ever a key of the other. The braces make the user's key (up to its
/// first `}`) the Redis Cluster hash tag, so keys spread over slots by it.
pub(crate) fn named(prefix: &str, key: &str) -> String {
    let mut text = String::with_capacity(prefix.len() + key.len() + 2);
    text.push_str(prefix);
    text.push('{');
    text.push_str(key);
    text.push('}');
    text
}

/// The function name in the text of a key of a cache with `prefix` (or of
/// its lock, `<key>:lock`), [`TYPED`] for a key of the typed API; a text
/// that is no key is taken as a name.
pub(crate) fn name_of<'k>(text: &'k str, prefix: &str) -> &'k str {
    match text.strip_prefix(prefix) {
        Some(rest) if rest.starts_with('{') => TYPED,
        Some(rest) => rest.rsplit_once(":{").map_or(text, |(name, _)| name),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored type's shape (`shape::Traced::key`).
    const SHAPE: [u8; 16] = [7; 16];

    #[test]
    fn the_name_of_a_key_or_its_lock() {
        let text = key(|h| h.arg(&1u8));
        assert_eq!(name_of(&text, "app:"), "shop::price");
        assert_eq!(name_of(&format!("{text}:lock"), "app:"), "shop::price");
        assert_eq!(name_of("shop::price", "app:"), "shop::price");
    }

    fn key(parts: impl FnOnce(&mut KeyHasher)) -> String {
        let digest = Digest::of("shop::price", &SHAPE, 0, parts).unwrap();
        Key::new(digest, "app:", "shop::price").text().to_owned()
    }

    #[test]
    fn a_fixed_input_gives_a_fixed_key() {
        // Checked in on purpose: if this changes, every deployed cache entry is
        // orphaned. Change it only with a bump of FORMAT and a changelog note.
        let k = key(|h| {
            h.arg(&42u64);
            h.arg("eu-west");
        });
        assert_eq!(k, "app:shop::price:{b636a01d75b0ee4cdcf03c18c8e79b8d}");
    }

    #[test]
    fn the_digest_is_the_first_half_of_blake3_over_the_documented_stream() {
        // The stream the module docs describe, written out by hand.
        let mut stream = Vec::new();
        stream.extend_from_slice(b"redis-cached/key/4");
        for name in ["shop::price", "u64"] {
            stream.extend_from_slice(&(name.len() as u64).to_le_bytes());
            stream.extend_from_slice(name.as_bytes());
        }
        stream.push(42); // bincode's varint of 42u64
        stream.extend_from_slice(&SHAPE);
        let hex = blake3::hash(&stream).to_hex();
        let k = key(|h| h.arg(&42u64));
        assert_eq!(k, format!("app:shop::price:{{{}}}", &hex[..32]));
    }

    #[test]
    fn buffering_gives_the_digest_of_the_whole_stream() {
        // Arguments across the buffer's edge and larger than it.
        let long: Vec<u8> = (0..3000).map(|i| i as u8).collect();
        let mut stream = Vec::new();
        stream.extend_from_slice(b"redis-cached/key/4");
        for name in ["f", "[u8]"] {
            stream.extend_from_slice(&(name.len() as u64).to_le_bytes());
            stream.extend_from_slice(name.as_bytes());
        }
        stream.extend_from_slice(&[251, 0xb8, 0x0b]); // bincode's varint of 3000
        stream.extend_from_slice(&long);
        // A str is written in one piece, past the buffer.
        let text = "x".repeat(600);
        stream.extend_from_slice(&3u64.to_le_bytes());
        stream.extend_from_slice(b"str");
        stream.extend_from_slice(&[251, 0x58, 0x02]); // 600
        stream.extend_from_slice(text.as_bytes());
        stream.extend_from_slice(&SHAPE);
        let digest = Digest::of("f", &SHAPE, 0, |h| {
            h.arg(&long[..]);
            h.arg(text.as_str());
        })
        .unwrap();
        assert_eq!(digest, Digest::from_hash(&blake3::hash(&stream)));
    }

    #[test]
    fn argument_values_do_not_appear_in_the_key() {
        let k = key(|h| h.arg("secret-token-value"));
        assert!(!k.contains("secret"), "{k}");
        assert!(
            k.starts_with("app:shop::price:{") && k.ends_with('}'),
            "{k}"
        );
        assert_eq!(k.len(), "app:shop::price:{}".len() + 32);
    }

    #[test]
    fn different_values_types_order_names_and_versions_give_different_digests() {
        let digest = |name: &str, version: u32, parts: fn(&mut KeyHasher)| {
            Digest::of(name, &SHAPE, version, parts).unwrap()
        };
        let a = digest("f", 0, |h| {
            h.arg(&1u32);
            h.arg(&2u32);
        });
        assert_ne!(
            a,
            digest("f", 0, |h| {
                h.arg(&2u32);
                h.arg(&1u32);
            })
        );
        assert_ne!(
            a,
            digest("f", 0, |h| {
                h.arg(&1u64);
                h.arg(&2u32);
            })
        );
        let same = |h: &mut KeyHasher| {
            h.arg(&1u32);
            h.arg(&2u32);
        };
        assert_eq!(a, digest("f", 0, same));
        assert_ne!(a, digest("g", 0, same), "the name is hashed");
        assert_ne!(a, digest("f", 1, same), "the version is hashed");
        assert_ne!(
            a,
            Digest::of("f", &[1; 16], 0, same).unwrap(),
            "so is the shape"
        );
    }

    #[test]
    fn str_and_string_keys_differ_by_type_only() {
        // Same bincode bytes, different type names: different keys, so a
        // changed signature never reads values written by the old one.
        assert_ne!(key(|h| h.arg("x")), key(|h| h.arg(&String::from("x"))));
    }

    #[test]
    fn a_named_key_is_the_users_key_in_braces_after_the_prefix() {
        assert_eq!(named("app:", "user:42"), "app:{user:42}");
        assert_eq!(named("", ""), "{}");
        // What an attribute key looks like is a name's worth of text, never
        // a brace, after the prefix.
        let digest = Digest::of("m::f", &SHAPE, 0, |h| h.arg(&7u8)).unwrap();
        let attribute = Key::new(digest, "app:", "m::f");
        let suffix = attribute.text().strip_prefix("app:").unwrap();
        assert_ne!(named("app:", suffix), attribute.text());
        assert!(!attribute.text()["app:".len()..].starts_with('{'));
    }

    #[test]
    #[cfg(feature = "local")]
    fn a_key_parses_back_to_its_digest_and_nothing_else_does() {
        let digest = Digest::of("m::f", &SHAPE, 0, |h| h.arg(&7u8)).unwrap();
        let key = Key::new(digest, "p:", "m::f");
        assert_eq!(Digest::parse(key.text().as_bytes()), Some(digest));
        let lock = format!("{}:lock", key.text());
        assert_eq!(Digest::parse(lock.as_bytes()), None);
        assert_eq!(Digest::parse(b"p:m::f:{xyz}"), None);
        assert_eq!(Digest::parse(b"}"), None);
        assert_eq!(Digest::parse(b""), None);
    }

    #[test]
    fn a_value_that_fails_to_serialize_is_reported() {
        struct Refuses;
        impl Serialize for Refuses {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no key for me"))
            }
        }
        let err = Digest::of("f", &SHAPE, 0, |h| {
            h.arg(&Refuses);
            h.arg(&1u8);
        })
        .unwrap_err();
        assert!(err.to_string().contains("no key for me"), "{err}");
    }
}
