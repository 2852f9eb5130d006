//! Tagged writes and `invalidate_tag` on Redis, one server or a cluster.
//!
//! Each tag of an entry has a set, `<prefix>{<tag>}:tag` (see `tag.rs`),
//! naming the keys stored with it. A set's TTL is raised, never lowered, to
//! cover its longest-lived member and a second more (`PTTL` then
//! `PEXPIRE`, in one script): once the entries it names have expired, so
//! has the set, a second later.
//!
//! The order makes a crash harmless. On one server the sets and the value
//! are written by one script, atomically. On a cluster they live in
//! different slots, so the sets are written first and the value only once
//! they all were: a value is never stored where its tag can't find it
//! (which would let `invalidate_tag` leave it stale). A crash or failure
//! in between leaves at worst a set naming a key that holds no value, or
//! one that a later call rewrote; deleting that is a cache miss, never a
//! wrong answer.
//!
//! `invalidate_tag` walks the set with `SSCAN`, `UNLINK`s each batch of its
//! members that are entry keys of this cache (and nothing else, however the
//! set came to hold it), then `SREM`s the batch: a crash in between leaves
//! members naming deleted keys, and a second call finishes the job. Members
//! added while it runs, by calls that store meanwhile, may stay.

use redis::Cmd;

use super::io::{Io, Remote};
#[cfg(feature = "cluster")]
use super::set;
use super::{SCAN_COUNT, unlink};
use crate::error::Error;

/// How much longer than its longest-lived member a tag set is kept: on a
/// cluster the value is written a round trip after its sets, and so
/// expires that much later.
const MARGIN_MS: u64 = 1_000;

/// `KEYS`: the tag sets; `ARGV`: the member, the sets' TTL in ms. Adds the
/// member to each set and raises the set's TTL to at least that. `PEXPIRE`
/// takes the TTL as sent: a Lua number of 1e17 or more would reach Redis as
/// `1e+17`, which is no integer.
#[cfg(feature = "cluster")]
const TAG: &str = r#"
local ttl = tonumber(ARGV[2])
for _, set in ipairs(KEYS) do
  redis.call("SADD", set, ARGV[1])
  if redis.call("PTTL", set) < ttl then redis.call("PEXPIRE", set, ARGV[2]) end
end
return 1
"#;

/// `KEYS`: the value's key, then its tag sets; `ARGV`: the value's TTL in
/// ms, the bytes, the sets' TTL. `SET … PX` and [`TAG`] at once, for one
/// server. Each set also drops up to two members, picked at random, whose
/// key is gone: on one server a member is written with its value, so one
/// without a value has expired or was deleted. That keeps a tag that is written often and never
/// invalidated from piling up the keys of expired entries (about as many
/// dead members as live ones, at most, in the long run). A cluster can't
/// look at other slots' keys from a script, and doesn't prune.
const TAG_AND_SET: &str = r#"
redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[1])
local ttl = tonumber(ARGV[3])
for i = 2, #KEYS do
  for _, member in ipairs(redis.call("SRANDMEMBER", KEYS[i], 2)) do
    if member ~= KEYS[1] and redis.call("EXISTS", member) == 0 then
      redis.call("SREM", KEYS[i], member)
    end
  end
  redis.call("SADD", KEYS[i], KEYS[1])
  if redis.call("PTTL", KEYS[i]) < ttl then redis.call("PEXPIRE", KEYS[i], ARGV[3]) end
end
return 1
"#;

/// Stores `bytes` under `key` for `ttl_ms`, named in each of `sets`, on one
/// server: one script.
pub(super) async fn set_tagged_at_once<I: Io>(
    io: I,
    redis: &impl Remote,
    key: &str,
    bytes: &[u8],
    ttl_ms: u64,
    sets: &[String],
) -> Result<(), Error> {
    let mut eval = ::redis::cmd("EVAL");
    eval.arg(TAG_AND_SET)
        .arg(sets.len() + 1)
        .arg(key)
        .arg(sets)
        .arg(ttl_ms)
        .arg(bytes)
        .arg(ttl_ms.saturating_add(MARGIN_MS));
    io.query::<u8>(redis, &eval).await.map(drop)
}

/// [`set_tagged_at_once`] on a cluster, where the sets and the key are in
/// different slots: each set, then the value.
#[cfg(feature = "cluster")]
pub(super) async fn set_tagged_in_order<I: Io>(
    io: I,
    cluster: &impl Remote,
    key: &str,
    bytes: &[u8],
    ttl_ms: u64,
    sets: &[String],
) -> Result<(), Error> {
    for tag_set in sets {
        let mut eval = ::redis::cmd("EVAL");
        let set_ttl = ttl_ms.saturating_add(MARGIN_MS);
        eval.arg(TAG).arg(1).arg(tag_set).arg(key).arg(set_ttl);
        io.query::<u8>(cluster, &eval).await?;
    }
    io.query(cluster, &set(key, bytes, ttl_ms)).await
}

/// Deletes the keys the set `tag_set` names that `is_entry` accepts, and
/// empties the set; how many keys were deleted. See the module docs.
pub(super) async fn invalidate<I: Io>(
    io: I,
    redis: &impl Remote,
    tag_set: &str,
    is_entry: impl Fn(&str) -> bool,
) -> Result<u64, Error> {
    let mut cursor = 0;
    let mut deleted = 0;
    loop {
        let mut scan = ::redis::cmd("SSCAN");
        scan.arg(tag_set).arg(cursor).arg("COUNT").arg(SCAN_COUNT);
        let (next, members): (u64, Vec<Vec<u8>>) = io.query(redis, &scan).await?;
        let entries: Vec<&[u8]> = members
            .iter()
            .filter(|m| std::str::from_utf8(m).is_ok_and(&is_entry))
            .map(Vec::as_slice)
            .collect();
        if !entries.is_empty() {
            deleted += io.query::<u64>(redis, &unlink(&entries)).await?;
        }
        if !members.is_empty() {
            io.query::<u64>(redis, &srem(tag_set, &members)).await?;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

/// `SREM set members…`.
fn srem(tag_set: &str, members: &[Vec<u8>]) -> Cmd {
    let mut cmd = ::redis::cmd("SREM");
    cmd.arg(tag_set).arg(members);
    cmd
}
