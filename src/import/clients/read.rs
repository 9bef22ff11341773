//! Reading one client file: JSON (with comments, as VS Code allows) or Codex's TOML, the servers
//! object found at the source's key path, and VS Code's `inputs` (the values it asks the user
//! for). A missing file or servers object is not an error; a file that does not parse, or
//! servers that are not an object, is. What the entries mean is `translate`'s job.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Format, Source};

/// A source's servers as the client wrote them, and what else the translation needs.
pub struct Read {
    pub servers: Vec<(String, Value)>,
    /// VS Code's `inputs`, by id: (description, password).
    pub inputs: BTreeMap<String, (String, bool)>,
}

/// Reads a source; `Ok(None)` when the file or its servers are not there.
pub fn read(source: &Source) -> Result<Option<Read>, String> {
    let text = match std::fs::read_to_string(&source.path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("cannot read it: {error}")),
    };
    let root: Value = match source.format {
        Format::Json => crate::config::jsonc::parse(&text)
            .map_err(|error| format!("not valid JSON: {error}"))?,
        Format::Toml => {
            basic_toml::from_str(&text).map_err(|error| format!("not valid TOML: {error}"))?
        }
    };
    let Some(servers) = servers_at(&root, &source.key_path)? else {
        return Ok(None);
    };
    Ok(Some(Read {
        servers,
        inputs: inputs(&root),
    }))
}

/// The servers object at `key_path`, by name; `None` when there is none.
fn servers_at(root: &Value, key_path: &[String]) -> Result<Option<Vec<(String, Value)>>, String> {
    let mut servers_value = Some(root);
    for key in key_path {
        servers_value = servers_value.and_then(|value| value.get(key));
    }
    match servers_value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(servers)) => Ok(Some(
            servers
                .iter()
                .map(|(name, entry)| (name.clone(), entry.clone()))
                .collect(),
        )),
        Some(_) => Err(format!(
            "\"{}\" is not an object of servers",
            key_path.join(".")
        )),
    }
}

/// VS Code's top-level `inputs`: each one's description and whether it is a password.
fn inputs(root: &Value) -> BTreeMap<String, (String, bool)> {
    let mut inputs = BTreeMap::new();
    if let Some(Value::Array(items)) = root.get("inputs") {
        for item in items {
            if let Some(id) = item.get("id").and_then(Value::as_str) {
                let description = item
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let password = item.get("password").and_then(Value::as_bool) == Some(true);
                inputs.insert(id.to_owned(), (description, password));
            }
        }
    }
    inputs
}
