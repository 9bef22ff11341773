//! The router: the one place that knows which server owns a name. It holds the configured
//! [`Downstream`]s and the current [`Catalog`], forwards requests to their owners with the
//! original names, and carries what flows back — progress with the client's own token, log
//! messages, resource updates, list changes, and server-to-client requests — to the client
//! session that caused it. Built-in tools are dispatched here too, before catalog resolution,
//! and every tool call, prompt get and resource read is handed to the activity recorder. It
//! knows nothing of HTTP, stdio framing or SQL.
//!
//! This file is the router's face: [`Router`], the parts it holds, and the calls that only
//! hand over to one part. The parts below it own their state — the servers (`fleet`), the
//! operator's settings (`settings`), the catalog and its cache (`catalog`), local or App mode
//! (`source`), client sessions (`session`), progress (`progress`), calls in flight
//! (`attribution`), roots (`roots`), parked calls (`parked`), core-task owners
//! (`task_owners`), the other replicas of a fleet (`peers`). The work that needs several of them is done above, one file per kind:
//! `forward`, `relay` (every `tools/call` to a server), `requests`, `subscriptions`, `events`, `tasks`, `core_tasks`,
//! `exposure` (what `tools/list` shows, and the meta-tools of search mode).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::Duration;

use rmcp::model::{Implementation, Prompt, Resource, ResourceTemplate, ServerConfig, Tool};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::builtin::Builtins;
use crate::catalog::{Catalog, page};
use crate::config::{Config, TokenExposures, ToolExposure, ToolHints};
use crate::control::activity::Recorder;
use crate::control::app::AppMode;
use crate::control::{ControlPlane, Settings};
use crate::downstream::{Downstream, Events};
use crate::ids::ServerIds;
use crate::names::PrefixMode;
use crate::sync::{lock, read, write};

mod attribution;
mod catalog;
mod core_tasks;
mod error;
mod events;
mod exposure;
mod fleet;
mod forward;
mod observed;
pub mod parked;
mod peers;
mod progress;
mod relay;
mod requests;
mod roots;
mod session;
mod settings;
mod source;
mod subscriptions;
mod task_owners;
mod tasks;

pub use error::{ParkedError, RouteError};
pub use exposure::is_pinned;
pub use fleet::{Credential, FLEET_SERVER_HEADER, FLEET_SERVERS_ROUTE, FleetOwner};
pub use observed::Operation;
pub use relay::Relayed;
pub use session::{
    Caller, HTTP_PRINCIPAL_PREFIX, HttpTrace, Interests, MAX_ACTIVATED, Session, method_of,
};
pub use settings::SETTINGS_RECHECK;

use attribution::InFlight;
use catalog::CatalogState;
use fleet::Fleet;
use parked::ParkedCalls;
use peers::Peers;
use progress::Progress;
use roots::Roots;
use session::Sessions;
use settings::Visibility;
use source::Source;
use task_owners::Owners;

/// The control-plane parts the router uses: the built-in tools, the activity recorder, the
/// workspace this process is pinned to (`--workspace`), if any, and how often the settings are
/// re-checked when the store announces changes ([`SETTINGS_RECHECK`] by default).
pub struct Control {
    pub builtins: Builtins,
    pub recorder: Recorder,
    pub pinned_workspace: Option<String>,
    pub settings_recheck: Duration,
}

/// The router: its parts (see above), and the tracker and token of the tasks it starts.
pub struct Router {
    mode: PrefixMode,
    page_size: usize,
    /// `--tool-exposure`: what `tools/list` shows where neither a token nor the workspace
    /// decides (`exposure`).
    exposure: OnceLock<ToolExposure>,
    /// The exposures the config's `authTokens` entries ask for, replaced with each config.
    token_exposures: RwLock<TokenExposures>,
    /// The workspace's and the tokens' exposures the last catalog was installed with: a change
    /// of either changes sessions' `tools/list` while the catalog may stay the same.
    exposures_listed: Mutex<Option<(Option<ToolExposure>, TokenExposures)>>,
    /// Each configured server's tool hints, kept apart from the servers: a change of hints
    /// rebuilds the catalog and restarts no server.
    tool_hints: RwLock<HashMap<String, ToolHints>>,
    fleet: Arc<Fleet>,
    visibility: Visibility,
    catalog: CatalogState,
    /// App mode once [`Router::set_app`] ran; local mode until then.
    source: OnceLock<Source>,
    sessions: Sessions,
    progress: Progress,
    in_flight: InFlight,
    roots: Arc<Roots>,
    /// Modern clients' calls to legacy servers that wait for the clients' input.
    parked: Arc<ParkedCalls>,
    /// Who created each 2025-11-25 task, for its status notifications (`core_tasks`).
    core_task_owners: Owners,
    /// The other replicas, in a fleet.
    peers: Peers,
    builtins: Builtins,
    recorder: Recorder,
    tracker: TaskTracker,
    cancel: CancellationToken,
    this: Weak<Router>,
}

