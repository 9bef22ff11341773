//! Tool names the providers accept, mapped both ways. MCP tools are offered under qualified names
//! (`server.tool`, with whatever characters a server chose) while each provider takes only some
//! characters and at most 64 of them; [`ToolNames`] gives every qualified name a distinct name the
//! provider accepts, keeps a name the provider already accepts as it is, and turns the provider's
//! name back into the qualified one when the model calls it.

use std::collections::{HashMap, HashSet};

/// The longest name every provider takes.
const MAX_LEN: usize = 64;

/// What a provider accepts as a tool name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// `^[a-zA-Z0-9_-]{1,64}$` (Anthropic, OpenAI, xAI, OpenAI-compatible servers).
    Plain,
    /// Gemini: starts with a letter or `_`; letters, digits, `_`, `.`, `:`, `-`; at most 64.
    Gemini,
}

impl NameRule {
    /// Whether the provider takes `name` as it is.
    pub fn accepts(self, name: &str) -> bool {
        let mut chars = name.chars();
        let Some(first) = chars.next() else {
            return false;
        };
        name.len() <= MAX_LEN && self.starts_with(first) && chars.all(|c| self.allows(c))
    }

    fn allows(self, c: char) -> bool {
        match self {
            NameRule::Plain => c.is_ascii_alphanumeric() || c == '_' || c == '-',
            NameRule::Gemini => c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'),
        }
    }

    fn starts_with(self, c: char) -> bool {
        match self {
            NameRule::Plain => self.allows(c),
            NameRule::Gemini => c.is_ascii_alphabetic() || c == '_',
        }
    }

    /// `name` with each refused character replaced by `_`, a leading `_` where its start is
    /// refused, cut to [`MAX_LEN`]. Every character of the result is ASCII.
    fn mend(self, name: &str) -> String {
        let mut mended: String = name
            .chars()
            .map(|c| if self.allows(c) { c } else { '_' })
            .collect();
        if !mended.chars().next().is_some_and(|c| self.starts_with(c)) {
            mended.insert(0, '_');
        }
        mended.truncate(MAX_LEN);
        mended
    }
}

/// The names given to one provider for a set of qualified tool names, both ways.
#[derive(Clone, Debug, Default)]
pub struct ToolNames {
    to_provider: HashMap<String, String>,
    to_qualified: HashMap<String, String>,
}

