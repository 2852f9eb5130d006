//! A primary behind Redis Sentinel: where the connections of a
//! [`RedisBackend`](super::RedisBackend) go ([`Target`]), the sentinels
//! that name the primary ([`SentinelPrimary`], through the `redis` crate's
//! `SentinelClient`), and the `redis+sentinel://` URL.
//!
//! The backend asks the sentinels for the primary each time it connects,
//! and connects again (so asks again) when a connection breaks or the node
//! answers `READONLY`: after a failover, Sentinel turns the old primary into
//! a replica and closes its clients' connections (`CLIENT KILL TYPE normal`,
//! part of every reconfiguration it sends), and a write that still reaches
//! it is refused with `READONLY`. Either way the next connection goes to
//! the primary the sentinels name then.
//!
//! The lookups run on the io runtime, one at a time, where the sentinel
//! connections that `SentinelClient` keeps live (a runtime that shuts down
//! would take them with it); sync calls wait for them there.
//!
//! Without the `sentinel` feature only [`Target::Server`] and [`is_url`]
//! are left: a Sentinel URL is then a configuration error naming the
//! feature (`builder.rs`).

#[cfg(feature = "sentinel")]
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "sentinel")]
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{Client, RedisError, RedisResult};
#[cfg(feature = "sentinel")]
use redis::{ConnectionAddr, IntoConnectionInfo, TlsMode};

#[cfg(feature = "sentinel")]
use super::credentials::Credentials;
#[cfg(feature = "sentinel")]
use super::tls::Tls;
#[cfg(feature = "sentinel")]
use crate::error::{Error, timed_out};
#[cfg(feature = "sentinel")]
use crate::redact::redact;
#[cfg(feature = "sentinel")]
use crate::runtimes::on_io;
#[cfg(all(feature = "sentinel", feature = "sync"))]
use crate::runtimes::on_io_blocking;

/// The schemes of a Sentinel URL: plain, and TLS to sentinels and data nodes.
const SCHEMES: [(&str, &str); 2] = [
    ("redis+sentinel://", "redis"),
    ("rediss+sentinel://", "rediss"),
];

/// A sentinel's port when its address names none.
#[cfg(feature = "sentinel")]
const SENTINEL_PORT: u16 = 26379;

/// Where a Redis backend's connections go.
// One per backend, cloned only to connect: the variants' sizes don't matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub(crate) enum Target {
    /// One server, at a fixed address.
    Server(Client),
    /// Whichever node the sentinels name as the primary at the time.
    #[cfg(feature = "sentinel")]
    Sentinel(Arc<SentinelPrimary>),
}

impl Target {
    /// The client of the node to connect to now; behind Sentinel, found
    /// within `limit`.
    #[cfg_attr(not(feature = "sentinel"), allow(unused_variables))]
    pub(crate) async fn client(&self, limit: Duration) -> RedisResult<Client> {
        match self {
            Self::Server(client) => Ok(client.clone()),
            #[cfg(feature = "sentinel")]
            Self::Sentinel(primary) => primary.lookup(limit).await,
        }
    }

    /// [`client`](Self::client) for a sync call, waiting at most `limit`.
    #[cfg(feature = "sync")]
    #[cfg_attr(not(feature = "sentinel"), allow(unused_variables))]
    pub(crate) fn client_blocking(&self, limit: Duration) -> RedisResult<Client> {
        match self {
            Self::Server(client) => Ok(client.clone()),
            #[cfg(feature = "sentinel")]
            Self::Sentinel(primary) => primary.lookup_blocking(limit),
        }
    }

    /// Whether a connection that got `error` must be replaced: it broke,
    /// or (behind Sentinel) its node is no longer the primary.
    pub(crate) fn is_broken(&self, error: &RedisError) -> bool {
        #[cfg(feature = "sentinel")]
        if matches!(self, Self::Sentinel(_))
            && error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
        {
            return true;
        }
        error.is_unrecoverable_error()
    }
}

/// The sentinels of one primary, asked for its address.
#[cfg(feature = "sentinel")]
pub(crate) struct SentinelPrimary {
    /// Used on the io runtime only, by one lookup at a time.
    client: tokio::sync::Mutex<SentinelClient>,
}

/// What a Sentinel deployment is given as: the sentinels' URLs (`redis://`
/// or `rediss://`, with the sentinels' own user and password, if any) and
/// the name they know the primary by; from a `redis+sentinel://` URL, also
/// the data nodes' user, password and database.
#[cfg(feature = "sentinel")]
#[derive(Clone, Default)]
pub(crate) struct SentinelSpec {
    pub(crate) sentinels: Vec<String>,
    pub(crate) service: String,
    pub(crate) credentials: Credentials,
    pub(crate) db: i64,
}

