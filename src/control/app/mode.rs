//! What App mode serves from: the App's server list and catalog (`/api/mcp-servers`,
//! `/api/tools?prefix_tools=true`, `/api/prompts`, `/api/resources`, `/api/resource-templates`),
//! fetched together, kept as the last good copy in the data dir, and refreshed periodically. When
//! the App cannot be reached the last good copy keeps being served and the state says so; the next
//! successful refresh recovers by itself. Prompt and resource owners are resolved through
//! `/api/resolve/prompt` and `/api/resolve/resource`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::client::{AppClient, AppError, encode};
use super::servers::{self, AppServers};
use crate::config::Config;
use crate::control::time::{iso, now_ms};

/// The file the last good copy is kept in, in the data dir. It holds the server list as the App
/// sent it (with its env and headers, which may carry secrets), so it is written owner-only.
pub const CACHE_FILE: &str = "app-snapshot.json";

/// The App's catalog lists, as the App sent them (JSON: `control` knows no MCP types).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppCatalog {
    pub tools: Vec<Value>,
    pub prompts: Vec<Value>,
    pub resources: Vec<Value>,
    pub templates: Vec<Value>,
}

/// One consistent copy of what the App said.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    servers_body: Value,
    servers: Arc<AppServers>,
    catalog: Arc<AppCatalog>,
    fetched_at: Option<i64>,
}

/// Whether the App answers, and how old what we serve is.
#[derive(Debug, Clone, PartialEq)]
pub struct AppStatus {
    pub base_url: String,
    /// The last refresh succeeded.
    pub reachable: bool,
    /// When the copy served was fetched (`None`: nothing was ever fetched).
    pub fetched_at: Option<i64>,
    /// Why the last refresh failed, sanitised.
    pub last_error: Option<String>,
    /// Since when refreshes fail.
    pub failing_since: Option<i64>,
}

impl AppStatus {
    /// One line for `servers` and logs.
    pub fn summary(&self) -> String {
        let copy = match self.fetched_at {
            Some(at) => format!("the copy fetched at {}", iso(at)),
            None => "no copy (nothing fetched yet)".to_owned(),
        };
        if self.reachable {
            format!(
                "plugged.in App {}: reachable; serving {copy}",
                self.base_url
            )
        } else if self.last_error.is_none() {
            format!(
                "plugged.in App {}: not asked yet; serving the last good copy: {copy}",
                self.base_url
            )
        } else {
            format!(
                "plugged.in App {}: UNREACHABLE since {} ({}); serving the last good copy: {copy}; retrying",
                self.base_url,
                self.failing_since.map(iso).unwrap_or_default(),
                self.last_error.as_deref().unwrap_or("unknown error"),
            )
        }
    }

    /// The state as JSON, for `/health`.
    pub fn to_json(&self) -> Value {
        json!({
            "mode": "app",
            "baseUrl": self.base_url,
            "state": match (self.reachable, &self.last_error) {
                (true, _) => "reachable",
                (false, None) => "not-asked-yet",
                (false, Some(_)) => "unreachable",
            },
            "servingFrom": match (self.reachable, self.fetched_at) {
                (true, _) => "live",
                (false, Some(_)) => "last-good-copy",
                (false, None) => "nothing",
            },
            "fetchedAt": self.fetched_at.map(iso),
            "failingSince": self.failing_since.map(iso),
            "lastError": self.last_error,
        })
    }
}