impl Router {
    pub fn new(
        mode: PrefixMode,
        page_size: usize,
        ids: ServerIds,
        control: Control,
        tracker: TaskTracker,
        cancel: CancellationToken,
    ) -> Arc<Router> {
        let Control {
            builtins,
            recorder,
            pinned_workspace,
            settings_recheck,
        } = control;
        let plane = builtins.control().clone();
        let fleet = Arc::new(Fleet::new(ids, tracker.clone(), cancel.clone()));
        Arc::new_cyclic(|this| Router {
            mode,
            page_size,
            exposure: OnceLock::new(),
            token_exposures: RwLock::default(),
            exposures_listed: Mutex::default(),
            tool_hints: RwLock::default(),
            fleet: fleet.clone(),
            visibility: Visibility::new(plane.clone(), pinned_workspace, settings_recheck),
            catalog: CatalogState::new(plane, tracker.clone()),
            source: OnceLock::new(),
            sessions: Sessions::default(),
            progress: Progress::new(tracker.clone()),
            in_flight: InFlight::default(),
            roots: Arc::new(Roots::new(fleet, tracker.clone())),
            parked: Arc::new(ParkedCalls::new(tracker.clone(), cancel.clone())),
            core_task_owners: Owners::default(),
            peers: Peers::default(),
            builtins,
            recorder,
            tracker,
            cancel,
            this: this.clone(),
        })
    }

    /// The built-in tools' runtime (its mailer, for the console's test e-mail).
    pub fn builtins(&self) -> &Builtins {
        &self.builtins
    }

    /// The calls parked for modern clients' input (`--parked-call-ttl` sets their lifetime).
    pub fn parked(&self) -> &ParkedCalls {
        &self.parked
    }

    /// Where the built-in tools' data, the settings and the activity log live.
    pub fn control_plane(&self) -> &Arc<dyn ControlPlane> {
        self.builtins.control()
    }

    /// Switches this router to App mode: servers and catalog follow `app` from now on (see
    /// [`Router::apply_app`]).
    pub fn set_app(&self, app: Arc<AppMode>) {
        let _ = self.source.set(Source::App(app));
    }

    /// App mode's state, when in App mode.
    pub fn app(&self) -> Option<&Arc<AppMode>> {
        self.source().app()
    }

    fn source(&self) -> &Source {
        self.source.get().unwrap_or(&source::LOCAL)
    }

    /// This process will serve in a fleet: servers of fleet scope wait for the replica that runs
    /// them (see [`Router::join_fleet`]) instead of starting here. Called before the first
    /// config is applied.
    pub fn expect_fleet(&self) {
        self.fleet.expect_fleet();
    }

    /// Where a server of fleet scope runs, once known (`None` for other servers).
    pub fn fleet_owner(&self, server: &str) -> Option<FleetOwner> {
        self.fleet.owner(server)
    }

    /// Applies a (new) configuration: starts added servers, stops removed ones, restarts changed
    /// ones, and leaves the rest alone.
    pub fn apply_config(&self, config: &Config) {
        self.keep_presentation(config);
        self.fleet.apply(config, &HashMap::new(), self.events());
        self.rebuild_catalog();
    }

