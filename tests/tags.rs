//! `tags = [...]` and `Cache::invalidate_tag`: against a real Redis, `mem://`
//! and a Redis Cluster; with the in-process tier, `stale`, `lock`,
//! `refresh` and `f_invalidate`; and the edges cashews users reported
//! (Krukov/cashews#214, #225, #229).

mod support;
#[path = "support/cluster.rs"]
mod test_cluster;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use redis_cached::{Cache, redis_cached};
use support::{CacheSlot, Calls, TestRedis, eventually, eventually_async};
use test_cluster::TestCluster;

/// The keys of `keys` that contain `part`.
fn with(keys: &[String], part: &str) -> Vec<String> {
    keys.iter().filter(|k| k.contains(part)).cloned().collect()
}

mod across {
    //! Two tagged functions and an untagged one, on one cache.
    use super::*;
    pub static CACHE: CacheSlot = CacheSlot::new();
    pub static PROFILES: Calls = Calls::new();
    pub static ORDERS: Calls = Calls::new();
    pub static PLAIN: Calls = Calls::new();

    #[redis_cached(ttl = 60, cache = CACHE, tags = [format!("user:{user_id}"), "profiles"])]
    pub fn profile(user_id: u64) -> String {
        PROFILES.inc();
        format!("profile {user_id}")
    }

    #[redis_cached(ttl = 120, cache = CACHE, tags = [format!("user:{user_id}")])]
    pub fn orders(user_id: u64) -> Vec<u64> {
        ORDERS.inc();
        vec![user_id; 2]
    }

    #[redis_cached(ttl = 60, cache = CACHE)]
    pub fn plain(user_id: u64) -> u64 {
        PLAIN.inc();
        user_id
    }
}

#[test]
fn invalidate_tag_deletes_the_tagged_entries_of_every_function_and_nothing_else() {
    use across::*;
    let redis = TestRedis::start();
    CACHE.set(redis.cache());
    for user in [1, 2] {
        profile(user);
        orders(user);
        plain(user);
    }
    let keys = redis.keys();
    let entry = |name: &str| with(&keys, name);
    let (profile_keys, order_keys, plain_keys) =
        (entry("::profile:"), entry("::orders:"), entry("::plain:"));
    assert_eq!((profile_keys.len(), order_keys.len()), (2, 2), "{keys:?}");
    let sets: Vec<&String> = keys.iter().filter(|k| k.ends_with("}:tag")).collect();
    assert_eq!(
        sets,
        ["{profiles}:tag", "{user:1}:tag", "{user:2}:tag"],
        "one set per tag"
    );

    assert_eq!(CACHE.invalidate_tag_blocking("user:1").unwrap(), 2);
    let left = redis.keys();
    assert_eq!(with(&left, "::profile:").len(), 1);
    assert_eq!(with(&left, "::orders:").len(), 1);
    for key in &plain_keys {
        assert!(redis.exists(key), "untagged entries stay: {key}");
    }
    assert!(!redis.exists("{user:1}:tag"), "the set is emptied");
    assert!(redis.exists("{user:2}:tag"));

    // Only user 1's bodies run again.
    for user in [1, 2] {
        profile(user);
        orders(user);
        plain(user);
    }
    assert_eq!((PROFILES.get(), ORDERS.get(), PLAIN.get()), (3, 3, 2));

    assert_eq!(CACHE.invalidate_tag_blocking("profiles").unwrap(), 2);
    assert_eq!(CACHE.invalidate_tag_blocking("profiles").unwrap(), 0);
    assert_eq!(CACHE.invalidate_tag_blocking("never used").unwrap(), 0);
    for key in order_keys.iter().chain(&plain_keys) {
        assert!(redis.exists(key), "{key}");
    }
    profile(2);
    assert_eq!(PROFILES.get(), 4);
}