/// Whether `url` is a Sentinel URL (`redis+sentinel://…`, `rediss+sentinel://…`).
pub(crate) fn is_url(url: &str) -> bool {
    SCHEMES
        .iter()
        .any(|(scheme, _)| starts_with_ignore_case(url, scheme))
}

#[cfg(feature = "sentinel")]
impl SentinelSpec {
    /// Parses `redis+sentinel://[user:pass@]host[:port][,host[:port]…]/service[/db]`
    /// `[?sentinel_username=…&sentinel_password=…]`, or `rediss+sentinel://…`
    /// (TLS to the sentinels and the data nodes). The user and password
    /// before `@` are the data nodes'; a sentinel's port defaults to 26379.
    pub(crate) fn parse(url: &str) -> Result<Self, Error> {
        let shown = redact(url);
        let fail = |what: &str| Error::Config(format!("{shown}: {what}"));
        let (prefix, scheme) = SCHEMES
            .iter()
            .find(|(prefix, _)| starts_with_ignore_case(url, prefix))
            .ok_or_else(|| fail("not a redis+sentinel:// or rediss+sentinel:// URL"))?;
        let rest = &url[prefix.len()..];
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest
            .split_once('/')
            .ok_or_else(|| fail("name the primary after the sentinels: …/mymaster"))?;
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let (service, db) = path.split_once('/').unwrap_or((path, ""));
        if service.is_empty() {
            return Err(fail("name the primary after the sentinels: …/mymaster"));
        }
        // The data nodes' user, password and database, decoded by `redis`.
        let node = format!(
            "redis://{}127.0.0.1/{db}",
            userinfo.map(|u| format!("{u}@")).unwrap_or_default()
        );
        let node = node
            .into_connection_info()
            .map_err(|_| fail("the user, password or database number is malformed"))?;
        let settings = node.redis_settings();
        let mut sentinel_userinfo = (String::new(), String::new());
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            match pair.split_once('=') {
                Some(("sentinel_username", value)) => sentinel_userinfo.0 = value.to_owned(),
                Some(("sentinel_password", value)) => sentinel_userinfo.1 = value.to_owned(),
                _ => {
                    let name = pair.split_once('=').map_or(pair, |(name, _)| name);
                    return Err(fail(&format!(
                        "unknown option {name:?}; a Sentinel URL takes sentinel_username and sentinel_password"
                    )));
                }
            }
        }
        let sentinel_auth = match &sentinel_userinfo {
            (user, pass) if user.is_empty() && pass.is_empty() => String::new(),
            (user, pass) => format!("{user}:{pass}@"),
        };
        let sentinels: Vec<String> = hosts
            .split(',')
            .map(|host| format!("{scheme}://{sentinel_auth}{}", with_port(host.trim())))
            .collect();
        if hosts.trim().is_empty()
            || sentinels
                .iter()
                .any(|s| s.ends_with('@') || s.ends_with("//"))
        {
            return Err(fail(
                "list at least one sentinel: host[:port][,host[:port]…]",
            ));
        }
        Ok(Self {
            sentinels,
            service: service.to_owned(),
            credentials: Credentials {
                username: settings.username().map(str::to_owned),
                password: settings.password().map(str::to_owned),
            },
            db: settings.db(),
        })
    }
}

