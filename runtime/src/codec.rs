//! How values are stored: a format byte, a fixed header of metadata
//! ([`Meta`]) and the value's shape, then the bincode encoding of the value
//! (bincode 2, serde API, standard config).
//!
//! The format byte is `0x10` with flags: `SIGNED` (a tag follows the value),
//! `COMPRESSED` (the value is an LZ4 block, `codec/compress.rs`) and
//! `VALUE_TAG` (the shape field is the value's own tag, not its type's
//! fingerprint; see `shape.rs`). Then
//! `[fresh_until_ms: u64 LE][compute_ms: u32 LE][shape: u64 LE]`, then the
//! value: `[bincode value]`, or, compressed, `[size: u32 LE][LZ4 block]`;
//! signed, `[tag: 32 bytes]` last, the HMAC-SHA256 of the key and every byte
//! before it (see `sign.rs`), checked before anything is decompressed.
//!
//! A value is read only by a type of the shape that wrote it: with
//! [`Check::Type`], the header's shape must be the reader's fingerprint
//! (a compare, before decoding); with [`Check::Value`], the tag of what the
//! reader's `Deserialize` reads must be the header's, computed while it
//! decodes. Anything else is [`Error::Shape`]: a miss, counted apart from
//! errors. So is a value of formats 2 to 5, written by releases before
//! shapes were checked: read as a miss once, and overwritten.
//!
//! A cache with a signing key reads only signed values whose tag checks,
//! before decoding anything: an unsigned value, a forged one, one signed
//! with another secret or copied from another key is an error (a miss). A
//! cache without one reads signed values without checking them (it has no
//! secret to check with, and trusts Redis anyway), so processes can start
//! signing one by one.
//!
//! Decoding is strict and bounded: an unknown format, a short or overlong
//! payload, or bytes claiming more memory than the payload could describe are
//! errors, which a cached call treats as a miss (and overwrites). The size
//! limit counts a value uncompressed, both ways: a value too large to store
//! uncompressed is not stored compressed either, and a compressed value
//! claiming more is refused before its bytes are allocated.

use serde::{Serialize, de::DeserializeOwned};

use crate::error::Error;
use crate::shape::{self, Check, Traced};
use crate::sign::{Seal, TAG};

mod compress;

/// bincode's standard configuration (varint integers, little endian).
pub(crate) const CONFIG: bincode::config::Configuration = bincode::config::standard();

/// The format byte with no flags. Bump it (to another multiple of 8) when the
/// layout changes; values with another byte are a miss and overwritten.
const FORMAT: u8 = 0x10;
/// Flag: a signature follows the value.
const SIGNED: u8 = 1;
/// Flag: the value is compressed.
const COMPRESSED: u8 = 2;
/// Flag: the shape field is the value's own tag ([`Check::Value`]).
const VALUE_TAG: u8 = 4;
/// The format bytes of the releases before shapes: 2 (plain), 3 (signed),
/// 4 (compressed), 5 (both).
const BEFORE_SHAPES: std::ops::RangeInclusive<u8> = 2..=5;

/// Why a value is not read ([`Error::Shape`]), as a log line finishes
/// "a cached value …".
const BEFORE_SHAPES_WROTE: &str =
    "was written by a release of redis-cached that did not record shapes";
const ANOTHER_TYPE_WROTE: &str = "was written by a type of another shape \
     (a deploy changed the type, or another type shares the key)";
const ANOTHER_VALUE_WROTE: &str = "was written by a value of another shape \
     (a deploy changed the type, or another type shares the key)";

/// The threshold of `compress = true` on a cache without
/// `compress_above`: values of up to 1 KiB gain little from LZ4 (a few
/// hundred bytes at best) and would pay its time on every write.
pub(crate) const COMPRESS_ABOVE: usize = 1 << 10;

/// Bytes of the header after the format byte: `fresh_until_ms`,
/// `compute_ms`, shape.
const HEADER: usize = 8 + 4 + 8;

/// What is stored beside a value, for early refresh and stale serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Unix time in milliseconds when the value stops being fresh (its `ttl` ends).
    pub(crate) fresh_until_ms: u64,
    /// How long the body took to compute it, in milliseconds (XFetch's delta).
    pub(crate) compute_ms: u32,
}

