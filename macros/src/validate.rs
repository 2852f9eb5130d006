//! Every reason to refuse a function, in one place. Each error points at the
//! token to change and says what to do; all of them are reported at once.

use syn::{FnArg, ItemFn, ReturnType, Type};

use crate::args::Errors;

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
        match input {
            FnArg::Receiver(receiver) => errors.push(syn::Error::new_spanned(
                receiver,
                "methods with `self` are not supported yet; make it an associated function that takes what the key needs",
            )),
            FnArg::Typed(typed) => {
                if let Type::Reference(reference) = &*typed.ty {
                    if let Some(mutability) = &reference.mutability {
                        errors.push(syn::Error::new_spanned(
                            mutability,
                            "a `&mut` argument can't be cached: a hit would skip the mutation; take it by `&` or by value",
                        ));
                    }
                }
            }
        }
    }
    errors.finish()
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
