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

use crate::{Cache, Error, backend};

/// The outcome of [`acquire`].
#[derive(Debug)]
pub(crate) enum Acquired<'a> {
    /// This call holds the lock: compute, store, then [`Lock::release`].
    Owner(Lock<'a>),
    /// Another process stored these bytes: decode them instead of computing.
    Value(Vec<u8>),
    /// Compute without the lock: the wait ran out, or Redis failed.
    Unlocked,
}

/// A held lock; release it after storing the value.
#[derive(Debug)]
pub(crate) struct Lock<'a> {
    cache: &'a Cache,
    key: String,
    token: String,
}

/// The first pause of a waiter between two polls; each next one doubles.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
/// The longest pause between two polls.
const MAX_PAUSE: Duration = Duration::from_millis(250);

/// Takes the lock of `key` for `hold`, or waits for another process's value.
pub(crate) async fn acquire<'a>(cache: &'a Cache, key: &str, hold: Duration) -> Acquired<'a> {
    let Some(lock) = Lock::new(cache, key) else {
        return Acquired::Unlocked;
    };
    let backend = cache.backend();
    let mut wait = Wait::new(hold);
    loop {
        match backend.try_lock(&lock.key, &lock.token, millis(hold)).await {
            Ok(true) => {
                return match lock.found(backend.get(key).await) {
                    Some(bytes) => {
                        lock.release().await;
                        Acquired::Value(bytes)
                    }
                    None => Acquired::Owner(lock),
                };
            }
            Ok(false) => {}
            Err(error) => return failed(cache, key, &error),
        }
        loop {
            let Some(pause) = wait.pause() else {
                return Acquired::Unlocked;
            };
            backend::sleep(pause).await;
            match backend.peek(key, &lock.key).await {
                Ok((Some(bytes), _)) => return Acquired::Value(bytes),
                Ok((None, true)) => {}
                Ok((None, false)) => break,
                Err(error) => return failed(cache, key, &error),
            }
        }
    }
}

/// Sync [`acquire`]: the same steps, sleeping the thread between polls.
pub(crate) fn acquire_sync<'a>(cache: &'a Cache, key: &str, hold: Duration) -> Acquired<'a> {
    let Some(lock) = Lock::new(cache, key) else {
        return Acquired::Unlocked;
    };
    let backend = cache.backend();
    let mut wait = Wait::new(hold);
    loop {
        match backend.try_lock_sync(&lock.key, &lock.token, millis(hold)) {
            Ok(true) => {
                return match lock.found(backend.get_sync(key)) {
                    Some(bytes) => {
                        lock.release_sync();
                        Acquired::Value(bytes)
                    }
                    None => Acquired::Owner(lock),
                };
            }
            Ok(false) => {}
            Err(error) => return failed(cache, key, &error),
        }
        loop {
            let Some(pause) = wait.pause() else {
                return Acquired::Unlocked;
            };
            std::thread::sleep(pause);
            match backend.peek_sync(key, &lock.key) {
                Ok((Some(bytes), _)) => return Acquired::Value(bytes),
                Ok((None, true)) => {}
                Ok((None, false)) => break,
                Err(error) => return failed(cache, key, &error),
            }
        }
    }
}

impl<'a> Lock<'a> {
    /// An unheld lock for `key` with a fresh token; `None` (logged and
    /// counted) if the system has no random bytes to give.
    fn new(cache: &'a Cache, key: &str) -> Option<Self> {
        let mut bytes = [0u8; 16];
        if let Err(error) = getrandom::fill(&mut bytes) {
            cache.failed("lock", key, &Error::Random(error.to_string()));
            return None;
        }
        let token = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Some(Self {
            cache,
            key: format!("{key}:lock"),
            token,
        })
    }

    /// What the holder's second look at the value found; a failed read is
    /// logged and counted, and the holder computes.
    fn found(&self, found: Result<Option<Vec<u8>>, Error>) -> Option<Vec<u8>> {
        found
            .inspect_err(|error| self.cache.failed("read", &self.key, error))
            .ok()
            .flatten()
    }

    /// Deletes the lock if this call still holds it.
    pub(crate) async fn release(self) {
        let result = self.cache.backend().unlock(&self.key, &self.token).await;
        self.released(result);
    }

    /// Sync [`release`](Self::release).
    pub(crate) fn release_sync(self) {
        let result = self.cache.backend().unlock_sync(&self.key, &self.token);
        self.released(result);
    }

    fn released(&self, result: Result<bool, Error>) {
        match result {
            Ok(true) => {}
            Ok(false) => tracing::debug!(
                key = %self.key,
                "redis-cached: the lock expired before the value was stored; raise `lock`"
            ),
            Err(error) => self.cache.failed("unlock", &self.key, &error),
        }
    }
}

/// Logs and counts a Redis error while locking: the call computes unlocked.
fn failed<'a>(cache: &Cache, key: &str, error: &Error) -> Acquired<'a> {
    cache.failed("lock", key, error);
    Acquired::Unlocked
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
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