/// How values of one type become bytes and back, as plain functions (the
/// calls that use it need no serde bounds of their own, see
/// `spec::Values`), and what a read checks their shape against.
pub(crate) struct Codec<V> {
    encode: Encode<V>,
    decode: Decode<V>,
    /// Traces `V`, for the function's [`Shape`](crate::shape::Shape).
    pub(crate) trace: fn() -> Traced,
    /// [`Check::Value`] until a call sets its function's.
    check: Check,
}

/// [`encode`] for one type: value, check, metadata, seal, size limit,
/// compression threshold.
type Encode<V> = fn(&V, Check, Meta, Option<Seal<'_>>, usize, Option<usize>) -> Encoded;

/// [`decode`] for one type: bytes, check, seal, size limit.
type Decode<V> = fn(&[u8], Check, Option<Seal<'_>>, usize) -> Decoded<V>;

/// A value's bytes, ready to store.
pub(crate) type Encoded = Result<Vec<u8>, Error>;

/// A decoded value and its metadata.
pub(crate) type Decoded<V> = Result<(V, Meta), Error>;

impl<V> Clone for Codec<V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V> Copy for Codec<V> {}

impl<V: Serialize + DeserializeOwned> Codec<V> {
    /// The codec of a serializable type, checking each value's own tag.
    pub(crate) const fn of() -> Self {
        Self {
            encode: encode::<V>,
            decode: decode::<V>,
            trace: shape::traced::<V>,
            check: Check::Value,
        }
    }
}

impl<V> Codec<V> {
    /// This codec, checking values as `check` says.
    pub(crate) fn checking(self, check: Check) -> Self {
        Self { check, ..self }
    }

    /// How this codec reads.
    pub(crate) fn reading(&self) -> Reading<V> {
        Reading {
            decode: self.decode,
            check: self.check,
        }
    }

    /// [`encode`] with this codec's check.
    pub(crate) fn encode(
        &self,
        value: &V,
        meta: Meta,
        seal: Option<Seal<'_>>,
        limit: usize,
        compress_above: Option<usize>,
    ) -> Encoded {
        (self.encode)(value, self.check, meta, seal, limit, compress_above)
    }

    /// [`decode`] with this codec's check.
    pub(crate) fn decode(&self, bytes: &[u8], seal: Option<Seal<'_>>, limit: usize) -> Decoded<V> {
        self.reading().decode(bytes, seal, limit)
    }
}

/// The reading half of a [`Codec`]: all a read needs, and all a type that
/// is only `DeserializeOwned` has (the typed API's `get`).
pub(crate) struct Reading<V> {
    decode: Decode<V>,
    check: Check,
}

impl<V> Clone for Reading<V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V> Copy for Reading<V> {}

impl<V: DeserializeOwned> Reading<V> {
    /// Reads values of `V`, checking each one's own tag.
    pub(crate) const fn of() -> Self {
        Self {
            decode: decode::<V>,
            check: Check::Value,
        }
    }
}

impl<V> Reading<V> {
    /// [`decode`] with this reading's check.
    pub(crate) fn decode(&self, bytes: &[u8], seal: Option<Seal<'_>>, limit: usize) -> Decoded<V> {
        (self.decode)(bytes, self.check, seal, limit)
    }
}

/// Encodes `value` behind the format byte, `meta` and its shape (`check`'s
/// fingerprint, or the value's own tag), signed with `seal` if given;
/// fails if the result, uncompressed, exceeds `limit` bytes. The value is
/// compressed if the result, uncompressed, would be over `compress_above`
/// bytes, and if that makes it smaller.
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    check: Check,
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
    let (mut format, tag) = match seal {
        Some(_) => (FORMAT | SIGNED, TAG),
        None => (FORMAT, 0),
    };
    let shape = match check {
        Check::Type { fingerprint, .. } => fingerprint,
        Check::Value => {
            format |= VALUE_TAG;
            shape::write::tag_of(value).map_err(|e| Error::Encode(e.to_string()))?
        }
    };
    let total = 1 + HEADER + size + tag;
    check_size(total, limit)?;
    let mut bytes;
    if compress_above.is_some_and(|above| total > above) {
        // The value is encoded apart, then compressed behind the header.
        let mut payload = Vec::with_capacity(size);
        bincode::serde::encode_into_std_write(value, &mut payload, CONFIG)?;
        bytes = Vec::with_capacity(1 + HEADER + compress::bound(size) + tag);
        header(&mut bytes, format | COMPRESSED, meta, shape);
        if !compress::pack(&payload, &mut bytes) {
            bytes[0] = format;
            bytes.extend_from_slice(&payload);
        }
    } else {
        bytes = Vec::with_capacity(total);
        header(&mut bytes, format, meta, shape);
        bincode::serde::encode_into_std_write(value, &mut bytes, CONFIG)?;
    }
    if let Some(seal) = seal {
        let tag = seal.signer.tag(seal.key, &bytes);
        bytes.extend_from_slice(&tag);
    }
    Ok(bytes)
}

/// Writes the format byte, `meta` and the shape.
fn header(bytes: &mut Vec<u8>, format: u8, meta: Meta, shape: u64) {
    bytes.push(format);
    bytes.extend_from_slice(&meta.fresh_until_ms.to_le_bytes());
    bytes.extend_from_slice(&meta.compute_ms.to_le_bytes());
    bytes.extend_from_slice(&shape.to_le_bytes());
}

/// Decodes bytes written by [`encode`] for a reader checking as `check`
/// says, refusing anything over `limit` bytes (uncompressed), and, with a
/// `seal`, anything not signed with its secret for its key.
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    check: Check,
    seal: Option<Seal<'_>>,
    limit: usize,
) -> Decoded<T> {
    check_size(bytes.len(), limit)?;
    let format = match bytes.first() {
        None => return Err(Error::Decode("empty value".into())),
        Some(&format) if format & !7 == FORMAT => format,
        Some(format) if BEFORE_SHAPES.contains(format) => {
            return Err(Error::Shape(BEFORE_SHAPES_WROTE));
        }
        Some(other) => return Err(Error::Decode(format!("unknown format version {other}"))),
    };
    let signed = format & SIGNED != 0;
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
    let Some((header, payload)) = rest.split_first_chunk::<HEADER>() else {
        return Err(Error::Decode("value shorter than its header".into()));
    };
    let (until, rest) = header.split_first_chunk::<8>().unwrap_or((&[0; 8], &[]));
    let (compute, shape) = rest.split_first_chunk::<4>().unwrap_or((&[0; 4], &[]));
    let meta = Meta {
        fresh_until_ms: u64::from_le_bytes(*until),
        compute_ms: u32::from_le_bytes(*compute),
    };
    let shape = u64::from_le_bytes(shape.try_into().unwrap_or_default());
    let read = match (check, format & VALUE_TAG != 0) {
        (Check::Type { fingerprint, .. }, false) if fingerprint != shape => None,
        (Check::Type { holds_strings, .. }, false) if !holds_strings => Some(Read::Uncounted),
        (Check::Type { .. }, false) => Some(Read::Counted),
        (Check::Value, true) => Some(Read::Tagged(shape)),
        _ => None,
    };
    let read = read.ok_or(Error::Shape(ANOTHER_TYPE_WROTE))?;
    let value = if format & COMPRESSED != 0 {
        // What the value would have taken uncompressed, within the limit.
        let room = limit.saturating_sub(1 + HEADER + tag);
        decode_payload(&compress::unpack(payload, room)?, read)?
    } else {
        decode_payload(payload, read)?
    };
    Ok((value, meta))
}

