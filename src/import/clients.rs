//! Where each MCP client keeps its servers, on Linux, macOS and Windows, and how each writes
//! them. The locations are the clients' documented ones:
//!
//! - Claude Desktop: `claude_desktop_config.json` in `~/Library/Application Support/Claude/`
//!   (macOS), `%APPDATA%\Claude\` (Windows), `~/.config/Claude/` (Linux builds); `mcpServers`.
//! - Claude Code: `~/.claude.json` (or `$CLAUDE_CONFIG_DIR/.claude.json`): user-scope servers in
//!   its top-level `mcpServers`, local-scope ones in `projects["<dir>"].mcpServers`; project
//!   scope in the project's `.mcp.json`. It expands `${VAR}` and `${VAR:-default}`.
//! - Cursor: `~/.cursor/mcp.json` and the project's `.cursor/mcp.json`; `mcpServers`, with
//!   `${env:NAME}`, `${userHome}`, `${workspaceFolder}`, `${workspaceFolderBasename}`,
//!   `${pathSeparator}` and `envFile`.
//! - VS Code: `mcp.json` in the user profile (`~/.config/Code/User/`, `~/Library/Application
//!   Support/Code/User/`, `%APPDATA%\Code\User\`) and the workspace's `.vscode/mcp.json`; a
//!   `servers` object and `inputs` (`${input:id}` values VS Code asks for and keeps in its own
//!   secret store), `${env:NAME}`, `${workspaceFolder}`, `${userHome}`, `envFile`; comments allowed.
//! - Windsurf: `~/.codeium/windsurf/mcp_config.json` (`%USERPROFILE%\.codeium\windsurf\` on
//!   Windows); `mcpServers`, remote servers under `serverUrl`, `${env:NAME}`.
//! - Cline: `cline_mcp_settings.json` in VS Code's global storage for `saoudrizwan.claude-dev`
//!   (`<VS Code user dir>/globalStorage/saoudrizwan.claude-dev/settings/`), and the Cline CLI's
//!   `~/.cline/data/settings/`; `mcpServers` with `disabled`, `timeout` (seconds) and `type`
//!   (`stdio`, `sse`, `streamableHttp`).
//! - Codex: `~/.codex/config.toml` (or `$CODEX_HOME/config.toml`) and a trusted project's
//!   `.codex/config.toml`; `[mcp_servers.<name>]` tables with `command`, `args`, `env`,
//!   `env_vars`, `cwd`, `url`, `bearer_token_env_var`, `http_headers`, `env_http_headers`,
//!   `enabled`, `enabled_tools`, `disabled_tools`, `tool_timeout_sec`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::config::vars;

/// The clients whose configs `import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Client {
    ClaudeDesktop,
    ClaudeCode,
    Cursor,
    Vscode,
    Windsurf,
    Cline,
    Codex,
}

impl Client {
    pub const ALL: [Client; 7] = [
        Client::ClaudeDesktop,
        Client::ClaudeCode,
        Client::Cursor,
        Client::Vscode,
        Client::Windsurf,
        Client::Cline,
        Client::Codex,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Client::ClaudeDesktop => "claude-desktop",
            Client::ClaudeCode => "claude-code",
            Client::Cursor => "cursor",
            Client::Vscode => "vscode",
            Client::Windsurf => "windsurf",
            Client::Cline => "cline",
            Client::Codex => "codex",
        }
    }

    pub fn parse(name: &str) -> Option<Client> {
        Client::ALL.into_iter().find(|client| client.name() == name)
    }

    /// How the client writes variables in its values.
    fn variables(self) -> Variables {
        match self {
            Client::ClaudeCode => Variables::Shell,
            Client::Cursor | Client::Vscode | Client::Windsurf => Variables::Editor,
            Client::ClaudeDesktop | Client::Cline | Client::Codex => Variables::Literal,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variables {
    /// `${VAR}` and `${VAR:-default}`: our own syntax.
    Shell,
    /// `${env:VAR}`, `${input:id}`, `${workspaceFolder}`, `${userHome}`, …
    Editor,
    /// Values are taken as written.
    Literal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The user's own file, for every project.
    User,
    /// A file in the project (`.mcp.json`, `.cursor/mcp.json`, `.vscode/mcp.json`, …).
    Project,
    /// Claude Code's per-project servers kept in the user's `~/.claude.json`.
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Toml,
}

/// One file (and place in it) where a client keeps servers.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub client: Client,
    pub scope: Scope,
    pub path: PathBuf,
    pub format: Format,
    /// The keys leading to the servers object (`["mcpServers"]`, `["servers"]`,
    /// `["projects", "/dir", "mcpServers"]`, `["mcp_servers"]`).
    #[serde(rename = "keyPath")]
    pub key_path: Vec<String>,
}

/// The operating system whose locations are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Linux,
    MacOs,
    Windows,
}

