//! How a [`Cache`] is made: its constructors, and [`CacheBuilder`], its
//! settings.

use std::time::Duration;

#[cfg(feature = "cluster")]
use crate::backend::ClusterBackend;
#[cfg(feature = "memory")]
use crate::backend::MemoryBackend;
#[cfg(feature = "sentinel")]
use crate::backend::SentinelSpec;
use crate::backend::{Backend, Credentials, RedisBackend, Timeouts, Tls, is_sentinel_url};
use crate::cache::Cache;
use crate::error::{self, public::Error};
#[cfg(feature = "local")]
use crate::local::Local;
use crate::redact::redact;
use crate::sign::{MIN_SECRET, Signer};
use crate::store::Store;
#[cfg(feature = "local")]
use crate::tracking::Start;

/// The URL of the in-process backend.
pub(crate) const MEMORY_URL: &str = "mem://";

/// The configuration error of a setting whose Cargo feature is off.
#[cfg(not(all(feature = "memory", feature = "cluster", feature = "sentinel")))]
fn needs_feature(what: &str, feature: &str) -> Error {
    error::Error::Config(format!(
        "{what} needs the `{feature}` feature of redis-cached; enable it in Cargo.toml: \
         redis-cached = {{ version = \"0.1\", features = [\"{feature}\"] }}"
    ))
    .into()
}

impl Cache {
    /// A cache on the store at `url` with default settings.
    ///
    /// `url` is anything the `redis` crate understands: `redis://[user:pass@]host[:port][/db]`,
    /// `rediss://…` (TLS, with the `tls` feature) or
    /// `redis+unix:///path/to.sock[?user=…&pass=…]`;
    /// `redis+sentinel://[user:pass@]host[:port][,…]/primary[/db]` for a
    /// primary behind Sentinel (see `CacheBuilder::sentinel`; the `sentinel`
    /// feature); or `mem://` for a cache
    /// in this process's memory (see [`in_memory`](Self::in_memory)).
    /// Fails only if the URL is malformed (an error of kind
    /// [`Config`](crate::ErrorKind::Config), whose text shows the URL with its
    /// password replaced by `***`).
    pub fn new(url: &str) -> Result<Self, Error> {
        Self::builder(url).build()
    }

    /// A cache on the Redis Cluster that the seed `nodes` belong to, with
    /// default settings (see [`CacheBuilder::cluster`]). Fails only if a URL
    /// is malformed. Needs the `cluster` feature.
    ///
    /// ```no_run
    /// let cache = redis_cached::Cache::cluster([
    ///     "redis://127.0.0.1:7000",
    ///     "redis://127.0.0.1:7001",
    /// ])
    /// .unwrap();
    /// # drop(cache);
    /// ```
    #[cfg(feature = "cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
    pub fn cluster<S: AsRef<str>>(nodes: impl IntoIterator<Item = S>) -> Result<Self, Error> {
        CacheBuilder::cluster(nodes).build()
    }

    /// A cache, with default settings, on a Redis Cluster client the
    /// application already configured (`redis::cluster::ClusterClient` of
    /// redis 1.x: its seed nodes, credentials, TLS, timeouts, retries, …).
    /// Fails only as [`CacheBuilder::build`] does. Needs the `cluster`
    /// feature.
    ///
    /// The client's own connection and response timeouts and retries bound
    /// each command (those of [`CacheBuilder::cluster`] are the builder's).
    /// Such a cache has no in-process tier: tracking needs a connection to
    /// every primary, made with the client's credentials, which a
    /// `ClusterClient` doesn't hand out; `local = N` functions read Redis
    /// on every call. Use [`CacheBuilder::cluster`] for the tier.
    ///
    /// ```
    /// let client = redis::cluster::ClusterClient::new(["redis://127.0.0.1:7000"]).unwrap();
    /// let cache = redis_cached::Cache::from_cluster_client(client).unwrap();
    /// # drop(cache);
    /// ```
    #[cfg(feature = "cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
    pub fn from_cluster_client(client: redis::cluster::ClusterClient) -> Result<Self, Error> {
        Self::builder_from_cluster_client(client).build()
    }

