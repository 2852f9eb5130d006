//! The attribute's arguments, parsed into [`Args`]. Each argument is checked
//! on its own here; checks against the function live in `validate.rs`.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Lit, LitStr, Token, UnOp};

use crate::duration;

/// Everything `#[redis_cached(...)]` can say.
pub(crate) struct Args {
    /// Time to live, in milliseconds (positive).
    pub(crate) ttl_ms: u64,
    /// `cache = <expr>`: an expression that derefs to a `Cache`.
    pub(crate) cache: Option<Expr>,
    /// `skip(a, self)`: parameters left out of the key.
    pub(crate) skip: Option<Given<Vec<Ident>>>,
    /// `key = <expr>`: the key is this value instead of the arguments.
    pub(crate) key: Option<Given<Expr>>,
    /// `name = "…"`: replaces `module::path::fn_name` in keys.
    pub(crate) name: Option<LitStr>,
    /// `version = N`: mixed into every key of the function.
    pub(crate) version: u32,
    /// `cache_none = false`: don't store `None`.
    pub(crate) cache_none: Option<Given<bool>>,
    /// `cache_err = true`: store `Err` too.
    pub(crate) cache_err: Option<Given<bool>>,
    /// `unless = <closure or fn path>`: when it returns true for a result, don't store it.
    pub(crate) unless: Option<Expr>,
    /// `siblings = false`: don't emit `f_invalidate`, `f_refresh`, …
    pub(crate) siblings: bool,
    /// `lock = 5` / `lock = "5s"`: hold a Redis lock while computing, for at
    /// most this many milliseconds (positive).
    pub(crate) lock_ms: Option<u64>,
    /// `stale = "30s"`: serve a value this long past its ttl while it is refreshed.
    pub(crate) stale_ms: Option<u64>,
    /// `refresh = "xfetch"`: refresh hot values early (XFetch).
    pub(crate) xfetch: bool,
    /// `beta = 1.5`: XFetch's eagerness (default 1.0); needs `refresh`.
    pub(crate) beta: Option<Given<f64>>,
    /// `local = N`: keep up to `N` decoded values in this process (positive).
    pub(crate) local: Option<Given<u64>>,
}

/// An argument's value with the name it was given under, for error spans.
pub(crate) struct Given<T> {
    pub(crate) name: Ident,
    pub(crate) value: T,
}

/// One argument as written: `name = value` or `name(a, b)`.
enum Arg {
    Value { name: Ident, value: Expr },
    List { name: Ident, items: Vec<Ident> },
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name: Ident = input.parse()?;
        if input.peek(syn::token::Paren) {
            let content;
            syn::parenthesized!(content in input);
            let items =
                Punctuated::<Ident, Token![,]>::parse_terminated_with(&content, Ident::parse_any)?;
            return Ok(Self::List {
                name,
                items: items.into_iter().collect(),
            });
        }
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                name.span(),
                format!("expected `{name} = …`"),
            ));
        }
        input.parse::<Token![=]>()?;
        let value = input.parse()?;
        Ok(Self::Value { name, value })
    }
}

const KNOWN: &str = "ttl, cache, skip, key, name, version, cache_none, cache_err, unless, siblings, lock, stale, refresh, beta, local";

