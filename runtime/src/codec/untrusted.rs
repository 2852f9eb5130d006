//! Bytes from Redis are untrusted input: property tests that throw random
//! bytes and mutated envelopes at [`decode`], signed and not, compressed and
//! not. Whatever they hold, decoding never panics, a cache with a signing
//! key never returns a value it didn't sign, and a length prefix (bincode's,
//! or a compressed body's size) claiming more than the stored bytes could
//! describe is refused instead of being allocated.

use proptest::prelude::*;
use proptest::sample::Index;
use serde::{Deserialize, Serialize};

use super::*;
use crate::sign::Signer;

const LIMIT: usize = 1 << 20;
const META: Meta = Meta {
    fresh_until_ms: 1_700_000_000_123,
    compute_ms: 250,
};
const KEY: &str = "app:m::f:{0123456789abcdef0123456789abcdef}";
/// A type's fingerprint, for the fast check (counted: a type that holds strings).
const TYPE: Check = Check::Type {
    fingerprint: 0x5eed_5eed_5eed_5eed,
    holds_strings: true,
};

/// The checks a reader of a type that `holds_strings` (or not) may make:
/// its fingerprint (decoded uncounted if it holds none), and each value's
/// own tag. A reader never claims to hold no string when it does: its
/// check comes from tracing its own type.
fn checks(holds_strings: bool) -> [Check; 2] {
    let fingerprint = 0x5eed_5eed_5eed_5eed;
    [
        Check::Type {
            fingerprint,
            holds_strings,
        },
        Check::Value,
    ]
}

fn signer() -> &'static Signer {
    static SIGNER: std::sync::OnceLock<Signer> = std::sync::OnceLock::new();
    SIGNER.get_or_init(|| Signer::new(b"the property tests' signing secret").unwrap())
}

fn seal() -> Option<Seal<'static>> {
    Some(Seal {
        signer: signer(),
        key: KEY,
    })
}

/// A struct of the kind users cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    id: u64,
    name: String,
    scores: Vec<u32>,
    active: bool,
    ratio: f64,
    tags: Option<Vec<Option<String>>>,
}

/// Nested options and sequences.
type Nested = Option<Vec<Option<Vec<u16>>>>;

fn record() -> impl Strategy<Value = Record> {
    (
        any::<u64>(),
        ".{0,40}",
        prop::collection::vec(any::<u32>(), 0..40),
        any::<bool>(),
        any::<f64>(),
        prop::option::of(prop::collection::vec(prop::option::of(".{0,8}"), 0..8)),
    )
        .prop_map(|(id, name, scores, active, ratio, tags)| Record {
            id,
            name,
            scores,
            active,
            ratio,
            tags,
        })
}

fn nested() -> impl Strategy<Value = Nested> {
    prop::option::of(prop::collection::vec(
        prop::option::of(prop::collection::vec(any::<u16>(), 0..8)),
        0..8,
    ))
}

/// One change to a valid envelope.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
    /// Overwrites bytes from a position on (e.g. a length prefix).
    Overwrite(Index, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0..8u8).prop_map(|(at, bit)| Mutation::Flip(at, bit)),
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert(at, byte)),
        any::<Index>().prop_map(Mutation::Delete),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..10))
            .prop_map(|(at, bytes)| Mutation::Overwrite(at, bytes)),
    ]
}

impl Mutation {
    /// `bytes`, changed (never left equal: every mutation changes a byte or the length).
    fn apply(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        match self {
            Self::Flip(at, bit) => {
                let at = at.index(out.len());
                out[at] ^= 1 << bit;
            }
            Self::Insert(at, byte) => out.insert(at.index(out.len() + 1), *byte),
            Self::Delete(at) => {
                out.remove(at.index(out.len()));
            }
            Self::Truncate(at) => out.truncate(at.index(out.len())),
            Self::Overwrite(at, with) => {
                let start = at.index(out.len());
                for (i, byte) in with.iter().enumerate() {
                    match out.get_mut(start + i) {
                        Some(b) => *b = *byte,
                        None => out.push(*byte),
                    }
                }
                // Writing the bytes that were there changes nothing: change one.
                if out == bytes {
                    out[start] ^= 0x80;
                }
            }
        }
        out
    }
}

