//! How values are stored: a one-byte format version, a fixed header of
//! metadata ([`Meta`]), then the bincode encoding of the value (bincode 2,
//! serde API, standard config).
//!
//! Format 2, the current one: `[2][fresh_until_ms: u64 LE][compute_ms: u32 LE][bincode value]`.
//! Format 3 is format 2 signed, written by a cache with a signing key:
//! `[3][header][bincode value][tag: 32 bytes]`, the tag being the
//! HMAC-SHA256 of the key and every byte before the tag (see `sign.rs`).
//! Formats 4 and 5 are formats 2 and 3 with the bincode value compressed
//! (`codec/compress.rs`): `[4][header][size: u32 LE][LZ4 block]`, and
//! `[5][header][size][LZ4 block][tag]`, the tag covering the compressed
//! bytes, so that it is checked before anything is decompressed. New format
//! bytes rather than a bump: values written before compression existed still
//! read, and a cache may compress some values and not others. A release
//! before them reads a compressed value as an unknown version: a miss,
//! overwritten uncompressed.
//! Format 1 (no header) was never released; it and any other version are
//! rejected cleanly, like garbage.
//!
//! A cache with a signing key reads only format 3 values whose tag checks,
//! before decoding anything: an unsigned value, a forged one, one signed
//! with another secret or copied from another key is an error (a miss). A
//! cache without one reads format 3 values without checking them (it has no
//! secret to check with, and trusts Redis anyway), so processes can start
//! signing one by one.
//!
//! Decoding is strict and bounded: an unknown version, a short or overlong
//! payload, or bytes claiming more memory than the payload could describe are
//! errors, which a cached call treats as a miss (and overwrites). The size
//! limit counts a value uncompressed, both ways: a value too large to store
//! uncompressed is not stored compressed either, and a compressed value
//! claiming more is refused before its bytes are allocated.

use serde::{Serialize, de::DeserializeOwned};

use crate::error::Error;
use crate::sign::{Seal, TAG};

mod compress;

/// bincode's standard configuration (varint integers, little endian).
pub(crate) const CONFIG: bincode::config::Configuration = bincode::config::standard();

/// The first byte of every stored value. Bump it when the layout changes;
/// values with another byte are rejected as a miss and overwritten.
const FORMAT: u8 = 2;

/// The first byte of a signed value: format 2's layout, then a tag.
const SIGNED: u8 = 3;

/// The first byte of a compressed value: format 2 with its value compressed.
const COMPRESSED: u8 = 4;

/// The first byte of a compressed, signed value: format 3 with its value compressed.
const SIGNED_COMPRESSED: u8 = 5;

/// The threshold of `compress = true` on a cache without
/// `compress_above`: values of up to 1 KiB gain little from LZ4 (a few
/// hundred bytes at best) and would pay its time on every write.
pub(crate) const COMPRESS_ABOVE: usize = 1 << 10;

/// Bytes of the header after the format byte.
const HEADER: usize = 8 + 4;

/// What is stored beside a value, for early refresh and stale serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Unix time in milliseconds when the value stops being fresh (its `ttl` ends).
    pub(crate) fresh_until_ms: u64,
    /// How long the body took to compute it, in milliseconds (XFetch's delta).
    pub(crate) compute_ms: u32,
}

