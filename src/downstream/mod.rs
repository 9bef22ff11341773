//! Downstream servers: one supervised connection per configured server. A [`Downstream`] holds
//! what the rest of the proxy may read about a server (its state, its live peer, its current
//! lists); the supervisor task owns the connection itself, spawns or dials it, re-lists on
//! `list_changed`, and restarts it with backoff when it fails. Events that must reach clients go
//! through the [`Events`] trait, so this module knows nothing of upstream sessions.

pub mod child;
mod connect;
mod handler;
pub mod oauth;
mod observe;
#[cfg(unix)]
mod process;
pub mod reaper;
pub mod sse;
mod started;
mod supervisor;
mod task_wire;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use rmcp::RoleClient;
use rmcp::model::{
    ClientResult, ErrorData, ProgressNotificationParam, ResourceUpdatedNotificationParam,
    ServerCapabilities, ServerRequest,
};
// Logging is deprecated by SEP-2577; legacy clients and servers use it.
#[allow(deprecated)]
use rmcp::model::LoggingMessageNotificationParam;
use rmcp::service::{Peer, RequestContext};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use crate::security::SecuritySettings;
use crate::sync::{read, write};
use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};

pub use supervisor::spawn;

/// What the proxy must hear from downstream servers. Implemented by the router.
pub trait Events: Send + Sync + 'static {
    /// A server's lists or state changed: rebuild the catalog and tell clients.
    fn catalog_changed(&self);
    /// The server said one of its lists changed, and they were listed again: as
    /// [`Events::catalog_changed`], and news for other replicas with a connection to it.
    fn lists_changed(&self, server: &str) {
        let _ = server;
        self.catalog_changed();
    }
    fn progress(&self, server: &str, params: ProgressNotificationParam);
    // Logging is deprecated by SEP-2577; legacy clients and servers use it.
    #[allow(deprecated)]
    fn log(&self, server: &str, params: LoggingMessageNotificationParam);
    fn resource_updated(&self, server: &str, params: ResourceUpdatedNotificationParam);
    /// A 2025-11-25 server's `notifications/tasks/status`, raw (`wire::core_tasks`).
    fn task_status(&self, server: &str, params: Option<serde_json::Value>) {
        let _ = (server, params);
    }
    /// A server asks the client something (sampling, elicitation, roots).
    fn server_request(
        &self,
        server: &str,
        request: ServerRequest,
        context: RequestContext<RoleClient>,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>>;
}

/// A server's state as `servers`, `/health` and discovery show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerState {
    Disabled,
    Starting,
    Connected,
    /// The last attempt failed; another follows after `retry_in` unless stopped.
    Failed {
        reason: String,
        retry_in: Option<Duration>,
    },
    Stopped,
    /// The security policy refused the server's config (permanent until the config changes) or
    /// its destination at connection time (checked again after `retry_in`). The reason names
    /// the rule.
    Refused {
        reason: String,
        retry_in: Option<Duration>,
    },
}

impl ServerState {
    /// Whether the server has settled: connected, failed or not running at all.
    pub fn is_settled(&self) -> bool {
        !matches!(self, ServerState::Starting)
    }
}

impl std::fmt::Display for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerState::Disabled => f.write_str("disabled"),
            ServerState::Starting => f.write_str("starting"),
            ServerState::Connected => f.write_str("connected"),
            ServerState::Failed {
                reason,
                retry_in: Some(retry_in),
            } => write!(f, "failed: {reason} (retry in {}s)", retry_in.as_secs_f32()),
            ServerState::Failed { reason, .. } => write!(f, "failed: {reason}"),
            ServerState::Stopped => f.write_str("stopped"),
            ServerState::Refused {
                reason,
                retry_in: Some(retry_in),
            } => write!(f, "{reason} (retry in {}s)", retry_in.as_secs_f32()),
            ServerState::Refused { reason, .. } => f.write_str(reason),
        }
    }
}

/// What one server currently offers, as it listed it.
#[derive(Debug, Clone, Default)]
pub struct ServerLists {
    pub tools: Vec<Tool>,
    pub prompts: Vec<Prompt>,
    pub resources: Vec<Resource>,
    pub templates: Vec<ResourceTemplate>,
}