    /// Applies the App's current server list (servers started, stopped, restarted as needed) with
    /// the local config file's other settings, and rebuilds the catalog from the App's lists.
    /// Servers keep the App's UUIDs and slugs.
    pub fn apply_app(&self) {
        let Source::App(app) = self.source() else {
            return;
        };
        let servers = app.servers();
        let mut slugs = HashMap::new();
        for identity in &servers.identities {
            self.fleet.ids().set(&identity.name, &identity.uuid);
            slugs.insert(
                identity.name.clone(),
                identity
                    .slug
                    .clone()
                    .unwrap_or_else(|| identity.uuid.clone()),
            );
        }
        let config = app.config();
        self.keep_presentation(&config);
        self.fleet.apply(&config, &slugs, self.events());
        self.rebuild_catalog();
    }

    /// What `config` says about how tools are shown rather than how servers run: the tokens'
    /// exposures and the servers' tool hints.
    fn keep_presentation(&self, config: &Config) {
        *write(&self.token_exposures) = config.token_exposures.clone();
        *write(&self.tool_hints) = config
            .servers
            .iter()
            .map(|(name, server)| (name.clone(), server.tool_hints.clone()))
            .collect();
    }

    /// Rebuilds the catalog from the visible servers' current lists and tells clients what
    /// changed.
    fn rebuild_catalog(&self) {
        let _rebuilding = self.catalog.rebuilding();
        let servers = self.visible_servers();
        let lists: Vec<_> = servers.iter().map(|server| server.lists()).collect();
        self.catalog.cache(&servers, &lists);
        let settings = self.settings();
        let catalog = self.source().build(
            &servers,
            &lists,
            &settings,
            &read(&self.tool_hints),
            self.mode,
        );
        let exposures = (
            self.visibility.active_exposure(),
            read(&self.token_exposures).clone(),
        );
        let exposures_changed = lock(&self.exposures_listed)
            .replace(exposures.clone())
            .is_some_and(|listed| listed != exposures);
        self.catalog.install(
            catalog,
            self.builtin_tools(),
            &self.sessions,
            exposures_changed,
        );
    }

    fn events(&self) -> Arc<dyn Events> {
        // `self` is alive, so the weak self-reference upgrades.
        let this: Arc<Router> = self.this.upgrade().expect("router is alive while in use");
        this
    }

    /// Stops every server for good, for shutdown: a request still waiting for one gets an error
    /// saying the proxy is shutting down (`RouteError::ShuttingDown`) instead of no answer.
    pub fn stop_servers(&self) {
        self.fleet.stop_all();
    }

    /// A request's failure as its client hears of it: after [`Router::stop_servers`], a
    /// connection that closed under it closed because the proxy is shutting down.
    fn during_shutdown(&self, error: RouteError) -> RouteError {
        match error {
            RouteError::ConnectionLost { server, method }
            | RouteError::Transport { server, method, .. }
                if self.fleet.is_stopped() =>
            {
                RouteError::ShuttingDown { server, method }
            }
            other => other,
        }
    }

    /// The configured servers, in name order.
    pub fn servers(&self) -> Vec<Arc<Downstream>> {
        self.fleet.all()
    }

    /// Activity entries the recorder's full queue dropped.
    pub fn activity_dropped(&self) -> u64 {
        self.recorder.dropped()
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.get()
    }

    /// The server ids, for making sure a new config's servers have one before it is applied.
    pub fn ids(&self) -> &ServerIds {
        self.fleet.ids()
    }

    /// Sets how long a client's first look waits for servers still connecting for the first
    /// time (`--startup-wait`).
    pub fn set_startup_wait(&self, wait: Duration) {
        self.fleet.set_startup_wait(wait);
    }

    pub fn startup_wait(&self) -> Duration {
        self.fleet.startup_wait()
    }

    /// The visible servers in their first connection attempt whose startup wait has not run
    /// out: what a first look waits for.
    pub fn first_attempts(&self) -> Vec<Arc<Downstream>> {
        self.fleet.first_attempts(self.visible_servers())
    }

    /// Waits until every visible server's first connection attempt has ended (connected, failed,
    /// refused) or its startup wait ran out, so that what a client sees first is complete. At
    /// once when that is already so (one atomic read on every later call).
    pub async fn await_first_attempts(&self) {
        self.fleet
            .await_first_attempts(|| self.visible_servers())
            .await;
    }

    /// [`Router::await_first_attempts`] for a client's first look (`initialize`,
    /// `server/discover`, the lists). Not in App mode: there the catalog comes whole from the App
    /// (or its saved copy), and only calls wait for the servers they need.
    pub async fn await_first_contact(&self) {
        if self.source().first_look_waits() {
            self.await_first_attempts().await;
        }
    }

