//! (to be written) Tool names the providers accept, mapped both ways.

use std::collections::HashMap;

/// What a provider accepts as a tool name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// `^[a-zA-Z0-9_-]{1,64}$` (Anthropic, OpenAI, xAI, OpenAI-compatible servers).
    Plain,
    /// Gemini: starts with a letter or `_`; letters, digits, `_`, `.`, `:`, `-`; at most 64.
    Gemini,
}

/// The names given to one provider for a set of qualified tool names, both ways.
#[derive(Clone, Debug, Default)]
pub struct ToolNames {
    to_provider: HashMap<String, String>,
    to_qualified: HashMap<String, String>,
}

impl ToolNames {
    /// Names for every qualified name, distinct, accepted by `rule`, and equal to the qualified
    /// name wherever that is already accepted.
    pub fn new<'a>(_rule: NameRule, _qualified: impl IntoIterator<Item = &'a str>) -> ToolNames {
        todo!()
    }

    pub fn provider_name(&self, qualified: &str) -> Option<&str> {
        self.to_provider.get(qualified).map(String::as_str)
    }

    pub fn qualified(&self, provider_name: &str) -> Option<&str> {
        self.to_qualified.get(provider_name).map(String::as_str)
    }
}
