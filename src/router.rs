//! The router: the one place that knows which server owns a name. It holds the configured
//! [`Downstream`]s and the current [`Catalog`], forwards requests to their owners with the
//! original names, and carries what flows back — progress with the client's own token, log
//! messages, resource updates, list changes, and server-to-client requests — to the client
//! session that caused it. It knows nothing of HTTP, stdio framing or SQL.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use rmcp::model::{
    CallToolRequestParams, CancelledNotificationParam, ClientRequest, ClientResult,
    CompleteRequestParams, CompleteResult, ErrorCode, ErrorData, GetPromptRequestParams,
    GetPromptResult, Implementation, ListRootsResult, LoggingLevel,
    LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken, PromptsCapability,
    ReadResourceRequestParams, Reference, Request, RequestId, ResourceUpdatedNotificationParam,
    ResourcesCapability, ServerCapabilities, ServerConfig, ServerRequest, ServerResult,
    SetLevelRequestParams, SubscribeRequestParams, ToolsCapability, UnsubscribeRequestParams,
};
use rmcp::model::{GetExtensions, RequestMetaObject};
use rmcp::service::{
    InboundStreamOrigin, OriginatingRequestId, Peer, PeerRequestOptions, RequestContext,
    ServiceError,
};
use rmcp::{RoleClient, RoleServer};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::catalog::{Catalog, InvalidCursor, PromptRoute, ResolveError, ServerEntry, page};
use crate::cli::PrefixMode;
use crate::config::Config;
use crate::downstream::{self, Downstream, Events, ServerState};
use crate::ids::ServerIds;

/// How long a client may take to answer a server's sampling or elicitation request.
const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Why a request could not be served. Converted to a JSON-RPC error in one place.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error("unknown resource \"{0}\"")]
    UnknownResource(String),
    #[error(transparent)]
    Cursor(#[from] InvalidCursor),
    #[error("server \"{server}\" is not connected ({state})")]
    NotConnected { server: String, state: ServerState },
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
}

/// JSON-RPC `-32001`, the request-timeout code the official SDKs use.
const REQUEST_TIMEOUT: ErrorCode = ErrorCode(-32001);

impl From<RouteError> for ErrorData {
    fn from(error: RouteError) -> ErrorData {
        let message = error.to_string();
        match error {
            RouteError::Downstream(data) => data,
            RouteError::Resolve(_) | RouteError::Cursor(_) => {
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
            | RouteError::ConnectionLost { .. }
            | RouteError::Transport { .. }
            | RouteError::UnexpectedResult { .. }
            | RouteError::Cancelled => ErrorData::internal_error(message, None),
        }
    }
}

/// One client session as the router sees it: where to send notifications and server-to-client
/// requests, and what the client asked for (log level, resource subscriptions).
#[derive(Default)]
pub struct Session {
    peer: OnceLock<Peer<RoleServer>>,
    initialized: AtomicBool,
    log_level: Mutex<Option<LoggingLevel>>,
    subscriptions: Mutex<HashSet<String>>,
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
}

/// Who is asking: the session, the request id and `_meta` of the client's request, and its
/// cancellation. The inspector commands call with no session.
pub struct Caller {
    pub session: Option<Arc<Session>>,
    pub request_id: Option<RequestId>,
    pub meta: RequestMetaObject,
    pub ct: CancellationToken,
}

impl Caller {
    pub fn from_context(session: &Arc<Session>, context: &RequestContext<RoleServer>) -> Caller {
        Caller {
            session: Some(session.clone()),
            request_id: Some(context.id.clone()),
            meta: context.meta.clone(),
            ct: context.ct.clone(),
        }
    }

    /// A caller with no client behind it (the `call` command).
    pub fn detached() -> Caller {
        Caller {
            session: None,
            request_id: None,
            meta: RequestMetaObject::default(),
            ct: CancellationToken::new(),
        }
    }
}

/// Where a downstream progress token leads.
struct ProgressRoute {
    session: Weak<Session>,
    token: ProgressToken,
}

/// A forwarded request in flight, for finding the session a server-to-client request belongs to.
struct InFlight {
    server: String,
    session: Weak<Session>,
    request_id: RequestId,
    /// The id the request has on the downstream connection.
    downstream_id: RequestId,
}

/// Which client session a server-to-client request belongs to.
enum Attribution {
    Session(Arc<Session>, Option<RequestId>),
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
    progress: Mutex<HashMap<(String, ProgressToken), ProgressRoute>>,
    in_flight: Mutex<BTreeMap<u64, InFlight>>,
    next_in_flight: AtomicU64,
    ids: ServerIds,
    tracker: TaskTracker,
    cancel: CancellationToken,
    this: Weak<Router>,
}

/// Lock helpers: these locks guard short sections only; a panic elsewhere must not wedge us.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Router {
    pub fn new(
        mode: PrefixMode,
        page_size: usize,
        ids: ServerIds,
        tracker: TaskTracker,
        cancel: CancellationToken,
    ) -> Arc<Router> {
        Arc::new_cyclic(|this| Router {
            mode,
            page_size,
            servers: RwLock::default(),
            catalog: RwLock::default(),
            sessions: Mutex::default(),
            progress: Mutex::default(),
            in_flight: Mutex::default(),
            next_in_flight: AtomicU64::new(0),
            ids,
            tracker,
            cancel,
            this: this.clone(),
        })
    }

