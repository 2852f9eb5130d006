//! A throwaway Redis Cluster for the cluster tests ([`harness::Cluster`])
//! that also makes caches. Included with `#[path]` by the test files that
//! need it.
#![allow(dead_code, unused_imports)] // each test binary uses its own subset

use redis_cached::{Cache, CacheBuilder};

pub use harness::cluster::{APP_PASSWORD, APP_RULES, APP_USER, Secured};

/// A local Redis Cluster, its processes killed when dropped.
pub struct TestCluster(harness::Cluster);

impl TestCluster {
    /// 3 primaries, no replicas.
    pub fn start() -> Self {
        Self(harness::Cluster::start())
    }

    /// `primaries` primaries with `replicas` replicas each, once every slot
    /// is served and a cluster connection answers.
    pub fn start_with(primaries: u16, replicas: u16) -> Self {
        Self(harness::Cluster::start_with(primaries, replicas))
    }

    /// 3 primaries, no replicas, locked down as `secured` says.
    pub fn start_secured(secured: Secured) -> Self {
        Self(harness::Cluster::start_secured(secured))
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

    /// A fresh cache on this cluster, with one seed node.
    pub fn cache(&self) -> Cache {
        Cache::cluster(&self.nodes[..1]).expect("valid urls")
    }
}

impl std::ops::Deref for TestCluster {
    type Target = harness::Cluster;
    fn deref(&self) -> &harness::Cluster {
        &self.0
    }
}

impl std::ops::DerefMut for TestCluster {
    fn deref_mut(&mut self) -> &mut harness::Cluster {
        &mut self.0
    }
}