/// What locations depend on: the OS and a few directories and variables.
#[derive(Debug, Clone)]
pub struct Platform {
    pub os: Os,
    pub home: PathBuf,
    /// `%APPDATA%` on Windows.
    pub app_data: PathBuf,
    /// `$XDG_CONFIG_HOME`, else `~/.config` (Linux).
    pub xdg_config: PathBuf,
    /// `$CODEX_HOME`.
    pub codex_home: Option<PathBuf>,
    /// `$CLAUDE_CONFIG_DIR`.
    pub claude_config_dir: Option<PathBuf>,
}

impl Platform {
    /// This machine's.
    pub fn current() -> Platform {
        let home = dirs::home_dir().unwrap_or_default();
        let env_path = |name: &str| {
            std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        };
        Platform {
            os: if cfg!(windows) {
                Os::Windows
            } else if cfg!(target_os = "macos") {
                Os::MacOs
            } else {
                Os::Linux
            },
            app_data: env_path("APPDATA").unwrap_or_else(|| home.join("AppData/Roaming")),
            xdg_config: env_path("XDG_CONFIG_HOME").unwrap_or_else(|| home.join(".config")),
            codex_home: env_path("CODEX_HOME"),
            claude_config_dir: env_path("CLAUDE_CONFIG_DIR"),
            home,
        }
    }

    /// VS Code's user directory (its `mcp.json` and extensions' global storage live there).
    fn vscode_user(&self) -> PathBuf {
        match self.os {
            Os::MacOs => self.home.join("Library/Application Support/Code/User"),
            Os::Windows => self.app_data.join("Code").join("User"),
            Os::Linux => self.xdg_config.join("Code/User"),
        }
    }
}

/// Where `client` keeps servers: its user-level files, and those of the project in `project`.
pub fn sources(client: Client, platform: &Platform, project: &Path) -> Vec<Source> {
    let json = |scope, path: PathBuf, key_path: &[&str]| Source {
        client,
        scope,
        path,
        format: Format::Json,
        key_path: key_path.iter().map(|key| (*key).to_owned()).collect(),
    };
    let home = &platform.home;
    match client {
        Client::ClaudeDesktop => {
            let dir = match platform.os {
                Os::MacOs => home.join("Library/Application Support/Claude"),
                Os::Windows => platform.app_data.join("Claude"),
                Os::Linux => platform.xdg_config.join("Claude"),
            };
            vec![json(
                Scope::User,
                dir.join("claude_desktop_config.json"),
                &["mcpServers"],
            )]
        }
        Client::ClaudeCode => {
            let file = platform
                .claude_config_dir
                .as_deref()
                .unwrap_or(home)
                .join(".claude.json");
            let project_key = project.to_string_lossy().into_owned();
            vec![
                json(Scope::User, file.clone(), &["mcpServers"]),
                json(
                    Scope::Local,
                    file,
                    &["projects", &project_key, "mcpServers"],
                ),
                json(Scope::Project, project.join(".mcp.json"), &["mcpServers"]),
            ]
        }
        Client::Cursor => vec![
            json(Scope::User, home.join(".cursor/mcp.json"), &["mcpServers"]),
            json(
                Scope::Project,
                project.join(".cursor/mcp.json"),
                &["mcpServers"],
            ),
        ],
        Client::Vscode => vec![
            json(
                Scope::User,
                platform.vscode_user().join("mcp.json"),
                &["servers"],
            ),
            json(
                Scope::Project,
                project.join(".vscode/mcp.json"),
                &["servers"],
            ),
        ],
        Client::Windsurf => vec![json(
            Scope::User,
            home.join(".codeium/windsurf/mcp_config.json"),
            &["mcpServers"],
        )],
        Client::Cline => vec![
            json(
                Scope::User,
                platform
                    .vscode_user()
                    .join("globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json"),
                &["mcpServers"],
            ),
            json(
                Scope::User,
                home.join(".cline/data/settings/cline_mcp_settings.json"),
                &["mcpServers"],
            ),
        ],
        Client::Codex => {
            let codex_home = platform
                .codex_home
                .clone()
                .unwrap_or_else(|| home.join(".codex"));
            let toml = |scope, path| Source {
                client,
                scope,
                path,
                format: Format::Toml,
                key_path: vec!["mcp_servers".to_owned()],
            };
            vec![
                toml(Scope::User, codex_home.join("config.toml")),
                toml(Scope::Project, project.join(".codex/config.toml")),
            ]
        }
    }
}

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
    let mut servers_value = Some(&root);
    for key in &source.key_path {
        servers_value = servers_value.and_then(|value| value.get(key));
    }
    let servers = match servers_value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(servers)) => servers
            .iter()
            .map(|(name, entry)| (name.clone(), entry.clone()))
            .collect(),
        Some(_) => {
            return Err(format!(
                "\"{}\" is not an object of servers",
                source.key_path.join(".")
            ));
        }
    };
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
    Ok(Some(Read { servers, inputs }))
}

