//! Forwarding: sending a request to the server that owns it and carrying the answer back.
//! [`Router::forward`] takes the server's live connection (waiting while it starts), follows
//! the request's progress and registers it for attribution while it is in flight, passes the
//! client's cancellation on, and, when a modern server asks a legacy client for input, asks the
//! client and retries with the answers; a modern client's call to a legacy server is parked
//! instead (`parked`). [`Router::resolve_waiting`] resolves a name that may belong to a server
//! not connected yet. Which name means which server is the catalog's business.

use std::sync::Arc;

use rmcp::model::{
    CancelledNotificationParam, ClientRequest, InputRequest, InputResponses, ProgressToken,
    RequestId, RequestMetaObject, ServerRequest, ServerResult,
};
// Logging is deprecated by SEP-2577; legacy clients and servers use it.
#[allow(deprecated)]
use rmcp::model::LoggingLevel;
use rmcp::service::PeerRequestOptions;
use serde_json::Value;

use super::Router;
use super::attribution::{Forwarded, Registered};
use super::error::{RouteError, service_error};
use super::parked::{self, Fingerprint};
use super::progress::Following;
use super::session::{Caller, Pending, ask_client};
use crate::catalog::{Catalog, Item, ResolveError};
use crate::downstream::{self, Connection, Downstream};
use crate::metrics::{self, Outcome};
use crate::sync::lock;

/// Rounds of `InputRequiredResult` answered for a legacy client before the proxy gives up.
const MAX_INPUT_ROUNDS: usize = 8;

/// The `_meta` key carrying a 2026-07-28 client's capabilities on every request.
const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

impl Router {
    /// Sends a request to a server and returns its answer. When a modern server answers a legacy
    /// client with `InputRequiredResult` (sampling, elicitation or roots wanted), the proxy asks
    /// the client those questions with real requests and retries with the answers, as the
    /// 2026-07-28 revision has clients do; a modern client gets the `InputRequiredResult` itself.
    pub(super) async fn forward(
        &self,
        server: &str,
        request: ClientRequest,
        caller: &Caller,
    ) -> Result<ServerResult, RouteError> {
        let modern_caller = caller.is_modern();
        // A modern client's retry of a call parked here (legacy server waiting for its input).
        if let Some((state, responses)) = parked::retry_of(&request) {
            let fingerprint =
                Fingerprint::of(server, &request).expect("a retry is a parkable request");
            return self
                .parked
                .resume(
                    &state,
                    responses,
                    caller.owner(),
                    fingerprint,
                    &caller.meta,
                    &caller.ct,
                )
                .await;
        }
        // Only a modern server answers with `InputRequiredResult`; for the others (nearly all) the
        // request goes out once, without the copy a retry would need.
        let downstream = self.fleet.server(server)?;
        let modern_server = self.connection_of(&downstream, caller).await?.is_modern();
        if !modern_server {
            if modern_caller
                && caller.session.is_some()
                && let Some(fingerprint) = Fingerprint::of(server, &request)
            {
                return self
                    .forward_parkable(server, request, caller, fingerprint)
                    .await;
            }
            return self.forward_once(server, request, caller).await;
        }
        let first = self.forward_once(server, request.clone(), caller).await?;
        self.input_rounds(server, request, first, caller).await
    }

