//! Throwaway `redis-server`s that speak only TLS ([`harness::Server`]s
//! started with fresh certificates), and caches that trust them.

use redis_cached::{Cache, CacheBuilder};

pub use harness::Pki;

/// A `redis-server` listening only on a TLS port, killed when dropped.
pub struct TlsRedis {
    server: harness::Server,
    pub pki: Pki,
}

impl TlsRedis {
    /// Starts a server with fresh certificates, which asks clients for a
    /// certificate if `client_auth` (`--tls-auth-clients yes`, else `no`),
    /// plus these extra arguments; waits until it answers over TLS.
    pub fn start(client_auth: bool, args: &[&str]) -> Self {
        let pki = Pki::new();
        let server = harness::Server::builder()
            .tls(&pki, client_auth)
            .args(args)
            .start();
        Self { server, pki }
    }

    /// A builder for a cache on this server that trusts its CA and presents
    /// the client certificate.
    pub fn builder(&self) -> CacheBuilder {
        Cache::builder(self.url())
            .tls_ca(self.pki.ca_cert.clone())
            .tls_client_cert(self.pki.client_cert.clone(), self.pki.client_key.clone())
    }
}

impl std::ops::Deref for TlsRedis {
    type Target = harness::Server;
    fn deref(&self) -> &harness::Server {
        &self.server
    }
}