    fn events(&self) -> Arc<dyn Events> {
        // `self` is alive, so the weak self-reference upgrades.
        let this: Arc<Router> = self.this.upgrade().expect("router is alive while in use");
        this
    }

    /// Applies a (new) configuration: starts added servers, stops removed ones, restarts changed
    /// ones, and leaves the rest alone.
    pub fn apply_config(&self, config: &Config) {
        let names: Vec<&str> = config.servers.keys().map(String::as_str).collect();
        let slugs = crate::catalog::naming::unique_slugs(names.iter().copied());
        let mut started = Vec::new();
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
                    if existing.config == *server_config && existing.slug == slug {
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
                    self.cancel.child_token(),
                ));
                servers.insert(name.clone(), downstream.clone());
                started.push(downstream);
            }
        }
        for downstream in started {
            downstream::spawn(downstream, self.events(), &self.tracker);
        }
        self.rebuild_catalog();
    }

    /// The configured servers, in name order.
    pub fn servers(&self) -> Vec<Arc<Downstream>> {
        read(&self.servers).values().cloned().collect()
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        read(&self.catalog).clone()
    }

    /// Waits until every server has settled (connected, failed or disabled), or the timeout.
    pub async fn wait_settled(&self, timeout: Duration) {
        let servers = self.servers();
        let settle = futures::future::join_all(servers.iter().map(|server| async move {
            let mut state = server.subscribe_state();
            let _ = state.wait_for(ServerState::is_settled).await;
        }));
        let _ = tokio::time::timeout(timeout, settle).await;
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
        let servers = self.servers();
        let lists: Vec<_> = servers.iter().map(|server| server.lists()).collect();
        let entries: Vec<ServerEntry<'_>> = servers
            .iter()
            .zip(&lists)
            .filter(|(server, _)| !server.config.disabled)
            .map(|(server, lists)| ServerEntry {
                name: &server.name,
                slug: &server.slug,
                uuid: &server.uuid,
                filter: &server.config.tools,
                lists,
                instructions: server.config.instructions.as_deref(),
            })
            .collect();
        let catalog = Arc::new(Catalog::build(&entries, self.mode));
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
        let has_instructions = servers
            .iter()
            .any(|server| server.config.instructions.is_some());
        if pending || has_instructions || connected.iter().any(|c| c.capabilities.prompts.is_some())
        {
            let mut prompts = PromptsCapability::default();
            prompts.list_changed = Some(true);
            capabilities.prompts = Some(prompts);
        }
        if pending || connected.iter().any(|c| c.capabilities.resources.is_some()) {
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
        let mut implementation = Implementation::new("PluggedinMCP", env!("CARGO_PKG_VERSION"));
        implementation.title = Some("plugged.in MCP Proxy".to_owned());
        let mut info = ServerConfig::new(capabilities).with_server_info(implementation);
        info.instructions = self.instructions();
        info
    }

    /// The combined instructions: each server's configured ones, then what the server said.
    fn instructions(&self) -> Option<String> {
        let mut text = String::new();
        for server in self.servers() {
            let configured = server
                .config
                .instructions
                .iter()
                .flatten()
                .map(|m| m.text.as_str());
            let own = server.connection().and_then(|c| c.instructions);
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
        Ok(page(&self.catalog().tools, cursor, self.page_size)?)
    }

    pub fn list_prompts(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<rmcp::model::Prompt>, Option<String>), RouteError> {
        Ok(page(&self.catalog().prompts, cursor, self.page_size)?)
    }

    pub fn list_resources(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<rmcp::model::Resource>, Option<String>), RouteError> {
        Ok(page(&self.catalog().resources, cursor, self.page_size)?)
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
        let route = self.catalog().resolve_tool(&params.name)?;
        params.name = route.original.into();
        params.meta = None;
        self.forward(
            &route.server,
            ClientRequest::CallToolRequest(Request::new(params)),
            caller,
        )
        .await
    }

    pub async fn get_prompt(
        &self,
        caller: &Caller,
        mut params: GetPromptRequestParams,
    ) -> Result<ServerResult, RouteError> {
        let catalog = self.catalog();
        match catalog.resolve_prompt(&params.name)? {
            PromptRoute::Instructions { server } => {
                let messages = catalog.instructions(&server).unwrap_or_default().to_vec();
                let mut result = GetPromptResult::new(messages);
                result.description = Some(format!("Custom instructions for the {server} server"));
                Ok(ServerResult::GetPromptResult(result))
            }
            PromptRoute::Downstream(route) => {
                params.name = route.original;
                params.meta = None;
                self.forward(
                    &route.server,
                    ClientRequest::GetPromptRequest(Request::new(params)),
                    caller,
                )
                .await
            }
        }
    }

    pub async fn read_resource(
        &self,
        caller: &Caller,
        mut params: ReadResourceRequestParams,
    ) -> Result<ServerResult, RouteError> {
        let server = self.resource_owner(&params.uri)?;
        params.meta = None;
        self.forward(
            &server,
            ClientRequest::ReadResourceRequest(Request::new(params)),
            caller,
        )
        .await
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
        let server = self.resource_owner(&params.uri)?;
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
        self.forward(
            &server,
            ClientRequest::SubscribeRequest(Request::new(params)),
            caller,
        )
        .await?;
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
        let server = self.resource_owner(&params.uri)?;
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
            if connection.capabilities.logging.is_none() {
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

    /// Sends one request to a server and waits for its answer, forwarding progress to the
    /// caller's token and the caller's cancellation to the server.
    async fn forward(
        &self,
        server: &str,
        request: ClientRequest,
        caller: &Caller,
    ) -> Result<ServerResult, RouteError> {
        let method = request.method().to_owned();
        let downstream = self.server(server)?;
        let connection = downstream
            .connection()
            .ok_or_else(|| RouteError::NotConnected {
                server: server.to_owned(),
                state: downstream.state(),
            })?;
        let timeout = downstream.config.timeout;
        tracing::debug!(server, method, "forwarding");
        let mut options = PeerRequestOptions::with_timeout(timeout);
        options.meta = forwarded_meta(&caller.meta);
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
                lock(&self.progress).insert(
                    key.clone(),
                    ProgressRoute {
                        session: Arc::downgrade(session),
                        token,
                    },
                );
                Cleanup(move || {
                    lock(&self.progress).remove(&key);
                })
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
                response.map_err(|error| self.service_error(server, &method, timeout, error))
            }
            () = caller.ct.cancelled() => {
                let params = CancelledNotificationParam::new(Some(id), Some("cancelled by the client".into()));
                let _ = peer.notify_cancelled(params).await;
                Err(RouteError::Cancelled)
            }
        }
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
            return in_flight
                .values()
                .find(|call| call.server == server && call.downstream_id == *downstream_id)
                .and_then(|call| Some((call.session.upgrade()?, call.request_id.clone())))
                .map_or(Attribution::Nobody, |(session, id)| {
                    Attribution::Session(session, Some(id))
                });
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

impl Events for Router {
    fn catalog_changed(&self) {
        self.rebuild_catalog();
    }

    fn progress(&self, server: &str, mut params: ProgressNotificationParam) {
        let route = lock(&self.progress)
            .get(&(server.to_owned(), params.progress_token.clone()))
            .and_then(|route| Some((route.session.upgrade()?, route.token.clone())));
        let Some((session, token)) = route else {
            tracing::debug!(server, "progress for no known request dropped");
            return;
        };
        let Some(peer) = session.peer.get().cloned() else {
            return;
        };
        params.progress_token = token;
        self.tracker.spawn(async move {
            let _ = peer.notify_progress(params).await;
        });
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
    }

    fn resource_updated(&self, _server: &str, params: ResourceUpdatedNotificationParam) {
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
        mut request: ServerRequest,
        context: RequestContext<RoleClient>,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
        let router = self.this.upgrade();
        let origin = context.extensions.get::<InboundStreamOrigin>().cloned();
        let server = server.to_owned();
        Box::pin(async move {
            let method = match &request {
                ServerRequest::CreateMessageRequest(_) => "sampling/createMessage",
                ServerRequest::ElicitRequest(_) => "elicitation/create",
                ServerRequest::ListRootsRequest(_) => "roots/list",
                ServerRequest::PingRequest(_) => return Ok(ClientResult::empty(())),
                _ => "a custom request",
            };
            let Some(router) = router else {
                return Err(ErrorData::internal_error(
                    "the proxy is shutting down",
                    None,
                ));
            };
            let (session, origin) = match router.attribute(&server, origin.as_ref()).await {
                Attribution::Session(session, origin) => (session, origin),
                Attribution::Nobody if matches!(request, ServerRequest::ListRootsRequest(_)) => {
                    return Ok(ClientResult::ListRootsResult(ListRootsResult::default()));
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
            if !supported {
                if matches!(request, ServerRequest::ListRootsRequest(_)) {
                    return Ok(ClientResult::ListRootsResult(ListRootsResult::default()));
                }
                return Err(ErrorData::new(
                    ErrorCode::METHOD_NOT_FOUND,
                    format!("the client does not support {method} (asked by server \"{server}\")"),
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
            // A fresh task: rmcp's task-local request id of the downstream's request must not
            // leak into the upstream request.
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
                    () = context.ct.cancelled() => {
                        let params = CancelledNotificationParam::new(
                            Some(id),
                            Some(format!("server \"{server}\" cancelled its request")),
                        );
                        let _ = upstream.notify_cancelled(params).await;
                        Err(ErrorData::internal_error("cancelled", None))
                    }
                }
            });
            ask.await.map_err(|error| {
                ErrorData::internal_error(format!("asking the client failed: {error}"), None)
            })?
        })
    }
}
