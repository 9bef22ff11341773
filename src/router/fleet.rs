//! The fleet: the configured servers by name, their stable ids, and their first connection
//! attempts. Applying a config, or the App's server list, starts added servers, stops removed
//! ones and restarts changed ones ([`Fleet::apply`]); what the servers support together is what
//! the proxy announces ([`Fleet::capabilities`], [`instructions`]). Which servers are visible is
//! the settings' business (`settings`), the catalog built from their lists `catalog`'s.
//!
//! In a fleet, a server of fleet scope (`"scope": "fleet"`) runs on the one replica that owns
//! it (`owners`): there it is started as configured, and every other replica reaches it through
//! the owner, as a Streamable HTTP server at the owner's route for it. Until its owner is known
//! it is configured but not started (starting, as far as calls and first looks can tell).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rmcp::model::{
    PromptsCapability, ResourcesCapability, ServerCapabilities, TASKS_EXTENSION_ID, ToolsCapability,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::error::RouteError;
use crate::config::{Config, Protocol, Scope, ServerConfig, TransportConfig};
use crate::downstream::{self, Downstream, Events, ServerState};
use crate::ids::ServerIds;
use crate::sync::{lock, read, write};

/// The configured servers, and how long a client's first look waits for them.
pub(super) struct Fleet {
    servers: RwLock<BTreeMap<String, Arc<Downstream>>>,
    ids: ServerIds,
    /// How long a client's first look waits for servers in their first connection attempt
    /// (`--startup-wait`); zero answers at once.
    startup_wait: Mutex<Duration>,
    /// Set once no visible server is in a first connection attempt still worth waiting for: the
    /// first-look wait is then one atomic read. Cleared when servers are added.
    first_contact_done: AtomicBool,
    /// Set by [`Fleet::stop_all`] at shutdown: no server starts again.
    stopped: AtomicBool,
    tracker: TaskTracker,
    cancel: CancellationToken,
    scoping: Mutex<Scoping>,
}

/// Where a server of fleet scope runs, as this replica knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FleetOwner {
    /// This replica runs it.
    Here { replica: i64 },
    /// Replica `replica` does, at `url`.
    There { replica: i64, url: String },
}

/// Servers of fleet scope: whether this process is in a fleet, who runs each, and what was
/// applied last (applied again when an owner changes).
#[derive(Default)]
struct Scoping {
    /// In a fleet, or about to join one: servers of fleet scope wait for their owner.
    in_fleet: bool,
    owners: HashMap<String, FleetOwner>,
    /// The header value that lets this replica reach another's route for a server.
    credential: Option<Credential>,
    /// Servers configured but not started, waiting for their owner to be known.
    waiting: std::collections::HashSet<String>,
    last: Option<Applied>,
}

/// Makes the value of [`FLEET_SERVER_HEADER`] for a server, by its name.
pub type Credential = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// The header that carries a replica's credential to another's route for one of its servers.
pub const FLEET_SERVER_HEADER: &str = "pluggedin-fleet-server";

/// The route under which a replica serves its servers of fleet scope to the others, one
/// server each, as `{FLEET_SERVERS_ROUTE}/{name}/mcp`.
pub const FLEET_SERVERS_ROUTE: &str = "/fleet/servers";

#[derive(Clone)]
struct Applied {
    config: Config,
    slugs: HashMap<String, String>,
    events: Arc<dyn Events>,
}

impl Fleet {
    pub(super) fn new(ids: ServerIds, tracker: TaskTracker, cancel: CancellationToken) -> Fleet {
        Fleet {
            servers: RwLock::default(),
            ids,
            startup_wait: Mutex::new(Duration::ZERO),
            first_contact_done: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            tracker,
            cancel,
            scoping: Mutex::default(),
        }
    }

    /// This process serves in a fleet: servers of fleet scope wait for an owner from now on
    /// (called before the first config is applied, so none starts on every replica at once).
    pub(super) fn expect_fleet(&self) {
        lock(&self.scoping).in_fleet = true;
    }

    /// Sets how this replica proves itself to the others' routes for their servers.
    pub(super) fn set_credential(&self, credential: Credential) {
        lock(&self.scoping).credential = Some(credential);
    }