/// Decodes `bytes` as each of the tested types, unsigned and signed: none
/// may panic, and no signed decode may return a value unless `signed_ok`.
fn decode_as_everything(bytes: &[u8], signed_ok: bool) -> Result<(), TestCaseError> {
    for (strings, plain) in checks(true).into_iter().zip(checks(false)) {
        let _ = decode::<u64>(bytes, plain, None, LIMIT);
        let _ = decode::<String>(bytes, strings, None, LIMIT);
        let _ = decode::<Vec<f64>>(bytes, plain, None, LIMIT);
        let _ = decode::<Record>(bytes, strings, None, LIMIT);
        let _ = decode::<Nested>(bytes, plain, None, LIMIT);
        let _ = decode::<Vec<u8>>(bytes, plain, None, LIMIT);
        if !signed_ok {
            prop_assert!(decode::<u64>(bytes, plain, seal(), LIMIT).is_err());
            prop_assert!(decode::<String>(bytes, strings, seal(), LIMIT).is_err());
            prop_assert!(decode::<Vec<f64>>(bytes, plain, seal(), LIMIT).is_err());
            prop_assert!(decode::<Record>(bytes, strings, seal(), LIMIT).is_err());
            prop_assert!(decode::<Nested>(bytes, plain, seal(), LIMIT).is_err());
            prop_assert!(decode::<Vec<u8>>(bytes, plain, seal(), LIMIT).is_err());
        }
    }
    Ok(())
}

/// Valid envelopes of `value` (plain, signed, compressed, both) round-trip
/// (to the same bytes, which holds for NaNs too), and every mutation of
/// them decodes without a panic and is refused by a signed cache.
fn check<T: Serialize + DeserializeOwned>(
    value: &T,
    holds_strings: bool,
    change: &Mutation,
) -> Result<(), TestCaseError> {
    let checks = checks(holds_strings);
    for (check, compress) in checks.into_iter().flat_map(|c| [(c, None), (c, Some(0))]) {
        let plain = encode(value, check, META, None, LIMIT, compress).unwrap();
        let signed = encode(value, check, META, seal(), LIMIT, compress).unwrap();
        let (back, meta) = decode::<T>(&plain, check, None, LIMIT).unwrap();
        prop_assert_eq!(meta, META);
        prop_assert_eq!(
            &encode(&back, check, META, None, LIMIT, compress).unwrap(),
            &plain
        );
        let (back, _) = decode::<T>(&signed, check, seal(), LIMIT).unwrap();
        prop_assert_eq!(
            &encode(&back, check, META, seal(), LIMIT, compress).unwrap(),
            &signed
        );
        prop_assert!(
            decode::<T>(&plain, check, seal(), LIMIT).is_err(),
            "unsigned"
        );

        for valid in [plain, signed] {
            let bad = change.apply(&valid);
            prop_assert_ne!(&bad, &valid);
            let _ = decode::<T>(&bad, check, None, LIMIT);
            prop_assert!(decode::<T>(&bad, check, seal(), LIMIT).is_err());
            decode_as_everything(&bad, false)?;
        }
    }
    Ok(())
}

/// Records that share most of their strings: values that compress, so that
/// their envelopes are compressed.
fn compressible() -> impl Strategy<Value = Vec<Record>> {
    let names = prop::sample::select(vec![
        "alice",
        "bob",
        "carol",
        "a much longer name, repeated",
    ]);
    prop::collection::vec((any::<u8>(), names, any::<bool>()), 8..200).prop_map(|rows| {
        rows.into_iter()
            .map(|(id, name, active)| Record {
                id: u64::from(id),
                name: name.repeat(3),
                scores: vec![u32::from(id); 4],
                active,
                ratio: 0.5,
                tags: Some(vec![Some(name.to_owned()), None]),
            })
            .collect()
    })
}

