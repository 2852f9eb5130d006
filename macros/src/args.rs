//! The attribute's arguments, parsed into [`Args`], the way tracing-attributes'
//! `attr.rs` does it: each argument name is a `syn::custom_keyword!` (in
//! `kw`), each form of argument has a `Parse` impl ([`Assign`] for
//! `name = value`, [`Skip`] for `skip(a, b)`), and [`Draft`]'s `Parse` impl
//! dispatches on `input.peek(kw::…)`.
//!
//! Every argument is declared once, in the [`arguments!`] table below: its
//! name, the type of its value, whether it is required or has a default,
//! its form and how its value is read. The keyword, the field of [`Args`],
//! its place in [`Draft`], the dispatch and the "did you mean" list all come
//! from that one entry. What an argument means is documented once too, on
//! the attribute (`lib.rs`, the section named after the argument, which
//! the README's table links to); an entry's comment says only how its
//! value is held here.
//!
//! Each value is checked on its own here; checks against the function live in
//! `validate.rs`. A bad value, a repeated argument or an unknown one (with a
//! "did you mean" for a near miss) is collected and the parse goes on, so the
//! user sees every mistake at once; only a syntax error stops it.

use std::marker::PhantomData;

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Lit, LitStr, Token, UnOp};

use crate::duration;

/// The table of arguments. Each entry:
///
/// ```text
/// /// How its value is held (the doc of its field in `Args`).
/// field: ValueType, kind, Form => |arg| parse(arg);
/// ```
///
/// - `field` is the argument's name, and the name of its field in [`Args`];
///   `field("name", Token)` when the name is a Rust keyword (`crate`).
/// - `kind` is `optional` (the field is `Option<ValueType>`), `default(expr)`
///   (the field is `ValueType`, `expr` when not written) or
///   `required("message")` (the field is `ValueType`; the message when not
///   written).
/// - `Form` is how it is written: [`Assign`] (`name = value`) or [`Skip`]
///   (`name(a, b)`); `parse` turns it into the value, or an error at the
///   user's token.
///
/// The order of the table is that of the "expected one of" list, and of
/// the attribute's docs. A new argument is one entry here, its section in
/// the attribute's docs and its row in the README's table.
macro_rules! arguments {
    ($(
        #[doc = $first:literal] $(#[doc = $rest:literal])*
        $field:ident $(($text:literal, $token:path))?: $ty:ty,
            $kind:ident $(($default:expr))?, $form:ident => $parse:expr;
    )*) => {
        /// The argument names, one `syn::custom_keyword!` each (but `crate`).
        mod kw {
            $(arguments!(@keyword $field $($token)?);)*
        }

        /// Everything `#[redis_cached(...)]` can say, one field per argument
        /// of the table.
        pub(crate) struct Args {
            $(
                #[doc = $first] $(#[doc = $rest])*
                pub(crate) $field: arguments!(@field $kind $ty),
            )*
        }

        /// Every argument name, in the order the docs list them.
        const KNOWN: &[&str] = &[$(arguments!(@name $field $($text)?)),*];

        /// The arguments read so far, each at most once, and every mistake found.
        #[derive(Default)]
        struct Draft {
            $($field: Slot<$ty>,)*
            errors: Errors,
        }

        impl Draft {
            /// Reads one argument, and the comma after it unless it is the last.
            /// Returns only syntax errors; the argument's own mistakes are collected.
            fn arg(&mut self, input: ParseStream<'_>) -> syn::Result<()> {
                $(
                    if input.peek(arguments!(@token $field $($token)?)) {
                        type Form = $form<arguments!(@token $field $($token)?)>;
                        let arg = input.parse::<Form>()?;
                        let name = arg.name.clone();
                        let parse: fn(Form) -> syn::Result<$ty> = $parse;
                        self.$field.set(&name, parse(arg), &mut self.errors);
                        return self.comma(input);
                    }
                )*
                self.errors.push(input.parse::<Unknown>()?.error());
                self.comma(input)
            }

            /// The arguments, or every mistake found.
            fn finish(self) -> syn::Result<Args> {
                self.errors.finish()?;
                Ok(Args {
                    $($field: arguments!(@finish self.$field.value, $kind $(($default))?),)*
                })
            }
        }
    };

    (@keyword $field:ident) => {
        syn::custom_keyword!($field);
        impl super::Keyword for $field {
            fn ident(&self) -> super::Ident {
                super::Ident::new(stringify!($field), self.span)
            }
        }
    };
    (@keyword $field:ident $token:path) => {};
    (@token $field:ident) => { kw::$field };
    (@token $field:ident $token:path) => { $token };
    (@name $field:ident) => { stringify!($field) };
    (@name $field:ident $text:literal) => { $text };
    (@field optional $ty:ty) => { Option<$ty> };
    (@field $kind:ident $ty:ty) => { $ty };
    (@finish $value:expr, optional) => { $value };
    (@finish $value:expr, default($default:expr)) => { $value.unwrap_or($default) };
    (@finish $value:expr, required($missing:expr)) => {
        $value.ok_or_else(|| syn::Error::new(Span::call_site(), $missing))?
    };
}

