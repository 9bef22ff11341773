//! What App mode serves from: the App's server list and catalog (`/api/mcp-servers`,
//! `/api/tools?prefix_tools=true`, `/api/prompts`, `/api/resources`, `/api/resource-templates`),
//! each list fetched, kept and failing on its own: a list that answers replaces its copy, one
//! that does not keeps its last good copy (in the data dir too) and the state says which list
//! fails and why; the next answer recovers it. The tool list is read only when reading it cannot
//! start the App's discovery needlessly (see [`AppMode::refresh`]). Prompt and resource owners
//! are resolved through `/api/resolve/prompt` and `/api/resolve/resource`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use super::client::{AppClient, AppError, Call, encode};
use super::servers::{self, AppServers};
use crate::config::Config;
use crate::control::time::{iso, now_ms};
use crate::sync::lock;

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

/// One of the lists App mode serves from, each fetched and kept on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AppList {
    Servers,
    Tools,
    Prompts,
    Resources,
    Templates,
}

impl AppList {
    pub const ALL: [AppList; 5] = [
        AppList::Servers,
        AppList::Tools,
        AppList::Prompts,
        AppList::Resources,
        AppList::Templates,
    ];

    /// The App's endpoint for it: how `servers` and `/health` name it.
    pub fn path(self) -> &'static str {
        match self {
            AppList::Servers => "/api/mcp-servers",
            AppList::Tools => "/api/tools",
            AppList::Prompts => "/api/prompts",
            AppList::Resources => "/api/resources",
            AppList::Templates => "/api/resource-templates",
        }
    }

    /// Its key in the saved copy.
    fn key(self) -> &'static str {
        match self {
            AppList::Servers => "servers",
            AppList::Tools => "tools",
            AppList::Prompts => "prompts",
            AppList::Resources => "resources",
            AppList::Templates => "templates",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What we serve: each list as last received, and when.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    servers_body: Value,
    servers: Arc<AppServers>,
    catalog: Arc<AppCatalog>,
    /// When each list (in [`AppList::ALL`] order) was fetched; `None`: never, nothing of it
    /// is served.
    fetched: [Option<i64>; 5],
}

impl Snapshot {
    /// The list as it is kept (and saved): the App's body, the tools as their array.
    fn list(&self, list: AppList) -> Value {
        match list {
            AppList::Servers => self.servers_body.clone(),
            AppList::Tools => json!(self.catalog.tools),
            AppList::Prompts => json!(self.catalog.prompts),
            AppList::Resources => json!(self.catalog.resources),
            AppList::Templates => json!(self.catalog.templates),
        }
    }

    /// Replaces one list with what the App answered; whether it changed.
    fn set(&mut self, list: AppList, body: &Value, at: i64) -> bool {
        self.fetched[list.index()] = Some(at);
        let mut catalog = AppCatalog::clone(&self.catalog);
        let changed = match list {
            AppList::Servers => {
                let changed = self.servers_body != *body;
                if changed {
                    self.servers = Arc::new(servers::parse(body));
                    self.servers_body = body.clone();
                }
                return changed;
            }
            AppList::Tools => replace(&mut catalog.tools, tools_of(body)),
            AppList::Prompts => replace(&mut catalog.prompts, list_of(body)),
            AppList::Resources => replace(&mut catalog.resources, list_of(body)),
            AppList::Templates => replace(&mut catalog.templates, list_of(body)),
        };
        if changed {
            self.catalog = Arc::new(catalog);
        }
        changed
    }

    /// Whether every listed server has a tool in the kept tool list: then reading the list
    /// cannot make the App discover anything (it discovers servers without tools).
    fn every_server_has_tools(&self) -> bool {
        self.servers.identities.iter().all(|identity| {
            self.catalog.tools.iter().any(|tool| {
                tool.get("_serverUuid")
                    .and_then(Value::as_str)
                    .is_some_and(|uuid| uuid.eq_ignore_ascii_case(&identity.uuid))
            })
        })
    }