    /// Keeps `session` informed of list changes, logs and resource updates.
    pub fn register_session(&self, session: &Arc<Session>) {
        self.sessions.register(session);
    }

    /// Makes `session` the client whose roots are the servers' roots: the one stdio client.
    pub fn set_roots_owner(&self, session: &Arc<Session>) {
        self.roots.set_owner(session);
    }

    /// The client of `session` initialized, or said its roots changed (see `roots`).
    pub fn refresh_client_roots(&self, session: &Arc<Session>) {
        self.roots.refresh(session, self.cancel.clone());
    }

    /// The operator's settings in force.
    pub fn settings(&self) -> Arc<Settings> {
        self.visibility.settings()
    }

    /// Reads the settings from the control plane and applies them (catalog rebuilt, clients
    /// told what changed).
    pub async fn reload_settings(&self) {
        if self.visibility.reload().await {
            self.rebuild_catalog();
        }
    }

    /// Polls the control plane's settings version and applies changes, until shutdown.
    pub fn watch_settings(&self) {
        let Some(router) = self.this.upgrade() else {
            return;
        };
        let cancel = self.cancel.child_token();
        self.tracker.spawn(async move {
            router
                .visibility
                .watch(cancel, || router.rebuild_catalog())
                .await;
        });
    }

    /// The servers that are on: not disabled in the config or by the operator, and in the
    /// workspace in force.
    pub fn visible_servers(&self) -> Vec<Arc<Downstream>> {
        self.visibility.visible(&self.fleet)
    }

    /// Whether a server's tool passes the config's filter and is not disabled by the operator.
    pub fn tool_visible(&self, server: &Downstream, original: &str) -> bool {
        self.visibility
            .tool_visible(server, original, || self.catalog())
    }

    /// The built-in tools that are on, in list order.
    pub fn builtin_tools(&self) -> Vec<Tool> {
        self.visibility.builtin_tools()
    }

    /// What we announce in `initialize`: what the servers behind us support, and their combined
    /// instructions.
    pub fn info(&self) -> ServerConfig {
        let mut implementation = Implementation::new("PluggedinMCP", env!("CARGO_PKG_VERSION"));
        implementation.title = Some("plugged.in MCP Proxy".to_owned());
        let mut info =
            ServerConfig::new(self.fleet.capabilities()).with_server_info(implementation);
        info.instructions = fleet::instructions(&self.visible_servers());
        info
    }

    pub fn list_tools(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<Tool>, Option<String>), RouteError> {
        if cursor.is_none() {
            self.tools_listed();
        }
        self.list_tools_of(&self.catalog(), cursor)
    }

    /// A client asked for the tool list (its first page). In App mode the App's tool list is
    /// read again at the next refresh, as the original read it for every `tools/list`.
    pub fn tools_listed(&self) {
        self.source().tools_listed();
    }

    /// A page of `catalog`'s tools, as [`Router::list_tools`] gives it when `catalog` is current
    /// (the encoded-page cache of `upstream::tool_pages` keys its pages by catalog).
    pub fn list_tools_of(
        &self,
        catalog: &Catalog,
        cursor: Option<&str>,
    ) -> Result<(Vec<Tool>, Option<String>), RouteError> {
        Ok(page(&catalog.tools, cursor, self.page_size)?)
    }

    /// The largest number of items on one page of a list (`--page-size`; at least 1).
    pub fn page_size(&self) -> usize {
        self.page_size.max(1)
    }

    pub fn list_prompts(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<Prompt>, Option<String>), RouteError> {
        Ok(page(&self.catalog().prompts, cursor, self.page_size)?)
    }

    /// The servers' resources, then in local mode the library's documents, paged together by
    /// one offset cursor (see `source`).
    pub async fn list_resources(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<Resource>, Option<String>), RouteError> {
        self.source()
            .list_resources(&self.catalog(), cursor, self.page_size, &self.builtins)
            .await
    }

    pub fn list_templates(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<ResourceTemplate>, Option<String>), RouteError> {
        Ok(page(&self.catalog().templates, cursor, self.page_size)?)
    }
}
