//! Emission: the cached function becomes a short call into
//! `::redis_cached::__private` (or `<crate = …>::__private`). Unless
//! `siblings = false`, the invalidation and control functions follow.
//!
//! The body is emitted once where the macro can name a sibling: in a method
//! (or a function that names `Self`), `f_uncached` is the function as
//! written, and `f` and `f_refresh` call it. Elsewhere a free `fn` and an
//! associated one without `self` look the same, and neither can name the
//! other's sibling (`f_uncached` vs `Self::f_uncached`), so `f` and
//! `f_refresh` each hold the body: its statements become those of a
//! closure (sync) or an async block (async), so `return` and `?` keep their
//! meaning, and the user's braces are never a block nested in ours (which
//! rustc's `unused_braces` would flag at the user's code).

use proc_macro2::{Delimiter, Group, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, GenericParam, Ident};

use crate::args::{Args, Ttl};
use crate::signature::{ReturnKind, Signature};

/// The rewritten function and its siblings.
pub(crate) fn expand(args: &Args, signature: &Signature) -> TokenStream {
    let parts = Parts::new(args, signature);
    let func = &signature.func;
    let cached = parts.cached(&func.sig.ident, &func.attrs, Mode::Cached);
    if !args.siblings {
        return cached;
    }
    let name = func.sig.ident.to_string();
    let kept: Vec<_> = func
        .attrs
        .iter()
        .filter(|a| !a.path().is_ident("doc"))
        .cloned()
        .collect();
    let cfgs: Vec<_> = func
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .cloned()
        .collect();

    let refresh_doc = doc(format!(
        "Runs `{name}` and stores its result in the cache whatever it holds; returns the result."
    ));
    let refresh = parts.cached(
        &sibling(&name, "refresh"),
        &with(&kept, refresh_doc),
        Mode::Refresh,
    );

    let mut uncached = func.clone();
    uncached.sig.ident = sibling(&name, "uncached");
    uncached.attrs = with(
        &kept,
        doc(format!("`{name}` without the cache: its body as written.")),
    );
    let uncached = quote!(#[allow(dead_code)] #uncached);

    let invalidate = parts.invalidate(&name, &cfgs);
    let invalidate_all = parts.invalidate_all(&name, &cfgs);
    quote!(#cached #refresh #uncached #invalidate #invalidate_all)
}

/// What a generated function does with the cache.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Read; on a miss run the body and store.
    Cached,
    /// Run the body and store, without reading.
    Refresh,
}

/// Tokens shared by the function and its siblings.
struct Parts<'a> {
    signature: &'a Signature,
    /// The signature with every parameter bound to a plain name.
    outer: syn::Signature,
    /// `::redis_cached`, or the `crate = …` path.
    runtime: TokenStream,
    private: TokenStream,
    spec: TokenStream,
    /// The function's name in keys: `name = …`, else its module path and name.
    name: TokenStream,
    /// The spec a call runs under: `&__RC_SPEC`, or a copy with this call's
    /// `when`, `ttl` and `tags` values.
    call_spec: TokenStream,
    cache: TokenStream,
    key: TokenStream,
    /// The function's `Values`, made where a missing serde impl is reported.
    values: TokenStream,
    asserts: TokenStream,
    unless: TokenStream,
    /// The `Option<Kit<_>>` that lets values into the in-process tier.
    kit: TokenStream,
    bind_patterns: TokenStream,
    /// `Self::f_uncached`, with the function's type and const parameters,
    /// when `f_uncached` holds the body and `f` and `f_refresh` call it.
    holder: Option<TokenStream>,
    /// Async with `stale` or `refresh`, and a body that owns what it uses:
    /// refreshes run in a spawned task.
    spawning: bool,
}

