//! The cluster rows: ours on a local Redis Cluster of 3 primaries (started
//! here by the workspace's test harness, all on this machine) against ours on the one
//! server of the other rows, `u64` values: a hit and a miss (async and sync,
//! one caller), and 64 tasks' hits per second. Ratio = cluster / one server.

use std::marker::PhantomData;
use std::time::Duration;

use redis_cached::{Cache, redis_cached};

use super::{
    AsyncCall, Bench, BenchError, CACHE, Kind, LATENCY_ROUND, OursAsync, OursSync, ROUNDS, Samples,
    Slot, Small, SyncCall, Target, Unit, calls_for, check, counted, hits_per_sec, small, time_sync,
    turns,
};

/// Ours on the cluster, set by [`start`]: if it can't be built the run
/// fails, rather than time another cache under the cluster rows' name.
static CLUSTER: Slot = Slot::new();

#[redis_cached(ttl = 600, cache = CLUSTER)]
async fn cluster_async_small(id: u64) -> u64 {
    small(id)
}

#[redis_cached(ttl = 600, cache = CLUSTER)]
fn cluster_sync_small(id: u64) -> u64 {
    small(id)
}

#[derive(Clone, Copy)]
struct ClusterAsync;

impl AsyncCall<u64> for ClusterAsync {
    async fn call(&mut self, id: u64) -> Result<u64, BenchError> {
        Ok(cluster_async_small(id).await)
    }
}

struct ClusterSync;

impl SyncCall<u64> for ClusterSync {
    fn call(&mut self, id: u64) -> Result<u64, BenchError> {
        Ok(cluster_sync_small(id))
    }
}

/// Starts the cluster (3 primaries, serving every slot) and our cache on
/// it; the cluster stops when the returned value is dropped.
pub(super) fn start() -> Result<harness::Cluster, BenchError> {
    let cluster = harness::Cluster::start();
    CLUSTER.set(
        "ours on the cluster",
        Cache::builder(&cluster.url()).prefix("ours-cluster:"),
    )?;
    Ok(cluster)
}

impl Bench {
    /// The cluster rows; [`start`] must have run.
    pub(super) fn cluster(&mut self) -> Result<(), BenchError> {
        harness::retry(Duration::from_secs(20), Duration::from_millis(100), || {
            self.one.block_on(CLUSTER.ping())
        })
        .map_err(|e| format!("ours on the cluster: ping: {e}"))?;
        for kind in [Kind::Hit, Kind::Miss] {
            self.cluster_latency(kind)?;
        }
        self.cluster_throughput(64)
    }

    fn cluster_round(
        &mut self,
        kind: Kind,
        n: u64,
        warm_up: bool,
        turn: usize,
        s: &mut [Samples; 4],
    ) -> Result<(), BenchError> {
        let contestants: [(&str, &Cache); 4] = [
            ("ours async, cluster", &CLUSTER),
            ("ours async, one server", &CACHE),
            ("ours sync, cluster", &CLUSTER),
            ("ours sync, one server", &CACHE),
        ];
        for i in turns(turn, contestants.len()) {
            let (who, cache) = contestants[i];
            let ids = self.ids(kind, n);
            let before = cache.stats();
            let (t, v) = match i {
                0 => self.timed(&mut ClusterAsync, ids)?,
                1 => self.timed(&mut OursAsync::<Small>(PhantomData), ids)?,
                2 => time_sync(&mut ClusterSync, ids)?,
                _ => time_sync(&mut OursSync::<Small>(PhantomData), ids)?,
            };
            check::<Small>(who, ids.last(), &v)?;
            if !warm_up {
                counted(who, kind, n, before, cache.stats())?;
            }
            s[i].push(t);
        }
        if kind == Kind::Miss {
            self.clean_up()?;
            self.one
                .block_on(cluster_async_small_invalidate_all())
                .map_err(|e| format!("cluster clean-up: {e}"))?;
        }
        Ok(())
    }

    fn cluster_latency(&mut self, kind: Kind) -> Result<(), BenchError> {
        let mut warm: [Samples; 4] = Default::default();
        self.cluster_round(kind, 20, true, 0, &mut warm)?;
        let per_call = Duration::from_secs_f64(warm[0].median());
        let max = match kind {
            Kind::Hit => 100_000,
            Kind::Miss => 2_000,
        };
        let n = calls_for(LATENCY_ROUND, per_call, max);
        let mut s: [Samples; 4] = Default::default();
        for turn in 0..ROUNDS {
            self.cluster_round(kind, n, false, turn, &mut s)?;
        }
        let [cluster, one, cluster_sync, one_sync] = s.each_mut().map(Samples::median);
        let row = match kind {
            Kind::Hit => "cluster hit",
            Kind::Miss => "cluster miss",
        };
        let t = &mut self.table;
        let l = Unit::Latency;
        t.line(
            row,
            "u64",
            "async: cluster / one server",
            l,
            cluster,
            one,
            Target::None,
        );
        t.line(
            row,
            "u64",
            "sync: cluster / one server",
            l,
            cluster_sync,
            one_sync,
            Target::None,
        );
        Ok(())
    }

    fn cluster_throughput(&mut self, tasks: usize) -> Result<(), BenchError> {
        let rt = &self.two;
        let mut s: [Samples; 2] = Default::default();
        for round in 0..=ROUNDS {
            let mut rates = [0.0; 2];
            for who in turns(round, 2) {
                rates[who] = if who == 0 {
                    rt.block_on(hits_per_sec("ours async, cluster", &ClusterAsync, tasks))?
                } else {
                    let one = OursAsync::<Small>(PhantomData);
                    rt.block_on(hits_per_sec("ours async, one server", &one, tasks))?
                };
            }
            if round > 0 {
                for (samples, rate) in s.iter_mut().zip(rates) {
                    samples.0.push(rate);
                }
            }
        }
        let [cluster, one] = s.each_mut().map(Samples::median);
        self.table.line(
            "cluster hits/s",
            &format!("u64, {tasks} tasks"),
            "async: cluster / one server",
            Unit::Throughput,
            cluster,
            one,
            Target::None,
        );
        Ok(())
    }
}

/// Our counters on the cluster, for the summary.
pub(super) fn stats() -> redis_cached::Stats {
    CLUSTER.get().map(Cache::stats).unwrap_or_default()
}
