//! [`Cluster`]: a throwaway Redis Cluster on this machine, every node a
//! [`Server`], joined with `redis-cli --cluster create`; plain, or locked
//! down with a password, an ACL user and TLS ([`Secured`]).

use std::process::Command;
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

#[cfg(feature = "tls")]
use crate::Pki;
use crate::{Server, eventually_within, retry};

/// How long a cluster may take to form, or a replica to sync.
const FORMING: Duration = Duration::from_secs(20);

/// A local Redis Cluster, its processes killed when dropped.
pub struct Cluster {
    /// Primaries and replicas, in the order `redis-cli` was given them.
    servers: Vec<Server>,
    /// The nodes' working directories and certificate files.
    _dir: tempfile::TempDir,
    /// A `redis://host:port` (or `rediss://`) URL per node, primaries and
    /// replicas, without credentials.
    pub nodes: Vec<String>,
    /// The `default` user's password, if the nodes need one.
    pub password: Option<&'static str>,
    /// The certificates, if the nodes speak only TLS.
    #[cfg(feature = "tls")]
    pub pki: Option<Pki>,
}

/// How [`Cluster::start_secured`] locks its 3 primaries down.
#[derive(Default, Clone, Copy)]
pub struct Secured {
    /// `requirepass`: the `default` user's password; with one, the nodes
    /// also have an ACL user [`APP_USER`] whose password is [`APP_PASSWORD`].
    pub password: Option<&'static str>,
    /// Only TLS, on clients and the cluster bus, with fresh certificates.
    #[cfg(feature = "tls")]
    pub tls: bool,
    /// Clients must present a certificate of the cluster's CA (mTLS).
    #[cfg(feature = "tls")]
    pub mtls: bool,
}

/// The ACL user a [`Secured`] cluster with a password has.
pub const APP_USER: &str = "app";
/// The password of [`APP_USER`].
pub const APP_PASSWORD: &str = "app-pw";
/// What [`APP_USER`] may do: only the commands a cache sends, as the
/// deployment guide's "Authentication and ACL users" lists them.
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

impl Cluster {
    /// 3 primaries, no replicas.
    pub fn start() -> Self {
        Self::start_with(3, 0)
    }

    /// `primaries` primaries with `replicas` replicas each, once every slot
    /// is served, every replica follows its primary and a cluster
    /// connection answers.
    pub fn start_with(primaries: u16, replicas: u16) -> Self {
        Self::launch(primaries, replicas, Secured::default())
    }

    /// 3 primaries, no replicas, locked down as `secured` says.
    pub fn start_secured(secured: Secured) -> Self {
        Self::launch(3, 0, secured)
    }

    fn launch(primaries: u16, replicas: u16, secured: Secured) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        #[cfg(feature = "tls")]
        let pki = secured.tls.then(Pki::new);
        #[cfg(feature = "tls")]
        if let Some(pki) = &pki {
            pki.write_server_files(dir.path());
        }
        let servers: Vec<Server> = (0..primaries * (1 + replicas))
            .map(|node| {
                let node_dir = dir.path().join(format!("node{node}"));
                std::fs::create_dir(&node_dir).expect("a node directory");
                let mut server = Server::builder()
                    .dir(&node_dir)
                    .args(["--cluster-enabled", "yes", "--cluster-config-file"])
                    .args([node_dir.join("nodes.conf")])
                    .args(["--cluster-node-timeout", "5000"]);
                #[cfg(feature = "tls")]
                if let Some(pki) = &pki {
                    server = server.tls(pki, secured.mtls).args([
                        "--tls-cluster",
                        "yes",
                        "--tls-replication",
                        "yes",
                    ]);
                }
                if let Some(password) = secured.password {
                    let app = format!(">{APP_PASSWORD}");
                    server = server
                        .args(["--requirepass", password, "--masterauth", password])
                        .args(["--user", APP_USER, "on", &app])
                        .args(APP_RULES);
                }
                server.start()
            })
            .collect();

        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        create.args(servers.iter().map(|s| format!("127.0.0.1:{}", s.port())));
        if replicas > 0 {
            create.args(["--cluster-replicas", &replicas.to_string()]);
        }
        create.arg("--cluster-yes");
        if let Some(password) = secured.password {
            create.args(["-a", password, "--no-auth-warning"]);
        }
        #[cfg(feature = "tls")]
        if pki.is_some() {
            create.arg("--tls");
            create.arg("--cacert").arg(dir.path().join("ca.crt"));
            create.arg("--cert").arg(dir.path().join("client.crt"));
            create.arg("--key").arg(dir.path().join("client.key"));
        }
        retry(FORMING, Duration::from_millis(100), || {
            let output = create.output().expect("run redis-cli");
            if output.status.success() {
                Ok(())
            } else {
                Err(output)
            }
        })
        .unwrap_or_else(|output| panic!("redis-cli --cluster create failed: {output:?}"));