impl ToolNames {
    /// Names for every qualified name, distinct, accepted by `rule`, and equal to the qualified
    /// name wherever that is already accepted. The same names in the same order give the same
    /// mapping.
    pub fn new<'a>(rule: NameRule, qualified: impl IntoIterator<Item = &'a str>) -> ToolNames {
        let qualified: Vec<&str> = qualified.into_iter().collect();
        // Names the provider accepts keep themselves, whatever comes before them.
        let mut taken: HashSet<String> = qualified
            .iter()
            .filter(|name| rule.accepts(name))
            .map(|name| (*name).to_owned())
            .collect();
        let mut names = ToolNames::default();
        for name in qualified {
            if names.to_provider.contains_key(name) {
                continue;
            }
            let given = if rule.accepts(name) {
                name.to_owned()
            } else {
                let mended = rule.mend(name);
                let mut given = mended.clone();
                let mut n = 2u32;
                while taken.contains(&given) {
                    let suffix = format!("_{n}");
                    let keep = mended.len().min(MAX_LEN - suffix.len());
                    given = format!("{}{suffix}", &mended[..keep]);
                    n += 1;
                }
                taken.insert(given.clone());
                given
            };
            names.to_qualified.insert(given.clone(), name.to_owned());
            names.to_provider.insert(name.to_owned(), given);
        }
        names
    }

    pub fn provider_name(&self, qualified: &str) -> Option<&str> {
        self.to_provider.get(qualified).map(String::as_str)
    }

    pub fn qualified(&self, provider_name: &str) -> Option<&str> {
        self.to_qualified.get(provider_name).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(rule: NameRule, qualified: &[&str]) -> ToolNames {
        ToolNames::new(rule, qualified.iter().copied())
    }

    fn round_trips(names: &ToolNames, rule: NameRule, qualified: &[&str]) {
        let mut given = HashSet::new();
        for name in qualified {
            let provider = names.provider_name(name).expect("every name is mapped");
            assert!(rule.accepts(provider), "{provider:?} for {name:?}");
            assert_eq!(names.qualified(provider), Some(*name));
            assert!(
                given.insert(provider.to_owned()),
                "{provider:?} given twice"
            );
        }
    }

    #[test]
    fn a_name_already_accepted_maps_to_itself() {
        let list = ["github__search_issues", "fs-read", "A1"];
        let plain = names(NameRule::Plain, &list);
        for name in list {
            assert_eq!(plain.provider_name(name), Some(name));
        }
        let gemini = names(NameRule::Gemini, &["github.search", "ns:tool", "_x"]);
        assert_eq!(gemini.provider_name("github.search"), Some("github.search"));
        assert_eq!(gemini.provider_name("ns:tool"), Some("ns:tool"));
    }

    #[test]
    fn dots_slashes_and_spaces_become_underscores_for_plain_providers() {
        let list = ["github.search", "files/read", "say hello"];
        let plain = names(NameRule::Plain, &list);
        assert_eq!(plain.provider_name("github.search"), Some("github_search"));
        assert_eq!(plain.provider_name("files/read"), Some("files_read"));
        assert_eq!(plain.provider_name("say hello"), Some("say_hello"));
        round_trips(&plain, NameRule::Plain, &list);
    }

    #[test]
    fn unicode_characters_each_become_one_underscore() {
        let list = ["météo.prévision", "天气"];
        let plain = names(NameRule::Plain, &list);
        assert_eq!(
            plain.provider_name("météo.prévision"),
            Some("m_t_o_pr_vision")
        );
        let gemini = names(NameRule::Gemini, &list);
        assert_eq!(
            gemini.provider_name("météo.prévision"),
            Some("m_t_o.pr_vision")
        );
        assert_eq!(gemini.provider_name("天气"), Some("__"));
        round_trips(&gemini, NameRule::Gemini, &list);
    }

    #[test]
    fn long_names_are_cut_to_64_and_stay_distinct() {
        let a = format!("server.{}_one", "x".repeat(80));
        let b = format!("server.{}_two", "x".repeat(80));
        let list = [a.as_str(), b.as_str()];
        let plain = names(NameRule::Plain, &list);
        let first = plain.provider_name(&a).unwrap();
        let second = plain.provider_name(&b).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(second.len(), 64);
        assert!(second.ends_with("_2"), "{second}");
        round_trips(&plain, NameRule::Plain, &list);
    }

    #[test]
    fn a_mended_name_never_takes_an_accepted_one_whatever_the_order() {
        let list = ["a.b", "a_b", "a/b", "a_b_2"];
        let plain = names(NameRule::Plain, &list);
        assert_eq!(plain.provider_name("a_b"), Some("a_b"));
        assert_eq!(plain.provider_name("a_b_2"), Some("a_b_2"));
        assert_eq!(plain.provider_name("a.b"), Some("a_b_3"));
        assert_eq!(plain.provider_name("a/b"), Some("a_b_4"));
        round_trips(&plain, NameRule::Plain, &list);
    }

    #[test]
    fn the_same_names_in_the_same_order_map_the_same() {
        let list = ["x.y", "x/y", "x y", "x_y"];
        let first = names(NameRule::Plain, &list);
        let again = names(NameRule::Plain, &list);
        for name in list {
            assert_eq!(first.provider_name(name), again.provider_name(name));
        }
    }

    #[test]
    fn gemini_names_starting_with_a_digit_or_dash_get_a_leading_underscore() {
        let list = ["1password.get", "-x", "9"];
        let gemini = names(NameRule::Gemini, &list);
        assert_eq!(
            gemini.provider_name("1password.get"),
            Some("_1password.get")
        );
        assert_eq!(gemini.provider_name("-x"), Some("_-x"));
        assert_eq!(gemini.provider_name("9"), Some("_9"));
        round_trips(&gemini, NameRule::Gemini, &list);
        // Plain providers take a leading digit as it is.
        let plain = names(NameRule::Plain, &list);
        assert_eq!(plain.provider_name("1password.get"), Some("1password_get"));
        assert_eq!(plain.provider_name("9"), Some("9"));
    }

    #[test]
    fn an_empty_name_gets_an_underscore_and_duplicates_map_once() {
        let plain = names(NameRule::Plain, &["", "t", "t"]);
        assert_eq!(plain.provider_name(""), Some("_"));
        assert_eq!(plain.provider_name("t"), Some("t"));
        assert_eq!(plain.qualified("_"), Some(""));
        assert!(!NameRule::Plain.accepts(""));
        assert!(!NameRule::Plain.accepts(&"a".repeat(65)));
        assert!(NameRule::Plain.accepts(&"a".repeat(64)));
    }
}
