//! The local server list: a JSON file in the `mcpServers` shape that Claude Desktop, Cursor and
//! Cline use (VS Code's `servers` spelling too), parsed into validated [`ServerConfig`]s. Every
//! error names the file, the server and the field. Finding the file (`locate`) and watching it for
//! edits (`watch`) live here too; what to do with a changed server list is the supervisor's job.
//! `${VAR}` references are resolved here, at load (`vars`); editing the file in place, keeping
//! what the user wrote, is `jsonc`'s.

pub mod edit;
pub mod jsonc;
mod oauth;
pub mod vars;
mod watch;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::secret::Secret;
use crate::security::SecuritySettings;

pub use watch::watch;

/// The per-request timeout when a server's config does not set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The parsed configuration: servers by name, in name order.
#[derive(Clone, Default, PartialEq)]
pub struct Config {
    pub servers: BTreeMap<String, ServerConfig>,
    /// Bearer tokens the HTTP server accepts with `--require-api-auth` (`"authTokens"`).
    pub auth_tokens: Vec<Secret>,
    /// The top-level `smtp` object, as written (e-mail for notifications; see `mail`).
    pub smtp: Option<Value>,
    /// The top-level `security` object (see `security`), with the command line's flags on top.
    pub security: SecuritySettings,
}

/// Never prints the SMTP object (it holds a password).
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("servers", &self.servers)
            .field("auth_tokens", &self.auth_tokens)
            .field("smtp", &self.smtp.as_ref().map(|_| "[redacted]"))
            .field("security", &self.security)
            .finish()
    }
}

/// One downstream server as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub transport: TransportConfig,
    pub disabled: bool,
    pub timeout: Duration,
    pub tools: ToolFilter,
    /// Custom instructions, served as the prompt `<slug>__instructions`.
    pub instructions: Option<Vec<InstructionMessage>>,
    /// Which MCP generation to speak to the server.
    pub protocol: Protocol,
    /// Where the server's configuration came from, which decides how far it is trusted.
    pub origin: Origin,
    /// The OAuth client's settings for an HTTP server (`"oauth"`); an HTTP server without them
    /// still authorizes when it answers 401 with a Bearer challenge.
    pub oauth: OAuthConfig,
    /// The roots the server gets when no client's roots apply (`"roots"`; see the router).
    pub roots: Vec<RootConfig>,
}

/// One configured root: a `file://` URI (written as one, or as an absolute or `~/` path) and an
/// optional name, as MCP's `roots/list` carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootConfig {
    pub uri: String,
    pub name: Option<String>,
}

pub use crate::security::Origin;
pub use oauth::OAuthConfig;

impl ServerConfig {
    /// Checks the server against the security policy before it is started or dialled (nothing
    /// for a trusted origin unless the settings say strict); the refusal names the rule.
    pub fn check(&self, security: &SecuritySettings) -> Result<(), crate::security::Refusal> {
        match &self.transport {
            TransportConfig::Stdio {
                command, args, env, ..
            } => {
                if security.commands_strict(self.origin) {
                    security.check_command(command, args, env)?;
                }
            }
            TransportConfig::Sse { url, headers }
            | TransportConfig::StreamableHttp { url, headers } => {
                if let Some(rules) = security.url_rules(self.origin) {
                    crate::security::check_url(url, &rules)?;
                    for (name, value) in headers {
                        crate::security::check_header(name, value.expose())?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The MCP generation spoken to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// `initialize` (up to 2025-11-25): what every server in use today understands.
    Legacy,
    /// `server/discover` and per-request `_meta` (2026-07-28).
    Modern,
    /// `server/discover` first, `initialize` when the server does not know it (the default;
    /// legacy HTTP+SSE servers are always legacy).
    #[default]
    Auto,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TransportConfig {
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
        cwd: Option<PathBuf>,
    },
    Sse {
        url: url::Url,
        headers: BTreeMap<String, Secret>,
    },
    StreamableHttp {
        url: url::Url,
        headers: BTreeMap<String, Secret>,
    },
}

impl TransportConfig {
    /// The transport's name as `servers` and logs show it.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportConfig::Stdio { .. } => "stdio",
            TransportConfig::Sse { .. } => "sse",
            TransportConfig::StreamableHttp { .. } => "streamable-http",
        }
    }

    /// Where the server is: the command line or the URL.
    pub fn target(&self) -> String {
        match self {
            TransportConfig::Stdio { command, args, .. } => std::iter::once(command.as_str())
                .chain(args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            TransportConfig::Sse { url, .. } | TransportConfig::StreamableHttp { url, .. } => {
                display_url(url)
            }
        }
    }
}

/// A URL as `servers`, logs and errors show it: a password in it is replaced by `[redacted]`, and
/// so is the query (it often carries a key).
pub fn display_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("[redacted]"));
    }
    if shown.query().is_some() {
        shown.set_query(Some("[redacted]"));
    }
    shown.to_string()
}

/// Which of a server's tools are exposed. Entries are exact names or prefixes ending in `*`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolFilter {
    pub allow: Option<Vec<String>>,
    pub deny: Vec<String>,
}