#[cfg(feature = "sentinel")]
impl SentinelPrimary {
    /// The sentinels of `spec`; `credentials` (given to the builder) replace
    /// the data nodes' user and password of `spec`, and `tls`'s certificates
    /// serve both the sentinels and the data nodes, which speak TLS when the
    /// sentinels' URLs are `rediss://`. Fails, with no secret in the error,
    /// if a URL is malformed, the sentinels' URLs differ in TLS, user or
    /// password, or certificates are given without TLS.
    pub(crate) fn new(
        spec: &SentinelSpec,
        credentials: &Credentials,
        tls: &Tls,
    ) -> Result<Self, Error> {
        let fail = |what: String| Error::Config(format!("Sentinel {:?}: {what}", spec.service));
        if spec.service.is_empty() {
            return Err(fail("name the primary".to_owned()));
        }
        let mut infos = Vec::with_capacity(spec.sentinels.len());
        for url in &spec.sentinels {
            let with_port = default_port(url);
            let info = with_port
                .as_str()
                .into_connection_info()
                .map_err(|e| fail(format!("{}: {e}", redact(url))))?;
            infos.push(info);
        }
        let Some(first) = infos.first() else {
            return Err(fail("list at least one sentinel".to_owned()));
        };
        let tls_mode = match first.addr() {
            ConnectionAddr::TcpTls {
                insecure: false, ..
            } => Some(TlsMode::Secure),
            ConnectionAddr::TcpTls { insecure: true, .. } => Some(TlsMode::Insecure),
            _ => None,
        };
        let auth = |info: &redis::ConnectionInfo| {
            let settings = info.redis_settings();
            (
                settings.username().map(str::to_owned),
                settings.password().map(str::to_owned),
            )
        };
        let same = infos.iter().all(|info| {
            auth(info) == auth(first)
                && matches!(info.addr(), ConnectionAddr::TcpTls { .. }) == tls_mode.is_some()
        });
        if !same {
            return Err(fail(
                "give every sentinel the same scheme (redis:// or rediss://), user and password"
                    .to_owned(),
            ));
        }
        if tls.is_set() && tls_mode.is_none() {
            return Err(fail(
                "tls_ca and tls_client_cert need rediss:// sentinels (rediss+sentinel://)"
                    .to_owned(),
            ));
        }
        let (sentinel_user, sentinel_password) = auth(first);
        let addrs = infos.iter().map(|info| info.addr().clone());
        let config = |e: RedisError| fail(e.to_string());
        let mut builder =
            SentinelClientBuilder::new(addrs, &spec.service, SentinelServerType::Master)
                .map_err(config)?
                .set_client_to_redis_db(spec.db);
        if let Some(user) = sentinel_user {
            builder = builder.set_client_to_sentinel_username(user);
        }
        if let Some(password) = sentinel_password {
            builder = builder.set_client_to_sentinel_password(password);
        }
        let username = credentials
            .username
            .as_ref()
            .or(spec.credentials.username.as_ref());
        let password = credentials
            .password
            .as_ref()
            .or(spec.credentials.password.as_ref());
        if let Some(user) = username {
            builder = builder.set_client_to_redis_username(user);
        }
        if let Some(password) = password {
            builder = builder.set_client_to_redis_password(password);
        }
        if let Some(mode) = tls_mode {
            builder = builder.set_client_to_redis_tls_mode(mode);
            builder = with_certificates(builder, tls).map_err(fail)?;
        }
        let client = builder.build().map_err(config)?;
        Ok(Self {
            client: tokio::sync::Mutex::new(client),
        })
    }

    /// The client of the primary the sentinels name now (a sentinel is
    /// asked, and the node it names must say it is a primary), within `limit`.
    async fn lookup(self: &Arc<Self>, limit: Duration) -> RedisResult<Client> {
        let this = self.clone();
        on_io(async move { this.ask(limit).await }, "Sentinel lookup task").await
    }

    /// [`lookup`](Self::lookup) from a thread that blocks.
    #[cfg(feature = "sync")]
    fn lookup_blocking(self: &Arc<Self>, limit: Duration) -> RedisResult<Client> {
        let this = self.clone();
        let limit_with_hand_off = limit + Duration::from_millis(100);
        let ask = async move { this.ask(limit).await };
        on_io_blocking(ask, Some(limit_with_hand_off), "Sentinel lookup")
    }

    /// Asks the sentinels, on the io runtime, within `limit` (the wait for
    /// another lookup included): one that hangs can't hold up the next.
    async fn ask(&self, limit: Duration) -> RedisResult<Client> {
        let ask = async { self.client.lock().await.async_get_client().await };
        let client = tokio::time::timeout(limit, ask)
            .await
            .unwrap_or_else(|_| Err(timed_out("Sentinel lookup")))?;
        super::tls::prepare(&client);
        Ok(client)
    }
}

/// `builder` with `tls`'s certificates for the sentinels and the data nodes.
#[cfg(feature = "sentinel")]
fn with_certificates(
    builder: SentinelClientBuilder,
    tls: &Tls,
) -> Result<SentinelClientBuilder, String> {
    #[cfg(feature = "tls")]
    {
        super::tls::install_provider();
        if let Some(certificates) = tls.certificates() {
            return Ok(builder
                .set_client_to_sentinel_certificates(certificates.clone())
                .set_client_to_redis_certificates(certificates));
        }
        Ok(builder)
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = (builder, tls);
        Err("rediss:// needs the `tls` feature of redis-cached".to_owned())
    }
}

/// `url` with the sentinel port if it names none (`redis://h` → `redis://h:26379`).
#[cfg(feature = "sentinel")]
fn default_port(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let (userinfo, host) = match authority.rsplit_once('@') {
                Some((userinfo, host)) => (format!("{userinfo}@"), host),
                None => (String::new(), authority),
            };
            format!("{scheme}://{userinfo}{}{path}", with_port(host))
        }
        None => url.to_owned(),
    }
}

