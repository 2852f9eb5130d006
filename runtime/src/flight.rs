//! In-process single flight: concurrent misses of one key, through one
//! [`Cache`](crate::Cache), share one run of the function body.
//!
//! The first call to miss a key becomes the *leader* and runs the body; calls
//! that miss the same key while it runs *wait* for its outcome:
//!
//! - the leader's result was cacheable: each waiter gets the encoded bytes the
//!   leader stored (one shared allocation) and decodes its own copy, so return
//!   types need no `Clone`;
//! - the result was not cacheable (an `Err`, or a value too large to store):
//!   each waiter runs the body itself, as it would have without the cache.
//!   They don't elect a new leader: an error is often the answer of a failing
//!   dependency, and queueing the waiters one behind another would multiply
//!   their latency by their number;
//! - the leader never finished (its body panicked, or its future was dropped):
//!   the flight is *abandoned*, and the waiters re-elect a leader among
//!   themselves: the first to re-join computes, the others wait for it.
//!
//! Sync callers block on a [`Condvar`]; async callers await a tokio
//! [`Notify`], which works on any executor. A call that hits never gets here.
//!
//! A flight lasts from the leader's miss until it publishes its outcome: a
//! call whose `GET` missed just before the leader stored its value, but that
//! joins just after the flight ended, starts a new flight and computes again.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// The flights under way in one cache, by key.
#[derive(Debug, Default)]
pub(crate) struct Flights {
    running: Mutex<HashMap<String, Arc<Flight>>>,
}

/// One run of a body, watched by the calls waiting for it.
#[derive(Debug, Default)]
struct Flight {
    outcome: Mutex<Option<Outcome>>,
    /// Wakes sync waiters.
    done: Condvar,
    /// Wakes async waiters.
    notify: Notify,
}

/// How a flight ended.
#[derive(Debug, Clone)]
enum Outcome {
    /// The leader's result, encoded (and stored).
    Value(Arc<[u8]>),
    /// The leader's result was not cacheable.
    Uncacheable,
    /// The leader panicked or was cancelled.
    Abandoned,
}

/// What a call that missed should do.
#[derive(Debug)]
pub(crate) enum Joined<'a> {
    /// Run the body, then [`Leader::finish`]; dropping the leader instead
    /// (a panic, a cancelled future) hands the work to a waiter.
    Leader(Leader<'a>),
    /// Another call computed this value: decode and return it.
    Shared(Arc<[u8]>),
    /// Another call's result was not cacheable: run the body without a flight.
    Alone,
}

/// The duty of running the body for a key; see [`Joined::Leader`].
#[derive(Debug)]
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    key: String,
    flight: Arc<Flight>,
    /// Set by [`finish`](Self::finish); `None` when dropped means abandoned.
    outcome: Option<Outcome>,
}

impl Flights {
    /// Joins the flight for `key`, blocking the thread while another call leads it.
    pub(crate) fn join_sync(&self, key: &str) -> Joined<'_> {
        loop {
            match self.enter(key) {
                Ok(leader) => return Joined::Leader(leader),
                Err(flight) => {
                    if let Some(joined) = flight.wait_sync().joined() {
                        return joined;
                    }
                }
            }
        }
    }

    /// Joins the flight for `key`, awaiting the outcome while another call leads it.
    pub(crate) async fn join(&self, key: &str) -> Joined<'_> {
        loop {
            match self.enter(key) {
                Ok(leader) => return Joined::Leader(leader),
                Err(flight) => {
                    if let Some(joined) = flight.wait().await.joined() {
                        return joined;
                    }
                }
            }
        }
    }

    /// Leads a new flight for `key`, or returns the one under way.
    fn enter(&self, key: &str) -> Result<Leader<'_>, Arc<Flight>> {
        let mut running = lock(&self.running);
        match running.entry(key.to_owned()) {
            Entry::Occupied(entry) => Err(Arc::clone(entry.get())),
            Entry::Vacant(entry) => {
                let flight = Arc::clone(entry.insert(Arc::default()));
                Ok(Leader {
                    flights: self,
                    key: key.to_owned(),
                    flight,
                    outcome: None,
                })
            }
        }
    }
}

impl Flight {
    fn outcome(&self) -> Option<Outcome> {
        lock(&self.outcome).clone()
    }

