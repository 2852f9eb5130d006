//! [`Pki`]: the certificates of servers that speak only TLS, made here
//! (rcgen): a CA, a server certificate for `127.0.0.1` and `localhost`
//! signed by it, and a client certificate signed by it for mTLS.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use redis::{ClientTlsConfig, TlsCertificates};
use redis_test::utils::TlsFilePaths;

/// A CA and the certificates it signed, in PEM.
#[derive(Clone)]
pub struct Pki {
    pub ca_cert: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
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

    /// Writes the files a server reads (`redis.crt`, `redis.key`, `ca.crt`)
    /// and the client's (`client.crt`, `client.key`, for `redis-cli`) into
    /// `dir`.
    pub fn write_server_files(&self, dir: &Path) -> TlsFilePaths {
        let write = |name: &str, pem: &str| {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("write a certificate");
            path
        };
        write("client.crt", &self.client_cert);
        write("client.key", &self.client_key);
        TlsFilePaths {
            redis_crt: write("redis.crt", &self.server_cert),
            redis_key: write("redis.key", &self.server_key),
            ca_crt: write("ca.crt", &self.ca_cert),
        }
    }

    /// What a `redis` client needs to reach a server of this CA with the
    /// client certificate. Installs rustls's `ring` provider first if the
    /// process has none: like any application that uses `redis` directly
    /// over TLS, a test needs one, and rustls picks one by itself only when
    /// its features name one (tests/tls_provider.rs installs its own first).
    pub fn client_certificates(&self) -> TlsCertificates {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        TlsCertificates {
            client_tls: Some(ClientTlsConfig {
                client_cert: self.client_cert.clone().into_bytes(),
                client_key: self.client_key.clone().into_bytes(),
            }),
            root_cert: Some(self.ca_cert.clone().into_bytes()),
        }
    }
}
