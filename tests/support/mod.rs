//! Shared by the integration tests: throwaway `redis-server` processes (via
//! `redis-test`) and helpers that read what is in them.
#![allow(dead_code)] // each test binary uses its own subset

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use redis::Commands;
use redis_cached::Cache;
use redis_test::server::RedisServer;

pub mod logs;
pub mod tls;

/// A `redis-server` on a free port, killed when dropped.
pub struct TestRedis {
    server: RedisServer,
    url: String,
}

impl TestRedis {
    /// Starts a server and waits until it answers `PING`.
    pub fn start() -> Self {
        Self::wait_until_up(RedisServer::new())
    }

    /// Starts a server with these extra `redis-server` arguments (say,
    /// `["--requirepass", "s3cret"]`) on a free port, and waits until it
    /// answers. Its [`url`](Self::url) holds no password.
    pub fn start_with(args: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        Self::start_on(port, args)
    }

    /// [`start_with`](Self::start_with) on `port` (say, that of a stopped
    /// server, to bring it back).
    pub fn start_on(port: u16, args: &[&str]) -> Self {
        let server = RedisServer::new_with_addr_tls_modules_and_spawner(
            redis::ConnectionAddr::Tcp("127.0.0.1".to_owned(), port),
            None,
            None,
            false,
            None,
            &[],
            |cmd| {
                cmd.args(args);
                cmd.spawn().expect("start redis-server")
            },
        );
        Self::wait_until_up(server)
    }

    fn wait_until_up(server: RedisServer) -> Self {
        let (host, port) = server.host_and_port().expect("a TCP server");
        let url = format!("redis://{host}:{port}");
        let redis = Self { server, url };
        wait_for_ping(|| redis.try_conn());
        redis
    }

    /// Starts a server and points `slot` at a cache on it.
    pub fn start_for(slot: &CacheSlot) -> Self {
        let redis = Self::start();
        slot.set(redis.cache());
        redis
    }

    /// The server's `redis://` URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A fresh cache on this server.
    pub fn cache(&self) -> Cache {
        Cache::new(&self.url).expect("valid url")
    }

    fn try_conn(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url.as_str())?.get_connection()
    }

    /// A plain connection, for looking at what the cache wrote.
    pub fn conn(&self) -> redis::Connection {
        self.try_conn().expect("connect to the test server")
    }

    /// Every key on the server, sorted.
    pub fn keys(&self) -> Vec<String> {
        sorted_keys(&mut self.conn())
    }

    /// Every key on a server started with `--requirepass root-pw`, sorted.
    pub fn keys_as_root(&self) -> Vec<String> {
        let url = self.url.replace("redis://", "redis://:root-pw@");
        let mut conn = redis::Client::open(url)
            .and_then(|client| client.get_connection())
            .expect("connect as root");
        let mut keys: Vec<String> = conn.keys("*").expect("KEYS");
        keys.sort();
        keys
    }

    /// The one key on the server; fails the test if there are more or none.
    pub fn only_key(&self) -> String {
        let keys = self.keys();
        assert_eq!(keys.len(), 1, "expected exactly one key, found {keys:?}");
        keys.into_iter().next().unwrap_or_default()
    }

    /// `PTTL key`, in milliseconds (-2: no key, -1: no expiry).
    pub fn pttl(&self, key: &str) -> i64 {
        redis::cmd("PTTL")
            .arg(key)
            .query(&mut self.conn())
            .expect("PTTL")
    }

    /// The raw bytes under `key`.
    pub fn get_raw(&self, key: &str) -> Option<Vec<u8>> {
        self.conn().get(key).expect("GET")
    }

    /// Overwrites `key` with `bytes`, keeping no TTL.
    pub fn set_raw(&self, key: &str, bytes: &[u8]) {
        let _: () = self.conn().set(key, bytes).expect("SET");
    }

    /// Stops the server now (the test goes on without Redis).
    pub fn stop(&mut self) {
        self.server.stop();
    }
}

/// A `Cache` a test sets at its start, for `#[redis_cached(cache = SLOT)]`
/// functions declared inside the test.
pub struct CacheSlot(OnceLock<Cache>);

impl CacheSlot {
    pub const fn new() -> Self {
        Self(OnceLock::new())
    }

    pub fn set(&self, cache: Cache) {
        assert!(
            self.0.set(cache).is_ok(),
            "a CacheSlot is set once per test"
        );
    }
}

impl std::ops::Deref for CacheSlot {
    type Target = Cache;
    fn deref(&self) -> &Cache {
        self.0
            .get()
            .expect("start the test's Redis before calling its cached functions")
    }
}

