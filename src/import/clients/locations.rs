//! The table of where each client keeps its servers: per OS, the user's own files and the
//! project's, and the place in each file (a key path) that holds the servers object. The
//! directories it depends on (home, `%APPDATA%`, `$XDG_CONFIG_HOME`, `$CODEX_HOME`,
//! `$CLAUDE_CONFIG_DIR`) come in a [`Platform`], so every OS's table can be tested anywhere.
//! Reading the files is `read`'s job.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Client;

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

#[cfg(test)]
mod tests {
    use super::super::fixtures::platform;
    use super::*;

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
}
