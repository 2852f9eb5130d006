//! What a program gets when it uses a part of redis-cached whose Cargo
//! feature is off: a compile error that names the feature (`ui/fail`), or,
//! for a URL, a configuration error that names it (`ui/pass`, run).

#[test]
fn features() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
