//! Emission: the cached function becomes a short call into
//! `::redis_cached::__private`, with the original body moved into a closure
//! (sync) or an async block (async), so `return` and `?` keep their meaning.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{GenericParam, ItemFn};

use crate::args::Args;
use crate::signature::{Param, ReturnKind, Signature};

/// The rewritten function.
pub(crate) fn function(args: &Args, signature: &Signature) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = &signature.func;
    let mut outer = sig.clone();
    for (input, param) in outer
        .inputs
        .iter_mut()
        .filter_map(|input| match input {
            syn::FnArg::Typed(typed) => Some(typed),
            syn::FnArg::Receiver(_) => None,
        })
        .zip(&signature.params)
    {
        let binding = &param.binding;
        *input.pat = syn::parse_quote!(#binding);
    }

    let private = quote!(::redis_cached::__private);
    let name = sig.ident.to_string();
    let ttl_ms = args.ttl_ms;
    let lock = args.lock_ms.map(|ms| quote!(.lock(#ms)));
    let cache = match &args.cache {
        Some(expr) => quote_spanned!(expr.span()=> &*(#expr)),
        None => quote!(#private::default_cache()),
    };
    let key = key(&signature.params, &signature.func.sig.generics);
    let output = &signature.output;
    let (store, value_ty) = match &signature.kind {
        ReturnKind::Plain => (quote!(#private::Always), output),
        ReturnKind::Result { ok } => (quote!(#private::OkOnly), ok),
    };
    let assert_value = quote_spanned!(value_ty.span()=> #private::assert_value::<#value_ty>(););
    let bind_patterns = signature.params.iter().filter_map(|param| {
        let binding = &param.binding;
        param
            .pattern
            .as_ref()
            .map(|pattern| quote!(let #pattern = #binding;))
    });
    let bind_patterns = quote!(#(#bind_patterns)*);

    let call = if sig.asyncness.is_some() {
        quote! {
            #private::call_async::<#store, _>(&__RC_SPEC, #cache, #key, async move {
                #bind_patterns
                // Pins the block's output type, so `?` in the body infers its error type.
                #[allow(unreachable_code, clippy::diverging_sub_expression, clippy::needless_return)]
                if false {
                    let __rc_output: #output = ::core::unreachable!();
                    return __rc_output;
                }
                #block
            }).await
        }
    } else {
        quote! {
            #private::call_sync::<#store, _>(&__RC_SPEC, #cache, #key, move || -> #output {
                #bind_patterns
                #block
            })
        }
    };
    quote! {
        #(#attrs)*
        #vis #outer {
            #assert_value
            static __RC_SPEC: #private::Spec =
                #private::Spec::new(::core::concat!(::core::module_path!(), "::", #name), #ttl_ms)#lock;
            #call
        }
    }
}

/// The key: every parameter (spanned at its type, so a missing `Serialize`
/// is reported there), then the function's own type parameters.
fn key(params: &[Param], generics: &syn::Generics) -> TokenStream {
    let args = params.iter().map(|param| {
        let binding = &param.binding;
        quote_spanned!(param.ty.span()=> .arg(&#binding))
    });
    let type_params: Vec<_> = generics
        .params
        .iter()
        .filter_map(|param| match param {
            GenericParam::Type(ty) => Some(&ty.ident),
            _ => None,
        })
        .collect();
    let type_params = (!type_params.is_empty())
        .then(|| quote!(.type_name(::core::any::type_name::<(#(#type_params,)*)>())));
    quote!(::redis_cached::__private::KeyHasher::new() #(#args)* #type_params)
}