arguments! {
    /// `ttl`: see [`Ttl`].
    ttl: Ttl, required("missing `ttl`: write `#[redis_cached(ttl = 60)]` (seconds) or `ttl = \"5m\"`"),
        Assign => |arg| time_to_live(arg.value);
    /// `ttl_of = EXPR` (a closure or fn path), as written.
    ttl_of: Expr, optional, Assign => |arg| Ok(arg.value);
    /// `sliding = bool`.
    sliding: Given<bool>, optional, Assign => |arg| flag(&arg.value).map(|b| arg.given(b));
    /// `cache = EXPR`, as written.
    cache: Expr, optional, Assign => |arg| Ok(arg.value);
    /// `skip(a, self)`: the names, as written.
    skip: Given<Vec<Ident>>, optional, Skip => |arg| arg.items.map(|items| given(&arg.name, items));
    /// `key = EXPR`, as written.
    key: Given<Expr>, optional, Assign => |arg| Ok(given(&arg.name, arg.value));
    /// `name = "…"`, checked here.
    name: LitStr, optional, Assign => |arg| key_name(&arg.value);
    /// `version = N`; 0 when absent.
    version: u32, default(0), Assign => |arg| int(&arg.value, "version");
    /// `cache_none = bool`.
    cache_none: Given<bool>, optional, Assign => |arg| flag(&arg.value).map(|b| arg.given(b));
    /// `cache_err = bool`.
    cache_err: Given<bool>, optional, Assign => |arg| flag(&arg.value).map(|b| arg.given(b));
    /// `unless = EXPR` (a closure or fn path), as written.
    unless: Expr, optional, Assign => |arg| Ok(arg.value);
    /// `when = EXPR`, as written.
    when: Expr, optional, Assign => |arg| Ok(arg.value);
    /// `siblings = bool`; `true` when absent.
    siblings: bool, default(true), Assign => |arg| flag(&arg.value);
    /// `lock`, in milliseconds (positive).
    lock: u64, optional, Assign => |arg| duration("lock", ZERO_LOCK, &arg.value);
    /// `stale`, in milliseconds.
    stale: u64, optional, Assign => |arg| duration("stale", ZERO_STALE, &arg.value);
    /// `refresh = "xfetch"` was given.
    refresh: bool, default(false), Assign => |arg| refresh(&arg.value);
    /// `beta = F`.
    beta: Given<f64>, optional, Assign => |arg| positive_float(&arg.value).map(|b| arg.given(b));
    /// `local = N` (positive).
    local: Given<u64>, optional, Assign => |arg| entries(&arg.value).map(|n| arg.given(n));
    /// `compress = bool`.
    compress: bool, optional, Assign => |arg| flag(&arg.value);
    /// `tags = [EXPR, …]`, as written.
    tags: Given<Vec<Expr>>, optional, Assign => |arg| tag_list(&arg.value).map(|list| arg.given(list));
    /// `crate = "path"` or `crate = path`.
    krate("crate", syn::token::Crate): syn::Path, optional, Assign => |arg| runtime_path(&arg.value);
}

