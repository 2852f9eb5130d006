//! The in-process tier on a Redis Cluster: tracking runs on every primary,
//! so a write on any of them reaches the tier, and losing any primary's
//! tracking connection flushes the tier until it is back.

mod support;
#[path = "support/cluster.rs"]
mod test_cluster;

use redis_cached::{Cache, redis_cached};
use support::{CacheSlot, Calls, eventually};
use test_cluster::TestCluster;

/// The name of the tracking connections.
const TRACKING: &str = "redis-cached-tracking";

static CACHE: CacheSlot = CacheSlot::new();
static CALLS: Calls = Calls::new();

#[redis_cached(ttl = 60, cache = CACHE)]
fn label(id: u64) -> String {
    format!("label {id} #{}", CALLS.next())
}

/// Calls `call` until the tier of `cache` has answered one more time.
fn until_local_hit(cache: &Cache, mut call: impl FnMut()) {
    let before = cache.stats().local_hits;
    eventually("a hit in the in-process tier", || {
        call();
        cache.stats().local_hits > before
    });
}

/// One argument (and its key) per primary, as `(port, id, key)`.
fn one_per_primary(cluster: &TestCluster) -> Vec<(u16, u64, String)> {
    let keys = cluster.keys_of(0..40, |id| {
        label(id);
    });
    let mut chosen: Vec<(u16, u64, String)> = Vec::new();
    for (id, key) in keys.into_iter().enumerate() {
        let port = cluster.primary_of(&key);
        if !chosen.iter().any(|(p, ..)| *p == port) {
            chosen.push((port, id as u64, key));
        }
    }
    assert_eq!(chosen.len(), 3, "keys on every primary: {chosen:?}");
    chosen
}

#[test]
fn tracking_on_every_primary_keeps_the_tier_coherent() {
    let cluster = TestCluster::start();
    CACHE.set(cluster.builder().local(1_000).build().expect("valid urls"));
    let chosen = one_per_primary(&cluster);

    for (port, id, key) in &chosen {
        let first = label(*id);
        until_local_hit(&CACHE, || assert_eq!(label(*id), first));
        assert_eq!(
            cluster.client_ids(*port, TRACKING).len(),
            1,
            "one tracking connection on the primary {port}"
        );
        // A delete on this primary reaches the tier: the body runs again.
        let runs = CALLS.get();
        let _: () = cluster.on_node(*port, redis::cmd("UNLINK").arg(key));
        eventually("the delete heard from its primary", || label(*id) != first);
        assert_eq!(CALLS.get(), runs + 1, "{key} recomputed once");
    }

    // Losing one primary's tracking flushes the whole tier until it is back.
    let (port, id, key) = &chosen[1];
    let value = label(*id);
    until_local_hit(&CACHE, || assert_eq!(label(*id), value));
    let ids = cluster.client_ids(*port, TRACKING);
    let killed: u64 = cluster.on_node(
        *port,
        redis::cmd("CLIENT").arg("KILL").arg("ID").arg(ids[0]),
    );
    assert_eq!(killed, 1);
    // No invalidation can arrive while that connection is down: only a
    // flush of the tier lets this write be seen.
    let _: () = cluster.on_node(*port, redis::cmd("UNLINK").arg(key));
    eventually("the tier flushed and the key recomputed", || {
        label(*id) != value
    });
    eventually("tracking re-established on that primary", || {
        let now = cluster.client_ids(*port, TRACKING);
        now.len() == 1 && now[0] != ids[0]
    });
    let value = label(*id);
    until_local_hit(&CACHE, || assert_eq!(label(*id), value));
    assert_eq!(CACHE.stats().errors, 0);
}
