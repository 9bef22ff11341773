//! Serving clients: the MCP server side of the proxy. [`ProxyHandler`] answers every client
//! request from the router's catalog or by forwarding through the router; `stdio` frames it on
//! stdin/stdout. One handler value exists per client session, all sharing one router.

pub mod fast_calls;
pub mod http;
pub mod scrape;
pub mod stdio;
pub mod tool_pages;

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult, DiscoverResult,
    GetPromptRequestParams, GetPromptResponse, InitializeRequestParams, InitializeResult,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ResultType,
    ServerConfig, ServerResult, SubscribeRequestParams, SubscriptionFilter,
    UnsubscribeRequestParams,
};
// Logging is deprecated by SEP-2577; legacy clients and servers use it.
#[allow(deprecated)]
use rmcp::model::SetLevelRequestParams;
use rmcp::model::{CancelTaskParams, GetTaskParams, GetTaskResult, Tool, UpdateTaskParams};
use rmcp::model::{CustomRequest, CustomResult};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::transport::streamable_http_server::session::SessionRestoreMarker;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use crate::router::{Caller, HttpTrace, Operation, Router, Session};

/// The server handler of one client session.
#[derive(Clone)]
pub struct ProxyHandler {
    router: Arc<Router>,
    session: Arc<Session>,
    /// This handler's own random name, for binding parked calls to a stdio client.
    id: Arc<str>,
    /// Over stateful HTTP: the session manager, told which router session serves which HTTP
    /// session (for hibernation).
    http_sessions: Option<Arc<http::sessions::BoundedSessions>>,
    /// Set by the session's first `initialize`.
    handshake_done: Arc<std::sync::atomic::AtomicBool>,
}

impl ProxyHandler {
    /// A handler for a new client session.
    pub fn new(router: Arc<Router>) -> ProxyHandler {
        ProxyHandler::with_session(router, Session::default())
    }

    /// The handler through which the other replicas of a fleet reach this one's servers of
    /// fleet scope: their calls are recorded in the activity log by the replica called.
    pub(crate) fn serving_replicas(router: Arc<Router>) -> ProxyHandler {
        ProxyHandler::with_session(router, Session::serving_replicas())
    }

    fn with_session(router: Arc<Router>, session: Session) -> ProxyHandler {
        let session = Arc::new(session);
        router.register_session(&session);
        let id = format!("session:{}", uuid::Uuid::new_v4().simple()).into();
        ProxyHandler {
            router,
            session,
            id,
            http_sessions: None,
            handshake_done: Arc::default(),
        }
    }

    /// The handler of the one stdio client, whose roots are the servers' roots.
    pub fn stdio(router: Arc<Router>) -> ProxyHandler {
        let handler = ProxyHandler::new(router);
        handler.router.set_roots_owner(&handler.session);
        handler
    }

    /// This stdio session's fast entry for `tools/call` (`fast_calls`).
    pub fn fast_calls(&self) -> Arc<fast_calls::FastCalls> {
        fast_calls::FastCalls::new(self.router.clone(), self.session.clone(), self.id.clone())
    }

    /// The handler of a stateful HTTP session managed by `sessions`.
    pub(crate) fn with_http_sessions(
        mut self,
        sessions: Option<Arc<http::sessions::BoundedSessions>>,
    ) -> ProxyHandler {
        self.http_sessions = sessions;
        self
    }

    /// A request rmcp does not know: a core task method, or a known one whose params it could
    /// not read.
    async fn custom_request(
        &self,
        caller: &Caller,
        method: String,
        params: Option<serde_json::Value>,
    ) -> Result<CustomResult, ErrorData> {
        // An MCP method whose params rmcp could not read arrives here as a custom request; one
        // that 2026-07-28 removed, from a modern client, stays an unknown method.
        let modern = caller
            .meta
            .protocol_version()
            .is_some_and(|version| !version.has_initialize());
        let removed = matches!(
            method.as_str(),
            "initialize" | "logging/setLevel" | "resources/subscribe" | "resources/unsubscribe"
        );
        if !(modern && removed)
            && let Some(why) = invalid_params(&method, params.as_ref())
        {
            return Err(ErrorData::invalid_params(
                format!("invalid params for {method}: {why}"),
                None,
            ));
        }
        match self.router.answer_core_task(caller, &method, params).await {
            Some(answer) => answer.map(CustomResult),
            None => Err(ErrorData::new(
                rmcp::model::ErrorCode::METHOD_NOT_FOUND,
                method,
                None,
            )),
        }
    }

