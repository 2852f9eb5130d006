//! A throwaway primary, its replicas and the sentinels that watch them
//! ([`harness::Sentinel`]). Included with `#[path]` by the test files that
//! need it.
#![allow(dead_code, unused_imports)] // each test binary uses its own subset

pub use harness::Sentinel as TestSentinel;
pub use harness::sentinel::{PRIMARY, client_names};