impl Args {
    /// Parses the attribute's tokens; every mistake is reported, not just the first.
    pub(crate) fn parse(tokens: proc_macro2::TokenStream) -> syn::Result<Self> {
        let list =
            syn::parse::Parser::parse2(Punctuated::<Arg, Token![,]>::parse_terminated, tokens)?;
        let mut errors = Errors::default();
        let mut ttl_ms = None;
        let mut cache = None;
        let mut skip = None;
        let mut key = None;
        let mut name = None;
        let mut version = None;
        let mut cache_none = None;
        let mut cache_err = None;
        let mut unless = None;
        let mut siblings = None;
        let mut lock_ms = None;
        let mut stale_ms = None;
        let mut xfetch = None;
        let mut beta = None;
        let mut local = None;
        for arg in list {
            let (ident, taken) = match arg {
                Arg::List { name: ident, items } => {
                    let taken = match ident.to_string().as_str() {
                        "skip" => set(&mut skip, Ok(given(&ident, items)), &mut errors),
                        _ => {
                            errors.push(unknown(&ident));
                            false
                        }
                    };
                    (ident, taken)
                }
                Arg::Value { name: ident, value } => {
                    let taken = match ident.to_string().as_str() {
                        "ttl" => set(&mut ttl_ms, duration("ttl", ZERO_TTL, &value), &mut errors),
                        "stale" => set(
                            &mut stale_ms,
                            duration("stale", ZERO_STALE, &value),
                            &mut errors,
                        ),
                        "refresh" => set(&mut xfetch, refresh(&value), &mut errors),
                        "beta" => set(
                            &mut beta,
                            positive_float(&value).map(|b| given(&ident, b)),
                            &mut errors,
                        ),
                        "local" => set(
                            &mut local,
                            entries(&value).map(|n| given(&ident, n)),
                            &mut errors,
                        ),
                        "lock" => set(
                            &mut lock_ms,
                            duration("lock", ZERO_LOCK, &value),
                            &mut errors,
                        ),
                        "cache" => set(&mut cache, Ok(value), &mut errors),
                        "key" => set(&mut key, Ok(given(&ident, value)), &mut errors),
                        "name" => set(&mut name, key_name(&value), &mut errors),
                        "version" => set(&mut version, int(&value, "version"), &mut errors),
                        "cache_none" => set(
                            &mut cache_none,
                            flag(&value).map(|b| given(&ident, b)),
                            &mut errors,
                        ),
                        "cache_err" => set(
                            &mut cache_err,
                            flag(&value).map(|b| given(&ident, b)),
                            &mut errors,
                        ),
                        "unless" => set(&mut unless, Ok(value), &mut errors),
                        "siblings" => set(&mut siblings, flag(&value), &mut errors),
                        "skip" => {
                            errors.push(syn::Error::new(ident.span(), "write `skip(arg, …)`"));
                            false
                        }
                        _ => {
                            errors.push(unknown(&ident));
                            false
                        }
                    };
                    (ident, taken)
                }
            };
            if taken {
                errors.push(syn::Error::new(
                    ident.span(),
                    format!("`{ident}` is given twice"),
                ));
            }
        }
        if ttl_ms.is_none() && errors.is_empty() {
            errors.push(syn::Error::new(
                Span::call_site(),
                "missing `ttl`: write `#[redis_cached(ttl = 60)]` (seconds) or `ttl = \"5m\"`",
            ));
        }
        errors.finish()?;
        Ok(Self {
            ttl_ms: ttl_ms.unwrap_or_default(),
            cache,
            skip,
            key,
            name,
            version: version.unwrap_or_default(),
            cache_none,
            cache_err,
            unless,
            siblings: siblings.unwrap_or(true),
            lock_ms,
            stale_ms,
            xfetch: xfetch.unwrap_or(false),
            beta,
            local,
        })
    }
}

fn given<T>(name: &Ident, value: T) -> Given<T> {
    Given {
        name: name.clone(),
        value,
    }
}

fn unknown(name: &Ident) -> syn::Error {
    syn::Error::new(
        name.span(),
        format!("unknown argument `{name}`; expected one of: {KNOWN}"),
    )
}

/// Stores `value` in `slot`; returns whether the slot was already taken.
fn set<T>(slot: &mut Option<T>, value: syn::Result<T>, errors: &mut Errors) -> bool {
    let taken = slot.is_some();
    match value {
        Ok(value) if !taken => *slot = Some(value),
        Ok(_) => {}
        Err(e) => errors.push(e),
    }
    taken
}

const ZERO_TTL: &str = "a zero TTL would cache nothing";
const ZERO_STALE: &str = "leave `stale` out to serve nothing past the ttl";
const ZERO_LOCK: &str = "a zero lock would make the other processes compute too";

/// `<name> = 60` (seconds) or `<name> = "5m"`, as positive milliseconds;
/// for `ttl` and `lock`. `zero` says why zero is refused.
fn duration(name: &str, zero: &str, value: &Expr) -> syn::Result<u64> {
    let help = format!(
        "`{name}` takes whole seconds (`{name} = 60`) or a duration string (`{name} = \"90s\"`, `\"5m\"`, `\"1h\"`)"
    );
    let millis = match value {
        Expr::Lit(lit) => match &lit.lit {
            Lit::Int(int) => int
                .base10_parse::<u64>()
                .ok()
                .and_then(|secs| secs.checked_mul(1000))
                .ok_or_else(|| syn::Error::new_spanned(int, format!("`{name}` is too large")))?,
            Lit::Str(text) => duration::parse_millis(&text.value()).map_err(|msg| {
                syn::Error::new_spanned(text, format!("invalid `{name}`: {msg}; {help}"))
            })?,
            other => return Err(syn::Error::new_spanned(other, help)),
        },
        Expr::Unary(neg) if matches!(neg.op, UnOp::Neg(_)) => {
            return Err(syn::Error::new_spanned(
                value,
                format!("`{name}` must be positive"),
            ));
        }
        other => return Err(syn::Error::new_spanned(other, help)),
    };
    if millis == 0 {
        return Err(syn::Error::new_spanned(
            value,
            format!("`{name}` must be positive; {zero}"),
        ));
    }
    Ok(millis)
}

/// `refresh = "xfetch"`, the one early-refresh strategy there is.
fn refresh(value: &Expr) -> syn::Result<bool> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(text),
            ..
        }) if text.value() == "xfetch" => Ok(true),
        other => Err(syn::Error::new_spanned(
            other,
            "`refresh` takes \"xfetch\": refresh hot values early, with XFetch's probability",
        )),
    }
}