/// A value only the client knew, which the import needs from the user.
#[derive(Debug, Clone, Serialize)]
pub struct Input {
    pub id: String,
    pub description: String,
    pub secret: bool,
}

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
    let mut entry = Map::new();
    let codex = context.client == Client::Codex;

    let url = raw
        .get("url")
        .or_else(|| raw.get("serverUrl"))
        .and_then(Value::as_str);
    if let Some(command) = raw.get("command").and_then(Value::as_str) {
        entry.insert(
            "command".into(),
            json!(convert_text(command, context, &mut secrets)?),
        );
        if let Some(Value::Array(args)) = raw.get("args") {
            let mut converted = Vec::new();
            for arg in args {
                match arg {
                    Value::String(arg) => {
                        converted.push(json!(convert_text(arg, context, &mut secrets)?))
                    }
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
                    Value::String(value) => convert_text(value, context, &mut secrets)?,
                    other => other.to_string(),
                };
                env.insert(key.clone(), json!(value));
            }
        }
        if codex && let Some(Value::Array(names)) = raw.get("env_vars") {
            for name in names.iter().filter_map(Value::as_str) {
                env.entry(name.to_owned())
                    .or_insert_with(|| json!(format!("${{{name}}}")));
            }
        }
        if !env.is_empty() {
            entry.insert("env".into(), Value::Object(env));
        }
        if let Some(cwd) = raw.get("cwd").and_then(Value::as_str) {
            entry.insert(
                "cwd".into(),
                json!(convert_text(cwd, context, &mut secrets)?),
            );
        }
        if let Some(file) = raw.get("envFile").and_then(Value::as_str) {
            // The client's env file is read now and its values kept with the input values, in
            // one owner-only file: a server has one envFile.
            let file = convert_text(file, context, &mut secrets)?;
            let base = match context.source.scope {
                Scope::Project | Scope::Local => context.project.to_owned(),
                Scope::User => context
                    .source
                    .path
                    .parent()
                    .map(Path::to_owned)
                    .unwrap_or_default(),
            };
            let values = vars::read_env_file(&base.join(&file))
                .map_err(|error| format!("its envFile: {error}"))?;
            secrets.extend(values);
        }
    } else if let Some(url) = url {
        entry.insert(
            "url".into(),
            json!(convert_text(url, context, &mut secrets)?),
        );
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
            _ if codex => {
                entry.insert("type".into(), json!("streamable-http"));
            }
            _ => {}
        }
        let mut headers = Map::new();
        let header_source = if codex { "http_headers" } else { "headers" };
        if let Some(Value::Object(items)) = raw.get(header_source) {
            for (key, value) in items {
                if let Value::String(value) = value {
                    headers.insert(
                        key.clone(),
                        json!(convert_text(value, context, &mut secrets)?),
                    );
                }
            }
        }
        if codex {
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
        if !headers.is_empty() {
            entry.insert("headers".into(), Value::Object(headers));
        }
    } else {
        return Err("it has neither \"command\" nor \"url\"".into());
    }

    let disabled = raw.get("disabled").and_then(Value::as_bool) == Some(true)
        || (codex && raw.get("enabled").and_then(Value::as_bool) == Some(false));
    if disabled {
        entry.insert("disabled".into(), json!(true));
    }
    let timeout = if codex {
        raw.get("tool_timeout_sec")
    } else if context.client == Client::Cline {
        raw.get("timeout")
    } else {
        None
    };
    if let Some(seconds) = timeout.and_then(Value::as_f64).filter(|s| *s > 0.0) {
        entry.insert("timeout".into(), json!(seconds));
    }
    if codex {
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
        if !tools.is_empty() {
            entry.insert("tools".into(), Value::Object(tools));
        }
    }
    Ok(Translated {
        entry: Value::Object(entry),
        secrets,
    })
}

