//! Codex's own keys in its `[mcp_servers.<name>]` tables: `env_vars` (variables passed through
//! by name), `http_headers`, `env_http_headers` and the bearer token for a remote, `enabled`,
//! `tool_timeout_sec`, and the `enabled_tools`/`disabled_tools` lists, which become our tools
//! filter. `translate` calls these for Codex's entries; the rest of a table (`command`, `args`,
//! `env`, `cwd`, `url`) is read like any client's entry. Codex writes values literally.

use serde_json::{Map, Value, json};

use super::variables::escape_literal;

/// The key of a remote's fixed headers.
pub(super) const HEADERS: &str = "http_headers";
/// The key of the per-call timeout, in seconds.
pub(super) const TIMEOUT: &str = "tool_timeout_sec";

/// `env_vars`: each variable passed through as a reference to itself, unless `env` sets it.
pub(super) fn pass_env_vars(raw: &Map<String, Value>, env: &mut Map<String, Value>) {
    if let Some(Value::Array(names)) = raw.get("env_vars") {
        for name in names.iter().filter_map(Value::as_str) {
            env.entry(name.to_owned())
                .or_insert_with(|| json!(format!("${{{name}}}")));
        }
    }
}

/// `env_http_headers` (header name to variable name) and the bearer token, from a variable
/// (`bearer_token_env_var`) or written in the file (`bearer_token`).
pub(super) fn headers_from_env(raw: &Map<String, Value>, headers: &mut Map<String, Value>) {
    if let Some(Value::Object(items)) = raw.get("env_http_headers") {
        for (key, var) in items {
            if let Some(var) = var.as_str() {
                headers.insert(key.clone(), json!(format!("${{{var}}}")));
            }
        }
    }
    if let Some(var) = raw.get("bearer_token_env_var").and_then(Value::as_str) {
        headers.insert("Authorization".into(), json!(format!("Bearer ${{{var}}}")));
    } else if let Some(token) = raw.get("bearer_token").and_then(Value::as_str) {
        headers.insert(
            "Authorization".into(),
            json!(format!("Bearer {}", escape_literal(token))),
        );
    }
}

/// `enabled = false`.
pub(super) fn disabled(raw: &Map<String, Value>) -> bool {
    raw.get("enabled").and_then(Value::as_bool) == Some(false)
}

/// `enabled_tools` as our `allow` (an empty list too) and a non-empty `disabled_tools` as our
/// `deny`; `None` when the table has neither.
pub(super) fn tools(raw: &Map<String, Value>) -> Option<Map<String, Value>> {
    let names = |key: &str| -> Option<Vec<Value>> {
        raw.get(key)?.as_array().map(|items| {
            items
                .iter()
                .filter(|item| item.is_string())
                .cloned()
                .collect()
        })
    };
    let mut tools = Map::new();
    if let Some(allow) = names("enabled_tools") {
        tools.insert("allow".into(), Value::Array(allow));
    }
    if let Some(deny) = names("disabled_tools").filter(|deny| !deny.is_empty()) {
        tools.insert("deny".into(), Value::Array(deny));
    }
    (!tools.is_empty()).then_some(tools)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::Client;
    use super::super::fixtures::translate_for;

    #[test]
    fn codex_tables_become_entries() {
        let translated = translate_for(
            Client::Codex,
            json!({"url": "https://api.example.com/mcp", "bearer_token_env_var": "API_TOKEN",
                   "http_headers": {"X-Team": "core"}, "env_http_headers": {"X-Key": "KEY_VAR"},
                   "enabled": false, "disabled_tools": ["delete"], "tool_timeout_sec": 30}),
            &[],
        )
        .unwrap();
        assert_eq!(
            translated.entry,
            json!({"url": "https://api.example.com/mcp", "type": "streamable-http",
                   "headers": {"X-Team": "core", "X-Key": "${KEY_VAR}", "Authorization": "Bearer ${API_TOKEN}"},
                   "disabled": true, "timeout": 30.0, "tools": {"deny": ["delete"]}})
        );
        let stdio = translate_for(
            Client::Codex,
            json!({"command": "npx", "args": ["-y", "pkg"], "env": {"A": "${literal}"}, "env_vars": ["B"]}),
            &[],
        )
        .unwrap();
        assert_eq!(
            stdio.entry,
            json!({"command": "npx", "args": ["-y", "pkg"], "env": {"A": "$${literal}", "B": "${B}"}})
        );
    }
}