impl ServerLists {
    /// The lists as one JSON object (for the catalog cache).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "tools": self.tools,
            "prompts": self.prompts,
            "resources": self.resources,
            "templates": self.templates,
        })
    }

    /// The lists back from [`ServerLists::to_json`]; `None` if they do not parse.
    pub fn from_json(value: &serde_json::Value) -> Option<ServerLists> {
        let part = |key: &str| {
            value
                .get(key)
                .cloned()
                .unwrap_or_else(|| serde_json::json!([]))
        };
        Some(ServerLists {
            tools: serde_json::from_value(part("tools")).ok()?,
            prompts: serde_json::from_value(part("prompts")).ok()?,
            resources: serde_json::from_value(part("resources")).ok()?,
            templates: serde_json::from_value(part("templates")).ok()?,
        })
    }
}

/// Why a request could not reach a server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// The server is not connected; `why` says what it is doing instead.
    #[error("server \"{server}\" {why}")]
    Down { server: String, why: String },
    /// The caller gave up while waiting.
    #[error("the request was cancelled")]
    Cancelled,
}

/// Seconds as people read them: `3 s`, `0.5 s`.
fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs_f32();
    if secs.fract() == 0.0 {
        format!("{secs:.0} s")
    } else {
        format!("{secs:.1} s")
    }
}

/// The lane of a stdio child's connection.
pub type ChildLane = crate::wire::lane::Lane<tokio::process::ChildStdin>;

/// A live connection's handle and what the server said about itself.
#[derive(Clone)]
pub struct Connection {
    pub peer: Peer<RoleClient>,
    /// A stdio child's lane for relayed `tools/call`s (`wire::lane`), beside `peer`.
    pub lane: Option<Arc<ChildLane>>,
    /// What rmcp puts in the `_meta` of every request to a modern server (its generation, our
    /// client info and capabilities), encoded once for requests on the lane. `None` for a legacy
    /// server.
    pub request_meta: Option<Box<serde_json::value::RawValue>>,
    pub capabilities: ServerCapabilities,
    pub instructions: Option<String>,
    pub protocol_version: String,
}

impl Connection {
    /// Whether the server speaks the modern generation (2026-07-28 or newer).
    pub fn is_modern(&self) -> bool {
        self.protocol_version.as_str() >= rmcp::model::ProtocolVersion::V_2026_07_28.as_str()
    }
}

/// One configured server, shared by the supervisor, the router and the inspector commands.
pub struct Downstream {
    pub name: String,
    pub slug: String,
    pub uuid: String,
    pub config: ServerConfig,
    /// The security settings in force when it was configured (a change restarts it).
    pub security: Arc<SecuritySettings>,
    state: watch::Sender<ServerState>,
    /// Shared, so the per-request read is a pointer copy (the server's instructions can be long).
    connection: RwLock<Option<Arc<Connection>>>,
    lists: RwLock<Arc<ServerLists>>,
    /// Resources clients subscribed to, for a modern server's `subscriptions/listen` stream
    /// (a legacy server gets `resources/subscribe` instead).
    watched: watch::Sender<std::collections::BTreeSet<String>>,
    /// The generation `auto` found on the last connection, spoken on reconnection.
    detected: std::sync::Mutex<Option<crate::config::Protocol>>,
    /// The resources the open listen stream follows (it acknowledged them).
    listening: watch::Sender<std::collections::BTreeSet<String>>,
    /// Stops this server's supervisor (config change or shutdown).
    pub(crate) cancel: CancellationToken,
    /// When this server was configured: its first connection attempt began then.
    created: Instant,
    /// Whether the first connection attempt has ended (connected, failed, refused, stopped).
    first_attempt_done: AtomicBool,
    /// Whether a live connection ended and the next attempt is a restart (cleared by the
    /// attempt's outcome): a call waits for a restarting server, not for one that cannot connect.
    restarting: AtomicBool,
    /// Whether the server has been connected at some point.
    ever_connected: AtomicBool,
    /// How often a live connection ended and the supervisor connected again (or tried).
    restarts: std::sync::atomic::AtomicU64,
    /// Asks the supervisor to close the connection and connect again (`restart`).
    restart: tokio::sync::Notify,
    /// A stdio server's last lines on stderr (redacted, bounded).
    stderr: process::Tail,
}

