//! [`Server`]: one throwaway `redis-server`.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Duration;

use redis::{Commands, ConnectionAddr};
use redis_test::server::RedisServer;

#[cfg(feature = "tls")]
use crate::Pki;
use crate::{PATIENCE, free_port, retry};

/// A `redis-server` process, killed when dropped.
pub struct Server {
    process: RedisServer,
    port: u16,
    /// `redis://127.0.0.1:<port>`, or `rediss://` for TLS; no password.
    url: String,
    /// The certificates, if it speaks only TLS.
    #[cfg(feature = "tls")]
    pki: Option<Pki>,
    /// Holds the certificate files the server reads.
    _files: Option<tempfile::TempDir>,
}

/// How to start a [`Server`]: `Server::builder().args([...]).start()`.
#[derive(Default)]
#[must_use = "a builder starts nothing until `start`"]
pub struct ServerBuilder {
    port: Option<u16>,
    args: Vec<OsString>,
    config: Option<PathBuf>,
    dir: Option<PathBuf>,
    #[cfg(feature = "tls")]
    tls: Option<(Pki, bool)>,
}

impl ServerBuilder {
    /// Listen on `port` (say, that of a stopped server, to bring it back);
    /// default: a [`free_port`].
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Extra `redis-server` arguments, e.g. `["--requirepass", "s3cret"]`.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// A config file, given as the first argument (a sentinel's); the
    /// command-line arguments override what it says.
    pub fn config(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = Some(path.into());
        self
    }

    /// The server's working directory (where a cluster node keeps its
    /// `nodes.conf`, a replica its snapshot).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Speak only TLS (`--port 0 --tls-port <port>`), with `pki`'s server
    /// certificate; with `client_auth`, clients must present a certificate
    /// of its CA (`--tls-auth-clients yes`).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, pki: &Pki, client_auth: bool) -> Self {
        self.tls = Some((pki.clone(), client_auth));
        self
    }

    /// Starts the server and waits until it answers `PING` (a `NOAUTH`
    /// reply counts: it is up and wants a password); fails the test after
    /// [`PATIENCE`]. A free port picked here can be taken by another socket
    /// before the server binds it: the server then starts again on another,
    /// up to [`PORT_TRIES`] times. A port the test chose is tried once.
    pub fn start(self) -> Server {
        let tries = if self.port.is_some() { 1 } else { PORT_TRIES };
        for _ in 1..tries {
            if let Some(server) = self.try_start(free_port()) {
                return server;
            }
        }
        let port = self.port.unwrap_or_else(free_port);
        self.try_start(port)
            .unwrap_or_else(|| panic!("redis-server could not listen on port {port}: it was taken"))
    }

    /// [`start`](Self::start) on `port`; `None` if the port was taken.
    fn try_start(&self, port: u16) -> Option<Server> {
        let host = "127.0.0.1".to_owned();
        #[cfg(feature = "tls")]
        let (addr, paths, client_auth, files, pki) = match self.tls.clone() {
            Some((pki, client_auth)) => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let paths = pki.write_server_files(dir.path());
                let addr = ConnectionAddr::TcpTls {
                    host,
                    port,
                    insecure: false,
                    tls_params: None,
                };
                (addr, Some(paths), client_auth, Some(dir), Some(pki))
            }
            None => (ConnectionAddr::Tcp(host, port), None, false, None, None),
        };
        #[cfg(not(feature = "tls"))]
        let (addr, paths, client_auth, files) =
            (ConnectionAddr::Tcp(host, port), None, false, None);
        let (args, dir) = (&self.args, &self.dir);
        let process = RedisServer::new_with_addr_tls_modules_and_spawner(
            addr,
            self.config.as_deref(),
            paths,
            client_auth,
            None,
            &[],
            |cmd| {
                cmd.args(args);
                if let Some(dir) = dir {
                    cmd.current_dir(dir);
                }
                cmd.spawn().expect("start redis-server (is it on PATH?)")
            },
        );
        #[cfg(feature = "tls")]
        let scheme = if pki.is_some() { "rediss" } else { "redis" };
        #[cfg(not(feature = "tls"))]
        let scheme = "redis";
        let server = Server {
            process,
            port,
            url: format!("{scheme}://127.0.0.1:{port}"),
            #[cfg(feature = "tls")]
            pki,
            _files: files,
        };
        let log = || server.process.log_file_contents().unwrap_or_default();
        // `Ok(false)`: the port was taken; stop asking.
        let answered = retry(PATIENCE, Duration::from_millis(20), || {
            if log().contains(PORT_TAKEN) {
                return Ok(false);
            }
            server.ping().map(|()| true)
        })
        .unwrap_or_else(|e| panic!("redis-server on port {port} did not start: {e}\n{}", log()));
        answered.then_some(server)
    }
}

