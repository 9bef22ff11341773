//! How an import tells what is already there. Two entries are the same server when their
//! definitions (transport, command line, environment, URL, headers) are equal, whatever else
//! they say; a translated entry that is the same as one under its name (or a `<name>-…` rename
//! of it) is not added again, and a newcomer whose name is taken is renamed `<name>-<client>`.
//! An entry that starts this proxy is never imported.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};

use super::clients::{Client, Translated};
use super::secrets_path;
use crate::config::edit::free_name;

/// The server among `taken` (our config's and this import's so far) that `translated` already
/// is: one under `name` or a rename of it, with the same definition. An entry with values in a
/// secrets file is the same when it references its own.
pub(super) fn already_there<'t>(
    taken: &'t BTreeMap<String, Value>,
    name: &str,
    translated: &Translated,
    data_dir: Option<&Path>,
) -> Option<&'t String> {
    let same = taken.iter().find(|(taken_name, entry)| {
        let related = *taken_name == name || taken_name.starts_with(&format!("{name}-"));
        let mut candidate = translated.entry.clone();
        if !translated.secrets.is_empty() {
            let Some(data_dir) = data_dir else {
                return false;
            };
            candidate["envFile"] = json!(secrets_path(data_dir, taken_name));
        }
        related && definition(entry) == definition(&candidate)
    });
    same.map(|(same, _)| same)
}

/// The name a new server gets: the client's, else `<name>-<client>` (numbered when that is
/// taken too).
pub(super) fn new_name(taken: &BTreeMap<String, Value>, name: &str, client: Client) -> String {
    if taken.contains_key(name) {
        free_name(&format!("{name}-{}", client.name()), &|candidate| {
            taken.contains_key(candidate)
        })
    } else {
        name.to_owned()
    }
}

/// Whether an entry starts this proxy (importing it would make the proxy its own server).
pub(super) fn is_this_proxy(entry: &Value) -> bool {
    let mentions = |text: &str| text.contains("pluggedin-mcp-proxy");
    let command = entry.get("command").and_then(Value::as_str).unwrap_or("");
    let file = command.rsplit(['/', '\\']).next().unwrap_or(command);
    mentions(file)
        || entry
            .get("args")
            .and_then(Value::as_array)
            .is_some_and(|args| args.iter().filter_map(Value::as_str).any(mentions))
}

/// An entry reduced to what defines the server (transport, command line, environment, URL,
/// headers), with the spellings that mean the same made equal: two entries with the same
/// definition are the same server, whatever else (`disabled`, `timeout`, …) they say.
pub(super) fn definition(entry: &Value) -> Value {
    let mut out = Map::new();
    let Value::Object(entry) = entry else {
        return Value::Null;
    };
    for key in ["command", "args", "env", "cwd", "url", "headers", "envFile"] {
        match entry.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) if items.is_empty() => {}
            Some(Value::Object(items)) if items.is_empty() => {}
            Some(value) => {
                out.insert(key.to_owned(), value.clone());
            }
        }
    }
    match entry.get("type").and_then(Value::as_str) {
        None | Some("stdio") => {}
        Some("http" | "streamable-http" | "streamableHttp" | "streamable_http") => {
            out.insert("type".into(), json!("streamable-http"));
        }
        Some(other) => {
            out.insert("type".into(), json!(other));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn definitions_compare_spellings_that_mean_the_same() {
        assert_eq!(
            definition(&json!({"command": "x", "args": [], "type": "stdio", "disabled": true})),
            definition(&json!({"command": "x"}))
        );
        assert_eq!(
            definition(&json!({"url": "u", "type": "http"})),
            definition(&json!({"url": "u", "type": "streamable-http"}))
        );
        assert!(is_this_proxy(
            &json!({"command": "/home/me/.cargo/bin/pluggedin-mcp-proxy"})
        ));
        assert!(is_this_proxy(
            &json!({"command": "npx", "args": ["-y", "@pluggedin/pluggedin-mcp-proxy@latest"]})
        ));
        assert!(!is_this_proxy(
            &json!({"command": "npx", "args": ["-y", "server"]})
        ));
    }
}