impl Downstream {
    pub fn new(
        name: String,
        slug: String,
        uuid: String,
        config: ServerConfig,
        security: Arc<SecuritySettings>,
        cancel: CancellationToken,
    ) -> Downstream {
        let disabled = config.disabled;
        let initial = if disabled {
            ServerState::Disabled
        } else {
            ServerState::Starting
        };
        Downstream {
            name,
            slug,
            uuid,
            config,
            security,
            state: watch::Sender::new(initial),
            connection: RwLock::new(None),
            lists: RwLock::new(Arc::default()),
            watched: watch::Sender::new(Default::default()),
            listening: watch::Sender::new(Default::default()),
            detected: std::sync::Mutex::default(),
            cancel,
            created: Instant::now(),
            first_attempt_done: AtomicBool::new(disabled),
            restarting: AtomicBool::new(false),
            ever_connected: AtomicBool::new(false),
            restarts: std::sync::atomic::AtomicU64::new(0),
            restart: tokio::sync::Notify::new(),
            stderr: process::Tail::default(),
        }
    }

    pub fn state(&self) -> ServerState {
        self.state.borrow().clone()
    }

    /// Changes in state, for waiting until a server settles.
    pub fn subscribe_state(&self) -> watch::Receiver<ServerState> {
        self.state.subscribe()
    }

    /// When the server was configured, which is when its first connection attempt began.
    pub fn created(&self) -> Instant {
        self.created
    }

    /// Whether the first connection attempt has ended, however it ended.
    pub fn first_attempt_done(&self) -> bool {
        self.first_attempt_done.load(Ordering::Acquire)
    }

    /// Resolves once the first connection attempt has ended (at once if it has).
    pub async fn first_attempt(&self) {
        let mut state = self.subscribe_state();
        let _ = state.wait_for(|_| self.first_attempt_done()).await;
    }