/// `ttl = …`.
pub(crate) enum Ttl {
    /// `ttl = 60` / `ttl = "5m"`: milliseconds, checked positive.
    Fixed(u64),
    /// `ttl = <any other expression>`: a `Duration` or whole seconds
    /// (`u64`), evaluated on every call; its type is checked by rustc.
    Expr(Expr),
}

/// An argument's value with the name it was given under, for error spans.
pub(crate) struct Given<T> {
    pub(crate) name: Ident,
    pub(crate) value: T,
}

impl Args {
    /// Parses the attribute's tokens; every mistake is reported, not just the first.
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Self> {
        syn::parse2::<Draft>(tokens)?.finish()
    }
}

/// An argument name, parsed; gives back the identifier as written, for spans.
trait Keyword: Parse {
    fn ident(&self) -> Ident;
    /// What follows `name = ` in the "expected" message of a bare name.
    const VALUE: &'static str = "…";
}

/// `crate` is a Rust keyword, not a `custom_keyword!`.
impl Keyword for syn::token::Crate {
    fn ident(&self) -> Ident {
        Ident::new("crate", self.span)
    }
    const VALUE: &'static str = "\"…\"";
}

/// `<keyword> = <expression>`, like tracing-attributes' `ExprArg<T>`. The
/// value is only checked later, so that a bad one doesn't stop the parse.
struct Assign<K> {
    name: Ident,
    value: Expr,
    keyword: PhantomData<K>,
}

impl<K: Keyword> Parse for Assign<K> {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name = input.parse::<K>()?.ident();
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                name.span(),
                format!("expected `{name} = {}`", K::VALUE),
            ));
        }
        input.parse::<Token![=]>()?;
        Ok(Self {
            name,
            value: input.parse()?,
            keyword: PhantomData,
        })
    }
}

impl<K> Assign<K> {
    /// `value`, under this argument's name.
    fn given<T>(&self, value: T) -> Given<T> {
        given(&self.name, value)
    }
}

/// `skip(a, self)`, like tracing-attributes' `Skips`. Written any other way
/// (`skip = a`, bare `skip`) it still parses, with the error in `items`, so
/// that the arguments after it are read too.
struct Skip<K> {
    name: Ident,
    items: syn::Result<Vec<Ident>>,
    keyword: PhantomData<K>,
}

impl<K: Keyword> Parse for Skip<K> {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name = input.parse::<K>()?.ident();
        let items = if input.peek(syn::token::Paren) {
            let content;
            syn::parenthesized!(content in input);
            let items =
                Punctuated::<Ident, Token![,]>::parse_terminated_with(&content, Ident::parse_any)?;
            Ok(items.into_iter().collect())
        } else {
            if input.peek(Token![=]) {
                input.parse::<Token![=]>()?;
                input.parse::<Expr>()?;
            }
            Err(syn::Error::new(
                name.span(),
                format!("write `{name}(arg, …)`"),
            ))
        };
        Ok(Self {
            name,
            items,
            keyword: PhantomData,
        })
    }
}

/// A name that is no argument, with what follows it (`= value` or `(…)`)
/// read and dropped, so that the arguments after it are read too.
struct Unknown {
    name: Ident,
}

impl Parse for Unknown {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name = input.call(Ident::parse_any)?;
        if input.peek(syn::token::Paren) {
            input.parse::<TokenTree>()?;
        } else if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            input.parse::<Expr>()?;
        }
        Ok(Self { name })
    }
}

