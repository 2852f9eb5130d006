//! A throwaway primary, its replicas and the sentinels that watch them, for
//! the Sentinel tests: real `redis-server` processes on free ports, each
//! sentinel started as `redis-server <conf> --sentinel` with its config file
//! in a temporary directory. Included with `#[path]` by the test files that
//! need it, so the other tests don't start sentinels.
#![allow(dead_code)] // each test binary uses its own subset

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::TestRedis;

/// The name the sentinels know the primary by.
pub const PRIMARY: &str = "mymaster";

/// A primary, its replicas and its sentinels, stopped when dropped.
pub struct TestSentinel {
    /// The data nodes, the first started as the primary.
    pub nodes: Vec<TestRedis>,
    sentinels: Vec<Sentinel>,
    /// The data nodes' password (`requirepass`), if any.
    data_password: Option<String>,
    /// The sentinels' password (`requirepass` in their config), if any.
    sentinel_password: Option<String>,
    _dir: tempfile::TempDir,
}

struct Sentinel {
    port: u16,
    process: Child,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl TestSentinel {
    /// A primary with `replicas` replicas (in sync), and `sentinels`
    /// sentinels (quorum 1, a node is down after 1 s) that know them all.
    pub fn start(replicas: usize, sentinels: usize) -> Self {
        Self::start_with_passwords(replicas, sentinels, None, None)
    }

    /// [`start`](Self::start), the data nodes asking for `data_password`
    /// and the sentinels for `sentinel_password`.
    pub fn start_with_passwords(
        replicas: usize,
        sentinels: usize,
        data_password: Option<&str>,
        sentinel_password: Option<&str>,
    ) -> Self {
        // Replicas write the primary's snapshot to their `dir`: keep it there.
        let dir = tempfile::tempdir().expect("a temporary directory");
        let dir_arg = dir.path().display().to_string();
        let mut auth: Vec<&str> = vec!["--dir", &dir_arg];
        if let Some(password) = data_password {
            auth.extend(["--requirepass", password, "--masterauth", password]);
        }
        let primary = TestRedis::start_with(&auth);
        let primary_port = port_of(primary.url());
        let mut nodes = vec![primary];
        for i in 0..replicas {
            let (port, file) = (primary_port.to_string(), format!("replica-{i}.rdb"));
            let mut args = vec!["--replicaof", "127.0.0.1", &port, "--dbfilename", &file];
            args.extend(&auth);
            nodes.push(TestRedis::start_with(&args));
        }
        let sentinels = (0..sentinels)
            .map(|i| {
                let port = free_port();
                let conf = dir.path().join(format!("sentinel-{i}.conf"));
                let text = format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                     sentinel monitor {PRIMARY} 127.0.0.1 {primary_port} 1\n\
                     sentinel down-after-milliseconds {PRIMARY} 1000\n\
                     sentinel failover-timeout {PRIMARY} 5000\n\
                     sentinel parallel-syncs {PRIMARY} 1\n",
                    dir = dir.path().display(),
                );
                let text = match (data_password, sentinel_password) {
                    (Some(data), Some(own)) => {
                        format!("{text}sentinel auth-pass {PRIMARY} {data}\nrequirepass {own}\n")
                    }
                    (Some(data), None) => format!("{text}sentinel auth-pass {PRIMARY} {data}\n"),
                    (None, Some(own)) => format!("{text}requirepass {own}\n"),
                    (None, None) => text,
                };
                std::fs::write(&conf, text).expect("write the sentinel's config");
                let process = Command::new("redis-server")
                    .arg(&conf)
                    .arg("--sentinel")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start redis-server --sentinel");
                Sentinel { port, process }
            })
            .collect();
        let topology = Self {
            nodes,
            sentinels,
            data_password: data_password.map(str::to_owned),
            sentinel_password: sentinel_password.map(str::to_owned),
            _dir: dir,
        };
        topology.wait_until(
            Duration::from_secs(20),
            "the sentinels know every replica",
            |t| {
                t.sentinel_urls().iter().all(|url| {
                    let replicas: redis::RedisResult<Vec<redis::Value>> =
                        connect(url).and_then(|mut conn| {
                            redis::cmd("SENTINEL")
                                .arg("REPLICAS")
                                .arg(PRIMARY)
                                .query(&mut conn)
                        });
                    replicas.is_ok_and(|r| r.len() == replicas_of(t))
                }) && t.nodes[1..].iter().all(|replica| {
                    info_field(&t.authed(replica), "master_link_status").as_deref() == Some("up")
                })
            },
        );
        topology
    }