/// bincode's error, as ours.
fn decoded(error: bincode::error::DecodeError) -> Error {
    Error::Decode(error.to_string())
}

fn check_size(size: usize, limit: usize) -> Result<(), Error> {
    if size > limit {
        return Err(Error::TooLarge { size, limit });
    }
    Ok(())
}

/// How a payload is decoded.
#[derive(Debug, Clone, Copy)]
enum Read {
    /// With bincode counting what it allocates.
    Counted,
    /// Without: a type that holds no string or byte buffer, whose traced
    /// shape says nothing is allocated at a length the bytes claim.
    /// bincode's counting costs a check per element (8 instructions per
    /// `f64` of a `Vec<f64>`).
    Uncounted,
    /// Counted, and the reader's shape tag checked against this one.
    Tagged(u64),
}

/// Decodes as `read` says. Counted, with a bincode byte limit scaled to the
/// payload's size, so that a corrupt length prefix can't make bincode
/// allocate far more memory than the stored value could describe.
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
fn decode_payload<T: DeserializeOwned>(payload: &[u8], read: Read) -> Result<T, Error> {
    const KIB: usize = 1 << 10;
    const MIB: usize = 1 << 20;
    // 4 GiB where usize has room (all that an over-16-MiB payload may count).
    const HUGE: usize = u32::MAX as usize;
    let tag = match read {
        Read::Uncounted | Read::Counted => None,
        Read::Tagged(tag) => Some(tag),
    };
    let result = match payload.len() {
        _ if matches!(read, Read::Uncounted) => {
            bincode::serde::decode_from_slice(payload, CONFIG).map_err(decoded)
        }
        n if n <= 4 * KIB => decode_within::<T, { 64 * KIB }>(payload, tag),
        n if n <= 64 * KIB => decode_within::<T, { MIB }>(payload, tag),
        n if n <= MIB => decode_within::<T, { 16 * MIB }>(payload, tag),
        n if n <= 16 * MIB => decode_within::<T, { 256 * MIB }>(payload, tag),
        _ => decode_within::<T, HUGE>(payload, tag),
    };
    let (value, read) = result?;
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
    tag: Option<u64>,
) -> Result<(T, usize), Error> {
    let config = CONFIG.with_limit::<LIMIT>();
    let Some(tag) = tag else {
        return bincode::serde::decode_from_slice(payload, config).map_err(decoded);
    };
    let seed = shape::read::Tagged::new();
    let ((value, read), len) =
        bincode::serde::seed_decode_from_slice(seed, payload, config).map_err(decoded)?;
    if read != tag {
        return Err(Error::Shape(ANOTHER_VALUE_WROTE));
    }
    Ok((value, len))
}

