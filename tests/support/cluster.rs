//! A throwaway Redis Cluster for the cluster tests (via `redis-test`, or,
//! locked down with a password or TLS, started here with `redis-cli
//! --cluster create`), and helpers that read what is in it. Included with
//! `#[path]` by the test files that need it, so the other tests don't
//! start clusters.
#![allow(dead_code)] // each test binary uses its own subset

use std::process::Command;
use std::time::{Duration, Instant};

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{ClientTlsConfig, ConnectionAddr, TlsCertificates};
use redis_cached::{Cache, CacheBuilder};
use redis_test::cluster::{RedisCluster, RedisClusterConfiguration};
use redis_test::server::RedisServer;
use redis_test::utils::TlsFilePaths;

use crate::support::tls::Pki;

/// A local Redis Cluster, its processes killed when dropped.
pub struct TestCluster {
    /// Started by `redis-test`, or `None` for a [`Secured`] one.
    cluster: Option<RedisCluster>,
    /// The nodes of a [`Secured`] cluster.
    servers: Vec<RedisServer>,
    /// Their working directories and certificate files.
    _dirs: Option<tempfile::TempDir>,
    /// A `redis://host:port` (or `rediss://`) URL per node, primaries and
    /// replicas, without credentials.
    pub nodes: Vec<String>,
    /// The `default` user's password, if the nodes need one.
    pub password: Option<&'static str>,
    /// The certificates, if the nodes speak only TLS.
    pub pki: Option<Pki>,
}

/// How [`TestCluster::start_secured`] locks its 3 primaries down.
#[derive(Default, Clone, Copy)]
pub struct Secured {
    /// `requirepass`: the `default` user's password; with one, the nodes
    /// also have an ACL user [`APP_USER`] whose password is [`APP_PASSWORD`].
    pub password: Option<&'static str>,
    /// Only TLS, on clients and the cluster bus, with fresh certificates.
    pub tls: bool,
    /// Clients must present a certificate of the cluster's CA (mTLS).
    pub mtls: bool,
}

/// The ACL user a [`Secured`] cluster with a password has.
pub const APP_USER: &str = "app";
/// The password of [`APP_USER`].
pub const APP_PASSWORD: &str = "app-pw";
/// What [`APP_USER`] may do: only the commands a cache sends, as the
/// README's "Authentication" deployment notes list them.
pub const APP_RULES: &[&str] = &[
    "~*",
    "-@all",
    "+get",
    "+getex",
    "+set",
    "+mget",
    "+del",
    "+unlink",
    "+scan",
    "+eval",
    "+ping",
    "+hello",
    "+client|setname",
    "+client|tracking",
    "+cluster|slots",
];

impl TestCluster {
    /// 3 primaries, no replicas.
    pub fn start() -> Self {
        Self::start_with(3, 0)
    }

    /// `primaries` primaries with `replicas` replicas each, once every slot
    /// is served and a cluster connection answers.
    pub fn start_with(primaries: u16, replicas: u16) -> Self {
        let cluster = RedisCluster::new(RedisClusterConfiguration {
            num_nodes: primaries * (1 + replicas),
            num_replicas: replicas,
            ..Default::default()
        });
        let nodes = cluster
            .iter_servers()
            .map(|server| {
                let (host, port) = server.host_and_port().expect("a TCP node");
                format!("redis://{host}:{port}")
            })
            .collect();
        Self {
            cluster: Some(cluster),
            servers: Vec::new(),
            _dirs: None,
            nodes,
            password: None,
            pki: None,
        }
        .when_serving()
    }