    fn to_saved(&self) -> Value {
        let mut saved = Map::new();
        let mut fetched = Map::new();
        for list in AppList::ALL {
            if let Some(at) = self.fetched[list.index()] {
                saved.insert(list.key().into(), self.list(list));
                fetched.insert(list.key().into(), json!(at));
            }
        }
        saved.insert(
            "fetchedAt".into(),
            json!(self.fetched.iter().flatten().max()),
        );
        saved.insert("listsFetchedAt".into(), Value::Object(fetched));
        Value::Object(saved)
    }

    fn from_saved(saved: &Value) -> Snapshot {
        let mut snapshot = Snapshot::default();
        let overall = saved["fetchedAt"].as_i64();
        for list in AppList::ALL {
            let Some(body) = saved.get(list.key()) else {
                continue;
            };
            let at = saved["listsFetchedAt"][list.key()].as_i64().or(overall);
            if let Some(at) = at {
                snapshot.set(list, body, at);
            }
        }
        snapshot
    }
}

fn replace(kept: &mut Vec<Value>, new: Vec<Value>) -> bool {
    let changed = *kept != new;
    *kept = new;
    changed
}

/// How one list fares.
#[derive(Debug, Clone, PartialEq)]
pub struct ListStatus {
    pub list: AppList,
    /// When the copy served was fetched (`None`: nothing of this list is served).
    pub fetched_at: Option<i64>,
    /// Why it last failed (sanitised), while it fails.
    pub last_error: Option<String>,
    pub failing_since: Option<i64>,
}

impl ListStatus {
    /// `live` once it answered in this process and while it does, else what is kept of it.
    fn serving_from(&self, asked: bool) -> &'static str {
        match (self.fetched_at, &self.last_error) {
            (None, _) => "nothing",
            (Some(_), None) if asked => "live",
            (Some(_), _) => "last-good-copy",
        }
    }
}

/// Whether the App answers, list by list, and how old what we serve is.
#[derive(Debug, Clone, PartialEq)]
pub struct AppStatus {
    pub base_url: String,
    /// Whether this process has asked the App yet (it may have started from the saved copy).
    pub asked: bool,
    /// The App was asked and the last answer of every list was good.
    pub reachable: bool,
    /// Every list asked at the last refresh failed: the App cannot be reached (or refuses the
    /// key).
    pub unreachable: bool,
    /// When the copy served was last fetched, any list (`None`: nothing was ever fetched).
    pub fetched_at: Option<i64>,
    /// Why the last failing list failed, sanitised.
    pub last_error: Option<String>,
    /// Since when a list fails (the earliest).
    pub failing_since: Option<i64>,
    /// Each list, in [`AppList::ALL`] order.
    pub lists: Vec<ListStatus>,
}

impl AppStatus {
    fn failing(&self) -> Vec<&ListStatus> {
        self.lists
            .iter()
            .filter(|list| list.last_error.is_some())
            .collect()
    }

