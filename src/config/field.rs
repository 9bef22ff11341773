//! Reading one field of a server's entry: the error that names it, and the readers of the shapes
//! entries use (strings, string maps and lists, a process's `command`/`args`/`env`/`cwd`, an HTTP
//! transport's kind). `parse.rs`, `fields.rs` and `started.rs` build on these.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

/// The field at fault (when one is) and what is wrong with it.
pub(super) type FieldError = (Option<String>, String);

pub(super) fn field_error(field: &str, message: impl Into<String>) -> FieldError {
    (Some(field.to_owned()), message.into())
}

/// Whether an HTTP server's `type` (or, without one, its URL's `path`) means legacy HTTP+SSE
/// rather than Streamable HTTP.
pub(super) fn http_kind(kind: Option<&str>, path: &str) -> Result<bool, FieldError> {
    match kind {
        Some("sse") => Ok(true),
        Some("streamable-http" | "streamableHttp" | "streamable_http" | "http") => Ok(false),
        // Without a type, an endpoint path ending in /sse is the legacy transport.
        None => Ok(path.trim_end_matches('/').ends_with("/sse")),
        Some(other) => Err(field_error(
            "type",
            format!(
                "unknown transport \"{other}\"; expected \"sse\", \"streamable-http\" or \"http\""
            ),
        )),
    }
}

/// A process to start: `command`, `args`, `env` and `cwd`.
pub(super) type Process = (
    String,
    Vec<String>,
    BTreeMap<String, String>,
    Option<PathBuf>,
);

pub(super) fn parse_process(server: &Map<String, Value>) -> Result<Process, FieldError> {
    let command = match server.get("command") {
        Some(Value::String(command)) if !command.trim().is_empty() => command.clone(),
        _ => return Err(field_error("command", "must be a non-empty string")),
    };
    if command.contains('\0') {
        return Err(field_error("command", "contains a NUL character"));
    }
    let args = match server.get("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(index, item)| match item {
                Value::String(arg) if !arg.contains('\0') => Ok(arg.clone()),
                Value::Number(number) => Ok(number.to_string()),
                _ => Err(field_error(
                    &format!("args[{index}]"),
                    "must be a string without NUL characters",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(field_error("args", "must be an array of strings")),
    };
    let env = string_map(server, "env")?;
    let cwd = optional_string(server, "cwd")?.map(PathBuf::from);
    Ok((command, args, env, cwd))
}

pub(super) fn optional_string(
    server: &Map<String, Value>,
    field: &str,
) -> Result<Option<String>, FieldError> {
    match server.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(field_error(field, "must be a string")),
    }
}

/// An object of string values; numbers and booleans are taken as their text, as Claude Desktop
/// users often write `"PORT": 8080`.
pub(super) fn string_map(
    server: &Map<String, Value>,
    field: &str,
) -> Result<BTreeMap<String, String>, FieldError> {
    match server.get(field) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    Value::String(text) => text.clone(),
                    Value::Number(number) => number.to_string(),
                    Value::Bool(flag) => flag.to_string(),
                    _ => {
                        return Err(field_error(&format!("{field}.{key}"), "must be a string"));
                    }
                };
                if key.is_empty() || key.contains(['\0', '=']) {
                    return Err(field_error(
                        &format!("{field}.{key}"),
                        "the name must be non-empty and contain no NUL or '='",
                    ));
                }
                if value.contains('\0') {
                    return Err(field_error(
                        &format!("{field}.{key}"),
                        "the value contains a NUL character",
                    ));
                }
                Ok((key.clone(), value))
            })
            .collect(),
        Some(_) => Err(field_error(field, "must be an object of strings")),
    }
}

pub(super) fn string_list(value: &Value, field: &str) -> Result<Vec<String>, FieldError> {
    let Value::Array(items) = value else {
        return Err(field_error(field, "must be an array of tool names"));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| match item {
            Value::String(name) => Ok(name.clone()),
            _ => Err(field_error(
                &format!("{field}[{index}]"),
                "must be a string",
            )),
        })
        .collect()
}