#[test]
fn a_tag_set_lives_as_long_as_its_longest_lived_entry() {
    static CACHE: CacheSlot = CacheSlot::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = Duration::from_millis(ms), cache = CACHE, tags = ["t"])]
    fn lasting(ms: u64) -> u64 {
        ms
    }

    lasting(60_000);
    let set = "{t}:tag";
    let entry_60s = redis.only_key_containing("lasting");
    assert!(
        redis.pttl(set) > redis.pttl(&entry_60s),
        "covers its member"
    );
    lasting(1_000);
    assert!(redis.pttl(set) > 59_000, "a shorter entry doesn't lower it");
    lasting_invalidate_all().unwrap();
    let _: u64 = redis::cmd("DEL").arg(set).query(&mut redis.conn()).unwrap();

    lasting(300);
    lasting(600);
    let members = with(&redis.keys(), "lasting");
    assert_eq!(members.len(), 2);
    let longest = members.iter().map(|key| redis.pttl(key)).max().unwrap();
    assert!(
        redis.pttl(set) > longest,
        "set {} < {longest}",
        redis.pttl(set)
    );
    eventually("the short entries and their set expire", || {
        members.iter().all(|key| !redis.exists(key)) && !redis.exists(set)
    });
}

#[test]
fn on_one_server_a_busy_tag_set_drops_the_keys_of_expired_entries() {
    static CACHE: CacheSlot = CacheSlot::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = 60, cache = CACHE, tags = ["busy"])]
    fn busy(i: u64) -> u64 {
        i
    }

    for i in 0..50 {
        busy(i);
    }
    let set = "{busy}:tag";
    let members = || -> usize {
        redis::cmd("SCARD")
            .arg(set)
            .query(&mut redis.conn())
            .unwrap()
    };
    assert_eq!(members(), 50);
    // The entries expire, and the set still names them. (Stored with a
    // short TTL instead, the first entries could expire, and be dropped by
    // the last writes, before the count above, on a loaded machine.)
    for key in with(&redis.keys(), "busy:") {
        let _: bool = redis::cmd("PEXPIRE")
            .arg(&key)
            .arg(1)
            .query(&mut redis.conn())
            .unwrap();
    }
    eventually("the entries expire", || {
        with(&redis.keys(), "busy:").is_empty()
    });
    for i in 0..200 {
        busy(1000 + i);
    }
    // Each write drops up to two dead members picked at random: about two
    // of the 50 are expected to be left, and far fewer than 35 for sure.
    assert!(members() <= 215, "{} members", members());
    assert!(members() >= 200, "no live member dropped");
    assert_eq!(CACHE.invalidate_tag_blocking("busy").unwrap(), 200);
}

impl TestRedis {
    fn only_key_containing(&self, part: &str) -> String {
        let keys = with(&self.keys(), part);
        assert_eq!(keys.len(), 1, "{keys:?}");
        keys[0].clone()
    }
}

#[test]
fn on_mem_invalidate_tag_deletes_across_functions_and_counts() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    CACHE.set(Cache::in_memory());

    #[redis_cached(ttl = 60, cache = CACHE, tags = [format!("user:{id}")])]
    fn name(id: u64) -> String {
        CALLS.inc();
        format!("user {id}")
    }

    #[redis_cached(ttl = 60, cache = CACHE, tags = [format!("user:{id}"), "all"])]
    fn age(id: u64) -> u64 {
        CALLS.inc();
        id + 20
    }

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn untagged(id: u64) -> u64 {
        CALLS.inc();
        id
    }

    for id in [1, 2] {
        name(id);
        age(id);
        untagged(id);
    }
    assert_eq!(CALLS.get(), 6);
    assert_eq!(CACHE.invalidate_tag_blocking("user:1").unwrap(), 2);
    assert_eq!(CACHE.invalidate_tag_blocking("user:1").unwrap(), 0);
    for id in [1, 2] {
        name(id);
        age(id);
        untagged(id);
    }
    assert_eq!(CALLS.get(), 8, "only user 1's two entries ran again");
    assert_eq!(CACHE.invalidate_tag_blocking("all").unwrap(), 2);
    assert_eq!(CACHE.invalidate_tag_blocking("nothing").unwrap(), 0);
}

#[test]
fn on_mem_an_entry_stored_again_with_other_tags_loses_the_old_ones() {
    // cashews' "set tagged, delete, set again otherwise, delete the tag"
    // case. A Redis tag set names keys, not writes (its stale member would
    // delete the entry: a miss); mem:// keeps each entry's own tags, and is
    // exact.
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    CACHE.set(Cache::in_memory());

    #[redis_cached(ttl = 60, cache = CACHE, skip(tag), tags = [tag])]
    fn value(id: u64, tag: &str) -> u64 {
        let _ = tag;
        CALLS.inc();
        id
    }

    value(1, "a");
    assert!(value_invalidate(1, "a").unwrap());
    value(1, "b");
    assert_eq!(CACHE.invalidate_tag_blocking("a").unwrap(), 0);
    value(1, "b");
    assert_eq!(CALLS.get(), 2, "the entry tagged b stayed");
    assert_eq!(CACHE.invalidate_tag_blocking("b").unwrap(), 1);
}

