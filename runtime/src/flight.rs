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
//!   the flight becomes *vacant*, and the first waiter to wake up takes over
//!   as its leader and computes; the others go on waiting for the same
//!   flight. If nobody waits, the flight ends.
//!
//! Waiters listen for the flight's [`Event`], and wait the way their [`Io`]
//! does: sync callers block their thread, async callers await (on any
//! executor). A call that hits never gets here.
//!
//! A flight lasts from the leader's miss until it publishes its outcome: a
//! call whose `GET` missed just before the leader stored its value, but that
//! joins just after the flight ended, starts a new flight and computes again.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use event_listener::Event;

use crate::backend::Io;

/// The flights under way in one cache, by key.
#[derive(Debug, Default)]
pub(crate) struct Flights {
    running: Mutex<HashMap<String, Arc<Flight>>>,
}

/// One computation of a key's value, watched by the calls waiting for it.
#[derive(Debug, Default)]
struct Flight {
    state: Mutex<State>,
    /// Wakes the waiters when `state` changes.
    changed: Event,
}

#[derive(Debug, Default)]
enum State {
    /// A leader is computing.
    #[default]
    Running,
    /// The leader panicked or was cancelled: the next to look takes over.
    Vacant,
    /// The leader finished.
    Done(Outcome),
}

/// How a finished flight ended.
#[derive(Debug, Clone)]
enum Outcome {
    /// The leader's result, encoded (and stored).
    Value(Arc<Vec<u8>>),
    /// The leader's result was not cacheable.
    Uncacheable,
}

/// What a call that missed should do.
#[derive(Debug)]
pub(crate) enum Joined<'a> {
    /// Run the body, then [`Leader::finish`]; dropping the leader instead
    /// (a panic, a cancelled future) hands the work to a waiter.
    Leader(Leader<'a>),
    /// Another call computed this value: decode and return it.
    Shared(Arc<Vec<u8>>),
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
    /// Joins the flight for `key`, waiting while another call leads it.
    pub(crate) async fn join<I: Io>(&self, io: I, key: &str) -> Joined<'_> {
        match self.enter(key) {
            Ok(leader) => Joined::Leader(leader),
            Err(flight) => loop {
                // Listening before the check, so a change between the two isn't lost.
                let listener = flight.changed.listen();
                let turn = lock(&flight.state).turn();
                if let Some(turn) = turn {
                    return self.joined(key, flight, turn);
                }
                io.wait(listener).await;
            },
        }
    }

    /// Leads a new (or vacant) flight for `key`, or returns the one under way.
    fn enter(&self, key: &str) -> Result<Leader<'_>, Arc<Flight>> {
        let mut running = lock(&self.running);
        let flight = match running.entry(key.to_owned()) {
            Entry::Occupied(entry) => {
                let flight = Arc::clone(entry.get());
                let mut state = lock(&flight.state);
                if !matches!(*state, State::Vacant) {
                    drop(state);
                    return Err(flight);
                }
                *state = State::Running;
                drop(state);
                flight
            }
            Entry::Vacant(entry) => Arc::clone(entry.insert(Arc::default())),
        };
        Ok(self.leader(key, flight))
    }

    fn leader(&self, key: &str, flight: Arc<Flight>) -> Leader<'_> {
        Leader {
            flights: self,
            key: key.to_owned(),
            flight,
            outcome: None,
        }
    }

    fn joined(&self, key: &str, flight: Arc<Flight>, turn: Turn) -> Joined<'_> {
        match turn {
            Turn::Lead => Joined::Leader(self.leader(key, flight)),
            Turn::Done(Outcome::Value(bytes)) => Joined::Shared(bytes),
            Turn::Done(Outcome::Uncacheable) => Joined::Alone,
        }
    }
}

/// What a waiter does next.
enum Turn {
    /// Take over the vacant flight.
    Lead,
    /// Use the outcome.
    Done(Outcome),
}