/// Counts how often a function body ran.
pub struct Calls(std::sync::atomic::AtomicUsize);

impl Calls {
    pub const fn new() -> Self {
        Self(std::sync::atomic::AtomicUsize::new(0))
    }

    pub fn inc(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Counts a run and returns its number (1 for the first).
    pub fn next(&self) -> usize {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
    }

    pub fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl TestRedis {
    /// The integer under `key` (0 if absent), e.g. a counter a body `INCR`s.
    pub fn counter(&self, key: &str) -> i64 {
        let value: Option<i64> = self.conn().get(key).expect("GET");
        value.unwrap_or(0)
    }

    /// `EXISTS key`.
    pub fn exists(&self, key: &str) -> bool {
        self.conn().exists(key).expect("EXISTS")
    }
}

/// `INCR key` on the Redis at `url`, for a function body to count its runs in Redis.
pub fn incr(url: &str, key: &str) -> i64 {
    let mut conn = redis::Client::open(url)
        .and_then(|client| client.get_connection())
        .expect("connect to the test server");
    conn.incr(key, 1).expect("INCR")
}

/// Blocks until `cache` has counted `misses` misses: every caller has read
/// the key, found nothing, and gone on to join the key's flight.
pub fn wait_for_misses(cache: &Cache, misses: u64) {
    while cache.stats().misses < misses {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Async [`wait_for_misses`].
pub async fn wait_for_misses_async(cache: &Cache, misses: u64) {
    while cache.stats().misses < misses {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

impl TestRedis {
    /// How many times the server has run `command` (lowercase, e.g.
    /// `"get"`), from `INFO commandstats`.
    pub fn command_calls(&self, command: &str) -> u64 {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut self.conn())
            .expect("INFO commandstats");
        let field = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|line| line.strip_prefix(&field))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |calls| calls.parse().expect("a call count"))
    }

    /// The ids of the connected clients named `name` (`CLIENT LIST`).
    pub fn client_ids(&self, name: &str) -> Vec<u64> {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query(&mut self.conn())
            .expect("CLIENT LIST");
        let named = format!(" name={name} ");
        list.lines()
            .filter(|line| line.contains(&named))
            .filter_map(|line| line.strip_prefix("id="))
            .filter_map(|rest| rest.split(' ').next()?.parse().ok())
            .collect()
    }
}

/// Polls `done` until it holds; fails the test if it doesn't within 10 s
/// (a bound on a hang, not a timing assertion).
pub fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The store under one test's cache: a throwaway Redis, or `mem://`, so
/// that one test body runs against both.
pub enum Store {
    Redis(Box<TestRedis>),
    Memory,
}

impl Store {
    /// A fresh Redis, with `slot` pointed at a cache on it.
    pub fn redis(slot: &CacheSlot) -> Self {
        let redis = TestRedis::start();
        slot.set(redis.cache());
        Self::Redis(Box::new(redis))
    }

    /// `slot` pointed at a fresh in-memory cache.
    pub fn memory(slot: &CacheSlot) -> Self {
        slot.set(Cache::new("mem://").expect("mem:// is valid"));
        Self::Memory
    }

    /// How many keys Redis holds; `None` for the memory store.
    pub fn key_count(&self) -> Option<usize> {
        match self {
            Self::Redis(redis) => Some(redis.keys().len()),
            Self::Memory => None,
        }
    }

    /// The `PTTL` of every key in Redis, in key order; `None` for `mem://`.
    pub fn pttls(&self) -> Option<Vec<i64>> {
        match self {
            Self::Redis(redis) => Some(redis.keys().iter().map(|k| redis.pttl(k)).collect()),
            Self::Memory => None,
        }
    }
}

/// Waits until a server answers `PING` on the connections `connect` makes
/// (a `NOAUTH` reply counts: it is up, and wants a password); fails the test
/// after 10 s.
pub fn wait_for_ping(mut connect: impl FnMut() -> redis::RedisResult<redis::Connection>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match connect().and_then(|mut c| redis::cmd("PING").query::<String>(&mut c)) {
            Ok(_) => return,
            Err(e) if e.code() == Some("NOAUTH") => return,
            Err(e) if Instant::now() > deadline => panic!("redis-server did not start: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Every key `conn` sees (`KEYS *`: on a cluster connection, every
/// primary's), sorted.
pub fn sorted_keys(conn: &mut impl redis::ConnectionLike) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(conn).expect("KEYS");
    keys.sort();
    keys
}
