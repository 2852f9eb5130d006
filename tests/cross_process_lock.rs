//! `lock = …`: on a miss, one process computes under the Redis lock
//! `<key>:lock` while the others wait for its value.

mod support;

use std::process::{Command, Stdio};
use std::sync::Mutex;

use support::{CacheSlot, Calls, TestRedis, wait_for_misses};

/// The Redis counter the contender processes `INCR` in their body.
const RUNS: &str = "test:runs";

#[test]
fn four_processes_run_the_body_once() {
    let redis = TestRedis::start();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_lock-contender"))
                .arg(redis.url())
                .stdout(Stdio::piped())
                .spawn()
                .expect("start a contender")
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().expect("a contender's output");
        assert!(output.status.success(), "{output:?}");
        assert_eq!(String::from_utf8_lossy(&output.stdout), "42\n");
    }
    assert_eq!(redis.counter(RUNS), 1, "the body ran in one process only");
    let keys = redis.keys();
    assert_eq!(
        keys.len(),
        2,
        "the value and the counter, no lock: {keys:?}"
    );
    assert!(keys.iter().all(|key| !key.ends_with(":lock")), "{keys:?}");
}

#[test]
fn the_lock_is_held_while_computing_and_released_after() {
    static CACHE: CacheSlot = CacheSlot::new();
    /// The lock key and its PTTL, as the body saw them.
    static SEEN: Mutex<Vec<(String, i64)>> = Mutex::new(Vec::new());
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let redis = TestRedis::start_for(&CACHE);
    URL.get_or_init(|| redis.url().to_owned());

    #[redis_cached::redis_cached(ttl = 60, lock = "5s", cache = CACHE)]
    fn guarded(x: u32) -> u32 {
        let mut conn = redis::Client::open(URL.get().cloned().unwrap_or_default())
            .and_then(|client| client.get_connection())
            .expect("connect");
        let locks: Vec<String> = redis::cmd("KEYS").arg("*:lock").query(&mut conn).unwrap();
        for lock in locks {
            let pttl: i64 = redis::cmd("PTTL").arg(&lock).query(&mut conn).unwrap();
            SEEN.lock().unwrap().push((lock, pttl));
        }
        x * 2
    }

    assert_eq!(guarded(21), 42);
    let key = redis.only_key();
    let seen = SEEN.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].0, format!("{key}:lock"));
    assert!((1..=5000).contains(&seen[0].1), "PTTL {}", seen[0].1);
    assert!(!redis.exists(&format!("{key}:lock")), "released");
    assert_eq!(guarded(21), 42);
    assert_eq!(SEEN.lock().unwrap().len(), 1, "a hit takes no lock");
}

#[tokio::test]
async fn a_lock_taken_over_by_another_holder_is_not_released() {
    static CACHE: CacheSlot = CacheSlot::new();
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let redis = TestRedis::start_for(&CACHE);
    URL.get_or_init(|| redis.url().to_owned());

    #[redis_cached::redis_cached(ttl = 60, lock = "5s", cache = CACHE)]
    async fn overtaken(x: u32) -> u32 {
        // As if this holder's lock expired and another process took it.
        let mut conn = redis::Client::open(URL.get().cloned().unwrap_or_default())
            .and_then(|client| client.get_connection())
            .expect("connect");
        let locks: Vec<String> = redis::cmd("KEYS").arg("*:lock").query(&mut conn).unwrap();
        for lock in locks {
            let () = redis::cmd("SET")
                .arg(lock)
                .arg("other-holder")
                .query(&mut conn)
                .unwrap();
        }
        x + 1
    }

    assert_eq!(overtaken(1).await, 2);
    let keys = redis.keys();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let lock = keys.iter().find(|key| key.ends_with(":lock")).unwrap();
    assert_eq!(redis.get_raw(lock).as_deref(), Some(&b"other-holder"[..]));
}

#[test]
fn a_waiter_returns_the_value_another_holder_stores() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached::redis_cached(ttl = 60, lock = "5s", cache = CACHE)]
    fn shared(x: u32) -> String {
        CALLS.inc();
        format!("value {x}")
    }

    // Learn the key and the stored bytes, then play another process that
    // holds the lock and stores the value while our call waits.
    assert_eq!(shared(5), "value 5");
    let key = redis.only_key();
    let bytes = redis.get_raw(&key).unwrap();
    let mut conn = redis.conn();
    let () = redis::cmd("DEL").arg(&key).query(&mut conn).unwrap();
    let () = redis::cmd("SET")
        .arg(format!("{key}:lock"))
        .arg("other-process")
        .arg("PX")
        .arg(60_000)
        .query(&mut conn)
        .unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| shared(5));
        wait_for_misses(&CACHE, 2);
        redis.set_raw(&key, &bytes);
        assert_eq!(waiter.join().unwrap(), "value 5");
    });
    assert_eq!(CALLS.get(), 1, "the waiter did not compute");
    assert_eq!(
        redis.get_raw(&format!("{key}:lock")).as_deref(),
        Some(&b"other-process"[..])
    );
}

#[tokio::test]
async fn a_waiter_whose_wait_runs_out_computes_itself() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached::redis_cached(ttl = 60, lock = "300ms", cache = CACHE)]
    async fn impatient(x: u32) -> u32 {
        CALLS.inc();
        x * 10
    }

    assert_eq!(impatient(4).await, 40);
    let key = redis.only_key();
    let mut conn = redis.conn();
    let () = redis::cmd("DEL").arg(&key).query(&mut conn).unwrap();
    // A holder that never stores anything nor lets go within our lock time.
    let () = redis::cmd("SET")
        .arg(format!("{key}:lock"))
        .arg("stuck-process")
        .arg("PX")
        .arg(60_000)
        .query(&mut conn)
        .unwrap();

    assert_eq!(impatient(4).await, 40);
    assert_eq!(CALLS.get(), 2, "the waiter computed after its wait");
    let pttl = redis.pttl(&key);
    assert!(
        (59_000..=60_000).contains(&pttl),
        "stored with its TTL: {pttl}"
    );
    assert_eq!(
        redis.get_raw(&format!("{key}:lock")).as_deref(),
        Some(&b"stuck-process"[..]),
        "without touching the other holder's lock"
    );
    assert_eq!(CACHE.stats().errors, 0);
}
