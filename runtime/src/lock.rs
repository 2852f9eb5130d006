//! The cross-process lock of `#[redis_cached(lock = "5s")]`: on a miss, one
//! process in a deployment computes a value while the others wait for it.
//!
//! A call that missed takes `<key>:lock` with `SET <key>:lock <token> NX PX
//! <lock>`, where the token is 128 random bits. The braces in a key are a
//! Redis Cluster hash tag, so the lock shares the value's slot.
//!
//! - The winner looks at the value once more (a holder that finished between
//!   our `GET` and our `SET` stored it first), then computes, stores, and
//!   releases the lock with a compare-and-delete script: a holder whose lock
//!   expired and was taken over never deletes the new holder's lock.
//! - The others poll `MGET <key> <key>:lock` with a doubling pause, for at most
//!   the lock time. When the value appears they return it; when the lock is
//!   gone without a value (the holder's result was an `Err`, or its lock
//!   expired) they try to take it themselves; when the wait runs out they
//!   compute without the lock.
//! - A Redis error at any step is logged and counted, and the call computes
//!   without the lock (fail open).
//!
//! A holder that panics or is cancelled does not release its lock: it expires
//! after the lock time, and the waiters take over then.
//!
//! Only the leader of a key's in-process [flight](crate::flight) takes part:
//! the other calls of its process already wait for it.

use std::time::{Duration, Instant};

use crate::backend::Io;
use crate::error::Error;
use crate::store::Store;

/// The outcome of [`acquire`].
#[derive(Debug)]
pub(crate) enum Acquired {
    /// This call holds the lock: compute, store, then [`Lock::release`].
    Owner(Lock),
    /// Another process stored these bytes: decode them instead of computing.
    Value(Vec<u8>),
    /// Compute without the lock: the wait ran out, or Redis failed.
    Unlocked,
}

/// A held lock; release it after storing the value.
#[derive(Debug)]
pub(crate) struct Lock {
    key: String,
    token: String,
}

/// The first pause of a waiter between two polls; each next one doubles.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
/// The longest pause between two polls.
const MAX_PAUSE: Duration = Duration::from_millis(250);

/// Takes the lock of `key` for `hold`, or waits for another process's value.
pub(crate) async fn acquire<I: Io>(io: I, store: &Store, key: &str, hold: Duration) -> Acquired {
    let Some(lock) = Lock::new(store, key) else {
        return Acquired::Unlocked;
    };
    let mut wait = Wait::new(hold);
    loop {
        match store.try_lock(io, &lock.key, &lock.token, hold).await {
            Ok(true) => {
                return match lock.found(store, store.read_bytes(io, key).await) {
                    Some(bytes) => {
                        lock.release(io, store).await;
                        Acquired::Value(bytes)
                    }
                    None => Acquired::Owner(lock),
                };
            }
            Ok(false) => store.lock_waited(key),
            Err(error) => return failed(store, key, &error),
        }
        loop {
            let Some(pause) = wait.pause() else {
                return Acquired::Unlocked;
            };
            store.pause(io, pause).await;
            match store.peek(io, key, &lock.key).await {
                Ok((Some(bytes), _)) => return Acquired::Value(bytes),
                Ok((None, true)) => {}
                Ok((None, false)) => break,
                Err(error) => return failed(store, key, &error),
            }
        }
    }
}

impl Lock {
    /// An unheld lock for `key` with a fresh token; `None` (logged and
    /// counted) if the system has no random bytes to give.
    fn new(store: &Store, key: &str) -> Option<Self> {
        let mut bytes = [0u8; 16];
        if let Err(error) = getrandom::fill(&mut bytes) {
            store.failed("lock", key, &Error::Random(error.to_string()));
            return None;
        }
        let token = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Some(Self {
            key: format!("{key}:lock"),
            token,
        })
    }

    /// What the holder's second look at the value found; a failed read is
    /// logged and counted, and the holder computes.
    fn found(&self, store: &Store, found: Result<Option<Vec<u8>>, Error>) -> Option<Vec<u8>> {
        found
            .inspect_err(|error| store.failed("read", &self.key, error))
            .ok()
            .flatten()
    }

    /// Deletes the lock if this call still holds it.
    pub(crate) async fn release<I: Io>(self, io: I, store: &Store) {
        match store.unlock(io, &self.key, &self.token).await {
            Ok(true) => {}
            Ok(false) => tracing::debug!(
                key = %self.key,
                "redis-cached: the lock expired before the value was stored; raise `lock`"
            ),
            Err(error) => store.failed("unlock", &self.key, &error),
        }
    }
}

/// Logs and counts a Redis error while locking: the call computes unlocked.
fn failed(store: &Store, key: &str, error: &Error) -> Acquired {
    store.failed("lock", key, error);
    Acquired::Unlocked
}

/// A waiter's budget: the pauses between its polls, until the lock time is up.
#[derive(Debug)]
struct Wait {
    /// `None` if the lock time is too far out to represent: wait until the lock goes.
    deadline: Option<Instant>,
    next: Duration,
}

impl Wait {
    fn new(hold: Duration) -> Self {
        Self {
            deadline: Instant::now().checked_add(hold),
            next: FIRST_PAUSE,
        }
    }

    /// How long to pause before the next poll, or `None` once the time is up.
    fn pause(&mut self) -> Option<Duration> {
        let left = match self.deadline {
            Some(deadline) => deadline
                .checked_duration_since(Instant::now())
                .filter(|left| !left.is_zero())?,
            None => MAX_PAUSE,
        };
        let pause = self.next.min(left);
        self.next = (self.next * 2).min(MAX_PAUSE);
        Some(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_a_cap() {
        let mut wait = Wait::new(Duration::from_secs(3600));
        let pauses: Vec<u64> = (0..8)
            .map(|_| wait.pause().map_or(0, |p| p.as_millis() as u64))
            .collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 250, 250]);
    }

    #[test]
    fn a_spent_wait_ends() {
        let mut wait = Wait::new(Duration::ZERO);
        assert_eq!(wait.pause(), None);
    }
}