    /// Starts configuring a cache on a Redis Cluster client the application
    /// already configured (see [`from_cluster_client`](Self::from_cluster_client)).
    /// The builder's credentials, TLS settings, timeouts and `local` don't
    /// apply: set them on the client (giving credentials, TLS or `local` is
    /// a configuration error); `prefix`, `max_value_size`, `pool_size` and
    /// `signing_key` do.
    #[cfg(feature = "cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
    pub fn builder_from_cluster_client(client: redis::cluster::ClusterClient) -> CacheBuilder {
        let mut builder = CacheBuilder::new("");
        builder.cluster_client = Some(client);
        builder
    }

    /// A cache, with default settings, on the primary that the `sentinels`
    /// know as `primary` (see [`CacheBuilder::sentinel`](CacheBuilder::sentinel)). Fails only if a
    /// URL is malformed or the sentinels' URLs differ in scheme, user or
    /// password.
    ///
    /// ```no_run
    /// let cache = redis_cached::Cache::sentinel(
    ///     ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379"],
    ///     "mymaster",
    /// )
    /// .unwrap();
    /// # drop(cache);
    /// ```
    ///
    /// Needs the `sentinel` feature.
    #[cfg(feature = "sentinel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sentinel")))]
    pub fn sentinel<S: AsRef<str>>(
        sentinels: impl IntoIterator<Item = S>,
        primary: &str,
    ) -> Result<Self, Error> {
        CacheBuilder::sentinel(sentinels, primary).build()
    }

    /// Starts configuring a cache on the store at `url` (see [`new`](Self::new)).
    /// A `url` of several comma-separated node URLs means a Redis Cluster
    /// (see `CacheBuilder::cluster`; the `cluster` feature).
    pub fn builder(url: &str) -> CacheBuilder {
        CacheBuilder::new(url)
    }

    /// A cache, with default settings, on a `redis::Client` the application
    /// already configured (its URL, credentials, TLS, RESP version, …).
    /// Fails only as [`CacheBuilder::build`] does.
    ///
    /// ```
    /// let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    /// let cache = redis_cached::Cache::from_client(client).unwrap();
    /// # drop(cache);
    /// ```
    pub fn from_client(client: redis::Client) -> Result<Self, Error> {
        Self::builder_from_client(client).build()
    }

    /// Starts configuring a cache on a `redis::Client` the application
    /// already configured (see [`from_client`](Self::from_client)). The
    /// builder's credentials and TLS settings don't apply: set them on the
    /// client; giving them is a configuration error.
    pub fn builder_from_client(client: redis::Client) -> CacheBuilder {
        let mut builder = CacheBuilder::new("");
        builder.client = Some(client);
        builder
    }

    /// A cache in this process's memory, with default settings: for tests,
    /// local development, or a single process that needs no shared cache.
    ///
    /// It behaves like the Redis backend (values are encoded the same way,
    /// each expires after its TTL, [`invalidate_all`](Self::invalidate_all)
    /// works) but is not shared with other processes and is lost on exit. It
    /// holds at most 100 000 entries, evicting the least recently used; set
    /// another bound with `Cache::builder("mem://").max_entries(n)`. The same
    /// cache is had with the URL `mem://`, e.g. `REDIS_CACHED_URL=mem://`.
    ///
    /// ```
    /// use redis_cached::{Cache, redis_cached};
    ///
    /// static CACHE: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(Cache::in_memory);
    ///
    /// #[redis_cached(ttl = 60, cache = CACHE)]
    /// fn double(x: u32) -> u32 {
    ///     x * 2
    /// }
    ///
    /// assert_eq!(double(21), 42);
    /// assert_eq!(double(21), 42);
    /// assert_eq!(CACHE.stats().hits, 1);
    /// ```
    #[cfg(feature = "memory")]
    #[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
    pub fn in_memory() -> Self {
        let builder = CacheBuilder::new(MEMORY_URL);
        let backend = Backend::Memory(MemoryBackend::new(builder.max_entries));
        Self::from_store(Store::new(backend, builder.prefix, builder.max_value_size))
    }
}