/// How values of one type become bytes and back, as plain functions: the
/// calls that use it need no serde bounds of their own (see `spec::Values`).
pub(crate) struct Codec<V> {
    /// [`encode`] for `V`.
    pub(crate) encode: fn(&V, Meta, Option<Seal<'_>>, usize, Option<usize>) -> Encoded,
    /// [`decode`] for `V`.
    pub(crate) decode: Decode<V>,
}

/// A value's bytes, ready to store.
pub(crate) type Encoded = Result<Vec<u8>, Error>;

/// A decoded value and its metadata.
pub(crate) type Decoded<V> = Result<(V, Meta), Error>;

/// How a [`Codec`] decodes: bytes, the seal to check them with, the size limit.
pub(crate) type Decode<V> = fn(&[u8], Option<Seal<'_>>, usize) -> Decoded<V>;

impl<V> Clone for Codec<V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V> Copy for Codec<V> {}

impl<V: Serialize + DeserializeOwned> Codec<V> {
    /// The codec of a serializable type.
    pub(crate) const fn of() -> Self {
        Self {
            encode: encode::<V>,
            decode: decode::<V>,
        }
    }
}

/// Encodes `value` behind the format byte and `meta`, signed with `seal`
/// if given; fails if the result, uncompressed, exceeds `limit` bytes. The
/// value is compressed if the result, uncompressed, would be over
/// `compress_above` bytes, and if that makes it smaller.
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    meta: Meta,
    seal: Option<Seal<'_>>,
    limit: usize,
    compress_above: Option<usize>,
) -> Result<Vec<u8>, Error> {
    // A first pass measures, so the bytes are allocated once, at their size,
    // and a value over the limit is refused before anything is allocated.
    let mut size = bincode::enc::write::SizeWriter { bytes_written: 0 };
    bincode::serde::encode_into_writer(value, &mut size, CONFIG)?;
    let size = size.bytes_written;
    let (plain, tag) = match seal {
        Some(_) => (SIGNED, TAG),
        None => (FORMAT, 0),
    };
    let total = 1 + HEADER + size + tag;
    check_size(total, limit)?;
    let mut bytes;
    if compress_above.is_some_and(|above| total > above) {
        // The value is encoded apart, then compressed behind the header.
        let mut payload = Vec::with_capacity(size);
        bincode::serde::encode_into_std_write(value, &mut payload, CONFIG)?;
        bytes = Vec::with_capacity(1 + HEADER + compress::bound(size) + tag);
        header(&mut bytes, plain + (COMPRESSED - FORMAT), meta);
        if !compress::pack(&payload, &mut bytes) {
            bytes[0] = plain;
            bytes.extend_from_slice(&payload);
        }
    } else {
        bytes = Vec::with_capacity(total);
        header(&mut bytes, plain, meta);
        bincode::serde::encode_into_std_write(value, &mut bytes, CONFIG)?;
    }
    if let Some(seal) = seal {
        let tag = seal.signer.tag(seal.key, &bytes);
        bytes.extend_from_slice(&tag);
    }
    Ok(bytes)
}

/// Writes the format byte and `meta`.
fn header(bytes: &mut Vec<u8>, format: u8, meta: Meta) {
    bytes.push(format);
    bytes.extend_from_slice(&meta.fresh_until_ms.to_le_bytes());
    bytes.extend_from_slice(&meta.compute_ms.to_le_bytes());
}

/// Decodes bytes written by [`encode`], refusing anything over `limit`
/// bytes (uncompressed), and, with a `seal`, anything not signed with its
/// secret for its key.
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    seal: Option<Seal<'_>>,
    limit: usize,
) -> Decoded<T> {
    check_size(bytes.len(), limit)?;
    let (signed, compressed) = match bytes.first() {
        None => return Err(Error::Decode("empty value".into())),
        Some(&FORMAT) => (false, false),
        Some(&SIGNED) => (true, false),
        Some(&COMPRESSED) => (false, true),
        Some(&SIGNED_COMPRESSED) => (true, true),
        Some(other) => return Err(Error::Decode(format!("unknown format version {other}"))),
    };
    let tag = if signed { TAG } else { 0 };
    let rest = if !signed {
        if seal.is_some() {
            return Err(Error::Decode(
                "value not signed, and this cache only reads signed values".into(),
            ));
        }
        &bytes[1..]
    } else {
        // The tag is checked before a byte of the value is parsed or decompressed.
        let signed = bytes
            .len()
            .checked_sub(TAG)
            .filter(|&n| n > HEADER)
            .ok_or_else(|| Error::Decode("value shorter than its header".into()))?;
        let (signed, tag) = bytes.split_at(signed);
        if let Some(seal) = seal {
            if !seal.signer.verify(seal.key, signed, tag) {
                return Err(Error::Decode(
                    "value's signature does not match (forged, copied from another key, \
                     or signed with another secret)"
                        .into(),
                ));
            }
        }
        &signed[1..]
    };
    if rest.len() < HEADER {
        return Err(Error::Decode("value shorter than its header".into()));
    }
    let (header, payload) = rest.split_at(HEADER);
    let (until, compute) = header.split_at(8);
    let meta = Meta {
        fresh_until_ms: u64::from_le_bytes(until.try_into().unwrap_or_default()),
        compute_ms: u32::from_le_bytes(compute.try_into().unwrap_or_default()),
    };
    let value = if compressed {
        // What the value would have taken uncompressed, within the limit.
        let room = limit.saturating_sub(1 + HEADER + tag);
        decode_payload(&compress::unpack(payload, room)?)?
    } else {
        decode_payload(payload)?
    };
    Ok((value, meta))
}

