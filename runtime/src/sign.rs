//! Signed values: the HMAC-SHA256 of a stored value under the cache's
//! secret, over the Redis key and the value's bytes, so that whoever can
//! write to Redis without the secret can't plant a value the application
//! trusts, nor move one from a key to another.
//!
//! The secret never leaves this file: [`Signer`] keeps only HMAC's keyed
//! state, and its `Debug` prints nothing of it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of a tag (HMAC-SHA256).
pub(crate) const TAG: usize = 32;

/// The shortest secret [`Signer::new`] accepts.
pub(crate) const MIN_SECRET: usize = 16;

/// Signs and checks values under one secret.
#[derive(Clone)]
pub(crate) struct Signer {
    /// HMAC keyed with the secret (its inner and outer pads absorbed), cloned
    /// for each tag.
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

impl Signer {
    /// A signer with this secret; `None` if it is shorter than [`MIN_SECRET`].
    pub(crate) fn new(secret: &[u8]) -> Option<Self> {
        if secret.len() < MIN_SECRET {
            return None;
        }
        // HMAC takes a key of any length: this never fails.
        let mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
        Some(Self { mac })
    }

    /// The MAC of `key`'s length (u64 LE), `key`, then `signed`.
    fn mac(&self, key: &str, signed: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(&(key.len() as u64).to_le_bytes());
        mac.update(key.as_bytes());
        mac.update(signed);
        mac
    }

    /// The tag of the bytes `signed` stored under `key`.
    pub(crate) fn tag(&self, key: &str, signed: &[u8]) -> [u8; TAG] {
        self.mac(key, signed).finalize().into_bytes().into()
    }

    /// Whether `tag` is the tag of `signed` under `key` (in constant time).
    pub(crate) fn verify(&self, key: &str, signed: &[u8], tag: &[u8]) -> bool {
        self.mac(key, signed).verify_slice(tag).is_ok()
    }
}

/// A value's signer and the key it is stored under: what its tag covers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seal<'a> {
    pub(crate) signer: &'a Signer,
    pub(crate) key: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_tag_checks_only_with_its_key_bytes_and_secret() {
        let signer = Signer::new(SECRET).unwrap();
        let tag = signer.tag("app:f:{1}", b"value");
        assert!(signer.verify("app:f:{1}", b"value", &tag));
        assert!(!signer.verify("app:f:{2}", b"value", &tag));
        assert!(!signer.verify("app:f:{1}", b"valuf", &tag));
        assert!(!signer.verify("app:f:{1}", b"value", &tag[..31]));
        // The key's length is hashed: moving bytes between key and value fails.
        assert!(!signer.verify("app:f:{1}v", b"alue", &tag));
        let other = Signer::new(b"another secret, as long as needed").unwrap();
        assert!(!other.verify("app:f:{1}", b"value", &tag));
    }

    #[test]
    fn it_matches_hmac_sha256_and_prints_no_secret() {
        // The construction, checked against the hmac crate used directly.
        let signer = Signer::new(SECRET).unwrap();
        let mut direct = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
        direct.update(&3u64.to_le_bytes());
        direct.update(b"k:1");
        direct.update(b"bytes");
        let expected: [u8; TAG] = direct.finalize().into_bytes().into();
        assert_eq!(signer.tag("k:1", b"bytes"), expected);
        assert_eq!(format!("{signer:?}"), "Signer(<redacted>)");
        assert!(Signer::new(&SECRET[..MIN_SECRET - 1]).is_none());
    }
}
