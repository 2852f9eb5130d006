//! Compile tests: what `#[redis_cached]` accepts, and the error it gives for
//! everything it refuses (`ui/fail/*.rs`, messages pinned in `.stderr`).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