impl ToolFilter {
    pub fn permits(&self, tool: &str) -> bool {
        let matches = |pattern: &String| match pattern.strip_suffix('*') {
            Some(prefix) => tool.starts_with(prefix),
            None => pattern == tool,
        };
        self.allow
            .as_ref()
            .is_none_or(|allow| allow.iter().any(matches))
            && !self.deny.iter().any(matches)
    }
}

/// One message of a server's custom instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstructionMessage {
    pub role: InstructionRole,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstructionRole {
    User,
    Assistant,
}

/// A configuration error, naming the file, and where known the server and the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub server: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config {}", self.file.display())?;
        if let Some(server) = &self.server {
            write!(f, ": server \"{server}\"")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field \"{field}\"")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and validates a config file. Relative paths in it (a stdio server's `command` when
    /// it names a file, like `./bin/server`, and its `cwd`) are taken from the file's directory,
    /// so the file means the same wherever the proxy is started from.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
            file: path.to_owned(),
            server: None,
            field: None,
            message: format!("cannot read: {error}"),
        })?;
        let mut config = Config::parse(path, &text)?;
        let base = std::path::absolute(path)
            .ok()
            .and_then(|file| file.parent().map(Path::to_owned));
        if let Some(base) = base {
            config.resolve_paths(&base);
        }
        Ok(config)
    }

    /// Makes the stdio servers' relative `command` paths and `cwd`s relative to `base`. A bare
    /// command (`npx`, `uvx`) is left to the `PATH` search; `args` are passed as written.
    pub fn resolve_paths(&mut self, base: &Path) {
        for server in self.servers.values_mut() {
            let TransportConfig::Stdio { command, cwd, .. } = &mut server.transport else {
                continue;
            };
            let program = Path::new(command.as_str());
            // Collecting the components drops the `.` ones (`./bin/x`).
            if program.is_relative() && program.components().count() > 1 {
                let resolved: PathBuf = base.join(program).components().collect();
                *command = resolved.to_string_lossy().into_owned();
            }
            if let Some(dir) = cwd
                && dir.is_relative()
            {
                *dir = base.join(&*dir).components().collect();
            }
        }
    }

    /// Validates config text; `path` names the file in error messages, and a server's relative
    /// `envFile` is taken from its directory. `${VAR}` references are resolved from the process
    /// environment.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::parse_with_env(path, text, &|name| std::env::var(name).ok())
    }

    /// [`Config::parse`] with `${VAR}` references resolved by `lookup` (after each server's
    /// `envFile`).
    pub fn parse_with_env(
        path: &Path,
        text: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let error = |server: Option<&str>, field: Option<&str>, message: String| ConfigError {
            file: path.to_owned(),
            server: server.map(str::to_owned),
            field: field.map(str::to_owned),
            message,
        };
        let root: Value = serde_json::from_str(text).map_err(|e| {
            error(
                None,
                None,
                format!(
                    "not valid JSON (line {}, column {}): {e}",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        let Value::Object(root) = root else {
            return Err(error(
                None,
                None,
                "the top level must be a JSON object".into(),
            ));
        };
        let (key, servers) = match (root.get("mcpServers"), root.get("servers")) {
            (Some(servers), _) => ("mcpServers", servers),
            (None, Some(servers)) => ("servers", servers),
            (None, None) => {
                return Err(error(
                    None,
                    None,
                    "no \"mcpServers\" (or \"servers\") object at the top level".into(),
                ));
            }
        };
        let Value::Object(servers) = servers else {
            return Err(error(
                None,
                Some(key),
                "must be an object of servers by name".into(),
            ));
        };
        let mut config = Config::default();
        match root.get("authTokens") {
            None | Some(Value::Null) => {}
            Some(Value::Array(tokens)) => {
                for (index, token) in tokens.iter().enumerate() {
                    let Value::String(token) = token else {
                        return Err(error(
                            None,
                            Some(&format!("authTokens[{index}]")),
                            "must be a string".into(),
                        ));
                    };
                    config.auth_tokens.push(Secret::new(token.clone()));
                }
            }
            Some(_) => {
                return Err(error(
                    None,
                    Some("authTokens"),
                    "must be an array of strings".into(),
                ));
            }
        }
        for (name, server) in servers {
            if name.trim().is_empty() {
                return Err(error(None, Some(key), "a server name is empty".into()));
            }
            let base = path.parent().unwrap_or(Path::new(""));
            let server = resolve_server(server, base, lookup)
                .and_then(|server| parse_server(&server))
                .map_err(|(field, message)| error(Some(name), field.as_deref(), message))?;
            config.servers.insert(name.clone(), server);
        }
        config.smtp = root.get("smtp").cloned();
        config.security = SecuritySettings::parse(root.get("security"))
            .map_err(|(field, message)| error(None, Some(&field), message))?;
        Ok(config)
    }
}

type FieldError = (Option<String>, String);

fn field_error(field: &str, message: impl Into<String>) -> FieldError {
    (Some(field.to_owned()), message.into())
}

/// The server's entry with its `${VAR}` references resolved (see `vars`): in `command`,
/// `args`, `env` values, `cwd`, `url` and `headers` values, looked up in its `envFile` first and
/// then with `lookup`. The `envFile`'s variables also go into a stdio server's `env` (its own
/// `env` wins), as VS Code and Cursor start servers.
fn resolve_server(
    value: &Value,
    base: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Value, FieldError> {
    let Value::Object(server) = value else {
        return Err((None, "must be an object".into()));
    };
    let mut server = server.clone();
    let file_vars = match server.get("envFile") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::String(file)) => {
            let file = vars::expand(file, lookup)
                .map_err(|error| field_error("envFile", error.to_string()))?;
            let file = match file.strip_prefix("~/") {
                Some(rest) => dirs::home_dir().unwrap_or_default().join(rest),
                None => base.join(file),
            };
            vars::read_env_file(&file).map_err(|message| field_error("envFile", message))?
        }
        Some(_) => return Err(field_error("envFile", "must be a path")),
    };
    let resolve = |text: &str| {
        vars::expand(text, &|name| {
            file_vars.get(name).cloned().or_else(|| lookup(name))
        })
    };
    for field in ["command", "cwd", "url"] {
        if let Some(Value::String(text)) = server.get(field) {
            let resolved = resolve(text).map_err(|error| field_error(field, error.to_string()))?;
            server.insert(field.to_owned(), Value::String(resolved));
        }
    }
    if let Some(Value::Array(args)) = server.get_mut("args") {
        for (index, arg) in args.iter_mut().enumerate() {
            if let Value::String(text) = arg {
                *text = resolve(text)
                    .map_err(|error| field_error(&format!("args[{index}]"), error.to_string()))?;
            }
        }
    }
    for field in ["env", "headers"] {
        if let Some(Value::Object(map)) = server.get_mut(field) {
            for (key, item) in map.iter_mut() {
                if let Value::String(text) = item {
                    *text = resolve(text).map_err(|error| {
                        field_error(&format!("{field}.{key}"), error.to_string())
                    })?;
                }
            }
        }
    }
    if !file_vars.is_empty() && server.contains_key("command") {
        let env = server
            .entry("env")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(env) = env {
            for (key, value) in file_vars {
                env.entry(key).or_insert(Value::String(value));
            }
        }
    }
    Ok(Value::Object(server))
}

fn parse_server(value: &Value) -> Result<ServerConfig, FieldError> {
    let Value::Object(server) = value else {
        return Err((None, "must be an object".into()));
    };
    let kind = optional_string(server, "type")?;
    let has_command = server.contains_key("command");
    let has_url = server.contains_key("url");
    let transport = match (kind.as_deref(), has_command, has_url) {
        (_, true, true) => {
            return Err(field_error(
                "url",
                "a server has either \"command\" (stdio) or \"url\" (HTTP), not both",
            ));
        }
        (Some("stdio") | None, true, false) => parse_stdio(server)?,
        (Some(other), true, false) => {
            return Err(field_error(
                "type",
                format!("\"{other}\" does not go with \"command\"; use \"stdio\" or leave it out"),
            ));
        }
        (kind, false, true) => {
            let url = parse_url(server)?;
            let headers = string_map(server, "headers")?
                .into_iter()
                .map(|(name, value)| (name, Secret::new(value)))
                .collect();
            let sse = match kind {
                Some("sse") => true,
                Some("streamable-http" | "streamableHttp" | "streamable_http" | "http") => false,
                // Without a type, an endpoint path ending in /sse is the legacy transport.
                None => url.path().trim_end_matches('/').ends_with("/sse"),
                Some(other) => {
                    return Err(field_error(
                        "type",
                        format!(
                            "unknown transport \"{other}\"; expected \"sse\", \"streamable-http\" or \"http\""
                        ),
                    ));
                }
            };
            if sse {
                TransportConfig::Sse { url, headers }
            } else {
                TransportConfig::StreamableHttp { url, headers }
            }
        }
        (_, false, false) => {
            return Err((
                None,
                "needs \"command\" (a stdio server) or \"url\" (an HTTP server)".into(),
            ));
        }
    };
    let disabled = match server.get("disabled") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(disabled)) => *disabled,
        Some(_) => return Err(field_error("disabled", "must be true or false")),
    };
    let timeout = match server.get("timeout") {
        None | Some(Value::Null) => DEFAULT_TIMEOUT,
        Some(Value::Number(seconds)) => match seconds.as_f64() {
            Some(seconds) if seconds > 0.0 && seconds <= 86_400.0 => {
                Duration::from_secs_f64(seconds)
            }
            _ => {
                return Err(field_error(
                    "timeout",
                    "must be a number of seconds greater than 0 and at most 86400",
                ));
            }
        },
        Some(_) => return Err(field_error("timeout", "must be a number of seconds")),
    };
    Ok(ServerConfig {
        transport,
        disabled,
        timeout,
        tools: parse_tool_filter(server)?,
        instructions: parse_instructions(server)?,
        protocol: match optional_string(server, "protocol")?.as_deref() {
            Some("legacy") => Protocol::Legacy,
            Some("modern") => Protocol::Modern,
            None | Some("auto") => Protocol::Auto,
            Some(other) => {
                return Err(field_error(
                    "protocol",
                    format!(
                        "unknown protocol \"{other}\"; expected \"legacy\", \"modern\" or \"auto\""
                    ),
                ));
            }
        },
        origin: match server.get("registry") {
            None | Some(Value::Null) => Origin::LocalFile,
            Some(Value::Object(source)) if source.get("name").is_some_and(Value::is_string) => {
                Origin::Registry
            }
            Some(_) => {
                return Err(field_error(
                    "registry",
                    "must be an object naming the registry entry ({\"url\", \"name\", \"version\"})",
                ));
            }
        },
        oauth: parse_oauth(server)?,
        roots: parse_roots(server)?,
    })
}

