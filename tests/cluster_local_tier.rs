//! The in-process tier on a Redis Cluster: default-mode tracking on every
//! primary, each value confirmed over the connection of its slot's primary,
//! so a write on any primary reaches the tiers that hold the key, and only
//! those; losing one primary's tracking connection drops only that
//! primary's entries; a slot that moves is followed.

mod support;
#[path = "support/cluster.rs"]
mod test_cluster;

use redis_cached::{Cache, redis_cached};
use support::{CacheSlot, Calls, eventually};
use test_cluster::TestCluster;

/// The name of the tracking connections.
const TRACKING: &str = "redis-cached-tracking";

/// Calls `call` until the tier of `cache` has answered one more time.
fn until_local_hit(cache: &Cache, mut call: impl FnMut()) {
    let before = cache.stats().local_hits;
    eventually("a hit in the in-process tier", || {
        call();
        cache.stats().local_hits > before
    });
}

/// Whether one call, `call`, was answered by the tier of `cache`.
fn answered_locally(cache: &Cache, call: impl FnOnce()) -> bool {
    let before = cache.stats().local_hits;
    call();
    cache.stats().local_hits > before
}

/// Each argument in `args` with its key and the port of its primary, as
/// `(port, id, key)`, found by calling `call`.
fn located(
    cluster: &TestCluster,
    args: std::ops::Range<u64>,
    call: impl FnMut(u64),
) -> Vec<(u16, u64, String)> {
    let first = args.start;
    let keys = cluster.keys_of(args, call);
    keys.into_iter()
        .enumerate()
        .map(|(i, key)| (cluster.primary_of(&key), first + i as u64, key))
        .collect()
}

/// One of `located` per primary.
fn one_per_primary(located: &[(u16, u64, String)]) -> Vec<(u16, u64, String)> {
    let mut chosen: Vec<(u16, u64, String)> = Vec::new();
    for entry in located {
        if !chosen.iter().any(|(p, ..)| *p == entry.0) {
            chosen.push(entry.clone());
        }
    }
    assert_eq!(chosen.len(), 3, "keys on every primary: {chosen:?}");
    chosen
}

/// The `CLIENT LIST` flags of the clients named [`TRACKING`] on `port`.
fn tracking_flags(cluster: &TestCluster, port: u16) -> Vec<String> {
    let list: String = cluster.on_node(port, redis::cmd("CLIENT").arg("LIST"));
    let named = format!(" name={TRACKING} ");
    list.lines()
        .filter(|line| line.contains(&named))
        .filter_map(|line| Some(line.split(" flags=").nth(1)?.split(' ').next()?.to_owned()))
        .collect()
}

#[test]
fn tracking_on_every_primary_keeps_the_tier_coherent() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn label(id: u64) -> String {
        format!("label {id} #{}", CALLS.next())
    }

    let cluster = TestCluster::start();
    CACHE.set(cluster.builder().local(1_000).build().expect("valid urls"));
    let chosen = one_per_primary(&located(&cluster, 0..40, |id| {
        label(id);
    }));

    for (port, id, key) in &chosen {
        let first = label(*id);
        until_local_hit(&CACHE, || assert_eq!(label(*id), first));
        let flags = tracking_flags(&cluster, *port);
        assert_eq!(flags.len(), 1, "one tracking connection on {port}");
        assert!(
            flags[0].contains('t') && !flags[0].contains('B'),
            "default mode, not broadcast, on {port}: flags={}",
            flags[0]
        );
        // A delete on this primary reaches the tier: the body runs again.
        let runs = CALLS.get();
        let _: () = cluster.on_node(*port, redis::cmd("UNLINK").arg(key));
        eventually("the delete heard from its primary", || label(*id) != first);
        assert_eq!(CALLS.get(), runs + 1, "{key} recomputed once");
    }

    // Losing one primary's tracking drops that primary's entries only.
    let values: Vec<String> = chosen.iter().map(|(_, id, _)| label(*id)).collect();
    for ((_, id, _), value) in chosen.iter().zip(&values) {
        until_local_hit(&CACHE, || assert_eq!(label(*id), *value));
    }
    let (port, id, key) = &chosen[1];
    let ids = cluster.client_ids(*port, TRACKING);
    let killed: u64 = cluster.on_node(
        *port,
        redis::cmd("CLIENT").arg("KILL").arg("ID").arg(ids[0]),
    );
    assert_eq!(killed, 1);
    // No invalidation can arrive while that connection is down: only
    // dropping that primary's entries lets this write be seen.
    let _: () = cluster.on_node(*port, redis::cmd("UNLINK").arg(key));
    eventually(
        "that primary's entries dropped and the key recomputed",
        || label(*id) != values[1],
    );
    for (i, (_, other, _)) in chosen.iter().enumerate().filter(|(i, _)| *i != 1) {
        assert!(
            answered_locally(&CACHE, || assert_eq!(label(*other), values[i])),
            "the entries of the other primaries stay"
        );
    }
    eventually("tracking re-established on that primary", || {
        let now = cluster.client_ids(*port, TRACKING);
        now.len() == 1 && now[0] != ids[0]
    });
    let value = label(*id);
    until_local_hit(&CACHE, || assert_eq!(label(*id), value));
    assert_eq!(CACHE.stats().errors, 0);
}

