//! [`Sentinel`]: a throwaway primary, its replicas and the sentinels that
//! watch them, every process a [`Server`]; each sentinel is started as
//! `redis-server <conf> --sentinel`, its config file in a temporary
//! directory.

use std::time::Duration;

use crate::{Server, eventually_within, retry};

/// The name the sentinels know the primary by.
pub const PRIMARY: &str = "mymaster";

/// How often the topology is asked while it changes.
const EVERY: Duration = Duration::from_millis(100);

/// A primary, its replicas and its sentinels, stopped when dropped.
pub struct Sentinel {
    /// The data nodes, the first started as the primary.
    pub nodes: Vec<Server>,
    sentinels: Vec<Server>,
    /// The data nodes' password (`requirepass`), if any.
    data_password: Option<String>,
    /// The sentinels' password (`requirepass` in their config), if any.
    sentinel_password: Option<String>,
    _dir: tempfile::TempDir,
}

impl Sentinel {
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
        let primary = Server::start_with(&auth);
        let primary_port = primary.port();
        let mut nodes = vec![primary];
        for i in 0..replicas {
            let (port, file) = (primary_port.to_string(), format!("replica-{i}.rdb"));
            let mut args = vec!["--replicaof", "127.0.0.1", &port, "--dbfilename", &file];
            args.extend(&auth);
            nodes.push(Server::start_with(&args));
        }
        let sentinels = (0..sentinels)
            .map(|i| {
                let conf = dir.path().join(format!("sentinel-{i}.conf"));
                let text = format!(
                    "dir {dir}\n\
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
                Server::builder().config(conf).args(["--sentinel"]).start()
            })
            .collect();
        let topology = Self {
            nodes,
            sentinels,
            data_password: data_password.map(str::to_owned),
            sentinel_password: sentinel_password.map(str::to_owned),
            _dir: dir,
        };
        eventually_within(
            Duration::from_secs(20),
            EVERY,
            "the sentinels know every replica",
            || {
                topology.sentinel_urls().iter().all(|url| {
                    let replicas: redis::RedisResult<Vec<redis::Value>> =
                        connect(url).and_then(|mut conn| {
                            redis::cmd("SENTINEL")
                                .arg("REPLICAS")
                                .arg(PRIMARY)
                                .query(&mut conn)
                        });
                    replicas.is_ok_and(|r| r.len() == topology.nodes.len() - 1)
                }) && topology.nodes[1..].iter().all(|replica| {
                    info_field(&topology.authed(replica), "master_link_status").as_deref()
                        == Some("up")
                })
            },
        );
        topology
    }

    /// The sentinels' `redis://[:password@]127.0.0.1:port` URLs.
    pub fn sentinel_urls(&self) -> Vec<String> {
        let auth = (self.sentinel_password.as_ref()).map_or(String::new(), |p| format!(":{p}@"));
        (self.sentinels.iter())
            .map(|s| format!("redis://{auth}127.0.0.1:{}", s.port()))
            .collect()
    }

    /// `redis+sentinel://[:data-password@]127.0.0.1:p1,127.0.0.1:p2/mymaster`
    /// `[?sentinel_password=…]`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = (self.sentinels.iter())
            .map(|s| format!("127.0.0.1:{}", s.port()))
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
    fn authed(&self, node: &Server) -> String {
        match &self.data_password {
            Some(password) => node
                .url()
                .replace("redis://", &format!("redis://:{password}@")),
            None => node.url().to_owned(),
        }
    }

    /// The data node the first sentinel names as the primary.
    pub fn primary(&self) -> &Server {
        let mut conn = connect(&self.sentinel_urls()[0]).expect("connect to a sentinel");
        let (_, port): (String, u16) = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(PRIMARY)
            .query(&mut conn)
            .expect("the primary's address");
        self.node(port)
    }

    /// The data node on `port`.
    pub fn node(&self, port: u16) -> &Server {
        (self.nodes.iter())
            .find(|node| node.port() == port)
            .expect("a node of this topology")
    }

    /// `SENTINEL FAILOVER mymaster` (asked again while the sentinel has no
    /// replica to promote yet), then waits until a replica is the primary,
    /// by every sentinel's word and its own, and the old primary follows it.
    /// Returns the new primary.
    pub fn failover(&self) -> &Server {
        let old = self.primary().port();
        let mut conn = connect(&self.sentinel_urls()[0]).expect("connect to a sentinel");
        retry(Duration::from_secs(20), EVERY, || {
            redis::cmd("SENTINEL")
                .arg("FAILOVER")
                .arg(PRIMARY)
                .query::<()>(&mut conn)
        })
        .unwrap_or_else(|e| panic!("SENTINEL FAILOVER: {e}"));
        eventually_within(
            Duration::from_secs(30),
            EVERY,
            "a replica is promoted",
            || {
                let urls = self.sentinel_urls();
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
                    && info_field(&self.authed(self.node(named[0])), "role").as_deref()
                        == Some("master")
                    && info_field(&self.authed(self.node(old)), "role").as_deref() == Some("slave")
            },
        );
        self.primary()
    }
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