    /// Waits for the live connection: while the server is starting, or restarting after its
    /// connection ended, until it connects; never past a failed attempt, past `deadline`, or
    /// past `cancel`. The error says why the server is not available.
    pub async fn connected(
        &self,
        deadline: tokio::time::Instant,
        cancel: &CancellationToken,
    ) -> Result<Arc<Connection>, Unavailable> {
        let mut state = self.subscribe_state();
        loop {
            if let Some(connection) = self.connection() {
                return Ok(connection);
            }
            let current = state.borrow_and_update().clone();
            let waiting = match &current {
                // Connected but the connection not published yet, or gone a moment ago.
                ServerState::Connected | ServerState::Starting => true,
                ServerState::Failed {
                    retry_in: Some(_), ..
                } => self.restarting.load(Ordering::Acquire),
                _ => false,
            };
            if !waiting {
                return Err(self.unavailable(&current, false));
            }
            tokio::select! {
                changed = state.changed() => {
                    if changed.is_err() {
                        return Err(self.unavailable(&ServerState::Stopped, false));
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    return Err(self.unavailable(&self.state(), true));
                }
                () = cancel.cancelled() => return Err(Unavailable::Cancelled),
            }
        }
    }

    /// Why the server is not available in `state` (`waited`: a wait for it ran out).
    fn unavailable(&self, state: &ServerState, waited: bool) -> Unavailable {
        let restarting = self.restarting.load(Ordering::Acquire);
        let why = match state {
            ServerState::Starting | ServerState::Connected if restarting => {
                "is restarting after a crash".to_owned()
            }
            ServerState::Starting | ServerState::Connected if self.ever_connected() => {
                "is reconnecting".to_owned()
            }
            ServerState::Starting | ServerState::Connected => "is still starting".to_owned(),
            ServerState::Failed { reason, retry_in } => {
                let what = if restarting {
                    "is restarting after a crash"
                } else if self.ever_connected() {
                    "failed to reconnect"
                } else {
                    "failed to start"
                };
                match retry_in {
                    Some(retry_in) => {
                        format!("{what}: {reason} (next attempt in {})", seconds(*retry_in))
                    }
                    None => format!("{what}: {reason}"),
                }
            }
            ServerState::Refused { .. } => format!("is {state}"),
            ServerState::Stopped => "is stopped".to_owned(),
            ServerState::Disabled => "is disabled in the config".to_owned(),
        };
        let why = if waited {
            format!("{why} (waited {})", seconds(self.config.timeout))
        } else {
            why
        };
        Unavailable::Down {
            server: self.name.clone(),
            why,
        }
    }

    pub fn connection(&self) -> Option<Arc<Connection>> {
        read(&self.connection).clone()
    }

    pub fn lists(&self) -> Arc<ServerLists> {
        read(&self.lists).clone()
    }

    /// Whether the live connection speaks the modern generation (2026-07-28 or newer).
    pub fn is_modern(&self) -> bool {
        self.connection()
            .is_some_and(|connection| connection.is_modern())
    }

    /// Follows updates of `uri` on the server's `subscriptions/listen` stream (modern servers);
    /// returns once the stream follows it, or with an error after the server's timeout.
    pub async fn watch_resource(&self, uri: &str) -> Result<(), String> {
        self.watched
            .send_if_modified(|uris| uris.insert(uri.to_owned()));
        let mut listening = self.listening.subscribe();
        tokio::time::timeout(
            self.config.timeout,
            listening.wait_for(|uris| uris.contains(uri)),
        )
        .await
        .map_err(|_| {
            "the server's subscriptions/listen stream did not take the resource".to_owned()
        })?
        .map(drop)
        .map_err(|error| error.to_string())
    }

    /// Stops following updates of `uri`.
    pub fn unwatch_resource(&self, uri: &str) {
        self.watched.send_if_modified(|uris| uris.remove(uri));
    }

    /// Lists everything again on the live connection (discovery's `force_refresh`).
    pub async fn relist(&self) -> Result<(), String> {
        let connection = self
            .connection()
            .ok_or_else(|| format!("not connected ({})", self.state()))?;
        let lists = supervisor::list_everything(&connection, self.config.timeout)
            .await
            .map_err(|error| error.to_string())?;
        if self.connection().is_some() {
            self.set_lists(lists);
        }
        Ok(())
    }

    /// Closes the live connection and connects again (a stdio server is a new process); a
    /// server waiting to retry tries at once, one still connecting restarts once connected. A
    /// server not running (disabled, stopped) stays so.
    pub fn restart(&self) {
        // Kept when nobody waits: asked while connecting, the server restarts once connected.
        self.restart.notify_one();
    }

    /// A stdio server's last lines on stderr, oldest first (redacted).
    pub fn stderr_tail(&self) -> Vec<String> {
        crate::sync::lock(&self.stderr).iter().cloned().collect()
    }

    /// Stops the supervisor; the connection closes and the child process ends.
    pub fn stop(&self) {
        self.cancel.cancel();
    }

    fn set_state(&self, state: ServerState) {
        if state.is_settled() {
            self.first_attempt_done.store(true, Ordering::Release);
        }
        if state == ServerState::Connected {
            self.ever_connected.store(true, Ordering::Release);
        }
        self.state.send_replace(state);
    }

    /// Whether a server has been connected at some point.
    fn ever_connected(&self) -> bool {
        self.ever_connected.load(Ordering::Acquire)
    }

    /// Says whether the next connection attempt is a restart after a live connection ended.
    fn set_restarting(&self, restarting: bool) {
        self.restarting.store(restarting, Ordering::Release);
        if restarting {
            self.restarts.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How often a live connection ended and the server was (or is being) connected again.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    fn set_connection(&self, connection: Option<Connection>) {
        *write(&self.connection) = connection.map(Arc::new);
    }

    fn set_lists(&self, lists: ServerLists) {
        *write(&self.lists) = Arc::new(lists);
    }

    fn update_lists(&self, update: impl FnOnce(&mut ServerLists)) {
        let mut guard = write(&self.lists);
        let mut lists = ServerLists::clone(&guard);
        update(&mut lists);
        *guard = Arc::new(lists);
    }
}