fn check_size(size: usize, limit: usize) -> Result<(), Error> {
    if size > limit {
        return Err(Error::TooLarge { size, limit });
    }
    Ok(())
}

/// Decodes with a bincode byte limit scaled to the payload's size, so that
/// a corrupt length prefix can't make bincode allocate far more memory than
/// the stored value could describe.
///
/// bincode counts what a value takes in memory, not on the wire: a `u64`
/// under 251 is one byte stored and eight counted, a `u128` sixteen. So a
/// valid value may count up to 16 times its payload, and each tier's limit
/// is 16 times its largest payload (64 KiB for the smallest): every valid
/// value decodes, and a claimed length is refused past 16 times the stored
/// size. Sequences decoded through serde are not counted by bincode; for
/// those serde itself preallocates at most 1 MiB for a claimed length, and
/// decoding fails when the bytes run out. bincode's limit is a const
/// generic, hence the tiers.
fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, Error> {
    const KIB: usize = 1 << 10;
    const MIB: usize = 1 << 20;
    // 4 GiB where usize has room (all that an over-16-MiB payload may count).
    const HUGE: usize = u32::MAX as usize;
    let result = match payload.len() {
        n if n <= 4 * KIB => decode_within::<T, { 64 * KIB }>(payload),
        n if n <= 64 * KIB => decode_within::<T, { MIB }>(payload),
        n if n <= MIB => decode_within::<T, { 16 * MIB }>(payload),
        n if n <= 16 * MIB => decode_within::<T, { 256 * MIB }>(payload),
        _ => decode_within::<T, HUGE>(payload),
    };
    let (value, read) = result.map_err(|e| Error::Decode(e.to_string()))?;
    if read != payload.len() {
        return Err(Error::Decode(format!(
            "{} trailing bytes after the value",
            payload.len() - read
        )));
    }
    Ok(value)
}

