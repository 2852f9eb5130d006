//! The breaker: when to stop asking a Redis that doesn't answer, and when
//! to try it again.
//!
//! Closed, every command goes to Redis. It opens on a failure to connect
//! (refused, connect timeout, authentication failed) or on a run of
//! [`THRESHOLD`] commands in a row lost (response timeouts, dropped
//! connections): one slow reply doesn't stop Redis use. Open, commands fail
//! at once for one `pause` (the connect timeout). Then it is half-open: one
//! command (the probe) goes to Redis while the others still fail at once;
//! if the probe succeeds the breaker closes, else it stays open for another
//! pause. A probe that never reports (its caller was cancelled) is given up
//! after a pause and another command probes. While it is open only probes
//! count: a command let through before it opened and ending after says
//! nothing new, so a slow Redis can't make it flap.
//!
//! It only keeps state; it says when that state changed (see
//! [`Change`]) so that the backend logs it once. Time is passed in, in ms,
//! for the unit tests, as a function read only when the answer depends on
//! it: a closed breaker and an answered command never read the clock.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use crate::error::Reach;

/// Lost commands in a row that open the breaker.
pub(crate) const THRESHOLD: u32 = 3;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Breaker {
    pause_ms: u64,
    /// Commands lost in a row while closed.
    lost: AtomicU32,
    /// When it opened (ms, at least 1); 0: closed.
    opened_at: AtomicU64,
    /// When the current probe started (ms, at least 1); 0: none.
    probe_at: AtomicU64,
}

/// Whether a command may go to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Closed: go.
    Go,
    /// Half-open, and this command is the probe.
    Probe,
    /// Open: fail at once.
    Refuse,
}

/// A change of state worth one log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// It opened; the number of failures in a row that did it.
    Opened(u32),
    /// It closed again.
    Closed,
}

impl Breaker {
    pub(crate) fn new(pause_ms: u64) -> Self {
        Self {
            pause_ms: pause_ms.max(1),
            lost: AtomicU32::new(0),
            opened_at: AtomicU64::new(0),
            probe_at: AtomicU64::new(0),
        }
    }

    /// Whether it is open (or half-open) now.
    pub(crate) fn is_open(&self) -> bool {
        self.opened_at.load(Relaxed) != 0
    }

    /// Whether a command may go to Redis at `now()`.
    pub(crate) fn admit(&self, now: impl FnOnce() -> u64) -> Admit {
        let opened_at = self.opened_at.load(Relaxed);
        if opened_at == 0 {
            return Admit::Go;
        }
        let now = now();
        if now.saturating_sub(opened_at) < self.pause_ms {
            return Admit::Refuse;
        }
        let probe_at = self.probe_at.load(Relaxed);
        if probe_at != 0 && now.saturating_sub(probe_at) < self.pause_ms {
            return Admit::Refuse;
        }
        match self
            .probe_at
            .compare_exchange(probe_at, now.max(1), Relaxed, Relaxed)
        {
            Ok(_) => Admit::Probe,
            Err(_) => Admit::Refuse,
        }
    }

