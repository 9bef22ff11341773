//! One MCP session's handler, [`DemoServer`]: the `ServerHandler` that rmcp calls, each request
//! handed to the file that owns its scenario (tools, resources, prompts, logging, the tasks of
//! the conformance fixtures). It also follows the client's roots under `--watch-roots`: it asks
//! for them once the client initialized and again on each `roots/list_changed`. What every
//! session shares is in [`Shared`].

use std::sync::{Arc, Mutex};

use pluggedin_mcp_proxy::sync::lock;
use pluggedin_mcp_proxy::traces;
use rmcp::{
    ErrorData as McpError, Peer, RoleServer, ServerHandler,
    model::*,
    service::{NotificationContext, RequestContext, SubscriptionContext},
};
use serde_json::json;
use tracing::info;

use crate::{catalog, prompts, resources, shared::Shared};

/// One MCP session's handler; all sessions share [`Shared`].
#[derive(Clone)]
pub(crate) struct DemoServer {
    pub(crate) shared: Arc<Shared>,
    pub(crate) session_id: u64,
    /// Level set by `logging/setLevel` (legacy lifecycle); `None` sends every level.
    #[allow(deprecated)] // logging is SEP-2577-deprecated but part of the legacy protocol
    pub(crate) log_level: Arc<Mutex<Option<LoggingLevel>>>,
}

/// Whether this request uses the 2026-07-28+ lifecycle (no server-to-client requests).
pub(crate) fn is_modern(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|version| !version.has_initialize())
}

impl DemoServer {
    pub(crate) fn new_session(shared: &Arc<Shared>) -> Self {
        Self {
            shared: shared.clone(),
            session_id: shared.next_id(),
            log_level: Arc::new(Mutex::new(None)),
        }
    }

    /// `--watch-roots`: asks the client for its roots and notes the answer.
    #[allow(deprecated)] // roots are SEP-2577-deprecated; following them is what this tests
    async fn note_roots(&self, peer: &Peer<RoleServer>) {
        let Some(seen) = &self.shared.watched_roots else {
            return;
        };
        let answer = match peer.list_roots().await {
            Ok(result) => json!({"roots": result.roots}),
            Err(error) => json!({"error": error.to_string()}),
        };
        info!(%answer, "roots/list answered");
        lock(seen).push(answer);
    }
}

impl ServerHandler for DemoServer {
    fn get_info(&self) -> ServerConfig {
        self.shared.info.clone()
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let supported = context
            .peer
            .peer_info()
            .is_some_and(|info| info.capabilities.roots.is_some());
        if supported {
            self.note_roots(&context.peer).await;
        }
    }

    async fn on_roots_list_changed(&self, context: NotificationContext<RoleServer>) {
        if let Some(seen) = &self.shared.watched_roots {
            lock(seen).push(json!({"listChanged": true}));
            self.note_roots(&context.peer).await;
        }
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        context.peer.set_peer_info(request.clone());
        self.shared
            .register_legacy_peer(self.session_id, &context.peer, None);
        self.negotiate_initialize(&request)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(catalog::tools(
            &self.shared,
        )))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        catalog::tools(&self.shared)
            .into_iter()
            .find(|tool| tool.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        // A server span in the caller's trace (`_meta.traceparent`), as the conventions name it.
        let parent = traces::from_meta(&context.meta);
        let mut span = traces::Span::server(("tools/call", Some(&request.name)), parent);
        span.set("mcp.method.name", "tools/call");
        span.set("gen_ai.tool.name", &*request.name);
        span.set("gen_ai.operation.name", "execute_tool");
        // Over HTTP, the header as it came (the conventions' captured request header).
        let header = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.headers.get("traceparent"))
            .and_then(|value| value.to_str().ok());
        if let Some(header) = header {
            span.set("http.request.header.traceparent", header);
        }
        traces::within(&span, self.call(request, &context)).await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(resources::list()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        resources::read(&self.shared, request.uri.as_str()).map(Into::into)
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.shared
            .register_legacy_peer(self.session_id, &context.peer, Some(request.uri));
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.shared.unsubscribe(self.session_id, &request.uri);
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        // Accept everything; rmcp narrows it to what the capabilities advertise.
        Some(requested.clone())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        self.shared.listen(context).await
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(prompts::list(
            &self.shared,
        )))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        prompts::get(&self.shared, &request)
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        prompts::complete(&request)
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        self.shared.fixtures.get_task(&request.task_id)
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.shared.fixtures.update_task(request)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.shared.fixtures.cancel_task(&request.task_id)
    }

    #[allow(deprecated)] // logging is SEP-2577-deprecated but part of the legacy protocol
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.set_log_level(request.level);
        Ok(())
    }
}