    /// 3 primaries, no replicas, locked down as `secured` says: started
    /// here (`redis-test`'s clusters take no password and make their TLS
    /// certificates with `openssl`), joined with `redis-cli --cluster create`.
    pub fn start_secured(secured: Secured) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let pki = secured.tls.then(Pki::new);
        let paths = pki.as_ref().map(|pki| {
            let write = |name: &str, pem: &str| {
                let path = dir.path().join(name);
                std::fs::write(&path, pem).expect("write a certificate");
                path
            };
            write("client.crt", &pki.client_cert);
            write("client.key", &pki.client_key);
            TlsFilePaths {
                redis_crt: write("redis.crt", &pki.server_cert),
                redis_key: write("redis.key", &pki.server_key),
                ca_crt: write("ca.crt", &pki.ca_cert),
            }
        });
        let mut servers = Vec::new();
        let mut addresses = Vec::new();
        for node in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free port")
                .port();
            let node_dir = dir.path().join(format!("node{node}"));
            std::fs::create_dir(&node_dir).expect("a node directory");
            let addr = match secured.tls {
                true => ConnectionAddr::TcpTls {
                    host: "127.0.0.1".to_owned(),
                    port,
                    insecure: false,
                    tls_params: None,
                },
                false => ConnectionAddr::Tcp("127.0.0.1".to_owned(), port),
            };
            let server = RedisServer::new_with_addr_tls_modules_and_spawner(
                addr,
                None,
                paths.clone(),
                secured.mtls,
                None,
                &[],
                |cmd| {
                    cmd.arg("--cluster-enabled")
                        .arg("yes")
                        .arg("--cluster-config-file")
                        .arg(node_dir.join("nodes.conf"))
                        .arg("--cluster-node-timeout")
                        .arg("5000");
                    if secured.tls {
                        cmd.args(["--tls-cluster", "yes"]);
                    }
                    if let Some(password) = secured.password {
                        cmd.args(["--requirepass", password]);
                        let app = format!(">{APP_PASSWORD}");
                        cmd.args(["--user", APP_USER, "on", &app]).args(APP_RULES);
                    }
                    cmd.current_dir(&node_dir);
                    cmd.spawn().expect("start redis-server")
                },
            );
            servers.push(server);
            addresses.push(format!("127.0.0.1:{port}"));
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create").args(&addresses);
        create.arg("--cluster-yes");
        if let Some(password) = secured.password {
            create.args(["-a", password, "--no-auth-warning"]);
        }
        if secured.tls {
            create
                .arg("--tls")
                .arg("--cacert")
                .arg(dir.path().join("ca.crt"));
            create.arg("--cert").arg(dir.path().join("client.crt"));
            create.arg("--key").arg(dir.path().join("client.key"));
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let output = create.output().expect("run redis-cli");
            if output.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "redis-cli --cluster create failed: {output:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let scheme = if secured.tls { "rediss" } else { "redis" };
        Self {
            cluster: None,
            servers,
            _dirs: Some(dir),
            nodes: addresses
                .iter()
                .map(|address| format!("{scheme}://{address}"))
                .collect(),
            password: secured.password,
            pki,
        }
        .when_serving()
    }

    /// This cluster, once every slot is served and a cluster connection answers.
    fn when_serving(self) -> Self {
        let cluster = self;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = cluster.try_conn().and_then(|mut conn| {
                redis::cmd("SET")
                    .arg("test:probe")
                    .arg(1)
                    .query::<()>(&mut conn)?;
                redis::cmd("DEL").arg("test:probe").query::<()>(&mut conn)
            });
            match ok {
                Ok(()) => return cluster,
                Err(e) if Instant::now() > deadline => panic!("the cluster did not start: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The seed nodes as one comma-separated URL, as `REDIS_CACHED_URL` holds them.
    pub fn url(&self) -> String {
        self.nodes.join(",")
    }

    /// A builder for a cache on this cluster, all nodes as seeds; with
    /// its CA and client certificate if it speaks TLS, and no credentials.
    pub fn builder(&self) -> CacheBuilder {
        let builder = CacheBuilder::cluster(&self.nodes);
        match &self.pki {
            Some(pki) => builder
                .tls_ca(pki.ca_cert.clone())
                .tls_client_cert(pki.client_cert.clone(), pki.client_key.clone()),
            None => builder,
        }
    }

    /// The seed node URLs with `credentials` (`user:password`) in each.
    pub fn nodes_with(&self, credentials: &str) -> Vec<String> {
        self.nodes
            .iter()
            .map(|node| node.replace("://", &format!("://{credentials}@")))
            .collect()
    }

    /// A fresh cache on this cluster, with one seed node.
    pub fn cache(&self) -> Cache {
        Cache::cluster(&self.nodes[..1]).expect("valid urls")
    }

    fn try_conn(&self) -> redis::RedisResult<ClusterConnection> {
        let mut builder = ClusterClient::builder(self.nodes.clone())
            .connection_timeout(Duration::from_secs(1))
            .response_timeout(Duration::from_secs(2));
        if let Some(password) = self.password {
            builder = builder.password(password);
        }
        if let Some(pki) = &self.pki {
            // As any application that uses `redis` over TLS: see support/tls.rs.
            if rustls::crypto::CryptoProvider::get_default().is_none() {
                let _ = rustls::crypto::ring::default_provider().install_default();
            }
            builder = builder.certs(TlsCertificates {
                client_tls: Some(ClientTlsConfig {
                    client_cert: pki.client_cert.clone().into_bytes(),
                    client_key: pki.client_key.clone().into_bytes(),
                }),
                root_cert: Some(pki.ca_cert.clone().into_bytes()),
            });
        }
        builder.build()?.get_connection()
    }

    /// A cluster connection, for looking at what the cache wrote.
    pub fn conn(&self) -> ClusterConnection {
        self.try_conn().expect("connect to the test cluster")
    }

    /// Every key on every primary, sorted.
    pub fn keys(&self) -> Vec<String> {
        crate::support::sorted_keys(&mut self.conn())
    }

    /// `PTTL key` on the node that holds the key, in ms (-2: no key).
    pub fn pttl(&self, key: &str) -> i64 {
        redis::cmd("PTTL")
            .arg(key)
            .query(&mut self.conn())
            .expect("PTTL")
    }

    /// `EXISTS key`, asked of the key's node.
    pub fn exists(&self, key: &str) -> bool {
        redis::cmd("EXISTS")
            .arg(key)
            .query(&mut self.conn())
            .expect("EXISTS")
    }

    /// `INCR key`, for a body to count its runs in the cluster.
    pub fn incr(&self, key: &str) -> i64 {
        redis::cmd("INCR")
            .arg(key)
            .query(&mut self.conn())
            .expect("INCR")
    }

    /// The `(host, port)` of each primary, from `CLUSTER SLOTS`, with the
    /// number of keys it holds (`DBSIZE` on it).
    pub fn keys_per_primary(&self) -> Vec<((String, u16), u64)> {
        let mut conn = self.conn();
        let ranges: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(&mut conn)
            .expect("CLUSTER SLOTS");
        let mut primaries: Vec<(String, u16)> = Vec::new();
        for range in ranges {
            let (host, port) = address(&range[2]).expect("a primary's address");
            if !primaries.contains(&(host.clone(), port)) {
                primaries.push((host, port));
            }
        }
        primaries.sort();
        primaries
            .into_iter()
            .map(|(host, port)| {
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port,
                });
                let size = conn
                    .route_command(&redis::cmd("DBSIZE"), route)
                    .expect("DBSIZE");
                let size: u64 = redis::from_redis_value(size).expect("a count");
                ((host, port), size)
            })
            .collect()
    }

    /// The port of the primary serving `key`'s slot.
    pub fn primary_of(&self, key: &str) -> u16 {
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.conn())
            .expect("CLUSTER KEYSLOT");
        let ranges: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(&mut self.conn())
            .expect("CLUSTER SLOTS");
        ranges
            .into_iter()
            .find_map(|range| {
                let (start, end): (u16, u16) =
                    redis::from_redis_value(redis::Value::Array(range[..2].to_vec())).ok()?;
                let (_, port) = address(&range[2])?;
                (start..=end).contains(&slot).then_some(port)
            })
            .expect("a primary for every slot")
    }

