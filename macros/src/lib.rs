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
/// Arguments:
/// - `ttl = 60` or `ttl = "90s"` / `"5m"` / `"1h"` / `"250ms"` (required): how long a value lives.
/// - `cache = EXPR`: the `redis_cached::Cache` to use (an expression that
///   derefs to one, such as a `LazyLock<Cache>` static); default: `redis_cached::default_cache()`.
/// - `lock = 5` or `lock = "5s"` (optional): on a miss, take the Redis lock
///   `<key>:lock` (`SET … NX PX`) before running the body, so that one process
///   in a deployment computes a value while the others wait for it (polling
///   the key, for at most the lock time) instead of computing it too. The
///   lock expires after this long even if its holder dies; make it longer
///   than the body usually takes. A waiter whose wait runs out runs the body
///   itself. Within one process, concurrent misses always share one run of
///   the body, with or without `lock`.
///
/// Arguments must be `Serialize`; the return type `Serialize + DeserializeOwned`
/// (for `Result<T, E>`, only `T`: errors are returned, not stored).
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