    /// Begins a request answered here (the router's own begin themselves): its caller as
    /// traces and metrics see it, and its operation.
    fn begin(
        &self,
        context: &RequestContext<RoleServer>,
        method: &'static str,
    ) -> (Caller, Operation) {
        let mut caller = Caller::from_context(&self.session, context);
        if let Some(parts) = context.extensions.get::<axum::http::request::Parts>() {
            caller.http = HttpTrace::of(&parts.headers, None);
        }
        let operation = self.router.begin(&caller, method, None);
        (caller, operation)
    }

    /// Runs `work`, a request answered here, observed: in its span, finished with its outcome.
    async fn observed<T>(
        &self,
        context: &RequestContext<RoleServer>,
        method: &'static str,
        work: impl std::future::Future<Output = Result<T, ErrorData>>,
    ) -> Result<T, ErrorData> {
        let (caller, operation) = self.begin(context, method);
        let result = crate::traces::within(&operation.span, work).await;
        self.finish(&caller, operation, &result);
        result
    }

    fn finish<T>(&self, caller: &Caller, operation: Operation, result: &Result<T, ErrorData>) {
        let outcome = crate::metrics::Outcome::of(result);
        let error = result
            .as_ref()
            .err()
            .map(|error| &error.message as &dyn std::fmt::Display);
        self.router.finish(operation, caller, None, outcome, error);
    }

    /// Keeps what the client asked to hear where a fleet replica adopting its session finds it.
    async fn keep_interests(&self, context: &RequestContext<RoleServer>) {
        let Some(sessions) = &self.http_sessions else {
            return;
        };
        let id = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.headers.get("mcp-session-id"))
            .and_then(|id| id.to_str().ok());
        if let Some(id) = id {
            sessions.keep_interests(id, &self.session).await;
        }
    }

    /// Makes this session's subscriptions again on this process's downstream connections.
    fn resubscribe(&self) {
        let uris = self.session.subscribed();
        if uris.is_empty() {
            return;
        }
        let router = self.router.clone();
        let session = self.session.clone();
        tokio::spawn(async move {
            let caller = Caller::for_session(session);
            for uri in uris {
                let params = SubscribeRequestParams::new(uri.clone());
                if let Err(error) = router.subscribe(&caller, params).await {
                    tracing::warn!(uri, "an adopted session's subscription not made: {error}");
                }
            }
        });
    }

    fn caller(&self, context: &RequestContext<RoleServer>) -> Caller {
        // Modern (2026-07-28) clients never initialize: the first request brings the peer.
        self.session.attach(&context.peer);
        let mut caller = Caller::from_context(&self.session, context);
        caller.principal = Some(principal(context).unwrap_or_else(|| self.id.to_string()));
        if let Some(parts) = context.extensions.get::<axum::http::request::Parts>() {
            caller.http = HttpTrace::of(&parts.headers, None);
        }
        caller
    }
}

/// Over HTTP, who sends a request beyond its (per-request, for modern clients) session.
fn principal(context: &RequestContext<RoleServer>) -> Option<String> {
    let parts = context.extensions.get::<axum::http::request::Parts>()?;
    Some(http_principal(&parts.headers))
}