/// Settings for a [`Cache`]; start from [`Cache::builder`] (one server, a
/// cluster given as comma-separated URLs, `redis+sentinel://`, or `mem://`),
/// `CacheBuilder::cluster` (`cluster`) or `CacheBuilder::sentinel` (`sentinel`).
///
/// Every setting, with its default:
///
/// ```no_run
/// use std::time::Duration;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = redis_cached::Cache::builder("redis://10.0.0.5:6379/1")
///     .username("app")                               // ACL user, default: the URL's, else `default`
///     .password(std::env::var("REDIS_PASSWORD")?)   // default: the URL's, else none
///     .prefix("myapp:")                              // default: none
///     .connect_timeout(Duration::from_millis(500))   // default: 1 s
///     .response_timeout(Duration::from_millis(200))  // default: 500 ms
///     .max_value_size(4 << 20)                       // default: 16 MiB
///     .compress_above(4096)                          // LZ4 over 4 KiB; default: off
///     .pool_size(16)                                 // sync connections (`sync`), default: 8
///     .local(10_000)                                 // in-process tier (`local`), default: off
///     .signing_key(std::env::var("CACHE_SIGNING_KEY")?) // default: values are not signed
///     .build()?;                                     // fails only on a malformed setting
/// redis_cached::set_default(cache).expect("before the first cached call");
/// # Ok(())
/// # }
/// ```
///
/// | setting | what for | guide |
/// |---|---|---|
/// | [`username`](Self::username), [`password`](Self::password) | credentials, in place of the URL's | [deploying](crate::guide::deploying#authentication-and-acl-users) |
/// | `tls_ca`, `tls_client_cert` | a private CA, mTLS (`tls`) | [tls](crate::guide::tls) |
/// | [`prefix`](Self::prefix) | a string before every key | [key format](crate::guide::key_format) |
/// | [`connect_timeout`](Self::connect_timeout), [`response_timeout`](Self::response_timeout) | how long a call waits for Redis | [errors](crate::guide::errors#timeouts) |
/// | [`pool_size`](Self::pool_size) | sync connections held at once (`sync`) | [errors](crate::guide::errors#timeouts) |
/// | [`max_value_size`](Self::max_value_size) | the largest value stored or read | |
/// | [`compress_above`](Self::compress_above) | compress values over this size | [`compress`](macro@crate::redis_cached#compress) |
/// | [`local`](Self::local) | the in-process tier for every function (`local`) | [local tier](crate::guide::local_tier) |
/// | [`signing_key`](Self::signing_key) | sign every value | [signing](crate::guide::signing) |
/// | [`max_entries`](Self::max_entries) | the size of a `mem://` cache (`memory`) | [testing](crate::guide::testing) |
///
/// A setting whose Cargo feature is off doesn't exist (its documentation
/// names the feature). Its `Debug` output shows the URL with its password
/// replaced by `***`, and no password given with
/// [`password`](Self::password), nor any TLS certificate, key or signing
/// key.
#[derive(Clone)]
#[must_use]
pub struct CacheBuilder {
    url: String,
    /// A client the application made, used instead of `url`.
    client: Option<redis::Client>,
    /// A cluster client the application made, used instead of `url`.
    #[cfg(feature = "cluster")]
    cluster_client: Option<redis::cluster::ClusterClient>,
    credentials: Credentials,
    tls: Tls,
    pub(crate) prefix: String,
    timeouts: Timeouts,
    pub(crate) max_value_size: usize,
    pool_size: u32,
    pub(crate) max_entries: u64,
    local: Option<u64>,
    /// `url` is a comma-separated list of a Redis Cluster's seed nodes.
    #[cfg(feature = "cluster")]
    cluster: bool,
    /// The sentinels and the primary's name, for a primary behind Sentinel.
    #[cfg(feature = "sentinel")]
    sentinel: Option<SentinelSpec>,
    /// The secret that signs every stored value, if any.
    signing_key: Option<SigningKey>,
    /// Values encoded larger than this many bytes are compressed, if set.
    compress_above: Option<usize>,
}