#[test]
fn f_invalidate_leaves_a_member_that_deletes_nothing_until_the_entry_is_back() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = 60, cache = CACHE, tags = ["stock"])]
    fn stock(item: u64) -> u64 {
        CALLS.inc();
        item * 10
    }

    stock(1);
    assert!(stock_invalidate(1).unwrap());
    assert!(
        redis.exists("{stock}:tag"),
        "f_invalidate leaves the member"
    );
    assert_eq!(CACHE.invalidate_tag_blocking("stock").unwrap(), 0);
    stock(1);
    stock(2);
    assert_eq!(CACHE.invalidate_tag_blocking("stock").unwrap(), 2);
    stock(1);
    assert_eq!(CALLS.get(), 4);
    assert_eq!(stock_invalidate_all().unwrap(), 1, "the set is not counted");
}

#[test]
fn a_tag_set_can_only_delete_entries_of_its_own_cache() {
    static CACHE: CacheSlot = CacheSlot::new();
    let redis = TestRedis::start();
    CACHE.set(Cache::builder(redis.url()).prefix("app:").build().unwrap());

    #[redis_cached(ttl = 60, cache = CACHE, tags = ["t"])]
    fn tagged(x: u64) -> u64 {
        x
    }

    tagged(1);
    let entry = redis.only_key_containing("tagged");
    // Whatever else the set names (by hand, by a crash, by another prefix)
    // is dropped from it, never deleted.
    let hex = "d1e3e474f3ea04c9ed32c37937c6462b";
    let outsiders = [
        "precious".to_owned(),
        format!("other:m::f:{{{hex}}}"),
        format!("{entry}:lock"),
        "app:{u}:tag".to_owned(),
        format!("app:{{{hex}}}"),
    ];
    let mut conn = redis.conn();
    for key in &outsiders {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg("v")
            .query(&mut conn)
            .unwrap();
    }
    let _: u64 = redis::cmd("SADD")
        .arg("app:{t}:tag")
        .arg(&outsiders)
        .query(&mut conn)
        .unwrap();
    assert_eq!(CACHE.invalidate_tag_blocking("t").unwrap(), 1);
    assert!(!redis.exists(&entry));
    for key in &outsiders {
        assert!(redis.exists(key), "{key} kept");
    }
    assert!(!redis.exists("app:{t}:tag"));
}

#[test]
fn the_in_process_tier_drops_what_invalidate_tag_deletes() {
    static CACHE: CacheSlot = CacheSlot::new();
    static VERSION: AtomicU64 = AtomicU64::new(1);
    let redis = TestRedis::start();
    CACHE.set(Cache::builder(redis.url()).local(100).build().unwrap());

    #[redis_cached(ttl = 60, cache = CACHE, local = 10, tags = [format!("page:{id}")])]
    fn page(id: u64) -> u64 {
        id * 100 + VERSION.load(SeqCst)
    }

    assert_eq!(page(1), 101);
    let before = CACHE.stats().local_hits;
    eventually("a local hit", || {
        assert_eq!(page(1), 101);
        CACHE.stats().local_hits > before
    });
    VERSION.store(2, SeqCst);
    assert_eq!(CACHE.invalidate_tag_blocking("page:1").unwrap(), 1);
    eventually("the new value", || {
        let seen = page(1);
        assert!(seen == 101 || seen == 102, "{seen}");
        seen == 102
    });
    for _ in 0..20 {
        assert_eq!(page(1), 102, "the old value came back");
    }
}

