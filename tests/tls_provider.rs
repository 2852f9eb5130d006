//! An application that installs its own rustls crypto provider before it
//! builds a `rediss://` cache keeps it: the cache connects with it, and
//! the crate installs none of its own. A test binary of its own, as the
//! provider is one per process.

mod support;

use rustls::crypto::CryptoProvider;
use support::tls::TlsRedis;

#[tokio::test]
async fn an_applications_own_provider_is_kept() {
    // Recognisable: ring with one cipher suite of each TLS version.
    let mut own = rustls::crypto::ring::default_provider();
    let suites = own.cipher_suites.len();
    own.cipher_suites.retain(|suite| {
        matches!(
            suite.suite(),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
                | rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        )
    });
    assert!(own.cipher_suites.len() < suites);
    let own_suites = own.cipher_suites.len();
    own.install_default()
        .expect("the first provider of this process");

    let redis = TlsRedis::start(true, &[]);
    let cache = redis.builder().build().unwrap();
    cache
        .ping()
        .await
        .expect("ping with the application's provider");
    cache.ping_blocking().expect("ping_blocking too");
    let installed = CryptoProvider::get_default().expect("a provider");
    assert_eq!(
        installed.cipher_suites.len(),
        own_suites,
        "still the application's"
    );
}