    /// The servers of fleet scope in the config applied last, by name.
    pub(super) fn fleet_scoped(&self) -> Vec<String> {
        let scoping = lock(&self.scoping);
        if !scoping.in_fleet {
            return Vec::new();
        }
        scoping
            .last
            .iter()
            .flat_map(|applied| &applied.config.servers)
            .filter(|(_, server)| server.scope == Scope::Fleet && !server.disabled)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Where a server of fleet scope runs, if known (`None` for others, and outside a fleet).
    pub(super) fn owner(&self, name: &str) -> Option<FleetOwner> {
        lock(&self.scoping).owners.get(name).cloned()
    }

    /// Records who runs the servers of fleet scope; when that changed for any, the last config
    /// is applied again, so that servers start here, stop here, or are reached elsewhere. Says
    /// whether anything changed.
    pub(super) fn set_owners(&self, owners: HashMap<String, FleetOwner>) -> bool {
        let applied = {
            let mut scoping = lock(&self.scoping);
            if scoping.owners == owners {
                return false;
            }
            for (name, owner) in &owners {
                if scoping.owners.get(name) != Some(owner) {
                    match owner {
                        FleetOwner::Here { .. } => {
                            tracing::info!(server = %name, "this replica runs it for the fleet");
                        }
                        FleetOwner::There { replica, url } => tracing::info!(
                            server = %name,
                            replica,
                            url = %url,
                            "another replica runs it for the fleet; calls go there"
                        ),
                    }
                }
            }
            scoping.owners = owners;
            scoping.last.clone()
        };
        if let Some(applied) = applied {
            self.apply(&applied.config, &applied.slugs, applied.events);
        }
        true
    }

    /// What server `name` is run as here: as configured, reached through the replica that runs
    /// it (fleet scope, another owner), or nothing yet (fleet scope, owner unknown).
    fn effective(
        &self,
        scoping: &Scoping,
        name: &str,
        config: &ServerConfig,
    ) -> Option<ServerConfig> {
        if config.scope != Scope::Fleet || config.disabled || !scoping.in_fleet {
            return Some(config.clone());
        }
        match scoping.owners.get(name)? {
            FleetOwner::Here { .. } => Some(config.clone()),
            FleetOwner::There { url, .. } => {
                let mut url = url::Url::parse(url).ok()?;
                url.path_segments_mut()
                    .ok()?
                    .pop_if_empty()
                    .extend(FLEET_SERVERS_ROUTE.trim_start_matches('/').split('/'))
                    .push(name)
                    .push("mcp");
                let credential = scoping.credential.as_ref()?;
                let headers = [(
                    FLEET_SERVER_HEADER.to_owned(),
                    crate::secret::Secret::new(credential(name)),
                )]
                .into();
                // The hop is another proxy: a stateful session there, as a legacy client's,
                // carries the server's questions back on its own streams. The owner applies
                // the server's own settings (its protocol, roots, OAuth); the replica that
                // reaches it keeps its filters and timeout.
                Some(ServerConfig {
                    transport: TransportConfig::StreamableHttp { url, headers },
                    protocol: Protocol::Legacy,
                    origin: crate::config::Origin::LocalFile,
                    oauth: Default::default(),
                    roots: Vec::new(),
                    ..config.clone()
                })
            }
        }
    }

    /// Applies a (new) configuration: starts added servers (their events go to `events`), stops
    /// removed ones, restarts changed ones, and leaves the rest alone. `given_slugs` names some
    /// servers' slugs (the App's own, so `<slug>__` means what it means in the App).
    pub(super) fn apply(
        &self,
        config: &Config,
        given_slugs: &HashMap<String, String>,
        events: Arc<dyn Events>,
    ) {
        let names: Vec<&str> = config.servers.keys().map(String::as_str).collect();
        let slugs: Vec<String> = crate::names::unique_slugs(names.iter().copied())
            .into_iter()
            .zip(&names)
            .map(|(slug, name)| given_slugs.get(*name).cloned().unwrap_or(slug))
            .collect();
        let mut started = Vec::new();
        let security = Arc::new(config.security.clone());
        {
            let mut scoping = lock(&self.scoping);
            scoping.last = Some(Applied {
                config: config.clone(),
                slugs: given_slugs.clone(),
                events: events.clone(),
            });
            let mut servers = write(&self.servers);
            if self.is_stopped() {
                return;
            }
            servers.retain(|name, downstream| {
                let keep = config.servers.contains_key(name);
                if !keep {
                    tracing::info!(server = %name, "removed from the config, stopping");
                    downstream.stop();
                }
                keep
            });
            for ((name, configured), slug) in config.servers.iter().zip(slugs) {
                let effective = self.effective(&scoping, name, configured);
                let waits = effective.is_none();
                let server_config = effective.unwrap_or_else(|| configured.clone());
                let server_config = &server_config;
                let waited = if waits {
                    !scoping.waiting.insert(name.clone())
                } else {
                    scoping.waiting.remove(name)
                };
                if let Some(existing) = servers.get(name) {
                    if waits == waited
                        && runs_alike(&existing.config, server_config)
                        && existing.slug == slug
                        && existing.security == security
                        && existing.uuid == self.ids.get(name)
                    {
                        continue;
                    }
                    tracing::info!(server = %name, "changed in the config, restarting");
                    existing.stop();
                }
                let downstream = Arc::new(Downstream::new(
                    name.clone(),
                    slug,
                    self.ids.get(name),
                    server_config.clone(),
                    security.clone(),
                    self.cancel.child_token(),
                ));
                servers.insert(name.clone(), downstream.clone());
                if !waits {
                    started.push(downstream);
                }
            }
            scoping
                .waiting
                .retain(|name| config.servers.contains_key(name));
        }
        if !started.is_empty() {
            self.first_contact_done.store(false, Ordering::Release);
        }
        for downstream in started {
            downstream::spawn(downstream, events.clone(), &self.tracker);
        }
    }

    /// Stops every server for good (shutdown): their connections close, their processes end,
    /// and a later config or App list starts none.
    pub(super) fn stop_all(&self) {
        // Under the lock that `apply` takes: no server is started after this.
        let servers = write(&self.servers);
        self.stopped.store(true, Ordering::Release);
        for server in servers.values() {
            server.stop();
        }
    }

    /// Whether [`Fleet::stop_all`] ran.
    pub(super) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// The configured servers, in name order.
    pub(super) fn all(&self) -> Vec<Arc<Downstream>> {
        read(&self.servers).values().cloned().collect()
    }

    /// The server named `name`; not connected (stopped) when there is none.
    pub(super) fn server(&self, name: &str) -> Result<Arc<Downstream>, RouteError> {
        read(&self.servers)
            .get(name)
            .cloned()
            .ok_or_else(|| RouteError::NotConnected {
                server: name.to_owned(),
                state: ServerState::Stopped,
            })
    }

    /// The server with this (App) UUID.
    pub(super) fn by_uuid(&self, uuid: &str) -> Option<Arc<Downstream>> {
        read(&self.servers)
            .values()
            .find(|server| server.uuid.eq_ignore_ascii_case(uuid))
            .cloned()
    }

    /// The configured name and UUID of a server, for the activity log.
    pub(super) fn identity(&self, server: &str) -> (String, String) {
        let uuid = read(&self.servers)
            .get(server)
            .map(|downstream| downstream.uuid.clone())
            .unwrap_or_else(|| "unknown".to_owned());
        (server.to_owned(), uuid)
    }

    pub(super) fn ids(&self) -> &ServerIds {
        &self.ids
    }

    pub(super) fn set_startup_wait(&self, wait: Duration) {
        *lock(&self.startup_wait) = wait;
    }

    pub(super) fn startup_wait(&self) -> Duration {
        *lock(&self.startup_wait)
    }

    /// Those of `visible` in their first connection attempt whose startup wait has not run out.
    pub(super) fn first_attempts(&self, visible: Vec<Arc<Downstream>>) -> Vec<Arc<Downstream>> {
        let wait = self.startup_wait();
        let now = Instant::now();
        visible
            .into_iter()
            .filter(|server| !server.first_attempt_done() && server.created() + wait > now)
            .collect()
    }

    /// Waits until every visible server's first connection attempt has ended (connected, failed,
    /// refused) or its startup wait ran out. At once when that is already so (one atomic read on
    /// every later call, before `visible` is asked for).
    pub(super) async fn await_first_attempts(
        &self,
        visible: impl FnOnce() -> Vec<Arc<Downstream>>,
    ) {
        if self.first_contact_done.load(Ordering::Acquire) {
            return;
        }
        let pending = self.first_attempts(visible());
        if pending.is_empty() {
            self.first_contact_done.store(true, Ordering::Release);
            return;
        }
        let wait = self.startup_wait();
        futures::future::join_all(pending.iter().map(|server| {
            tokio::time::timeout_at((server.created() + wait).into(), server.first_attempt())
        }))
        .await;
    }

    /// What the proxy announces in `initialize`: what the servers behind it support. Servers
    /// that have not connected yet may still bring prompts and resources, so those stay
    /// announced. The tasks extension (2026-07-28) is announced while a server connected with
    /// that revision announces it; tasks pass through within it (`tasks`).
    pub(super) fn capabilities(&self) -> ServerCapabilities {
        let servers = self.all();
        let mut capabilities = ServerCapabilities::default();
        let mut tools = ToolsCapability::default();
        tools.list_changed = Some(true);
        capabilities.tools = Some(tools);
        let pending = servers.iter().any(|server| {
            !matches!(
                server.state(),
                ServerState::Connected | ServerState::Disabled
            )
        });
        let connected: Vec<_> = servers
            .iter()
            .filter_map(|server| server.connection())
            .collect();
        // Prompts are always announced: the proxy's own `pluggedin_proxy_capabilities` is one.
        {
            let mut prompts = PromptsCapability::default();
            prompts.list_changed = Some(true);
            capabilities.prompts = Some(prompts);
        }
        // Resources are always announced: the document library serves its documents as
        // resources, whatever the servers offer.
        {
            let mut resources = ResourcesCapability::default();
            resources.list_changed = Some(true);
            resources.subscribe = Some(
                connected.iter().any(|c| {
                    c.capabilities
                        .resources
                        .as_ref()
                        .is_some_and(|r| r.subscribe == Some(true))
                }) || pending,
            );
            capabilities.resources = Some(resources);
        }
        if pending
            || connected
                .iter()
                .any(|c| c.capabilities.completions.is_some())
        {
            capabilities.completions = Some(Default::default());
        }
        if pending || connected.iter().any(|c| c.capabilities.logging.is_some()) {
            capabilities.logging = Some(Default::default());
        }
        if connected
            .iter()
            .any(|connection| connection.is_modern() && connection.capabilities.supports_tasks())
        {
            capabilities
                .extensions
                .get_or_insert_with(Default::default)
                .insert(TASKS_EXTENSION_ID.to_owned(), Default::default());
        }
        capabilities
    }
}

/// The combined instructions of `servers`: each server's configured ones, then what the server
/// said.
pub(super) fn instructions(servers: &[Arc<Downstream>]) -> Option<String> {
    let mut text = String::new();
    for server in servers {
        let configured = server
            .config
            .instructions
            .iter()
            .flatten()
            .map(|m| m.text.as_str());
        let own = server.connection().and_then(|c| c.instructions.clone());
        let parts: Vec<&str> = configured.chain(own.as_deref()).collect();
        if parts.is_empty() {
            continue;
        }
        text.push_str(&format!(
            "## {} (tools prefixed {}__)\n",
            server.name, server.slug
        ));
        for part in parts {
            text.push_str(part.trim());
            text.push('\n');
        }
        text.push('\n');
    }
    let text = text.trim_end();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Whether a server configured as `running` is, as configured in `wanted`, still the server it
/// runs: every setting alike but its tool hints, which only change how the catalog shows its
/// tools (the router keeps them apart), so editing them restarts nothing.
fn runs_alike(running: &ServerConfig, wanted: &ServerConfig) -> bool {
    if running.tool_hints == wanted.tool_hints {
        return running == wanted;
    }
    let mut wanted = wanted.clone();
    wanted.tool_hints = running.tool_hints.clone();
    *running == wanted
}
