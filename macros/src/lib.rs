//! The `#[redis_cached]` attribute. Use it through the `redis-cached` crate,
//! which re-exports it and holds everything the generated code calls.
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
/// ```ignore
/// #[redis_cached(ttl = "5m")]
/// async fn price(item: u64, region: &str) -> Result<f64, Error> { /* expensive */ }
/// ```
///
/// Arguments (only `ttl` is required):
/// - `ttl = 60` or `ttl = "90s"` / `"5m"` / `"1h30m"` / `"250ms"`: how long a value lives (an integer is seconds), checked at compile time;
///   or any expression of type `Duration` or `u64` (seconds), evaluated on every call (`ttl = settings().price_ttl`); zero then stores nothing.
/// - `ttl_of = |v: &V| -> Duration` or a fn path: a stored value's own TTL, from the value (`V` is `T` for `Result<T, E>`); the entry lives the shorter of it and `ttl`; zero stores nothing.
/// - `sliding = true`: time-to-idle; each hit resets the entry's TTL to a full `ttl` in the same round trip (`GETEX … PX`); not with `local`, `stale`, `refresh` or `ttl_of`, and no in-process tier.
/// - `cache = EXPR`: the `redis_cached::Cache` to use, an expression that derefs to one (default: `redis_cached::default_cache()`).
/// - `skip(a, self)`: leave these parameters (or the receiver) out of the key; they need not be `Serialize`.
/// - `key = EXPR`: key on this `Serialize` value instead of the arguments (not with `skip`).
/// - `name = "shop::price"`: the name keys use instead of `module::path::fn_name`.
/// - `version = 2`: mixed into every key of the function (0, the default, changes nothing).
/// - `cache_none = false`: on an `Option<T>` function, don't store `None`.
/// - `cache_err = true`: on a `Result<T, E>` function, store `Err` too (then `E` needs serde).
/// - `unless = |r: &R| …` or a `fn(&R) -> bool` path: don't store a result for which it returns true.
/// - `when = EXPR`: a `bool` over the arguments, evaluated before each call; when `false` the call skips the cache (no read, no write) and runs the body; `f_refresh` then stores nothing.
/// - `siblings = false`: don't generate `f_refresh`, `f_uncached`, `f_invalidate`, `f_invalidate_all` (needed in trait impls).
/// - `lock = 5` or `lock = "5s"`: on a miss, hold the Redis lock `<key>:lock` while computing, so one process computes and the others wait, for at most this long.
/// - `stale = "30s"`: keep a value this long past its `ttl`; a call that finds it stale returns it and has it refreshed.
/// - `refresh = "xfetch"`: refresh hot values before they expire, with XFetch's probability.
/// - `beta = 1.0`: XFetch's eagerness (larger refreshes earlier); only with `refresh`.
/// - `crate = "my_dep::redis_cached"`: where generated code finds the runtime, for a renamed or re-exported dependency (default `::redis_cached`).
/// - `local = 1000`: also keep up to this many decoded values in this process (no round trip on a hit), kept coherent by Redis client-side caching; the value type must be `Clone + Send + Sync + 'static`.
/// - `compress = true`: store values compressed (LZ4) above the cache's `compress_above`, or above 1 KiB on a cache without one; `compress = false`: never, whatever the cache says.
///
/// Next to `f` it generates, with `f`'s visibility and `async`, and `f`'s
/// receiver and parameters: `f_refresh(…) -> R` (run and store),
/// `f_uncached(…) -> R` (the body alone) and
/// `f_invalidate(…) -> Result<bool, redis_cached::Error>` (delete this call's
/// entry); and, without parameters, `f_invalidate_all() -> Result<u64, redis_cached::Error>`
/// (delete every entry of `f`).
///
/// Arguments must be `Serialize`; the return type `Serialize + DeserializeOwned`
/// (for `Result<T, E>`, only `T`: errors are returned, not stored). Within one
/// process, concurrent misses of a key always share one run of the body.
/// See the README for the key format and the runtime configuration.
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