/// The `roots` array: each entry a string (a `file://` URI, an absolute path or a `~/` path) or
/// `{"uri": …, "name": …}` with such a string as `uri`. Paths become `file://` URIs, since MCP
/// roots are URIs. Whether a root exists is the server's business (an HTTP server may live on
/// another machine), so it is not checked here.
fn parse_roots(server: &Map<String, Value>) -> Result<Vec<RootConfig>, FieldError> {
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
fn parse_oauth(server: &Map<String, Value>) -> Result<OAuthConfig, FieldError> {
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

fn parse_stdio(server: &Map<String, Value>) -> Result<TransportConfig, FieldError> {
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
    Ok(TransportConfig::Stdio {
        command,
        args,
        env,
        cwd,
    })
}

fn parse_url(server: &Map<String, Value>) -> Result<url::Url, FieldError> {
    let Some(Value::String(text)) = server.get("url") else {
        return Err(field_error("url", "must be a string"));
    };
    let url = url::Url::parse(text).map_err(|e| field_error("url", format!("\"{text}\": {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(field_error(
            "url",
            format!("\"{text}\": only http and https URLs are supported"),
        ));
    }
    Ok(url)
}

fn optional_string(server: &Map<String, Value>, field: &str) -> Result<Option<String>, FieldError> {
    match server.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(field_error(field, "must be a string")),
    }
}

/// An object of string values; numbers and booleans are taken as their text, as Claude Desktop
/// users often write `"PORT": 8080`.
fn string_map(
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

fn string_list(value: &Value, field: &str) -> Result<Vec<String>, FieldError> {
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

fn parse_tool_filter(server: &Map<String, Value>) -> Result<ToolFilter, FieldError> {
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
fn parse_instructions(
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

/// Where a config file is looked for when `--config` is not given, in order.
pub fn search_paths() -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::from("mcp.json"), PathBuf::from(".mcp.json")];
    if let Some(dir) = dirs::config_dir() {
        paths.push(dir.join("pluggedin-mcp-proxy").join("mcp.json"));
    }
    paths
}

/// The config file to use: the given one, or the first that exists in [`search_paths`].
pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(path) => Some(path.to_owned()),
        None => search_paths().into_iter().find(|path| path.is_file()),
    }
}

#[cfg(test)]
mod tests;