/// A positive number literal, for `beta`.
fn positive_float(value: &Expr) -> syn::Result<f64> {
    let number = match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Float(f), ..
        }) => f.base10_parse::<f64>().ok(),
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<f64>().ok(),
        _ => None,
    };
    match number {
        Some(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err(syn::Error::new_spanned(
            value,
            "`beta` takes a positive number, e.g. `beta = 1.0` (the default; larger refreshes earlier)",
        )),
    }
}

/// `local = N`: a positive integer literal, the most values kept in process.
fn entries(value: &Expr) -> syn::Result<u64> {
    let help = "`local` takes the most values to keep in this process, a positive integer, e.g. `local = 1000`";
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(int), ..
        }) => match int.base10_parse::<u64>() {
            Ok(0) => Err(syn::Error::new_spanned(
                int,
                "`local` must be positive; leave it out to keep no values in this process",
            )),
            Ok(n) => Ok(n),
            Err(_) => Err(syn::Error::new_spanned(int, help)),
        },
        other => Err(syn::Error::new_spanned(other, help)),
    }
}

/// `true` or `false`.
fn flag(value: &Expr) -> syn::Result<bool> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Bool(b), ..
        }) => Ok(b.value),
        other => Err(syn::Error::new_spanned(other, "expected `true` or `false`")),
    }
}

/// A non-negative integer literal that fits a `u32`.
fn int(value: &Expr, what: &str) -> syn::Result<u32> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(int), ..
        }) => int.base10_parse::<u32>().map_err(|_| {
            syn::Error::new_spanned(
                int,
                format!("`{what}` takes a whole number from 0 to {}", u32::MAX),
            )
        }),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{what}` takes an integer literal, e.g. `{what} = 2`"),
        )),
    }
}

/// `name = "…"`: non-empty, and free of characters that would break a key's
/// hash tag or the `SCAN` pattern of `invalidate_all`.
fn key_name(value: &Expr) -> syn::Result<LitStr> {
    let Expr::Lit(syn::ExprLit {
        lit: Lit::Str(text),
        ..
    }) = value
    else {
        return Err(syn::Error::new_spanned(
            value,
            "`name` takes a string literal, e.g. `name = \"pricing::price\"`",
        ));
    };
    let name = text.value();
    if name.is_empty() {
        return Err(syn::Error::new_spanned(text, "`name` can't be empty"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| c.is_whitespace() || "{}*?[]\\".contains(*c))
    {
        return Err(syn::Error::new_spanned(
            text,
            format!(
                "`name` can't contain {bad:?}: keys use braces as a hash tag and invalidation matches with a glob"
            ),
        ));
    }
    Ok(text.clone())
}

/// Collects errors so that the user sees all of them at once.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::Args;

    fn parse(tokens: &str) -> Result<Args, String> {
        let tokens = tokens.parse().map_err(|e| format!("{e:?}"))?;
        Args::parse(tokens).map_err(|e| e.to_string())
    }

    #[test]
    fn lock_is_parsed_like_ttl() {
        let args = parse(r#"ttl = 60, lock = "5s""#).unwrap();
        assert_eq!((args.ttl_ms, args.lock_ms), (60_000, Some(5_000)));
        assert_eq!(parse("ttl = 60, lock = 2").unwrap().lock_ms, Some(2_000));
        assert_eq!(parse("ttl = 60").unwrap().lock_ms, None);
    }

    #[test]
    fn local_takes_a_positive_entry_count() {
        let args = parse("ttl = 60, local = 500").unwrap();
        assert_eq!(args.local.map(|l| l.value), Some(500));
        assert!(parse("ttl = 60").unwrap().local.is_none());
        let Err(zero) = parse("ttl = 60, local = 0") else {
            panic!("local = 0 accepted");
        };
        assert_eq!(
            zero,
            "`local` must be positive; leave it out to keep no values in this process"
        );
        let Err(text) = parse(r#"ttl = 60, local = "5""#) else {
            panic!("a string local accepted");
        };
        assert!(text.starts_with("`local` takes"), "{text}");
    }

    #[test]
    fn a_zero_or_unreadable_lock_is_refused() {
        let Err(zero) = parse("ttl = 60, lock = 0") else {
            panic!("lock = 0 accepted");
        };
        assert_eq!(
            zero,
            "`lock` must be positive; a zero lock would make the other processes compute too"
        );
        let Err(text) = parse(r#"ttl = 60, lock = "x""#) else {
            panic!(r#"lock = "x" accepted"#);
        };
        assert!(
            text.starts_with("invalid `lock`: expected a number at `x`"),
            "{text}"
        );
        let Err(twice) = parse("ttl = 60, lock = 1, lock = 2") else {
            panic!("lock given twice accepted");
        };
        assert_eq!(twice, "`lock` is given twice");
    }
}
