//! The local server list: a JSON file in the `mcpServers` shape that Claude Desktop, Cursor and
//! Cline use (VS Code's `servers` spelling too), parsed into validated [`ServerConfig`]s. Every
//! error names the file, the server and the field. Finding the file (`locate`) and watching it for
//! edits (`watch`) live here too; what to do with a changed server list is the supervisor's job.
//! `${VAR}` references are resolved here, at load (`vars`); editing the file in place, keeping
//! what the user wrote, is `jsonc`'s. `started` is the entry with both a command and a URL: a
//! server the proxy starts and reaches over HTTP on a port it picks. `hints` reads a server's
//! `"toolHints"`, `tokens` the `"authTokens"` and the tool exposure each may ask for.

pub mod edit;
mod field;
mod fields;
mod hints;
pub mod jsonc;
mod oauth;
mod parse;
mod started;
mod tokens;
pub mod vars;
mod watch;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

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
    /// The tool exposure the `"authTokens"` written as objects ask for, by digests of the token.
    pub token_exposures: TokenExposures,
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
            .field("token_exposures", &self.token_exposures)
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
    /// Which replicas of a fleet run the server (`"scope"`).
    pub scope: Scope,
    /// What the catalog adds to the server's tools for clients that search tools themselves,
    /// and better descriptions (`"toolHints"`).
    pub tool_hints: ToolHints,
}

/// Which replicas of a fleet run a server the proxy runs itself (a stdio child, a process it
/// starts). Outside a fleet one process is the whole fleet, and both mean the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// Every replica runs its own (`"replica"`, the default): no hop, no single owner.
    #[default]
    Replica,
    /// One replica of the fleet runs it, elected through the store, and the others reach it
    /// through that one (`"fleet"`): for a server whose state in memory must be shared.
    Fleet,
}

/// What a session's `tools/list` shows (`--tool-exposure`, and per workspace and per token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ToolExposure {
    /// Every tool (`"all"`, the default).
    #[default]
    All,
    /// The pinned tools and the search meta-tools; the rest are found, described and called
    /// through those (`"search"`).
    Search,
}

impl ToolExposure {
    /// The name the flag, the config and the store spell it with.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolExposure::All => "all",
            ToolExposure::Search => "search",
        }
    }
}

impl fmt::Display for ToolExposure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ToolExposure {
    type Err = String;

    fn from_str(value: &str) -> Result<ToolExposure, String> {
        match value {
            "all" => Ok(ToolExposure::All),
            "search" => Ok(ToolExposure::Search),
            other => Err(format!(
                "tool exposure \"{other}\" is neither \"all\" nor \"search\""
            )),
        }
    }
}

/// One configured root: a `file://` URI (written as one, or as an absolute or `~/` path) and an
/// optional name, as MCP's `roots/list` carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootConfig {
    pub uri: String,
    pub name: Option<String>,
}

pub use crate::security::Origin;
pub use hints::{MAX_DESCRIPTION, MAX_SEARCH_HINT, ToolHint, ToolHints};
pub use oauth::OAuthConfig;
pub use started::{PORT_PLACEHOLDER, StartedHttp, check_started_url, is_loopback};
pub use tokens::TokenExposures;

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
            TransportConfig::StartedHttp(started) => started.check(self.origin, security)?,
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
    /// A server the proxy starts as a local process and reaches over HTTP (an entry with both
    /// `command` and `url`).
    StartedHttp(StartedHttp),
}

impl TransportConfig {
    /// The transport's name as `servers` and logs show it.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportConfig::Stdio { .. } => "stdio",
            TransportConfig::Sse { .. } => "sse",
            TransportConfig::StreamableHttp { .. } => "streamable-http",
            TransportConfig::StartedHttp(started) if started.sse => "sse",
            TransportConfig::StartedHttp(_) => "streamable-http",
        }
    }

    /// Where the server is: the command line, the URL, or both.
    pub fn target(&self) -> String {
        match self {
            TransportConfig::Stdio { command, args, .. } => std::iter::once(command.as_str())
                .chain(args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            TransportConfig::Sse { url, .. } | TransportConfig::StreamableHttp { url, .. } => {
                display_url(url)
            }
            TransportConfig::StartedHttp(started) => started.target(),
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