#[tokio::test]
async fn tags_work_with_stale_lock_and_refresh() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    static VERSION: AtomicU64 = AtomicU64::new(1);
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = Duration::from_millis(200), stale = 60, lock = 5, cache = CACHE,
                   tags = [format!("report:{id}")])]
    async fn report(id: u64) -> u64 {
        CALLS.inc();
        id * 100 + VERSION.load(SeqCst)
    }

    static HOT: Calls = Calls::new();
    #[redis_cached(ttl = 60, refresh = "xfetch", cache = CACHE, tags = ["hot"])]
    async fn hot(id: u64) -> u64 {
        HOT.inc();
        id
    }

    assert_eq!(report(1).await, 101);
    hot(1).await;
    assert_eq!((CALLS.get(), HOT.get()), (1, 1));
    // Past its ttl the value is served stale and refreshed in a task; the
    // refreshed entry is tagged too.
    tokio::time::sleep(Duration::from_millis(250)).await;
    VERSION.store(2, SeqCst);
    assert_eq!(report(1).await, 101, "stale");
    eventually_async("the refresh", || async { report(1).await == 102 }).await;
    let set = "{report:1}:tag";
    assert!(redis.pttl(set) > 59_000, "raised by the refresh");
    VERSION.store(3, SeqCst);
    assert_eq!(CACHE.invalidate_tag("report:1").await.unwrap(), 1);
    assert_eq!(report(1).await, 103, "recomputed, not served stale");
    assert_eq!(CACHE.invalidate_tag("hot").await.unwrap(), 1);
    hot(1).await;
    assert_eq!(HOT.get(), 2);
}

#[tokio::test]
async fn on_mem_a_refreshed_entry_keeps_its_tags() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    CACHE.set(Cache::in_memory());

    #[redis_cached(ttl = Duration::from_millis(100), stale = 60, cache = CACHE, tags = ["r"])]
    async fn refreshed(id: u64) -> usize {
        let _ = id;
        CALLS.next()
    }

    assert_eq!(refreshed(1).await, 1);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(refreshed(1).await, 1, "stale, refreshed in a task");
    eventually_async("the refresh", || async { refreshed(1).await == 2 }).await;
    assert_eq!(CACHE.invalidate_tag("r").await.unwrap(), 1);
    assert_eq!(refreshed(1).await, 3);
}

mod cashews {
    //! The edges of Krukov/cashews#214, #225 and #229, where tags derived
    //! from arguments failed: a tag is a plain string here, computed once
    //! per call and compared as is.
    use super::*;

    pub static TAG_FN_CALLS: Calls = Calls::new();
    pub static CALLS: Calls = Calls::new();

    /// A custom function that makes a tag from an argument (cashews#214's
    /// registered formatter): it must only ever see the argument.
    pub fn item_tag(mapping: &std::collections::BTreeMap<String, String>) -> String {
        TAG_FN_CALLS.inc();
        format!("prefix:tags:{}", mapping["bar"])
    }
}

#[test]
fn cashews_214_a_tag_made_by_a_function_is_invalidated_by_its_value() {
    use cashews::*;
    static CACHE: CacheSlot = CacheSlot::new();
    let redis = TestRedis::start();
    // With a prefix that the function's own name repeats, as in #214.
    CACHE.set(
        Cache::builder(redis.url())
            .prefix("prefix:")
            .build()
            .unwrap(),
    );

    #[redis_cached(ttl = 3600, cache = CACHE, name = "prefix:keys",
                   tags = [item_tag(mapping), "{bar}*?[x]\\"])]
    fn foo(mapping: &std::collections::BTreeMap<String, String>) -> String {
        CALLS.inc();
        mapping["bar"].clone()
    }

    let mapping = [("bar".to_owned(), "baz".to_owned())].into();
    assert_eq!(foo(&mapping), "baz");
    assert_eq!(foo(&mapping), "baz", "a hit");
    assert_eq!(TAG_FN_CALLS.get(), 2, "once per call");
    assert_eq!(CACHE.invalidate_tag_blocking("prefix:tags:baz").unwrap(), 1);
    assert_eq!(TAG_FN_CALLS.get(), 2, "never at invalidation");
    assert_eq!(foo(&mapping), "baz");
    assert_eq!(CALLS.get(), 2);
    // Glob and brace characters in a tag are only characters.
    assert_eq!(CACHE.invalidate_tag_blocking("{bar}*").unwrap(), 0);
    assert_eq!(CACHE.invalidate_tag_blocking("{bar}*?[x]\\").unwrap(), 1);
    assert!(redis.keys().iter().all(|key| key.starts_with("prefix:")));
}

