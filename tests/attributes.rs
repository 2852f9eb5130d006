//! Every attribute argument, against a real Redis: what it does to keys,
//! to what is stored, and to how often the body runs.

mod support;

use std::borrow::Cow;
use std::sync::Arc;

use redis_cached::redis_cached;
use serde::{Deserialize, Serialize};
use support::{CacheSlot, Calls, TestRedis};

#[derive(Serialize)]
struct Pricing {
    currency: &'static str,
}

impl Pricing {
    #[redis_cached(ttl = 60, cache = METHODS)]
    fn price(&self, item: u64) -> String {
        METHOD_CALLS.inc();
        format!("{item} {}", self.currency)
    }

    #[redis_cached(ttl = 60, cache = METHODS)]
    fn shared(self: &Arc<Self>, item: u64) -> String {
        METHOD_CALLS.inc();
        format!("{item} {} (arc)", self.currency)
    }
}

/// A service holding a client: not `Serialize`, so it is skipped.
struct Service {
    _client: std::sync::Mutex<()>,
    rate: u64,
}

impl Service {
    #[redis_cached(ttl = 60, cache = METHODS, skip(self))]
    async fn quote(&self, item: u64) -> u64 {
        METHOD_CALLS.inc();
        item * self.rate
    }
}

static METHODS: CacheSlot = CacheSlot::new();
static METHOD_CALLS: Calls = Calls::new();

#[tokio::test]
async fn methods_key_on_the_receiver_unless_skipped() {
    let redis = TestRedis::start_for(&METHODS);
    let eur = Pricing { currency: "EUR" };
    let usd = Pricing { currency: "USD" };
    assert_eq!(eur.price(1), "1 EUR");
    assert_eq!(usd.price(1), "1 USD");
    assert_eq!(eur.price(1), "1 EUR");
    assert_eq!(METHOD_CALLS.get(), 2, "the receiver is part of the key");

    let shared = Arc::new(Pricing { currency: "GBP" });
    assert_eq!(shared.shared(2), "2 GBP (arc)");
    assert_eq!(shared.shared(2), "2 GBP (arc)");
    assert_eq!(METHOD_CALLS.get(), 3);

    let a = Service {
        _client: Default::default(),
        rate: 3,
    };
    let b = Service {
        _client: Default::default(),
        rate: 5,
    };
    assert_eq!(a.quote(2).await, 6);
    assert_eq!(
        b.quote(2).await,
        6,
        "skip(self): same arguments, same entry"
    );
    assert_eq!(METHOD_CALLS.get(), 4);
    assert_eq!(redis.keys().len(), 4);
}

#[test]
fn skip_and_key_choose_what_the_key_reads() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    struct Conn;

    #[redis_cached(ttl = 60, cache = CACHE, skip(conn, trace_id))]
    fn user(conn: &Conn, id: u64, trace_id: String) -> String {
        let _ = (conn, trace_id);
        CALLS.inc();
        format!("user-{id}")
    }

    #[derive(Clone)]
    struct Request {
        tenant: String,
        path: String,
        _body: Vec<u8>,
    }

    #[redis_cached(ttl = 60, cache = CACHE, key = (&req.tenant, &req.path))]
    fn route(req: Request) -> String {
        CALLS.inc();
        format!("{}{}", req.tenant, req.path)
    }

    assert_eq!(user(&Conn, 1, "t-1".into()), "user-1");
    assert_eq!(user(&Conn, 1, "t-2".into()), "user-1");
    assert_eq!(CALLS.get(), 1, "skipped arguments don't split entries");

    let req = Request {
        tenant: "acme".into(),
        path: "/a".into(),
        _body: vec![1],
    };
    assert_eq!(route(req.clone()), "acme/a");
    assert_eq!(
        route(Request {
            _body: vec![2, 3],
            ..req.clone()
        }),
        "acme/a"
    );
    assert_eq!(CALLS.get(), 2, "only the key expression counts");
    assert_eq!(
        route(Request {
            path: "/b".into(),
            ..req
        }),
        "acme/b"
    );
    assert_eq!(CALLS.get(), 3);
    assert_eq!(redis.keys().len(), 3);
}

mod old_place {
    use super::*;
    pub static CACHE: CacheSlot = CacheSlot::new();
    pub static CALLS: Calls = Calls::new();