/// The secret of [`CacheBuilder::signing_key`], kept out of `Debug`.
#[derive(Clone)]
struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl CacheBuilder {
    /// The default settings for the store at `url`.
    pub(crate) fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            client: None,
            #[cfg(feature = "cluster")]
            cluster_client: None,
            credentials: Credentials::default(),
            tls: Tls::default(),
            prefix: String::new(),
            timeouts: Timeouts {
                connect: Duration::from_secs(1),
                response: Duration::from_millis(500),
            },
            max_value_size: 16 << 20,
            pool_size: 8,
            max_entries: 100_000,
            local: None,
            #[cfg(feature = "cluster")]
            cluster: false,
            #[cfg(feature = "sentinel")]
            sentinel: None,
            signing_key: None,
            compress_above: None,
        }
    }

    /// Starts configuring a cache on a Redis Cluster, given the URLs of one
    /// or more of its nodes (seed nodes; the others are discovered). Keys
    /// carry their digest as a hash tag (`…:{digest}`), so a value and its
    /// lock live in one slot; `invalidate_all` scans every primary. The
    /// in-process tier (`local`) keeps a tracking connection to every
    /// primary, hears only of writes to the keys it holds, and drops a
    /// primary's entries while that primary's tracking is down or when its
    /// slots move. Several comma-separated URLs given to
    /// [`Cache::builder`] or in `REDIS_CACHED_URL` mean the same. The user
    /// and password (the builder's, else the first URL's) and the TLS
    /// certificates (with `rediss://` nodes) apply to every node.
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// let cache = redis_cached::CacheBuilder::cluster(["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"])
    ///     .prefix("shop:")
    ///     .response_timeout(Duration::from_millis(200))
    ///     .build()
    ///     .unwrap();
    /// # drop(cache);
    /// ```
    ///
    /// Needs the `cluster` feature; without it, several comma-separated
    /// URLs make [`build`](Self::build) fail with a configuration error
    /// that names the feature.
    #[cfg(feature = "cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
    pub fn cluster<S: AsRef<str>>(nodes: impl IntoIterator<Item = S>) -> Self {
        let nodes: Vec<String> = nodes.into_iter().map(|n| n.as_ref().to_owned()).collect();
        Self {
            cluster: true,
            ..Self::new(&nodes.join(","))
        }
    }

    /// Starts configuring a cache on the primary that the `sentinels` (their
    /// `redis://host:port` URLs, port 26379 if none is given) know as
    /// `primary`. Each connection goes to the node the sentinels name at the
    /// time; after a failover, connections to the old primary are dropped
    /// when Sentinel closes them or the node answers `READONLY`, and the
    /// next call connects to the new one (see the [Sentinel guide](crate::guide::sentinel)).
    ///
    /// A user and password in the sentinels' URLs are the sentinels' own
    /// (the same for all); [`username`](Self::username) and
    /// [`password`](Self::password) are the data nodes'. With `rediss://`
    /// sentinels, the data nodes are reached over TLS too, and
    /// `tls_ca` and `tls_client_cert` (the `tls` feature) serve both. The URL form, for `REDIS_CACHED_URL`, is
    /// `redis+sentinel://[user:pass@]host[:port][,host[:port]…]/primary[/db]`.
    ///
    /// ```no_run
    /// let password = std::env::var("REDIS_PASSWORD").unwrap_or_default();
    /// let cache = redis_cached::CacheBuilder::sentinel(
    ///     ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379"],
    ///     "mymaster",
    /// )
    /// .password(password)
    /// .prefix("shop:")
    /// .build()
    /// .unwrap();
    /// # drop(cache);
    /// ```
    #[cfg(feature = "sentinel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sentinel")))]
    pub fn sentinel<S: AsRef<str>>(sentinels: impl IntoIterator<Item = S>, primary: &str) -> Self {
        let sentinels: Vec<String> = sentinels
            .into_iter()
            .map(|s| s.as_ref().to_owned())
            .collect();
        Self {
            sentinel: Some(SentinelSpec {
                sentinels: sentinels.clone(),
                service: primary.to_owned(),
                ..SentinelSpec::default()
            }),
            ..Self::new(&sentinels.join(","))
        }
    }

    /// The ACL user to authenticate as (Redis 6 or later), in place of the
    /// URL's user, if any. Without one, Redis's `default` user.
    ///
    /// ```
    /// let password = std::env::var("REDIS_PASSWORD").unwrap_or_default();
    /// let cache = redis_cached::Cache::builder("redis://127.0.0.1:6379")
    ///     .username("app")
    ///     .password(password)
    ///     .build()
    ///     .unwrap();
    /// # drop(cache);
    /// ```
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.credentials.username = Some(username.into());
        self
    }

    /// The password to authenticate with, in place of the URL's, if any;
    /// keeps it out of a URL that may end up in a log. A wrong one makes
    /// [`Cache::ping`] fail with [`ErrorKind::Auth`](crate::ErrorKind::Auth),
    /// and cached calls run uncached (see the [errors guide](crate::guide::errors)).
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.credentials.password = Some(password.into());
        self
    }

    /// Trusts the CA certificate(s) in `pem` for a `rediss://` URL, in place
    /// of the built-in roots (Mozilla's, from `webpki-roots`): for a Redis
    /// whose certificate a private CA signed. The server's certificate must
    /// name the URL's host (DNS name or IP address). Needs the `tls` feature;
    /// with a `redis://` URL, [`build`](Self::build) fails.
    ///
    /// ```no_run
    /// let ca = std::fs::read("/etc/redis/tls/ca.crt").unwrap();
    /// let cache = redis_cached::Cache::builder("rediss://redis.internal:6380")
    ///     .tls_ca(ca)
    ///     .build()
    ///     .unwrap();
    /// # drop(cache);
    /// ```
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_ca(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.ca = Some(pem.into());
        self
    }

    /// Presents the client certificate (chain) `cert_pem` with its private
    /// key `key_pem` (PKCS#8, PKCS#1 or SEC1) to a Redis that asks for one
    /// (`tls-auth-clients yes`): mutual TLS. Needs the `tls` feature; with a
    /// `redis://` URL, [`build`](Self::build) fails. Neither is ever printed.
    ///
    /// ```no_run
    /// let cache = redis_cached::Cache::builder("rediss://redis.internal:6380")
    ///     .tls_ca(std::fs::read("/etc/redis/tls/ca.crt").unwrap())
    ///     .tls_client_cert(
    ///         std::fs::read("/etc/app/tls/client.crt").unwrap(),
    ///         std::fs::read("/etc/app/tls/client.key").unwrap(),
    ///     )
    ///     .build()
    ///     .unwrap();
    /// # drop(cache);
    /// ```
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_client_cert(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls.client = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// A string put before every key, e.g. `"myapp:"` (default: none).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one attempt to connect may take (default 1 s). While Redis is
    /// unreachable, this bounds the extra time a cached call spends; it is
    /// also how long cached calls skip Redis after it failed, before one of
    /// them tries it again (see [the breaker](crate::guide::errors#the-breaker)).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.connect = timeout;
        self
    }

    /// How long Redis may take to answer one command (default 500 ms).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.response = timeout;
        self
    }

    /// The largest encoded value to store or read, in bytes (default 16 MiB).
    /// Larger results are returned but not cached; larger stored values are
    /// treated as a miss.
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value_size = bytes;
        self
    }

    /// How many connections sync functions may hold at once (default 8).
    /// An in-memory cache has no connections and ignores it. Needs the
    /// `sync` feature (without it, no sync connection is ever made).
    #[cfg(feature = "sync")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sync")))]
    pub fn pool_size(mut self, connections: u32) -> Self {
        self.pool_size = connections.max(1);
        self
    }

    /// The most values an in-memory (`mem://`) cache holds (default 100 000);
    /// past it, the least recently used are evicted. Redis ignores it: bound
    /// Redis with its own `maxmemory` and `maxmemory-policy` settings.
    /// Needs the `memory` feature.
    #[cfg(feature = "memory")]
    #[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.max_entries = entries;
        self
    }

    /// Keeps up to `entries` decoded values in this process, in front of
    /// Redis, for every function of this cache that has no `local = N` of
    /// its own and whose value type is `Clone + Send + Sync + 'static`
    /// (functions generic over their return type are left out). A hit there
    /// costs no round trip and no decoding, only a clone.
    ///
    /// Default: off. A function with `local = N` gets a table of `N` entries
    /// of its own instead, which does not count against `entries`. Values
    /// are kept coherent through Redis client-side caching (Redis 6 or
    /// later): when any client writes or deletes a key, Redis tells this
    /// process, which drops its copy; while that channel is down, calls read
    /// Redis. An in-memory (`mem://`) cache has no separate tier and ignores
    /// this. See the [local tier guide](crate::guide::local_tier).
    ///
    /// ```
    /// let cache = redis_cached::Cache::builder("redis://127.0.0.1:6379")
    ///     .prefix("shop:")
    ///     .local(10_000)
    ///     .build()
    ///     .unwrap();
    /// # drop(cache);
    /// ```
    ///
    /// Needs the `local` feature.
    #[cfg(feature = "local")]
    #[cfg_attr(docsrs, doc(cfg(feature = "local")))]
    pub fn local(mut self, entries: u64) -> Self {
        self.local = (entries > 0).then_some(entries);
        self
    }

    /// Signs every stored value with this secret, and reads only values
    /// signed with it for their key (default: values are not signed).
    ///
    /// Each value written to Redis then carries an HMAC-SHA256 tag over its
    /// key and its bytes. A value read back without a valid tag (written
    /// without the secret, with another secret, copied from another key, or
    /// altered) is treated as a miss: counted in
    /// [`Stats::errors`](crate::Stats::errors), logged, recomputed and
    /// overwritten. This protects against whoever can write to the Redis but
    /// doesn't know the secret planting values the application trusts; it
    /// doesn't hide values from those who can read Redis.
    ///
    /// Use at least 32 random bytes, the same in every process that shares
    /// the cache; [`build`](Self::build) refuses fewer than 16. Changing the
    /// secret turns every existing entry into a miss, overwritten on its next
    /// call. The secret is never printed, logged or put in an error.
    ///
    /// ```
    /// let secret = std::env::var("CACHE_SIGNING_KEY")
    ///     .unwrap_or_else(|_| "an example secret of 32+ bytes!!".to_owned());
    /// let cache = redis_cached::Cache::builder("redis://127.0.0.1:6379")
    ///     .signing_key(secret)
    ///     .build()
    ///     .unwrap();
    /// # drop(cache);
    /// ```
    pub fn signing_key(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.signing_key = Some(SigningKey(secret.into()));
        self
    }

    /// Compresses (LZ4) every value whose encoding is larger than `bytes`,
    /// for every function of this cache (default: no value is compressed).
    ///
    /// Large values of text, JSON-like structs and repeated strings often
    /// shrink 3 to 10 times, so Redis holds less and fewer bytes cross the
    /// network, for a little CPU on each write and read. A value that
    /// doesn't get smaller is stored as it is. A function's own `compress`
    /// wins: `compress = false` never compresses its values, and
    /// `compress = true` compresses them above this threshold, or above
    /// 1 KiB on a cache without one. Values stored before compression was
    /// turned on (or off) still read; [`max_value_size`](Self::max_value_size)
    /// counts a value before compression.
    ///
    /// ```
    /// let cache = redis_cached::Cache::builder("redis://127.0.0.1:6379")
    ///     .compress_above(4096)
    ///     .build()
    ///     .unwrap();
    /// # drop(cache);
    /// ```
    pub fn compress_above(mut self, bytes: usize) -> Self {
        self.compress_above = Some(bytes);
        self
    }

    /// The cache; fails if the URL is malformed, the signing key too short,
    /// or TLS certificates were given that don't parse or go with a URL
    /// other than `rediss://`.
    pub fn build(self) -> Result<Cache, Error> {
        let signer = match &self.signing_key {
            None => None,
            Some(SigningKey(secret)) => Some(Signer::new(secret).ok_or_else(|| {
                Error::from(error::Error::Config(format!(
                    "the signing key is shorter than {MIN_SECRET} bytes; use at least 32 random bytes"
                )))
            })?),
        };
        let backend = self.backend()?;
        #[cfg(feature = "local")]
        let local = self.local_tier(&backend);
        let store = Store::new(backend, self.prefix, self.max_value_size)
            .signed(signer)
            .compressed_above(self.compress_above);
        #[cfg(feature = "local")]
        let store = store.with_local(local);
        Ok(Cache::from_store(store))
    }
}