    /// Runs `cmd` on the node listening on `port`.
    pub fn on_node<T: redis::FromRedisValue>(&self, port: u16, cmd: &redis::Cmd) -> T {
        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: "127.0.0.1".to_owned(),
            port,
        });
        let value = self
            .conn()
            .route_command(cmd, route)
            .expect("a command on one node");
        redis::from_redis_value(value).expect("the expected reply type")
    }

    /// The ids of the clients of the node on `port` named `name`.
    pub fn client_ids(&self, port: u16, name: &str) -> Vec<u64> {
        let mut list = redis::cmd("CLIENT");
        list.arg("LIST");
        let list: String = self.on_node(port, &list);
        let named = format!(" name={name} ");
        list.lines()
            .filter(|line| line.contains(&named))
            .filter_map(|line| line.strip_prefix("id="))
            .filter_map(|rest| rest.split(' ').next()?.parse().ok())
            .collect()
    }

    /// Each argument's key: calls `call(x)` for each `x` in `args` and
    /// returns the one key each call added to the cluster.
    pub fn keys_of(&self, args: std::ops::Range<u64>, mut call: impl FnMut(u64)) -> Vec<String> {
        let mut known: std::collections::HashSet<String> = self.keys().into_iter().collect();
        args.map(|x| {
            call(x);
            let added: Vec<String> = self
                .keys()
                .into_iter()
                .filter(|key| !known.contains(key))
                .collect();
            assert_eq!(added.len(), 1, "one new key for {x}: {added:?}");
            known.insert(added[0].clone());
            added[0].clone()
        })
        .collect()
    }

    /// Kills the node listening on `port` at once (`SIGKILL`): no goodbye,
    /// as when a machine dies.
    pub fn kill(&mut self, port: u16) {
        let server = (self.cluster.iter_mut())
            .flat_map(|cluster| cluster.servers.iter_mut())
            .chain(self.servers.iter_mut())
            .find(|server| server.host_and_port().is_some_and(|(_, p)| p == port))
            .expect("a node on that port");
        server.process.kill().expect("kill the node");
        let _ = server.process.wait();
    }
}

/// The host and port of a node in a `CLUSTER SLOTS` answer.
fn address(node: &redis::Value) -> Option<(String, u16)> {
    let redis::Value::Array(fields) = node else {
        return None;
    };
    let host = redis::from_redis_value(fields.first()?.clone()).ok()?;
    let port = redis::from_redis_value(fields.get(1)?.clone()).ok()?;
    Some((host, port))
}
