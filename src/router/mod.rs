//! The router: the one place that knows which server owns a name. It holds the configured
//! [`Downstream`]s and the current [`Catalog`], forwards requests to their owners with the
//! original names, and carries what flows back — progress with the client's own token, log
//! messages, resource updates, list changes, and server-to-client requests — to the client
//! session that caused it. Built-in tools are dispatched here too, before catalog resolution,
//! and every tool call, prompt get and resource read is handed to the activity recorder. The
//! operator's settings (disabled servers and tools, the workspace) shape the catalog; they are
//! polled from the control plane. It knows nothing of HTTP, stdio framing or SQL.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use rmcp::model::{
    CallToolRequestParams, CancelledNotificationParam, ClientRequest, ClientResult,
    CompleteRequestParams, CompleteResult, ErrorCode, ErrorData, GetPromptRequestParams,
    GetPromptResult, Implementation, LoggingLevel, LoggingMessageNotificationParam,
    ProgressNotificationParam, ProgressToken, PromptsCapability, ReadResourceRequestParams,
    Reference, Request, RequestId, ResourceUpdatedNotificationParam, ResourcesCapability,
    ServerCapabilities, ServerConfig, ServerRequest, ServerResult, SetLevelRequestParams,
    SubscribeRequestParams, ToolsCapability, UnsubscribeRequestParams,
};
use rmcp::model::{
    GetExtensions, InputRequest, InputResponses, RequestMetaObject, ServerNotification,
};
use rmcp::service::{
    InboundStreamOrigin, OriginatingRequestId, Peer, PeerRequestOptions, RequestContext,
    ServiceError, SubscriptionContext, SubscriptionSink,
};
use rmcp::{RoleClient, RoleServer};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::builtin::{self, Builtins};
use crate::catalog::{
    AppServerEntry, Catalog, InvalidCursor, Item, PromptRoute, ResolveError, ServerEntry, page,
};
use crate::config::{Config, ToolFilter};
use crate::control::activity::Recorder;
use crate::control::app::AppMode;
use crate::control::time::now_ms;
use crate::control::{Activity, ActivityAction, CachedServer, Settings, Workspace};
use crate::downstream::{self, Downstream, Events, ServerState};
use crate::ids::ServerIds;
use crate::names::PrefixMode;
use crate::sync::{lock, read, write};

mod core_tasks;
pub mod parked;
mod roots;
mod tasks;

/// How long a client may take to answer a server's sampling or elicitation request.
const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// How often a running proxy looks for settings changed by another process (the CLI). A single
/// indexed read; half a second feels immediate to a person at a terminal.
const SETTINGS_POLL: Duration = Duration::from_millis(500);

/// The control-plane parts the router uses: the built-in tools, the activity recorder, and the
/// workspace this process is pinned to (`--workspace`), if any.
pub struct Control {
    pub builtins: Builtins,
    pub recorder: Recorder,
    pub pinned_workspace: Option<String>,
}

