//! One client entry into one of ours: a stdio entry (command, arguments, environment, working
//! directory, the client's `envFile` read into the secrets), or a remote one (URL, transport,
//! headers), and then the settings the clients share (`disabled`, a timeout). Every value passes
//! through `variables`, which writes it in our syntax; Codex's own keys are `codex`'s. Values
//! only the client knew come back as secrets, for the importer to keep in an env file.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};

use super::variables::convert_text;
use super::{Client, Input, Platform, Scope, Source, codex};
use crate::config::vars;

/// What translating one client entry needs.
pub struct Context<'a> {
    pub client: Client,
    pub source: &'a Source,
    pub platform: &'a Platform,
    pub project: &'a Path,
    pub inputs: &'a BTreeMap<String, (String, bool)>,
    /// Values for inputs: given, or asked for; `None` when not known.
    pub input_value: &'a mut dyn FnMut(&Input) -> Option<String>,
}

/// An entry in our format, and the values it takes from a secrets file.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    pub entry: Value,
    /// Variables to write to the server's owner-only env file (input values, the client's own
    /// `envFile`), referenced by the entry as `${NAME}`.
    pub secrets: BTreeMap<String, String>,
}

/// Translates a client's entry into ours. An error says why it cannot be carried over.
pub fn translate(raw: &Value, context: &mut Context<'_>) -> Result<Translated, String> {
    let Value::Object(raw) = raw else {
        return Err("the entry is not an object".into());
    };
    let mut secrets = BTreeMap::new();
    let url = raw
        .get("url")
        .or_else(|| raw.get("serverUrl"))
        .and_then(Value::as_str);
    let mut entry = if let Some(command) = raw.get("command").and_then(Value::as_str) {
        stdio_entry(command, raw, context, &mut secrets)?
    } else if let Some(url) = url {
        remote_entry(url, raw, context, &mut secrets)?
    } else {
        return Err("it has neither \"command\" nor \"url\"".into());
    };
    settings(raw, context.client, &mut entry);
    Ok(Translated {
        entry: Value::Object(entry),
        secrets,
    })
}

/// A server the client starts: its command line, environment and working directory.
fn stdio_entry(
    command: &str,
    raw: &Map<String, Value>,
    context: &mut Context<'_>,
    secrets: &mut BTreeMap<String, String>,
) -> Result<Map<String, Value>, String> {
    let mut entry = Map::new();
    entry.insert(
        "command".into(),
        json!(convert_text(command, context, secrets)?),
    );
    if let Some(Value::Array(args)) = raw.get("args") {
        let mut converted = Vec::new();
        for arg in args {
            match arg {
                Value::String(arg) => converted.push(json!(convert_text(arg, context, secrets)?)),
                other => converted.push(json!(other.to_string())),
            }
        }
        if !converted.is_empty() {
            entry.insert("args".into(), Value::Array(converted));
        }
    }
    let mut env = Map::new();
    if let Some(Value::Object(vars_in)) = raw.get("env") {
        for (key, value) in vars_in {
            let value = match value {
                Value::String(value) => convert_text(value, context, secrets)?,
                other => other.to_string(),
            };
            env.insert(key.clone(), json!(value));
        }
    }
    if context.client == Client::Codex {
        codex::pass_env_vars(raw, &mut env);
    }
    if !env.is_empty() {
        entry.insert("env".into(), Value::Object(env));
    }
    if let Some(cwd) = raw.get("cwd").and_then(Value::as_str) {
        entry.insert("cwd".into(), json!(convert_text(cwd, context, secrets)?));
    }
    if let Some(file) = raw.get("envFile").and_then(Value::as_str) {
        read_env_file(file, context, secrets)?;
    }
    Ok(entry)
}

/// The client's env file, read now: its values are kept with the input values, in one
/// owner-only file, since a server has one envFile.
fn read_env_file(
    file: &str,
    context: &mut Context<'_>,
    secrets: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    let file = convert_text(file, context, secrets)?;
    let base = match context.source.scope {
        Scope::Project | Scope::Local => context.project.to_owned(),
        Scope::User => context
            .source
            .path
            .parent()
            .map(Path::to_owned)
            .unwrap_or_default(),
    };
    let values =
        vars::read_env_file(&base.join(&file)).map_err(|error| format!("its envFile: {error}"))?;
    secrets.extend(values);
    Ok(())
}

/// A server the client connects to: its URL, transport and headers.
fn remote_entry(
    url: &str,
    raw: &Map<String, Value>,
    context: &mut Context<'_>,
    secrets: &mut BTreeMap<String, String>,
) -> Result<Map<String, Value>, String> {
    let codex = context.client == Client::Codex;
    let mut entry = Map::new();
    entry.insert("url".into(), json!(convert_text(url, context, secrets)?));
    let kind = raw
        .get("type")
        .or_else(|| raw.get("transportType"))
        .and_then(Value::as_str);
    match kind {
        Some("sse") => {
            entry.insert("type".into(), json!("sse"));
        }
        Some("http" | "streamable-http" | "streamableHttp" | "streamable_http") => {
            entry.insert("type".into(), json!("streamable-http"));
        }
        // Codex speaks Streamable HTTP to every URL.
        _ if codex => {
            entry.insert("type".into(), json!("streamable-http"));
        }
        _ => {}
    }
    let mut headers = Map::new();
    let header_source = if codex { codex::HEADERS } else { "headers" };
    if let Some(Value::Object(items)) = raw.get(header_source) {
        for (key, value) in items {
            if let Value::String(value) = value {
                headers.insert(key.clone(), json!(convert_text(value, context, secrets)?));
            }
        }
    }
    if codex {
        codex::headers_from_env(raw, &mut headers);
    }
    if !headers.is_empty() {
        entry.insert("headers".into(), Value::Object(headers));
    }
    Ok(entry)
}

/// The settings beside the definition: `disabled`, the timeout (Cline's `timeout`, Codex's
/// `tool_timeout_sec`), and Codex's tool lists.
fn settings(raw: &Map<String, Value>, client: Client, entry: &mut Map<String, Value>) {
    let codex = client == Client::Codex;
    let disabled = raw.get("disabled").and_then(Value::as_bool) == Some(true)
        || (codex && codex::disabled(raw));
    if disabled {
        entry.insert("disabled".into(), json!(true));
    }
    let timeout = if codex {
        raw.get(codex::TIMEOUT)
    } else if client == Client::Cline {
        raw.get("timeout")
    } else {
        None
    };
    if let Some(seconds) = timeout.and_then(Value::as_f64).filter(|s| *s > 0.0) {
        entry.insert("timeout".into(), json!(seconds));
    }
    if codex && let Some(tools) = codex::tools(raw) {
        entry.insert("tools".into(), Value::Object(tools));
    }
}