    fn state(&self) -> &'static str {
        let failing = self.failing().len();
        if !self.asked {
            "not-asked-yet"
        } else if self.unreachable {
            "unreachable"
        } else if failing == 0 {
            "reachable"
        } else {
            "degraded"
        }
    }

    /// One line for `servers` and logs.
    pub fn summary(&self) -> String {
        let copy = match self.fetched_at {
            Some(at) => format!("the copy fetched at {}", iso(at)),
            None => "no copy (nothing fetched yet)".to_owned(),
        };
        let base = &self.base_url;
        match self.state() {
            "reachable" => format!("plugged.in App {base}: reachable; serving {copy}"),
            "not-asked-yet" => {
                format!("plugged.in App {base}: not asked yet; serving the last good copy: {copy}")
            }
            "unreachable" => format!(
                "plugged.in App {base}: UNREACHABLE since {} ({}); serving the last good copy: {copy}; retrying",
                self.failing_since.map(iso).unwrap_or_default(),
                self.last_error.as_deref().unwrap_or("unknown error"),
            ),
            _ => {
                let failing: Vec<String> = self
                    .failing()
                    .iter()
                    .map(|list| {
                        let kept = match list.fetched_at {
                            Some(at) => {
                                format!("serving its last good copy, fetched at {}", iso(at))
                            }
                            None => "nothing of it served".to_owned(),
                        };
                        format!(
                            "{} fails since {} ({}); {kept}",
                            list.list.path(),
                            list.failing_since.map(iso).unwrap_or_default(),
                            list.last_error.as_deref().unwrap_or("unknown error"),
                        )
                    })
                    .collect();
                format!(
                    "plugged.in App {base}: reachable, but {}; retrying",
                    failing.join("; ")
                )
            }
        }
    }

    /// The state as JSON, for `/health`: the whole (`state`, `servingFrom`: `live`,
    /// `partly-live`, `last-good-copy` or `nothing`) and each list under its path.
    pub fn to_json(&self) -> Value {
        let state = self.state();
        let copy = if self.fetched_at.is_some() {
            "last-good-copy"
        } else {
            "nothing"
        };
        let serving_from = match state {
            "reachable" => "live",
            "degraded" => "partly-live",
            _ => copy,
        };
        let lists: Map<String, Value> = self
            .lists
            .iter()
            .map(|list| {
                (
                    list.list.path().to_owned(),
                    json!({
                        "servingFrom": list.serving_from(self.asked),
                        "fetchedAt": list.fetched_at.map(iso),
                        "failingSince": list.failing_since.map(iso),
                        "lastError": list.last_error,
                    }),
                )
            })
            .collect();
        json!({
            "mode": "app",
            "baseUrl": self.base_url,
            "state": state,
            "servingFrom": serving_from,
            "fetchedAt": self.fetched_at.map(iso),
            "failingSince": self.failing_since.map(iso),
            "lastError": self.last_error,
            "failingLists": self.failing().iter().map(|list| list.list.path()).collect::<Vec<_>>(),
            "lists": lists,
        })
    }
}

/// What one refresh did.
#[derive(Debug)]
pub struct Refresh {
    /// Something served changed.
    pub changed: bool,
    /// The first failure, when a list failed (the others were still taken).
    pub error: Option<AppError>,
    /// Every list asked failed.
    pub every_list_failed: bool,
}

/// Per list: whether it failed last, since when and why.
#[derive(Debug, Clone, Default)]
struct Failure {
    since: Option<i64>,
    error: Option<String>,
}

/// When the tool list is read again (see [`AppMode::refresh`]).
#[derive(Debug, Default)]
struct ToolsDue {
    /// Read at least once by this process.
    read: bool,
    /// The last read failed.
    failed: bool,
    /// The App said the last read started discovery: read once more to take what it found.
    follow_up: bool,
}

/// App mode's state. Shared by the router (catalog, resolving) and the refresh task.
pub struct AppMode {
    client: AppClient,
    /// The local config file's settings besides its servers (auth tokens, SMTP, and whatever
    /// else applies to every server), which App mode keeps.
    base: Config,
    cache_path: Option<PathBuf>,
    /// Asks for `/api/tools?prefix_tools=true` (the default), else the App's plain names
    /// (`PLUGGEDIN_UUID_TOOL_PREFIXING=false`, as the original).
    prefix_tools: bool,
    snapshot: Mutex<Snapshot>,
    failures: Mutex<[Failure; 5]>,
    /// Whether any refresh has been tried yet.
    asked: AtomicBool,
    /// Every list asked at the last refresh failed.
    unreachable: AtomicBool,
    tools_due: Mutex<ToolsDue>,
    /// A client listed tools since the tool list was last read.
    tools_listed: AtomicBool,
}