#[test]
fn a_write_reaches_only_the_tiers_that_hold_the_key() {
    static A: CacheSlot = CacheSlot::new();
    static B: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();

    // Two processes, as two caches with their own tracking connections.
    #[redis_cached(ttl = 60, cache = A, name = "fleet::item")]
    fn item_a(id: u64) -> String {
        format!("item {id} #{}", CALLS.next())
    }

    #[redis_cached(ttl = 60, cache = B, name = "fleet::item")]
    fn item_b(id: u64) -> String {
        format!("item {id} #{}", CALLS.next())
    }

    let cluster = TestCluster::start();
    A.set(cluster.builder().local(100).build().expect("valid urls"));
    B.set(cluster.builder().local(100).build().expect("valid urls"));
    // Two keys on one primary: A holds the first, B the second.
    let keys = located(&cluster, 0..40, |id| {
        item_a(id);
    });
    let (port, a_id, a_key) = keys[0].clone();
    let (_, b_id, b_key) = keys[1..]
        .iter()
        .find(|(p, ..)| *p == port)
        .cloned()
        .expect("two keys on one primary");
    let a_value = item_a(a_id);
    until_local_hit(&A, || assert_eq!(item_a(a_id), a_value));
    let b_value = item_b(b_id);
    until_local_hit(&B, || assert_eq!(item_b(b_id), b_value));
    let (a_before, b_before) = (A.stats().invalidations, B.stats().invalidations);

    // A write of A's key, then one of B's key, on their primary: each
    // tier hears of its own key, and B never of A's (Redis sends pushes
    // in the order of the writes, so A's would be in before B's).
    let _: () = cluster.on_node(port, redis::cmd("UNLINK").arg(&a_key));
    eventually("A hears of its key", || A.stats().invalidations > a_before);
    let _: () = cluster.on_node(port, redis::cmd("UNLINK").arg(&b_key));
    eventually("B hears of its key", || B.stats().invalidations > b_before);
    assert_eq!(
        B.stats().invalidations,
        b_before + 1,
        "B heard of its key only"
    );
    assert_eq!(
        A.stats().invalidations,
        a_before + 1,
        "A heard of its key only"
    );
    eventually("A recomputes", || item_a(a_id) != a_value);
    eventually("B recomputes", || item_b(b_id) != b_value);
}

#[test]
fn a_slot_that_moves_is_followed_and_its_values_confirmed_on_the_new_primary() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn label(id: u64) -> String {
        format!("label {id} #{}", CALLS.next())
    }

    let cluster = TestCluster::start();
    CACHE.set(cluster.builder().local(1_000).build().expect("valid urls"));
    let keys = located(&cluster, 0..10, |id| {
        label(id);
    });
    let (from, id, key) = keys[0].clone();
    let value = label(id);
    until_local_hit(&CACHE, || assert_eq!(label(id), value));
    let to = keys
        .iter()
        .map(|(port, ..)| *port)
        .find(|port| *port != from)
        .expect("another primary");

    // Moves the key's slot from `from` to `to`, as `redis-cli --cluster
    // reshard` does, one slot at a time.
    let slot: u16 = cluster.on_node(from, redis::cmd("CLUSTER").arg("KEYSLOT").arg(&key));
    let id_of = |port: u16| -> String { cluster.on_node(port, redis::cmd("CLUSTER").arg("MYID")) };
    let (from_id, to_id) = (id_of(from), id_of(to));
    let setslot = |port: u16, how: &str, node: &str| {
        let _: () = cluster.on_node(
            port,
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg(how)
                .arg(node),
        );
    };
    setslot(to, "IMPORTING", &from_id);
    setslot(from, "MIGRATING", &to_id);
    let _: () = cluster.on_node(
        from,
        redis::cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(to)
            .arg("")
            .arg(0)
            .arg(5_000)
            .arg("KEYS")
            .arg(&key),
    );
    let ports: Vec<u16> = (cluster.nodes.iter())
        .filter_map(|node| node.rsplit(':').next()?.parse().ok())
        .collect();
    for port in ports {
        setslot(port, "NODE", &to_id);
    }
    assert_eq!(cluster.primary_of(&key), to);

    // Answered right all along (the value moved with the key); in the tier
    // again once confirmed over the new primary's tracking connection.
    until_local_hit(&CACHE, || assert_eq!(label(id), value));
    assert_eq!(CALLS.get(), 10, "the moved value was not recomputed");
    // That connection reports the key's next write.
    let _: () = cluster.on_node(to, redis::cmd("UNLINK").arg(&key));
    eventually("the delete heard from the new primary", || {
        label(id) != value
    });
    assert_eq!(CACHE.stats().errors, 0);
}
