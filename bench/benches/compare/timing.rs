//! Timing and its statistics: a round of calls timed per call, the median
//! of the rounds, how many calls make a round, hits per second of many
//! tasks, the checks that each round returned the right values and counted
//! the right hits or misses, and the warm-ups that wait for a hit.

use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redis_cached::Stats;
use serde::{Serialize, de::DeserializeOwned};

use super::{
    AsyncCall, BenchError, CachedCsc, HAND_MISSES, HIT_ID, Kind, LOCAL, Size, SyncCall, small,
};

/// Interleaved rounds per row.
pub(super) const ROUNDS: usize = 15;
/// About how long one contestant's round of a latency row takes.
pub(super) const LATENCY_ROUND: Duration = Duration::from_millis(30);
/// How long a warm-up may wait for the hits it needs.
const WARM_UP: Duration = Duration::from_secs(10);
/// How long one contestant's round of a throughput row lasts.
pub(super) const THROUGHPUT_ROUND: Duration = Duration::from_millis(100);

// ---------------------------------------------------------------------------
// Timing

/// The arguments of one round: `n` calls with `first`, or with `first..first + n`.
#[derive(Clone, Copy)]
pub(super) struct Ids {
    pub(super) first: u64,
    pub(super) n: u64,
    pub(super) fresh: bool,
}

impl Ids {
    /// `n` calls with the hit argument.
    pub(super) fn hit(n: u64) -> Self {
        Self {
            first: HIT_ID,
            n,
            fresh: false,
        }
    }

    pub(super) fn id(self, i: u64) -> u64 {
        if self.fresh {
            self.first + i
        } else {
            self.first
        }
    }

    pub(super) fn last(self) -> u64 {
        self.id(self.n - 1)
    }
}

/// Time per call over one round, and the round's last value.
pub(super) async fn time_async<V, C: AsyncCall<V>>(
    c: &mut C,
    ids: Ids,
) -> Result<(Duration, V), BenchError> {
    let started = Instant::now();
    let mut last = None;
    for i in 0..ids.n {
        last = Some(black_box(c.call(ids.id(i)).await?));
    }
    let elapsed = started.elapsed();
    Ok((elapsed / ids.n as u32, last.ok_or("an empty round")?))
}

/// [`time_async`] for a sync contestant.
pub(super) fn time_sync<V, C: SyncCall<V>>(
    c: &mut C,
    ids: Ids,
) -> Result<(Duration, V), BenchError> {
    let started = Instant::now();
    let mut last = None;
    for i in 0..ids.n {
        last = Some(black_box(c.call(ids.id(i))?));
    }
    let elapsed = started.elapsed();
    Ok((elapsed / ids.n as u32, last.ok_or("an empty round")?))
}

/// Fails unless `value` is what `S` computes for `id`.
pub(super) fn check<S: Size>(who: &str, id: u64, value: &S::V) -> Result<(), BenchError> {
    if *value == S::make(id) {
        Ok(())
    } else {
        Err(format!("{who} returned a wrong {} for {id}", S::LABEL).into())
    }
}

/// The order of `count` contestants in round `turn`: each round starts one
/// contestant later than the one before (0 1 2, 1 2 0, 2 0 1, …), so that
/// each runs in each place of a round as often as the others.
pub(super) fn turns(turn: usize, count: usize) -> impl Iterator<Item = usize> {
    (0..count).map(move |place| (turn + place) % count)
}

/// How many calls make a round of about `round`, at `per_call` each.
pub(super) fn calls_for(round: Duration, per_call: Duration, max: u64) -> u64 {
    let n = round.as_secs_f64() / per_call.as_secs_f64().max(1e-9);
    (n as u64).clamp(5, max)
}

/// The median; NaN for a contestant that didn't run (no signed 64 KiB rows).
pub(super) fn median(samples: &mut [f64]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// A contestant's samples (seconds per call, or calls per second).
#[derive(Default)]
pub(super) struct Samples(pub(super) Vec<f64>);

impl Samples {
    pub(super) fn push(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64());
    }

    pub(super) fn median(&mut self) -> f64 {
        median(&mut self.0)
    }
}

/// Fails unless `n` calls of ours counted `n` hits (or misses) and no error.
pub(super) fn counted(
    who: &str,
    kind: Kind,
    n: u64,
    before: Stats,
    after: Stats,
) -> Result<(), BenchError> {
    let (what, counted) = match kind {
        Kind::Hit => ("hits", after.hits - before.hits),
        Kind::Miss => ("misses", after.misses - before.misses),
    };
    let errors = after.errors - before.errors;
    if counted == n && errors == 0 {
        Ok(())
    } else {
        Err(format!("{who}: {n} calls counted {counted} {what} and {errors} errors").into())
    }
}

/// Fails unless `n` hand-written calls missed `n` times (misses) or never (hits).
pub(super) fn hand_counted(
    who: &str,
    kind: Kind,
    n: u64,
    misses_before: u64,
) -> Result<(), BenchError> {
    let misses = HAND_MISSES.load(Ordering::Relaxed) - misses_before;
    let expected = if kind == Kind::Miss { n } else { 0 };
    if misses == expected {
        Ok(())
    } else {
        Err(format!("{who}: {n} calls missed {misses} times, not {expected}").into())
    }
}

/// `tasks` tasks calling `c` for [`THROUGHPUT_ROUND`]; the `u64` hits per second.
pub(super) async fn hits_per_sec<C>(
    who: &'static str,
    c: &C,
    tasks: usize,
) -> Result<f64, BenchError>
where
    C: AsyncCall<u64> + Clone + Send + 'static,
{
    let started = Instant::now();
    let deadline = started + THROUGHPUT_ROUND;
    let expected = small(HIT_ID);
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let mut c = c.clone();
            tokio::spawn(async move {
                let mut calls = 0_u64;
                while Instant::now() < deadline {
                    if c.call(HIT_ID).await? != expected {
                        return Err(BenchError(format!("{who} returned a wrong u64")));
                    }
                    calls += 1;
                }
                Ok(calls)
            })
        })
        .collect();
    let mut calls = 0;
    for handle in handles {
        calls += handle
            .await
            .map_err(|e| format!("{who}: a task failed: {e}"))??;
    }
    Ok(calls as f64 / started.elapsed().as_secs_f64())
}

/// Calls ours' in-process function of `S` until our tier answers 100 hits
/// (tracking is up and the value is in it).
pub(super) async fn warm_local<S: Size>() -> Result<(), BenchError> {
    let wanted = LOCAL.stats().local_hits + 100;
    harness::retry_async(WARM_UP, Duration::from_micros(100), || async move {
        black_box(S::ours_local(HIT_ID).await);
        if LOCAL.stats().local_hits >= wanted {
            Ok(())
        } else {
            Err("ours: the in-process tier never answered")
        }
    })
    .await?;
    Ok(())
}

/// Reads until `cached`'s reply cache has answered 100 times (the first
/// reads may miss).
pub(super) async fn warm_csc<V>(c: &CachedCsc<V>) -> Result<(), BenchError>
where
    V: Serialize + DeserializeOwned + Send + Sync + Clone,
{
    let hits = std::cell::Cell::new(0);
    let hits = &hits;
    harness::retry_async(WARM_UP, Duration::from_millis(1), || async move {
        if c.get(HIT_ID).await.is_ok() {
            hits.set(hits.get() + 1);
        }
        if hits.get() >= 100 {
            Ok(())
        } else {
            Err("cached + client-side caching never found the value")
        }
    })
    .await?;
    Ok(())
}
