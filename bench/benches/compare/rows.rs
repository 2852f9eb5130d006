//! The rows: each runs its contestants in interleaved rounds and prints its
//! lines; what every row shares (runtimes, connections, the table) is
//! [`Bench`].

use std::collections::HashSet;
use std::hint::black_box;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cached::ConcurrentCachedAsync;
use redis::Commands;
use redis::aio::MultiplexedConnection;
use redis_cached::__private::{Always, Shape, Spec, digest, values};
use tokio::runtime::Runtime;

use super::{
    AsyncCall, BenchError, CACHE, Cached, CachedCsc, CachedTasks, HAND_MISSES, HIT_ID, HandAsync,
    HandSync, Ids, LATENCY_ROUND, LOCAL, OursAsync, OursLocal, OursSigned, OursSync, ROUNDS,
    SIGNED, Samples, Size, Small, Table, Target, Unit, cached_store, calls_for, chart, check,
    counted, hand_counted, hits_per_sec, time_async, time_sync, turns, warm_csc, warm_local,
    xxh3_digest,
};

/// The contestants of a hit or miss round, by their place in its samples.
const CONTESTANTS: [&str; 6] = [
    "hand-written async",
    "ours async",
    "cached",
    "ours sync",
    "hand-written sync",
    "ours signed",
];

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Hit,
    Miss,
}

/// Everything the rows share.
pub(super) struct Bench {
    /// A current-thread runtime for the latency rows: a call, its
    /// connection's driver and the timing loop share one thread, so no row
    /// depends on which worker a task happened to land on.
    pub(super) one: Runtime,
    /// The 2-worker runtime of the throughput rows.
    pub(super) two: Runtime,
    /// The hand-written pattern's connection on `one`.
    pub(super) conn: MultiplexedConnection,
    /// Its connection on `two`.
    pub(super) conn_two: MultiplexedConnection,
    pub(super) sync_conn: redis::Connection,
    /// For cleaning up after misses.
    pub(super) admin: redis::Connection,
    /// Keys that existed before the miss rows; everything else is a miss's.
    pub(super) keep: HashSet<String>,
    pub(super) next_id: u64,
    pub(super) table: Table,
}

impl Bench {
    pub(super) fn fresh(&mut self, n: u64) -> Ids {
        let ids = Ids {
            first: self.next_id,
            n,
            fresh: true,
        };
        self.next_id += n;
        ids
    }

    pub(super) fn ids(&mut self, kind: Kind, n: u64) -> Ids {
        match kind {
            Kind::Hit => Ids::hit(n),
            Kind::Miss => self.fresh(n),
        }
    }

    /// Deletes the keys the misses wrote.
    /// After a contestant's miss round, deletes what it stored, so that each
    /// contestant's misses meet the server as the first one's did (writing and
    /// freeing 64 KiB values changes what the next writer's `SET` costs the
    /// server, whatever the client).
    pub(super) fn settle(&mut self, kind: Kind) -> Result<(), BenchError> {
        match kind {
            Kind::Miss => self.clean_up(),
            Kind::Hit => Ok(()),
        }
    }

    pub(super) fn clean_up(&mut self) -> Result<(), BenchError> {
        let keys: Vec<String> = self.admin.keys("*")?;
        let gone: Vec<&String> = keys.iter().filter(|k| !self.keep.contains(*k)).collect();
        if !gone.is_empty() {
            let () = redis::cmd("DEL").arg(&gone).query(&mut self.admin)?;
        }
        Ok(())
    }

    /// Times one round of `c` on the current-thread runtime.
    pub(super) fn timed<V, C: AsyncCall<V>>(
        &self,
        c: &mut C,
        ids: Ids,
    ) -> Result<(Duration, V), BenchError> {
        self.one.block_on(time_async(c, ids))
    }

    /// Runs one round of every contestant of a hit or miss row, and checks
    /// that each call was a hit (or a miss); `warm_up`: a hit round's first
    /// calls may miss. The contestants take turns at going first: round
    /// `turn` starts with contestant `turn` (modulo their number), so that
    /// each runs in each place equally often. Where a contestant ran
    /// decided a row once: the 64 KiB async miss measured 1.46 of
    /// hand-written with hand-written first in every round, and 0.83 with
    /// ours first.
    pub(super) fn round<S: Size>(
        &mut self,
        kind: Kind,
        n: u64,
        warm_up: bool,
        turn: usize,
        s: &mut [Samples; 6],
    ) -> Result<(), BenchError> {
        let count = if S::SIGNED { 6 } else { 5 };
        for who in turns(turn, count) {
            let ids = self.ids(kind, n);
            let t = self.contestant::<S>(who, kind, ids, warm_up)?;
            s[who].push(t);
            self.settle(kind)?;
        }
        Ok(())
    }

