//! How long a value lives, and when a hit should refresh it.
//!
//! A value is *fresh* for `ttl` after it was computed. With `stale = D` the
//! key lives `D` longer in Redis, and a hit on a value past its `ttl`
//! returns it and triggers a refresh (stale-while-revalidate). With
//! `refresh = "xfetch"`, a hit on a fresh value triggers a refresh early,
//! with the probability of XFetch (Vattani, Chierichetti, Lowenstein,
//! "Optimal Probabilistic Cache Stampede Prevention", VLDB 2015): refresh
//! when `now - delta * beta * ln(rand()) >= expiry`, `delta` being how long
//! the body took. The slower the body and the closer the expiry, the likelier.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::codec::Meta;

/// The time policy of one cached function.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetime {
    pub(crate) ttl: Duration,
    /// `stale = …`: how long past `ttl` a value may still be served.
    pub(crate) stale: Option<Duration>,
    /// `refresh = "xfetch"`: XFetch's `beta` (1.0 is the paper's optimum).
    pub(crate) xfetch_beta: Option<f64>,
}

/// What a hit should do with the value it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Return it.
    Fresh,
    /// Return it (or, where a background refresh is impossible, the fresh
    /// value), and have one call refresh it.
    Renew,
}

impl Lifetime {
    /// A lifetime of `ttl` alone: no `stale`, no early refresh.
    pub(crate) const fn of(ttl: Duration) -> Self {
        Self {
            ttl,
            stale: None,
            xfetch_beta: None,
        }
    }

    /// Whether a hit may ever need a refresh (`stale` or `refresh` set); if
    /// not, a hit needs no clock.
    pub(crate) fn renews(&self) -> bool {
        self.stale.is_some() || self.xfetch_beta.is_some()
    }

    /// How long Redis keeps the key: `ttl`, plus `stale` if set.
    pub(crate) fn storage_ttl(&self) -> Duration {
        self.ttl.saturating_add(self.stale.unwrap_or_default())
    }

    /// This lifetime with its `ttl` shortened to `own` if that is shorter
    /// (`ttl_of`: a value's own TTL, bounded by the function's).
    pub(crate) fn within(self, own: Duration) -> Self {
        Self {
            ttl: self.ttl.min(own),
            ..self
        }
    }

    /// How long Redis keeps a value computed now under `key`, or `None` to
    /// store nothing: a `ttl = EXPR` that gave zero for this call means
    /// "don't cache this one", logged at debug and not counted as an error.
    pub(crate) fn keep(&self, key: &str) -> Option<Duration> {
        if self.ttl.is_zero() {
            tracing::debug!(%key, "redis-cached: this call's ttl is zero (`ttl` or `ttl_of`); its result is not stored");
            return None;
        }
        Some(self.storage_ttl())
    }

    /// The metadata of a value computed now in `compute`.
    pub(crate) fn meta(&self, compute: Duration) -> Meta {
        Meta {
            fresh_until_ms: now_ms().saturating_add(millis(self.ttl)),
            compute_ms: u32::try_from(compute.as_millis()).unwrap_or(u32::MAX),
        }
    }

    /// What a hit at `now_ms` does with a value carrying `meta`; `uniform`
    /// is a random draw in `(0, 1]`.
    pub(crate) fn verdict(
        &self,
        meta: Meta,
        now_ms: u64,
        uniform: impl FnOnce() -> f64,
    ) -> Verdict {
        if now_ms >= meta.fresh_until_ms {
            // Past its ttl: only a `stale` key lives this long (or clocks
            // disagree, and then Redis' own expiry is the truth).
            return if self.stale.is_some() {
                Verdict::Renew
            } else {
                Verdict::Fresh
            };
        }
        match self.xfetch_beta {
            Some(beta) => {
                let delta = f64::from(meta.compute_ms);
                let gap = -delta * beta * uniform().ln();
                if now_ms as f64 + gap >= meta.fresh_until_ms as f64 {
                    Verdict::Renew
                } else {
                    Verdict::Fresh
                }
            }
            None => Verdict::Fresh,
        }
    }
}

/// What `ttl = EXPR` accepts: a [`Duration`], or whole seconds as a `u64`
/// (also behind a reference). Evaluated on every call.
#[diagnostic::on_unimplemented(
    message = "`ttl` takes a `std::time::Duration` or whole seconds as a `u64`, not `{Self}`",
    label = "a `{Self}`, not a `Duration` or a `u64`",
    note = "for a literal, write `ttl = 60` (seconds) or `ttl = \"5m\"`"
)]
pub trait IntoTtl {
    /// The time to live this value stands for.
    fn into_ttl(self) -> Duration;
}

impl IntoTtl for Duration {
    fn into_ttl(self) -> Duration {
        self
    }
}

impl IntoTtl for u64 {
    fn into_ttl(self) -> Duration {
        Duration::from_secs(self)
    }
}

