//! A stored value is returned only to a type of the shape that wrote it.
//!
//! bincode is positional: bytes written for `Bounds { min, max }` decode
//! without an error as `Bounds { max, min }`, swapped. So every value carries
//! the serde shape of its writer, and a reader of another shape gets a miss:
//!
//! - **The type's fingerprint** ([`Check::Type`]), for a cached function:
//!   its stored type is traced once per process (`trace.rs`) into 16 bytes
//!   that are mixed into every key (`key.rs`), so a build whose type changed
//!   reads and writes other keys than the build before it (both may run at
//!   once during a deploy without evicting each other); the first 8 bytes are
//!   also in each value's header, compared on every read. Nothing per value
//!   is walked: a hit costs a compare.
//! - **The value's tag** ([`Check::Value`]), for the typed API (whose keys
//!   the caller names) and for types the tracer can't trace: each value's
//!   header holds the tag of the serde events its `Serialize` made
//!   (`write.rs`), and a read recomputes it from the calls the reading
//!   type's `Deserialize` makes while it decodes (`read.rs`), in the same
//!   pass.
//!
//! What the shape covers: struct, enum, variant and field names in order,
//! the variant at the index read, tuple and newtype arity, primitive kinds
//! (`u32`, `i32`, `u64`, `f32`… all differ; `String` is not bytes), option,
//! sequence and map structure, all the way down. What it can't cover is
//! meaning: `cents` that became euros with the same type needs the
//! attribute's `version`.

use std::sync::{Mutex, OnceLock, PoisonError};

use serde::de::DeserializeOwned;

pub(crate) mod read;
mod tag;
mod trace;
pub(crate) mod write;

/// How a function's values are checked, and what its keys hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Traced {
    /// Mixed into every key of the function.
    pub(crate) key: [u8; 16],
    /// What each value's header is checked against.
    pub(crate) check: Check,
}

/// What a value's header holds, and a read compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// The reading type's fingerprint (its first 8 bytes), and whether the
    /// type holds a string or byte buffer: one that doesn't can't be made to
    /// allocate what a corrupt length claims (serde caps what it reserves
    /// for a sequence), so it is decoded without bincode's counting.
    Type {
        fingerprint: u64,
        holds_strings: bool,
    },
    /// Each value's own tag, computed as it is written and as it is read.
    Value,
}

/// The [`Traced`] of `V`: its fingerprint if it traces, else checks per
/// value, under a key part made of its Rust type's name (as keys held
/// before fingerprints). A type bincode can't decode at all is logged, once
/// per function that returns it.
pub(crate) fn traced<V: DeserializeOwned>() -> Traced {
    let traced = std::panic::catch_unwind(trace::fingerprint::<V>);
    match traced {
        Ok(Ok(traced)) => {
            let mut first = [0; 8];
            first.copy_from_slice(&traced.bytes[..8]);
            Traced {
                key: traced.bytes,
                check: Check::Type {
                    fingerprint: u64::from_le_bytes(first),
                    holds_strings: traced.holds_strings,
                },
            }
        }
        Ok(Err(why)) => untraced::<V>(
            &why.to_string(),
            matches!(why, trace::Untraceable::NotBincode(_)),
        ),
        Err(_) => untraced::<V>("its Deserialize panicked while traced", false),
    }
}

fn untraced<V>(why: &str, never_decodes: bool) -> Traced {
    let name = std::any::type_name::<V>();
    if never_decodes {
        tracing::warn!(
            "redis-cached: values of type {name} can't be read back from the cache ({why}); \
             every call runs its function"
        );
    } else {
        tracing::debug!(
            "redis-cached: the shape of {name} can't be traced ({why}); each of its values \
             carries its own shape tag"
        );
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"redis-cached/untraced/1");
    hasher.update(name.as_bytes());
    let mut key = [0; 16];
    key.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    Traced {
        key,
        check: Check::Value,
    }
}

/// One cached function's value shape (`Traced`), worked out on its first call. Generated
/// code keeps one in a `static` beside the function's `Spec`.
///
/// A function in a generic `impl` has one `static` for every instantiation,
/// so each entry names the type it was traced for: the first one found is
/// read without a lock, others from a list.
#[derive(Debug)]
pub struct Shape {
    first: OnceLock<Entry>,
    others: Mutex<Vec<Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    of: &'static str,
    traced: Traced,
}

impl Entry {
    fn is(&self, of: &'static str) -> bool {
        std::ptr::eq(self.of, of) || self.of == of
    }
}

// No `Default`: generated code makes one, in a `static`, with `new`.
#[allow(clippy::new_without_default)]
impl Shape {
    /// An empty cell.
    pub const fn new() -> Self {
        Self {
            first: OnceLock::new(),
            others: Mutex::new(Vec::new()),
        }
    }

    /// The function's [`Traced`] for its stored type `V`, traced by `trace`
    /// on first use.
    #[inline]
    pub(crate) fn of<V>(&self, trace: fn() -> Traced) -> Traced {
        let of = std::any::type_name::<V>();
        let first = self.first.get_or_init(|| Entry {
            of,
            traced: trace(),
        });
        if first.is(of) {
            return first.traced;
        }
        let mut others = self.others.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = others.iter().find(|entry| entry.is(of)) {
            return entry.traced;
        }
        let traced = trace();
        others.push(Entry { of, traced });
        traced
    }
}

#[cfg(test)]
mod tests;
