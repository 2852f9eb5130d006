//! The attribute's arguments, parsed into [`Args`].

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Lit, Token, UnOp};

use crate::duration;

/// Everything `#[redis_cached(...)]` can say, each checked on its own.
/// Checks that involve the function live in `validate.rs`.
pub(crate) struct Args {
    /// Time to live, in milliseconds (positive).
    pub(crate) ttl_ms: u64,
    /// `cache = <expr>`: an expression that derefs to a `Cache`.
    pub(crate) cache: Option<Expr>,
    /// `lock = 5` / `lock = "5s"`: hold a Redis lock while computing, for at
    /// most this many milliseconds (positive).
    pub(crate) lock_ms: Option<u64>,
}

/// One `name = value` as written.
struct Arg {
    name: Ident,
    value: Expr,
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name: Ident = input.parse()?;
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                name.span(),
                format!("expected `{name} = …`"),
            ));
        }
        input.parse::<Token![=]>()?;
        let value = input.parse()?;
        Ok(Self { name, value })
    }
}

impl Args {
    /// Parses the attribute's tokens; every mistake is reported, not just the first.
    pub(crate) fn parse(tokens: proc_macro2::TokenStream) -> syn::Result<Self> {
        let list =
            syn::parse::Parser::parse2(Punctuated::<Arg, Token![,]>::parse_terminated, tokens)?;
        let mut errors = Errors::default();
        let mut ttl_ms = None;
        let mut cache = None;
        let mut lock_ms = None;
        for arg in list {
            let name = arg.name.to_string();
            let seen = match name.as_str() {
                "ttl" => set(
                    &mut ttl_ms,
                    duration("ttl", ZERO_TTL, &arg.value),
                    &mut errors,
                ),
                "cache" => set(&mut cache, Ok(arg.value), &mut errors),
                "lock" => set(
                    &mut lock_ms,
                    duration("lock", ZERO_LOCK, &arg.value),
                    &mut errors,
                ),
                _ => {
                    errors.push(syn::Error::new(
                        arg.name.span(),
                        format!("unknown argument `{name}`; expected `ttl`, `cache` or `lock`"),
                    ));
                    false
                }
            };
            if seen {
                errors.push(syn::Error::new(
                    arg.name.span(),
                    format!("`{name}` is given twice"),
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
            lock_ms,
        })
    }
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