impl<T: IntoTtl + Copy> IntoTtl for &T {
    fn into_ttl(self) -> Duration {
        (*self).into_ttl()
    }
}

/// Unix time in milliseconds.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A uniform draw in `(0, 1]`, for XFetch.
pub(crate) fn uniform() -> f64 {
    1.0 - fastrand::f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(10);

    fn meta(fresh_until_ms: u64, compute_ms: u32) -> Meta {
        Meta {
            fresh_until_ms,
            compute_ms,
        }
    }

    #[test]
    fn without_options_everything_found_is_fresh() {
        let plain = Lifetime {
            ttl: TTL,
            stale: None,
            xfetch_beta: None,
        };
        assert_eq!(plain.storage_ttl(), TTL);
        assert!(!plain.renews());
        assert_eq!(
            plain.verdict(meta(1000, 50), 999, || 0.0001),
            Verdict::Fresh
        );
        assert_eq!(plain.verdict(meta(1000, 50), 5000, || 1.0), Verdict::Fresh);
    }

    #[test]
    fn stale_values_are_renewed_and_kept_longer() {
        let stale = Lifetime {
            ttl: TTL,
            stale: Some(Duration::from_secs(30)),
            xfetch_beta: None,
        };
        assert_eq!(stale.storage_ttl(), Duration::from_secs(40));
        assert_eq!(stale.verdict(meta(1000, 50), 999, || 1.0), Verdict::Fresh);
        assert_eq!(stale.verdict(meta(1000, 50), 1000, || 1.0), Verdict::Renew);
    }

    #[test]
    fn xfetch_renews_early_with_the_papers_probability() {
        let xfetch = Lifetime {
            ttl: TTL,
            stale: None,
            xfetch_beta: Some(1.0),
        };
        // delta 100 ms, 50 ms before expiry: renew iff -100 * ln(u) >= 50, u <= e^-0.5.
        let m = meta(10_000, 100);
        assert_eq!(xfetch.verdict(m, 9_950, || 0.60), Verdict::Renew);
        assert_eq!(xfetch.verdict(m, 9_950, || 0.61), Verdict::Fresh);
        // Far from expiry, only an absurdly unlikely draw renews.
        assert_eq!(xfetch.verdict(m, 1_000, || 0.5), Verdict::Fresh);
        // A larger beta refreshes earlier.
        let eager = Lifetime {
            xfetch_beta: Some(4.0),
            ..xfetch
        };
        assert_eq!(eager.verdict(m, 9_850, || 0.6), Verdict::Renew);
        assert_eq!(xfetch.verdict(m, 9_850, || 0.6), Verdict::Fresh);
    }

    #[test]
    fn a_zero_ttl_keeps_nothing_and_a_huge_one_saturates() {
        let mut lifetime = Lifetime {
            ttl: Duration::ZERO,
            stale: Some(Duration::from_secs(30)),
            xfetch_beta: None,
        };
        assert_eq!(lifetime.keep("k"), None);
        lifetime.ttl = Duration::from_secs(u64::MAX);
        assert_eq!(lifetime.keep("k"), Some(Duration::MAX));
        lifetime.ttl = TTL;
        assert_eq!(lifetime.keep("k"), Some(Duration::from_secs(40)));
    }

    #[test]
    fn a_values_own_ttl_shortens_the_functions_but_never_extends_it() {
        let lifetime = Lifetime {
            ttl: TTL,
            stale: Some(Duration::from_secs(5)),
            xfetch_beta: None,
        };
        let short = lifetime.within(Duration::from_secs(3));
        assert_eq!(short.ttl, Duration::from_secs(3));
        assert_eq!(short.storage_ttl(), Duration::from_secs(8));
        assert_eq!(lifetime.within(Duration::from_secs(3600)).ttl, TTL);
        assert_eq!(lifetime.within(Duration::ZERO).keep("k"), None);
    }

    #[test]
    fn ttl_values_convert_from_durations_and_seconds() {
        assert_eq!(Duration::from_millis(1500).into_ttl().as_millis(), 1500);
        assert_eq!(90_u64.into_ttl(), Duration::from_secs(90));
        assert_eq!((&Duration::from_secs(2)).into_ttl(), Duration::from_secs(2));
        assert_eq!((&7_u64).into_ttl(), Duration::from_secs(7));
    }

    #[test]
    fn meta_records_expiry_and_compute_time() {
        let plain = Lifetime {
            ttl: TTL,
            stale: None,
            xfetch_beta: None,
        };
        let before = now_ms();
        let m = plain.meta(Duration::from_millis(1234));
        assert!(m.fresh_until_ms >= before + 10_000 && m.fresh_until_ms <= now_ms() + 10_000);
        assert_eq!(m.compute_ms, 1234);
    }
}