        let cluster = Self {
            nodes: servers.iter().map(|s| s.url().to_owned()).collect(),
            servers,
            _dir: dir,
            password: secured.password,
            #[cfg(feature = "tls")]
            pki,
        };
        cluster.when_serving(replicas)
    }

    /// This cluster, once every node sees every slot served (and every
    /// range has its `replicas`), and a cluster connection answers.
    fn when_serving(self, replicas: u16) -> Self {
        let cluster = self;
        eventually_within(
            FORMING,
            Duration::from_millis(100),
            "every node sees the cluster ok, with its replicas",
            || {
                cluster.servers.iter().all(|server| {
                    let Ok(mut conn) = server.try_conn_with(cluster.password) else {
                        return false;
                    };
                    let info: redis::RedisResult<String> =
                        redis::cmd("CLUSTER").arg("INFO").query(&mut conn);
                    let slots: redis::RedisResult<Vec<Vec<redis::Value>>> =
                        redis::cmd("CLUSTER").arg("SLOTS").query(&mut conn);
                    info.is_ok_and(|info| info.contains("cluster_state:ok"))
                        && slots.is_ok_and(|slots| {
                            slots
                                .iter()
                                .all(|range| range.len() >= 3 + replicas as usize)
                        })
                })
            },
        );
        retry(FORMING, Duration::from_millis(100), || {
            let mut conn = cluster.try_conn()?;
            redis::cmd("SET")
                .arg("test:probe")
                .arg(1)
                .query::<()>(&mut conn)?;
            redis::cmd("DEL").arg("test:probe").query::<()>(&mut conn)
        })
        .unwrap_or_else(|e| panic!("the cluster did not start: {e}"));
        cluster
    }

    /// The seed nodes as one comma-separated URL, as `REDIS_CACHED_URL` holds them.
    pub fn url(&self) -> String {
        self.nodes.join(",")
    }

    /// The seed node URLs with `credentials` (`user:password`) in each.
    pub fn nodes_with(&self, credentials: &str) -> Vec<String> {
        self.nodes
            .iter()
            .map(|node| node.replace("://", &format!("://{credentials}@")))
            .collect()
    }

    fn try_conn(&self) -> redis::RedisResult<ClusterConnection> {
        let mut builder = ClusterClient::builder(self.nodes.clone())
            .connection_timeout(Duration::from_secs(1))
            .response_timeout(Duration::from_secs(2));
        if let Some(password) = self.password {
            builder = builder.password(password);
        }
        #[cfg(feature = "tls")]
        if let Some(pki) = &self.pki {
            builder = builder.certs(pki.client_certificates());
        }
        builder.build()?.get_connection()
    }

    /// A cluster connection, for looking at what the cache wrote.
    pub fn conn(&self) -> ClusterConnection {
        self.try_conn().expect("connect to the test cluster")
    }

    /// Every key on every primary, sorted.
    pub fn keys(&self) -> Vec<String> {
        crate::sorted_keys(&mut self.conn())
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
        crate::named_client_ids(&list, name)
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
        self.servers
            .iter_mut()
            .find(|server| server.port() == port)
            .expect("a node on that port")
            .stop();
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