impl Unknown {
    fn error(&self) -> syn::Error {
        let name = &self.name;
        let hint = near_miss(&name.unraw().to_string())
            .map(|known| format!("did you mean `{known}`? "))
            .unwrap_or_default();
        syn::Error::new(
            name.span(),
            format!(
                "unknown argument `{name}`; {hint}expected one of: {}",
                KNOWN.join(", ")
            ),
        )
    }
}

impl Parse for Draft {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut draft = Self::default();
        while !input.is_empty() {
            if let Err(error) = draft.arg(input) {
                // After a syntax error the rest can't be read reliably: stop
                // there, with the mistakes found before it.
                return Err(draft.errors.and(error));
            }
        }
        Ok(draft)
    }
}

impl Draft {
    /// The comma after an argument, unless it was the last.
    fn comma(&self, input: ParseStream<'_>) -> syn::Result<()> {
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
        }
        Ok(())
    }
}

fn given<T>(name: &Ident, value: T) -> Given<T> {
    Given {
        name: name.clone(),
        value,
    }
}

/// `crate = "my_dep::redis_cached"` (a string, as serde and tokio take it)
/// or `crate = my_dep::redis_cached`: a path to the runtime crate.
fn runtime_path(value: &Expr) -> syn::Result<syn::Path> {
    let wrong = || {
        syn::Error::new_spanned(
            value,
            "`crate` takes the path the runtime is reachable under, e.g. `crate = \"my_dep::redis_cached\"`",
        )
    };
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(path),
            ..
        }) => path.parse().map_err(|_| wrong()),
        Expr::Path(path) if path.qself.is_none() => Ok(path.path.clone()),
        _ => Err(wrong()),
    }
}

/// One argument's place in the [`Draft`]: whether it was written, and its
/// value if that was good.
struct Slot<T> {
    written: bool,
    value: Option<T>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self {
            written: false,
            value: None,
        }
    }
}

impl<T> Slot<T> {
    /// Keeps `value` the first time the argument is written; otherwise
    /// reports the value's own error, and `name` given twice (even if the
    /// first one was bad).
    fn set(&mut self, name: &Ident, value: syn::Result<T>, errors: &mut Errors) {
        match value {
            Ok(value) if !self.written => self.value = Some(value),
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
        if self.written {
            errors.push(syn::Error::new(
                name.span(),
                format!("`{name}` is given twice"),
            ));
        }
        self.written = true;
    }
}

/// The known argument that `unknown` is most likely a typo of: one within two
/// single-character edits (but fewer than `unknown` has letters, so that `ex`
/// isn't taken for `key`), or with the same letters in another order; the
/// closest, and the first listed on a tie. Case is ignored (`TTL`).
fn near_miss(unknown: &str) -> Option<&'static str> {
    let unknown = unknown.to_lowercase();
    let letters = unknown.chars().count();
    KNOWN
        .iter()
        .filter_map(|&known| {
            let distance = edit_distance(&unknown, known);
            let near = distance <= 2 && distance < letters;
            (near || same_letters(&unknown, known)).then_some((distance, known))
        })
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, known)| known)
}

/// Levenshtein distance: the fewest insertions, deletions and substitutions
/// of one character that turn `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // `row[j]`: the distance from the part of `a` read so far to `b[..j]`.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, a_char) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &b_char) in b.iter().enumerate() {
            let above = row[j + 1];
            let substitute = diagonal + usize::from(a_char != b_char);
            row[j + 1] = substitute.min(above + 1).min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Whether `a` and `b` are the same letters, in any order (`lcok`, `lock`).
fn same_letters(a: &str, b: &str) -> bool {
    let sorted = |s: &str| {
        let mut chars: Vec<char> = s.chars().collect();
        chars.sort_unstable();
        chars
    };
    sorted(a) == sorted(b)
}