/// An envelope whose value starts with a length prefix of `claimed`.
fn claiming(claimed: u64, tail: &[u8]) -> Vec<u8> {
    let mut bytes = encode(&(), TYPE, META, None, LIMIT, None).unwrap();
    bincode::serde::encode_into_std_write(claimed, &mut bytes, CONFIG).unwrap();
    bytes.extend_from_slice(tail);
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic_and_never_pass_a_signed_cache(
        format in prop_oneof![
            (0..8u8).prop_map(|flags| FORMAT | flags), Just(2), Just(5), any::<u8>()
        ],
        rest in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = vec![format];
        bytes.extend_from_slice(&rest);
        decode_as_everything(&bytes, false)?;
        decode_as_everything(&rest, false)?;
    }

    #[test]
    fn mutated_u64s(value in any::<u64>(), change in mutation()) {
        check(&value, false, &change)?;
    }

    #[test]
    fn mutated_strings(value in any::<String>(), change in mutation()) {
        check(&value, true, &change)?;
    }

    #[test]
    fn mutated_f64_vecs(value in prop::collection::vec(any::<f64>(), 0..64), change in mutation()) {
        check(&value, false, &change)?;
    }

    #[test]
    fn mutated_records(value in record(), change in mutation()) {
        check(&value, true, &change)?;
    }

    #[test]
    fn mutated_nested_options_and_vecs(value in nested(), change in mutation()) {
        check(&value, false, &change)?;
    }

    #[test]
    fn mutated_compressed_records(value in compressible(), change in mutation()) {
        // They do compress: the mutations hit compressed envelopes.
        let bytes = encode(&value, TYPE, META, None, LIMIT, Some(0)).unwrap();
        prop_assert_eq!(bytes[0], FORMAT | COMPRESSED);
        check(&value, true, &change)?;
    }

    #[test]
    fn a_compressed_body_claiming_any_size_never_panics_nor_allocates_past_the_limit(
        claimed in any::<u32>(),
        block in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = encode(&(), TYPE, META, None, LIMIT, None).unwrap();
        bytes[0] |= COMPRESSED;
        bytes.extend_from_slice(&claimed.to_le_bytes());
        bytes.extend_from_slice(&block);
        decode_as_everything(&bytes, false)?;
        if claimed as usize > LIMIT {
            let text = decode::<Vec<u8>>(&bytes, TYPE, None, LIMIT).unwrap_err().to_string();
            prop_assert!(text.contains("over the limit"), "{}", text);
        }
    }

    #[test]
    fn long_vecs_of_small_integers_round_trip(
        value in prop::collection::vec(0u64..251, 0..5000),
        change in mutation(),
    ) {
        // One byte each on the wire, eight in memory: valid values claim
        // far more than their bytes, and must still decode.
        check(&value, false, &change)?;
    }

    #[test]
    fn a_length_prefix_beyond_the_bytes_is_refused_by_the_limit(
        claimed in (1u64 << 20)..u64::MAX,
        tail in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let bytes = claiming(claimed, &tail);
        // Strings (and bincode's byte buffers) allocate what they claim:
        // bincode's limit refuses the claim first.
        let text = decode::<String>(&bytes, TYPE, None, LIMIT).unwrap_err().to_string();
        prop_assert!(text.contains("LimitExceeded"), "{}", text);
        // Sequences decoded through serde: refused (serde preallocates at
        // most 1 MiB for a claimed length, then the bytes run out).
        prop_assert!(decode::<Vec<u8>>(&bytes, TYPE, None, LIMIT).is_err());
        prop_assert!(decode::<Vec<u64>>(&bytes, TYPE, None, LIMIT).is_err());
        prop_assert!(decode::<Vec<Vec<u8>>>(&bytes, TYPE, None, LIMIT).is_err());
        prop_assert!(decode::<Nested>(&bytes, TYPE, None, LIMIT).is_err());
        // Uncounted, as a type without strings is read: serde's cap alone.
        let [plain, _] = checks(false);
        prop_assert!(decode::<Vec<u8>>(&bytes, plain, None, LIMIT).is_err());
        prop_assert!(decode::<Vec<u64>>(&bytes, plain, None, LIMIT).is_err());
        prop_assert!(decode::<Nested>(&bytes, plain, None, LIMIT).is_err());
    }
}

#[test]
fn a_gibibyte_string_in_a_few_bytes_is_a_limit_error_not_an_allocation() {
    let bytes = claiming(1 << 30, b"abc");
    assert!(bytes.len() < 32);
    let err = decode::<String>(&bytes, TYPE, None, LIMIT).unwrap_err();
    assert!(err.to_string().contains("LimitExceeded"), "{err}");
    let err = decode::<Box<str>>(&bytes, TYPE, None, LIMIT).unwrap_err();
    assert!(err.to_string().contains("LimitExceeded"), "{err}");
    // Under the cache's own limit the bytes are fine: it is bincode's limit,
    // scaled to the stored size, that refuses the claim.
    assert!(bytes.len() <= LIMIT);
}

#[test]
fn a_vec_of_small_integers_counting_8_times_its_bytes_decodes() {
    // 4096 one-byte varints: a 4 KiB payload that bincode counts as 32 KiB.
    // Under the old limit of 4 times the payload it was refused, as garbage.
    let value = vec![1u64; 4096];
    let bytes = encode(&value, TYPE, META, None, LIMIT, None).unwrap();
    let (back, _) = decode::<Vec<u64>>(&bytes, TYPE, None, LIMIT).unwrap();
    assert_eq!(back, value);
    let value = vec![1u128; 4000];
    let bytes = encode(&value, TYPE, META, None, LIMIT, None).unwrap();
    assert_eq!(
        decode::<Vec<u128>>(&bytes, TYPE, None, LIMIT).unwrap().0,
        value
    );
}
