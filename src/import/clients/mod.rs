//! The MCP clients `import` reads, each with its documented files and its own way of writing
//! servers:
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
//!
//! `locations` is that table of files per OS, `read` takes a file's servers (and VS Code's
//! inputs) out of its JSON or TOML, `translate` makes one of our entries from a client's entry,
//! with `variables` for the clients' variable syntaxes and `codex` for Codex's own keys.

mod codex;
#[cfg(test)]
mod fixtures;
mod locations;
mod read;
mod translate;
mod variables;

use serde::Serialize;

pub use locations::{Format, Os, Platform, Scope, Source, sources};
pub use read::{Read, read};
pub use translate::{Context, Translated, translate};
pub use variables::{Input, input_variable};

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
}
