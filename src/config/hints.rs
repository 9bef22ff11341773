//! A server's `"toolHints"`: what the proxy adds to its tools for clients that search tools
//! themselves (whether a tool is always loaded, the words it is found by) and a better
//! description, per tool by the server's own tool name, with `"*"` for every tool of the server.
//! The catalog puts them into each exposed tool's `_meta` and description.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::field::{FieldError, field_error};

/// The longest search hint taken, in characters: a few dozen words is what a client's search
/// reads; more is a description.
pub const MAX_SEARCH_HINT: usize = 1_000;
/// The longest description taken, in characters: every client reads it, in every conversation.
pub const MAX_DESCRIPTION: usize = 10_000;

/// The hints for one tool (or, under `"*"`, for every tool of the server); a field not given
/// leaves the server's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolHint {
    /// `"alwaysLoad"`: a client that defers tools loads this one from the start.
    pub always_load: Option<bool>,
    /// `"searchHint"`: words a person would use for what the tool does.
    pub search_hint: Option<String>,
    /// `"description"`: replaces the server's description (per tool only).
    pub description: Option<String>,
}

impl ToolHint {
    /// `self`'s fields where given, else `fallback`'s.
    fn over(&self, fallback: &ToolHint) -> ToolHint {
        ToolHint {
            always_load: self.always_load.or(fallback.always_load),
            search_hint: self
                .search_hint
                .clone()
                .or_else(|| fallback.search_hint.clone()),
            description: self
                .description
                .clone()
                .or_else(|| fallback.description.clone()),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == ToolHint::default()
    }
}

/// A server's `"toolHints"`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolHints {
    /// `"*"`: for every tool of the server.
    pub every: ToolHint,
    /// By the server's original tool name.
    pub tools: BTreeMap<String, ToolHint>,
}

impl ToolHints {
    /// The hints for the server's tool `original`: its own entry's fields, each falling back to
    /// `"*"`'s.
    pub fn for_tool(&self, original: &str) -> ToolHint {
        match self.tools.get(original) {
            Some(own) => own.over(&self.every),
            None => self.every.clone(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.every.is_empty() && self.tools.is_empty()
    }
}

/// The `"toolHints"` object of a server's entry.
pub(super) fn parse_tool_hints(server: &Map<String, Value>) -> Result<ToolHints, FieldError> {
    let entries = match server.get("toolHints") {
        None | Some(Value::Null) => return Ok(ToolHints::default()),
        Some(Value::Object(entries)) => entries,
        Some(_) => {
            return Err(field_error(
                "toolHints",
                "must be an object of hints by tool name (\"*\" for every tool)",
            ));
        }
    };
    let mut hints = ToolHints::default();
    for (tool, entry) in entries {
        if tool.trim().is_empty() {
            return Err(field_error(
                "toolHints",
                "a tool name is empty; use the server's tool name, or \"*\" for every tool",
            ));
        }
        let every = tool == "*";
        let hint = parse_hint(entry, &format!("toolHints.{tool}"), every)?;
        if every {
            hints.every = hint;
        } else {
            hints.tools.insert(tool.clone(), hint);
        }
    }
    Ok(hints)
}

fn parse_hint(value: &Value, field: &str, every: bool) -> Result<ToolHint, FieldError> {
    let expected = if every {
        "\"alwaysLoad\" and \"searchHint\" (a description is per tool)"
    } else {
        "\"alwaysLoad\", \"searchHint\" and \"description\""
    };
    let Value::Object(entry) = value else {
        return Err(field_error(
            field,
            format!("must be an object of {expected}"),
        ));
    };
    let known = |key: &str| match key {
        "alwaysLoad" | "searchHint" => true,
        "description" => !every,
        _ => false,
    };
    if let Some(unknown) = entry.keys().find(|key| !known(key)) {
        return Err(field_error(
            &format!("{field}.{unknown}"),
            format!("unknown field; expected {expected}"),
        ));
    }
    let always_load = match entry.get("alwaysLoad") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(always)) => Some(*always),
        Some(_) => {
            return Err(field_error(
                &format!("{field}.alwaysLoad"),
                "must be true or false",
            ));
        }
    };
    let text = |key: &str, max: usize| -> Result<Option<String>, FieldError> {
        let field = format!("{field}.{key}");
        match entry.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if text.trim().is_empty() => Err(field_error(
                &field,
                "must not be empty; leave it out instead",
            )),
            Some(Value::String(text)) if text.chars().count() > max => Err(field_error(
                &field,
                format!(
                    "is {} characters long; at most {max} are taken",
                    text.chars().count()
                ),
            )),
            Some(Value::String(text)) => Ok(Some(text.trim().to_owned())),
            Some(_) => Err(field_error(&field, "must be a string")),
        }
    };
    Ok(ToolHint {
        always_load,
        search_hint: text("searchHint", MAX_SEARCH_HINT)?,
        description: text("description", MAX_DESCRIPTION)?,
    })
}