/// How many free ports [`ServerBuilder::start`] tries.
const PORT_TRIES: usize = 5;

/// What redis-server logs when its port is taken.
const PORT_TAKEN: &str = "Address already in use";

impl Server {
    /// How to start one with arguments, a port, a config file or TLS.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// A server on a free port, once it answers.
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// A server with these extra `redis-server` arguments (say,
    /// `["--requirepass", "s3cret"]`) on a free port, once it answers. Its
    /// [`url`](Self::url) holds no password.
    pub fn start_with(args: &[&str]) -> Self {
        Self::builder().args(args).start()
    }

    /// [`start_with`](Self::start_with) on `port` (say, that of a stopped
    /// server, to bring it back).
    pub fn start_on(port: u16, args: &[&str]) -> Self {
        Self::builder().port(port).args(args).start()
    }

    /// `PING`; `NOAUTH` counts as an answer.
    fn ping(&self) -> redis::RedisResult<()> {
        match self
            .try_conn()
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
        {
            Err(e) if e.code() == Some("NOAUTH") => Ok(()),
            answer => answer.map(drop),
        }
    }

    /// The server's URL, `redis://127.0.0.1:<port>` (`rediss://` over TLS),
    /// without a password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port it listens on (its TLS port over TLS).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The certificates of a server that speaks only TLS.
    #[cfg(feature = "tls")]
    pub fn pki(&self) -> Option<&Pki> {
        self.pki.as_ref()
    }

    /// A connection, authenticated as `default` with `password` if given
    /// (over TLS with the client certificate, for a TLS server).
    pub fn try_conn_with(&self, password: Option<&str>) -> redis::RedisResult<redis::Connection> {
        let url = match password {
            Some(password) => self.url.replace("://", &format!("://:{password}@")),
            None => self.url.clone(),
        };
        #[cfg(feature = "tls")]
        if let Some(pki) = &self.pki {
            return redis::Client::build_with_tls(url, pki.client_certificates())?.get_connection();
        }
        redis::Client::open(url)?.get_connection()
    }

    /// A connection without a password.
    pub fn try_conn(&self) -> redis::RedisResult<redis::Connection> {
        self.try_conn_with(None)
    }

    /// A plain connection, for looking at what a cache wrote.
    pub fn conn(&self) -> redis::Connection {
        self.try_conn().expect("connect to the test server")
    }

    /// Every key on the server, sorted.
    pub fn keys(&self) -> Vec<String> {
        crate::sorted_keys(&mut self.conn())
    }

    /// Every key on a server started with `--requirepass root-pw`, sorted.
    pub fn keys_as_root(&self) -> Vec<String> {
        let mut conn = self
            .try_conn_with(Some("root-pw"))
            .expect("connect as root");
        crate::sorted_keys(&mut conn)
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

    /// The integer under `key` (0 if absent), e.g. a counter a body `INCR`s.
    pub fn counter(&self, key: &str) -> i64 {
        let value: Option<i64> = self.conn().get(key).expect("GET");
        value.unwrap_or(0)
    }

    /// `EXISTS key`.
    pub fn exists(&self, key: &str) -> bool {
        self.conn().exists(key).expect("EXISTS")
    }

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
        crate::named_client_ids(&list, name)
    }

    /// Stops the server now (`SIGKILL`: no goodbye, as when a machine
    /// dies); the test goes on without it.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.process.log_file_contents().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "could not listen on port")]
    fn a_taken_port_the_test_chose_fails_at_once() {
        // A client's socket holds the port, as one that took a port picked
        // by `free_port` would: nothing listens there.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let client = std::net::TcpStream::connect(listener.local_addr().expect("its address"))
            .expect("a connection");
        let port = client.local_addr().expect("the client's address").port();
        Server::builder().port(port).start();
    }
}
