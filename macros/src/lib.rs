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
#[doc = args::argument_docs!()]
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