/// `${` in a literal value, written so our config reads it back as written.
fn escape_literal(text: &str) -> String {
    text.replace("${", "$${")
}

/// One of the client's values in our syntax.
fn convert_text(
    text: &str,
    context: &mut Context<'_>,
    secrets: &mut BTreeMap<String, String>,
) -> Result<String, String> {
    match context.client.variables() {
        Variables::Literal => Ok(escape_literal(text)),
        Variables::Shell => {
            // Already our syntax; anything else between `${` and `}` would not load.
            match vars::expand(text, &|_| Some("x".into())) {
                Err(vars::VarError::Unsupported(reference)) => Err(format!(
                    "${{{reference}}} is not a variable the proxy can resolve"
                )),
                _ => Ok(text.to_owned()),
            }
        }
        Variables::Editor => {
            let mut out = String::with_capacity(text.len());
            let mut rest = text;
            while let Some(at) = rest.find("${") {
                out.push_str(&escape_literal(&rest[..at]));
                let Some(close) = rest[at..].find('}') else {
                    out.push_str(&escape_literal(&rest[at..]));
                    return Ok(out);
                };
                let inner = &rest[at + 2..at + close];
                out.push_str(&editor_variable(inner, context, secrets)?);
                rest = &rest[at + close + 1..];
            }
            out.push_str(&escape_literal(rest));
            Ok(out)
        }
    }
}

/// An editor variable (`env:NAME`, `input:id`, `workspaceFolder`, …) in our syntax.
fn editor_variable(
    inner: &str,
    context: &mut Context<'_>,
    secrets: &mut BTreeMap<String, String>,
) -> Result<String, String> {
    let separator = if context.platform.os == Os::Windows {
        "\\"
    } else {
        "/"
    };
    if let Some(name) = inner.strip_prefix("env:") {
        return if vars::is_name(name) {
            Ok(format!("${{{name}}}"))
        } else {
            Err(format!("${{{inner}}}: {name:?} is not a variable name"))
        };
    }
    if let Some(id) = inner.strip_prefix("input:") {
        let (description, secret) = context
            .inputs
            .get(id)
            .cloned()
            .unwrap_or((String::new(), true));
        let input = Input {
            id: id.to_owned(),
            description,
            secret,
        };
        let Some(value) = (context.input_value)(&input) else {
            return Err(format!(
                "it needs ${{input:{id}}}{}, a value {} asks for and keeps in its own store: give \
                 it with --input {id}=VALUE, or run the import in a terminal to be asked",
                if input.description.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", input.description)
                },
                match context.client {
                    Client::Cursor => "Cursor",
                    Client::Windsurf => "Windsurf",
                    _ => "VS Code",
                },
            ));
        };
        let name = input_variable(id);
        secrets.insert(name.clone(), value);
        return Ok(format!("${{{name}}}"));
    }
    let project = context.project;
    let value = match inner {
        "userHome" => context.platform.home.to_string_lossy().into_owned(),
        "workspaceFolder" | "workspaceRoot" => project.to_string_lossy().into_owned(),
        "workspaceFolderBasename" => project
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        "pathSeparator" | "/" => separator.to_owned(),
        other => {
            return Err(format!(
                "${{{other}}} is a variable only the client can resolve; replace it with a value \
                 or an environment reference and import again"
            ));
        }
    };
    Ok(escape_literal(&value))
}

/// The environment variable an input's value is kept under: its id in upper case, other
/// characters as `_`.
pub fn input_variable(id: &str) -> String {
    let mut name: String = id
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() {
                ch.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|ch: char| ch.is_ascii_alphabetic() || ch == '_') {
        name.insert(0, '_');
    }
    name
}