    fn wait_sync(&self) -> Outcome {
        let mut outcome = lock(&self.outcome);
        loop {
            if let Some(outcome) = &*outcome {
                return outcome.clone();
            }
            outcome = self
                .done
                .wait(outcome)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    async fn wait(&self) -> Outcome {
        loop {
            // Registered before the check, so a wake-up between the two isn't lost.
            let notified = self.notify.notified();
            if let Some(outcome) = self.outcome() {
                return outcome;
            }
            notified.await;
        }
    }

    fn publish(&self, outcome: Outcome) {
        *lock(&self.outcome) = Some(outcome);
        self.done.notify_all();
        self.notify.notify_waiters();
    }
}

impl Outcome {
    /// What a waiter does with this outcome; `None`: join again.
    fn joined<'a>(self) -> Option<Joined<'a>> {
        match self {
            Self::Value(bytes) => Some(Joined::Shared(bytes)),
            Self::Uncacheable => Some(Joined::Alone),
            Self::Abandoned => None,
        }
    }
}

impl Leader<'_> {
    /// Ends the flight: waiters get `bytes` (the encoded result), or run the
    /// body themselves if it is `None` (the result was not cacheable).
    pub(crate) fn finish(mut self, bytes: Option<Arc<[u8]>>) {
        self.outcome = Some(bytes.map_or(Outcome::Uncacheable, Outcome::Value));
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        {
            let mut running = lock(&self.flights.running);
            if running
                .get(&self.key)
                .is_some_and(|flight| Arc::ptr_eq(flight, &self.flight))
            {
                running.remove(&self.key);
            }
        }
        let outcome = self.outcome.take().unwrap_or(Outcome::Abandoned);
        self.flight.publish(outcome);
    }
}

/// Locks `mutex`, ignoring poison: no user code runs while one of these is held.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(of: &[u8]) -> Option<Arc<[u8]>> {
        Some(Arc::from(of))
    }

    fn shared(joined: Joined<'_>) -> Vec<u8> {
        match joined {
            Joined::Shared(bytes) => bytes.to_vec(),
            other => panic!("expected shared bytes, got {other:?}"),
        }
    }

    #[test]
    fn waiters_get_the_leaders_bytes_and_the_flight_ends() {
        let flights = Flights::default();
        let Joined::Leader(leader) = flights.join_sync("k") else {
            panic!("the first call leads");
        };
        std::thread::scope(|s| {
            let waiters: Vec<_> = (0..4)
                .map(|_| s.spawn(|| shared(flights.join_sync("k"))))
                .collect();
            // The map, the leader and the four waiters hold the flight.
            while Arc::strong_count(&leader.flight) < 6 {
                std::thread::yield_now();
            }
            leader.finish(bytes(b"v"));
            for waiter in waiters {
                assert_eq!(waiter.join().unwrap(), b"v");
            }
        });
        assert!(lock(&flights.running).is_empty());
        assert!(matches!(flights.join_sync("k"), Joined::Leader(_)));
    }

    #[test]
    fn other_keys_fly_separately() {
        let flights = Flights::default();
        let a = flights.join_sync("a");
        let b = flights.join_sync("b");
        assert!(matches!((&a, &b), (Joined::Leader(_), Joined::Leader(_))));
    }

    #[tokio::test]
    async fn an_uncacheable_result_sends_waiters_alone() {
        let flights = Flights::default();
        let Joined::Leader(leader) = flights.join("k").await else {
            panic!("the first call leads");
        };
        let flight = Arc::clone(&leader.flight);
        let waiter = flights.join("k");
        let finish = async {
            // The map, the leader, this test and the waiter hold the flight.
            while Arc::strong_count(&flight) < 4 {
                tokio::task::yield_now().await;
            }
            leader.finish(None);
        };
        let (joined, ()) = tokio::join!(waiter, finish);
        assert!(matches!(joined, Joined::Alone), "{joined:?}");
    }

    #[tokio::test]
    async fn an_abandoned_flight_elects_a_new_leader() {
        let flights = Flights::default();
        let Joined::Leader(leader) = flights.join("k").await else {
            panic!("the first call leads");
        };
        let flight = Arc::clone(&leader.flight);
        let waiter = flights.join("k");
        let abandon = async {
            // The map, the leader, this test and the waiter hold the flight.
            while Arc::strong_count(&flight) < 4 {
                tokio::task::yield_now().await;
            }
            drop(leader);
        };
        let (joined, ()) = tokio::join!(waiter, abandon);
        let Joined::Leader(new_leader) = joined else {
            panic!("the waiter takes over, got {joined:?}");
        };
        assert!(!Arc::ptr_eq(&new_leader.flight, &flight));
        assert_eq!(lock(&flights.running).len(), 1);
    }
}
