//! The one way this workspace's tests and benchmark start throwaway Redis
//! processes and wait for things to happen.
//!
//! - [`Server`]: a `redis-server` on a free port (or a given one), with
//!   extra arguments, a config file, a working directory or TLS
//!   ([`ServerBuilder`]); [`ServerBuilder::start`] returns once it answers
//!   `PING`, and dropping it kills it. It also reads what a cache wrote
//!   (keys, `PTTL`, raw values, command counts).
//! - [`Cluster`] (feature `cluster`): a local Redis Cluster whose nodes are
//!   [`Server`]s, joined with `redis-cli --cluster create`, plain or locked
//!   down with a password, an ACL user and TLS ([`Secured`]).
//! - [`Sentinel`]: a primary, its replicas and the sentinels that watch
//!   them, every process a [`Server`].
//! - [`Pki`] (feature `tls`): a CA and the certificates it signed (rcgen).
//! - [`eventually`], [`eventually_async`], [`retry`] and [`retry_async`]: poll until
//!   something holds, bounded, so that a hang fails a test instead of
//!   stalling it. Every wait of the tests and the benchmark goes through them.
//!
//! Used by the integration tests (through `tests/support`, which adds what
//! needs a `redis_cached::Cache`), the runtime's backend tests
//! (`runtime/src/backend/tests.rs`) and the benchmark (`bench/`). It does not
//! depend on `redis-cached`, so the runtime's own unit tests can use it.
//!
//! Every server is started through redis-test's
//! `RedisServer::new_with_addr_tls_modules_and_spawner`, which adds
//! `--save ""` (no `dump.rdb` litter), a log file in a temporary directory,
//! and `--port`/`--bind` (or `--tls-port` and the certificate files).

mod server;
mod wait;

#[cfg(feature = "cluster")]
pub mod cluster;
pub mod sentinel;
#[cfg(feature = "tls")]
mod tls;

#[cfg(feature = "cluster")]
pub use cluster::{Cluster, Secured};
pub use sentinel::Sentinel;
pub use server::{Server, ServerBuilder};
#[cfg(feature = "tls")]
pub use tls::Pki;
pub use wait::{
    PATIENCE, eventually, eventually_async, eventually_async_within, eventually_within, retry,
    retry_async,
};

/// A TCP port on 127.0.0.1 that nothing listens on at the moment (the
/// operating system's pick); a server started on it right after gets it,
/// unless another process took it in between.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Every key `conn` sees (`KEYS *`: on a cluster connection, every
/// primary's), sorted.
pub fn sorted_keys(conn: &mut impl redis::ConnectionLike) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(conn).expect("KEYS");
    keys.sort();
    keys
}

/// The ids of the clients named `name` in a `CLIENT LIST` reply.
pub fn named_client_ids(client_list: &str, name: &str) -> Vec<u64> {
    let named = format!(" name={name} ");
    client_list
        .lines()
        .filter(|line| line.contains(&named))
        .filter_map(|line| line.strip_prefix("id="))
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .collect()
}