impl State {
    /// The waiter's turn, if it has come: claims a vacant flight for the caller.
    fn turn(&mut self) -> Option<Turn> {
        match self {
            Self::Running => None,
            Self::Vacant => {
                *self = Self::Running;
                Some(Turn::Lead)
            }
            Self::Done(outcome) => Some(Turn::Done(outcome.clone())),
        }
    }
}

impl Leader<'_> {
    /// Ends the flight: waiters get `bytes` (the encoded result), or run the
    /// body themselves if it is `None` (the result was not cacheable).
    pub(crate) fn finish(mut self, bytes: Option<Arc<Vec<u8>>>) {
        self.outcome = Some(bytes.map_or(Outcome::Uncacheable, Outcome::Value));
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let mut running = lock(&self.flights.running);
        let ours = running
            .get(&self.key)
            .is_some_and(|flight| Arc::ptr_eq(flight, &self.flight));
        // Under the map's lock nobody can join: the map and this leader
        // holding the flight means nobody waits for it.
        let waited_for = Arc::strong_count(&self.flight) > 2;
        let state = match self.outcome.take() {
            Some(outcome) => State::Done(outcome),
            None if waited_for => State::Vacant,
            None => State::Done(Outcome::Uncacheable),
        };
        if ours && !matches!(state, State::Vacant) {
            running.remove(&self.key);
        }
        *lock(&self.flight.state) = state;
        drop(running);
        self.flight.changed.notify(usize::MAX);
    }
}

/// Locks `mutex`, ignoring poison: no user code runs while one of these is held.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(all(test, feature = "sync"))]
mod tests {
    use super::*;
    use crate::backend::{Async, Blocking, block_on};

    fn join_on_this_thread<'a>(flights: &'a Flights, key: &str) -> Joined<'a> {
        block_on(flights.join(Blocking, key))
    }

    fn bytes(of: &[u8]) -> Option<Arc<Vec<u8>>> {
        Some(Arc::new(of.to_vec()))
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
        let Joined::Leader(leader) = join_on_this_thread(&flights, "k") else {
            panic!("the first call leads");
        };
        std::thread::scope(|s| {
            let waiters: Vec<_> = (0..4)
                .map(|_| s.spawn(|| shared(join_on_this_thread(&flights, "k"))))
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
        assert!(matches!(
            join_on_this_thread(&flights, "k"),
            Joined::Leader(_)
        ));
    }

    #[test]
    fn other_keys_fly_separately() {
        let flights = Flights::default();
        let a = join_on_this_thread(&flights, "a");
        let b = join_on_this_thread(&flights, "b");
        assert!(matches!((&a, &b), (Joined::Leader(_), Joined::Leader(_))));
    }

    #[tokio::test]
    async fn an_uncacheable_result_sends_waiters_alone() {
        let flights = Flights::default();
        let Joined::Leader(leader) = flights.join(Async, "k").await else {
            panic!("the first call leads");
        };
        let flight = Arc::clone(&leader.flight);
        let waiter = flights.join(Async, "k");
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
    async fn a_waiter_takes_over_an_abandoned_flight() {
        let flights = Flights::default();
        let Joined::Leader(leader) = flights.join(Async, "k").await else {
            panic!("the first call leads");
        };
        let flight = Arc::clone(&leader.flight);
        let waiter = flights.join(Async, "k");
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
        assert!(Arc::ptr_eq(&new_leader.flight, &flight), "the same flight");
        assert_eq!(lock(&flights.running).len(), 1);
        drop(flight);
        drop(new_leader);
        assert!(lock(&flights.running).is_empty(), "nobody waits: it ends");
    }

    #[test]
    fn a_vacant_flight_nobody_took_over_goes_to_the_next_caller() {
        let flights = Flights::default();
        let Joined::Leader(leader) = join_on_this_thread(&flights, "k") else {
            panic!("the first call leads");
        };
        // A waiter that is cancelled after its leader was.
        let waiter = Arc::clone(&leader.flight);
        drop(leader);
        drop(waiter);
        assert!(matches!(
            join_on_this_thread(&flights, "k"),
            Joined::Leader(_)
        ));
    }
}
