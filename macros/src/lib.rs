//! The `#[redis_cached]` attribute. Use it through the `redis-cached` crate,
//! which re-exports it and holds everything the generated code calls.
//!
//! The attribute's manual is its doc comment below: each argument is
//! documented there once, with an example that runs as a doctest (the
//! README's table of arguments links to those sections). Links to the
//! runtime's items are docs.rs URLs, since this crate doesn't depend on it.
//!
//! Layout: `args.rs` parses the attribute, `validate.rs` refuses what can't
//! be cached, `signature.rs` models the function, `expand.rs` writes the
//! result. The macro never panics: bad input becomes a `compile_error!`
//! pointing at the offending token.

use proc_macro::TokenStream;

mod args;
mod duration;
mod expand;
mod signature;
mod validate;

/// Caches a function's results in Redis, keyed by its arguments.
///
/// ```
/// use redis_cached::redis_cached;
///
/// #[redis_cached(ttl = "5m")]
/// async fn price(item: u64, region: &str) -> Result<f64, std::io::Error> {
///     Ok(item as f64 * 1.2) // expensive: runs only when Redis has no value for (item, region)
/// }
/// # fn main() {}
/// ```
///
/// Each call hashes its arguments into a key and reads it with one `GET`. On
/// a hit the stored value is returned and the body does not run; on a miss the
/// body runs and its result is stored with `SET key value PX <ttl>`. If Redis
/// fails, the body runs and its result is returned (see [when Redis
/// fails][errors]). Use it through the `redis-cached` crate, which re-exports
/// it and holds everything the generated code calls.
///
/// Only [`ttl`](#ttl) is required. Every argument has a section below, with an
/// example:
///
/// | argument | in short |
/// |---|---|
/// | [`ttl`](#ttl) | how long a value lives: a literal, or an expression evaluated on every call |
/// | [`ttl_of`](#ttl_of) | a stored value's own TTL, computed from the value, at most `ttl` |
/// | [`sliding`](#sliding) | time-to-idle: each hit resets the entry's TTL |
/// | [`cache`](#cache) | the `Cache` to use instead of the default one |
/// | [`skip`](#skip) | parameters left out of the key |
/// | [`key`](#key) | key on this expression instead of the arguments |
/// | [`name`](#name) | the name keys use instead of `module::path::fn_name` |
/// | [`version`](#version) | a number mixed into every key of the function |
/// | [`cache_none`](#cache_none) | `false`: don't store `None` |
/// | [`cache_err`](#cache_err) | `true`: store `Err` too |
/// | [`unless`](#unless) | don't store a result for which this returns `true` |
/// | [`when`](#when) | a condition over the arguments; when `false` the call skips the cache |
/// | [`siblings`](#siblings) | `false`: don't generate `f_refresh`, `f_uncached`, `f_invalidate`, `f_invalidate_all` |
/// | [`lock`](#lock) | on a miss, one process computes under a Redis lock, the others wait |
/// | [`stale`](#stale) | serve a value this long past its `ttl` while it is refreshed |
/// | [`refresh`](#refresh) | refresh hot values before they expire (XFetch) |
/// | [`beta`](#beta) | XFetch's eagerness |
/// | [`local`](#local) | also keep decoded values in this process |
/// | [`compress`](#compress) | store values compressed (LZ4), or never |
/// | [`tags`](#tags) | tags that [`Cache::invalidate_tag`] deletes the entry by |
/// | [`crate`](#crate) | where generated code finds the runtime |
///
/// # What can be cached
///
/// - `fn` and `async fn`: free functions, associated functions and methods,
///   with their visibility, attributes, doc comments, generics, `where` clauses
///   and `unsafe` kept as written. `return` and `?` in the body work as before.
///   A plain `fn` needs the `sync` feature (a default one).
/// - Arguments must be `serde::Serialize`: references (`&str`, `&[T]`, `&T`),
///   `Cow`, `Option<&str>`, tuples and destructuring patterns
///   (`(a, b): (u32, u32)`, `Point { x, y }: Point`) are fine.
///   `Cow::Borrowed("ab")` and `Cow::Owned("ab".into())` share an entry.
/// - `impl Trait` arguments, as long as the trait bounds include `Serialize`
///   (`label: impl AsRef<str> + Serialize`). The concrete type's name is part of
///   the key, so `"yz"` and `String::from("yz")` get an entry each.
/// - Generic functions: the function's type parameters are part of the key, so
///   each instantiation has its own entries (`load::<u32>(1)` and
///   `load::<String>(1)` never share one).
/// - Methods taking `&self` or `self: &Arc<Self>`: the receiver is part of the
///   key, like an argument, so `Self` must be `Serialize` (for `Arc<Self>`, enable
///   serde's `rc` feature: `serde = { version = "1", features = ["derive", "rc"] }`).
///   With `skip(self)` the receiver is left out of the key and need not be
///   `Serialize`: every receiver then shares the entries of the same arguments,
///   which is what you want for a service holding a client or a pool.
///
///   ```
///   # use redis_cached::redis_cached;
///   # use serde::Serialize;
///   # struct Service;
///   #[derive(Serialize)]
///   struct Pricing { currency: &'static str }
///
///   impl Pricing {
///       #[redis_cached(ttl = 60)]                 // EUR and USD prices: separate entries
///       fn price(&self, item: u64) -> String { format!("{item} {}", self.currency) }
///   }
///
///   impl Service {
///       #[redis_cached(ttl = 60, skip(self))]     // keyed on `item` only
///       async fn quote(&self, item: u64) -> u64 { item * 2 }
///   }
///   # fn main() {}
///   ```
/// - `async fn`s that borrow their arguments across `.await`
///   (`async fn f(name: &str) -> usize { something().await; name.len() }`).
/// - The return type must be `Serialize + DeserializeOwned`. A type that isn't
///   gets a compile error pointing at that argument or return type.
/// - `Result<T, E>`: only `Ok(T)` is cached, so only `T` needs serde; `E` can be
///   any type (`std::io::Error`, `anyhow::Error`, …). An `Err` is returned as is
///   and nothing is written (unless [`cache_err = true`](#cache_err)). A return
///   type is taken as a `Result` when its last path segment is named `Result`
///   (so `io::Result<T>` and `anyhow::Result<T>` count).
/// - `Option<T>`: both `Some` and `None` are cached (unless
///   [`cache_none = false`](#cache_none)).
/// - Methods of a trait impl, sync or `async`, with
///   [`siblings = false`](#siblings): the [generated
///   functions](#generated-functions) would be extra methods of the trait impl,
///   which Rust refuses. Forgetting it gives, from
///   `tests/ui/fail/trait_impl_without_siblings_false.rs`:
///
///   ```text
///   error[E0407]: method `get_refresh` is not a member of trait `Repo`
///    --> ui/fail/trait_impl_without_siblings_false.rs:8:5
///     |
///   8 |     #[redis_cached::redis_cached(ttl = 60, skip(self))]
///     |     ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ not a member of trait `Repo`
///   ```
///
///   and the same for `get_uncached`, `get_invalidate` and `get_invalidate_all`.
///   The fix is at the attribute the error points to:
///
///   ```
///   # use redis_cached::redis_cached;
///   # trait Repo { async fn get(&self, id: u64) -> Option<String>; }
///   # struct PgRepo;
///   impl Repo for PgRepo {
///       #[redis_cached(ttl = 60, skip(self), siblings = false)]
///       async fn get(&self, id: u64) -> Option<String> { Some(format!("row {id}")) }
///   }
///   # fn main() {}
///   ```
///
/// Refused, with a compile error at the offending token: anything that is not a
/// function with a body (struct, `impl` block, trait method without a body; a
/// closure is refused by rustc itself), a `const fn`, a variadic function, a
/// function without a return type, `impl Trait` anywhere in the return type, a
/// `&mut` argument or `&mut self` (a hit would skip the mutation), and unknown,
/// duplicate or invalid attribute arguments or combinations of them (see
/// [wrong combinations](#wrong-combinations)). All mistakes of one function
/// are reported at once. `tests/ui/fail/` shows each error.
///
/// Within one process, concurrent misses of a key always share one run of the
/// body (see [consistency]).
///
/// # Generated functions
///
/// Unless [`siblings = false`](#siblings), next to a cached `f` the attribute
/// generates four functions. They have `f`'s visibility, are `async` when `f`
/// is, and take the same receiver and parameters as `f` (except
/// `f_invalidate_all`, which takes none); skipped parameters are accepted and
/// ignored, as by `f`.
///
/// | function | returns | does |
/// |---|---|---|
/// | `f_refresh(args…)` | `R` | Runs the body and stores its result whatever the cache holds, then returns it. The same rules decide what is stored (`Err`, `None` with `cache_none = false`, `unless`). Like `f`, it fails open. |
/// | `f_uncached(args…)` | `R` | The body as written: no read, no write. |
/// | `f_invalidate(args…)` | `Result<bool, redis_cached::Error>` | Deletes this call's entry; `Ok(true)` if there was one. |
/// | `f_invalidate_all()` | `Result<u64, redis_cached::Error>` | Deletes every entry of `f`, for all arguments (and all `version`s); returns how many. |
///
/// ```
/// # use redis_cached::redis_cached;
/// # async fn db_update(_product: u64, _cents: u64) {}
/// # async fn select_price(product: u64) -> u64 { product * 100 }
/// # struct Shop;
/// #[redis_cached(ttl = "10m")]
/// async fn price(product: u64) -> u64 { select_price(product).await /* SELECT price … */ }
///
/// async fn set_price(product: u64, cents: u64) -> Result<(), redis_cached::Error> {
///     db_update(product, cents).await;
///     price_invalidate(product).await?;       // next price(product) reads the database
///     // or: price_refresh(product).await;    // read it now and store it
///     Ok(())
/// }
///
/// impl Shop {
///     #[redis_cached(ttl = 60, skip(self))]
///     pub async fn price(&self, item: u64) -> Result<u64, String> { Ok(item * 100) }
///
///     #[redis_cached(ttl = 60)]
///     pub async fn tax(item: u64) -> u64 { item / 5 }
/// }
/// # async fn demo(shop: Shop) -> Result<(), redis_cached::Error> {
/// shop.price_invalidate(5).await?;            // methods keep their receiver
/// Shop::tax_invalidate_all().await?;          // associated functions are called on the type
/// # Ok(())
/// # }
/// # fn main() {}
/// ```
///
/// `cargo run --example invalidation` walks through all four on a product
/// price that changes in the database (with Redis if it can reach one, else
/// with the in-memory cache).
///
/// The same can be had from a `Cache`, by the function's name:
/// [`Cache::invalidate_all`] and, for sync code, `invalidate_all_blocking`,
/// both `Result<u64, redis_cached::Error>`. `name` is the function's
/// [`name = "…"`](#name), else its `module::path::fn_name` (for a method,
/// `module::path::method`, without the type). On Redis they walk the keys with
/// `SCAN … MATCH <prefix><name>:{* COUNT 500` and delete each batch with
/// `UNLINK` as it comes, never `KEYS`, so Redis keeps serving other clients;
/// glob characters (`* ? [ ] \`) in the prefix or name are escaped and match
/// only themselves. A function whose name merely starts the same
/// (`price_eu`), or lives in a module named like it (`price::tax`), keeps its
/// entries.
///
/// Invalidation does not stop a call that is computing at that moment: it
/// stores what it computed (perhaps from before your write) when it finishes.
/// Where that matters, write first, then call `f_refresh`, which stores the
/// new value whatever the cache holds.
///
/// Unlike cached calls, `f_invalidate`, `f_invalidate_all` and
/// `Cache::invalidate_all(_blocking)` do not fail open: a Redis error is
/// returned, because "the entry is gone" is a promise they could not keep.
///
/// # Arguments
///
/// ## `ttl`
///
/// How long a value lives. Required.
///
/// ```
/// use std::time::Duration;
/// # use redis_cached::redis_cached;
/// # struct Settings { price_ttl: Duration }
/// # fn settings() -> Settings { Settings { price_ttl: Duration::from_secs(60) } }
/// # struct Config { rate_secs: u64 }
/// # static CONFIG: Config = Config { rate_secs: 60 };
///
/// #[redis_cached(ttl = 60)]                              // 60 seconds
/// fn square(x: u64) -> u64 { x * x }
///
/// #[redis_cached(ttl = "1h30m")]                         // checked when it compiles
/// fn report(day: u32) -> String { format!("day {day}") }
///
/// #[redis_cached(ttl = settings().price_ttl)]            // a Duration from configuration
/// async fn price(item: u64) -> f64 { item as f64 * 1.2 }
///
/// #[redis_cached(ttl = CONFIG.rate_secs)]                // whole seconds, as a u64
/// fn rate(id: u32) -> u64 { id as u64 * 3 }
///
/// #[redis_cached(ttl = if premium { Duration::from_secs(600) } else { Duration::from_secs(60) })]
/// fn quota(premium: bool) -> u32 { if premium { 1000 } else { 100 } }
/// # fn main() {}
/// ```
///
/// An integer literal is seconds; a string is one or more `<number><unit>`
/// parts with units `ms`, `s`, `m`, `h`, `d` (`"90s"`, `"5m"`, `"1h30m"`,
/// `"250ms"`). A literal is checked when the function compiles: zero,
/// negative and unreadable literals are compile errors. Any other expression
/// is evaluated on every call (by `f` and `f_refresh`, before the body runs;
/// it may read the parameters and `self`) and must be a
/// `std::time::Duration` or a `u64` of seconds, or a reference to one;
/// another type is a compile error at the expression (`E0277`: `` `ttl` takes
/// a `std::time::Duration` or whole seconds as a `u64`, not `i32` ``). The
/// value stored by a call lives that call's TTL (plus [`stale`](#stale), if
/// set).
///
/// A TTL of zero at run time means "don't cache this result": the body's
/// result is returned (and shared with concurrent callers of the same key) but
/// not written; it is logged at `debug` and counted neither as a store nor as an
/// error. A value stored earlier under a positive TTL is still served until it
/// expires; to bypass the cache altogether, use [`when`](#when).
///
/// ## `ttl_of`
///
/// A stored value's own TTL, computed from the value.
///
/// ```
/// # use std::time::Duration;
/// # use redis_cached::redis_cached;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug)]
/// # struct AuthError;
/// #[derive(Serialize, Deserialize)]
/// struct Token { secret: String, expires_in: Duration }
///
/// #[redis_cached(ttl = "1h", ttl_of = |t: &Token| t.expires_in)]
/// async fn access_token(client: &str) -> Result<Token, AuthError> {
///     Ok(Token { secret: format!("{client}-secret"), expires_in: Duration::from_secs(20 * 60) })
/// }
/// # fn main() {}
/// // a token good for 20 minutes is cached for 20 minutes, one good for a day for an hour
/// ```
///
/// Spring's `TtlFunction`, go-redis/cache's `Item.TTL`: the TTL of an entry
/// computed from the value it stores. The rule: **the entry lives
/// `min(ttl_of(value), ttl)`** — `ttl` stays required and is the upper bound,
/// so a value claiming to be good for a year can't outlive what the function
/// allows. A zero (an already expired token) stores nothing, as a zero
/// run-time `ttl` does. `stale` is added on top, as usual, and the value is
/// fresh for the shorter TTL.
///
/// A closure without captures or a path to a function, taken as
/// `fn(&V) -> std::time::Duration`, where `V` is the value stored: `T` for
/// `Result<T, E>` (and for `Option<T>` with `cache_none = false`), the whole
/// return type otherwise. It is asked only about values that are stored,
/// by `f` and by `f_refresh`. A wrong parameter or return type is `E0308` at
/// the closure.
///
/// ## `sliding`
///
/// Time-to-idle: each hit resets the entry's TTL to a full `ttl`.
///
/// ```
/// # use redis_cached::redis_cached;
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct Session { user: u64 }
/// #[redis_cached(ttl = "30m", sliding = true)]
/// async fn session(token: String) -> Option<Session> { Some(Session { user: token.len() as u64 }) }
/// # fn main() {}
/// // a session read at least every 30 minutes stays cached; one left alone for 30 minutes expires
/// ```
///
/// Each hit reads with `GETEX key PX <ttl>` (Redis 6.2 or later), which
/// returns the value and sets the key's TTL back to a full `ttl` in one
/// command: no extra round trip. A `ttl = EXPR` slides to the TTL of the call
/// that reads. `mem://` does the same, atomically per key. A miss stores as
/// usual.
///
/// A hit in the in-process tier can't reach Redis without a round trip, so a
/// sliding function never uses it: `local = N` with `sliding = true` is a
/// compile error, and the cache-wide tier (`CacheBuilder::local`) doesn't take
/// its values; every hit reads Redis. `stale` and `refresh` are refused too
/// (they renew a value by its age, and a sliding entry's age says nothing about
/// how long it has been cached), and so is `ttl_of` (the TTL is reset before
/// the value is decoded). `sliding = false` is the default.
///
/// ## `cache`
///
/// The [`Cache`] to use: an expression that derefs to a `redis_cached::Cache`,
/// typically a `static CACHE: LazyLock<Cache>`. Default:
/// [`default_cache()`][default_cache], built from `REDIS_CACHED_URL` (see
/// [connecting]).
///
/// ```
/// use std::sync::LazyLock;
/// use redis_cached::{Cache, redis_cached};
///
/// static SESSIONS: LazyLock<Cache> = LazyLock::new(|| {
///     Cache::builder("redis://sessions.internal:6379/2").prefix("auth:").build().expect("valid URL")
/// });
///
/// #[redis_cached(ttl = "15m", cache = SESSIONS)]
/// fn session_user(token: &str) -> Option<u64> { token.strip_prefix("user-")?.parse().ok() }
/// # fn main() {}
/// ```
///
/// ## `skip`
///
/// Leave these parameters (or the receiver) out of the key; they need not be
/// `Serialize`. Calls that differ only in them share an entry.
///
/// ```
/// # use redis_cached::redis_cached;
/// # struct Conn;
/// #[redis_cached(ttl = 60, skip(conn, trace_id))]
/// fn user(conn: &Conn, id: u64, trace_id: String) -> String { format!("user {id}") }
/// # fn main() {}
/// // user(&conn, 1, "t-1".into()) and user(&conn, 1, "t-2".into()) share one entry
/// ```
///
/// `skip` names parameters bound to a plain name (`id: u64`) or `self`; a
/// parameter written as a pattern (`mut x: u64`, `(a, b): (u32, u32)`) can't be
/// skipped. The parameters stay in the signature of `f` and of its siblings.
///
/// ## `key`
///
/// Key on this expression (any `Serialize` value, computed from the
/// parameters) instead of the arguments.
///
/// ```
/// # use redis_cached::redis_cached;
/// # struct Request { tenant: String, path: String, body: Vec<u8> }
/// #[redis_cached(ttl = 60, key = (&req.tenant, &req.path))]
/// fn route(req: Request) -> String { format!("{}{}", req.tenant, req.path) }
/// # fn main() {}
/// // requests with the same tenant and path share an entry, whatever their body
/// ```
///
/// The expression is evaluated on every call (also by `f_refresh` and
/// `f_invalidate`) and hashed in place of the arguments; the receiver's type,
/// the function's type and const parameters, the stored type's shape and
/// `version` still count. The parameters need not be `Serialize`. Not with `skip`.
///
/// ## `name`
///
/// The name keys use instead of `module::path::fn_name`; also the name
/// `f_invalidate_all` and [`Cache::invalidate_all`] go by.
///
/// ```
/// mod new_place {
///     # use redis_cached::redis_cached;
///     /// Moved and renamed, but keeps the entries written as `old_place::title`.
///     #[redis_cached(ttl = 60, name = "catalog::title")]
///     pub fn book_title(id: u32) -> String { format!("book {id}") }
/// }
/// # fn main() {}
/// ```
///
/// A string literal, not empty, without whitespace or any of `{ } * ? [ ] \`
/// (keys use braces as a hash tag, and invalidation matches with a glob). Two
/// functions with the same `name` share entries where their arguments and
/// the shapes of their stored types match, and `f_invalidate_all` of one deletes the other's entries.
/// Methods are told apart by their receiver's type (also with `skip(self)`),
/// but same-named associated functions *without* a receiver, in two impls of
/// one module and with the same argument and return types, share entries
/// unless given distinct `name`s. See the [key format].
///
/// ## `version`
///
/// A number mixed into every key of the function when it is not 0 (the
/// default). Bump it when the meaning of the result changes.
///
/// ```
/// # use redis_cached::redis_cached;
/// #[redis_cached(ttl = "1h", name = "catalog::title", version = 2)]
/// pub fn title(id: u32) -> String { format!("book {id}: now with the subtitle") }
/// # fn main() {}
/// ```
///
/// An integer literal from 0 to 4294967295. A bump gives the function new keys:
/// entries of the old version are no longer read and expire by their TTL
/// (`f_invalidate_all` deletes them at once: the name is the same).
///
/// ## `cache_none`
///
/// For `Option<T>` functions: `false` doesn't store `None` (default `true`:
/// store it).
///
/// ```
/// # use redis_cached::redis_cached;
/// #[redis_cached(ttl = 60, cache_none = false)]
/// async fn find(id: u32) -> Option<String> { (id % 2 == 0).then(|| format!("item {id}")) }
/// # fn main() {}
/// // Some(..) is stored; None is returned and asked again next time
/// ```
///
/// ## `cache_err`
///
/// For `Result<T, E>` functions: `true` stores `Err` too (default `false`);
/// `E` must then be `Serialize + DeserializeOwned`.
///
/// ```
/// # use redis_cached::redis_cached;
/// # use serde::{Deserialize, Serialize};
/// #[derive(Serialize, Deserialize)]
/// enum LookupError { NotFound }
///
/// #[redis_cached(ttl = 60, cache_err = true)]
/// async fn lookup(id: u32) -> Result<String, LookupError> { Err(LookupError::NotFound) }
/// # fn main() {}
/// // Err(NotFound) is stored and served from the cache like an Ok
/// ```
///
/// `cache_err = true` needs the error type written out (`Result<T, E>`, not an
/// alias such as `io::Result<T>`).
///
/// ## `unless`
///
/// Don't store a result for which this returns `true`.
///
/// ```
/// # use redis_cached::redis_cached;
/// #[redis_cached(ttl = 60, unless = |list: &Vec<u32>| list.is_empty())]
/// async fn list(n: u32) -> Vec<u32> { (0..n).collect() }
///
/// fn is_negative(n: &i64) -> bool { *n < 0 }
///
/// #[redis_cached(ttl = 60, unless = is_negative)]
/// fn balance(account: u32) -> i64 { account as i64 - 100 }
/// # fn main() {}
/// ```
///
/// A closure without captures or a path to a function, taken as
/// `fn(&R) -> bool` where `R` is the whole return type (`&Result<T, E>`,
/// `&Option<T>`, …). It is asked only about results that would otherwise be
/// stored, by `f` and by `f_refresh`; a vetoed result is returned and not written.
///
/// ## `when`
///
/// A `bool` expression over the arguments, evaluated before each call: when it
/// is `false` the call neither reads nor writes the cache and just runs the
/// body (Spring's `condition`; [`unless`](#unless) is the check after the
/// call).
///
/// ```
/// # use redis_cached::redis_cached;
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct Profile { id: u64 }
/// #[redis_cached(ttl = 60, when = user_id != 0)]
/// fn profile(user_id: u64) -> Profile { Profile { id: user_id } }
/// // profile(0) (the anonymous user) runs the body every time and touches no key
///
/// #[redis_cached(ttl = 60, key = item, when = !fresh)]
/// async fn price(item: u32, fresh: bool) -> f64 { item as f64 * 1.2 }
/// // price(1, true) skips the stored value and leaves it as it is
/// # fn main() {}
/// ```
///
/// Any expression of type `bool` over the parameters (bound to plain names)
/// and `self`, evaluated on every call before the body runs. When it is
/// `false`, the call reads nothing, stores nothing and counts nothing in
/// `Cache::stats`: it is `f_uncached`. `f_refresh` evaluates it too: when
/// `false` it runs the body and stores nothing. `f_invalidate` and
/// `f_invalidate_all` ignore it. A value that is not a `bool` is a type error
/// (`E0308`) at the expression.
///
/// ## `siblings`
///
/// `false`: don't generate the [generated functions](#generated-functions)
/// `f_refresh`, `f_uncached`, `f_invalidate`, `f_invalidate_all`. Default
/// `true`.
///
/// ```
/// # use redis_cached::redis_cached;
/// #[redis_cached(ttl = 60, siblings = false)]
/// fn rate(id: u32) -> u64 { id as u64 * 3 }   // no rate_refresh, rate_uncached, rate_invalidate, rate_invalidate_all
/// # fn main() {}
/// ```
///
/// Needed on methods of trait impls (see [what can be cached](#what-can-be-cached)).
///
/// ## `lock`
///
/// On a miss, compute under the Redis lock `<key>:lock`, held for at most this
/// long, so that one process computes and the others wait for its value. Same
/// syntax as a literal `ttl` (`lock = 5`, `lock = "5s"`).
///
/// ```
/// # use redis_cached::redis_cached;
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct Report { day: u32 }
/// # async fn fleet_sql(day: u32) -> Report { Report { day } }
/// #[redis_cached(ttl = "10m", lock = "30s")]
/// async fn daily_report(day: u32) -> Report { fleet_sql(day).await /* a minute of SQL across the fleet? only once */ }
/// # fn main() {}
/// ```
///
/// Within one process, concurrent misses of a key always share one run of the
/// body; `lock` extends that across processes (how, step by step:
/// [consistency]). Make it longer than the body usually takes: it is also how
/// long the others wait.
///
/// ## `stale`
///
/// Keep a value this long past its `ttl`; a call that finds it stale returns
/// it and triggers one refresh (stale-while-revalidate). Same syntax as a
/// literal `ttl`.
///
/// ```
/// # use redis_cached::redis_cached;
/// # type Rates = std::collections::HashMap<String, f64>;
/// #[redis_cached(ttl = "1m", stale = "10m")]            // serve up to 10 min past the ttl
/// async fn exchange_rates(base: String) -> Rates { Rates::from([(base, 1.0)]) }
/// # fn main() {}
/// ```
///
/// Who runs the refresh, and how it combines with `refresh`: [consistency].
///
/// ## `refresh`
///
/// `refresh = "xfetch"`: refresh hot values *before* they expire, with
/// XFetch's probability, so no caller meets a miss.
///
/// ```
/// # use redis_cached::redis_cached;
/// # type Entry = (String, u64);
/// #[redis_cached(ttl = "1m", refresh = "xfetch")]        // refresh before the ttl ends
/// async fn leaderboard(game: u64) -> Vec<Entry> { vec![("ada".into(), game)] }
/// # fn main() {}
/// ```
///
/// `"xfetch"` is the only value. It needs traffic near a key's expiry, and a
/// body that is short next to the `ttl`: [consistency].
///
/// ## `beta`
///
/// XFetch's eagerness (default 1.0, the paper's optimum; larger refreshes
/// earlier). Only with [`refresh`](#refresh); a positive number.
///
/// ```
/// # use redis_cached::redis_cached;
/// #[redis_cached(ttl = "1m", refresh = "xfetch", beta = 2.0)]
/// async fn top_sellers(region: u32) -> Vec<u64> { vec![region as u64] }
/// # fn main() {}
/// ```
///
/// ## `local`
///
/// Also keep up to this many decoded values of the function in this process,
/// in front of Redis: a hit there costs no round trip and no decoding, only a
/// clone.
///
/// ```
/// # use redis_cached::redis_cached;
/// # #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// # struct Product { id: u64 }
/// #[redis_cached(ttl = 60, local = 1000)]
/// async fn product(id: u64) -> Product { Product { id } }
/// # fn main() {}
/// ```
///
/// The stored value type must be `Clone + Send + Sync + 'static` (a missing
/// `Clone` is a compile error at the return type). Kept coherent through Redis
/// client-side caching (Redis 6+); `0` is a compile error. A function with
/// `local = N` has its own table of `N` entries; `CacheBuilder::local` gives
/// every function of a cache one shared table. Needs the `local` feature (a
/// default one). How the tier stays coherent, and what that costs: [the local
/// tier][local_tier].
///
/// ## `compress`
///
/// `true`: store the function's values compressed (LZ4) when their encoding is
/// over the cache's `compress_above`, or over 1 KiB on a cache without one.
/// `false`: never compress them, whatever the cache says. Default: as the
/// cache says (nothing is compressed unless it sets `compress_above`).
///
/// ```
/// # use redis_cached::redis_cached;
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct Order { id: u64, customer: String, status: String }
/// #[redis_cached(ttl = "10m", compress = true)]          // values over 1 KiB are stored compressed
/// fn open_orders(region: String) -> Vec<Order> {
///     (0..500).map(|id| Order { id, customer: format!("{region}-customer"), status: "open".into() }).collect()
/// }
///
/// #[redis_cached(ttl = "10m", compress = false)]         // never, even on a cache that compresses
/// fn thumbnail(id: u64) -> Vec<u8> { vec![id as u8; 4096] /* already compressed image bytes */ }
/// # fn main() {}
/// ```
///
/// Large values of text, JSON-like structs and repeated strings often shrink 3
/// to 10 times with LZ4 (the `lz4_flex` crate, safe Rust): Redis holds less
/// memory, and fewer bytes cross the network on every hit, for some CPU on each
/// write and read (the benchmark's `compressed` rows measure both). To compress
/// every function of a cache, set a threshold on it,
/// `Cache::builder(url).compress_above(4096)`: each value whose encoding is
/// over that many bytes is compressed. Which wins:
///
/// | function says | cache without `compress_above` | cache with `compress_above(n)` |
/// |---|---|---|
/// | nothing | not compressed | compressed above `n` bytes |
/// | `compress = true` | compressed above 1 KiB | compressed above `n` bytes |
/// | `compress = false` | not compressed | not compressed |
///
/// A value that doesn't get smaller (random or already compressed bytes) is
/// stored as it is. Compression is marked in each value's format byte, so
/// values written before it was turned on (or after it was turned off) still
/// hit, and a cache can hold both. `max_value_size` counts a value before
/// compression, both ways: a compressed value that claims to expand past it is
/// refused before anything is allocated, and, like any garbage, read as a miss.
/// With a `signing_key`, the tag covers the compressed bytes and is checked
/// before they are decompressed. A process on a release before compression
/// reads a compressed value as a miss and overwrites it uncompressed.
///
/// ## `tags`
///
/// String expressions over the arguments (`String`, `&str`, `&String`,
/// `Cow<str>`), evaluated on every call: [`Cache::invalidate_tag`] of any of
/// them deletes the entry, whichever function stored it.
///
/// ```
/// # use redis_cached::{Cache, redis_cached};
/// # use std::sync::LazyLock;
/// # #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// # struct Profile { id: u64 }
/// static CACHE: LazyLock<Cache> = LazyLock::new(Cache::in_memory);
///
/// #[redis_cached(ttl = 60, cache = CACHE, tags = [format!("user:{user_id}"), "profiles"])]
/// fn profile(user_id: u64) -> Profile { Profile { id: user_id } }
///
/// #[redis_cached(ttl = "10m", cache = CACHE, tags = [format!("user:{user_id}")])]
/// fn orders(user_id: u64, page: u32) -> Vec<u64> { vec![user_id; page as usize] }
///
/// # fn main() -> Result<(), redis_cached::Error> {
/// profile(7);
/// orders(7, 1);
/// orders(7, 2);
/// profile(8);
/// // User 7 changed: drop everything cached about them, in both functions.
/// assert_eq!(CACHE.invalidate_tag_blocking("user:7")?, 3);
/// assert_eq!(CACHE.invalidate_tag_blocking("profiles")?, 1); // user 8's profile
/// # Ok(())
/// # }
/// ```
///
/// `Cache::invalidate_tag(tag)` (async) and `invalidate_tag_blocking` delete
/// every entry stored with `tag`, by any function of the cache, and return how
/// many they deleted. A tag is a plain string, compared as is: braces, `*` or
/// `:` in it mean nothing, an unused tag deletes nothing (no registration), and
/// the tag expressions run once per call, never at invalidation. Like
/// `f_invalidate_all`, they return Redis errors instead of failing open. A
/// non-list, an empty list or `sliding = true` is a compile error; a
/// non-string is `E0277` at the expression.
///
/// On Redis each tag has a set, `<prefix>{<tag>}:tag` (see the [key format]),
/// naming the keys stored with it:
///
/// - **It expires with its entries.** Each tagged write raises the set's TTL to
///   the entry's (`ttl`, plus `stale`) plus a second, never lowers it: the set
///   lives as long as its longest-lived member, and is gone a second after
///   they all expired (the second covers the round trip between a set and its
///   value on a cluster).
///   `invalidate_tag` empties it. On one server each tagged write also drops
///   up to two members, picked at random, whose entry is gone, so a tag that
///   is written often and never invalidated holds in the long run at most
///   about as many keys of expired entries as of live ones. On a cluster a
///   script can't look at other slots, and the keys of expired entries stay
///   in the set until it expires.
/// - **A crash never makes a tag miss its entry.** On one server the sets and
///   the value are written by one script, atomically. On a Redis Cluster they
///   are in different slots: the sets are written first, and the value only
///   after they all were (if one fails, the value is not stored, and the
///   failure is counted like any other). A crash in between leaves at worst a
///   set naming a key that holds nothing, or one a later call rewrote; deleting
///   that is a cache miss, never a wrong answer.
/// - **A tag only ever deletes entries of its cache.** `invalidate_tag` deletes
///   a member only if it has the form of an entry key of this cache
///   (`<prefix><name>:{<32 hex digits>}`): whatever else a set holds (a key
///   outside the prefix, a lock, another set) is dropped from it and kept. The
///   worst a stale member can do is delete an entry of the same function that
///   a later call stored under the same key with other tags (tags that depend
///   on something the key skips): a miss. `mem://` keeps each entry's own tags
///   and has no such case.
/// - `invalidate_tag` walks the set with `SSCAN` and, per batch, `UNLINK`s the
///   entries then `SREM`s them, so a run cut short leaves members naming
///   deleted keys and calling again finishes. A call that stores while it runs
///   may keep its value.
/// - `f_invalidate` deletes the entry and leaves its member, which deletes
///   nothing (the count says so) until a call stores that key again.
/// - The in-process tier (`local`) drops its copies of deleted entries through
///   client-side caching, as for any deletion; `mem://` has no in-process
///   tier. Refreshes (`stale`, `refresh`, `f_refresh`) store with the call's
///   tags, as misses do.
/// - `sliding = true` is refused: a hit would extend the entry past its sets'
///   TTL, and `invalidate_tag` would miss it.
///
/// ## `crate`
///
/// The path generated code reaches the runtime by, for a crate that depends
/// on `redis-cached` under another name or re-exports it (as serde's and
/// tokio's `crate = "…"`). A string or a bare path. Default `::redis_cached`.
///
/// ```
/// /// A facade that re-exports the runtime, as a company-wide crate might.
/// mod facade {
///     pub use redis_cached as cache;
/// }
///
/// #[facade::cache::redis_cached(ttl = 60, crate = crate::facade::cache)]
/// fn double(x: u64) -> u64 { x * 2 }
/// # fn main() {}
/// ```
///
/// # Wrong combinations
///
/// Each is a compile error at the argument to change:
///
/// - `key` together with `skip`: `` `key` replaces the whole key, so `skip` has nothing to do; remove one of them ``.
/// - `skip(x)` where `x` is not a parameter (or `skip(self)` on a function
///   without a receiver): the message lists the parameters `skip` accepts.
///   `skip = x`: `` write `skip(arg, …)` ``.
/// - `cache_none` on a function not returning `Option<T>`;
///   `cache_err` on one not returning `Result<T, E>`; `cache_err = true` on a
///   `Result` alias; `cache_err = true` with an `E` that is not
///   `Serialize + DeserializeOwned` (`E0277` at `E`).
/// - `unless` whose parameter type is not `&R` (`E0308`, expected fn pointer
///   `for<'a> fn(&'a R) -> bool`).
/// - `when` whose value is not a `bool` (`E0308` at the expression).
/// - A `ttl` expression that is neither a `Duration` nor a `u64` (`E0277` at
///   the expression).
/// - `ttl_of` whose parameter is not `&V` or that does not return a
///   `Duration` (`E0308`, expected fn pointer `for<'a> fn(&'a V) -> Duration`).
/// - `sliding = true` with `local`, `stale`, `refresh` or `ttl_of`: `` `sliding`
///   can't be used with `local`: a hit in this process can't extend the entry's
///   TTL in Redis without a round trip; remove one of them `` (each names its
///   reason).
/// - `tags` that is not a `[…]` list, or an empty one; a tag that is not a
///   string (`E0277` at the expression); `tags` with `sliding = true`.
/// - A cached method in a trait impl without `siblings = false` (`E0407`,
///   [above](#what-can-be-cached)).
/// - `refresh` with anything but `"xfetch"`; `beta` without `refresh`, or not
///   a positive number.
/// - `local = 0`; `local = N` on a value type that is not `Clone` (`E0277`).
/// - Any argument given twice, an unknown one (the message lists the known
///   ones), a missing `ttl`, a zero or negative `ttl`, `lock` or `stale`, `name` and
///   `version` values outside what is described above, and `true`/`false`
///   arguments given anything else.
/// - Without the `sync` feature, a plain (non-`async`) `fn`; without the
///   `local` feature, `local = N` (each error names the feature to enable).
///
/// [`Cache`]: https://docs.rs/redis-cached/latest/redis_cached/struct.Cache.html
/// [`Cache::invalidate_all`]: https://docs.rs/redis-cached/latest/redis_cached/struct.Cache.html#method.invalidate_all
/// [`Cache::invalidate_tag`]: https://docs.rs/redis-cached/latest/redis_cached/struct.Cache.html#method.invalidate_tag
/// [default_cache]: https://docs.rs/redis-cached/latest/redis_cached/fn.default_cache.html
/// [connecting]: https://docs.rs/redis-cached/latest/redis_cached/guide/connecting/index.html
/// [errors]: https://docs.rs/redis-cached/latest/redis_cached/guide/errors/index.html
/// [consistency]: https://docs.rs/redis-cached/latest/redis_cached/guide/consistency/index.html
/// [local_tier]: https://docs.rs/redis-cached/latest/redis_cached/guide/local_tier/index.html
/// [key format]: https://docs.rs/redis-cached/latest/redis_cached/guide/key_format/index.html
#[proc_macro_attribute]
pub fn redis_cached(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    match expand(args.into(), item.clone()) {
        Ok(tokens) => tokens.into(),
        // Keep the function as written, so the error above is the only one the user sees.
        Err(error) => {
            let mut tokens = error.into_compile_error();
            tokens.extend(item);
            tokens.into()
        }
    }
}

fn expand(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> syn::Result<proc_macro2::TokenStream> {
    let parsed_args = args::Args::parse(args);
    let func = syn::parse2::<syn::Item>(item).and_then(validate::item);
    let (args, func) = match (parsed_args, func) {
        (Ok(args), Ok(func)) => (args, func),
        (Err(mut a), Err(b)) => {
            a.combine(b);
            return Err(a);
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let signature = signature::Signature::new(func);
    validate::arguments(&args, &signature)?;
    Ok(expand::expand(&args, &signature))
}
