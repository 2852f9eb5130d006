//! Every reason to refuse a function or an argument combination, in one
//! place. Each error points at the token to change and says what to do; all
//! of them are reported at once.

use syn::{FnArg, ItemFn, ReturnType, Type};

use crate::args::{Args, Errors};
use crate::signature::{ReturnKind, Signature};

/// Checks the item under the attribute and returns it as a function.
pub(crate) fn item(item: syn::Item) -> syn::Result<ItemFn> {
    let func = match item {
        syn::Item::Fn(func) => func,
        other => {
            return Err(syn::Error::new_spanned(
                other,
                "`#[redis_cached]` goes on a `fn` with a body; put it on the function whose result you want cached",
            ));
        }
    };
    function(&func)?;
    Ok(func)
}

fn function(func: &ItemFn) -> syn::Result<()> {
    let sig = &func.sig;
    let mut errors = Errors::default();
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new_spanned(
            constness,
            "a `const fn` can't read Redis; remove `const` or `#[redis_cached]`",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "variadic functions can't be cached",
        ));
    }
    match &sig.output {
        ReturnType::Default => errors.push(syn::Error::new_spanned(
            &sig.ident,
            "a function without a return type has nothing to cache; add `-> T` with `T: Serialize + DeserializeOwned`",
        )),
        ReturnType::Type(_, ty) => {
            if let Some(impl_trait) = find_impl_trait(ty) {
                errors.push(syn::Error::new_spanned(
                    impl_trait,
                    "`impl Trait` can't be stored in Redis; return a concrete type that is `Serialize + DeserializeOwned`",
                ));
            }
        }
    }
    for input in &sig.inputs {
        let mutable = match input {
            FnArg::Receiver(receiver) => match &*receiver.ty {
                Type::Reference(reference) => reference.mutability.as_ref(),
                _ => None,
            },
            FnArg::Typed(typed) => match &*typed.ty {
                Type::Reference(reference) => reference.mutability.as_ref(),
                _ => None,
            },
        };
        if let Some(mutability) = mutable {
            errors.push(syn::Error::new_spanned(
                mutability,
                "a `&mut` argument can't be cached: a hit would skip the mutation; take it by `&` or by value",
            ));
        }
    }
    errors.finish()
}

/// Checks the arguments against the function they are on.
pub(crate) fn arguments(args: &Args, signature: &Signature) -> syn::Result<()> {
    let mut errors = Errors::default();
    if let Some(skip) = &args.skip {
        if let Some(key) = &args.key {
            errors.push(syn::Error::new_spanned(
                &key.name,
                "`key` replaces the whole key, so `skip` has nothing to do; remove one of them",
            ));
        }
        for name in &skip.value {
            let known = if name == "self" {
                signature.has_receiver
            } else {
                signature
                    .params
                    .iter()
                    .any(|p| p.pattern.is_none() && p.binding == *name)
            };
            if !known {
                errors.push(syn::Error::new_spanned(
                    name,
                    format!(
                        "`skip` names `{name}`, which is not an argument of this function{}",
                        {
                            let names = key_names(signature);
                            if names.is_empty() {
                                String::new()
                            } else {
                                format!("; its arguments are: {names}")
                            }
                        }
                    ),
                ));
            }
        }
    }
    if let Some(beta) = &args.beta {
        if !args.refresh {
            errors.push(syn::Error::new_spanned(
                &beta.name,
                "`beta` tunes `refresh = \"xfetch\"`; add that or remove `beta`",
            ));
        }
    }
    if let Some(cache) = &args.cache {
        if args.siblings {
            if let Some(local) = mentions_local(cache, signature) {
                errors.push(syn::Error::new_spanned(
                    local,
                    "`cache` uses an argument, but `f_invalidate_all()` takes none; \
                     use a `static`, or add `siblings = false`",
                ));
            }
        }
    }
    if let Some(sliding) = args.sliding.as_ref().filter(|s| s.value) {
        let conflicts = [
            (
                args.local.is_some(),
                "`local`: a hit in this process can't extend the entry's TTL in Redis without a round trip",
            ),
            (
                args.stale.is_some(),
                "`stale`: a value renewed on every read is never stale",
            ),
            (
                args.refresh,
                "`refresh`: XFetch refreshes by age, and a sliding entry's age is how long it went unread",
            ),
            (
                args.ttl_of.is_some(),
                "`ttl_of`: a hit resets the TTL before the value is decoded, so it can't be the value's own",
            ),
            (
                args.tags.is_some(),
                "`tags`: a hit would extend the entry past the TTL of its tags' sets, and `invalidate_tag` would miss it",
            ),
        ];
        for (_, why) in conflicts.iter().filter(|(conflict, _)| *conflict) {
            errors.push(syn::Error::new_spanned(
                &sliding.name,
                format!("`sliding` can't be used with {why}; remove one of them"),
            ));
        }
    }
    if let Some(cache_none) = &args.cache_none {
        if !matches!(signature.kind, ReturnKind::Option { .. }) {
            errors.push(syn::Error::new_spanned(
                &cache_none.name,
                "`cache_none` applies to functions returning `Option<T>`; remove it",
            ));
        }
    }
    if let Some(cache_err) = &args.cache_err {
        match &signature.kind {
            ReturnKind::Result { err: Some(_), .. } => {}
            ReturnKind::Result { err: None, .. } if !cache_err.value => {}
            ReturnKind::Result { err: None, .. } => errors.push(syn::Error::new_spanned(
                &cache_err.name,
                "`cache_err = true` needs the error type written out: return `Result<T, E>`, not an alias",
            )),
            _ => errors.push(syn::Error::new_spanned(
                &cache_err.name,
                "`cache_err` applies to functions returning `Result<T, E>`; remove it",
            )),
        }
    }
    errors.finish()
}