impl AppMode {
    /// Starts from the last good copy in `data_dir` (if any); call [`AppMode::refresh`] next.
    /// `base` is the local config file (if any): its servers are ignored, the rest applies.
    pub fn new(
        client: AppClient,
        base: Config,
        data_dir: Option<PathBuf>,
        prefix_tools: bool,
    ) -> AppMode {
        let cache_path = data_dir.map(|dir| dir.join(CACHE_FILE));
        let mut snapshot = Snapshot::default();
        if let Some(path) = &cache_path
            && let Ok(text) = std::fs::read_to_string(path)
        {
            match serde_json::from_str::<Value>(&text) {
                Ok(saved) => {
                    snapshot = Snapshot::from_saved(&saved);
                    tracing::info!(file = %path.display(), "last good App copy loaded");
                }
                Err(error) => {
                    tracing::warn!(file = %path.display(), "last good App copy unreadable: {error}")
                }
            }
        }
        let base = Config {
            servers: Default::default(),
            ..base
        };
        AppMode {
            client,
            base,
            cache_path,
            prefix_tools,
            snapshot: Mutex::new(snapshot),
            failures: Mutex::default(),
            asked: AtomicBool::new(false),
            unreachable: AtomicBool::new(false),
            tools_due: Mutex::default(),
            tools_listed: AtomicBool::new(false),
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
        let snapshot = lock(&self.snapshot);
        let failures = lock(&self.failures);
        let lists: Vec<ListStatus> = AppList::ALL
            .iter()
            .map(|list| ListStatus {
                list: *list,
                fetched_at: snapshot.fetched[list.index()],
                last_error: failures[list.index()].error.clone(),
                failing_since: failures[list.index()].since,
            })
            .collect();
        let asked = self.asked.load(Ordering::Acquire);
        let unreachable = asked && self.unreachable.load(Ordering::Acquire);
        let failing: Vec<&ListStatus> = lists.iter().filter(|l| l.last_error.is_some()).collect();
        AppStatus {
            base_url: self.client.base().to_owned(),
            asked,
            reachable: asked && !unreachable && failing.is_empty(),
            unreachable,
            fetched_at: snapshot.fetched.iter().flatten().max().copied(),
            last_error: failing
                .iter()
                .max_by_key(|list| list.failing_since)
                .and_then(|list| list.last_error.clone()),
            failing_since: failing.iter().filter_map(|list| list.failing_since).min(),
            lists,
        }
    }

    /// A client listed tools: the tool list is read at the next refresh (the original read it
    /// for every `tools/list`; we answer from the copy and follow the App at most once per
    /// refresh).
    pub fn tools_listed(&self) {
        self.tools_listed.store(true, Ordering::Relaxed);
    }

    /// The path of the tool list, with the App's prefixes unless they are switched off.
    fn tools_path(&self) -> &'static str {
        if self.prefix_tools {
            "/api/tools?prefix_tools=true"
        } else {
            "/api/tools"
        }
    }

    async fn fetch(&self, list: AppList) -> Result<Arc<Value>, AppError> {
        match list {
            AppList::Servers => self.client.get(list.path(), Call::ServerList).await,
            AppList::Tools => self.client.get(self.tools_path(), Call::Read).await,
            _ => self.client.get(list.path(), Call::Read).await,
        }
    }

    /// Whether the tool list is read at this refresh (see [`AppMode::refresh`]).
    fn tools_due(&self) -> bool {
        let due = lock(&self.tools_due);
        let snapshot = lock(&self.snapshot);
        !due.read
            || due.failed
            || due.follow_up
            || self.tools_listed.load(Ordering::Relaxed)
            || snapshot.every_server_has_tools()
    }

    /// Fetches each list on its own and takes each answer; a list that fails keeps its last good
    /// copy, and the status says which fails and why.
    ///
    /// The tool list is read only when needed: reading it (`GET /api/tools`) makes the App start
    /// discovering every server that has no tools (throttled to once in five minutes per
    /// server), which runs those servers at the App. So it is read the first time, after a
    /// failed read, when a client listed tools since (the original read it for every
    /// `tools/list`), once more after the App said it started a discovery (to take what it
    /// found), when the server list changed — and at every refresh while every server has
    /// tools, when reading it starts nothing.
    pub async fn refresh(&self) -> Refresh {
        let tools_due = self.tools_due();
        let read_tools = async {
            if tools_due {
                Some(self.read_tools().await)
            } else {
                None
            }
        };
        let (servers, prompts, resources, templates, tools) = futures::join!(
            self.fetch(AppList::Servers),
            self.fetch(AppList::Prompts),
            self.fetch(AppList::Resources),
            self.fetch(AppList::Templates),
            read_tools,
        );
        let servers_changed = servers
            .as_ref()
            .is_ok_and(|body| lock(&self.snapshot).servers_body != **body);
        // A new or changed server: the App discovers it when its tool list is read, as the
        // original read it.
        let tools = match tools {
            None if servers_changed => Some(self.read_tools().await),
            other => other,
        };
        self.asked.store(true, Ordering::Release);
        let mut results = vec![
            (AppList::Servers, servers),
            (AppList::Prompts, prompts),
            (AppList::Resources, resources),
            (AppList::Templates, templates),
        ];
        if let Some(tools) = tools {
            results.push((AppList::Tools, tools));
        }
        let refresh = self.take(results);
        self.unreachable
            .store(refresh.every_list_failed, Ordering::Release);
        refresh
    }

