//! A value written by one process is read by the next one: keys depend on
//! nothing but the build, the function and its arguments.

mod support;

use std::process::Command;

use support::TestRedis;

fn run_child(url: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_restart_child"))
        .env("REDIS_CACHED_URL", url)
        .env_remove("REDIS_URL")
        .output()
        .expect("run the child process");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).expect("utf-8")
}

#[test]
fn a_second_process_reads_the_first_ones_value() {
    let redis = TestRedis::start();
    assert_eq!(run_child(redis.url()), "body ran\nresult 42\n");
    let key = redis.only_key();
    assert!(key.starts_with("restart_child::slow_double:{"), "{key}");
    assert_eq!(run_child(redis.url()), "result 42\n");
    assert_eq!(run_child(redis.url()), "result 42\n");
}

#[test]
fn a_malformed_default_url_runs_uncached_without_panicking() {
    assert_eq!(run_child("not a url"), "body ran\nresult 42\n");
}