/// A digest of a request's `Authorization` header: the same for every request with the same
/// token.
pub(crate) fn http_principal(headers: &axum::http::HeaderMap) -> String {
    use sha2::Digest;
    use std::fmt::Write;
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .map(|value| value.as_bytes())
        .unwrap_or_default();
    let digest = sha2::Sha256::digest(authorization);
    let mut text = String::with_capacity(5 + 2 * digest.len());
    text.push_str(crate::router::HTTP_PRINCIPAL_PREFIX);
    for byte in digest {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

fn cursor(request: Option<&PaginatedRequestParams>) -> Option<&str> {
    request.and_then(|params| params.cursor.as_deref())
}

/// A page of tools as `tools/list` answers it (here, and encoded once in `tool_pages`).
fn tools_result(tools: Vec<Tool>, next: Option<String>) -> ListToolsResult {
    let mut result = ListToolsResult::with_all_items(tools);
    result.next_cursor = next;
    result
}

fn unexpected(method: &str) -> ErrorData {
    ErrorData::internal_error(
        format!("the server answered {method} with an unexpected result"),
        None,
    )
}

// resources/subscribe and unsubscribe are legacy-only in rmcp 3 (deprecated), but legacy clients
// are most clients today.
#[allow(deprecated)]
impl ServerHandler for ProxyHandler {
    fn get_info(&self) -> ServerConfig {
        self.router.info()
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        self.observed(&context, "initialize", async {
            // One handshake per session: a second `initialize` must not renegotiate what the first
            // agreed (rmcp would take its parameters as the session's from here on).
            if self
                .handshake_done
                .swap(true, std::sync::atomic::Ordering::AcqRel)
            {
                return Err(ErrorData::invalid_request(
                    "the session is already initialized; a second initialize is refused",
                    None,
                ));
            }
            context.peer.set_peer_info(request.clone());
            self.session.attach(&context.peer);
            // Capabilities and instructions cannot change after this answer: it waits for the
            // servers still connecting for the first time (bounded by --startup-wait).
            self.router.await_first_contact().await;
            // A hibernated HTTP session waking up: rmcp replays its `initialize`.
            if let Some(sessions) = &self.http_sessions
                && let Some(marker) = context.extensions.get::<SessionRestoreMarker>()
                && sessions.resumed(&marker.id, &self.session)
            {
                // Adopted from a fleet replica that is gone: its subscriptions were that
                // replica's downstream; they are made again here.
                self.resubscribe();
            }
            let mut result = self.negotiate_initialize(&request)?;
            self.router
                .announce_core_tasks(&result.protocol_version, &mut result.capabilities);
            Ok(result)
        })
        .await
    }

    async fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, ErrorData> {
        self.observed(&context, "server/discover", async {
            // A modern client's first look, as `initialize` is a legacy one's.
            self.router.await_first_contact().await;
            Ok(DiscoverResult::from_server_info(
                self.supported_protocol_versions().into_owned(),
                self.get_info(),
            ))
        })
        .await
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        let caller = self.caller(&context);
        let CustomRequest { method, params, .. } = request;
        let operation = self
            .router
            .begin(&caller, crate::metrics::method_label(&method), None);
        let custom = self.custom_request(&caller, method, params);
        let result = crate::traces::within(&operation.span, custom).await;
        self.finish(&caller, operation, &result);
        result
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.session.attach(&context.peer);
        self.session.mark_initialized();
        // The stdio client's roots are asked now (servers may be waiting for them); an HTTP
        // session's are asked when a server asks during one of its calls.
        self.router.refresh_client_roots(&self.session);
        if let Some(sessions) = &self.http_sessions
            && let Some(id) = context
                .extensions
                .get::<axum::http::request::Parts>()
                .and_then(|parts| parts.headers.get("mcp-session-id"))
                .and_then(|id| id.to_str().ok())
        {
            sessions.link(id, &self.session);
        }
    }

    async fn on_roots_list_changed(&self, _context: NotificationContext<RoleServer>) {
        self.router.refresh_client_roots(&self.session);
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.observed(&context, "tools/list", async {
            self.router.await_first_contact().await;
            let exposure = self.router.tool_exposure(principal(&context).as_deref());
            let (tools, next) =
                self.router
                    .list_tools_for(&self.session, exposure, cursor(request.as_ref()))?;
            Ok(tools_result(tools, next))
        })
        .await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let outcome = self.router.call_tool(&self.caller(&context), request).await;
        // A tool activated for the session: kept where a replica adopting it reads it.
        if self.session.take_interests_changed() {
            self.keep_interests(&context).await;
        }
        match outcome? {
            ServerResult::CallToolResult(mut result) => {
                // A legacy server's result has no `resultType`; a modern client requires one (rmcp
                // strips it again for legacy clients).
                result.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(CallToolResponse::Complete(result))
            }
            ServerResult::InputRequiredResult(result) => {
                Ok(CallToolResponse::InputRequired(result))
            }
            ServerResult::CreateTaskResult(result) => Ok(CallToolResponse::Task(result)),
            _ => Err(unexpected("tools/call")),
        }
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        // rmcp checks a call's `Mcp-Param-*` headers against the tool's `x-mcp-header`s.
        let catalog = self.router.catalog();
        let meta = crate::builtin::search_tools::tools();
        catalog
            .tools
            .iter()
            .chain(meta)
            .find(|tool| tool.name == name)
            .cloned()
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        let caller = self.caller(&context);
        let get = self.router.get_task(&caller, request);
        self.observed(&context, "tasks/get", get).await
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.observed(&context, "tasks/update", async {
            self.router
                .update_task(&self.caller(&context), request)
                .await
        })
        .await
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.observed(&context, "tasks/cancel", async {
            self.router
                .cancel_task(&self.caller(&context), request)
                .await
        })
        .await
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.observed(&context, "prompts/list", async {
            self.router.await_first_contact().await;
            let (prompts, next) = self.router.list_prompts(cursor(request.as_ref()))?;
            let mut result = ListPromptsResult::with_all_items(prompts);
            result.next_cursor = next;
            Ok(result)
        })
        .await
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        match self
            .router
            .get_prompt(&self.caller(&context), request)
            .await?
        {
            ServerResult::GetPromptResult(mut result) => {
                result.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(GetPromptResponse::Complete(result))
            }
            ServerResult::InputRequiredResult(result) => {
                Ok(GetPromptResponse::InputRequired(result))
            }
            _ => Err(unexpected("prompts/get")),
        }
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.observed(&context, "resources/list", async {
            self.router.await_first_contact().await;
            let (resources, next) = self.router.list_resources(cursor(request.as_ref())).await?;
            let mut result = ListResourcesResult::with_all_items(resources);
            result.next_cursor = next;
            Ok(result)
        })
        .await
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.observed(&context, "resources/templates/list", async {
            self.router.await_first_contact().await;
            let (templates, next) = self.router.list_templates(cursor(request.as_ref()))?;
            let mut result = ListResourceTemplatesResult::with_all_items(templates);
            result.next_cursor = next;
            Ok(result)
        })
        .await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        match self
            .router
            .read_resource(&self.caller(&context), request)
            .await?
        {
            ServerResult::ReadResourceResult(mut result) => {
                result.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(ReadResourceResponse::Complete(result))
            }
            ServerResult::InputRequiredResult(result) => {
                Ok(ReadResourceResponse::InputRequired(result))
            }
            _ => Err(unexpected("resources/read")),
        }
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.observed(&context, "resources/subscribe", async {
            self.router
                .subscribe(&self.caller(&context), request)
                .await?;
            self.keep_interests(&context).await;
            Ok(())
        })
        .await
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.observed(&context, "resources/unsubscribe", async {
            self.router
                .unsubscribe(&self.caller(&context), request)
                .await?;
            self.keep_interests(&context).await;
            Ok(())
        })
        .await
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let mut result = self
            .router
            .complete(&self.caller(&context), request)
            .await?;
        result.result_type.get_or_insert(ResultType::COMPLETE);
        Ok(result)
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        // Everything asked for; rmcp narrows it to what `get_info` announces.
        Some(requested.clone())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        self.router.listen(context).await;
        Ok(())
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.observed(&context, "logging/setLevel", async {
            self.router
                .set_level(&self.caller(&context), request.level)
                .await;
            self.keep_interests(&context).await;
            Ok(())
        })
        .await
    }
}

/// Why `params` do not make the MCP request `method` names, when it is one of the methods rmcp
/// reads (a request it cannot read reaches the handler as a custom request, which would
/// otherwise be answered `-32601` as if the method did not exist). A request that does read as
/// its method reached the handler for another reason (a method the negotiated protocol version
/// removed, say): `None`, and it is answered as before.
fn invalid_params(method: &str, params: Option<&serde_json::Value>) -> Option<String> {
    fn why<T: serde::de::DeserializeOwned>(
        method: &str,
        params: Option<&serde_json::Value>,
    ) -> Option<String> {
        let mut request = serde_json::Map::new();
        request.insert("method".into(), method.into());
        if let Some(params) = params {
            request.insert("params".into(), params.clone());
        }
        serde_json::from_value::<T>(serde_json::Value::Object(request))
            .err()
            .map(|error| error.to_string())
    }
    use rmcp::model::*;
    match method {
        "initialize" => why::<InitializeRequest>(method, params),
        "tools/call" => why::<CallToolRequest>(method, params),
        "tools/list" => why::<ListToolsRequest>(method, params),
        "prompts/get" => why::<GetPromptRequest>(method, params),
        "prompts/list" => why::<ListPromptsRequest>(method, params),
        "resources/read" => why::<ReadResourceRequest>(method, params),
        "resources/list" => why::<ListResourcesRequest>(method, params),
        "resources/templates/list" => why::<ListResourceTemplatesRequest>(method, params),
        // Legacy-only methods (logging deprecated by SEP-2577, subscriptions replaced by
        // subscriptions/listen); legacy clients send them.
        #[allow(deprecated)]
        "resources/subscribe" => why::<SubscribeRequest>(method, params),
        #[allow(deprecated)]
        "resources/unsubscribe" => why::<UnsubscribeRequest>(method, params),
        "completion/complete" => why::<CompleteRequest>(method, params),
        #[allow(deprecated)]
        "logging/setLevel" => why::<SetLevelRequest>(method, params),
        _ => None,
    }
}