/// `host` with `:26379` unless it names a port (`[::1]` and `[::1]:1` too).
#[cfg(feature = "sentinel")]
fn with_port(host: &str) -> String {
    let names_port = match host.rsplit_once(']') {
        Some((_, after)) => after.starts_with(':'),
        None => host.contains(':'),
    };
    if names_port || host.is_empty() {
        host.to_owned()
    } else {
        format!("{host}:{SENTINEL_PORT}")
    }
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

#[cfg(all(test, feature = "sentinel"))]
mod tests {
    use super::*;

    #[test]
    fn parses_the_sentinel_url() {
        let spec = SentinelSpec::parse(
            "redis+sentinel://app:s%40cret@h1,h2:26380,[::1]/mymaster/2?sentinel_password=sp",
        )
        .unwrap();
        assert_eq!(
            spec.sentinels,
            [
                "redis://:sp@h1:26379",
                "redis://:sp@h2:26380",
                "redis://:sp@[::1]:26379"
            ]
        );
        assert_eq!(spec.service, "mymaster");
        assert_eq!(spec.db, 2);
        assert_eq!(spec.credentials.username.as_deref(), Some("app"));
        assert_eq!(spec.credentials.password.as_deref(), Some("s@cret"));

        let tls = SentinelSpec::parse("rediss+sentinel://h1:1/m").unwrap();
        assert_eq!(tls.sentinels, ["rediss://h1:1"]);
        assert_eq!((tls.db, tls.credentials.is_set()), (0, false));
        assert!(is_url("REDIS+SENTINEL://h/m"));
        assert!(!is_url("redis://h"));
    }

    #[test]
    fn refuses_malformed_urls_without_showing_the_password() {
        for url in [
            "redis+sentinel://:hunter2@h1:26379",
            "redis+sentinel://:hunter2@h1:26379/",
            "redis+sentinel://:hunter2@/m",
            "redis+sentinel://:hunter2@h1/m?pass=x",
            "redis+sentinel://:hunter2@h1/m/notadb",
            "redis+sentinel://h1/m?sentinel_password=hunter2&bogus=1",
        ] {
            let Err(error) = SentinelSpec::parse(url) else {
                panic!("{url} is refused");
            };
            let shown = error.to_string();
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
    }

    #[test]
    fn sentinels_must_agree_and_certificates_need_tls() {
        let spec = |sentinels: &[&str]| SentinelSpec {
            sentinels: sentinels.iter().map(|s| (*s).to_owned()).collect(),
            service: "mymaster".to_owned(),
            ..SentinelSpec::default()
        };
        let (none, no_tls) = (Credentials::default(), Tls::default());
        assert!(SentinelPrimary::new(&spec(&["redis://a", "redis://b:1"]), &none, &no_tls).is_ok());
        let Err(mixed) =
            SentinelPrimary::new(&spec(&["redis://:hunter2@a", "redis://b"]), &none, &no_tls)
        else {
            panic!("sentinels with different passwords are refused");
        };
        let shown = mixed.to_string();
        assert!(shown.contains("same scheme"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(SentinelPrimary::new(&spec(&[]), &none, &no_tls).is_err());
    }

    #[test]
    fn readonly_replaces_a_connection_only_behind_sentinel() {
        let readonly = RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly),
            "READONLY You can't write against a read only replica.",
        ));
        let spec = SentinelSpec {
            sentinels: vec!["redis://127.0.0.1:1".to_owned()],
            service: "mymaster".to_owned(),
            ..SentinelSpec::default()
        };
        let primary = SentinelPrimary::new(&spec, &Credentials::default(), &Tls::default());
        let sentinel = Target::Sentinel(Arc::new(primary.unwrap()));
        let server = Target::Server(Client::open("redis://127.0.0.1:1").unwrap());
        assert!(sentinel.is_broken(&readonly));
        assert!(!server.is_broken(&readonly));
        let reset = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(sentinel.is_broken(&reset) && server.is_broken(&reset));
    }

    #[test]
    fn the_default_port_is_sentinels() {
        assert_eq!(default_port("redis://h"), "redis://h:26379");
        assert_eq!(default_port("redis://:p@h/"), "redis://:p@h:26379/");
        assert_eq!(default_port("rediss://h:1"), "rediss://h:1");
        assert_eq!(default_port("redis://[::1]"), "redis://[::1]:26379");
    }
}
