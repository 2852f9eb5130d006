//! Key derivation: a stable 128-bit hash of a call's types and argument values.
//!
//! A key reads `<prefix><name>:{<hash>}`. `name` is `module::path::fn_name`
//! (or the attribute's `name`), `hash` is xxh3-128 over, in order: every
//! key argument's type name and bincode encoding (or those of the `key = …`
//! value), the receiver's type, the function's type parameters and const
//! parameter values, the return type's name, and the attribute's `version`
//! when it is not 0.
//! The braces make the hash a Redis Cluster hash tag, so a key and the keys
//! derived from it (its lock) share a slot. No raw argument bytes appear in a
//! key, and nothing in it depends on the process (no `DefaultHasher`, no
//! addresses): the same build computes the same key everywhere.

use serde::Serialize;
use xxhash_rust::xxh3::xxh3_128;

/// Accumulates the hash of one call's key parts.
///
/// Generated code chains [`arg`](Self::arg) once per key argument; the first
/// argument that fails to serialize is kept and reported by [`finish`](Self::finish).
pub struct KeyHasher {
    /// The bytes to hash, hashed at once in `finish`: one-shot xxh3 gives the
    /// streaming digest, and this small buffer is cheap to move between the
    /// builder calls, where a streaming state (over 500 bytes) is not.
    state: Vec<u8>,
    error: Option<bincode::error::EncodeError>,
}

impl KeyHasher {
    /// An empty hasher, seeded with the key format's version.
    pub fn new() -> Self {
        let mut state = Vec::with_capacity(128);
        state.extend_from_slice(b"redis-cached/key/1");
        Self { state, error: None }
    }

    /// Adds a value and its type's name.
    pub fn arg<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        self = self.type_name(std::any::type_name::<T>());
        if self.error.is_none() {
            self.error =
                bincode::serde::encode_into_std_write(value, &mut self.state, crate::codec::CONFIG)
                    .err();
        }
        self
    }

    /// Adds a type's name, length-prefixed so that names can't run together.
    pub fn type_name(mut self, name: &str) -> Self {
        self.state
            .extend_from_slice(&(name.len() as u64).to_le_bytes());
        self.state.extend_from_slice(name.as_bytes());
        self
    }

    /// The full key, `<prefix><name>:{<32 hex digits>}`, or the error of the
    /// first argument that could not be serialized.
    pub fn finish(self, prefix: &str, name: &str) -> Result<String, crate::Error> {
        match self.error {
            Some(e) => Err(e.into()),
            None => {
                // By hand rather than `format!`: this runs on every call, L1 hits included.
                let digest = xxh3_128(&self.state);
                let mut key = String::with_capacity(prefix.len() + name.len() + 35);
                key.push_str(prefix);
                key.push_str(name);
                key.push_str(":{");
                let mut hex = [0u8; 32];
                for (i, digit) in hex.iter_mut().enumerate() {
                    let nibble = (digest >> ((31 - i) * 4)) & 0xf;
                    *digit = b"0123456789abcdef"[nibble as usize];
                }
                key.push_str(std::str::from_utf8(&hex).unwrap_or_default());
                key.push('}');
                Ok(key)
            }
        }
    }
}

impl Default for KeyHasher {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(parts: impl FnOnce(KeyHasher) -> KeyHasher) -> String {
        parts(KeyHasher::new())
            .finish("app:", "shop::price")
            .unwrap()
    }

    #[test]
    fn a_fixed_input_gives_a_fixed_key() {
        // Checked in on purpose: if this changes, every deployed cache entry is
        // orphaned. Change it only with a note in the changelog.
        let k = key(|h| h.arg(&42u64).arg("eu-west").type_name("f64"));
        assert_eq!(k, "app:shop::price:{a33e0a599628cb8eaa29f6994b133eaa}");
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
    fn different_values_types_and_order_give_different_keys() {
        let a = key(|h| h.arg(&1u32).arg(&2u32));
        assert_ne!(a, key(|h| h.arg(&2u32).arg(&1u32)));
        assert_ne!(a, key(|h| h.arg(&1u64).arg(&2u32)));
        assert_ne!(a, key(|h| h.arg(&1u32).arg(&2u32).type_name("u8")));
    }

    #[test]
    fn str_and_string_keys_differ_by_type_only() {
        // Same bincode bytes, different type names: different keys, so a
        // changed signature never reads values written by the old one.
        assert_ne!(key(|h| h.arg("x")), key(|h| h.arg(&String::from("x"))));
    }

    #[test]
    fn a_value_that_fails_to_serialize_is_reported() {
        struct Refuses;
        impl Serialize for Refuses {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no key for me"))
            }
        }
        let err = KeyHasher::new()
            .arg(&Refuses)
            .arg(&1u8)
            .finish("", "f")
            .unwrap_err();
        assert!(err.to_string().contains("no key for me"), "{err}");
    }
}