    /// Notes how a command ended, at `now()`; `admitted` is what
    /// [`admit`](Self::admit) said to it (a health check that skipped the
    /// breaker passes [`Admit::Probe`]).
    pub(crate) fn record(
        &self,
        admitted: Admit,
        reach: Reach,
        now: impl FnOnce() -> u64,
    ) -> Option<Change> {
        if self.is_open() && admitted != Admit::Probe {
            return None;
        }
        match reach {
            Reach::Answered => {
                // Written only when it changes: every worker's commands
                // pass here, and a store would bounce the line between them.
                if self.lost.load(Relaxed) != 0 {
                    self.lost.store(0, Relaxed);
                }
                if self.opened_at.load(Relaxed) != 0 && self.opened_at.swap(0, Relaxed) != 0 {
                    self.probe_at.store(0, Relaxed);
                    return Some(Change::Closed);
                }
                None
            }
            Reach::Lost | Reach::Refused => {
                let now = now();
                if self.is_open() {
                    // A failed probe: another pause.
                    self.opened_at.store(now.max(1), Relaxed);
                    self.probe_at.store(0, Relaxed);
                    return None;
                }
                let lost = self.lost.fetch_add(1, Relaxed) + 1;
                if (reach == Reach::Refused || lost >= THRESHOLD)
                    && self
                        .opened_at
                        .compare_exchange(0, now.max(1), Relaxed, Relaxed)
                        .is_ok()
                {
                    self.lost.store(0, Relaxed);
                    return Some(Change::Opened(lost));
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_lost_commands_dont_open_it_but_a_run_does() {
        let breaker = Breaker::new(100);
        assert_eq!(breaker.record(Admit::Go, Reach::Lost, || 10), None);
        assert_eq!(breaker.record(Admit::Go, Reach::Lost, || 11), None);
        assert_eq!(
            breaker.record(Admit::Go, Reach::Answered, || 12),
            None,
            "the run ends"
        );
        assert_eq!(breaker.record(Admit::Go, Reach::Lost, || 13), None);
        assert_eq!(breaker.admit(|| 14), Admit::Go);
        assert_eq!(breaker.record(Admit::Go, Reach::Lost, || 15), None);
        assert_eq!(
            breaker.record(Admit::Go, Reach::Lost, || 16),
            Some(Change::Opened(3))
        );
        assert_eq!(breaker.admit(|| 17), Admit::Refuse);
    }

    #[test]
    fn a_refused_connection_opens_it_at_once() {
        let breaker = Breaker::new(100);
        assert_eq!(
            breaker.record(Admit::Go, Reach::Refused, || 10),
            Some(Change::Opened(1))
        );
        assert!(breaker.is_open());
        assert_eq!(
            breaker.record(Admit::Go, Reach::Refused, || 11),
            None,
            "said once"
        );
    }

    #[test]
    fn half_open_lets_one_probe_through() {
        let breaker = Breaker::new(100);
        breaker.record(Admit::Go, Reach::Refused, || 10);
        assert_eq!(breaker.admit(|| 109), Admit::Refuse);
        assert_eq!(breaker.admit(|| 110), Admit::Probe);
        assert_eq!(breaker.admit(|| 111), Admit::Refuse, "one probe at a time");
        // The probe fails: another pause.
        assert_eq!(breaker.record(Admit::Probe, Reach::Lost, || 120), None);
        assert_eq!(breaker.admit(|| 200), Admit::Refuse);
        assert_eq!(breaker.admit(|| 220), Admit::Probe);
        // A command let through before it opened, ending now, changes nothing.
        assert_eq!(breaker.record(Admit::Go, Reach::Answered, || 221), None);
        assert!(breaker.is_open());
        assert_eq!(
            breaker.record(Admit::Probe, Reach::Answered, || 221),
            Some(Change::Closed)
        );
        assert_eq!(breaker.admit(|| 222), Admit::Go);
        assert!(!breaker.is_open());
    }

    #[test]
    fn a_closed_breaker_and_an_answer_read_no_clock() {
        let breaker = Breaker::new(100);
        let no_clock = || -> u64 { panic!("the clock was read") };
        assert_eq!(breaker.admit(no_clock), Admit::Go);
        assert_eq!(breaker.record(Admit::Go, Reach::Answered, no_clock), None);
        breaker.record(Admit::Go, Reach::Lost, || 10);
        assert_eq!(breaker.record(Admit::Go, Reach::Answered, no_clock), None);
        assert_eq!(
            breaker.record(Admit::Go, Reach::Lost, || 11),
            None,
            "the run ended"
        );
    }

    #[test]
    fn a_probe_that_never_reports_is_replaced() {
        let breaker = Breaker::new(100);
        breaker.record(Admit::Go, Reach::Refused, || 10);
        assert_eq!(breaker.admit(|| 110), Admit::Probe);
        assert_eq!(breaker.admit(|| 150), Admit::Refuse);
        assert_eq!(breaker.admit(|| 210), Admit::Probe);
    }
}