    #[redis_cached(ttl = 60, cache = CACHE, name = "catalog::title")]
    pub fn title(id: u32) -> String {
        CALLS.inc();
        format!("title {id}")
    }
}

mod new_place {
    use super::*;

    /// Moved and renamed, but keeps reading `old_place::title`'s entries.
    #[redis_cached(ttl = 60, cache = old_place::CACHE, name = "catalog::title")]
    pub fn book_title(id: u32) -> String {
        old_place::CALLS.inc();
        format!("title {id}")
    }

    #[redis_cached(ttl = 60, cache = old_place::CACHE, name = "catalog::title", version = 2)]
    pub fn title_v2(id: u32) -> String {
        old_place::CALLS.inc();
        format!("title {id} (v2)")
    }
}

#[test]
fn name_keeps_entries_across_moves_and_version_starts_afresh() {
    let redis = TestRedis::start_for(&old_place::CACHE);
    assert_eq!(old_place::title(7), "title 7");
    assert_eq!(new_place::book_title(7), "title 7");
    assert_eq!(old_place::CALLS.get(), 1);
    let key = redis.only_key();
    assert!(key.starts_with("catalog::title:{"), "{key}");

    assert_eq!(new_place::title_v2(7), "title 7 (v2)");
    assert_eq!(new_place::title_v2(7), "title 7 (v2)");
    assert_eq!(old_place::CALLS.get(), 2);
    let keys = redis.keys();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys.iter().all(|k| k.starts_with("catalog::title:{")),
        "{keys:?}"
    );
}

#[tokio::test]
async fn cache_none_cache_err_and_unless_decide_what_is_stored() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = 60, cache = CACHE, cache_none = false)]
    async fn find(id: u32) -> Option<String> {
        CALLS.inc();
        (id == 1).then(|| "one".to_owned())
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum LookupError {
        NotFound,
    }

    #[redis_cached(ttl = 60, cache = CACHE, cache_err = true)]
    async fn lookup(id: u32) -> Result<String, LookupError> {
        CALLS.inc();
        if id == 0 {
            Err(LookupError::NotFound)
        } else {
            Ok(format!("#{id}"))
        }
    }

    #[redis_cached(ttl = 60, cache = CACHE, unless = |list: &Vec<u32>| list.is_empty())]
    async fn list(n: u32) -> Vec<u32> {
        CALLS.inc();
        (0..n).collect()
    }

    assert_eq!(find(2).await, None);
    assert_eq!(find(2).await, None);
    assert_eq!(CALLS.get(), 2, "None not stored");
    assert_eq!(find(1).await.as_deref(), Some("one"));
    assert_eq!(find(1).await.as_deref(), Some("one"));
    assert_eq!(CALLS.get(), 3, "Some stored");
    assert_eq!(redis.keys().len(), 1);

    assert_eq!(lookup(0).await, Err(LookupError::NotFound));
    assert_eq!(lookup(0).await, Err(LookupError::NotFound));
    assert_eq!(CALLS.get(), 4, "Err stored and served");
    assert_eq!(lookup(5).await.as_deref(), Ok("#5"));
    assert_eq!(lookup(5).await.as_deref(), Ok("#5"));
    assert_eq!(CALLS.get(), 5);
    assert_eq!(redis.keys().len(), 3);

    assert_eq!(list(0).await, Vec::<u32>::new());
    assert_eq!(list(0).await, Vec::<u32>::new());
    assert_eq!(CALLS.get(), 7, "empty results vetoed by unless");
    assert_eq!(list(2).await, vec![0, 1]);
    assert_eq!(list(2).await, vec![0, 1]);
    assert_eq!(CALLS.get(), 8);
    assert_eq!(redis.keys().len(), 4);
}

fn is_negative(n: &i64) -> bool {
    *n < 0
}

#[test]
fn unless_takes_a_fn_path() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = 60, cache = CACHE, unless = is_negative)]
    fn balance(account: u32) -> i64 {
        CALLS.inc();
        i64::from(account) - 10
    }

    assert_eq!(balance(3), -7);
    assert_eq!(balance(3), -7);
    assert_eq!(balance(30), 20);
    assert_eq!(balance(30), 20);
    assert_eq!(CALLS.get(), 3);
    assert_eq!(redis.keys().len(), 1);
}

