//! (to be written) Tool input schemas as each provider takes them.

use serde_json::Value;

use super::ProviderKind;

/// A schema converted for one provider, and what the conversion could not keep.
#[derive(Clone, Debug, PartialEq)]
pub struct Converted {
    pub schema: Value,
    /// For people: `"/properties/when: format \"date-time\" dropped"`, one entry per loss.
    pub lost: Vec<String>,
}

pub fn for_provider(_kind: ProviderKind, _input_schema: &Value) -> Converted {
    todo!()
}