    /// One contestant's turn in a round, timed: 0 hand-written async, 1 ours
    /// async, 2 `cached`, 3 ours sync, 4 hand-written sync, 5 ours signed.
    fn contestant<S: Size>(
        &mut self,
        who: usize,
        kind: Kind,
        ids: Ids,
        warm_up: bool,
    ) -> Result<Duration, BenchError> {
        let (n, name) = (ids.n, CONTESTANTS[who]);
        let (t, v) = match who {
            0 => {
                let mut hand = HandAsync::<S> {
                    conn: self.conn.clone(),
                    size: PhantomData,
                };
                let misses = HAND_MISSES.load(Ordering::Relaxed);
                let (t, v) = self.timed(&mut hand, ids)?;
                if !warm_up {
                    hand_counted(name, kind, n, misses)?;
                }
                (t, v)
            }
            1 => {
                let before = CACHE.stats();
                let (t, v) = self.timed(&mut OursAsync::<S>(PhantomData), ids)?;
                if !warm_up {
                    counted(name, kind, n, before, CACHE.stats())?;
                }
                (t, v)
            }
            2 => self.timed(&mut Cached::<S>(PhantomData), ids)?,
            3 => {
                let before = CACHE.stats();
                let (t, v) = time_sync(&mut OursSync::<S>(PhantomData), ids)?;
                if !warm_up {
                    counted(name, kind, n, before, CACHE.stats())?;
                }
                (t, v)
            }
            4 => {
                let mut hand = HandSync::<S> {
                    conn: &mut self.sync_conn,
                    size: PhantomData,
                };
                let misses = HAND_MISSES.load(Ordering::Relaxed);
                let (t, v) = time_sync(&mut hand, ids)?;
                if !warm_up {
                    hand_counted(name, kind, n, misses)?;
                }
                (t, v)
            }
            _ => {
                let before = SIGNED.stats();
                let (t, v) = self.timed(&mut OursSigned::<S>(PhantomData), ids)?;
                if !warm_up {
                    counted(name, kind, n, before, SIGNED.stats())?;
                }
                (t, v)
            }
        };
        check::<S>(name, ids.last(), &v)?;
        Ok(t)
    }

    /// The hit or miss lines of one value size.
    pub(super) fn latency<S: Size>(&mut self, kind: Kind) -> Result<(), BenchError> {
        // Warm up (a hit row's first call stores the value) and size the rounds
        // on the hand-written async call.
        let mut warm: [Samples; 6] = Default::default();
        self.round::<S>(kind, 20, true, 0, &mut warm)?;
        let per_call = Duration::from_secs_f64(warm[0].median());
        let max = match kind {
            Kind::Hit => 100_000,
            Kind::Miss => S::MISSES_PER_ROUND,
        };
        let n = calls_for(LATENCY_ROUND, per_call, max);
        self.round::<S>(kind, n, true, 0, &mut warm)?;

        let mut s: [Samples; 6] = Default::default();
        for turn in 0..ROUNDS {
            self.round::<S>(kind, n, false, turn, &mut s)?;
        }
        let [hand, ours, cached, ours_sync, hand_sync, signed] = s.each_mut().map(Samples::median);
        chart::latency(kind, S::LABEL, [hand, ours, cached]);
        let (row, target) = match kind {
            Kind::Hit => ("hit", 1.05),
            Kind::Miss => ("miss", 1.10),
        };
        let t = &mut self.table;
        let l = Unit::Latency;
        t.line(
            row,
            S::LABEL,
            "async / hand-written async",
            l,
            ours,
            hand,
            Target::AtMost(target),
        );
        t.line(
            row,
            S::LABEL,
            "async / cached",
            l,
            ours,
            cached,
            Target::None,
        );
        t.line(
            row,
            S::LABEL,
            "sync / hand-written sync",
            l,
            ours_sync,
            hand_sync,
            Target::AtMost(target),
        );
        if S::SIGNED {
            t.line(
                row,
                S::LABEL,
                "signed async / async",
                l,
                signed,
                ours,
                Target::None,
            );
        }
        Ok(())
    }

    /// One call's key digest for an argument of this size: ours (BLAKE3)
    /// against key format 2's xxh3-128 over the same bytes.
    pub(super) fn key_digest<S: Size>(&mut self) -> Result<(), BenchError> {
        static SHAPE: Shape = Shape::new();
        static SPEC: Spec = Spec::new("bench::key_digest", 600_000, &SHAPE);
        let arg = S::make(HIT_ID);
        let values = values::<Always, S::V>();
        let blake3 = || digest(&SPEC, values, |k| k.arg(black_box(&arg)));
        let xxh3 = || xxh3_digest::<S::V, S::V>("bench::key_digest", black_box(&arg));
        // Size rounds on a first pass, then interleave.
        let started = Instant::now();
        for _ in 0..1000 {
            black_box(blake3().into_digest().map_err(|e| format!("digest: {e}"))?);
        }
        let per_call = started.elapsed() / 1000;
        let n = calls_for(LATENCY_ROUND, per_call, 1_000_000);
        let mut s: [Samples; 2] = Default::default();
        for turn in 0..ROUNDS {
            for who in turns(turn, 2) {
                let started = Instant::now();
                for _ in 0..n {
                    if who == 0 {
                        black_box(blake3().into_digest().map_err(|e| format!("digest: {e}"))?);
                    } else {
                        black_box(xxh3());
                    }
                }
                s[who].push(started.elapsed() / n as u32);
            }
        }
        let [ours, old] = s.each_mut().map(Samples::median);
        self.table.line(
            "key digest",
            S::LABEL,
            "BLAKE3 / xxh3-128 (key format 2)",
            Unit::Latency,
            ours,
            old,
            Target::None,
        );
        Ok(())
    }

