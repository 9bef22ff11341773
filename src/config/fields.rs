//! A server's optional fields: `roots`, `oauth`, `tools` (allow and deny lists) and
//! `instructions`, each validated with errors naming the field.

use serde_json::{Map, Value};

use super::field::{FieldError, field_error, string_list};
use super::*;

/// The `roots` array: each entry a string (a `file://` URI, an absolute path or a `~/` path) or
/// `{"uri": …, "name": …}` with such a string as `uri`. Paths become `file://` URIs, since MCP
/// roots are URIs. Whether a root exists is the server's business (an HTTP server may live on
/// another machine), so it is not checked here.
pub(super) fn parse_roots(server: &Map<String, Value>) -> Result<Vec<RootConfig>, FieldError> {
    let items = match server.get("roots") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(field_error(
                "roots",
                "must be an array of paths, file:// URIs or {\"uri\", \"name\"} objects",
            ));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let field = format!("roots[{index}]");
            match item {
                Value::String(text) => Ok(RootConfig {
                    uri: root_uri(text).map_err(|message| field_error(&field, message))?,
                    name: None,
                }),
                Value::Object(root) => {
                    if let Some(unknown) = root
                        .keys()
                        .find(|key| !matches!(key.as_str(), "uri" | "name"))
                    {
                        return Err(field_error(
                            &format!("{field}.{unknown}"),
                            "unknown field; expected \"uri\" and \"name\"",
                        ));
                    }
                    let uri = match root.get("uri") {
                        Some(Value::String(text)) => root_uri(text)
                            .map_err(|message| field_error(&format!("{field}.uri"), message))?,
                        _ => {
                            return Err(field_error(
                                &format!("{field}.uri"),
                                "must be a path or a file:// URI",
                            ));
                        }
                    };
                    let name = match root.get("name") {
                        None | Some(Value::Null) => None,
                        Some(Value::String(name)) if !name.trim().is_empty() => Some(name.clone()),
                        Some(_) => {
                            return Err(field_error(
                                &format!("{field}.name"),
                                "must be a non-empty string",
                            ));
                        }
                    };
                    Ok(RootConfig { uri, name })
                }
                _ => Err(field_error(
                    &field,
                    "must be a path, a file:// URI or a {\"uri\", \"name\"} object",
                )),
            }
        })
        .collect()
}

/// A root as the `file://` URI MCP wants: a URI is checked, a path converted.
fn root_uri(text: &str) -> Result<String, String> {
    if text.contains('\0') {
        return Err("contains a NUL character".into());
    }
    if !text.starts_with(['/', '~']) && text.contains(':') {
        let url = url::Url::parse(text).map_err(|error| format!("\"{text}\": {error}"))?;
        if url.scheme() != "file" {
            return Err(format!(
                "\"{text}\": roots are file:// URIs (or paths), not {}: URIs",
                url.scheme()
            ));
        }
        return Ok(url.to_string());
    }
    let path = match text.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            let home = dirs::home_dir()
                .ok_or_else(|| format!("\"{text}\": there is no home directory to expand ~ to"))?;
            home.join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(text),
    };
    if !path.is_absolute() {
        return Err(format!(
            "\"{text}\" is a relative path; write an absolute path, a ~/ path or a file:// URI"
        ));
    }
    url::Url::from_file_path(&path)
        .map(|url| url.to_string())
        .map_err(|()| format!("\"{text}\" cannot be written as a file:// URI"))
}

