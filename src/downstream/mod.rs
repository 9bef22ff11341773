//! Downstream servers: one supervised connection per configured server. A [`Downstream`] holds
//! what the rest of the proxy may read about a server (its state, its live peer, its current
//! lists); the supervisor task owns the connection itself, spawns or dials it, re-lists on
//! `list_changed`, and restarts it with backoff when it fails. Events that must reach clients go
//! through the [`Events`] trait, so this module knows nothing of upstream sessions.

mod answers;
pub mod child;
mod connect;
mod handler;
pub mod oauth;
mod observe;
pub mod sse;
mod supervisor;
mod task_wire;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use rmcp::RoleClient;
use rmcp::model::{
    ClientResult, ErrorData, LoggingMessageNotificationParam, ProgressNotificationParam,
    ResourceUpdatedNotificationParam, ServerCapabilities, ServerRequest,
};
use rmcp::service::{Peer, RequestContext};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::catalog::ServerLists;
use crate::config::ServerConfig;
use crate::security::SecuritySettings;

pub use supervisor::spawn;

/// What the proxy must hear from downstream servers. Implemented by the router.
pub trait Events: Send + Sync + 'static {
    /// A server's lists or state changed: rebuild the catalog and tell clients.
    fn catalog_changed(&self);
    fn progress(&self, server: &str, params: ProgressNotificationParam);
    fn log(&self, server: &str, params: LoggingMessageNotificationParam);
    fn resource_updated(&self, server: &str, params: ResourceUpdatedNotificationParam);
    /// A 2025-11-25 server's `notifications/tasks/status`, raw (`tasks::legacy`).
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

/// A live connection's handle and what the server said about itself.
#[derive(Clone)]
pub struct Connection {
    pub peer: Peer<RoleClient>,
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
        let initial = if config.disabled {
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
        }
    }

    pub fn state(&self) -> ServerState {
        self.state.borrow().clone()
    }

    /// Changes in state, for waiting until a server settles.
    pub fn subscribe_state(&self) -> watch::Receiver<ServerState> {
        self.state.subscribe()
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

    /// Stops the supervisor; the connection closes and the child process ends.
    pub fn stop(&self) {
        self.cancel.cancel();
    }

    fn set_state(&self, state: ServerState) {
        self.state.send_replace(state);
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

/// Lock helpers: a panic while holding one of these short locks must not wedge the proxy.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