/// `ttl = 60` and `ttl = "5m"` (and a negative or other literal, refused)
/// are checked now; any other expression is evaluated on each call.
fn time_to_live(value: Expr) -> syn::Result<Ttl> {
    match &value {
        Expr::Lit(_) => duration("ttl", ZERO_TTL, &value).map(Ttl::Fixed),
        Expr::Unary(neg) if matches!(neg.op, UnOp::Neg(_)) && matches!(*neg.expr, Expr::Lit(_)) => {
            duration("ttl", ZERO_TTL, &value).map(Ttl::Fixed)
        }
        _ => Ok(Ttl::Expr(value)),
    }
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

/// `tags = [EXPR, …]`: a non-empty list of expressions, each a string
/// (checked by rustc, at the expression).
fn tag_list(value: &Expr) -> syn::Result<Vec<Expr>> {
    match value {
        Expr::Array(list) if list.elems.is_empty() => Err(syn::Error::new_spanned(
            value,
            "`tags` is empty; list at least one tag, e.g. `tags = [format!(\"user:{user_id}\")]`, or remove it",
        )),
        Expr::Array(list) => Ok(list.elems.iter().cloned().collect()),
        other => Err(syn::Error::new_spanned(
            other,
            "`tags` takes a list of string expressions in brackets, e.g. `tags = [\"users\", format!(\"user:{user_id}\")]`",
        )),
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

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }

    /// Every error so far, then `last`, as one error.
    fn and(self, last: syn::Error) -> syn::Error {
        match self.0 {
            Some(mut all) => {
                all.combine(last);
                all
            }
            None => last,
        }
    }
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::{ToTokens, quote};

    use super::{Args, KNOWN, edit_distance, near_miss};

    fn parse(tokens: TokenStream) -> Result<Args, Vec<String>> {
        Args::parse(tokens).map_err(|e| e.into_iter().map(|e| e.to_string()).collect())
    }

    /// The one error `tokens` give; fails if they parse or give more.
    fn error(tokens: TokenStream) -> String {
        match parse(tokens) {
            Ok(_) => panic!("accepted"),
            Err(mut errors) if errors.len() == 1 => errors.remove(0),
            Err(errors) => panic!("more than one error: {errors:#?}"),
        }
    }

    fn text(tokens: &impl ToTokens) -> String {
        tokens.to_token_stream().to_string()
    }

    fn expected_one_of() -> String {
        format!("expected one of: {}", KNOWN.join(", "))
    }

    #[test]
    fn every_argument_is_read_into_its_field() {
        let Ok(args) = parse(quote! {
            ttl = "5m", cache = &CACHE, skip(conn, self), name = "shop::price",
            version = 3, cache_none = false, cache_err = true, unless = is_empty,
            when = id != 0, ttl_of = |t: &Token| t.ttl, sliding = true, siblings = false, lock = 5, stale = "30s", refresh = "xfetch",
            beta = 1.5, local = 100, compress = true,
        }) else {
            panic!("refused");
        };
        assert!(matches!(args.ttl, super::Ttl::Fixed(300_000)));
        assert_eq!(args.cache.as_ref().map(text), Some("& CACHE".into()));
        let skip = args
            .skip
            .map(|s| (s.name.to_string(), s.value.iter().map(text).collect()));
        assert_eq!(
            skip,
            Some(("skip".into(), vec!["conn".into(), "self".into()]))
        );
        assert_eq!(args.name.map(|n| n.value()), Some("shop::price".into()));
        assert_eq!(args.version, 3);
        let flag = |g: Option<super::Given<bool>>| g.map(|g| (g.name.to_string(), g.value));
        assert_eq!(flag(args.cache_none), Some(("cache_none".into(), false)));
        assert_eq!(flag(args.cache_err), Some(("cache_err".into(), true)));
        assert_eq!(args.unless.as_ref().map(text), Some("is_empty".into()));
        assert_eq!(args.when.as_ref().map(text), Some("id != 0".into()));
        assert_eq!(args.sliding.map(|s| s.value), Some(true));
        assert_eq!(
            args.ttl_of.as_ref().map(text),
            Some("| t : & Token | t . ttl".into())
        );
        assert!(!args.siblings);
        assert_eq!(args.lock, Some(5_000));
        assert_eq!(args.stale, Some(30_000));
        assert!(args.refresh);
        assert_eq!(
            args.beta.map(|b| (b.name.to_string(), b.value)),
            Some(("beta".into(), 1.5))
        );
        assert_eq!(args.local.map(|l| l.value), Some(100));
        assert_eq!(args.compress, Some(true));

        let Ok(args) = parse(quote!(ttl = 60, tags = [format!("u:{id}"), "all"])) else {
            panic!("refused");
        };
        let tags = args
            .tags
            .map(|t| (t.name.to_string(), t.value.iter().map(text).collect()));
        assert_eq!(
            tags,
            Some((
                "tags".into(),
                vec!["format ! (\"u:{id}\")".into(), "\"all\"".into()]
            ))
        );

        let Ok(args) = parse(quote!(ttl = 60, key = (item, region))) else {
            panic!("refused");
        };
        assert_eq!(
            args.key.map(|k| (k.name.to_string(), text(&k.value))),
            Some(("key".into(), "(item , region)".into()))
        );
    }

    #[test]
    fn only_ttl_is_required_and_the_rest_has_defaults() {
        let Ok(args) = parse(quote!(ttl = 60)) else {
            panic!("refused");
        };
        assert!(matches!(args.ttl, super::Ttl::Fixed(60_000)));
        assert_eq!(args.version, 0);
        assert!(args.siblings && !args.refresh);
        assert!(args.cache.is_none() && args.skip.is_none() && args.key.is_none());
        assert!(args.name.is_none() && args.unless.is_none() && args.beta.is_none());
        assert!(args.when.is_none() && args.ttl_of.is_none() && args.sliding.is_none());
        assert!(args.cache_none.is_none() && args.cache_err.is_none());
        assert!(args.lock.is_none() && args.stale.is_none() && args.local.is_none());
        assert!(args.compress.is_none());

        let missing =
            "missing `ttl`: write `#[redis_cached(ttl = 60)]` (seconds) or `ttl = \"5m\"`";
        assert_eq!(error(quote!()), missing);
        assert_eq!(error(quote!(version = 2)), missing);
    }

    #[test]
    fn every_known_name_is_dispatched_to_its_own_parser() {
        for known in KNOWN {
            let name = proc_macro2::Ident::new(known, proc_macro2::Span::call_site());
            let errors = parse(quote!(ttl = 1, #name = 1)).err().unwrap_or_default();
            assert!(
                !errors.iter().any(|e| e.starts_with("unknown argument")),
                "{known}: {errors:?}"
            );
        }
    }

    #[test]
    fn every_mistake_is_reported_in_order_not_just_the_first() {
        let errors = parse(quote!(
            ttl = 0,
            bogus = 1,
            version = x,
            ttl = 5,
            skip = a,
            cache_none = 1
        ))
        .err()
        .unwrap_or_default();
        assert_eq!(
            errors,
            [
                "`ttl` must be positive; a zero TTL would cache nothing".to_string(),
                format!("unknown argument `bogus`; {}", expected_one_of()),
                "`version` takes an integer literal, e.g. `version = 2`".into(),
                "`ttl` is given twice".into(),
                "write `skip(arg, …)`".into(),
                "expected `true` or `false`".into(),
            ]
        );
    }

    #[test]
    fn a_syntax_error_stops_the_parse_but_keeps_the_mistakes_before_it() {
        let errors = parse(quote!(ttl = 0, lock, stale = 0))
            .err()
            .unwrap_or_default();
        assert_eq!(
            errors,
            [
                "`ttl` must be positive; a zero TTL would cache nothing",
                "expected `lock = …`",
            ]
        );
        assert_eq!(error(quote!(ttl)), "expected `ttl = …`");
        assert_eq!(error(quote!(ttl(60))), "expected `ttl = …`");
        assert_eq!(error(quote!(ttl = 60 lock = 5)), "expected `,`");
        let text = error(quote!(ttl = 60, 5));
        assert!(text.starts_with("expected ident"), "{text}");
    }

    #[test]
    fn an_unknown_argument_is_skipped_whatever_its_form() {
        for tokens in [
            quote!(bogus = [1, 2], ttl = 60),
            quote!(bogus(a, 1 + 2), ttl = 60),
            quote!(bogus, ttl = 60),
            quote!(r#type = 1, ttl = 60),
        ] {
            let message = error(tokens);
            assert!(message.starts_with("unknown argument `"), "{message}");
            assert!(message.ends_with(&expected_one_of()), "{message}");
        }
    }

    #[test]
    fn a_near_miss_gets_a_did_you_mean() {
        for (typo, meant) in [
            ("tll", "ttl"),
            ("ttls", "ttl"),
            ("lcok", "lock"),
            ("TTL", "ttl"),
            ("cache_nones", "cache_none"),
            ("cacheerr", "cache_err"),
            ("sibling", "siblings"),
            ("verison", "version"),
            ("refersh", "refresh"),
            ("compres", "compress"),
        ] {
            let name = proc_macro2::Ident::new(typo, proc_macro2::Span::call_site());
            assert_eq!(
                error(quote!(ttl = 60, #name = 1)),
                format!(
                    "unknown argument `{typo}`; did you mean `{meant}`? {}",
                    expected_one_of()
                )
            );
        }
        for far in ["bogus", "expiry", "timeout", "ex", "r"] {
            assert_eq!(near_miss(far), None, "{far}");
        }
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        for (a, b, distance) in [
            ("", "", 0),
            ("ttl", "ttl", 0),
            ("", "ttl", 3),
            ("ttl", "", 3),
            ("tll", "ttl", 1),
            ("ttls", "ttl", 1),
            ("tl", "ttl", 1),
            ("lcok", "lock", 2),
            ("kitten", "sitting", 3),
            ("flaw", "lawn", 2),
            ("stale", "local", 4),
            ("clé", "cle", 1),
        ] {
            assert_eq!(edit_distance(a, b), distance, "{a} → {b}");
            assert_eq!(edit_distance(b, a), distance, "{b} → {a}");
        }
    }

    /// An argument of the table is documented where users read it: a
    /// section of the attribute's rustdoc and a row of its summary table
    /// (`lib.rs`), and a row of the README's table, each in table order.
    #[test]
    fn every_argument_of_the_table_has_its_docs_in_table_order() {
        let lib = include_str!("lib.rs");
        let readme = include_str!("../../README.md");
        let found = |text: &str, prefix: &str| -> Vec<String> {
            text.lines()
                .filter_map(|line| line.strip_prefix(prefix))
                .filter_map(|rest| rest.split('`').next())
                .map(str::to_owned)
                .collect()
        };
        let known: Vec<String> = KNOWN.iter().map(|k| k.to_string()).collect();
        assert_eq!(found(lib, "/// ## `"), known, "the sections of lib.rs");
        assert_eq!(found(lib, "/// | [`"), known, "the summary table of lib.rs");
        assert_eq!(found(readme, "| [`"), known, "the README's table");
    }

    #[test]
    fn crate_is_an_argument_like_the_others() {
        let Ok(args) = parse(quote!(ttl = 60, crate = "my_dep::redis_cached")) else {
            panic!("refused");
        };
        assert_eq!(
            args.krate.as_ref().map(text),
            Some("my_dep :: redis_cached".into())
        );
        assert_eq!(error(quote!(ttl = 60, crate)), "expected `crate = \"…\"`");
        assert_eq!(
            error(quote!(ttl = 60, crate = a, crate = b)),
            "`crate` is given twice"
        );
        assert_eq!(
            error(quote!(ttl = 60, crat = "x")),
            format!(
                "unknown argument `crat`; did you mean `crate`? {}",
                expected_one_of()
            )
        );
    }

    #[test]
    fn skip_takes_a_list_of_names() {
        let Ok(args) = parse(quote!(ttl = 60, skip())) else {
            panic!("refused");
        };
        assert_eq!(args.skip.map(|s| s.value.len()), Some(0));
        assert_eq!(error(quote!(ttl = 60, skip)), "write `skip(arg, …)`");
        assert_eq!(
            error(quote!(ttl = 60, skip(a), skip(b))),
            "`skip` is given twice"
        );
        let text = error(quote!(ttl = 60, skip(1)));
        assert!(text.starts_with("expected ident"), "{text}");
    }

    #[test]
    fn lock_is_parsed_like_ttl() {
        let Ok(args) = parse(quote!(ttl = 60, lock = "5s")) else {
            panic!("refused");
        };
        assert!(matches!(args.ttl, super::Ttl::Fixed(60_000)));
        assert_eq!(args.lock, Some(5_000));
        assert_eq!(
            parse(quote!(ttl = 60, lock = 2)).ok().and_then(|a| a.lock),
            Some(2_000)
        );
        assert_eq!(parse(quote!(ttl = 60)).ok().map(|a| a.lock), Some(None));
    }

    #[test]
    fn ttl_is_a_checked_literal_or_an_expression_for_each_call() {
        let ttl = |tokens| match parse(tokens).map(|a: Args| a.ttl) {
            Ok(super::Ttl::Fixed(ms)) => format!("{ms} ms"),
            Ok(super::Ttl::Expr(expr)) => text(&expr),
            Err(errors) => errors.join("; "),
        };
        assert_eq!(ttl(quote!(ttl = 60)), "60000 ms");
        assert_eq!(ttl(quote!(ttl = "1h30m")), "5400000 ms");
        assert_eq!(
            ttl(quote!(ttl = settings().price_ttl)),
            "settings () . price_ttl"
        );
        assert_eq!(ttl(quote!(ttl = TTL_SECS)), "TTL_SECS");
        assert_eq!(
            ttl(quote!(ttl = Duration::from_secs(5))),
            "Duration :: from_secs (5)"
        );
        assert_eq!(ttl(quote!(ttl = -5)), "`ttl` must be positive");
        assert!(ttl(quote!(ttl = 1.5)).starts_with("`ttl` takes whole seconds"));
        assert_eq!(
            ttl(quote!(ttl = 0)),
            "`ttl` must be positive; a zero TTL would cache nothing"
        );
    }

    #[test]
    fn local_takes_a_positive_entry_count() {
        let local = |tokens| parse(tokens).ok().map(|a: Args| a.local.map(|l| l.value));
        assert_eq!(local(quote!(ttl = 60, local = 500)), Some(Some(500)));
        assert_eq!(local(quote!(ttl = 60)), Some(None));
        assert_eq!(
            error(quote!(ttl = 60, local = 0)),
            "`local` must be positive; leave it out to keep no values in this process"
        );
        let text = error(quote!(ttl = 60, local = "5"));
        assert!(text.starts_with("`local` takes"), "{text}");
    }

    #[test]
    fn a_zero_or_unreadable_lock_is_refused() {
        assert_eq!(
            error(quote!(ttl = 60, lock = 0)),
            "`lock` must be positive; a zero lock would make the other processes compute too"
        );
        let text = error(quote!(ttl = 60, lock = "x"));
        assert!(
            text.starts_with("invalid `lock`: expected a number at `x`"),
            "{text}"
        );
        assert_eq!(
            error(quote!(ttl = 60, lock = 1, lock = 2)),
            "`lock` is given twice"
        );
    }
}
