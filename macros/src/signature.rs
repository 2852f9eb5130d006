//! The function as the expansion needs it: its parameters (with the names
//! the key reads) and what kind of value it returns.

use quote::format_ident;
use syn::visit::Visit;
use syn::{FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, ReturnType, Type};

/// A parsed `fn` item. Built only after `validate` accepted it.
pub(crate) struct Signature {
    pub(crate) func: ItemFn,
    /// Whether the function takes `self` in some form.
    pub(crate) has_receiver: bool,
    /// Whether the function is known to sit in an `impl` block: it takes
    /// `self`, or its signature or body names `Self` (outside the items the
    /// body declares, which have a `Self` of their own). A function that
    /// does neither may be a free `fn` or an associated one: nothing in its
    /// tokens tells them apart.
    pub(crate) in_impl: bool,
    pub(crate) params: Vec<Param>,
    pub(crate) output: Box<Type>,
    pub(crate) kind: ReturnKind,
}

/// One typed parameter.
pub(crate) struct Param {
    /// The name it has in the rewritten signature, read by the key.
    pub(crate) binding: Ident,
    /// A pattern to bind in the body (`(a, b)`, `mut x`), when it isn't `binding` itself.
    pub(crate) pattern: Option<Box<Pat>>,
    pub(crate) ty: Box<Type>,
}

/// What the return type tells about what to cache.
pub(crate) enum ReturnKind {
    /// Any other type: the whole value is cached.
    Plain,
    /// `Option<T>`: `None` is cached too, unless `cache_none = false`.
    Option { some: Box<Type> },
    /// `Result<T, E>` (or an alias `Result<T>`): only `Ok(T)` is cached,
    /// unless `cache_err = true`. `err` is `E` when written out.
    Result {
        ok: Box<Type>,
        err: Option<Box<Type>>,
    },
}

impl Signature {
    /// Reads `func`; `validate::function` has ruled out what this can't model.
    pub(crate) fn new(func: ItemFn) -> Self {
        let params = func
            .sig
            .inputs
            .iter()
            .enumerate()
            .filter_map(|(index, input)| match input {
                FnArg::Typed(typed) => Some(Param::new(index, &typed.pat, &typed.ty)),
                FnArg::Receiver(_) => None,
            })
            .collect();
        let output = match &func.sig.output {
            ReturnType::Type(_, ty) => ty.clone(),
            ReturnType::Default => Box::new(syn::parse_quote!(())),
        };
        let kind = ReturnKind::of(&output);
        let has_receiver = func.sig.receiver().is_some();
        let in_impl = has_receiver || {
            let mut find = FindSelf(false);
            find.visit_signature(&func.sig);
            find.visit_block(&func.block);
            find.0
        };
        Self {
            func,
            has_receiver,
            in_impl,
            params,
            output,
            kind,
        }
    }
}

impl Param {
    fn new(index: usize, pat: &Pat, ty: &Type) -> Self {
        let (binding, pattern) = match pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.mutability.is_none() && p.subpat.is_none() => {
                (p.ident.clone(), None)
            }
            other => (
                format_ident!("__rc_arg{}", index),
                Some(Box::new(other.clone())),
            ),
        };
        Self {
            binding,
            pattern,
            ty: Box::new(ty.clone()),
        }
    }
}

impl ReturnKind {
    /// Decided by the last path segment's name, as a reader would.
    fn of(ty: &Type) -> Self {
        let Type::Path(path) = ty else {
            return Self::Plain;
        };
        let Some(last) = path.path.segments.last() else {
            return Self::Plain;
        };
        let PathArguments::AngleBracketed(args) = &last.arguments else {
            return Self::Plain;
        };
        let mut types = args.args.iter().filter_map(|arg| match arg {
            GenericArgument::Type(ty) => Some(Box::new(ty.clone())),
            _ => None,
        });
        match (last.ident.to_string().as_str(), types.next()) {
            ("Option", Some(some)) => Self::Option { some },
            ("Result", Some(ok)) => Self::Result {
                ok,
                err: types.next(),
            },
            _ => Self::Plain,
        }
    }
}

/// Finds `Self` in a function, but not in the items its body declares.
struct FindSelf(bool);

impl<'ast> Visit<'ast> for FindSelf {
    fn visit_item(&mut self, _: &'ast syn::Item) {}

    fn visit_ident(&mut self, ident: &'ast Ident) {
        self.0 |= ident == "Self";
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        self.0 |= mentions_self(mac.tokens.clone());
    }
}

/// Whether `tokens` name `Self` anywhere.
pub(crate) fn mentions_self(tokens: proc_macro2::TokenStream) -> bool {
    tokens.into_iter().any(|token| match token {
        proc_macro2::TokenTree::Ident(ident) => ident == "Self",
        proc_macro2::TokenTree::Group(group) => mentions_self(group.stream()),
        _ => false,
    })
}