impl<'a> Parts<'a> {
    fn new(args: &Args, signature: &'a Signature) -> Self {
        let runtime = runtime(args);
        let private = quote!(#runtime::__private);
        let sig = &signature.func.sig;
        let mut outer = sig.clone();
        let typed = outer.inputs.iter_mut().filter_map(|input| match input {
            syn::FnArg::Typed(typed) => Some(typed),
            syn::FnArg::Receiver(_) => None,
        });
        for (input, param) in typed.zip(&signature.params) {
            let binding = &param.binding;
            *input.pat = syn::parse_quote!(#binding);
        }

        let name = match &args.name {
            Some(name) => quote!(#name),
            None => {
                let ident = sig.ident.to_string();
                quote!(::core::concat!(::core::module_path!(), "::", #ident))
            }
        };
        // A `ttl = EXPR` is set on each call's copy of the spec (`call_spec`).
        let (ttl_ms, ttl) = match &args.ttl {
            Ttl::Fixed(ms) => (*ms, None),
            Ttl::Expr(expr) => (0, Some(quote!(.ttl(#expr)))),
        };
        let version = args.version;
        let lock = args.lock.map(|ms| quote!(.lock(#ms)));
        let local = args.local.as_ref().map(|n| {
            let n = n.value;
            quote!(.local(#n))
        });
        let stale = args.stale.map(|ms| quote!(.stale(#ms)));
        let sliding = sliding(args).then(|| quote!(.sliding()));
        let compress = args.compress.map(|on| quote!(.compress(#on)));
        let xfetch = args.refresh.then(|| {
            let beta = args.beta.as_ref().map_or(1.0, |beta| beta.value);
            quote!(.xfetch(#beta))
        });
        let spec = quote! {
            static __RC_SHAPE: #private::Shape = #private::Shape::new();
            static __RC_SPEC: #private::Spec =
                #private::Spec::new(#name, #ttl_ms, &__RC_SHAPE).version(#version)#lock #stale #xfetch #local #sliding #compress;
        };
        // Evaluated first among the call's arguments, before the body takes them.
        let when = args.when.as_ref().map(|expr| quote!(.when(#expr)));
        // Each tag is made a `String` at its expression, where a wrong type is reported.
        let tags = args.tags.as_ref().map(|tags| {
            let tags = tags
                .value
                .iter()
                .map(|expr| quote_spanned!(expr.span()=> #private::tag(#expr)));
            quote!(.tags(&[#(#tags),*]))
        });
        let call_spec = quote!(&__RC_SPEC #when #ttl #tags);
        let cache = match &args.cache {
            Some(expr) => quote_spanned!(expr.span()=> #private::as_cache(&(#expr))),
            None => quote!(#private::default_cache()),
        };
        let output = &signature.output;
        let stored = Stored::new(args, signature, &private);
        let (kit, asserts) = kit(args, signature, &stored.value, &private);
        let values = {
            let Stored {
                policy,
                span,
                value,
            } = &stored;
            let output = &signature.output;
            let values = respan(quote!(#private::values::<#policy, #output>()), *span);
            // `ttl_of` is taken as a `fn(&V) -> Duration` of the stored value.
            let ttl_of = args.ttl_of.as_ref().map(|expr| {
                quote_spanned! {expr.span()=>
                    .ttl_of({
                        let __rc_ttl_of: fn(&#value) -> ::core::time::Duration = #expr;
                        __rc_ttl_of
                    })
                }
            });
            quote!(#values #ttl_of)
        };
        let unless = match &args.unless {
            Some(expr) => quote_spanned! {expr.span()=>
                {
                    let __rc_unless: fn(&#output) -> bool = #expr;
                    ::core::option::Option::Some(__rc_unless)
                }
            },
            None => quote!(::core::option::Option::None),
        };
        let bind_patterns = signature.params.iter().filter_map(|param| {
            let binding = &param.binding;
            param
                .pattern
                .as_ref()
                .map(|pattern| quote!(let #pattern = #binding;))
        });
        let holder = (args.siblings && (signature.in_impl || args_mention_self(args))).then(|| {
            let uncached = sibling(&sig.ident.to_string(), "uncached");
            let generics: Vec<_> = sig
                .generics
                .params
                .iter()
                .filter_map(|param| match param {
                    GenericParam::Type(ty) => Some(&ty.ident),
                    GenericParam::Const(c) => Some(&c.ident),
                    GenericParam::Lifetime(_) => None,
                })
                .collect();
            let turbofish = (!generics.is_empty()).then(|| quote!(::<#(#generics),*>));
            quote!(Self::#uncached #turbofish)
        });
        Self {
            signature,
            outer,
            spec,
            name,
            holder,
            call_spec,
            cache,
            key: key(args, signature, &private, &values),
            values,
            asserts,
            unless,
            kit,
            bind_patterns: quote!(#(#bind_patterns)*),
            spawning: (args.stale.is_some() || args.refresh)
                && sig.asyncness.is_some()
                && owns_its_arguments(signature),
            private,
            runtime,
        }
    }

    /// The function itself (`Mode::Cached`) or `f_refresh`.
    fn cached(&self, ident: &Ident, attrs: &[Attribute], mode: Mode) -> TokenStream {
        let Self {
            spec,
            call_spec,
            cache,
            key,
            values,
            asserts,
            unless,
            kit,
            ..
        } = self;
        let mut sig = self.outer.clone();
        sig.ident = ident.clone();
        // Only reads go through the in-process tier.
        let kit = (mode == Mode::Cached).then(|| quote!(#kit,));
        let vis = &self.signature.func.vis;
        let is_async = sig.asyncness.is_some();
        let door = self.door();
        let call = match (mode, is_async) {
            (Mode::Cached, false) => quote!(call),
            (Mode::Cached, true) if self.spawning => quote!(call_spawning),
            (Mode::Cached, true) => quote!(call),
            (Mode::Refresh, false) => quote!(refresh),
            (Mode::Refresh, true) => quote!(refresh),
        };
        // The spawning call takes a closure that makes the future, so that a
        // refresh can run it in a task.
        let spawning = mode == Mode::Cached && self.spawning;
        let (holder, body) = match &self.holder {
            Some(holder) => {
                let receiver = self.signature.has_receiver.then(|| quote!(self,));
                let params = self.signature.params.iter().map(|p| &p.binding);
                let mut run = quote!(__rc_uncached(#receiver #(#params),*));
                if sig.unsafety.is_some() {
                    run = quote!(unsafe { #run });
                }
                let body = if is_async && !spawning {
                    run
                } else {
                    quote!(move || #run)
                };
                // A local, so that a `#[deprecated]` function's own call
                // of its `f_uncached` is not reported.
                let holder = quote! {
                    #[allow(deprecated)]
                    let __rc_uncached = #holder;
                };
                (holder, body)
            }
            None => (TokenStream::new(), self.inline_body(is_async, spawning)),
        };
        let body = if is_async {
            quote!(#door::#call(#call_spec, #cache, #key, #values, #unless, #kit #body).await)
        } else {
            quote!(#door.#call(#call_spec, #cache, #key, #values, #unless, #kit #body))
        };
        // The attributes of a function without the body: an expectation
        // about the body is met in `f_uncached`, so here it only allows.
        let attrs = attrs.iter().map(|attr| match (&self.holder, &attr.meta) {
            (Some(_), syn::Meta::List(list)) if list.path.is_ident("expect") => {
                let tokens = &list.tokens;
                quote!(#[allow(#tokens)])
            }
            _ => quote!(#attr),
        });
        let allow = (mode == Mode::Refresh).then(|| quote!(#[allow(dead_code)]));
        quote! {
            #(#attrs)*
            #allow
            #vis #sig {
                #asserts
                #spec
                #holder
                #body
            }
        }
    }

    /// The body where `f` holds it: the user's statements as those of a
    /// closure (sync) or an async block (async), in the user's braces,
    /// after the patterns of the parameters are bound.
    fn inline_body(&self, is_async: bool, spawning: bool) -> TokenStream {
        let block = &self.signature.func.block;
        let output = &self.signature.output;
        let bind_patterns = &self.bind_patterns;
        let stmts = &block.stmts;
        let braces = |tokens: TokenStream| {
            let mut group = Group::new(Delimiter::Brace, tokens);
            group.set_span(block.brace_token.span.join());
            group
        };
        if !is_async {
            let body = braces(quote!(#bind_patterns #(#stmts)*));
            return quote!(move || -> #output #body);
        }
        let body = braces(quote! {
            #bind_patterns
            // Pins the block's output type, so `?` in the body infers its error type.
            #[allow(unreachable_code, clippy::diverging_sub_expression, clippy::needless_return)]
            if false {
                let __rc_output: #output = ::core::unreachable!();
                return __rc_output;
            }
            #(#stmts)*
        });
        let make = spawning.then(|| quote!(move ||));
        quote!(#make async move #body)
    }

    /// Where the calls of the function and its siblings go: `__private`
    /// for an `async fn`; for a plain `fn`, the doors `__private::sync`
    /// gives, which are an error naming the `sync` feature where it is off,
    /// reported once, at `fn`.
    fn door(&self) -> TokenStream {
        let private = &self.private;
        let sig = &self.signature.func.sig;
        if sig.asyncness.is_some() {
            return quote!(#private);
        }
        respan(
            quote!(#private::sync(#private::Feature)),
            sig.fn_token.span(),
        )
    }

    /// `f_invalidate(args…)`: deletes this call's entry.
    fn invalidate(&self, name: &str, cfgs: &[Attribute]) -> TokenStream {
        let Self {
            spec, cache, key, ..
        } = self;
        let mut sig = self.outer.clone();
        sig.ident = sibling(name, "invalidate");
        sig.unsafety = None;
        let runtime = &self.runtime;
        sig.output = syn::parse_quote!(-> ::core::result::Result<bool, #runtime::Error>);
        let vis = &self.signature.func.vis;
        let receiver = self.signature.has_receiver.then(|| quote!(let _ = &self;));
        let params = self.signature.params.iter().map(|p| &p.binding);
        let door = self.door();
        let call = if sig.asyncness.is_some() {
            quote!(#door::invalidate(&__RC_SPEC, #cache, #key).await)
        } else {
            quote!(#door.invalidate(&__RC_SPEC, #cache, #key))
        };
        let doc = doc(format!(
            "Deletes the cached value of `{name}` for these arguments; `Ok(true)` if there was one. \
             Redis errors are returned, not swallowed."
        ));
        quote! {
            #(#cfgs)*
            #doc
            #[allow(dead_code)]
            #vis #sig {
                #receiver
                #(let _ = &#params;)*
                #spec
                #call
            }
        }
    }

    /// `f_invalidate_all()`: deletes every entry of the function.
    fn invalidate_all(&self, name: &str, cfgs: &[Attribute]) -> TokenStream {
        let Self {
            name: key_name,
            cache,
            ..
        } = self;
        let vis = &self.signature.func.vis;
        let ident = sibling(name, "invalidate_all");
        let asyncness = &self.signature.func.sig.asyncness;
        let runtime = &self.runtime;
        let door = self.door();
        let call = if asyncness.is_some() {
            quote!(#door::invalidate_all(#key_name, #cache).await)
        } else {
            quote!(#door.invalidate_all(#key_name, #cache))
        };
        let doc = doc(format!(
            "Deletes every cached value of `{name}`, for all arguments; returns how many."
        ));
        quote! {
            #(#cfgs)*
            #doc
            #[allow(dead_code)]
            #vis #asyncness fn #ident() -> ::core::result::Result<u64, #runtime::Error> {
                #call
            }
        }
    }
}

/// What a function stores: its store policy, the type of the value stored,
/// and where a missing serde impl on that value is reported.
struct Stored {
    policy: TokenStream,
    value: syn::Type,
    span: Span,
}

impl Stored {
    fn new(args: &Args, signature: &Signature, private: &TokenStream) -> Self {
        let output = &signature.output;
        let flag = |given: &Option<crate::args::Given<bool>>| given.as_ref().map(|g| g.value);
        let (policy, value) = match &signature.kind {
            ReturnKind::Result { ok, err: Some(_) } if flag(&args.cache_err) == Some(true) => {
                (quote!(Always), output)
            }
            ReturnKind::Result { ok, .. } => (quote!(OkOnly), ok),
            ReturnKind::Option { some } if flag(&args.cache_none) == Some(false) => {
                (quote!(SomeOnly), some)
            }
            _ => (quote!(Always), output),
        };
        Self {
            policy: quote!(#private::#policy),
            value: (**value).clone(),
            span: value.span(),
        }
    }
}

/// What lets the function's values (of type `value`) into the in-process
/// tier, and, with `local = N`, an assertion that puts a missing `Clone` (or
/// `Send`, `Sync`, `'static`) on the return type. Without `local`, the
/// cache's shared tier (`CacheBuilder::local`) takes the values if their
/// type allows it; the type is probed only where it is concrete and owns
/// its data.
fn kit(
    args: &Args,
    signature: &Signature,
    value: &syn::Type,
    private: &TokenStream,
) -> (TokenStream, TokenStream) {
    let output = &signature.output;
    let span = output.span();
    let value = respan(quote!(#value), span);
    let probe = quote! {{
        #[allow(unused_imports)]
        use #private::{Cloneable as _, NotCloneable as _};
        (&#private::Probe::<#value>::new()).kit()
    }};
    // A sliding hit must reach Redis to reset the TTL: no in-process tier.
    if sliding(args) {
        return (quote!(::core::option::Option::None), TokenStream::new());
    }
    if let Some(local) = &args.local {
        // Without the `local` feature, an error at `local` that names it.
        let feature = respan(
            quote!(#private::local(#private::Feature);),
            local.name.span(),
        );
        let assert = quote_spanned!(span=> #private::assert_local::<#value>(););
        return (probe, quote!(#feature #assert));
    }
    let generic = signature
        .func
        .sig
        .generics
        .params
        .iter()
        .any(|p| matches!(p, GenericParam::Type(_)));
    if generic || borrows(output) {
        return (quote!(::core::option::Option::None), TokenStream::new());
    }
    (probe, TokenStream::new())
}

/// Whether an expression of the attribute names `Self`, which puts the
/// function in an `impl` block.
fn args_mention_self(args: &Args) -> bool {
    let ttl = match &args.ttl {
        Ttl::Expr(expr) => Some(expr),
        Ttl::Fixed(_) => None,
    };
    let tags = args.tags.iter().flat_map(|tags| &tags.value);
    let key = args.key.as_ref().map(|key| &key.value);
    [&args.cache, &args.when, &args.unless, &args.ttl_of]
        .into_iter()
        .flatten()
        .chain(ttl)
        .chain(key)
        .chain(tags)
        .any(|expr| crate::signature::mentions_self(quote!(#expr)))
}

/// Whether `sliding = true`.
fn sliding(args: &Args) -> bool {
    args.sliding.as_ref().is_some_and(|s| s.value)
}

/// Where generated code finds the runtime: `crate = …`, else `::redis_cached`.
fn runtime(args: &Args) -> TokenStream {
    match &args.krate {
        Some(path) => quote!(#path),
        None => quote!(::redis_cached),
    }
}

/// `tokens` with every span set to `span`, so that an error about them
/// points at the user's token.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    use proc_macro2::{Group, TokenTree};
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut inner = Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

/// The key: `key = …` if given, else the receiver and every parameter not
/// skipped (each spanned at its type, so a missing `Serialize` is reported
/// there); then, in every case, the receiver's type (so same-named methods
/// of two types differ even with `skip(self)`) and the function's own type
/// and const parameters (so each instantiation has its own entries). The
/// runtime adds the shape of the stored type, which it traces from `values`.
fn key(
    args: &Args,
    signature: &Signature,
    private: &TokenStream,
    stored: &TokenStream,
) -> TokenStream {
    let sig = &signature.func.sig;
    let skipped = |name: &str| {
        args.skip
            .as_ref()
            .is_some_and(|skip| skip.value.iter().any(|s| s == name))
    };
    let values: Vec<TokenStream> = match &args.key {
        Some(key) => {
            let expr = &key.value;
            vec![quote_spanned!(expr.span()=> __rc_key.arg(&(#expr));)]
        }
        None => {
            let receiver = sig
                .receiver()
                .filter(|_| !skipped("self"))
                .map(|receiver| quote_spanned!(receiver.span()=> __rc_key.arg(&self);));
            let params = signature
                .params
                .iter()
                .filter(|param| param.pattern.is_some() || !skipped(&param.binding.to_string()))
                .map(|param| {
                    let binding = &param.binding;
                    quote_spanned!(param.ty.span()=> __rc_key.arg(&#binding);)
                });
            receiver.into_iter().chain(params).collect()
        }
    };
    let self_type = sig
        .receiver()
        .map(|_| quote!(__rc_key.type_name(::core::any::type_name::<Self>());));
    let mut type_params = Vec::new();
    let mut const_params = Vec::new();
    for param in &sig.generics.params {
        match param {
            GenericParam::Type(ty) => type_params.push(&ty.ident),
            GenericParam::Const(c) => const_params.push(&c.ident),
            GenericParam::Lifetime(_) => {}
        }
    }
    let type_params = (!type_params.is_empty())
        .then(|| quote!(__rc_key.type_name(::core::any::type_name::<(#(#type_params,)*)>());));
    quote! {
        #private::digest(&__RC_SPEC, #stored, |__rc_key| {
            #(#values)* #self_type #type_params #(__rc_key.arg(&#const_params);)*
        })
    }
}

/// Whether the body can move into a `'static` task: no borrowed receiver,
/// no reference, lifetime or `impl Trait` in a parameter, no type parameter.
fn owns_its_arguments(signature: &Signature) -> bool {
    let sig = &signature.func.sig;
    let receiver_owned = sig
        .receiver()
        .is_none_or(|r| r.reference.is_none() && !borrows(&r.ty));
    let generic = sig
        .generics
        .params
        .iter()
        .any(|p| !matches!(p, GenericParam::Const(_)));
    receiver_owned && !generic && !signature.params.iter().any(|p| borrows(&p.ty))
}

/// Whether a type mentions a reference, a lifetime or `impl Trait`, anywhere.
fn borrows(ty: &syn::Type) -> bool {
    use proc_macro2::TokenTree;
    fn walk(tokens: proc_macro2::TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            TokenTree::Punct(p) => p.as_char() == '&' || p.as_char() == '\'',
            TokenTree::Ident(i) => i == "impl" || i == "Self",
            TokenTree::Group(g) => walk(g.stream()),
            TokenTree::Literal(_) => false,
        })
    }
    walk(quote!(#ty))
}

/// `f_suffix`, spanned at the attribute: if the function sits in a trait
/// impl, rustc's "not a member of trait" error then points at
/// `#[redis_cached]`, where `siblings = false` is the fix.
fn sibling(name: &str, suffix: &str) -> Ident {
    format_ident!("{}_{}", name, suffix, span = Span::call_site())
}

fn doc(text: String) -> Attribute {
    syn::parse_quote!(#[doc = #text])
}

fn with(attrs: &[Attribute], extra: Attribute) -> Vec<Attribute> {
    let mut all = vec![extra];
    all.extend_from_slice(attrs);
    all
}