    /// A modern server's answer to a request: when it asks a legacy client for input
    /// (`InputRequiredResult`), the proxy asks the client with real requests and sends the
    /// request again with the answers, round after round; a modern client gets the
    /// `InputRequiredResult` itself.
    pub(super) async fn input_rounds(
        &self,
        server: &str,
        mut request: ClientRequest,
        mut result: ServerResult,
        caller: &Caller,
    ) -> Result<ServerResult, RouteError> {
        let modern_caller = caller.is_modern();
        for _ in 1..MAX_INPUT_ROUNDS {
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
                        .roots
                        .of_session(
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
            result = self.forward_once(server, request.clone(), caller).await?;
        }
        if !matches!(result, ServerResult::InputRequiredResult(_)) {
            return Ok(result);
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
        fingerprint: Fingerprint,
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
            http: caller.http.clone(),
        };
        let server_name = server.to_owned();
        // A task of its own, in the caller's span still.
        let span = crate::traces::current();
        self.tracker
            .spawn(crate::traces::in_context(span, async move {
                let outcome = router.forward_once(&server_name, request, &detached).await;
                let _ = ends.outcome.send(outcome);
            }));
        self.parked
            .run(call, caller.owner(), fingerprint, &caller.meta, &caller.ct)
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
        let method = metrics::method_label(request.method());
        let tool = match &request {
            ClientRequest::CallToolRequest(call) => Some(call.params.name.clone()),
            _ => None,
        };
        let operation = self.begin_client(server, (method, tool.as_deref()), None, None);
        let result = self
            .forward_once_unmeasured(server, request, caller, &operation.span)
            .await
            .map_err(|error| self.during_shutdown(error));
        let outcome = match &result {
            Ok(ServerResult::CallToolResult(result)) if result.is_error == Some(true) => {
                Outcome::ToolError
            }
            other => Outcome::of(other),
        };
        operation.finish(tool.as_deref(), outcome, &result);
        result
    }

    async fn forward_once_unmeasured(
        &self,
        server: &str,
        request: ClientRequest,
        caller: &Caller,
        span: &crate::traces::Span,
    ) -> Result<ServerResult, RouteError> {
        let method = request.method().to_owned();
        let downstream = self.fleet.server(server)?;
        let connection = self.connection_of(&downstream, caller).await?;
        let timeout = downstream.config.timeout;
        tracing::debug!(server, method, "forwarding");
        let mut options = PeerRequestOptions::with_timeout(timeout);
        options.meta = forwarded_meta(&caller.meta);
        if span.context().is_some() {
            super::observed::inject(span, options.meta.get_or_insert_with(Default::default));
        }
        // A modern server logs only for a request that names a level (2026-07-28): the modern
        // caller's own, else the level a legacy session set with logging/setLevel.
        let modern_caller = caller.is_modern();
        let log_level = log_level_for(&connection, caller);
        if let Some(level) = log_level {
            options
                .meta
                .get_or_insert_with(RequestMetaObject::default)
                .set_log_level(level);
        }
        pass_capabilities(&mut options.meta, &connection, &caller.meta);
        let handle = connection
            .peer
            .send_request_with_option(request, options)
            .await
            .map_err(|error| service_error(server, &method, timeout, error))?;

        let tracked = self.track(
            server,
            caller,
            handle.id.clone(),
            handle.progress_token.clone(),
            log_level.filter(|_| modern_caller),
        );

        let id = handle.id.clone();
        let peer = handle.peer.clone();
        tokio::select! {
            response = handle.await_response() => {
                tracked.flush().await;
                response.map_err(|error| service_error(server, &method, timeout, error))
            }
            () = caller.ct.cancelled() => {
                let params = CancelledNotificationParam::new(Some(id), Some("cancelled by the client".into()));
                let _ = peer.notify_cancelled(params).await;
                Err(RouteError::Cancelled)
            }
        }
    }

    /// Follows a request in flight on a server, until the returned guard is dropped: its
    /// progress (sent with `downstream_token`) goes to the caller's token, and the server's own
    /// requests meanwhile are attributed to the caller's session.
    #[allow(deprecated)] // a modern caller's logging level: see the import
    pub(super) fn track(
        &self,
        server: &str,
        caller: &Caller,
        downstream_id: RequestId,
        downstream_token: ProgressToken,
        logs_for_modern_caller: Option<LoggingLevel>,
    ) -> Tracked<'_> {
        let progress = caller
            .meta
            .get_progress_token()
            .zip(caller.session.as_ref())
            .map(|(token, session)| {
                self.progress
                    .follow(server, downstream_token, session, token)
            });
        let in_flight =
            caller
                .session
                .as_ref()
                .zip(caller.request_id.as_ref())
                .map(|(session, request_id)| {
                    self.in_flight.register(Forwarded {
                        server: server.to_owned(),
                        session: Arc::downgrade(session),
                        request_id: request_id.clone(),
                        downstream_id,
                        park: caller.park.clone(),
                        logs_for_modern_caller,
                    })
                });
        Tracked {
            progress,
            logs: caller
                .session
                .as_ref()
                .map(|session| session.logs().clone()),
            _in_flight: in_flight,
        }
    }

