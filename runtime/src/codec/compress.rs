//! The compressed body of a value: its uncompressed size (`u32` LE), then
//! one LZ4 block (`lz4_flex`, safe Rust). The size comes from Redis, so it
//! is untrusted: [`unpack`] checks it against the limit, and against what
//! the block could possibly expand to, before allocating anything.

use crate::error::Error;

/// Bytes of the size prefix.
const SIZE: usize = 4;

/// The most output one byte of an LZ4 block can describe: a match length is
/// extended 255 at a time, one byte each, and nothing expands further.
const MAX_RATIO: usize = 255;

/// The most bytes [`pack`] may append for `len` bytes of payload.
pub(super) const fn bound(len: usize) -> usize {
    SIZE + lz4_flex::block::get_maximum_output_size(len)
}

/// Appends the size of `payload` and its LZ4 block to `out`, and returns
/// true; or leaves `out` as it was and returns false when that would not be
/// smaller than `payload` itself (data that doesn't compress is stored as it is).
pub(super) fn pack(payload: &[u8], out: &mut Vec<u8>) -> bool {
    let Ok(size) = u32::try_from(payload.len()) else {
        return false;
    };
    let start = out.len();
    out.extend_from_slice(&size.to_le_bytes());
    let block = out.len();
    out.resize(start + bound(payload.len()), 0);
    match lz4_flex::block::compress_into(payload, &mut out[block..]) {
        Ok(written) if SIZE + written < payload.len() => {
            out.truncate(block + written);
            true
        }
        _ => {
            out.truncate(start);
            false
        }
    }
}

/// The payload [`pack`] compressed into `packed`, if it is at most `limit`
/// bytes. A claimed size over the limit, or beyond what the block could
/// expand to, is refused before anything is allocated; a block that doesn't
/// decompress to exactly the claimed size is refused too.
pub(super) fn unpack(packed: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    let (size, block) = lz4_flex::block::uncompressed_size(packed)
        .map_err(|_| Error::Decode("compressed value shorter than its size".into()))?;
    if size > limit {
        return Err(Error::Decode(format!(
            "compressed value claims {size} bytes, over the limit of {limit}"
        )));
    }
    if size > block.len().saturating_mul(MAX_RATIO) {
        return Err(Error::Decode(format!(
            "compressed value claims {size} bytes, more than its {} bytes can hold",
            block.len()
        )));
    }
    let mut payload = vec![0; size];
    match lz4_flex::block::decompress_into(block, &mut payload) {
        Ok(written) if written == size => Ok(payload),
        Ok(written) => Err(Error::Decode(format!(
            "compressed value claims {size} bytes but holds {written}"
        ))),
        Err(error) => Err(Error::Decode(format!(
            "compressed value is corrupt: {error}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_what_compresses_and_leaves_the_rest() {
        let text = b"the same words, the same words, the same words, again and again".repeat(50);
        let mut out = vec![9];
        assert!(pack(&text, &mut out));
        assert!(out.len() < text.len() / 4, "{} bytes", out.len());
        assert_eq!(out[0], 9, "appended after what was there");
        assert_eq!(unpack(&out[1..], text.len()).unwrap(), text);

        // xorshift64: bytes with no repeats for LZ4 to find.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let mut out = vec![9];
        assert!(!pack(&noise, &mut out));
        assert_eq!(out, [9]);
    }

    #[test]
    fn the_most_compressible_data_unpacks_within_the_ratio_bound() {
        for len in [0, 1, 16, 1000, 1 << 20] {
            let zeros = vec![0u8; len];
            let mut out = Vec::new();
            if pack(&zeros, &mut out) {
                assert_eq!(unpack(&out, len).unwrap(), zeros, "{len}");
            }
        }
    }

    #[test]
    fn an_untrusted_size_is_checked_before_anything_is_allocated() {
        let text = b"abcabcabcabcabcabcabcabcabcabcabcabcabcabc".repeat(100);
        let mut packed = Vec::new();
        assert!(pack(&text, &mut packed));
        let err = unpack(&packed, text.len() - 1).unwrap_err();
        assert!(err.to_string().contains("over the limit"), "{err}");
        // 4 GiB claimed by a few bytes: refused by the ratio bound.
        let mut huge = u32::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(&[0x1f, b'a', 1, 0]);
        let err = unpack(&huge, usize::MAX).unwrap_err();
        assert!(err.to_string().contains("can hold"), "{err}");
        // A size that lies, within the bounds, either way.
        for lie in [text.len() - 1, text.len() + 1] {
            let mut bytes = packed.clone();
            bytes[..4].copy_from_slice(&(lie as u32).to_le_bytes());
            assert!(unpack(&bytes, 1 << 20).is_err(), "{lie}");
        }
        assert!(unpack(&[1, 0], 1 << 20).is_err());
    }
}