impl CacheBuilder {
    /// The backend these settings describe; a configuration error if they
    /// contradict each other or need a feature that is off.
    fn backend(&self) -> Result<Backend, Error> {
        #[cfg(feature = "cluster")]
        if let Some(client) = &self.cluster_client {
            if self.credentials.is_set() || self.tls.is_set() || self.local.is_some() {
                return Err(error::Error::Config(
                    "a cache on a redis::cluster::ClusterClient takes its credentials and TLS from the client, and has no in-process tier; don't set them on the builder".to_owned(),
                )
                .into());
            }
            let backend =
                ClusterBackend::with_client(client.clone(), self.timeouts.clone(), self.pool_size);
            return Ok(Backend::Cluster(backend));
        }
        if let Some(client) = &self.client {
            if self.credentials.is_set() || self.tls.is_set() || self.is_cluster() {
                return Err(error::Error::Config(
                    "a cache on a redis::Client takes its credentials, TLS and node from the client; don't set them on the builder".to_owned(),
                )
                .into());
            }
            let backend =
                RedisBackend::with_client(client.clone(), self.timeouts.clone(), self.pool_size);
            return Ok(Backend::Redis(backend));
        }
        if self.url.starts_with(MEMORY_URL) {
            if self.url != MEMORY_URL {
                return Err(error::Error::Config(format!(
                    "{}: an in-memory cache's URL is just {MEMORY_URL:?}; set its size with `max_entries`",
                    redact(&self.url)
                ))
                .into());
            }
            #[cfg(feature = "memory")]
            return Ok(Backend::Memory(MemoryBackend::new(self.max_entries)));
            #[cfg(not(feature = "memory"))]
            return Err(needs_feature("an in-memory cache (`mem://`)", "memory"));
        }
        #[cfg(feature = "sentinel")]
        if let Some(spec) = &self.sentinel {
            let backend = RedisBackend::sentinel(
                spec,
                &self.credentials,
                &self.tls,
                self.timeouts.clone(),
                self.pool_size,
            )?;
            return Ok(Backend::Redis(backend));
        }
        if is_sentinel_url(&self.url) {
            #[cfg(feature = "sentinel")]
            {
                let backend = RedisBackend::sentinel(
                    &SentinelSpec::parse(&self.url)?,
                    &self.credentials,
                    &self.tls,
                    self.timeouts.clone(),
                    self.pool_size,
                )?;
                return Ok(Backend::Redis(backend));
            }
            #[cfg(not(feature = "sentinel"))]
            return Err(needs_feature(
                "a primary behind Sentinel (`redis+sentinel://`)",
                "sentinel",
            ));
        }
        if self.is_cluster() {
            #[cfg(feature = "cluster")]
            {
                let backend = ClusterBackend::new(
                    self.url.split(','),
                    &self.credentials,
                    &self.tls,
                    self.timeouts.clone(),
                    self.pool_size,
                )?;
                return Ok(Backend::Cluster(backend));
            }
            #[cfg(not(feature = "cluster"))]
            return Err(needs_feature(
                "a Redis Cluster (several comma-separated URLs)",
                "cluster",
            ));
        }
        let backend = RedisBackend::new(
            &self.url,
            &self.credentials,
            &self.tls,
            self.timeouts.clone(),
            self.pool_size,
        )?;
        Ok(Backend::Redis(backend))
    }