/// The first `self` or parameter name in `expr`, if any.
fn mentions_local(expr: &syn::Expr, signature: &Signature) -> Option<proc_macro2::Ident> {
    fn find(
        tokens: proc_macro2::TokenStream,
        hit: &dyn Fn(&proc_macro2::Ident) -> bool,
    ) -> Option<proc_macro2::Ident> {
        tokens.into_iter().find_map(|token| match token {
            proc_macro2::TokenTree::Ident(ident) if hit(&ident) => Some(ident),
            proc_macro2::TokenTree::Group(group) => find(group.stream(), hit),
            _ => None,
        })
    }
    let hit = |ident: &proc_macro2::Ident| {
        ident == "self"
            || signature
                .params
                .iter()
                .any(|p| p.pattern.is_none() && p.binding == *ident)
    };
    find(quote::quote!(#expr), &hit)
}

/// The names `skip` accepts, for error messages.
fn key_names(signature: &Signature) -> String {
    let receiver = signature.has_receiver.then(|| "self".to_owned());
    let params = signature
        .params
        .iter()
        .filter(|p| p.pattern.is_none())
        .map(|p| p.binding.to_string());
    receiver
        .into_iter()
        .chain(params)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first `impl Trait` anywhere in `ty`, if any.
fn find_impl_trait(ty: &Type) -> Option<&Type> {
    match ty {
        Type::ImplTrait(_) => Some(ty),
        Type::Array(t) => find_impl_trait(&t.elem),
        Type::Slice(t) => find_impl_trait(&t.elem),
        Type::Group(t) => find_impl_trait(&t.elem),
        Type::Paren(t) => find_impl_trait(&t.elem),
        Type::Ptr(t) => find_impl_trait(&t.elem),
        Type::Reference(t) => find_impl_trait(&t.elem),
        Type::Tuple(t) => t.elems.iter().find_map(find_impl_trait),
        Type::Path(t) => t
            .path
            .segments
            .iter()
            .find_map(|segment| match &segment.arguments {
                syn::PathArguments::AngleBracketed(args) => {
                    args.args.iter().find_map(|arg| match arg {
                        syn::GenericArgument::Type(ty) => find_impl_trait(ty),
                        _ => None,
                    })
                }
                _ => None,
            }),
        _ => None,
    }
}