/// App mode's state. Shared by the router (catalog, resolving) and the refresh task.
pub struct AppMode {
    client: AppClient,
    /// The local config file's settings besides its servers (auth tokens, SMTP, and whatever
    /// else applies to every server), which App mode keeps.
    base: Config,
    cache_path: Option<PathBuf>,
    snapshot: Mutex<Snapshot>,
    status: Mutex<AppStatus>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AppMode {
    /// Starts from the last good copy in `data_dir` (if any); call [`AppMode::refresh`] next.
    /// `base` is the local config file (if any): its servers are ignored, the rest applies.
    pub fn new(client: AppClient, base: Config, data_dir: Option<PathBuf>) -> AppMode {
        let cache_path = data_dir.map(|dir| dir.join(CACHE_FILE));
        let mut snapshot = Snapshot::default();
        if let Some(path) = &cache_path
            && let Ok(text) = std::fs::read_to_string(path)
        {
            match serde_json::from_str::<Value>(&text) {
                Ok(saved) => {
                    snapshot = Snapshot {
                        servers: Arc::new(servers::parse(&saved["servers"])),
                        servers_body: saved["servers"].clone(),
                        catalog: Arc::new(catalog_of(&saved)),
                        fetched_at: saved["fetchedAt"].as_i64(),
                    };
                    tracing::info!(file = %path.display(), "last good App copy loaded");
                }
                Err(error) => {
                    tracing::warn!(file = %path.display(), "last good App copy unreadable: {error}")
                }
            }
        }
        let status = AppStatus {
            base_url: client.base().to_owned(),
            reachable: false,
            fetched_at: snapshot.fetched_at,
            last_error: None,
            failing_since: None,
        };
        let base = Config {
            servers: Default::default(),
            ..base
        };
        AppMode {
            client,
            base,
            cache_path,
            snapshot: Mutex::new(snapshot),
            status: Mutex::new(status),
        }
    }

    pub fn client(&self) -> &AppClient {
        &self.client
    }

    pub fn servers(&self) -> Arc<AppServers> {
        lock(&self.snapshot).servers.clone()
    }

    /// The config in force: the local file's settings with the App's servers.
    pub fn config(&self) -> Config {
        let mut config = self.base.clone();
        config.servers = self.servers().config.servers.clone();
        config
    }

    pub fn catalog(&self) -> Arc<AppCatalog> {
        lock(&self.snapshot).catalog.clone()
    }

    pub fn status(&self) -> AppStatus {
        lock(&self.status).clone()
    }

    /// Fetches the server list and the catalog. `Ok(true)` when something changed; on failure
    /// the last good copy stays and the status says why.
    pub async fn refresh(&self) -> Result<bool, AppError> {
        let fetched = futures::future::try_join5(
            self.client.get("/api/mcp-servers"),
            self.client.get("/api/tools?prefix_tools=true"),
            self.client.get("/api/prompts"),
            self.client.get("/api/resources"),
            self.client.get("/api/resource-templates"),
        )
        .await;
        let (servers_body, tools, prompts, resources, templates) = match fetched {
            Ok(fetched) => fetched,
            Err(error) => {
                self.failed(&error);
                return Err(error);
            }
        };
        let saved = json!({
            "servers": *servers_body,
            "tools": tools_of(&tools),
            "prompts": array(&prompts),
            "resources": array(&resources),
            "templates": array(&templates),
            "fetchedAt": now_ms(),
        });
        let changed = self.install(&saved);
        self.save(&saved);
        Ok(changed)
    }

    /// Re-reads the server list alone (a downstream answered 401: the App refreshes OAuth tokens
    /// while it serves this list), sharing an identical request already in flight — many calls
    /// failing at once cause one re-read. `Ok(true)` when the list changed.
    pub async fn reread_servers(&self) -> Result<bool, AppError> {
        let body = match self.client.get("/api/mcp-servers").await {
            Ok(body) => body,
            Err(error) => {
                self.failed(&error);
                return Err(error);
            }
        };
        let saved = {
            let snapshot = lock(&self.snapshot);
            json!({
                "servers": *body,
                "tools": snapshot.catalog.tools,
                "prompts": snapshot.catalog.prompts,
                "resources": snapshot.catalog.resources,
                "templates": snapshot.catalog.templates,
                "fetchedAt": now_ms(),
            })
        };
        let changed = self.install(&saved);
        self.save(&saved);
        Ok(changed)
    }

    /// The UUID of the server that owns prompt `name` (`/api/resolve/prompt`).
    pub async fn resolve_prompt(&self, name: &str) -> Result<String, AppError> {
        let body = self
            .client
            .get(&format!("/api/resolve/prompt?name={}", encode(name)))
            .await?;
        uuid_of(&body, "/api/resolve/prompt")
    }

    /// The UUID of the server that owns resource `uri` (`/api/resolve/resource`).
    pub async fn resolve_resource(&self, uri: &str) -> Result<String, AppError> {
        let body = self
            .client
            .get(&format!("/api/resolve/resource?uri={}", encode(uri)))
            .await?;
        uuid_of(&body, "/api/resolve/resource")
    }

    fn install(&self, saved: &Value) -> bool {
        let servers = servers::parse(&saved["servers"]);
        let catalog = catalog_of(saved);
        let fetched_at = saved["fetchedAt"].as_i64();
        let changed = {
            let mut snapshot = lock(&self.snapshot);
            let changed = snapshot.servers_body != saved["servers"] || *snapshot.catalog != catalog;
            *snapshot = Snapshot {
                servers_body: saved["servers"].clone(),
                servers: Arc::new(servers),
                catalog: Arc::new(catalog),
                fetched_at,
            };
            changed
        };
        let mut status = lock(&self.status);
        if !status.reachable {
            tracing::info!(base = %status.base_url, "the plugged.in App is reachable");
        }
        status.reachable = true;
        status.fetched_at = fetched_at;
        status.last_error = None;
        status.failing_since = None;
        changed
    }

    fn failed(&self, error: &AppError) {
        let mut status = lock(&self.status);
        if status.reachable || status.failing_since.is_none() {
            tracing::warn!(
                base = %status.base_url,
                "the plugged.in App cannot be reached ({error}); serving the last good copy"
            );
            status.failing_since = Some(now_ms());
        }
        status.reachable = false;
        status.last_error = Some(error.to_string());
    }

    fn save(&self, saved: &Value) {
        let Some(path) = &self.cache_path else {
            return;
        };
        if let Err(error) = crate::security::write_private(path, saved.to_string().as_bytes()) {
            tracing::warn!(file = %path.display(), "last good App copy not saved: {error}");
        }
    }
}

fn array(value: &Value) -> Value {
    match value {
        Value::Array(_) => value.clone(),
        _ => json!([]),
    }
}

/// `/api/tools` answers `{tools: [...], message?}` (older Apps: a bare array).
fn tools_of(value: &Value) -> Value {
    match value.get("tools") {
        Some(tools @ Value::Array(_)) => tools.clone(),
        _ => array(value),
    }
}

fn list(value: &Value) -> Vec<Value> {
    value.as_array().cloned().unwrap_or_default()
}

fn catalog_of(saved: &Value) -> AppCatalog {
    AppCatalog {
        tools: list(&saved["tools"]),
        prompts: list(&saved["prompts"]),
        resources: list(&saved["resources"]),
        templates: list(&saved["templates"]),
    }
}

fn uuid_of(body: &Value, path: &str) -> Result<String, AppError> {
    body.get("uuid")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| AppError::Invalid {
            method: "GET",
            path: path.to_owned(),
            reason: "no server uuid in the answer".to_owned(),
        })
}