    /// Whether the settings name a Redis Cluster: [`cluster`](Self::cluster),
    /// or several comma-separated URLs.
    fn is_cluster(&self) -> bool {
        #[cfg(feature = "cluster")]
        if self.cluster {
            return true;
        }
        self.url.contains(',')
    }

    /// The in-process tier of a cache on `backend`, kept coherent by
    /// tracking on its Redis deployment; none on other backends, nor on a
    /// cluster client the application made (see
    /// [`Cache::from_cluster_client`]).
    #[cfg(feature = "local")]
    fn local_tier(&self, backend: &Backend) -> Option<Local> {
        let start = match backend {
            Backend::Redis(redis) => Start::new(redis.target().clone(), redis.timeouts().clone()),
            #[cfg(feature = "cluster")]
            Backend::Cluster(_) if self.cluster_client.is_some() => return None,
            #[cfg(feature = "cluster")]
            Backend::Cluster(cluster) => {
                Start::cluster(cluster.seeds().to_vec(), cluster.timeouts().clone())
            }
            _ => return None,
        };
        Some(Local::new(self.local, start))
    }
}

impl std::fmt::Debug for CacheBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = f.debug_struct("CacheBuilder");
        shown
            .field("url", &redact(&self.url))
            .field("client", &self.client.as_ref().map(|_| "<redis::Client>"))
            .field("credentials", &self.credentials)
            .field("tls", &self.tls)
            .field("prefix", &self.prefix)
            .field("timeouts", &self.timeouts)
            .field("max_value_size", &self.max_value_size)
            .field("pool_size", &self.pool_size)
            .field("max_entries", &self.max_entries)
            .field("local", &self.local)
            .field("signing_key", &self.signing_key)
            .field("compress_above", &self.compress_above);
        #[cfg(feature = "sentinel")]
        shown.field(
            "sentinel",
            &self.sentinel.as_ref().map(|spec| &spec.service),
        );
        #[cfg(feature = "cluster")]
        shown.field("cluster", &self.cluster).field(
            "cluster_client",
            &self.cluster_client.as_ref().map(|_| "<ClusterClient>"),
        );
        shown.finish()
    }
}

#[cfg(all(test, feature = "memory"))]
mod tests {
    use super::*;

    #[test]
    fn the_signing_key_never_shows_in_debug_or_errors() {
        let secret = "hunter2-hunter2-hunter2-hunter2!";
        let builder = Cache::builder("mem://").signing_key(secret);
        let shown = format!("{builder:?} {builder:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(builder.build().is_ok());

        let Err(err) = Cache::builder("mem://").signing_key("hunter2").build() else {
            panic!("a 7-byte key is refused");
        };
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("shorter than 16 bytes"), "{shown}");
    }
}