fn decode_within<T: DeserializeOwned, const LIMIT: usize>(
    payload: &[u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    bincode::serde::decode_from_slice(payload, CONFIG.with_limit::<LIMIT>())
}

#[cfg(test)]
mod untrusted;

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 1 << 20;
    const META: Meta = Meta {
        fresh_until_ms: 1_700_000_000_123,
        compute_ms: 250,
    };

    #[test]
    fn round_trips_values_and_metadata() {
        let value = (7u64, String::from("seven"), vec![1.5f64, 2.5]);
        let bytes = encode(&value, META, None, LIMIT, None).unwrap();
        assert_eq!(bytes[0], FORMAT);
        assert_eq!(&bytes[1..9], &META.fresh_until_ms.to_le_bytes());
        let (back, meta): ((u64, String, Vec<f64>), Meta) = decode(&bytes, None, LIMIT).unwrap();
        assert_eq!((back, meta), (value, META));
    }

    #[test]
    fn rejects_garbage_other_versions_and_trailing_bytes() {
        let err = decode::<u64>(b"not bincode at all", None, LIMIT).unwrap_err();
        assert!(
            err.to_string().contains("unknown format version 110"),
            "{err}"
        );
        let err = decode::<u64>(&[], None, LIMIT).unwrap_err();
        assert!(err.to_string().contains("empty value"), "{err}");
        let err = decode::<u64>(&[1, 5], None, LIMIT).unwrap_err();
        assert!(
            err.to_string().contains("unknown format version 1"),
            "{err}"
        );
        let err = decode::<u64>(&[FORMAT, 1, 2, 3], None, LIMIT).unwrap_err();
        assert!(err.to_string().contains("shorter than its header"), "{err}");
        let mut bytes = encode(&5u8, META, None, LIMIT, None).unwrap();
        bytes.push(0);
        let err = decode::<u8>(&bytes, None, LIMIT).unwrap_err();
        assert!(err.to_string().contains("1 trailing bytes"), "{err}");
    }

    #[test]
    fn a_huge_length_prefix_is_refused_not_allocated() {
        // Header, then a varint length of u64::MAX / 2 for a Vec<u8>, then 3 bytes.
        let mut bytes = encode(&(), META, None, LIMIT, None).unwrap();
        bytes.push(253);
        bytes.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
        bytes.extend_from_slice(b"abc");
        let err = decode::<Vec<u8>>(&bytes, None, LIMIT).unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{err}");
    }

    fn signer(secret: &[u8]) -> crate::sign::Signer {
        crate::sign::Signer::new(secret).unwrap()
    }

    #[test]
    fn a_signed_value_reads_back_only_with_its_secret_and_key() {
        let ours = signer(b"the secret of this test, 32 bytes");
        let theirs = signer(b"another secret, for another cache");
        let seal = |signer, key| Some(Seal { signer, key });
        let value = (7u64, String::from("seven"));
        let bytes = encode(&value, META, seal(&ours, "app:f:{1}"), LIMIT, None).unwrap();
        assert_eq!(bytes[0], SIGNED);
        let plain = encode(&value, META, None, LIMIT, None).unwrap();
        assert_eq!(bytes.len(), plain.len() + TAG);
        assert_eq!(&bytes[1..plain.len()], &plain[1..], "format 2 plus a tag");

        let back: Decoded<(u64, String)> = decode(&bytes, seal(&ours, "app:f:{1}"), LIMIT);
        assert_eq!(back.unwrap(), (value.clone(), META));
        for (seal, why) in [
            (seal(&ours, "app:f:{2}"), "another key"),
            (seal(&theirs, "app:f:{1}"), "another secret"),
        ] {
            let err = decode::<(u64, String)>(&bytes, seal, LIMIT).unwrap_err();
            assert!(
                err.to_string().contains("signature does not match"),
                "{why}: {err}"
            );
        }
        let err = decode::<(u64, String)>(&plain, seal(&ours, "app:f:{1}"), LIMIT).unwrap_err();
        assert!(err.to_string().contains("not signed"), "{err}");
        // A cache without a secret reads signed values unchecked.
        let back: Decoded<(u64, String)> = decode(&bytes, None, LIMIT);
        assert_eq!(back.unwrap(), (value, META));
        // The size limit counts the tag.
        let err = encode(&0u8, META, seal(&ours, "k"), 1 + HEADER + 1 + TAG - 1, None).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    }

    #[test]
    fn a_signed_value_cut_to_its_tag_is_refused() {
        let ours = signer(b"the secret of this test, 32 bytes");
        let seal = Some(Seal {
            signer: &ours,
            key: "k",
        });
        for len in 0..1 + HEADER + TAG {
            let bytes = vec![SIGNED; len];
            assert!(decode::<()>(&bytes, seal, LIMIT).is_err(), "{len} bytes");
            assert!(decode::<()>(&bytes, None, LIMIT).is_err(), "{len} bytes");
        }
        // Long enough for a `()`, but the tag is not one.
        let bytes = vec![SIGNED; 1 + HEADER + TAG];
        assert!(decode::<()>(&bytes, seal, LIMIT).is_err());
    }

    /// A value of the kind worth compressing: records with repeated strings.
    fn rows(n: u32) -> Vec<(u32, String, String)> {
        (0..n)
            .map(|i| {
                (
                    i,
                    format!("customer-{}", i % 7),
                    "status: shipped".to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_value_over_the_threshold_is_stored_compressed_and_reads_back() {
        let value = rows(500);
        let plain = encode(&value, META, None, LIMIT, None).unwrap();
        let packed = encode(&value, META, None, LIMIT, Some(1024)).unwrap();
        assert_eq!((plain[0], packed[0]), (FORMAT, COMPRESSED));
        assert!(
            packed.len() * 3 < plain.len(),
            "{} vs {}",
            packed.len(),
            plain.len()
        );
        assert_eq!(
            &packed[1..1 + HEADER],
            &plain[1..1 + HEADER],
            "the header is not compressed"
        );
        type Rows = Vec<(u32, String, String)>;
        assert_eq!(
            decode::<Rows>(&packed, None, LIMIT).unwrap(),
            (value.clone(), META)
        );
        // At or under the threshold, and for data that doesn't shrink, the plain format.
        let same = encode(&value, META, None, LIMIT, Some(plain.len())).unwrap();
        assert_eq!(same, plain);
        let noise: Vec<u64> = (0..500u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        let bytes = encode(&noise, META, None, LIMIT, Some(0)).unwrap();
        assert_eq!(bytes, encode(&noise, META, None, LIMIT, None).unwrap());
    }

    #[test]
    fn a_compressed_signed_value_is_checked_before_it_is_decompressed() {
        let ours = signer(b"the secret of this test, 32 bytes");
        let seal = |key| Some(Seal { signer: &ours, key });
        let value = rows(500);
        let bytes = encode(&value, META, seal("app:f:{1}"), LIMIT, Some(0)).unwrap();
        assert_eq!(bytes[0], SIGNED_COMPRESSED);
        let packed = encode(&value, META, None, LIMIT, Some(0)).unwrap();
        assert_eq!(
            &bytes[1..bytes.len() - TAG],
            &packed[1..],
            "format 4 plus a tag"
        );
        type Rows = Vec<(u32, String, String)>;
        let back = decode::<Rows>(&bytes, seal("app:f:{1}"), LIMIT).unwrap();
        assert_eq!(back, (value.clone(), META));
        assert_eq!(decode::<Rows>(&bytes, None, LIMIT).unwrap(), (value, META));
        let err = decode::<Rows>(&bytes, seal("app:f:{2}"), LIMIT).unwrap_err();
        assert!(
            err.to_string().contains("signature does not match"),
            "{err}"
        );
        let err = decode::<Rows>(&packed, seal("app:f:{1}"), LIMIT).unwrap_err();
        assert!(err.to_string().contains("not signed"), "{err}");
        // A compressed body claiming 4 GiB under a valid tag: refused by size, not allocated.
        let mut forged = packed[..1 + HEADER].to_vec();
        forged[0] = SIGNED_COMPRESSED;
        forged.extend_from_slice(&u32::MAX.to_le_bytes());
        forged.extend_from_slice(&[0x1f, b'a', 1, 0]);
        let tag = ours.tag("k", &forged);
        forged.extend_from_slice(&tag);
        let err = decode::<Rows>(&forged, seal("k"), LIMIT).unwrap_err();
        assert!(err.to_string().contains("over the limit"), "{err}");
    }

    #[test]
    fn the_limit_counts_a_compressed_value_uncompressed() {
        let value = vec![7u8; 4000];
        let err = encode(&value, META, None, 2048, Some(0)).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
        let bytes = encode(&value, META, None, LIMIT, Some(0)).unwrap();
        assert!(bytes.len() < 100, "{} bytes", bytes.len());
        let err = decode::<Vec<u8>>(&bytes, None, 2048).unwrap_err();
        assert!(err.to_string().contains("over the limit"), "{err}");
        let exact = 1 + HEADER + 3 + value.len();
        assert_eq!(decode::<Vec<u8>>(&bytes, None, exact).unwrap().0, value);
        assert!(decode::<Vec<u8>>(&bytes, None, exact - 1).is_err());
    }

    #[test]
    fn enforces_the_size_limit_both_ways() {
        let big = vec![0u8; 2048];
        let err = encode(&big, META, None, 1024, None).unwrap_err();
        assert!(matches!(err, Error::TooLarge { limit: 1024, .. }), "{err}");
        let bytes = encode(&big, META, None, LIMIT, None).unwrap();
        let err = decode::<Vec<u8>>(&bytes, None, 1024).unwrap_err();
        assert!(
            matches!(err, Error::TooLarge { size, .. } if size == bytes.len()),
            "{err}"
        );
    }
}