#[tokio::test]
async fn generics_borrowed_and_impl_trait_arguments() {
    static CACHE: CacheSlot = CacheSlot::new();
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&CACHE);

    #[redis_cached(ttl = 60, cache = CACHE)]
    fn load<T: Serialize + serde::de::DeserializeOwned + Default>(id: u64) -> T {
        CALLS.inc();
        let _ = id;
        T::default()
    }

    #[redis_cached(ttl = 60, cache = CACHE)]
    async fn measure(
        name: Cow<'_, str>,
        parts: &[u32],
        note: Option<&str>,
        label: impl AsRef<str> + Serialize,
    ) -> usize {
        CALLS.inc();
        tokio::task::yield_now().await;
        name.len() + parts.len() + note.map_or(0, str::len) + label.as_ref().len()
    }

    assert_eq!(load::<u32>(1), 0);
    assert_eq!(load::<String>(1), "");
    assert_eq!(load::<u32>(1), 0);
    assert_eq!(load::<String>(1), "");
    assert_eq!(CALLS.get(), 2, "each instantiation has its own entry");

    assert_eq!(
        measure(Cow::Borrowed("ab"), &[1, 2], Some("x"), "yz").await,
        7
    );
    assert_eq!(
        measure(Cow::Owned("ab".into()), &[1, 2], Some("x"), "yz").await,
        7
    );
    assert_eq!(CALLS.get(), 3);
    assert_eq!(
        measure(Cow::Borrowed("ab"), &[1, 2], None, String::from("yz")).await,
        6
    );
    assert_eq!(CALLS.get(), 4);
    assert_eq!(redis.keys().len(), 4);
}

trait Repo {
    async fn get(&self, id: u64) -> Option<String>;
}

struct PgRepo;

impl Repo for PgRepo {
    #[redis_cached(ttl = 60, cache = TRAIT_CACHE, skip(self), siblings = false)]
    async fn get(&self, id: u64) -> Option<String> {
        TRAIT_CALLS.inc();
        Some(format!("row {id}"))
    }
}

static TRAIT_CACHE: CacheSlot = CacheSlot::new();
static TRAIT_CALLS: Calls = Calls::new();

#[tokio::test]
async fn trait_impl_methods_with_siblings_off() {
    let redis = TestRedis::start_for(&TRAIT_CACHE);
    let id = String::from("4").parse().unwrap();
    assert_eq!(PgRepo.get(id).await.as_deref(), Some("row 4"));
    assert_eq!(PgRepo.get(id).await.as_deref(), Some("row 4"));
    assert_eq!(TRAIT_CALLS.get(), 1);
    assert_eq!(redis.keys().len(), 1);
}

struct Euro;
struct Dollar;

impl Euro {
    #[redis_cached(ttl = 60, cache = TYPED, skip(self))]
    fn round(&self, x: u32) -> u32 {
        TYPED_CALLS.inc();
        x
    }
}

impl Dollar {
    #[redis_cached(ttl = 60, cache = TYPED, skip(self))]
    fn round(&self, x: u32) -> u32 {
        TYPED_CALLS.inc();
        x + 1
    }
}

static TYPED: CacheSlot = CacheSlot::new();
static TYPED_CALLS: Calls = Calls::new();

#[test]
fn same_named_methods_of_two_types_and_const_generics_do_not_share_entries() {
    static CALLS: Calls = Calls::new();
    let redis = TestRedis::start_for(&TYPED);

    #[redis_cached(ttl = 60, cache = TYPED)]
    fn scaled<const N: u32>(x: u32) -> u32 {
        CALLS.inc();
        x * N
    }

    assert_eq!(Euro.round(1), 1);
    assert_eq!(Dollar.round(1), 2, "skip(self) still keys on Self's type");
    assert_eq!(Euro.round(1), 1);
    assert_eq!(TYPED_CALLS.get(), 2);
    assert_eq!(scaled::<2>(5), 10);
    assert_eq!(scaled::<3>(5), 15);
    assert_eq!(scaled::<2>(5), 10);
    assert_eq!(CALLS.get(), 2);
    assert_eq!(redis.keys().len(), 4);
}
