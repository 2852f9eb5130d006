//! TLS (`rediss://`, with the `tls` feature): the certificates a cache's
//! builder was given, and the crypto provider rustls needs.
//!
//! rustls picks its process-wide crypto provider by itself only when exactly
//! one of its provider features (`ring`, `aws-lc-rs`) is compiled in; with
//! none or both it panics on the first connection. The `redis` crate
//! enables none, and an application may well bring `aws-lc-rs` through
//! another dependency, so this crate enables `ring` and installs it as the
//! process default before a `rediss://` client is made, unless the
//! application installed a provider of its own first, which is then used.

#[cfg(feature = "cluster")]
use redis::cluster::ClusterClientBuilder;
use redis::{Client, ConnectionInfo, RedisResult};

/// The certificates for `rediss://` given to the builder, in PEM; `Debug`
/// shows only whether each is set.
#[derive(Clone, Default)]
pub(crate) struct Tls {
    /// The CA to trust in place of the built-in roots.
    #[cfg(feature = "tls")]
    pub(crate) ca: Option<Vec<u8>>,
    /// The certificate (chain) and private key to present to Redis (mTLS).
    #[cfg(feature = "tls")]
    pub(crate) client: Option<(Vec<u8>, Vec<u8>)>,
}

impl Tls {
    /// Whether a CA or a client certificate was given.
    pub(crate) fn is_set(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.ca.is_some() || self.client.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// A client for `info` that trusts and presents these certificates.
    /// Fails if certificates are given for a URL that is not `rediss://`,
    /// or if they don't parse.
    pub(crate) fn client(&self, info: ConnectionInfo) -> RedisResult<Client> {
        #[cfg(feature = "tls")]
        {
            if matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. }) {
                install_provider();
            }
            if let Some(certificates) = self.certificates() {
                return Client::build_with_tls(info, certificates);
            }
        }
        Client::open(info)
    }

    /// These certificates as the `redis` crate takes them, if any is set.
    #[cfg(feature = "tls")]
    pub(crate) fn certificates(&self) -> Option<redis::TlsCertificates> {
        self.is_set().then(|| redis::TlsCertificates {
            client_tls: self
                .client
                .as_ref()
                .map(|(cert, key)| redis::ClientTlsConfig {
                    client_cert: cert.clone(),
                    client_key: key.clone(),
                }),
            root_cert: self.ca.clone(),
        })
    }

    /// Readies the builder of a Redis Cluster client on the seed `nodes`:
    /// installs the provider if a node is `rediss://`, and has every node
    /// connection trust and present these certificates. Fails, with the
    /// reason, if certificates are given for nodes that are not all
    /// `rediss://`.
    #[cfg(feature = "cluster")]
    pub(crate) fn for_cluster<'a>(
        &self,
        builder: ClusterClientBuilder,
        nodes: impl IntoIterator<Item = &'a str>,
    ) -> Result<ClusterClientBuilder, &'static str> {
        #[cfg(feature = "tls")]
        {
            let (tls, plain): (Vec<&str>, Vec<&str>) = nodes
                .into_iter()
                .partition(|node| node.trim_start().starts_with("rediss://"));
            if !tls.is_empty() {
                install_provider();
            }
            if let Some(certificates) = self.certificates() {
                if !plain.is_empty() {
                    return Err(
                        "tls_ca and tls_client_cert need rediss:// URLs for every seed node",
                    );
                }
                return Ok(builder.certs(certificates));
            }
        }
        #[cfg(not(feature = "tls"))]
        let _ = nodes;
        Ok(builder)
    }
}

/// Readies the process for `client`, made by the application: a provider
/// for rustls if it speaks TLS.
pub(crate) fn prepare(client: &Client) {
    #[cfg(feature = "tls")]
    if matches!(
        client.get_connection_info().addr(),
        redis::ConnectionAddr::TcpTls { .. }
    ) {
        install_provider();
    }
    #[cfg(not(feature = "tls"))]
    let _ = client;
}

/// Makes `ring` the process's rustls provider, unless one is installed.
#[cfg(feature = "tls")]
pub(super) fn install_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err: another thread (or the application) installed one just now.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("Tls");
        #[cfg(feature = "tls")]
        {
            let shown = |set: bool| if set { "<redacted>" } else { "none" };
            debug
                .field("ca", &shown(self.ca.is_some()))
                .field("client_cert", &shown(self.client.is_some()));
        }
        debug.finish()
    }
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use redis::IntoConnectionInfo;
    use rustls::crypto::CryptoProvider;

    use super::*;

    /// The one test of this binary that makes a TLS client: the process's
    /// provider is this test's to observe. (That an application's own
    /// provider is kept is tests/tls_provider.rs, a process of its own.)
    #[test]
    fn a_rediss_client_installs_ring_when_no_provider_is_installed() {
        let info = |url: &str| url.into_connection_info().unwrap();
        Tls::default().client(info("redis://127.0.0.1:1")).unwrap();
        assert!(CryptoProvider::get_default().is_none(), "none for redis://");
        Tls::default().client(info("rediss://127.0.0.1:1")).unwrap();
        let installed = CryptoProvider::get_default().expect("installed");
        let ring = rustls::crypto::ring::default_provider();
        assert_eq!(
            format!("{:?}", installed.key_provider),
            format!("{:?}", ring.key_provider),
        );
    }

    #[test]
    fn debug_shows_no_certificate() {
        let tls = Tls {
            ca: Some(b"-----BEGIN CERTIFICATE-----\nQ0E=".to_vec()),
            client: Some((b"Y2VydA==".to_vec(), b"a2V5".to_vec())),
        };
        let printed = format!("{tls:?}");
        assert_eq!(
            printed,
            r#"Tls { ca: "<redacted>", client_cert: "<redacted>" }"#
        );
    }
}