    /// The sentinels' `redis://[:password@]127.0.0.1:port` URLs.
    pub fn sentinel_urls(&self) -> Vec<String> {
        let auth = (self.sentinel_password.as_ref()).map_or(String::new(), |p| format!(":{p}@"));
        (self.sentinels.iter())
            .map(|s| format!("redis://{auth}127.0.0.1:{}", s.port))
            .collect()
    }

    /// `redis+sentinel://[:data-password@]127.0.0.1:p1,127.0.0.1:p2/mymaster`
    /// `[?sentinel_password=…]`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = (self.sentinels.iter())
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        let auth = (self.data_password.as_ref()).map_or(String::new(), |p| format!(":{p}@"));
        let query = (self.sentinel_password.as_ref())
            .map_or(String::new(), |p| format!("?sentinel_password={p}"));
        format!(
            "redis+sentinel://{auth}{}/{PRIMARY}{query}",
            hosts.join(",")
        )
    }

    /// `node`'s URL with the data nodes' password.
    fn authed(&self, node: &TestRedis) -> String {
        match &self.data_password {
            Some(password) => node
                .url()
                .replace("redis://", &format!("redis://:{password}@")),
            None => node.url().to_owned(),
        }
    }

    /// The data node the first sentinel names as the primary.
    pub fn primary(&self) -> &TestRedis {
        let mut conn = connect(&self.sentinel_urls()[0]).expect("connect to a sentinel");
        let (_, port): (String, u16) = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(PRIMARY)
            .query(&mut conn)
            .expect("the primary's address");
        self.node(port)
    }

    /// The data node on `port`.
    pub fn node(&self, port: u16) -> &TestRedis {
        (self.nodes.iter())
            .find(|node| port_of(node.url()) == port)
            .expect("a node of this topology")
    }

    /// `SENTINEL FAILOVER mymaster` (asked again while the sentinel has no
    /// replica to promote yet), then waits until a replica is the primary,
    /// by every sentinel's word and its own, and the old primary follows it.
    /// Returns the new primary.
    pub fn failover(&self) -> &TestRedis {
        let old = port_of(self.primary().url());
        let mut conn = connect(&self.sentinel_urls()[0]).expect("connect to a sentinel");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let asked: redis::RedisResult<()> = redis::cmd("SENTINEL")
                .arg("FAILOVER")
                .arg(PRIMARY)
                .query(&mut conn);
            match asked {
                Ok(()) => break,
                Err(e) if Instant::now() > deadline => panic!("SENTINEL FAILOVER: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        self.wait_until(Duration::from_secs(30), "a replica is promoted", |t| {
            let urls = t.sentinel_urls();
            let named: Vec<u16> = urls
                .iter()
                .filter_map(|url| {
                    let mut conn = connect(url).ok()?;
                    let (_, port): (String, u16) = redis::cmd("SENTINEL")
                        .arg("GET-MASTER-ADDR-BY-NAME")
                        .arg(PRIMARY)
                        .query(&mut conn)
                        .ok()?;
                    Some(port)
                })
                .collect();
            named.len() == urls.len()
                && named.iter().all(|&port| port != old && port == named[0])
                && info_field(&t.authed(t.node(named[0])), "role").as_deref() == Some("master")
                && info_field(&t.authed(t.node(old)), "role").as_deref() == Some("slave")
        });
        self.primary()
    }

    fn wait_until(&self, limit: Duration, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            assert!(Instant::now() < deadline, "never happened: {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn replicas_of(topology: &TestSentinel) -> usize {
    topology.nodes.len() - 1
}

fn connect(url: &str) -> redis::RedisResult<redis::Connection> {
    redis::Client::open(url)?.get_connection_with_timeout(Duration::from_secs(1))
}

/// A field of the node's `INFO replication`.
fn info_field(url: &str, field: &str) -> Option<String> {
    let mut conn = connect(url).ok()?;
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query(&mut conn)
        .ok()?;
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .map(|value| value.trim().to_owned())
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("a URL with a port")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The names of the clients connected to the node at `url`.
pub fn client_names(url: &str) -> Vec<String> {
    let Ok(mut conn) = connect(url) else {
        return Vec::new();
    };
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut conn)
        .unwrap_or_default();
    list.lines()
        .filter_map(|line| {
            line.split(' ')
                .find_map(|field| field.strip_prefix("name="))
                .map(str::to_owned)
        })
        .collect()
}