#[tokio::test]
async fn cashews_225_a_tag_works_with_a_prefix_and_before_any_call() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start();
    CACHE.set(
        Cache::builder(redis.url())
            .prefix("testing")
            .build()
            .unwrap(),
    );

    #[redis_cached(ttl = 3600, cache = CACHE, tags = ["tag"])]
    async fn cached(param: String) -> String {
        CALLS.inc();
        param
    }

    // Nothing to register first: invalidating an unused tag is no error.
    assert_eq!(CACHE.invalidate_tag("tag").await.unwrap(), 0);
    assert_eq!(cached("TESTME".into()).await, "TESTME");
    assert_eq!(cached("TESTME".into()).await, "TESTME");
    assert_eq!(CALLS.get(), 1);
    assert_eq!(CACHE.stats().errors, 0);
    assert!(redis.exists("testing{tag}:tag"));
    assert_eq!(CACHE.invalidate_tag("tag").await.unwrap(), 1);
    assert_eq!(cached("TESTME".into()).await, "TESTME");
    assert_eq!(CALLS.get(), 2);
}

#[test]
fn cashews_229_a_tag_computed_by_a_function_call_matches_on_invalidate() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    CACHE.set(Cache::in_memory());

    #[redis_cached(ttl = 60, cache = CACHE, tags = [user.to_lowercase(), format!("len:{}", user.len())])]
    fn greeting(user: &str) -> String {
        CALLS.inc();
        format!("hello {user}")
    }

    greeting("Alice");
    greeting("BOB");
    assert_eq!(
        CACHE.invalidate_tag_blocking("Alice").unwrap(),
        0,
        "tags are exact"
    );
    assert_eq!(CACHE.invalidate_tag_blocking("alice").unwrap(), 1);
    assert_eq!(CACHE.invalidate_tag_blocking("len:3").unwrap(), 1);
    greeting("Alice");
    greeting("BOB");
    assert_eq!(CALLS.get(), 4);
}

#[test]
fn on_a_cluster_invalidate_tag_finds_entries_on_every_primary() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let cluster = TestCluster::start();
    CACHE.set(cluster.cache());

    #[redis_cached(ttl = 60, cache = CACHE, tags = [format!("parity:{}", x % 2), "all"])]
    fn square(x: u64) -> u64 {
        CALLS.inc();
        x * x
    }

    for x in 0..60 {
        square(x);
    }
    let entries = with(&cluster.keys(), "square");
    let primaries: std::collections::BTreeSet<u16> =
        entries.iter().map(|key| cluster.primary_of(key)).collect();
    assert_eq!(primaries.len(), 3, "entries on every primary");
    assert!(cluster.pttl("{all}:tag") >= 59_000);
    assert_eq!(CACHE.invalidate_tag_blocking("parity:0").unwrap(), 30);
    for x in 0..60 {
        square(x);
    }
    assert_eq!(CALLS.get(), 90);
    assert_eq!(CACHE.invalidate_tag_blocking("all").unwrap(), 60);
    assert!(!cluster.exists("{all}:tag"));
    assert_eq!(CACHE.stats().errors, 0);
}

mod forever {
    //! A tagged entry whose TTL is beyond what a Lua number prints as an
    //! integer (1e17 ms and more).
    use super::*;
    pub static CACHE: CacheSlot = CacheSlot::new();
    pub static CALLS: Calls = Calls::new();

    /// About 3 million years: Lua would print it as `1e+17`.
    pub fn ages() -> Duration {
        Duration::from_millis(100_000_000_000_000_000)
    }

    #[redis_cached(ttl = ages(), cache = CACHE, tags = ["forever", "also"])]
    pub fn constant(n: u64) -> u64 {
        CALLS.inc();
        n
    }
}

#[test]
fn a_tag_set_takes_a_ttl_too_long_for_a_lua_number_to_print() {
    use forever::*;
    let redis = TestRedis::start();
    CACHE.set(redis.cache());
    assert_eq!(constant(1), 1);
    assert_eq!(CACHE.stats().errors, 0, "the tagged write failed");
    for set in ["{forever}:tag", "{also}:tag"] {
        assert!(redis.pttl(set) > 10_i64.pow(17), "{set} has no long TTL");
    }
    assert_eq!(CACHE.invalidate_tag_blocking("also").unwrap(), 1);
    assert_eq!(constant(1), 1);
    assert_eq!(CALLS.get(), 2, "invalidated, so the body ran again");
}
