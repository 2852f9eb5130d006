//! Tags (`tags = [...]`): the key of a tag's set, which entry keys a set
//! may name, and what a tag expression may be ([`IntoTag`]).
//!
//! A tagged entry is named in one Redis set per tag, `<prefix>{<tag>}:tag`.
//! No entry key can take that form: an entry key's name comes before its
//! `{`, and names hold no `{`. The braces make the tag a Redis Cluster hash
//! tag, so different tags' sets spread over the slots.
//!
//! What a set names is only ever deleted if it has the form of an entry key
//! of this cache, `<prefix><name>:{<32 hex digits>}`: a set that holds
//! anything else (written by hand, or by a cache with another prefix) can't
//! make `invalidate_tag` delete a key outside the cache, a lock or another
//! tag's set.

/// The key of the set of entries tagged `tag`, in a cache with `prefix`.
pub(crate) fn set_key(prefix: &str, tag: &str) -> String {
    format!("{prefix}{{{tag}}}:tag")
}

/// Whether `member` has the form of an entry key of a cache with `prefix`.
pub(crate) fn is_entry_key(prefix: &str, member: &str) -> bool {
    let Some(rest) = member.strip_prefix(prefix) else {
        return false;
    };
    let Some((name, hex)) = rest
        .strip_suffix('}')
        .and_then(|inner| inner.rsplit_once(":{"))
    else {
        return false;
    };
    hex.len() == 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && !name.is_empty()
        && !name.contains(['{', '}'])
}

/// What a `tags = [...]` expression may be: a string, owned or borrowed.
#[diagnostic::on_unimplemented(
    message = "a tag must be a string, not `{Self}`",
    label = "a `{Self}`, not a `String` or a `&str`",
    note = "format the value into one, e.g. `tags = [format!(\"user:{{user_id}}\")]`"
)]
pub trait IntoTag {
    /// The tag.
    fn into_tag(self) -> String;
}

impl IntoTag for String {
    fn into_tag(self) -> String {
        self
    }
}

impl IntoTag for &str {
    fn into_tag(self) -> String {
        self.to_owned()
    }
}

impl IntoTag for &String {
    fn into_tag(self) -> String {
        self.clone()
    }
}

impl IntoTag for std::borrow::Cow<'_, str> {
    fn into_tag(self) -> String {
        self.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "d1e3e474f3ea04c9ed32c37937c6462b";

    #[test]
    fn only_entry_keys_of_the_cache_are_entry_keys() {
        let key = format!("app:shop::price:{{{HEX}}}");
        assert!(is_entry_key("app:", &key));
        assert!(is_entry_key("", &format!("m::f:{{{HEX}}}")));
        for other in [
            format!("other:shop::price:{{{HEX}}}"),
            format!("app:shop::price:{{{HEX}}}:lock"),
            format!("app::{{{HEX}}}"),
            format!("app:{{{HEX}}}:tag"),
            set_key("app:", HEX),
            format!("app:a{{b:{{{HEX}}}"),
            "app:shop::price:{nothex}".to_owned(),
            format!("app:shop::price:{{{}}}", &HEX[1..]),
            "app:".to_owned(),
            String::new(),
        ] {
            assert!(!is_entry_key("app:", &other), "{other}");
        }
    }

    #[test]
    fn a_set_key_is_no_entry_key() {
        assert_eq!(set_key("app:", "user:7"), "app:{user:7}:tag");
        assert!(!is_entry_key(
            "app:",
            &set_key("app:", &format!("x:{{{HEX}}}"))
        ));
    }
}
