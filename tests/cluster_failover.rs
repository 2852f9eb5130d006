//! A primary of a 3-primary, 3-replica cluster dies during a load of cached
//! calls, sync and async: no call panics, none returns a wrong value, none
//! hangs past the response timeout plus the connect timeout, and once its
//! replica is promoted the dead primary's keys are hits again, in process
//! too, and a write on the promoted primary reaches the in-process tier.

#[path = "support/load.rs"]
mod load;
mod support;
#[path = "support/cluster.rs"]
mod test_cluster;

use std::time::{Duration, Instant};

use load::Load;
use redis_cached::redis_cached;
use support::CacheSlot;
use test_cluster::TestCluster;

const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// A bound on a hang, not a timing target.
const SLOWEST_ALLOWED: Duration = Duration::from_millis(500 + 500 + 1_000);
const ARGS: u64 = 60;

static LOAD: CacheSlot = CacheSlot::new();
static PROBE: CacheSlot = CacheSlot::new();

fn expected(x: u64) -> u64 {
    x * 7 + 1
}

#[redis_cached(ttl = 600, name = "failover::value", cache = LOAD)]
async fn value_async(x: u64) -> u64 {
    expected(x)
}

#[redis_cached(ttl = 600, name = "failover::value", cache = LOAD)]
fn value_sync(x: u64) -> u64 {
    expected(x)
}

/// The same keys, through a cache whose counters only the probe moves.
#[redis_cached(ttl = 600, name = "failover::value", cache = PROBE)]
fn value_probe(x: u64) -> u64 {
    expected(x)
}

#[test]
fn killing_a_primary_under_load_gives_no_wrong_answer_no_hang_and_hits_after_promotion() {
    let mut cluster = TestCluster::start_with(3, 1);
    let builder = cluster
        .builder()
        .response_timeout(RESPONSE_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT);
    // The load's cache keeps values in process too: its tracking must move
    // to the promoted replica.
    LOAD.set(builder.clone().local(1_000).build().expect("valid urls"));
    PROBE.set(builder.build().expect("valid urls"));

    // Each argument's key, found as the key its first call adds.
    let key_of = cluster.keys_of(0..ARGS, |x| assert_eq!(value_sync(x), expected(x)));
    let victim = cluster.primary_of(&key_of[0]);
    let on_victim: Vec<u64> = (0..ARGS)
        .filter(|&x| cluster.primary_of(&key_of[x as usize]) == victim)
        .collect();
    assert!(
        !on_victim.is_empty() && on_victim.len() < ARGS as usize,
        "{on_victim:?}"
    );
    // Let the replicas catch up with the values just written.
    std::thread::sleep(Duration::from_millis(200));

    let mut load = Load::start(ARGS, value_async, value_sync, expected);
    std::thread::sleep(Duration::from_millis(300));
    let errors_before = LOAD.stats().errors;
    cluster.kill(victim);
    let killed_at = Instant::now();

    // Hits come back for the dead primary's keys once a replica serves them.
    support::eventually_within(
        Duration::from_secs(40),
        Duration::from_millis(200),
        "hits for the dead primary's keys, within 40 s of the kill",
        || {
            let hits = PROBE.stats().hits;
            for &x in &on_victim {
                assert_eq!(value_probe(x), expected(x), "probe for {x}");
            }
            PROBE.stats().hits - hits == on_victim.len() as u64
        },
    );
    let recovered_after = killed_at.elapsed();
    // Every node learns of the promotion by gossip; ask until the one asked has.
    let mut promoted = victim;
    support::eventually("every node knows the promoted replica", || {
        promoted = cluster.primary_of(&key_of[on_victim[0] as usize]);
        promoted != victim
    });
    support::eventually("the load cache's tracking on the promoted replica", || {
        cluster.client_ids(promoted, "redis-cached-tracking").len() == 1
    });
    // Some more load on the new topology.
    std::thread::sleep(Duration::from_millis(300));
    let (calls, slowest) = load.stop();
    let stats = LOAD.stats();
    eprintln!(
        "{calls} calls; hits for the dead primary's keys {recovered_after:?} after the kill; \
         slowest call {slowest:?}; errors {} during the failover; {stats:?}",
        stats.errors - errors_before
    );
    assert!(calls > 100, "the load ran: {calls} calls");
    assert!(
        slowest < SLOWEST_ALLOWED,
        "a call took {slowest:?}, past the response and connect timeouts"
    );
    assert!(stats.hits > 0);
    let x = on_victim[0];
    let local_hits = LOAD.stats().local_hits;
    support::eventually("in-process hits for the dead primary's keys", || {
        assert_eq!(value_sync(x), expected(x));
        LOAD.stats().local_hits > local_hits
    });
    // The promoted primary reports the next write of a key the tier holds:
    // without that, the call would stay an in-process hit and the deleted
    // key would never be stored again.
    let key = &key_of[x as usize];
    let _: () = cluster.on_node(promoted, redis::cmd("UNLINK").arg(key));
    support::eventually("the delete on the promoted primary heard", || {
        assert_eq!(value_sync(x), expected(x));
        cluster.exists(key)
    });
}