    /// Reads the tool list and notes what the App said about discovery.
    async fn read_tools(&self) -> Result<Arc<Value>, AppError> {
        let follow_up = {
            let mut due = lock(&self.tools_due);
            std::mem::take(&mut due.follow_up)
        };
        self.tools_listed.store(false, Ordering::Relaxed);
        let answer = self.fetch(AppList::Tools).await;
        let mut due = lock(&self.tools_due);
        due.read = true;
        due.failed = answer.is_err();
        if let Ok(body) = &answer
            && let Some(message) = body.get("message").and_then(Value::as_str)
        {
            tracing::info!("plugged.in App: {message}");
            // Once: a second answer saying so means the App's throttle let it start again.
            due.follow_up = !follow_up;
        }
        answer
    }

    /// Takes what each list answered; saves the copy when something was taken. Logs a line when
    /// a list starts failing or answers again (one line when every list failed at once).
    fn take(&self, results: Vec<(AppList, Result<Arc<Value>, AppError>)>) -> Refresh {
        let now = now_ms();
        let mut changed = false;
        let mut first_error: Option<AppError> = None;
        let mut taken = false;
        let mut newly_failing = Vec::new();
        let every_list_failed = results.iter().all(|(_, result)| result.is_err());
        {
            let mut snapshot = lock(&self.snapshot);
            let mut failures = lock(&self.failures);
            for (list, result) in results {
                let failure = &mut failures[list.index()];
                match result {
                    Ok(body) => {
                        changed |= snapshot.set(list, &body, now);
                        taken = true;
                        if failure.error.take().is_some() {
                            tracing::info!("plugged.in App: {} answers again", list.path());
                        }
                        failure.since = None;
                    }
                    Err(error) => {
                        if failure.error.is_none() {
                            let kept = if snapshot.fetched[list.index()].is_some() {
                                "serving its last good copy"
                            } else {
                                "nothing of it to serve"
                            };
                            newly_failing.push(format!("{} fails ({error}); {kept}", list.path()));
                        }
                        failure.since.get_or_insert(now);
                        failure.error = Some(error.to_string());
                        first_error.get_or_insert(error);
                    }
                }
            }
        }
        match &first_error {
            Some(error) if every_list_failed && !newly_failing.is_empty() => tracing::warn!(
                base = %self.client.base(),
                "the plugged.in App cannot be reached ({error}); serving the last good copy"
            ),
            _ => {
                for line in newly_failing {
                    tracing::warn!("plugged.in App: {line}");
                }
            }
        }
        if taken {
            self.save();
        }
        Refresh {
            changed,
            error: first_error,
            every_list_failed,
        }
    }

    /// Re-reads the server list alone (a downstream answered 401: the App refreshes OAuth tokens
    /// while it serves this list), sharing an identical request already in flight — many calls
    /// failing at once cause one re-read. `Ok(true)` when the list changed.
    pub async fn reread_servers(&self) -> Result<bool, AppError> {
        let answer = self.fetch(AppList::Servers).await;
        let refresh = self.take(vec![(AppList::Servers, answer)]);
        match refresh.error {
            Some(error) => Err(error),
            None => {
                self.unreachable.store(false, Ordering::Release);
                Ok(refresh.changed)
            }
        }
    }

    /// The UUID of the server that owns prompt `name` (`/api/resolve/prompt`).
    pub async fn resolve_prompt(&self, name: &str) -> Result<String, AppError> {
        let body = self
            .client
            .get(
                &format!("/api/resolve/prompt?name={}", encode(name)),
                Call::Read,
            )
            .await?;
        uuid_of(&body, "/api/resolve/prompt")
    }

