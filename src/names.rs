//! The vocabulary of names: server slugs, `<slug>__<name>` qualification within the 64-character
//! limit that Claude and OpenAI clients enforce, parsing a qualified name back into its parts, and
//! how names are exposed ([`PrefixMode`]). Floor 0: it imports nothing from the crate.

use sha2::{Digest, Sha256};

/// How the names of downstream tools and prompts are exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum PrefixMode {
    /// Every name is `<slug>__<name>`, as the original proxy does.
    #[default]
    Always,
    /// Only names offered by more than one server are prefixed.
    Auto,
    /// Original names; a name offered by several servers is refused with an error.
    Never,
}

/// The separator between a server's slug (or UUID) and an original name, as in the original.
pub const SEPARATOR: &str = "__";

/// The longest name we expose; longer ones are shortened deterministically.
pub const MAX_NAME_LEN: usize = 64;

/// The longest slug we derive from a server name.
const MAX_SLUG_LEN: usize = 40;

/// The slug of a server name: lowercase `[a-z0-9-]`, runs of other characters become one `-`.
pub fn slugify(server_name: &str) -> String {
    let mut slug = String::with_capacity(server_name.len());
    for ch in server_name.chars() {
        let ch = ch.to_ascii_lowercase();
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            slug.push(ch);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let mut slug = slug.trim_matches('-').to_owned();
    if slug.len() > MAX_SLUG_LEN {
        slug.truncate(MAX_SLUG_LEN);
        slug = slug.trim_end_matches('-').to_owned();
    }
    if slug.is_empty() {
        slug.push_str("server");
    }
    slug
}

/// Slugs for servers in the given order, unique: a repeated slug gets `-2`, `-3`, ….
pub fn unique_slugs<'a>(server_names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut taken = std::collections::HashSet::new();
    server_names
        .into_iter()
        .map(|name| {
            let base = slugify(name);
            let mut slug = base.clone();
            let mut n = 2;
            while !taken.insert(slug.clone()) {
                slug = format!("{base}-{n}");
                n += 1;
            }
            slug
        })
        .collect()
}

/// `<prefix>__<name>`, shortened to [`MAX_NAME_LEN`] when needed.
pub fn qualify(prefix: &str, name: &str) -> String {
    fit(&format!("{prefix}{SEPARATOR}{name}"), 8)
}

/// Shortens `name` to [`MAX_NAME_LEN`]: the head is kept and `-` plus `hash_len` hex digits of the
/// full name's SHA-256 are appended, so two different long names stay different.
pub fn fit(name: &str, hash_len: usize) -> String {
    if name.len() <= MAX_NAME_LEN {
        return name.to_owned();
    }
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest
        .iter()
        .flat_map(|byte| [byte >> 4, byte & 0xf])
        .take(hash_len)
        .map(|nibble| char::from_digit(u32::from(nibble), 16).unwrap_or('0'))
        .collect();
    let mut keep = MAX_NAME_LEN - 1 - hex.len();
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}-{hex}", &name[..keep])
}

/// Splits `<prefix>__<name>` at the first separator; both parts must be non-empty.
pub fn split(qualified: &str) -> Option<(&str, &str)> {
    let (prefix, name) = qualified.split_once(SEPARATOR)?;
    (!prefix.is_empty() && !name.is_empty()).then_some((prefix, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lowercase_dash_separated() {
        assert_eq!(slugify("My Server"), "my-server");
        assert_eq!(slugify("time_server v2!"), "time-server-v2");
        assert_eq!(slugify("__"), "server");
        assert_eq!(slugify("ÄÖÜ"), "server");
        assert!(slugify(&"x".repeat(100)).len() <= MAX_SLUG_LEN);
    }

    #[test]
    fn colliding_slugs_get_numbered() {
        assert_eq!(
            unique_slugs(["My Server", "my-server", "my_server"]),
            ["my-server", "my-server-2", "my-server-3"]
        );
    }

    #[test]
    fn qualified_names_fit_64_characters_and_stay_distinct() {
        assert_eq!(qualify("time", "get_time"), "time__get_time");
        let long_a = qualify("server", &format!("{}a", "x".repeat(80)));
        let long_b = qualify("server", &format!("{}b", "x".repeat(80)));
        assert_eq!(long_a.len(), MAX_NAME_LEN);
        assert_eq!(long_b.len(), MAX_NAME_LEN);
        assert_ne!(long_a, long_b);
        assert!(long_a.starts_with("server__xxx"));
        // Deterministic.
        assert_eq!(long_a, qualify("server", &format!("{}a", "x".repeat(80))));
    }

    #[test]
    fn shortening_respects_char_boundaries() {
        let name = qualify("s", &"é".repeat(60));
        assert!(name.len() <= MAX_NAME_LEN);
    }

    #[test]
    fn split_takes_the_first_separator() {
        assert_eq!(split("a__b__c"), Some(("a", "b__c")));
        assert_eq!(split("a__"), None);
        assert_eq!(split("__b"), None);
        assert_eq!(split("plain"), None);
    }
}