    /// Hits/s of `u64` values with `tasks` concurrent tasks.
    pub(super) fn throughput(&mut self, tasks: usize) -> Result<(), BenchError> {
        let hand = HandAsync::<Small> {
            conn: self.conn_two.clone(),
            size: PhantomData,
        };
        let ours = OursAsync::<Small>(PhantomData);
        let theirs = CachedTasks;
        let rt = &self.two;
        let mut s: [Samples; 3] = Default::default();
        for round in 0..=ROUNDS {
            // Taking turns at going first, as in `round`.
            let mut rates = [0.0; 3];
            for who in turns(round, 3) {
                rates[who] = match who {
                    0 => rt.block_on(hits_per_sec("hand-written async", &hand, tasks))?,
                    1 => rt.block_on(hits_per_sec("ours async", &ours, tasks))?,
                    _ => rt.block_on(hits_per_sec("cached", &theirs, tasks))?,
                };
            }
            // Round 0 warms up.
            if round > 0 {
                for (samples, rate) in s.iter_mut().zip(rates) {
                    samples.0.push(rate);
                }
            }
        }
        let [hand, ours, cached] = s.each_mut().map(Samples::median);
        chart::throughput(tasks, [hand, ours, cached]);
        let row = match tasks {
            1 => "hits/s 1 task".to_owned(),
            n => format!("hits/s {n} tasks"),
        };
        let (vs_hand, vs_cached) = if tasks == 64 {
            (Target::AtLeast(0.95), Target::AtLeast(1.0))
        } else {
            (Target::None, Target::None)
        };
        let t = &mut self.table;
        let u = Unit::Throughput;
        t.line(
            &row,
            Small::LABEL,
            "async / hand-written async",
            u,
            ours,
            hand,
            vs_hand,
        );
        t.line(
            &row,
            Small::LABEL,
            "async / cached",
            u,
            ours,
            cached,
            vs_cached,
        );
        Ok(())
    }

    /// Our in-process tier against `cached` with client-side caching.
    pub(super) fn in_process<S: Size>(&mut self) -> Result<(), BenchError> {
        let rt = &self.one;
        let mut ours = OursLocal::<S>(PhantomData);
        rt.block_on(warm_local::<S>())?;

        // Set through another store: a store with client-side caching keeps
        // answering `None` after its own set (the set's pipelined GET of the
        // old value stays in its reply cache). Then warm its reply cache.
        let prefix = format!("cached-csc:{}:", S::KEY);
        let mut theirs = rt.block_on(async {
            cached_store::<S::V>(&prefix, false)
                .await
                .async_cache_set(HIT_ID, S::make(HIT_ID))
                .await
                .map_err(|e| format!("cached set: {e}"))?;
            let theirs = CachedCsc {
                store: cached_store::<S::V>(&prefix, true).await,
            };
            warm_csc(&theirs).await?;
            Ok::<_, BenchError>(theirs)
        })?;

        let (per_call, _) = self.timed(&mut ours, Ids::hit(1000))?;
        let n = calls_for(LATENCY_ROUND, per_call, 1_000_000);
        let mut s: [Samples; 2] = Default::default();
        for turn in 0..ROUNDS {
            let ids = Ids::hit(n);
            for who in turns(turn, 2) {
                let t = if who == 0 {
                    let before = LOCAL.stats();
                    let (t, v) = self.timed(&mut ours, ids)?;
                    check::<S>("ours in-process", ids.last(), &v)?;
                    let local_hits = LOCAL.stats().local_hits - before.local_hits;
                    if local_hits != n {
                        let error =
                            format!("ours in-process: {local_hits} of {n} hits were in process");
                        return Err(error.into());
                    }
                    t
                } else {
                    let (t, v) = self.timed(&mut theirs, ids)?;
                    check::<S>("cached + client-side caching", ids.last(), &v)?;
                    t
                };
                s[who].push(t);
            }
        }
        let [ours, theirs] = s.each_mut().map(Samples::median);
        self.table.line(
            "in-process hit",
            S::LABEL,
            "local / cached + client-side caching",
            Unit::Latency,
            ours,
            theirs,
            Target::AtMost(0.5),
        );
        Ok(())
    }
}