    /// The UUID of the server that owns resource `uri` (`/api/resolve/resource`).
    pub async fn resolve_resource(&self, uri: &str) -> Result<String, AppError> {
        let body = self
            .client
            .get(
                &format!("/api/resolve/resource?uri={}", encode(uri)),
                Call::Read,
            )
            .await?;
        uuid_of(&body, "/api/resolve/resource")
    }

    fn save(&self) {
        let Some(path) = &self.cache_path else {
            return;
        };
        let saved = lock(&self.snapshot).to_saved();
        if let Err(error) = crate::security::write_private(path, saved.to_string().as_bytes()) {
            tracing::warn!(file = %path.display(), "last good App copy not saved: {error}");
        }
    }
}

/// `/api/tools` answers `{tools: [...], message?}` (older Apps, and the saved copy: a bare
/// array).
fn tools_of(value: &Value) -> Vec<Value> {
    match value.get("tools") {
        Some(Value::Array(tools)) => tools.clone(),
        _ => list_of(value),
    }
}

fn list_of(value: &Value) -> Vec<Value> {
    value.as_array().cloned().unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_list_is_kept_and_saved_on_its_own() {
        let mut snapshot = Snapshot::default();
        let servers = json!([{"uuid": "u1", "name": "Demo", "command": "demo"}]);
        assert!(snapshot.set(AppList::Servers, &servers, 10));
        assert!(snapshot.set(
            AppList::Tools,
            &json!({"tools": [{"name": "demo__echo", "_serverUuid": "u1"}], "message": "m"}),
            11
        ));
        assert!(!snapshot.set(AppList::Servers, &servers, 12));
        assert!(snapshot.every_server_has_tools());
        // The prompts never answered: nothing of them is saved, and a restart knows it.
        let restored = Snapshot::from_saved(&snapshot.to_saved());
        assert_eq!(restored.fetched, [Some(12), Some(11), None, None, None]);
        assert_eq!(restored.catalog.tools.len(), 1);
        assert_eq!(restored.servers.identities[0].uuid, "u1");
        // A copy saved before lists were kept on their own: one time for all.
        let old = Snapshot::from_saved(&json!({"servers": [], "tools": [], "prompts": [],
            "resources": [], "templates": [], "fetchedAt": 5}));
        assert_eq!(old.fetched, [Some(5); 5]);
    }

    #[test]
    fn the_status_names_each_failing_list() {
        let list = |list, error: Option<&str>, fetched_at| ListStatus {
            list,
            fetched_at,
            last_error: error.map(str::to_owned),
            failing_since: error.map(|_| 1_000),
        };
        let status = AppStatus {
            base_url: "https://plugged.in".into(),
            asked: true,
            reachable: false,
            unreachable: false,
            fetched_at: Some(2_000),
            last_error: Some("Service temporarily unavailable".into()),
            failing_since: Some(1_000),
            lists: vec![
                list(AppList::Servers, None, Some(2_000)),
                list(AppList::Tools, None, Some(2_000)),
                list(
                    AppList::Prompts,
                    Some("Service temporarily unavailable"),
                    Some(500),
                ),
                list(AppList::Resources, Some("Authentication failed"), None),
                list(AppList::Templates, None, Some(2_000)),
            ],
        };
        let summary = status.summary();
        assert!(
            summary.contains("reachable, but /api/prompts fails since")
                && summary.contains("serving its last good copy, fetched at")
                && summary.contains("/api/resources fails since")
                && summary.contains("nothing of it served")
                && !summary.contains("UNREACHABLE"),
            "{summary}"
        );
        let json = status.to_json();
        assert_eq!(json["state"], json!("degraded"));
        assert_eq!(json["servingFrom"], json!("partly-live"));
        assert_eq!(
            json["failingLists"],
            json!(["/api/prompts", "/api/resources"])
        );
        assert_eq!(
            json["lists"]["/api/prompts"]["servingFrom"],
            json!("last-good-copy")
        );
        assert_eq!(
            json["lists"]["/api/resources"]["servingFrom"],
            json!("nothing")
        );
        assert_eq!(json["lists"]["/api/tools"]["servingFrom"], json!("live"));
    }
}