#[cfg(test)]
mod untrusted;

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 1 << 20;
    /// A type's fingerprint, as a cached function checks values.
    const TYPE: Check = Check::Type {
        fingerprint: 0x0123_4567_89ab_cdef,
        holds_strings: true,
    };
    const META: Meta = Meta {
        fresh_until_ms: 1_700_000_000_123,
        compute_ms: 250,
    };

    #[test]
    fn round_trips_values_and_metadata() {
        let value = (7u64, String::from("seven"), vec![1.5f64, 2.5]);
        let bytes = encode(&value, TYPE, META, None, LIMIT, None).unwrap();
        assert_eq!(bytes[0], FORMAT);
        assert_eq!(&bytes[1..9], &META.fresh_until_ms.to_le_bytes());
        let (back, meta): ((u64, String, Vec<f64>), Meta) =
            decode(&bytes, TYPE, None, LIMIT).unwrap();
        assert_eq!((back, meta), (value, META));
    }

    #[test]
    fn rejects_garbage_other_versions_and_trailing_bytes() {
        let err = decode::<u64>(b"not bincode at all", TYPE, None, LIMIT).unwrap_err();
        assert!(
            err.to_string().contains("unknown format version 110"),
            "{err}"
        );
        let err = decode::<u64>(&[], TYPE, None, LIMIT).unwrap_err();
        assert!(err.to_string().contains("empty value"), "{err}");
        let err = decode::<u64>(&[1, 5], TYPE, None, LIMIT).unwrap_err();
        assert!(
            err.to_string().contains("unknown format version 1"),
            "{err}"
        );
        let err = decode::<u64>(&[FORMAT, 1, 2, 3], TYPE, None, LIMIT).unwrap_err();
        assert!(err.to_string().contains("shorter than its header"), "{err}");
        let mut bytes = encode(&5u8, TYPE, META, None, LIMIT, None).unwrap();
        bytes.push(0);
        let err = decode::<u8>(&bytes, TYPE, None, LIMIT).unwrap_err();
        assert!(err.to_string().contains("1 trailing bytes"), "{err}");
    }

    #[test]
    fn a_huge_length_prefix_is_refused_not_allocated() {
        // Header, then a varint length of u64::MAX / 2 for a Vec<u8>, then 3 bytes.
        let mut bytes = encode(&(), TYPE, META, None, LIMIT, None).unwrap();
        bytes.push(253);
        bytes.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
        bytes.extend_from_slice(b"abc");
        let err = decode::<Vec<u8>>(&bytes, TYPE, None, LIMIT).unwrap_err();
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
        let bytes = encode(&value, TYPE, META, seal(&ours, "app:f:{1}"), LIMIT, None).unwrap();
        assert_eq!(bytes[0], FORMAT | SIGNED);
        let plain = encode(&value, TYPE, META, None, LIMIT, None).unwrap();
        assert_eq!(bytes.len(), plain.len() + TAG);
        assert_eq!(&bytes[1..plain.len()], &plain[1..], "format 2 plus a tag");

        let back: Decoded<(u64, String)> = decode(&bytes, TYPE, seal(&ours, "app:f:{1}"), LIMIT);
        assert_eq!(back.unwrap(), (value.clone(), META));
        for (seal, why) in [
            (seal(&ours, "app:f:{2}"), "another key"),
            (seal(&theirs, "app:f:{1}"), "another secret"),
        ] {
            let err = decode::<(u64, String)>(&bytes, TYPE, seal, LIMIT).unwrap_err();
            assert!(
                err.to_string().contains("signature does not match"),
                "{why}: {err}"
            );
        }
        let err =
            decode::<(u64, String)>(&plain, TYPE, seal(&ours, "app:f:{1}"), LIMIT).unwrap_err();
        assert!(err.to_string().contains("not signed"), "{err}");
        // A cache without a secret reads signed values unchecked.
        let back: Decoded<(u64, String)> = decode(&bytes, TYPE, None, LIMIT);
        assert_eq!(back.unwrap(), (value, META));
        // The size limit counts the tag.
        let err = encode(
            &0u8,
            TYPE,
            META,
            seal(&ours, "k"),
            1 + HEADER + 1 + TAG - 1,
            None,
        )
        .unwrap_err();
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
            let bytes = vec![FORMAT | SIGNED; len];
            assert!(
                decode::<()>(&bytes, TYPE, seal, LIMIT).is_err(),
                "{len} bytes"
            );
            assert!(
                decode::<()>(&bytes, TYPE, None, LIMIT).is_err(),
                "{len} bytes"
            );
        }
        // Long enough for a `()`, but the tag is not one.
        let bytes = vec![FORMAT | SIGNED; 1 + HEADER + TAG];
        assert!(decode::<()>(&bytes, TYPE, seal, LIMIT).is_err());
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
        let plain = encode(&value, TYPE, META, None, LIMIT, None).unwrap();
        let packed = encode(&value, TYPE, META, None, LIMIT, Some(1024)).unwrap();
        assert_eq!((plain[0], packed[0]), (FORMAT, FORMAT | COMPRESSED));
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
            decode::<Rows>(&packed, TYPE, None, LIMIT).unwrap(),
            (value.clone(), META)
        );
        // At or under the threshold, and for data that doesn't shrink, the plain format.
        let same = encode(&value, TYPE, META, None, LIMIT, Some(plain.len())).unwrap();
        assert_eq!(same, plain);
        let noise: Vec<u64> = (0..500u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        let bytes = encode(&noise, TYPE, META, None, LIMIT, Some(0)).unwrap();
        assert_eq!(
            bytes,
            encode(&noise, TYPE, META, None, LIMIT, None).unwrap()
        );
    }

    #[test]
    fn a_compressed_signed_value_is_checked_before_it_is_decompressed() {
        let ours = signer(b"the secret of this test, 32 bytes");
        let seal = |key| Some(Seal { signer: &ours, key });
        let value = rows(500);
        let bytes = encode(&value, TYPE, META, seal("app:f:{1}"), LIMIT, Some(0)).unwrap();
        assert_eq!(bytes[0], FORMAT | SIGNED | COMPRESSED);
        let packed = encode(&value, TYPE, META, None, LIMIT, Some(0)).unwrap();
        assert_eq!(
            &bytes[1..bytes.len() - TAG],
            &packed[1..],
            "format 4 plus a tag"
        );
        type Rows = Vec<(u32, String, String)>;
        let back = decode::<Rows>(&bytes, TYPE, seal("app:f:{1}"), LIMIT).unwrap();
        assert_eq!(back, (value.clone(), META));
        assert_eq!(
            decode::<Rows>(&bytes, TYPE, None, LIMIT).unwrap(),
            (value, META)
        );
        let err = decode::<Rows>(&bytes, TYPE, seal("app:f:{2}"), LIMIT).unwrap_err();
        assert!(
            err.to_string().contains("signature does not match"),
            "{err}"
        );
        let err = decode::<Rows>(&packed, TYPE, seal("app:f:{1}"), LIMIT).unwrap_err();
        assert!(err.to_string().contains("not signed"), "{err}");
        // A compressed body claiming 4 GiB under a valid tag: refused by size, not allocated.
        let mut forged = packed[..1 + HEADER].to_vec();
        forged[0] = FORMAT | SIGNED | COMPRESSED;
        forged.extend_from_slice(&u32::MAX.to_le_bytes());
        forged.extend_from_slice(&[0x1f, b'a', 1, 0]);
        let tag = ours.tag("k", &forged);
        forged.extend_from_slice(&tag);
        let err = decode::<Rows>(&forged, TYPE, seal("k"), LIMIT).unwrap_err();
        assert!(err.to_string().contains("over the limit"), "{err}");
    }

    #[test]
    fn the_limit_counts_a_compressed_value_uncompressed() {
        let value = vec![7u8; 4000];
        let err = encode(&value, TYPE, META, None, 2048, Some(0)).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
        let bytes = encode(&value, TYPE, META, None, LIMIT, Some(0)).unwrap();
        assert!(bytes.len() < 100, "{} bytes", bytes.len());
        let err = decode::<Vec<u8>>(&bytes, TYPE, None, 2048).unwrap_err();
        assert!(err.to_string().contains("over the limit"), "{err}");
        let exact = 1 + HEADER + 3 + value.len();
        assert_eq!(
            decode::<Vec<u8>>(&bytes, TYPE, None, exact).unwrap().0,
            value
        );
        assert!(decode::<Vec<u8>>(&bytes, TYPE, None, exact - 1).is_err());
    }

    #[test]
    fn enforces_the_size_limit_both_ways() {
        let big = vec![0u8; 2048];
        let err = encode(&big, TYPE, META, None, 1024, None).unwrap_err();
        assert!(matches!(err, Error::TooLarge { limit: 1024, .. }), "{err}");
        let bytes = encode(&big, TYPE, META, None, LIMIT, None).unwrap();
        let err = decode::<Vec<u8>>(&bytes, TYPE, None, 1024).unwrap_err();
        assert!(
            matches!(err, Error::TooLarge { size, .. } if size == bytes.len()),
            "{err}"
        );
    }

    #[test]
    fn values_of_the_formats_before_shapes_are_a_shape_miss_not_garbage() {
        // Format 2 as releases before shapes wrote it: [2][until][compute][bincode].
        let mut old = vec![2];
        old.extend_from_slice(&META.fresh_until_ms.to_le_bytes());
        old.extend_from_slice(&META.compute_ms.to_le_bytes());
        old.push(42);
        for format in 2..=5 {
            old[0] = format;
            for check in [TYPE, Check::Value] {
                let err = decode::<u64>(&old, check, None, LIMIT).unwrap_err();
                assert!(matches!(err, Error::Shape(_)), "{format}: {err}");
            }
        }
    }

    #[test]
    fn a_fingerprint_check_reads_only_its_own_fingerprint() {
        let bytes = encode(&7u64, TYPE, META, None, LIMIT, None).unwrap();
        assert_eq!(decode::<u64>(&bytes, TYPE, None, LIMIT).unwrap().0, 7);
        let other = Check::Type {
            fingerprint: 0x0123_4567_89ab_cdee,
            holds_strings: true,
        };
        let err = decode::<u64>(&bytes, other, None, LIMIT).unwrap_err();
        assert!(matches!(err, Error::Shape(_)), "{err}");
        // A value tagged per value is not read by a fingerprint check, nor
        // the other way round.
        let tagged = encode(&7u64, Check::Value, META, None, LIMIT, None).unwrap();
        assert_eq!(tagged[0], FORMAT | VALUE_TAG);
        assert!(matches!(
            decode::<u64>(&tagged, TYPE, None, LIMIT),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            decode::<u64>(&bytes, Check::Value, None, LIMIT),
            Err(Error::Shape(_))
        ));
        assert_eq!(
            decode::<u64>(&tagged, Check::Value, None, LIMIT).unwrap().0,
            7
        );
    }

    mod before {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
        pub(super) struct Bounds {
            pub(super) min: i64,
            pub(super) max: i64,
        }
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
        pub(super) enum Status {
            Active,
            Suspended,
        }
    }

    mod after {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        pub(super) struct Bounds {
            pub(super) max: i64,
            pub(super) min: i64,
        }
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        pub(super) enum Status {
            Pending,
            Active,
            Suspended,
        }
    }

    /// What `bytes`, tagged per value, read as `T`: the value, or `None`
    /// for a shape miss (anything else fails the test).
    fn read_tagged<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
        match decode::<T>(bytes, Check::Value, None, LIMIT) {
            Ok((value, _)) => Some(value),
            Err(Error::Shape(_)) => None,
            Err(other) => panic!("not a shape miss: {other}"),
        }
    }

    #[test]
    fn a_value_tag_refuses_readers_of_another_shape_that_bincode_would_accept() {
        let bounds = before::Bounds { min: 1, max: 11 };
        let bytes = encode(&bounds, Check::Value, META, None, LIMIT, None).unwrap();
        // bincode alone reads the swapped fields without an error.
        let swapped: (after::Bounds, usize) =
            bincode::serde::decode_from_slice(&bytes[1 + HEADER..], CONFIG).unwrap();
        assert_eq!(swapped.0, after::Bounds { max: 1, min: 11 });
        assert_eq!(read_tagged::<after::Bounds>(&bytes), None);
        assert_eq!(read_tagged::<before::Bounds>(&bytes), Some(bounds.clone()));
        assert_eq!(read_tagged::<(i64, i64)>(&bytes), None);

        let suspended = encode(
            &before::Status::Suspended,
            Check::Value,
            META,
            None,
            LIMIT,
            None,
        );
        let suspended = suspended.unwrap();
        assert_eq!(read_tagged::<after::Status>(&suspended), None);
        assert_eq!(
            read_tagged::<before::Status>(&suspended),
            Some(before::Status::Suspended)
        );

        let cents = encode(
            &(7u32, String::from("EUR")),
            Check::Value,
            META,
            None,
            LIMIT,
            None,
        );
        let cents = cents.unwrap();
        assert_eq!(read_tagged::<(i32, String)>(&cents), None);
        assert_eq!(read_tagged::<(u32, Vec<u8>)>(&cents), None);
        assert_eq!(
            read_tagged::<(u32, String)>(&cents),
            Some((7, "EUR".into()))
        );

        let some = encode(&Some(5u64), Check::Value, META, None, LIMIT, None).unwrap();
        assert_eq!(read_tagged::<u64>(&some), None);
        assert_eq!(read_tagged::<Option<u64>>(&some), Some(Some(5)));
    }

    #[test]
    fn a_value_tag_survives_compression_and_signing() {
        let ours = signer(b"the secret of this test, 32 bytes");
        let seal = Some(Seal {
            signer: &ours,
            key: "k",
        });
        let value = vec![before::Bounds { min: 1, max: 2 }; 200];
        let bytes = encode(&value, Check::Value, META, seal, LIMIT, Some(0)).unwrap();
        assert_eq!(bytes[0], FORMAT | SIGNED | COMPRESSED | VALUE_TAG);
        let back = decode::<Vec<before::Bounds>>(&bytes, Check::Value, seal, LIMIT).unwrap();
        assert_eq!(back.0, value);
        let err = decode::<Vec<after::Bounds>>(&bytes, Check::Value, seal, LIMIT).unwrap_err();
        assert!(matches!(err, Error::Shape(_)), "{err}");
    }
}