/// The `oauth` object: `clientId`, `clientSecret`, `privateKeyFile` (read now), `assertionFile`
/// (read at each use), `idpTokenEndpoint`, `idpClientId`, `idTokenFile` (read at each use),
/// `scopes` (array or space-separated), `redirectPort`, `clientMetadataUrl`.
pub(super) fn parse_oauth(server: &Map<String, Value>) -> Result<OAuthConfig, FieldError> {
    let mut config = OAuthConfig::default();
    let oauth = match server.get("oauth") {
        None | Some(Value::Null) => return Ok(config),
        Some(Value::Object(oauth)) => oauth,
        Some(_) => return Err(field_error("oauth", "must be an object")),
    };
    for key in oauth.keys() {
        if ![
            "clientId",
            "clientSecret",
            "privateKeyFile",
            "assertionFile",
            "idpTokenEndpoint",
            "idpClientId",
            "idTokenFile",
            "scopes",
            "redirectPort",
            "clientMetadataUrl",
        ]
        .contains(&key.as_str())
        {
            return Err(field_error(
                &format!("oauth.{key}"),
                "unknown field; expected clientId, clientSecret, privateKeyFile, assertionFile, idpTokenEndpoint, idpClientId, idTokenFile, scopes, redirectPort or clientMetadataUrl",
            ));
        }
    }
    let text = |key: &str| -> Result<Option<String>, FieldError> {
        match oauth.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(value)) if !value.trim().is_empty() => Ok(Some(value.clone())),
            Some(_) => Err(field_error(
                &format!("oauth.{key}"),
                "must be a non-empty string",
            )),
        }
    };
    config.client_id = text("clientId")?;
    config.client_secret = text("clientSecret")?.map(crate::secret::Secret::new);
    config.client_metadata_url = text("clientMetadataUrl")?;
    if let Some(path) = text("privateKeyFile")? {
        config.private_key_pem = Some(crate::secret::Secret::new(
            std::fs::read_to_string(&path).map_err(|e| {
                field_error("oauth.privateKeyFile", format!("cannot read {path}: {e}"))
            })?,
        ));
    }
    config.assertion_file = text("assertionFile")?.map(PathBuf::from);
    config.idp_token_endpoint = text("idpTokenEndpoint")?;
    config.idp_client_id = text("idpClientId")?;
    config.id_token_file = text("idTokenFile")?.map(PathBuf::from);
    if (config.client_secret.is_some() || config.private_key_pem.is_some())
        && config.client_id.is_none()
    {
        return Err(field_error(
            "oauth.clientId",
            "is needed with oauth.clientSecret or oauth.privateKeyFile",
        ));
    }
    config.scopes = match oauth.get("scopes") {
        None | Some(Value::Null) => None,
        Some(Value::String(scopes)) => Some(scopes.split_whitespace().map(str::to_owned).collect()),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| field_error("oauth.scopes", "must be strings"))?,
        ),
        Some(_) => {
            return Err(field_error(
                "oauth.scopes",
                "must be an array of strings or a space-separated string",
            ));
        }
    };
    config.redirect_port = match oauth.get("redirectPort") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(port)) => port
            .as_u64()
            .and_then(|port| u16::try_from(port).ok())
            .ok_or_else(|| field_error("oauth.redirectPort", "must be a port number"))?,
        Some(_) => return Err(field_error("oauth.redirectPort", "must be a port number")),
    };
    Ok(config)
}

pub(super) fn parse_tool_filter(server: &Map<String, Value>) -> Result<ToolFilter, FieldError> {
    match server.get("tools") {
        None | Some(Value::Null) => Ok(ToolFilter::default()),
        // A plain array is an allow list.
        Some(list @ Value::Array(_)) => Ok(ToolFilter {
            allow: Some(string_list(list, "tools")?),
            deny: Vec::new(),
        }),
        Some(Value::Object(filter)) => {
            if let Some(unknown) = filter
                .keys()
                .find(|key| !matches!(key.as_str(), "allow" | "deny"))
            {
                return Err(field_error(
                    &format!("tools.{unknown}"),
                    "unknown key; expected \"allow\" and/or \"deny\"",
                ));
            }
            Ok(ToolFilter {
                allow: filter
                    .get("allow")
                    .map(|list| string_list(list, "tools.allow"))
                    .transpose()?,
                deny: filter
                    .get("deny")
                    .map(|list| string_list(list, "tools.deny"))
                    .transpose()?
                    .unwrap_or_default(),
            })
        }
        Some(_) => Err(field_error(
            "tools",
            "must be {\"allow\": [...], \"deny\": [...]} or an array of allowed tool names",
        )),
    }
}

/// Instructions are a string, an array of strings, or an array of `{role, content}` messages
/// (the shape the plugged.in App stores). A `system` role becomes a user message prefixed
/// `System: `, as MCP prompts have no system role.
pub(super) fn parse_instructions(
    server: &Map<String, Value>,
) -> Result<Option<Vec<InstructionMessage>>, FieldError> {
    let user = |text: String| InstructionMessage {
        role: InstructionRole::User,
        text,
    };
    let messages = match server.get("instructions") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => vec![user(text.clone())],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let field = format!("instructions[{index}]");
                match item {
                    Value::String(text) => Ok(user(text.clone())),
                    Value::Object(message) => {
                        let text = match message.get("content") {
                            Some(Value::String(text)) => text.clone(),
                            Some(Value::Array(parts)) => parts
                                .iter()
                                .filter_map(|part| part.get("text").and_then(Value::as_str))
                                .collect::<Vec<_>>()
                                .join("\n"),
                            Some(Value::Object(part)) => part
                                .get("text")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                            _ => {
                                return Err(field_error(
                                    &format!("{field}.content"),
                                    "must be a string or text content",
                                ));
                            }
                        };
                        match message.get("role").and_then(Value::as_str) {
                            None | Some("user") => Ok(user(text)),
                            Some("assistant") => Ok(InstructionMessage {
                                role: InstructionRole::Assistant,
                                text,
                            }),
                            Some("system") => Ok(user(format!("System: {text}"))),
                            Some(other) => Err(field_error(
                                &format!("{field}.role"),
                                format!(
                                    "unknown role \"{other}\"; expected user, assistant or system"
                                ),
                            )),
                        }
                    }
                    _ => Err(field_error(
                        &field,
                        "must be a string or a {role, content} message",
                    )),
                }
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(field_error(
                "instructions",
                "must be a string or an array of strings or messages",
            ));
        }
    };
    let messages: Vec<_> = messages
        .into_iter()
        .filter(|message| !message.text.trim().is_empty())
        .collect();
    Ok((!messages.is_empty()).then_some(messages))
}