/// Whether an entry starts this proxy (importing it would make the proxy its own server).
pub fn is_this_proxy(entry: &Value) -> bool {
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
pub fn definition(entry: &Value) -> Value {
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
    use super::*;

    fn platform(os: Os) -> Platform {
        let (home, app_data) = match os {
            Os::Windows => (
                PathBuf::from("C:/Users/me"),
                PathBuf::from("C:/Users/me/AppData/Roaming"),
            ),
            Os::MacOs => (PathBuf::from("/Users/me"), PathBuf::new()),
            Os::Linux => (PathBuf::from("/home/me"), PathBuf::new()),
        };
        Platform {
            os,
            xdg_config: home.join(".config"),
            home,
            app_data,
            codex_home: None,
            claude_config_dir: None,
        }
    }

    fn paths(client: Client, os: Os) -> Vec<String> {
        sources(client, &platform(os), Path::new("/work/app"))
            .into_iter()
            .map(|source| source.path.to_string_lossy().replace('\\', "/"))
            .collect()
    }

    #[test]
    fn locations_follow_each_clients_documentation_on_every_os() {
        assert_eq!(
            paths(Client::ClaudeDesktop, Os::MacOs),
            ["/Users/me/Library/Application Support/Claude/claude_desktop_config.json"]
        );
        assert_eq!(
            paths(Client::ClaudeDesktop, Os::Windows),
            ["C:/Users/me/AppData/Roaming/Claude/claude_desktop_config.json"]
        );
        assert_eq!(
            paths(Client::ClaudeDesktop, Os::Linux),
            ["/home/me/.config/Claude/claude_desktop_config.json"]
        );
        assert_eq!(
            paths(Client::Vscode, Os::Windows),
            [
                "C:/Users/me/AppData/Roaming/Code/User/mcp.json",
                "/work/app/.vscode/mcp.json"
            ]
        );
        assert_eq!(
            paths(Client::Vscode, Os::MacOs)[0],
            "/Users/me/Library/Application Support/Code/User/mcp.json"
        );
        assert_eq!(
            paths(Client::Cline, Os::Linux)[0],
            "/home/me/.config/Code/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json"
        );
        assert_eq!(
            paths(Client::ClaudeCode, Os::Windows),
            [
                "C:/Users/me/.claude.json",
                "C:/Users/me/.claude.json",
                "/work/app/.mcp.json"
            ]
        );
        assert_eq!(
            paths(Client::Cursor, Os::Linux),
            ["/home/me/.cursor/mcp.json", "/work/app/.cursor/mcp.json"]
        );
        assert_eq!(
            paths(Client::Windsurf, Os::Windows),
            ["C:/Users/me/.codeium/windsurf/mcp_config.json"]
        );
        assert_eq!(
            paths(Client::Codex, Os::MacOs),
            [
                "/Users/me/.codex/config.toml",
                "/work/app/.codex/config.toml"
            ]
        );
        let local = &sources(
            Client::ClaudeCode,
            &platform(Os::Linux),
            Path::new("/work/app"),
        )[1];
        assert_eq!(local.key_path, ["projects", "/work/app", "mcpServers"]);
    }

    fn translate_for(
        client: Client,
        raw: Value,
        given: &[(&str, &str)],
    ) -> Result<Translated, String> {
        let platform = platform(Os::Linux);
        let source = sources(client, &platform, Path::new("/work/app")).remove(0);
        let inputs = BTreeMap::from([("gh".to_owned(), ("GitHub token".to_owned(), true))]);
        let given: BTreeMap<String, String> = given
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut ask = |input: &Input| given.get(&input.id).cloned();
        let mut context = Context {
            client,
            source: &source,
            platform: &platform,
            project: Path::new("/work/app"),
            inputs: &inputs,
            input_value: &mut ask,
        };
        translate(&raw, &mut context)
    }

    #[test]
    fn editor_variables_become_references_or_values() {
        let translated = translate_for(
            Client::Vscode,
            json!({"type": "stdio", "command": "node", "args": ["${workspaceFolder}/server.js", "${userHome}"],
                   "env": {"TOKEN": "${input:gh}", "PATH_X": "${env:HOME}", "COST": "$5 ${"}}),
            &[("gh", "s3cret")],
        )
        .unwrap();
        assert_eq!(
            translated.entry,
            json!({"command": "node", "args": ["/work/app/server.js", "/home/me"],
                   "env": {"TOKEN": "${GH}", "PATH_X": "${HOME}", "COST": "$5 $${"}})
        );
        assert_eq!(translated.secrets["GH"], "s3cret");
        let missing = translate_for(
            Client::Vscode,
            json!({"command": "x", "env": {"T": "${input:gh}"}}),
            &[],
        )
        .unwrap_err();
        assert!(
            missing.contains("--input gh=VALUE") && missing.contains("GitHub token"),
            "{missing}"
        );
    }

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
