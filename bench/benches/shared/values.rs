//! The values every bench caches (`compare`'s rows and `instructions`): a
//! `u64`, a ~1 KiB struct and a 64 KiB `Vec<f64>`, each made from the call's
//! argument so a wrong value is seen.

use serde::{Deserialize, Serialize};

/// About 1 KiB encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    id: u64,
    name: String,
    email: String,
    scores: Vec<u32>,
    tags: Vec<String>,
}

pub fn small(id: u64) -> u64 {
    id * 3
}

pub fn record(id: u64) -> Record {
    Record {
        id,
        name: format!("customer number {id:>20}"),
        email: format!("customer.{id}@example.invalid"),
        scores: (0..200).map(|i| u32::MAX - i).collect(),
        tags: (0..8).map(|i| format!("tag-{i:>8}")).collect(),
    }
}

/// 8192 `f64`s: 64 KiB.
pub fn series(id: u64) -> Vec<f64> {
    (0..8192).map(|i| (id + i) as f64 * 1.000_001).collect()
}
