//! Throwaway `redis-server`s that speak only TLS, with certificates made
//! here (rcgen): a CA, a server certificate for `127.0.0.1` and `localhost`
//! signed by it, and a client certificate signed by it for mTLS.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use redis::{ClientTlsConfig, ConnectionAddr, TlsCertificates};
use redis_cached::{Cache, CacheBuilder};
use redis_test::server::RedisServer;
use redis_test::utils::TlsFilePaths;

/// A CA and the certificates it signed, in PEM.
pub struct Pki {
    pub ca_cert: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
}

impl Pki {
    /// A fresh CA, a server certificate for `127.0.0.1` and `localhost`,
    /// and a client certificate.
    pub fn new() -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.distinguished_name
            .push(DnType::CommonName, "redis-cached test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca.self_signed(&ca_key).expect("CA certificate");

        let leaf = |names: Vec<String>, name: &str, usages: &[ExtendedKeyUsagePurpose]| {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(names).expect("params");
            params.distinguished_name.push(DnType::CommonName, name);
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = usages.to_vec();
            let cert = params.signed_by(&key, &ca, &ca_key).expect("certificate");
            (cert.pem(), key.serialize_pem())
        };
        // Also for client authentication: the nodes of a TLS cluster
        // present it to each other on the cluster bus.
        let (server_cert, server_key) = leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            "redis",
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        );
        let (client_cert, client_key) =
            leaf(Vec::new(), "app", &[ExtendedKeyUsagePurpose::ClientAuth]);
        Self {
            ca_cert: ca.pem(),
            server_cert,
            server_key,
            client_cert,
            client_key,
        }
    }
}

/// A `redis-server` listening only on a TLS port, killed when dropped.
pub struct TlsRedis {
    _server: RedisServer,
    /// Holds the certificate files the server reads.
    _dir: tempfile::TempDir,
    url: String,
    pub pki: Pki,
}

impl TlsRedis {
    /// Starts a server with fresh certificates, which asks clients for a
    /// certificate if `client_auth` (`--tls-auth-clients yes`, else `no`),
    /// plus these extra arguments; waits until it answers over TLS.
    pub fn start(client_auth: bool, args: &[&str]) -> Self {
        let pki = Pki::new();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let write = |name: &str, pem: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("write a certificate");
            path
        };
        let paths = TlsFilePaths {
            redis_crt: write("redis.crt", &pki.server_cert),
            redis_key: write("redis.key", &pki.server_key),
            ca_crt: write("ca.crt", &pki.ca_cert),
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let server = RedisServer::new_with_addr_tls_modules_and_spawner(
            ConnectionAddr::TcpTls {
                host: "127.0.0.1".to_owned(),
                port,
                insecure: false,
                tls_params: None,
            },
            None,
            Some(paths),
            client_auth,
            None,
            &[],
            |cmd| {
                cmd.args(args);
                cmd.spawn().expect("start redis-server")
            },
        );
        let redis = Self {
            _server: server,
            _dir: dir,
            url: format!("rediss://127.0.0.1:{port}"),
            pki,
        };
        super::wait_for_ping(|| redis.try_conn());
        redis
    }

    /// The server's `rediss://` URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A builder for a cache on this server that trusts its CA and presents
    /// the client certificate.
    pub fn builder(&self) -> CacheBuilder {
        Cache::builder(&self.url)
            .tls_ca(self.pki.ca_cert.clone())
            .tls_client_cert(self.pki.client_cert.clone(), self.pki.client_key.clone())
    }

    fn try_conn(&self) -> redis::RedisResult<redis::Connection> {
        // Like any application that uses `redis` directly over TLS, this
        // needs a crypto provider; rustls picks one by itself only when its
        // features name one (tests/tls_provider.rs installs its own first).
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let certificates = TlsCertificates {
            client_tls: Some(ClientTlsConfig {
                client_cert: self.pki.client_cert.clone().into_bytes(),
                client_key: self.pki.client_key.clone().into_bytes(),
            }),
            root_cert: Some(self.pki.ca_cert.clone().into_bytes()),
        };
        redis::Client::build_with_tls(self.url.as_str(), certificates)?.get_connection()
    }

    /// A plain connection, for looking at what a cache wrote.
    pub fn conn(&self) -> redis::Connection {
        self.try_conn().expect("connect to the test server")
    }

    /// Every key on the server, sorted.
    pub fn keys(&self) -> Vec<String> {
        super::sorted_keys(&mut self.conn())
    }

    /// `PTTL key`, in milliseconds.
    pub fn pttl(&self, key: &str) -> i64 {
        redis::cmd("PTTL")
            .arg(key)
            .query(&mut self.conn())
            .expect("PTTL")
    }
}