/// Why a request could not be served. Converted to a JSON-RPC error in one place.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error("unknown resource \"{0}\"")]
    UnknownResource(String),
    /// A tool that exists but is not served: disabled, its server off, filtered out.
    #[error("tool \"{tool}\" {why}")]
    NotServed { tool: String, why: String },
    #[error(transparent)]
    Cursor(#[from] InvalidCursor),
    #[error("server \"{server}\" is not connected ({state})")]
    NotConnected { server: String, state: ServerState },
    /// The server is starting, restarting, failed or refused; the text says which.
    #[error(transparent)]
    Unavailable(downstream::Unavailable),
    #[error("server \"{server}\" does not support {what}")]
    Unsupported { server: String, what: &'static str },
    #[error("server \"{server}\": {method} timed out after {}s", timeout.as_secs_f32())]
    Timeout {
        server: String,
        method: String,
        timeout: Duration,
    },
    #[error("server \"{server}\": connection lost during {method}")]
    ConnectionLost { server: String, method: String },
    #[error("server \"{server}\": {method} failed: {message}")]
    Transport {
        server: String,
        method: String,
        message: String,
    },
    /// The server's own JSON-RPC error, passed on with its code and message.
    #[error("{}", .0.message)]
    Downstream(ErrorData),
    #[error("server \"{server}\" answered {method} with an unexpected result")]
    UnexpectedResult { server: String, method: String },
    #[error("the request was cancelled")]
    Cancelled,
    /// The local document library failed (listing or reading documents as resources).
    #[error("the document library: {0}")]
    Library(String),
    /// A parked call (modern client, legacy server asking for input) could not go on.
    #[error(transparent)]
    Parked(#[from] parked::ParkedError),
    /// The plugged.in App could not answer what was asked (its sanitised error).
    #[error("{0}")]
    App(String),
}

impl From<downstream::Unavailable> for RouteError {
    fn from(unavailable: downstream::Unavailable) -> RouteError {
        match unavailable {
            downstream::Unavailable::Cancelled => RouteError::Cancelled,
            down => RouteError::Unavailable(down),
        }
    }
}

/// JSON-RPC `-32001`, the request-timeout code the official SDKs use.
const REQUEST_TIMEOUT: ErrorCode = ErrorCode(-32001);

/// Every error message that leaves for a client is redacted (`token=…`, `Bearer …`, …) and
/// bounded ([`crate::security::text::for_client`]): downstream servers and URLs can put secrets
/// into error text.
impl From<RouteError> for ErrorData {
    fn from(error: RouteError) -> ErrorData {
        let message = crate::security::text::for_client(&error.to_string());
        match error {
            RouteError::Downstream(mut data) => {
                data.message = message.into();
                data
            }
            RouteError::Parked(error) => error.into(),
            RouteError::Resolve(_) | RouteError::Cursor(_) | RouteError::NotServed { .. } => {
                ErrorData::invalid_params(message, None)
            }
            RouteError::UnknownResource(uri) => {
                ErrorData::resource_not_found(message, Some(serde_json::json!({ "uri": uri })))
            }
            RouteError::Unsupported { .. } => {
                ErrorData::new(ErrorCode::METHOD_NOT_FOUND, message, None)
            }
            RouteError::Timeout { .. } => ErrorData::new(REQUEST_TIMEOUT, message, None),
            RouteError::NotConnected { .. }
            | RouteError::Unavailable(_)
            | RouteError::ConnectionLost { .. }
            | RouteError::Transport { .. }
            | RouteError::UnexpectedResult { .. }
            | RouteError::Cancelled
            | RouteError::Library(_)
            | RouteError::App(_) => ErrorData::internal_error(message, None),
        }
    }
}

/// One client session as the router sees it: where to send notifications and server-to-client
/// requests, and what the client asked for (log level, resource subscriptions).
#[derive(Default)]
pub struct Session {
    peer: OnceLock<Peer<RoleServer>>,
    /// Progress for this session, sent one at a time by a task of its own, so it keeps order.
    outbox: OnceLock<tokio::sync::mpsc::UnboundedSender<Outgoing>>,
    initialized: AtomicBool,
    log_level: Mutex<Option<LoggingLevel>>,
    subscriptions: Mutex<HashSet<String>>,
    /// The client's roots as the proxy knows them (`roots`).
    roots: Mutex<roots::KeptRoots>,
    /// One `roots/list` to the client at a time; a server asking meanwhile waits for its answer.
    asking_roots: tokio::sync::Mutex<()>,
}

impl Session {
    /// Records the session's peer (on `initialize`).
    pub fn attach(&self, peer: &Peer<RoleServer>) {
        let _ = self.peer.set(peer.clone());
    }

    /// The client said `notifications/initialized`: notifications may flow now.
    pub fn mark_initialized(&self) {
        self.initialized.store(true, Ordering::Release);
    }

    fn live_peer(&self) -> Option<&Peer<RoleServer>> {
        self.peer
            .get()
            .filter(|peer| self.initialized.load(Ordering::Acquire) && !peer.is_transport_closed())
    }

    /// What the client asked for (log level, resource subscriptions) without a peer: a
    /// hibernating HTTP session keeps this, registered with the router, so its subscriptions
    /// still count (see `upstream::http::sessions`).
    pub fn dormant_copy(&self) -> Session {
        Session {
            log_level: Mutex::new(*lock(&self.log_level)),
            subscriptions: Mutex::new(lock(&self.subscriptions).clone()),
            ..Session::default()
        }
    }

    /// Takes over what a dormant copy remembers (a hibernated HTTP session waking up).
    pub fn resume_from(&self, dormant: &Session) {
        *lock(&self.log_level) = *lock(&dormant.log_level);
        lock(&self.subscriptions).extend(lock(&dormant.subscriptions).iter().cloned());
    }
}

/// Who is asking: the session, the request id and `_meta` of the client's request, and its
/// cancellation. The inspector commands call with no session.
pub struct Caller {
    pub session: Option<Arc<Session>>,
    pub request_id: Option<RequestId>,
    pub meta: RequestMetaObject,
    pub ct: CancellationToken,
    /// Who the caller is beyond one request, for binding parked calls to it: the bearer token
    /// over HTTP, the session on stdio (see `parked`).
    pub principal: Option<String>,
    /// Set on a parked call's own downstream request: where the server's questions go.
    pub park: Option<parked::Questions>,
}

impl Caller {
    pub fn from_context(session: &Arc<Session>, context: &RequestContext<RoleServer>) -> Caller {
        Caller {
            session: Some(session.clone()),
            request_id: Some(context.id.clone()),
            meta: context.meta.clone(),
            ct: context.ct.clone(),
            principal: None,
            park: None,
        }
    }

    /// A caller with no client behind it (the `call` command).
    pub fn detached() -> Caller {
        Caller {
            session: None,
            request_id: None,
            meta: RequestMetaObject::default(),
            ct: CancellationToken::new(),
            principal: None,
            park: None,
        }
    }
}

/// Where a downstream progress token leads.
struct ProgressRoute {
    session: Weak<Session>,
    token: ProgressToken,
    /// Notifications queued for the client and not yet sent; the answer waits for them.
    pending: Arc<Pending>,
}

/// A count of queued notifications, and a way to wait for it to reach zero.
#[derive(Default)]
struct Pending {
    count: AtomicUsize,
    idle: tokio::sync::Notify,
}

impl Pending {
    fn done(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    async fn flushed(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// Rounds of `InputRequiredResult` answered for a legacy client before the proxy gives up.
const MAX_INPUT_ROUNDS: usize = 8;

/// How long an answer waits for its progress notifications to reach the client first.
const PROGRESS_FLUSH_WAIT: Duration = Duration::from_secs(2);

/// A progress notification on its way to one session, in the order the server sent them.
type Outgoing = (ProgressNotificationParam, Arc<Pending>);

/// Progress kept for a request not registered yet (a fast server can report before our
/// forwarding task has recorded the route), this long at most.
const EARLY_PROGRESS_TTL: Duration = Duration::from_secs(10);
/// A bound on the early progress kept, so a server reporting on requests nobody follows cannot
/// grow it.
const EARLY_PROGRESS_MAX: usize = 10_000;

/// Where progress goes: routes by (server, downstream token), and what arrived before its route.
#[derive(Default)]
struct ProgressTable {
    routes: HashMap<(String, ProgressToken), ProgressRoute>,
    early: HashMap<(String, ProgressToken), (std::time::Instant, Vec<ProgressNotificationParam>)>,
}

/// A forwarded request in flight, for finding the session a server-to-client request belongs to.
struct InFlight {
    server: String,
    session: Weak<Session>,
    request_id: RequestId,
    /// The id the request has on the downstream connection.
    downstream_id: RequestId,
    /// A parked call's request (modern client): its questions go here, not to the session.
    park: Option<parked::Questions>,
    /// The log level a modern caller asked a modern server for on this request.
    logs_for_modern_caller: Option<LoggingLevel>,
}

/// Which client session a server-to-client request belongs to.
enum Attribution {
    Session(Arc<Session>, Option<RequestId>),
    /// The request came with a modern client's call: the question is parked with it.
    Parked(parked::Questions),
    /// No session has a request in flight on the server, and there is not exactly one session.
    Nobody,
    /// Several sessions have requests in flight on a server whose transport cannot say which one
    /// asked (stdio, legacy SSE): guessing could hand one client's question to another.
    Ambiguous(usize),
}

/// How long a server-to-client request waits for the call that caused it to be registered (the
/// server may ask before our forwarding task has recorded its call).
const ATTRIBUTION_WAIT: Duration = Duration::from_millis(200);

pub struct Router {
    mode: PrefixMode,
    page_size: usize,
    servers: RwLock<BTreeMap<String, Arc<Downstream>>>,
    /// The configured instructions and tool filters live in each server's config.
    catalog: RwLock<Arc<Catalog>>,
    sessions: Mutex<Vec<Weak<Session>>>,
    /// Modern clients' `subscriptions/listen` streams, by a local id.
    listeners: Mutex<HashMap<u64, SubscriptionSink>>,
    next_listener: AtomicU64,
    progress: Mutex<ProgressTable>,
    in_flight: Mutex<BTreeMap<u64, InFlight>>,
    next_in_flight: AtomicU64,
    /// Modern clients' calls to legacy servers that wait for the clients' input.
    parked: Arc<parked::ParkedCalls>,
    ids: ServerIds,
    control: Control,
    settings: RwLock<Arc<Settings>>,
    /// Held for a whole catalog rebuild: two servers connecting at once must not race, or the
    /// slower rebuild (from older lists) would replace the newer catalog.
    rebuilding: Mutex<()>,
    /// The lists last written to the catalog cache, by server UUID; with the store's copies
    /// once a name had to be looked up there (`expected_owner`).
    cached: Mutex<HashMap<String, Arc<crate::catalog::ServerLists>>>,
    /// Set once the store's catalog cache has been read into `cached` (only when needed: it is
    /// off the start-up path).
    stored_lists: tokio::sync::OnceCell<()>,
    /// App mode: where the server list and the catalog come from (`None`: local mode).
    app: OnceLock<Arc<AppMode>>,
    /// Who created each 2025-11-25 task, for its status notifications (`tasks::legacy`).
    core_task_owners: core_tasks::Owners,
    /// How long a client's first look waits for servers in their first connection attempt
    /// (`--startup-wait`); zero answers at once.
    startup_wait: Mutex<Duration>,
    /// Set once no visible server is in a first connection attempt still worth waiting for: the
    /// first-look wait is then one atomic read. Cleared when servers are added.
    first_contact_done: AtomicBool,
    /// The stdio client, whose roots are every server's roots (`roots`).
    roots_owner: OnceLock<Weak<Session>>,
    /// Servers that asked for roots: told when the stdio client's roots are known or change.
    roots_askers: Mutex<BTreeSet<String>>,
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
        Arc::new_cyclic(|this| Router {
            mode,
            page_size,
            servers: RwLock::default(),
            catalog: RwLock::default(),
            sessions: Mutex::default(),
            listeners: Mutex::default(),
            next_listener: AtomicU64::new(0),
            progress: Mutex::default(),
            in_flight: Mutex::default(),
            next_in_flight: AtomicU64::new(0),
            parked: Arc::new(parked::ParkedCalls::new(tracker.clone(), cancel.clone())),
            ids,
            control,
            settings: RwLock::default(),
            rebuilding: Mutex::default(),
            cached: Mutex::default(),
            stored_lists: tokio::sync::OnceCell::new(),
            app: OnceLock::new(),
            core_task_owners: Default::default(),
            startup_wait: Mutex::new(Duration::ZERO),
            first_contact_done: AtomicBool::new(false),
            roots_owner: OnceLock::new(),
            roots_askers: Mutex::default(),
            tracker,
            cancel,
            this: this.clone(),
        })
    }

    /// The sessions that created 2025-11-25 tasks (`tasks::legacy`).
    fn core_task_owners(&self) -> &core_tasks::Owners {
        &self.core_task_owners
    }

    /// Sends a notification the typed model has no variant for to one client session.
    pub(crate) fn notify_session(
        &self,
        session: &Session,
        method: &str,
        params: serde_json::Value,
    ) {
        let Some(peer) = session.live_peer().cloned() else {
            return;
        };
        let notification = ServerNotification::CustomNotification(
            rmcp::model::CustomNotification::new(method, Some(params)),
        );
        self.tracker.spawn(async move {
            let _ = peer.send_notification(notification).await;
        });
    }

    /// Records a tool call that did not go through [`Router::call_tool`] (`tasks::legacy`).
    pub(crate) fn record_tool_call(
        &self,
        server: &str,
        tool: &str,
        started: Instant,
        error: Option<String>,
    ) {
        let (name, uuid) = self.identity(server);
        self.record(
            ActivityAction::ToolCall,
            (&name, &uuid),
            tool,
            started,
            error,
        );
    }

    /// The calls parked for modern clients' input (`--parked-call-ttl` sets their lifetime).
    pub fn parked(&self) -> &parked::ParkedCalls {
        &self.parked
    }

    fn events(&self) -> Arc<dyn Events> {
        // `self` is alive, so the weak self-reference upgrades.
        let this: Arc<Router> = self.this.upgrade().expect("router is alive while in use");
        this
    }

    /// Applies a (new) configuration: starts added servers, stops removed ones, restarts changed
    /// ones, and leaves the rest alone.
    pub fn apply_config(&self, config: &Config) {
        self.apply_servers(config, &HashMap::new());
    }

    /// [`Router::apply_config`], with slugs given for some servers (the App's own slugs, so
    /// `<slug>__` means what it means in the App).
    fn apply_servers(&self, config: &Config, given_slugs: &HashMap<String, String>) {
        let names: Vec<&str> = config.servers.keys().map(String::as_str).collect();
        let slugs: Vec<String> = crate::names::unique_slugs(names.iter().copied())
            .into_iter()
            .zip(&names)
            .map(|(slug, name)| given_slugs.get(*name).cloned().unwrap_or(slug))
            .collect();
        let mut started = Vec::new();
        let security = Arc::new(config.security.clone());
        {
            let mut servers = write(&self.servers);
            servers.retain(|name, downstream| {
                let keep = config.servers.contains_key(name);
                if !keep {
                    tracing::info!(server = %name, "removed from the config, stopping");
                    downstream.stop();
                }
                keep
            });
            for ((name, server_config), slug) in config.servers.iter().zip(slugs) {
                if let Some(existing) = servers.get(name) {
                    if existing.config == *server_config
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
                started.push(downstream);
            }
        }
        if !started.is_empty() {
            self.first_contact_done.store(false, Ordering::Release);
        }
        for downstream in started {
            downstream::spawn(downstream, self.events(), &self.tracker);
        }
        self.rebuild_catalog();
    }

    /// Switches this router to App mode: servers and catalog follow `app` from now on (see
    /// [`Router::apply_app`]).
    pub fn set_app(&self, app: Arc<AppMode>) {
        let _ = self.app.set(app);
    }

    /// App mode's state, when in App mode.
    pub fn app(&self) -> Option<&Arc<AppMode>> {
        self.app.get()
    }

    /// Where the built-in tools' data, the settings and the activity log live.
    pub fn control_plane(&self) -> &Arc<dyn crate::control::ControlPlane> {
        self.control.builtins.control()
    }

    /// Applies the App's current server list (servers started, stopped, restarted as needed) with
    /// the local config file's other settings, and rebuilds the catalog from the App's lists.
    /// Servers keep the App's UUIDs and slugs.
    pub fn apply_app(&self) {
        let Some(app) = self.app.get() else {
            return;
        };
        let servers = app.servers();
        let mut slugs = HashMap::new();
        for identity in &servers.identities {
            self.ids.set(&identity.name, &identity.uuid);
            slugs.insert(
                identity.name.clone(),
                identity
                    .slug
                    .clone()
                    .unwrap_or_else(|| identity.uuid.clone()),
            );
        }
        self.apply_servers(&app.config(), &slugs);
    }

    /// The configured servers, in name order.
    pub fn servers(&self) -> Vec<Arc<Downstream>> {
        read(&self.servers).values().cloned().collect()
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        read(&self.catalog).clone()
    }

    /// Sets how long a client's first look waits for servers still connecting for the first
    /// time (`--startup-wait`).
    pub fn set_startup_wait(&self, wait: Duration) {
        *lock(&self.startup_wait) = wait;
    }

    pub fn startup_wait(&self) -> Duration {
        *lock(&self.startup_wait)
    }

    /// The visible servers in their first connection attempt whose startup wait has not run
    /// out: what a first look waits for.
    pub fn first_attempts(&self) -> Vec<Arc<Downstream>> {
        let wait = self.startup_wait();
        let now = Instant::now();
        self.visible_servers()
            .into_iter()
            .filter(|server| !server.first_attempt_done() && server.created() + wait > now)
            .collect()
    }

    /// Waits until every visible server's first connection attempt has ended (connected, failed,
    /// refused) or its startup wait ran out, so that what a client sees first is complete. At
    /// once when that is already so (one atomic read on every later call).
    pub async fn await_first_attempts(&self) {
        if self.first_contact_done.load(Ordering::Acquire) {
            return;
        }
        let pending = self.first_attempts();
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

    /// [`Router::await_first_attempts`] for a client's first look (`initialize`,
    /// `server/discover`, the lists). Not in App mode: there the catalog comes whole from the App
    /// (or its saved copy), and only calls wait for the servers they need.
    pub async fn await_first_contact(&self) {
        if self.app.get().is_none() {
            self.await_first_attempts().await;
        }
    }

    /// Keeps `session` informed of list changes, logs and resource updates.
    pub fn register_session(&self, session: &Arc<Session>) {
        let mut sessions = lock(&self.sessions);
        sessions.retain(|weak| weak.strong_count() > 0);
        sessions.push(Arc::downgrade(session));
    }

    fn live_sessions(&self) -> Vec<Arc<Session>> {
        lock(&self.sessions)
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Rebuilds the catalog from the servers' current lists and tells clients what changed.
    fn rebuild_catalog(&self) {
        let _rebuilding = lock(&self.rebuilding);
        let servers = self.visible_servers();
        let lists: Vec<_> = servers.iter().map(|server| server.lists()).collect();
        self.cache_lists(&servers, &lists);
        if let Some(app) = self.app.get() {
            let identities = app.servers();
            let entries: Vec<AppServerEntry<'_>> = servers
                .iter()
                .map(|server| AppServerEntry {
                    name: &server.name,
                    uuid: &server.uuid,
                    instructions: server.config.instructions.as_deref(),
                    slug: identities
                        .identities
                        .iter()
                        .find(|identity| identity.name == server.name)
                        .and_then(|identity| identity.slug.as_deref()),
                })
                .collect();
            let mut catalog = Catalog::from_app(&app.catalog(), &entries);
            let settings = self.settings();
            catalog
                .tools
                .retain(|tool| !settings.disabled_tools.contains(tool.name.as_ref()));
            self.install_catalog(catalog);
            return;
        }
        let settings = self.settings();
        let build = |filters: &[ToolFilter]| {
            let entries: Vec<ServerEntry<'_>> = servers
                .iter()
                .zip(&lists)
                .zip(filters)
                .map(|((server, lists), filter)| ServerEntry {
                    name: &server.name,
                    slug: &server.slug,
                    uuid: &server.uuid,
                    filter,
                    lists,
                    instructions: server.config.instructions.as_deref(),
                })
                .collect();
            Catalog::build(&entries, self.mode)
        };
        let mut filters: Vec<ToolFilter> = servers
            .iter()
            .map(|server| server.config.tools.clone())
            .collect();
        let mut catalog = build(&filters);
        // Disabled tools: resolve each name against the full catalog (any spelling a client
        // could call: exposed, `<slug>__`, `<uuid>__`), deny it at its owner, and build again.
        let mut denied = false;
        for name in &settings.disabled_tools {
            if let Ok(route) = catalog.resolve_tool(name)
                && let Some(index) = servers
                    .iter()
                    .position(|server| server.name == route.server)
            {
                filters[index].deny.push(route.original);
                denied = true;
            }
        }
        if denied {
            catalog = build(&filters);
        }
        self.install_catalog(catalog);
    }

    /// Puts the built-in tools and prompt first, replaces the catalog, and tells clients what
    /// changed.
    fn install_catalog(&self, mut catalog: Catalog) {
        let builtins: Vec<rmcp::model::Tool> = self.builtin_tools();
        catalog.tools.splice(0..0, builtins);
        catalog.prompts.insert(0, builtin::capabilities::prompt());
        let catalog = Arc::new(catalog);
        let old = std::mem::replace(&mut *write(&self.catalog), catalog.clone());
        let tools_changed = old.tools != catalog.tools;
        let prompts_changed = old.prompts != catalog.prompts;
        let resources_changed =
            old.resources != catalog.resources || old.templates != catalog.templates;
        if !(tools_changed || prompts_changed || resources_changed) {
            return;
        }
        for session in self.live_sessions() {
            let Some(peer) = session.live_peer().cloned() else {
                continue;
            };
            self.tracker.spawn(async move {
                if tools_changed {
                    let _ = peer.notify_tool_list_changed().await;
                }
                if prompts_changed {
                    let _ = peer.notify_prompt_list_changed().await;
                }
                if resources_changed {
                    let _ = peer.notify_resource_list_changed().await;
                }
            });
        }
        let mut changes = Vec::new();
        if tools_changed {
            changes.push(ServerNotification::ToolListChangedNotification(
                Default::default(),
            ));
        }
        if prompts_changed {
            changes.push(ServerNotification::PromptListChangedNotification(
                Default::default(),
            ));
        }
        if resources_changed {
            changes.push(ServerNotification::ResourceListChangedNotification(
                Default::default(),
            ));
        }
        self.notify_listeners(changes);
    }

    /// Sends notifications to every `subscriptions/listen` stream that asked for them (each
    /// sink drops what its filter did not accept).
    fn notify_listeners(&self, notifications: Vec<ServerNotification>) {
        if notifications.is_empty() {
            return;
        }
        let sinks: Vec<SubscriptionSink> = lock(&self.listeners).values().cloned().collect();
        for sink in sinks {
            let notifications = notifications.clone();
            self.tracker.spawn(async move {
                for notification in notifications {
                    let _ = sink.send(notification).await;
                }
            });
        }
    }

    /// Serves one `subscriptions/listen` stream until the client ends it: list changes from
    /// every server, and updates of the resources it named (subscribed downstream meanwhile).
    pub async fn listen(&self, context: SubscriptionContext) {
        let id = self.next_listener.fetch_add(1, Ordering::Relaxed);
        lock(&self.listeners).insert(id, context.sink().clone());
        // A session of its own holds the downstream resource subscriptions while the stream lives.
        let holder = Arc::new(Session::default());
        let caller = Caller {
            session: Some(holder.clone()),
            request_id: None,
            meta: RequestMetaObject::default(),
            ct: CancellationToken::new(),
            principal: None,
            park: None,
        };
        let uris = context
            .accepted()
            .resource_subscriptions
            .clone()
            .unwrap_or_default();
        if !uris.is_empty() {
            self.register_session(&holder);
        }
        for uri in &uris {
            if let Err(error) = self
                .subscribe(&caller, SubscribeRequestParams::new(uri.clone()))
                .await
            {
                tracing::debug!(uri, "subscription not taken downstream: {error}");
            }
        }
        context.cancelled().await;
        lock(&self.listeners).remove(&id);
        for uri in uris {
            let _ = self
                .unsubscribe(&caller, UnsubscribeRequestParams::new(uri))
                .await;
        }
    }

    /// The operator's settings in force.
    pub fn settings(&self) -> Arc<Settings> {
        read(&self.settings).clone()
    }

    /// Reads the settings from the control plane and applies them (catalog rebuilt, clients
    /// told what changed).
    pub async fn reload_settings(&self) {
        let control = self.control.builtins.control();
        let mut settings = match control.settings().await {
            Ok(settings) => settings,
            Err(error) => {
                tracing::warn!("settings not read: {error}");
                return;
            }
        };
        if let Some(pinned) = &self.control.pinned_workspace {
            let workspaces = control.workspaces().await.unwrap_or_default();
            settings.workspace = Some(
                workspaces
                    .into_iter()
                    .find(|workspace| &workspace.name == pinned)
                    .unwrap_or_else(|| Workspace {
                        name: pinned.clone(),
                        servers: Default::default(),
                    }),
            );
        }
        let changed = *self.settings() != settings;
        if changed {
            tracing::info!(
                disabled_servers = settings.disabled_servers.len(),
                disabled_tools = settings.disabled_tools.len(),
                workspace = settings.workspace.as_ref().map(|w| w.name.as_str()),
                "settings applied"
            );
            *write(&self.settings) = Arc::new(settings);
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
            let control = router.control.builtins.control().clone();
            // Read the version, then the settings: a change in between is seen next round.
            let mut seen = control.settings_version().await.ok();
            router.reload_settings().await;
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(SETTINGS_POLL) => {}
                }
                match control.settings_version().await {
                    Ok(version) if Some(version) != seen => {
                        seen = Some(version);
                        router.reload_settings().await;
                    }
                    Ok(_) => {}
                    Err(error) => tracing::debug!("settings version not read: {error}"),
                }
            }
        });
    }

    /// The servers that are on: not disabled in the config or by the operator, and in the
    /// workspace in force.
    pub fn visible_servers(&self) -> Vec<Arc<Downstream>> {
        let settings = self.settings();
        self.servers()
            .into_iter()
            .filter(|server| {
                !server.config.disabled
                    && !settings.disabled_servers.contains(&server.name)
                    && settings
                        .workspace
                        .as_ref()
                        .is_none_or(|workspace| workspace.servers.contains(&server.name))
            })
            .collect()
    }

    /// Whether a server's tool passes the config's filter and is not disabled by the operator.
    pub fn tool_visible(&self, server: &Downstream, original: &str) -> bool {
        if !server.config.tools.permits(original) {
            return false;
        }
        let settings = self.settings();
        let qualified = crate::names::qualify(&server.slug, original);
        let by_uuid = format!("{}__{original}", server.uuid);
        if [qualified.as_str(), by_uuid.as_str()]
            .iter()
            .any(|name| settings.disabled_tools.contains(*name))
        {
            return false;
        }
        // A connected server's tools are in the catalog unless disabled under another spelling
        // (the exposed name in `auto`/`never` prefix modes) or, in App mode, not listed by the
        // App. The UUID spelling resolves in every mode.
        server.connection().is_none()
            || self
                .catalog()
                .resolve_tool(&by_uuid)
                .is_ok_and(|route| route.server == server.name)
    }

    /// Why a tool name that did not resolve is not served, when it names a tool that exists:
    /// disabled by the operator, its server disabled or outside the workspace, or left out by
    /// the config's filter. `None` for a name nobody offers.
    fn not_served(&self, name: &str) -> Option<RouteError> {
        let settings = self.settings();
        let not_served = |why: String| {
            Some(RouteError::NotServed {
                tool: name.to_owned(),
                why,
            })
        };
        let disabled =
            |spelling: &str| format!("is disabled (pluggedin-mcp-proxy tools enable {spelling})");
        let canonical = builtin::canonical(name).unwrap_or(name);
        if settings.disabled_tools.contains(canonical) {
            return not_served(disabled(canonical));
        }
        let (prefix, _) = name.split_once(crate::names::SEPARATOR)?;
        let server = self
            .servers()
            .into_iter()
            .find(|server| server.slug == prefix || server.uuid == prefix)?;
        let server_name = &server.name;
        if server.config.disabled {
            return not_served(format!(
                "is in server \"{server_name}\", which the config disables (\"disabled\": true)"
            ));
        }
        if settings.disabled_servers.contains(server_name) {
            return not_served(format!(
                "is in server \"{server_name}\", which is disabled (pluggedin-mcp-proxy servers \
                 enable {server_name})"
            ));
        }
        if let Some(workspace) = &settings.workspace
            && !workspace.servers.contains(server_name)
        {
            let how = if self.control.pinned_workspace.is_some() {
                "this proxy serves only that one (--workspace)"
            } else {
                "pluggedin-mcp-proxy workspace switch all"
            };
            return not_served(format!(
                "is in server \"{server_name}\", which is not in the active workspace \"{}\" \
                 ({how})",
                workspace.name
            ));
        }
        let qualify = crate::names::qualify;
        let lists = server.lists();
        let original = lists
            .tools
            .iter()
            .map(|tool| tool.name.as_ref())
            .find(|tool| {
                qualify(&server.slug, tool) == name || qualify(&server.uuid, tool) == name
            })?;
        if let Some(spelling) = [
            qualify(&server.slug, original),
            qualify(&server.uuid, original),
        ]
        .into_iter()
        .find(|spelling| settings.disabled_tools.contains(spelling))
        {
            return not_served(disabled(&spelling));
        }
        if !server.config.tools.permits(original) {
            return not_served(format!(
                "is left out by the \"tools\" filter of server \"{server_name}\" in the config"
            ));
        }
        None
    }

    /// The built-in tools that are on, in list order.
    pub fn builtin_tools(&self) -> Vec<rmcp::model::Tool> {
        let settings = self.settings();
        builtin::tools()
            .iter()
            .filter(|tool| !settings.disabled_tools.contains(tool.name.as_ref()))
            .cloned()
            .collect()
    }

    /// Writes the lists of connected servers that changed to the catalog cache, off the
    /// caller's path.
    fn cache_lists(&self, servers: &[Arc<Downstream>], lists: &[Arc<crate::catalog::ServerLists>]) {
        let mut cached = lock(&self.cached);
        for (server, lists) in servers.iter().zip(lists) {
            if server.connection().is_none()
                || cached
                    .get(&server.uuid)
                    .is_some_and(|last| Arc::ptr_eq(last, lists))
            {
                continue;
            }
            cached.insert(server.uuid.clone(), lists.clone());
            let entry = CachedServer {
                uuid: server.uuid.clone(),
                name: server.name.clone(),
                lists: lists.to_json(),
                updated_at: now_ms(),
            };
            let control = self.control.builtins.control().clone();
            self.tracker.spawn(async move {
                if let Err(error) = control.cache_server(entry).await {
                    tracing::debug!("catalog cache not written: {error}");
                }
            });
        }
    }

    /// The server ids, for making sure a new config's servers have one before it is applied.
    pub fn ids(&self) -> &ServerIds {
        &self.ids
    }

    /// Hands one finished request to the activity recorder.
    fn record(
        &self,
        action: ActivityAction,
        identity: (&str, &str),
        item: &str,
        started: Instant,
        error: Option<String>,
    ) {
        self.record_call(action, identity, item, started, error, false);
    }

    /// [`Router::record`], saying whether `error` is a tool's own error result (`isError`) rather
    /// than a failed request.
    fn record_call(
        &self,
        action: ActivityAction,
        (server_name, server_uuid): (&str, &str),
        item: &str,
        started: Instant,
        error: Option<String>,
        tool_error: bool,
    ) {
        self.control.recorder.record(Activity {
            at: now_ms(),
            action,
            server_name: server_name.to_owned(),
            server_uuid: server_uuid.to_owned(),
            item: item.to_owned(),
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            success: error.is_none(),
            error,
            tool_error,
        });
    }

    /// The configured name and UUID of a server, for the activity log.
    fn identity(&self, server: &str) -> (String, String) {
        let uuid = read(&self.servers)
            .get(server)
            .map(|downstream| downstream.uuid.clone())
            .unwrap_or_else(|| "unknown".to_owned());
        (server.to_owned(), uuid)
    }

    /// What we announce in `initialize`: what the servers behind us support. Servers that have
    /// not connected yet may still bring prompts and resources, so those stay announced.
    pub fn info(&self) -> ServerConfig {
        let servers = self.servers();
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
        // resources (issue 8), whatever the servers offer.
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
        tasks::announce(&mut capabilities, &connected);
        let mut implementation = Implementation::new("PluggedinMCP", env!("CARGO_PKG_VERSION"));
        implementation.title = Some("plugged.in MCP Proxy".to_owned());
        let mut info = ServerConfig::new(capabilities).with_server_info(implementation);
        info.instructions = self.instructions();
        info
    }

    /// The combined instructions: each server's configured ones, then what the server said.
    fn instructions(&self) -> Option<String> {
        let mut text = String::new();
        for server in self.visible_servers() {
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

    pub fn list_tools(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<rmcp::model::Tool>, Option<String>), RouteError> {
        if cursor.is_none() {
            self.tools_listed();
        }
        self.list_tools_of(&self.catalog(), cursor)
    }

    /// A client asked for the tool list (its first page). In App mode the App's tool list is
    /// read again at the next refresh, as the original read it for every `tools/list`.
    pub fn tools_listed(&self) {
        if let Some(app) = self.app.get() {
            app.tools_listed();
        }
    }

    /// A page of `catalog`'s tools, as [`Router::list_tools`] gives it when `catalog` is current
    /// (the encoded-page cache of `upstream::tool_pages` keys its pages by catalog).
    pub fn list_tools_of(
        &self,
        catalog: &Catalog,
        cursor: Option<&str>,
    ) -> Result<(Vec<rmcp::model::Tool>, Option<String>), RouteError> {
        Ok(page(&catalog.tools, cursor, self.page_size)?)
    }

    /// The largest number of items on one page of a list (`--page-size`; at least 1).
    pub fn page_size(&self) -> usize {
        self.page_size.max(1)
    }

    pub fn list_prompts(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<rmcp::model::Prompt>, Option<String>), RouteError> {
        Ok(page(&self.catalog().prompts, cursor, self.page_size)?)
    }

    /// The servers' resources, then the library's documents (`pluggedin://documents/<id>`,
    /// newest first), paged together by one offset cursor.
    pub async fn list_resources(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<rmcp::model::Resource>, Option<String>), RouteError> {
        // --- documents as resources (issue 8) ---
        let catalog = self.catalog();
        if self.app.get().is_some() {
            // App mode: the App's resources are the list (its documents stay in the App).
            return Ok(page(&catalog.resources, cursor, self.page_size)?);
        }
        let served = catalog.resources.len();
        let start = match cursor {
            None => 0,
            Some(text) => text
                .parse::<usize>()
                .map_err(|_| InvalidCursor(text.to_owned()))?,
        };
        let page_size = self.page_size.max(1);
        let mut items: Vec<rmcp::model::Resource> = catalog
            .resources
            .iter()
            .skip(start)
            .take(page_size)
            .cloned()
            .collect();
        let room = (page_size - items.len()) as u32;
        let (documents, total) = self
            .control
            .builtins
            .document_resources(start.saturating_sub(served) as u64, room.max(1))
            .await
            .map_err(|error| RouteError::Library(error.to_string()))?;
        if start > served + total as usize {
            return Err(InvalidCursor(start.to_string()).into());
        }
        items.extend(documents.into_iter().take(room as usize));
        let end = start + items.len();
        let next = (end < served + total as usize).then(|| end.to_string());
        Ok((items, next))
    }

    pub fn list_templates(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<rmcp::model::ResourceTemplate>, Option<String>), RouteError> {
        Ok(page(&self.catalog().templates, cursor, self.page_size)?)
    }

    fn server(&self, name: &str) -> Result<Arc<Downstream>, RouteError> {
        read(&self.servers)
            .get(name)
            .cloned()
            .ok_or_else(|| RouteError::NotConnected {
                server: name.to_owned(),
                state: ServerState::Stopped,
            })
    }

    pub async fn call_tool(
        &self,
        caller: &Caller,
        mut params: CallToolRequestParams,
    ) -> Result<ServerResult, RouteError> {
        let started = Instant::now();
        if let Some(name) = builtin::canonical(&params.name)
            && !self.settings().disabled_tools.contains(name)
        {
            let result = self
                .control
                .builtins
                .call(self, name, params.arguments.as_ref())
                .await;
            let error = (result.is_error == Some(true)).then(|| result_text(&result));
            self.record(
                ActivityAction::ToolCall,
                builtin::activity_identity(name),
                name,
                started,
                error,
            );
            return Ok(ServerResult::CallToolResult(result));
        }
        let name = params.name.clone();
        // A tool that is off (disabled, its server disabled or outside the workspace, filtered)
        // says so instead of "unknown"; one whose server is starting is waited for.
        let route = self
            .resolve_waiting(caller, Item::Tool(&name), |catalog| {
                catalog
                    .resolve_tool(&name)
                    .map_err(|error| self.not_served(&name).unwrap_or(error.into()))
            })
            .await?;
        params.name = route.original.clone().into();
        params.meta = None;
        let before = self.server(&route.server).ok();
        let mut outcome = self
            .forward(
                &route.server,
                ClientRequest::CallToolRequest(Request::new(params.clone())),
                caller,
            )
            .await;
        if let Err(error) = &outcome
            && self
                .reread_after_unauthorized(&route.server, before.as_ref(), error)
                .await
        {
            outcome = self
                .forward(
                    &route.server,
                    ClientRequest::CallToolRequest(Request::new(params)),
                    caller,
                )
                .await;
        }
        let outcome = outcome.map(|result| tasks::created(self, &route.server, result));
        let (error, tool_error) = match &outcome {
            Ok(ServerResult::CallToolResult(result)) if result.is_error == Some(true) => {
                (Some(result_text(result)), true)
            }
            Ok(_) => (None, false),
            Err(error) => (Some(error.to_string()), false),
        };
        let (name, uuid) = self.identity(&route.server);
        self.record_call(
            ActivityAction::ToolCall,
            (&name, &uuid),
            &route.original,
            started,
            error,
            tool_error,
        );
        outcome
    }

    /// App mode: after a downstream answered 401 (an expired OAuth token, which the App
    /// refreshes while it serves the server list), re-reads the server list once; when that
    /// server's configuration changed, applies it, waits for the server to settle and says
    /// `true` (retry once). Concurrent calls share the one re-read.
    async fn reread_after_unauthorized(
        &self,
        server: &str,
        before: Option<&Arc<Downstream>>,
        error: &RouteError,
    ) -> bool {
        let Some(app) = self.app.get() else {
            return false;
        };
        if !is_unauthorized(error) {
            return false;
        }
        tracing::info!(
            server,
            "the server answered 401; re-reading its configuration from the App"
        );
        if let Err(error) = app.reread_servers().await {
            tracing::warn!(server, "server list not re-read: {error}");
            return false;
        }
        let servers = app.servers();
        let current = self.server(server).ok();
        let changed = match (before, &current) {
            (Some(before), Some(current)) if !Arc::ptr_eq(before, current) => true,
            (Some(before), _) => servers.config.servers.get(server) != Some(&before.config),
            (None, _) => true,
        };
        if !changed {
            tracing::info!(
                server,
                "its configuration in the App is unchanged; not retrying"
            );
            return false;
        }
        self.apply_app();
        let Ok(downstream) = self.server(server) else {
            return false;
        };
        let mut state = downstream.subscribe_state();
        let _ = tokio::time::timeout(
            downstream.config.timeout,
            state.wait_for(ServerState::is_settled),
        )
        .await;
        tracing::info!(server, state = %downstream.state(), "retrying after the re-read");
        true
    }

    /// The server with this (App) UUID.
    fn server_by_uuid(&self, uuid: &str) -> Option<Arc<Downstream>> {
        read(&self.servers)
            .values()
            .find(|server| server.uuid.eq_ignore_ascii_case(uuid))
            .cloned()
    }

    /// App mode's `prompts/get`: the owner from `/api/resolve/prompt`, the name unchanged.
    async fn get_prompt_app(
        &self,
        app: &AppMode,
        caller: &Caller,
        mut params: GetPromptRequestParams,
    ) -> Result<ServerResult, RouteError> {
        let started = Instant::now();
        let name = params.name.clone();
        let owner = app.resolve_prompt(&name).await;
        params.meta = None;
        let request = ClientRequest::GetPromptRequest(Request::new(params));
        let target = (ActivityAction::PromptGet, "get prompt", name.as_str());
        self.forward_to_app_owner(caller, target, owner, request, started)
            .await
    }

    /// App mode's `resources/read`: the owner from `/api/resolve/resource`, the URI unchanged.
    async fn read_resource_app(
        &self,
        app: &AppMode,
        caller: &Caller,
        mut params: ReadResourceRequestParams,
    ) -> Result<ServerResult, RouteError> {
        let started = Instant::now();
        let uri = params.uri.clone();
        let owner = app.resolve_resource(&uri).await;
        params.meta = None;
        let request = ClientRequest::ReadResourceRequest(Request::new(params));
        let target = (ActivityAction::ResourceRead, "read resource", uri.as_str());
        self.forward_to_app_owner(caller, target, owner, request, started)
            .await
    }

    /// Sends a request to the server the App named as its owner (a UUID), and records it.
    /// `target` is the activity, the verb for error messages and the item's name.
    async fn forward_to_app_owner(
        &self,
        caller: &Caller,
        (action, verb, item): (ActivityAction, &str, &str),
        owner: Result<String, crate::control::app::AppError>,
        request: ClientRequest,
        started: Instant,
    ) -> Result<ServerResult, RouteError> {
        let server = match owner {
            Ok(uuid) => self.server_by_uuid(&uuid).ok_or_else(|| {
                RouteError::App(format!(
                    "Failed to {verb} {item}: its server ({uuid}) is not among the App's active servers"
                ))
            }),
            Err(error) => Err(RouteError::App(format!("Failed to {verb} {item}: {error}"))),
        };
        let (outcome, identity) = match server {
            Ok(server) => {
                let outcome = self.forward(&server.name, request, caller).await;
                (outcome, (server.name.clone(), server.uuid.clone()))
            }
            Err(error) => (Err(error), ("unknown".to_owned(), "unknown".to_owned())),
        };
        self.record(
            action,
            (&identity.0, &identity.1),
            item,
            started,
            outcome.as_ref().err().map(ToString::to_string),
        );
        outcome
    }

    pub async fn get_prompt(
        &self,
        caller: &Caller,
        mut params: GetPromptRequestParams,
    ) -> Result<ServerResult, RouteError> {
        if params.name == builtin::capabilities::NAME {
            let started = Instant::now();
            let result = builtin::capabilities::get(&self.builtin_tools());
            self.record(
                ActivityAction::PromptGet,
                builtin::capabilities::ACTIVITY_IDENTITY,
                builtin::capabilities::NAME,
                started,
                None,
            );
            return Ok(ServerResult::GetPromptResult(result));
        }
        let catalog = self.catalog();
        // App mode: the App resolves every prompt except the servers' custom instructions,
        // which are answered here.
        if let Some(app) = self.app.get()
            && !matches!(
                catalog.resolve_prompt(&params.name),
                Ok(PromptRoute::Instructions { .. })
            )
        {
            return self.get_prompt_app(app, caller, params).await;
        }
        let started = Instant::now();
        let name = params.name.clone();
        let route = self
            .resolve_waiting(caller, Item::Prompt(&name), |catalog| {
                Ok(catalog.resolve_prompt(&name)?)
            })
            .await?;
        match route {
            PromptRoute::Instructions { server } => {
                let messages = catalog.instructions(&server).unwrap_or_default().to_vec();
                let mut result = GetPromptResult::new(messages);
                result.description = Some(format!("Custom instructions for the {server} server"));
                let (_, uuid) = self.identity(&server);
                self.record(
                    ActivityAction::PromptGet,
                    ("Custom Instructions", &uuid),
                    &params.name,
                    started,
                    None,
                );
                Ok(ServerResult::GetPromptResult(result))
            }
            PromptRoute::Downstream(route) => {
                params.name = route.original.clone();
                params.meta = None;
                let outcome = self
                    .forward(
                        &route.server,
                        ClientRequest::GetPromptRequest(Request::new(params)),
                        caller,
                    )
                    .await;
                let (name, uuid) = self.identity(&route.server);
                self.record(
                    ActivityAction::PromptGet,
                    (&name, &uuid),
                    &route.original,
                    started,
                    outcome.as_ref().err().map(ToString::to_string),
                );
                outcome
            }
        }
    }

    pub async fn read_resource(
        &self,
        caller: &Caller,
        mut params: ReadResourceRequestParams,
    ) -> Result<ServerResult, RouteError> {
        if let Some(app) = self.app.get() {
            return self.read_resource_app(app, caller, params).await;
        }
        let started = Instant::now();
        // --- documents as resources (issue 8): read from the library, not a server ---
        if Builtins::is_document_uri(&params.uri) {
            let outcome = match self.control.builtins.read_document(&params.uri).await {
                Ok(Some(result)) => Ok(ServerResult::ReadResourceResult(result)),
                Ok(None) => Err(RouteError::UnknownResource(params.uri.clone())),
                Err(error) => Err(RouteError::Library(error.to_string())),
            };
            self.record(
                ActivityAction::ResourceRead,
                ("Document System", "pluggedin_documents"),
                &params.uri,
                started,
                outcome.as_ref().err().map(ToString::to_string),
            );
            return outcome;
        }
        let uri = params.uri.clone();
        let server = self
            .resolve_waiting(caller, Item::Resource(&uri), |catalog| {
                catalog
                    .resolve_resource(&uri)
                    .map(str::to_owned)
                    .ok_or_else(|| RouteError::UnknownResource(uri.clone()))
            })
            .await?;
        params.meta = None;
        let outcome = self
            .forward(
                &server,
                ClientRequest::ReadResourceRequest(Request::new(params)),
                caller,
            )
            .await;
        let (name, uuid) = self.identity(&server);
        self.record(
            ActivityAction::ResourceRead,
            (&name, &uuid),
            &uri,
            started,
            outcome.as_ref().err().map(ToString::to_string),
        );
        outcome
    }

    /// The server that serves `uri`: the catalog's owner, or in App mode the App's resolver's.
    async fn resource_owner_anywhere(&self, uri: &str) -> Result<String, RouteError> {
        let Some(app) = self.app.get() else {
            return self.resource_owner(uri);
        };
        let uuid = app
            .resolve_resource(uri)
            .await
            .map_err(|error| RouteError::App(format!("resource {uri}: {error}")))?;
        self.server_by_uuid(&uuid)
            .map(|server| server.name.clone())
            .ok_or_else(|| RouteError::UnknownResource(uri.to_owned()))
    }

    fn resource_owner(&self, uri: &str) -> Result<String, RouteError> {
        self.catalog()
            .resolve_resource(uri)
            .map(str::to_owned)
            .ok_or_else(|| RouteError::UnknownResource(uri.to_owned()))
    }

    pub async fn complete(
        &self,
        caller: &Caller,
        mut params: CompleteRequestParams,
    ) -> Result<CompleteResult, RouteError> {
        let catalog = self.catalog();
        // App mode: the App knows who owns its prompts and resources. Completion is a
        // convenience, so an owner the App cannot name means no suggestions, not an error.
        if let Some(app) = self.app.get() {
            let owner = match &params.r#ref {
                Reference::Prompt(prompt) => match catalog.resolve_prompt(&prompt.name) {
                    Ok(PromptRoute::Instructions { .. }) => return Ok(CompleteResult::default()),
                    _ => app.resolve_prompt(&prompt.name).await,
                },
                Reference::Resource(resource) => app.resolve_resource(&resource.uri).await,
                _ => return Ok(CompleteResult::default()),
            };
            let Some(server) = owner.ok().and_then(|uuid| self.server_by_uuid(&uuid)) else {
                return Ok(CompleteResult::default());
            };
            return self.complete_at(&server.name, caller, params).await;
        }
        let server = match &mut params.r#ref {
            Reference::Prompt(prompt) => match catalog.resolve_prompt(&prompt.name)? {
                // Instructions take no arguments.
                PromptRoute::Instructions { .. } => return Ok(CompleteResult::default()),
                PromptRoute::Downstream(route) => {
                    prompt.name = route.original;
                    route.server
                }
            },
            Reference::Resource(resource) => catalog
                .resolve_template(&resource.uri)
                .or_else(|| catalog.resolve_resource(&resource.uri))
                .map(str::to_owned)
                .ok_or_else(|| RouteError::UnknownResource(resource.uri.clone()))?,
            _ => return Ok(CompleteResult::default()),
        };
        self.complete_at(&server, caller, params).await
    }

    /// Forwards a completion request to `server` (none when it does not do completions).
    async fn complete_at(
        &self,
        server: &str,
        caller: &Caller,
        mut params: CompleteRequestParams,
    ) -> Result<CompleteResult, RouteError> {
        let server = server.to_owned();
        let downstream = self.server(&server)?;
        if downstream
            .connection()
            .is_some_and(|c| c.capabilities.completions.is_none())
        {
            return Ok(CompleteResult::default());
        }
        params.meta = None;
        match self
            .forward(
                &server,
                ClientRequest::CompleteRequest(Request::new(params)),
                caller,
            )
            .await?
        {
            ServerResult::CompleteResult(result) => Ok(result),
            _ => Err(RouteError::UnexpectedResult {
                server,
                method: "completion/complete".into(),
            }),
        }
    }

    /// `resources/subscribe`: forwarded to the owner; updates reach every subscribed session.
    pub async fn subscribe(
        &self,
        caller: &Caller,
        params: SubscribeRequestParams,
    ) -> Result<(), RouteError> {
        let server = self.resource_owner_anywhere(&params.uri).await?;
        let downstream = self.server(&server)?;
        let supports = downstream.connection().is_some_and(|c| {
            c.capabilities
                .resources
                .as_ref()
                .is_some_and(|r| r.subscribe == Some(true))
        });
        if !supports {
            return Err(RouteError::Unsupported {
                server,
                what: "resource subscriptions",
            });
        }
        let uri = params.uri.clone();
        if downstream.is_modern() {
            // A modern server has no resources/subscribe: its listen stream carries the URI.
            downstream
                .watch_resource(&uri)
                .await
                .map_err(|message| RouteError::Transport {
                    server: server.clone(),
                    method: "subscriptions/listen".into(),
                    message,
                })?;
        } else {
            self.forward(
                &server,
                ClientRequest::SubscribeRequest(Request::new(params)),
                caller,
            )
            .await?;
        }
        if let Some(session) = &caller.session {
            lock(&session.subscriptions).insert(uri);
        }
        Ok(())
    }

    /// `resources/unsubscribe`: the owner is told once no session wants the URI any more.
    pub async fn unsubscribe(
        &self,
        caller: &Caller,
        params: UnsubscribeRequestParams,
    ) -> Result<(), RouteError> {
        if let Some(session) = &caller.session {
            lock(&session.subscriptions).remove(&params.uri);
        }
        let still_wanted = self
            .live_sessions()
            .iter()
            .any(|session| lock(&session.subscriptions).contains(&params.uri));
        if still_wanted {
            return Ok(());
        }
        let server = self.resource_owner_anywhere(&params.uri).await?;
        let downstream = self.server(&server)?;
        if downstream.is_modern() {
            downstream.unwatch_resource(&params.uri);
            return Ok(());
        }
        self.forward(
            &server,
            ClientRequest::UnsubscribeRequest(Request::new(params)),
            caller,
        )
        .await
        .map(drop)
    }

    /// `logging/setLevel`: remembered for the session and passed to servers that log.
    pub async fn set_level(&self, caller: &Caller, level: LoggingLevel) {
        if let Some(session) = &caller.session {
            *lock(&session.log_level) = Some(level);
        }
        for server in self.servers() {
            let Some(connection) = server.connection() else {
                continue;
            };
            // A modern server takes the level per request instead (see `forward_once`).
            if connection.capabilities.logging.is_none() || connection.is_modern() {
                continue;
            }
            let params = SetLevelRequestParams::new(level);
            if let Err(error) = connection
                .peer
                .send_request(ClientRequest::SetLevelRequest(Request::new(params)))
                .await
            {
                tracing::debug!(server = %server.name, "logging/setLevel not forwarded: {error}");
            }
        }
    }

    /// Sends a request to a server and returns its answer. When a modern server answers a legacy
    /// client with `InputRequiredResult` (sampling, elicitation or roots wanted), the proxy asks
    /// the client those questions with real requests and retries with the answers, as the
    /// 2026-07-28 revision has clients do; a modern client gets the `InputRequiredResult` itself.
    pub(crate) async fn forward(
        &self,
        server: &str,
        mut request: ClientRequest,
        caller: &Caller,
    ) -> Result<ServerResult, RouteError> {
        let modern_caller = caller
            .meta
            .protocol_version()
            .is_some_and(|version| !version.has_initialize());
        // A modern client's retry of a call parked here (legacy server waiting for its input).
        if let Some((state, responses)) = parked::retry_of(&request) {
            let fingerprint =
                parked::Fingerprint::of(server, &request).expect("a retry is a parkable request");
            return self
                .parked
                .resume(&state, responses, owner_of(caller), fingerprint, caller)
                .await;
        }
        // Only a modern server answers with `InputRequiredResult`; for the others (nearly all) the
        // request goes out once, without the copy a retry would need.
        let downstream = self.server(server)?;
        let modern_server = self.connection_of(&downstream, caller).await?.is_modern();
        if !modern_server {
            if modern_caller
                && caller.session.is_some()
                && let Some(fingerprint) = parked::Fingerprint::of(server, &request)
            {
                return self
                    .forward_parkable(server, request, caller, fingerprint)
                    .await;
            }
            return self.forward_once(server, request, caller).await;
        }
        for _ in 0..MAX_INPUT_ROUNDS {
            let result = self.forward_once(server, request.clone(), caller).await?;
            let ServerResult::InputRequiredResult(input) = result else {
                return Ok(result);
            };
            let Some(session) = caller.session.as_ref().filter(|_| !modern_caller) else {
                return Ok(ServerResult::InputRequiredResult(input));
            };
            let mut answers = InputResponses::new();
            for (key, question) in input.input_requests.unwrap_or_default() {
                if let InputRequest::ListRoots(_) = question {
                    let roots = self
                        .session_roots(
                            server,
                            session,
                            caller.request_id.clone(),
                            caller.ct.clone(),
                        )
                        .await
                        .map_err(RouteError::Downstream)?;
                    let answer =
                        serde_json::to_value(roots).map_err(|error| RouteError::Transport {
                            server: server.to_owned(),
                            method: request.method().to_owned(),
                            message: format!("cannot encode the client's roots: {error}"),
                        })?;
                    answers.insert(key, answer);
                    continue;
                }
                let question = match question {
                    InputRequest::CreateMessage(request) => {
                        ServerRequest::CreateMessageRequest(request)
                    }
                    InputRequest::Elicitation(request) => ServerRequest::ElicitRequest(request),
                    InputRequest::ListRoots(request) => ServerRequest::ListRootsRequest(request),
                    other => {
                        return Err(RouteError::Transport {
                            server: server.to_owned(),
                            method: request.method().to_owned(),
                            message: format!(
                                "asks for input of a kind the proxy does not know: {other:?}"
                            ),
                        });
                    }
                };
                let answer = ask_client(
                    session,
                    caller.request_id.clone(),
                    &format!("server \"{server}\""),
                    question,
                    caller.ct.clone(),
                )
                .await
                .map_err(RouteError::Downstream)?;
                let answer =
                    serde_json::to_value(answer).map_err(|error| RouteError::Transport {
                        server: server.to_owned(),
                        method: request.method().to_owned(),
                        message: format!("cannot encode the client's answer: {error}"),
                    })?;
                answers.insert(key, answer);
            }
            let state = input.request_state;
            match &mut request {
                ClientRequest::CallToolRequest(call) => {
                    call.params.input_responses = Some(answers);
                    call.params.request_state = state;
                }
                ClientRequest::GetPromptRequest(get) => {
                    get.params.input_responses = Some(answers);
                    get.params.request_state = state;
                }
                ClientRequest::ReadResourceRequest(read) => {
                    read.params.input_responses = Some(answers);
                    read.params.request_state = state;
                }
                _ => {
                    return Err(RouteError::UnexpectedResult {
                        server: server.to_owned(),
                        method: request.method().to_owned(),
                    });
                }
            }
        }
        Err(RouteError::Transport {
            server: server.to_owned(),
            method: request.method().to_owned(),
            message: format!("still asking for input after {MAX_INPUT_ROUNDS} rounds"),
        })
    }

    /// A modern client's call to a legacy server: the downstream request runs detached, so that
    /// when the server asks for input the call can be parked and the client answered with an
    /// `InputRequiredResult` (see `parked`).
    async fn forward_parkable(
        &self,
        server: &str,
        request: ClientRequest,
        caller: &Caller,
        fingerprint: parked::Fingerprint,
    ) -> Result<ServerResult, RouteError> {
        let Some(router) = self.this.upgrade() else {
            return Err(RouteError::Cancelled);
        };
        let (call, ends) = parked::Call::new(server);
        let detached = Caller {
            session: caller.session.clone(),
            request_id: caller.request_id.clone(),
            meta: caller.meta.clone(),
            ct: ends.cancel,
            principal: caller.principal.clone(),
            park: Some(ends.questions),
        };
        let server_name = server.to_owned();
        self.tracker.spawn(async move {
            let outcome = router.forward_once(&server_name, request, &detached).await;
            let _ = ends.outcome.send(outcome);
        });
        self.parked
            .run(call, owner_of(caller), fingerprint, caller)
            .await
    }

    /// Sends one request to a server and waits for its answer, forwarding progress to the
    /// caller's token and the caller's cancellation to the server.
    async fn forward_once(
        &self,
        server: &str,
        request: ClientRequest,
        caller: &Caller,
    ) -> Result<ServerResult, RouteError> {
        let method = request.method().to_owned();
        let downstream = self.server(server)?;
        let connection = self.connection_of(&downstream, caller).await?;
        let timeout = downstream.config.timeout;
        tracing::debug!(server, method, "forwarding");
        let mut options = PeerRequestOptions::with_timeout(timeout);
        options.meta = forwarded_meta(&caller.meta);
        // A modern server logs only for a request that names a level (2026-07-28): the modern
        // caller's own, else the level a legacy session set with logging/setLevel.
        let modern_caller = caller
            .meta
            .protocol_version()
            .is_some_and(|version| !version.has_initialize());
        let log_level = connection
            .is_modern()
            .then(|| {
                if modern_caller {
                    return caller.meta.log_level();
                }
                // A legacy client hears every level until it sets one, as from a legacy server.
                caller
                    .session
                    .as_ref()
                    .map(|session| lock(&session.log_level).unwrap_or(LoggingLevel::Debug))
            })
            .flatten();
        if let Some(level) = log_level {
            options
                .meta
                .get_or_insert_with(RequestMetaObject::default)
                .set_log_level(level);
        }
        tasks::pass_capabilities(&mut options.meta, &connection, &caller.meta);
        let handle = connection
            .peer
            .send_request_with_option(request, options)
            .await
            .map_err(|error| self.service_error(server, &method, timeout, error))?;

        let _progress = caller
            .meta
            .get_progress_token()
            .zip(caller.session.as_ref())
            .map(|(token, session)| {
                let key = (server.to_owned(), handle.progress_token.clone());
                let pending = Arc::new(Pending::default());
                let route = ProgressRoute {
                    session: Arc::downgrade(session),
                    token,
                    pending: pending.clone(),
                };
                let mut table = lock(&self.progress);
                // Whatever the server reported before this moment goes first, in order.
                if let Some((first, early)) = table.early.remove(&key)
                    && first.elapsed() < EARLY_PROGRESS_TTL
                {
                    for params in early {
                        self.deliver(&route, params);
                    }
                }
                table.routes.insert(key.clone(), route);
                drop(table);
                (
                    pending,
                    Cleanup(move || {
                        lock(&self.progress).routes.remove(&key);
                    }),
                )
            });
        let _in_flight =
            caller
                .session
                .as_ref()
                .zip(caller.request_id.as_ref())
                .map(|(session, request_id)| {
                    let key = self.next_in_flight.fetch_add(1, Ordering::Relaxed);
                    lock(&self.in_flight).insert(
                        key,
                        InFlight {
                            server: server.to_owned(),
                            session: Arc::downgrade(session),
                            request_id: request_id.clone(),
                            downstream_id: handle.id.clone(),
                            park: caller.park.clone(),
                            logs_for_modern_caller: log_level.filter(|_| modern_caller),
                        },
                    );
                    Cleanup(move || {
                        lock(&self.in_flight).remove(&key);
                    })
                });

        let id = handle.id.clone();
        let peer = handle.peer.clone();
        tokio::select! {
            response = handle.await_response() => {
                // The server sent its progress before its answer; so does the client get them.
                if let Some((pending, _)) = &_progress {
                    let _ = tokio::time::timeout(PROGRESS_FLUSH_WAIT, pending.flushed()).await;
                }
                response.map_err(|error| self.service_error(server, &method, timeout, error))
            }
            () = caller.ct.cancelled() => {
                let params = CancelledNotificationParam::new(Some(id), Some("cancelled by the client".into()));
                let _ = peer.notify_cancelled(params).await;
                Err(RouteError::Cancelled)
            }
        }
    }

    /// The server's live connection; while it is starting or restarting, waits for it within
    /// its timeout (the request then has its own). App mode lists a server's tools before it
    /// connected, and a local server's tools are called by name while it restarts.
    async fn connection_of(
        &self,
        downstream: &Downstream,
        caller: &Caller,
    ) -> Result<Arc<downstream::Connection>, RouteError> {
        if let Some(connection) = downstream.connection() {
            return Ok(connection);
        }
        let deadline = tokio::time::Instant::now() + downstream.config.timeout;
        Ok(downstream.connected(deadline, &caller.ct).await?)
    }

    /// Resolves a name in the current catalog. When it is unknown there, it may belong to a
    /// server that is not connected yet: waits for the servers' first connection attempts (the
    /// first-look wait), then for the server the name's `<slug>__`/`<uuid>__` prefix names, or
    /// whose last known lists offer it, while that server starts or restarts; and resolves
    /// again. A server that does not come up is named in the error, with why.
    async fn resolve_waiting<T>(
        &self,
        caller: &Caller,
        item: Item<'_>,
        resolve: impl Fn(&Catalog) -> Result<T, RouteError>,
    ) -> Result<T, RouteError> {
        let unknown = |result: &Result<T, RouteError>| {
            matches!(
                result,
                Err(RouteError::Resolve(ResolveError::Unknown { .. })
                    | RouteError::UnknownResource(_))
            )
        };
        let resolved = resolve(&self.catalog());
        if !unknown(&resolved) {
            return resolved;
        }
        self.await_first_contact().await;
        let resolved = resolve(&self.catalog());
        if !unknown(&resolved) {
            return resolved;
        }
        let Some(owner) = self.expected_owner(item).await else {
            return resolved;
        };
        tracing::debug!(server = %owner.name, "waiting for the server that offers {item}");
        self.connection_of(&owner, caller).await?;
        resolve(&self.catalog())
    }

    /// The visible server, not connected now, that should own `item`: the one its prefix names
    /// (tools and prompts), else one whose last known lists offer it (the catalog cache: what
    /// the server listed when it was last connected, in this process or an earlier one).
    async fn expected_owner(&self, item: Item<'_>) -> Option<Arc<Downstream>> {
        let down: Vec<Arc<Downstream>> = self
            .visible_servers()
            .into_iter()
            .filter(|server| server.connection().is_none())
            .collect();
        if down.is_empty() {
            return None;
        }
        if let Item::Tool(name) | Item::Prompt(name) = item
            && let Some((prefix, _)) = crate::names::split(name)
            && let Some(server) = down.iter().find(|server| {
                server.slug.eq_ignore_ascii_case(prefix) || server.uuid.eq_ignore_ascii_case(prefix)
            })
        {
            return Some(server.clone());
        }
        self.stored_lists
            .get_or_init(|| async {
                let control = self.control.builtins.control();
                let stored = match control.cached_servers().await {
                    Ok(stored) => stored,
                    Err(error) => {
                        tracing::debug!("catalog cache not read: {error}");
                        Vec::new()
                    }
                };
                let mut cached = lock(&self.cached);
                for server in stored {
                    if let Some(lists) = crate::catalog::ServerLists::from_json(&server.lists) {
                        // What a server listed in this process is newer than the store's copy.
                        cached.entry(server.uuid).or_insert_with(|| Arc::new(lists));
                    }
                }
            })
            .await;
        let cached = lock(&self.cached);
        down.into_iter().find(|server| {
            cached
                .get(&server.uuid)
                .is_some_and(|lists| crate::catalog::offers(lists, item))
        })
    }

    fn service_error(
        &self,
        server: &str,
        method: &str,
        timeout: Duration,
        error: ServiceError,
    ) -> RouteError {
        match error {
            ServiceError::McpError(data) => RouteError::Downstream(data),
            ServiceError::Timeout { .. } => RouteError::Timeout {
                server: server.to_owned(),
                method: method.to_owned(),
                timeout,
            },
            ServiceError::TransportClosed => RouteError::ConnectionLost {
                server: server.to_owned(),
                method: method.to_owned(),
            },
            other => RouteError::Transport {
                server: server.to_owned(),
                method: method.to_owned(),
                message: other.to_string(),
            },
        }
    }

    /// Queues one progress notification for the route's session, with the client's token. Called
    /// with the progress table locked, so notifications keep the order they arrived in.
    fn deliver(&self, route: &ProgressRoute, mut params: ProgressNotificationParam) {
        let Some(session) = route.session.upgrade() else {
            return;
        };
        let Some(peer) = session.peer.get() else {
            return;
        };
        params.progress_token = route.token.clone();
        let outbox = session.outbox.get_or_init(|| {
            let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<Outgoing>();
            let peer = peer.clone();
            // Ends when the session (the sender) is gone.
            self.tracker.spawn(async move {
                while let Some((params, pending)) = receiver.recv().await {
                    let _ = peer.notify_progress(params).await;
                    pending.done();
                }
            });
            sender
        });
        route.pending.count.fetch_add(1, Ordering::AcqRel);
        if outbox.send((params, route.pending.clone())).is_err() {
            route.pending.done();
        }
    }

    /// The session a server-to-client request from `server` belongs to. Exact when the
    /// downstream transport tells which of our requests it came with (Streamable HTTP); else the
    /// one session with requests in flight on that server; else, with no request in flight, the
    /// only session there is.
    async fn attribute(&self, server: &str, origin: Option<&InboundStreamOrigin>) -> Attribution {
        let deadline = tokio::time::Instant::now() + ATTRIBUTION_WAIT;
        loop {
            let found = self.attribute_now(server, origin);
            let settled =
                !matches!(found, Attribution::Nobody) || tokio::time::Instant::now() >= deadline;
            if settled {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn attribute_now(&self, server: &str, origin: Option<&InboundStreamOrigin>) -> Attribution {
        let in_flight = lock(&self.in_flight);
        if let Some(InboundStreamOrigin::OutboundRequest(downstream_id)) = origin {
            let call = in_flight
                .values()
                .find(|call| call.server == server && call.downstream_id == *downstream_id);
            if let Some(park) = call.and_then(|call| call.park.clone()) {
                return Attribution::Parked(park);
            }
            return call
                .and_then(|call| Some((call.session.upgrade()?, call.request_id.clone())))
                .map_or(Attribution::Nobody, |(session, id)| {
                    Attribution::Session(session, Some(id))
                });
        }
        // A parked call's question can be told apart only if it is the one call on the server.
        let mut on_server = in_flight.values().filter(|call| call.server == server);
        if let Some(first) = on_server.next()
            && (first.park.is_some() || on_server.clone().any(|call| call.park.is_some()))
        {
            let others = on_server.count();
            return match (&first.park, others) {
                (Some(park), 0) => Attribution::Parked(park.clone()),
                _ => Attribution::Ambiguous(others + 1),
            };
        }
        let mut sessions: Vec<(Arc<Session>, RequestId)> = Vec::new();
        for call in in_flight.values().filter(|call| call.server == server) {
            let Some(session) = call.session.upgrade() else {
                continue;
            };
            match sessions
                .iter_mut()
                .find(|(known, _)| Arc::ptr_eq(known, &session))
            {
                // Keep the session's latest request: its stream is the freshest.
                Some(entry) => entry.1 = call.request_id.clone(),
                None => sessions.push((session, call.request_id.clone())),
            }
        }
        drop(in_flight);
        match sessions.len() {
            1 => {
                let (session, id) = sessions.remove(0);
                Attribution::Session(session, Some(id))
            }
            0 => {
                let mut live: Vec<_> = self
                    .live_sessions()
                    .into_iter()
                    .filter(|session| session.live_peer().is_some())
                    .collect();
                if live.len() == 1 {
                    Attribution::Session(live.remove(0), None)
                } else {
                    Attribution::Nobody
                }
            }
            several => Attribution::Ambiguous(several),
        }
    }
}

/// Whom a parked call belongs to: the caller's principal, else its session.
fn owner_of(caller: &Caller) -> String {
    match (&caller.principal, &caller.session) {
        (Some(principal), _) => principal.clone(),
        (None, Some(session)) => format!("session:{:p}", Arc::as_ptr(session)),
        (None, None) => "nobody".to_owned(),
    }
}

/// Whether a failed request failed on the server's HTTP 401 (rmcp says "Auth required").
fn is_unauthorized(error: &RouteError) -> bool {
    let text = error.to_string().to_ascii_lowercase();
    [
        "401",
        "unauthorized",
        "auth required",
        "authorization required",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// The text of a tool result, for the activity log's error column.
fn result_text(result: &rmcp::model::CallToolResult) -> String {
    let texts: Vec<&str> = result
        .content
        .iter()
        .filter_map(|content| content.as_text().map(|text| text.text.as_str()))
        .collect();
    if texts.is_empty() {
        "the tool reported an error".to_owned()
    } else {
        texts.join("\n")
    }
}

/// Runs a closure on drop: removes map entries however a request ends.
struct Cleanup<F: FnMut()>(F);

impl<F: FnMut()> Drop for Cleanup<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// The caller's `_meta` minus what belongs to the upstream hop: the progress token (rmcp sets its
/// own) and the protocol keys of the client's revision.
fn forwarded_meta(meta: &RequestMetaObject) -> Option<RequestMetaObject> {
    let mut forwarded = RequestMetaObject::default();
    for (key, value) in meta.iter() {
        if key == "progressToken" || key.starts_with("io.modelcontextprotocol/") {
            continue;
        }
        forwarded.insert(key.clone(), value.clone());
    }
    (!forwarded.is_empty()).then_some(forwarded)
}

/// Whether a message at `level` passes a session's threshold.
fn level_passes(level: LoggingLevel, threshold: Option<LoggingLevel>) -> bool {
    threshold.is_none_or(|threshold| severity(level) >= severity(threshold))
}

fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

impl builtin::Servers for Router {
    fn visible_servers(&self) -> Vec<Arc<Downstream>> {
        Router::visible_servers(self)
    }

    fn tool_visible(&self, server: &Downstream, original: &str) -> bool {
        Router::tool_visible(self, server, original)
    }

    fn catalog(&self) -> Arc<Catalog> {
        Router::catalog(self)
    }

    fn builtin_tools(&self) -> Vec<rmcp::model::Tool> {
        Router::builtin_tools(self)
    }

    fn refresh(&self, servers: Vec<Arc<Downstream>>) {
        if let Some(router) = self.this.upgrade() {
            for server in servers {
                let router = router.clone();
                self.tracker.spawn(async move {
                    match server.relist().await {
                        Ok(()) => {
                            tracing::debug!(server = %server.name, "re-listed");
                            router.rebuild_catalog();
                        }
                        Err(error) => {
                            tracing::info!(server = %server.name, "not re-listed: {error}")
                        }
                    }
                });
            }
        }
        self.tools_listed();
    }
}

impl Events for Router {
    fn catalog_changed(&self) {
        self.rebuild_catalog();
    }

    fn progress(&self, server: &str, params: ProgressNotificationParam) {
        let key = (server.to_owned(), params.progress_token.clone());
        let mut table = lock(&self.progress);
        if let Some(route) = table.routes.get(&key) {
            self.deliver(route, params);
            return;
        }
        let now = std::time::Instant::now();
        // Forget what nobody claimed in time (a request without a client token, or a connection
        // that ended): every so often, and always when full.
        if table.early.len() >= EARLY_PROGRESS_MAX || table.early.len() % 64 == 63 {
            table
                .early
                .retain(|_, (first, _)| now.duration_since(*first) < EARLY_PROGRESS_TTL);
        }
        if table.early.len() >= EARLY_PROGRESS_MAX {
            tracing::debug!(server, "progress for no known request dropped");
            return;
        }
        table
            .early
            .entry(key)
            .or_insert_with(|| (now, Vec::new()))
            .1
            .push(params);
    }

    fn log(&self, server: &str, mut params: LoggingMessageNotificationParam) {
        params.logger = Some(match params.logger.take() {
            Some(logger) => format!("{server}/{logger}"),
            None => server.to_owned(),
        });
        for session in self.live_sessions() {
            if !level_passes(params.level, *lock(&session.log_level)) {
                continue;
            }
            let Some(peer) = session.live_peer().cloned() else {
                continue;
            };
            let params = params.clone();
            self.tracker.spawn(async move {
                let _ = peer.notify_logging_message(params).await;
            });
        }
        // Modern callers have no session to broadcast to: a modern server's message goes to the
        // one modern request in flight on it that asked for logs (with several, nothing in the
        // message tells them apart, and it is not guessed).
        let wanting: Vec<(Weak<Session>, LoggingLevel)> = lock(&self.in_flight)
            .values()
            .filter(|call| call.server == server)
            .filter_map(|call| Some((call.session.clone(), call.logs_for_modern_caller?)))
            .collect();
        if let [(session, level)] = wanting.as_slice()
            && level_passes(params.level, Some(*level))
            && let Some(peer) = session
                .upgrade()
                .and_then(|session| session.peer.get().cloned())
        {
            self.tracker.spawn(async move {
                let _ = peer.notify_logging_message(params).await;
            });
        }
    }

    fn task_status(&self, server: &str, params: Option<serde_json::Value>) {
        core_tasks::status(self, server, params);
    }

    fn resource_updated(&self, _server: &str, params: ResourceUpdatedNotificationParam) {
        self.notify_listeners(vec![ServerNotification::ResourceUpdatedNotification(
            rmcp::model::Notification::new(params.clone()),
        )]);
        for session in self.live_sessions() {
            if !lock(&session.subscriptions).contains(&params.uri) {
                continue;
            }
            let Some(peer) = session.live_peer().cloned() else {
                continue;
            };
            let params = params.clone();
            self.tracker.spawn(async move {
                let _ = peer.notify_resource_updated(params).await;
            });
        }
    }

    fn server_request(
        &self,
        server: &str,
        request: ServerRequest,
        context: RequestContext<RoleClient>,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
        let router = self.this.upgrade();
        let origin = context.extensions.get::<InboundStreamOrigin>().cloned();
        let server = server.to_owned();
        Box::pin(async move {
            let method = method_of(&request);
            if matches!(request, ServerRequest::PingRequest(_)) {
                return Ok(ClientResult::empty(()));
            }
            let Some(router) = router else {
                return Err(ErrorData::internal_error(
                    "the proxy is shutting down",
                    None,
                ));
            };
            let roots = matches!(request, ServerRequest::ListRootsRequest(_));
            let (session, origin) = match router.attribute(&server, origin.as_ref()).await {
                Attribution::Session(session, origin) => (session, origin),
                Attribution::Parked(questions) => {
                    return parked::ask(&questions, request, context.ct).await;
                }
                // Whose roots to give is unknown: the server gets its configured ones.
                Attribution::Nobody | Attribution::Ambiguous(_) if roots => {
                    return router.roots_for_server(&server, None, context.ct).await;
                }
                Attribution::Nobody => {
                    return Err(ErrorData::internal_error(
                        format!(
                            "no client session to answer {method} from server \"{server}\": \
                             it came with no request of ours in flight"
                        ),
                        None,
                    ));
                }
                Attribution::Ambiguous(sessions) => {
                    tracing::warn!(
                        server,
                        method,
                        sessions,
                        "server-to-client request refused: cannot tell which client asked"
                    );
                    return Err(ErrorData::internal_error(
                        format!(
                            "{method} from server \"{server}\" refused: {sessions} client sessions \
                             have calls in flight on it and its transport cannot say which one \
                             this belongs to"
                        ),
                        None,
                    ));
                }
            };
            if roots {
                // Without a request of the session's in flight, it is not this session's call.
                let calling = origin.is_some().then_some((&session, origin));
                return router.roots_for_server(&server, calling, context.ct).await;
            }
            let asker = format!("server \"{server}\"");
            ask_client(&session, origin, &asker, request, context.ct).await
        })
    }
}

/// The method of a server's request to a client, for logs and errors (rmcp's `ServerRequest`
/// has no `method()`, unlike `ClientRequest`).
pub fn method_of(request: &ServerRequest) -> &'static str {
    match request {
        ServerRequest::CreateMessageRequest(_) => "sampling/createMessage",
        ServerRequest::ElicitRequest(_) => "elicitation/create",
        ServerRequest::ListRootsRequest(_) => "roots/list",
        ServerRequest::PingRequest(_) => "ping",
        _ => "a custom request",
    }
}

/// Asks a client session something on a server's behalf (sampling, elicitation, roots), on the
/// stream of the client request `origin` when there is one. `asker` says who asks, for messages
/// (`server "x"`). `cancel` ends the question early.
async fn ask_client(
    session: &Session,
    origin: Option<RequestId>,
    asker: &str,
    mut request: ServerRequest,
    cancel: CancellationToken,
) -> Result<ClientResult, ErrorData> {
    let method = method_of(&request);
    let Some(peer) = session.peer.get().cloned() else {
        return Err(ErrorData::internal_error(
            "the client session is not ready",
            None,
        ));
    };
    let capabilities = peer
        .peer_info()
        .map(|info| info.capabilities.clone())
        .unwrap_or_default();
    let supported = match &request {
        ServerRequest::CreateMessageRequest(_) => capabilities.sampling.is_some(),
        ServerRequest::ElicitRequest(_) => capabilities.elicitation.is_some(),
        ServerRequest::ListRootsRequest(_) => capabilities.roots.is_some(),
        _ => true,
    };
    // Roots are asked only of clients that have the capability (`roots`).
    if !supported {
        return Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!("the client does not support {method} (asked by {asker})"),
            None,
        ));
    }
    // Deliver it on the stream of the client request that caused it (rmcp takes the
    // association from this marker; the downstream's task-local id would be wrong).
    if let Some(origin) = origin {
        request
            .extensions_mut()
            .insert(OriginatingRequestId(origin));
    }
    let asker = asker.to_owned();
    // A fresh task: rmcp's task-local request id of the downstream's request must not leak into
    // the upstream request.
    let ask = tokio::spawn(async move {
        let handle = peer
            .send_request_with_option(
                request,
                PeerRequestOptions::with_timeout(CLIENT_REQUEST_TIMEOUT),
            )
            .await
            .map_err(|error| {
                ErrorData::internal_error(format!("cannot ask the client: {error}"), None)
            })?;
        let id = handle.id.clone();
        let upstream = handle.peer.clone();
        tokio::select! {
            answer = handle.await_response() => answer.map_err(|error| match error {
                ServiceError::McpError(data) => data,
                other => ErrorData::internal_error(format!("the client did not answer {method}: {other}"), None),
            }),
            () = cancel.cancelled() => {
                let params = CancelledNotificationParam::new(
                    Some(id),
                    Some(format!("{asker} cancelled its request")),
                );
                let _ = upstream.notify_cancelled(params).await;
                Err(ErrorData::internal_error("cancelled", None))
            }
        }
    });
    ask.await.map_err(|error| {
        ErrorData::internal_error(format!("asking the client failed: {error}"), None)
    })?
}
