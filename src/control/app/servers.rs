//! The App's server list (`GET /api/mcp-servers`) as our [`Config`]: every entry becomes a
//! [`ServerConfig`] with [`Origin::App`] (the security policy decides what of it may run), named
//! by the App's server name (made unique), with the App's UUID and slug kept beside it for
//! routing and activity. Entries that cannot be served (no UUID, an SSE or HTTP server without a
//! URL) are skipped with a warning, as the original does.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use crate::config::{
    Config, DEFAULT_TIMEOUT, InstructionMessage, InstructionRole, Origin, Protocol, ServerConfig,
    ToolFilter, TransportConfig,
};

/// Who a server is in the App.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppIdentity {
    /// Our name for it (the config key).
    pub name: String,
    pub uuid: String,
    /// The App's slug, when it has one.
    pub slug: Option<String>,
}

/// The App's servers as a config, and their identities in the same order as the App listed them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppServers {
    pub config: Config,
    pub identities: Vec<AppIdentity>,
}

impl AppServers {
    /// The server named `name`'s UUID.
    pub fn uuid_of(&self, name: &str) -> Option<&str> {
        self.identities
            .iter()
            .find(|identity| identity.name == name)
            .map(|identity| identity.uuid.as_str())
    }

    /// The name of the server with `uuid`.
    pub fn name_of(&self, uuid: &str) -> Option<&str> {
        self.identities
            .iter()
            .find(|identity| identity.uuid.eq_ignore_ascii_case(uuid))
            .map(|identity| identity.name.as_str())
    }
}

/// Parses the body of `GET /api/mcp-servers` (an array of server configs).
pub(super) fn parse(body: &Value) -> AppServers {
    let mut servers = AppServers::default();
    let Some(entries) = body.as_array() else {
        tracing::warn!("the App's server list is not an array; no servers");
        return servers;
    };
    let mut taken = HashSet::new();
    for entry in entries {
        let Some(entry) = entry.as_object() else {
            continue;
        };
        let Some(uuid) = text(entry, "uuid") else {
            tracing::warn!("a server in the App's list has no uuid; skipped");
            continue;
        };
        let shown = text(entry, "name").unwrap_or_else(|| uuid.clone());
        let transport = match transport(entry) {
            Ok(transport) => transport,
            Err(reason) => {
                tracing::warn!(server = %shown, "App server skipped: {reason}");
                continue;
            }
        };
        let mut name = shown.trim().to_owned();
        if name.is_empty() || !taken.insert(name.clone()) {
            let short: String = uuid.chars().take(8).collect();
            name = format!("{} ({short})", shown.trim());
            taken.insert(name.clone());
        }
        let config = ServerConfig {
            transport,
            disabled: false,
            timeout: DEFAULT_TIMEOUT,
            tools: ToolFilter::default(),
            instructions: instructions(entry.get("customInstructions")),
            protocol: Protocol::Legacy,
            origin: Origin::App,
            oauth: Default::default(),
            roots: Vec::new(),
            scope: Default::default(),
            tool_hints: Default::default(),
        };
        servers.config.servers.insert(name.clone(), config);
        servers.identities.push(AppIdentity {
            name,
            uuid,
            slug: text(entry, "slug").filter(|slug| !slug.is_empty()),
        });
    }
    servers
}