    /// The server's live connection; while it is starting or restarting, waits for it within
    /// its timeout (the request then has its own). App mode lists a server's tools before it
    /// connected, and a local server's tools are called by name while it restarts.
    pub(super) async fn connection_of(
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
    pub(super) async fn resolve_waiting<T>(
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
        self.catalog.offered_by(down, item).await
    }
}

/// How long an answer waits for the log messages before it to reach the client first.
const LOG_FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A request in flight, followed (see [`Router::track`]).
pub(super) struct Tracked<'a> {
    progress: Option<Following<'a>>,
    /// The caller's session's log messages not sent yet.
    logs: Option<Arc<Pending>>,
    _in_flight: Option<Registered<'a>>,
}

impl Tracked<'_> {
    /// The server sent its progress and log messages before its answer; so does the client get
    /// them (for a while at most).
    pub(super) async fn flush(&self) {
        if let Some(progress) = &self.progress {
            progress.flush().await;
        }
        if let Some(logs) = &self.logs {
            let _ = tokio::time::timeout(LOG_FLUSH_WAIT, logs.flushed()).await;
        }
    }
}

/// The log level a request to a modern server names (2026-07-28: a modern server logs only for
/// a request that does): the modern caller's own, else the level a legacy session set with
/// `logging/setLevel`. `None` for a legacy server.
#[allow(deprecated)] // a legacy session's logging level: see the import
pub(super) fn log_level_for(connection: &Connection, caller: &Caller) -> Option<LoggingLevel> {
    if !connection.is_modern() {
        return None;
    }
    if caller.is_modern() {
        return caller.meta.log_level();
    }
    // A legacy client hears every level until it sets one, as from a legacy server.
    caller
        .session
        .as_ref()
        .map(|session| lock(&session.log_level).unwrap_or(LoggingLevel::Debug))
}

/// The caller's `_meta` minus what belongs to the upstream hop: the progress token (rmcp sets its
/// own) and the protocol keys of the client's revision.
pub(super) fn forwarded_meta(meta: &RequestMetaObject) -> Option<RequestMetaObject> {
    let mut forwarded = RequestMetaObject::default();
    for (key, value) in meta.iter() {
        if key == "progressToken" || key.starts_with("io.modelcontextprotocol/") {
            continue;
        }
        forwarded.insert(key.clone(), value.clone());
    }
    (!forwarded.is_empty()).then_some(forwarded)
}

/// The modern client's declared capabilities, to send along to a modern server in place of the
/// proxy's own. `None` for legacy clients (the proxy answers their servers' questions itself).
fn caller_capabilities(meta: &RequestMetaObject) -> Option<Value> {
    let modern = meta
        .protocol_version()
        .is_some_and(|version| !version.has_initialize());
    modern
        .then(|| meta.get(CLIENT_CAPABILITIES).cloned())
        .flatten()
}

/// Puts a modern client's capabilities into the `_meta` of a request to a modern server
/// (rmcp's own per-request capabilities are overridden by what `meta` carries).
fn pass_capabilities(
    meta: &mut Option<RequestMetaObject>,
    server: &Connection,
    caller: &RequestMetaObject,
) {
    if let Some(capabilities) = caller_capabilities(caller).filter(|_| server.is_modern()) {
        meta.get_or_insert_with(Default::default)
            .insert(CLIENT_CAPABILITIES.to_owned(), capabilities);
    }
}