fn text(entry: &Map<String, Value>, key: &str) -> Option<String> {
    entry.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Header values are secrets (an OAuth token arrives as `Authorization`).
fn secrets(headers: BTreeMap<String, String>) -> BTreeMap<String, crate::secret::Secret> {
    headers
        .into_iter()
        .map(|(name, value)| (name, crate::secret::Secret::new(value)))
        .collect()
}

fn strings(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter_map(|(key, value)| match value {
                    Value::String(text) => Some((key.clone(), text.clone())),
                    Value::Number(number) => Some((key.clone(), number.to_string())),
                    Value::Bool(flag) => Some((key.clone(), flag.to_string())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn transport(entry: &Map<String, Value>) -> Result<TransportConfig, String> {
    let kind = text(entry, "type").unwrap_or_else(|| "STDIO".to_owned());
    let url = || -> Result<url::Url, String> {
        let text = text(entry, "url").ok_or("it has no url")?;
        let url = url::Url::parse(&text).map_err(|error| format!("url does not parse: {error}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("only http and https URLs are supported".into());
        }
        Ok(url)
    };
    match kind.to_ascii_uppercase().as_str() {
        "STDIO" => {
            let command = text(entry, "command")
                .filter(|command| !command.trim().is_empty())
                .ok_or("a STDIO server without a command")?;
            let args = entry
                .get("args")
                .and_then(Value::as_array)
                .map(|args| {
                    args.iter()
                        .filter_map(|arg| match arg {
                            Value::String(text) => Some(text.clone()),
                            Value::Number(number) => Some(number.to_string()),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            Ok(TransportConfig::Stdio {
                command,
                args,
                env: strings(entry.get("env")),
                cwd: None,
            })
        }
        "SSE" => Ok(TransportConfig::Sse {
            url: url()?,
            headers: secrets(strings(entry.get("headers"))),
        }),
        "STREAMABLE_HTTP" => {
            // Later wins: plain headers, then requestInit's, then the options' own (where the
            // App puts a refreshed OAuth token).
            let options = entry.get("streamableHTTPOptions");
            let mut headers = strings(entry.get("headers"));
            headers.extend(strings(
                options
                    .and_then(|options| options.get("requestInit"))
                    .and_then(|init| init.get("headers")),
            ));
            headers.extend(strings(options.and_then(|options| options.get("headers"))));
            Ok(TransportConfig::StreamableHttp {
                url: url()?,
                headers: secrets(headers),
            })
        }
        other => Err(format!("unknown server type \"{other}\"")),
    }
}

/// The App's `customInstructions`: an array of `{role, content}` or of strings, or one string;
/// `content` is a string or `[{type: "text", text}]`. System messages become user messages.
fn instructions(value: Option<&Value>) -> Option<Vec<InstructionMessage>> {
    let value = value?;
    let value = match value {
        // The App may send the messages column as JSON text.
        Value::String(text) => serde_json::from_str(text).unwrap_or_else(|_| value.clone()),
        other => other.clone(),
    };
    let items = match value {
        Value::Array(items) => items,
        Value::Null => return None,
        other => vec![other],
    };
    let messages: Vec<InstructionMessage> = items
        .iter()
        .filter_map(|item| {
            let (role, content) = match item {
                Value::String(text) => (InstructionRole::User, Value::String(text.clone())),
                Value::Object(message) => (
                    match message.get("role").and_then(Value::as_str) {
                        Some("assistant") => InstructionRole::Assistant,
                        _ => InstructionRole::User,
                    },
                    message.get("content").cloned().unwrap_or(Value::Null),
                ),
                _ => return None,
            };
            let text = match content {
                Value::String(text) => text,
                Value::Array(parts) => parts
                    .iter()
                    .filter_map(|part| part.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ => return None,
            };
            (!text.trim().is_empty()).then_some(InstructionMessage { role, text })
        })
        .collect();
    (!messages.is_empty()).then_some(messages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_app_list_becomes_a_config_of_app_origin() {
        let servers = parse(&json!([
            {"uuid": "u1", "name": "Echo", "type": "STDIO", "command": "demo", "args": ["--x", 3],
             "env": {"A": "1"}, "slug": "echo", "customInstructions": [{"role": "user", "content": [{"type": "text", "text": "read-only"}]}]},
            {"uuid": "u2", "name": "Echo", "command": "demo"},
            {"uuid": "u3", "name": "Web", "type": "STREAMABLE_HTTP", "url": "http://127.0.0.1:1/mcp",
             "headers": {"X": "a", "Authorization": "Bearer old"},
             "streamableHTTPOptions": {"headers": {"Authorization": "Bearer new"}}},
            {"uuid": "u4", "name": "NoUrl", "type": "SSE"},
            {"name": "no uuid", "command": "x"}
        ]));
        assert_eq!(servers.identities.len(), 3);
        assert_eq!(servers.identities[1].name, "Echo (u2)");
        let echo = &servers.config.servers["Echo"];
        assert_eq!(echo.origin, Origin::App);
        assert_eq!(echo.instructions.as_ref().unwrap()[0].text, "read-only");
        let TransportConfig::Stdio { args, env, .. } = &echo.transport else {
            panic!("stdio expected");
        };
        assert_eq!(args, &["--x", "3"]);
        assert_eq!(env["A"], "1");
        let TransportConfig::StreamableHttp { headers, .. } =
            &servers.config.servers["Web"].transport
        else {
            panic!("streamable HTTP expected");
        };
        assert_eq!(headers["Authorization"].expose(), "Bearer new");
        assert_eq!(headers["X"].expose(), "a");
        assert_eq!(servers.name_of("U3"), Some("Web"));
    }
}
