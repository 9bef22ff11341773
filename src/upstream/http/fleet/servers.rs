//! The route through which the other replicas of a fleet reach the servers of fleet scope this
//! one runs: `/fleet/servers/{name}/mcp`, an MCP endpoint per server that shows it as the
//! server itself shows it (its own names, no prefix). A replica that does not run a server of
//! fleet scope connects here as to any Streamable HTTP server, so its calls, their progress
//! and cancellation, the server's questions and the lists' changes take the paths every server
//! takes on both sides. Behind the route is the router, as for any client: [`ServerView`]
//! narrows a client session's view to one server and maps the names.
//!
//! Only replicas of the fleet may use it: each request carries [`FLEET_SERVER_HEADER`], an
//! HMAC-SHA256 of the server's name under the fleet's session key ([`ServersKey`]), checked in
//! constant time before anything else; without it the answer is 403. The sessions here are
//! rmcp's own, in this process: one per replica and server, made only by replicas.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult, CustomRequest,
    CustomResult, DiscoverResult, GetPromptRequestParams, GetPromptResponse,
    InitializeRequestParams, InitializeResult, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, Reference, ServerConfig, SubscribeRequestParams, Tool,
    UnsubscribeRequestParams,
};
// Logging is deprecated by SEP-2577; legacy clients and servers use it.
#[allow(deprecated)]
use rmcp::model::SetLevelRequestParams;
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::json;

use crate::catalog::{Catalog, PromptRoute};
use crate::router::{FLEET_SERVER_HEADER, FleetOwner, Router};
use crate::upstream::ProxyHandler;

/// Bound into every credential: a MAC made with the same key for another purpose never passes.
const PURPOSE: &[u8] = b"pluggedin-mcp-proxy fleet server\0";

/// The key that makes and checks the replicas' credentials for the route.
pub(crate) struct ServersKey {
    key: hmac::Key,
}

impl ServersKey {
    /// A key from the fleet's session key (`--session-key`, or the one kept in the store).
    pub(crate) fn new(secret: &str) -> ServersKey {
        ServersKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
        }
    }

    /// The credential for server `name`: what a replica sends in [`FLEET_SERVER_HEADER`].
    pub(crate) fn credential(&self, name: &str) -> String {
        let tag = hmac::sign(&self.key, &message(name));
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// Whether `credential` is the one for server `name` (in constant time).
    fn verify(&self, name: &str, credential: &[u8]) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(credential) else {
            return false;
        };
        hmac::verify(&self.key, &message(name), &tag).is_ok()
    }
}

fn message(name: &str) -> Vec<u8> {
    [PURPOSE, name.as_bytes()].concat()
}

/// The server a request on the route is for, from its path.
#[derive(Clone, Debug)]
struct ServerName(Arc<str>);

/// Refuses a request without the credential for the server its path names (403, saying what
/// the route is); passes the name on to the session's handler.
pub(crate) async fn check(
    State(key): State<Arc<ServersKey>>,
    Path(name): Path<String>,
    mut request: Request,
    next: Next,
) -> Response {
    let passed = request
        .headers()
        .get(FLEET_SERVER_HEADER)
        .is_some_and(|credential| key.verify(&name, credential.as_bytes()));
    if !passed {
        let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600,
        "message": format!(
            "this route is how the replicas of a fleet reach each other's servers; the \
             {FLEET_SERVER_HEADER} header is missing or not made with the fleet's session \
             key (clients use /mcp)"
        )}});
        return (axum::http::StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    request.extensions_mut().insert(ServerName(name.into()));
    next.run(request).await
}

/// A client session of the router that sees one server, under the names the server gives.
#[derive(Clone)]
pub(crate) struct ServerView {
    inner: ProxyHandler,
    router: Arc<Router>,
}

impl ServerView {
    pub(crate) fn new(router: Arc<Router>) -> ServerView {
        ServerView {
            inner: ProxyHandler::serving_replicas(router.clone()),
            router,
        }
    }

    /// The server this request is for, if this replica runs it.
    fn server(&self, context: &RequestContext<RoleServer>) -> Result<Arc<str>, ErrorData> {
        let name = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<ServerName>())
            .map(|name| name.0.clone())
            .ok_or_else(|| ErrorData::invalid_request("no server named in the path", None))?;
        match self.router.fleet_owner(&name) {
            Some(FleetOwner::Here { .. }) => Ok(name),
            _ => Err(ErrorData::internal_error(
                format!(
                    "this replica does not run server \"{name}\" for the fleet (any more); \
                     the replicas settle who does within seconds"
                ),
                None,
            )),
        }
    }

    /// The name under which the catalog shows `server`'s tool `original`.
    fn exposed_tool(catalog: &Catalog, server: &str, original: &str) -> Option<String> {
        catalog
            .tools
            .iter()
            .find(|tool| {
                catalog
                    .resolve_tool(&tool.name)
                    .is_ok_and(|route| route.server == server && route.original == original)
            })
            .map(|tool| tool.name.to_string())
    }

    /// The name under which the catalog shows `server`'s prompt `original`.
    fn exposed_prompt(catalog: &Catalog, server: &str, original: &str) -> Option<String> {
        catalog
            .prompts
            .iter()
            .find(|prompt| {
                matches!(catalog.resolve_prompt(&prompt.name),
                    Ok(PromptRoute::Downstream(route))
                        if route.server == server && route.original == original)
            })
            .map(|prompt| prompt.name.clone())
    }

    fn tools(catalog: &Catalog, server: &str) -> Vec<Tool> {
        catalog
            .tools
            .iter()
            .filter_map(|tool| {
                let route = catalog.resolve_tool(&tool.name).ok()?;
                (route.server == server).then(|| {
                    let mut tool = tool.clone();
                    tool.name = route.original.into();
                    tool
                })
            })
            .collect()
    }
}

fn unknown(kind: &str, name: &str, server: &str) -> ErrorData {
    ErrorData::invalid_params(
        format!("unknown {kind} \"{name}\" of server \"{server}\""),
        Some(json!({ "name": name })),
    )
}

// resources/subscribe and unsubscribe are legacy-only in rmcp 3 (deprecated); the replicas
// reach each other as legacy clients.
#[allow(deprecated)]
impl ServerHandler for ServerView {
    fn get_info(&self) -> ServerConfig {
        self.inner.get_info()
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        self.server(&context)?;
        self.inner.initialize(request, context).await
    }

    async fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, ErrorData> {
        self.server(&context)?;
        self.inner.discover(context).await
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        self.server(&context)?;
        self.inner.on_custom_request(request, context).await
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.inner.on_initialized(context).await;
    }

    async fn on_roots_list_changed(&self, context: NotificationContext<RoleServer>) {
        self.inner.on_roots_list_changed(context).await;
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let server = self.server(&context)?;
        self.router.await_first_contact().await;
        let catalog = self.router.catalog();
        Ok(ListToolsResult::with_all_items(Self::tools(
            &catalog, &server,
        )))
    }

    async fn call_tool(
        &self,
        mut request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let server = self.server(&context)?;
        let catalog = self.router.catalog();
        request.name = Self::exposed_tool(&catalog, &server, &request.name)
            .ok_or_else(|| unknown("tool", &request.name, &server))?
            .into();
        self.inner.call_tool(request, context).await
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        // Only rmcp's check of a call's `Mcp-Param-*` headers asks, without a request to say
        // which server: the tool of that name of any server this replica runs for the fleet.
        let catalog = self.router.catalog();
        self.router
            .servers()
            .iter()
            .filter(|server| {
                matches!(
                    self.router.fleet_owner(&server.name),
                    Some(FleetOwner::Here { .. })
                )
            })
            .find_map(|server| {
                Self::tools(&catalog, &server.name)
                    .into_iter()
                    .find(|tool| tool.name == name)
            })
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let server = self.server(&context)?;
        self.router.await_first_contact().await;
        let catalog = self.router.catalog();
        // The server's own prompts; its configured instructions are each replica's own.
        let prompts = catalog
            .prompts
            .iter()
            .filter_map(|prompt| match catalog.resolve_prompt(&prompt.name) {
                Ok(PromptRoute::Downstream(route)) if *route.server == *server => {
                    let mut prompt = prompt.clone();
                    prompt.name = route.original;
                    Some(prompt)
                }
                _ => None,
            })
            .collect();
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        mut request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let server = self.server(&context)?;
        let catalog = self.router.catalog();
        request.name = Self::exposed_prompt(&catalog, &server, &request.name)
            .ok_or_else(|| unknown("prompt", &request.name, &server))?;
        self.inner.get_prompt(request, context).await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let server = self.server(&context)?;
        self.router.await_first_contact().await;
        let catalog = self.router.catalog();
        let resources = catalog
            .resources
            .iter()
            .filter(|resource| catalog.resolve_resource(&resource.uri) == Some(&*server))
            .cloned()
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let server = self.server(&context)?;
        self.router.await_first_contact().await;
        let catalog = self.router.catalog();
        let templates = catalog
            .templates
            .iter()
            .filter(|template| catalog.resolve_template(&template.uri_template) == Some(&*server))
            .cloned()
            .collect();
        Ok(ListResourceTemplatesResult::with_all_items(templates))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.server(&context)?;
        self.inner.read_resource(request, context).await
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.server(&context)?;
        self.inner.subscribe(request, context).await
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.server(&context)?;
        self.inner.unsubscribe(request, context).await
    }

    async fn complete(
        &self,
        mut request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let server = self.server(&context)?;
        if let Reference::Prompt(prompt) = &mut request.r#ref {
            let catalog = self.router.catalog();
            prompt.name = Self::exposed_prompt(&catalog, &server, &prompt.name)
                .ok_or_else(|| unknown("prompt", &prompt.name, &server))?;
        }
        self.inner.complete(request, context).await
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.server(&context)?;
        self.inner.set_level(request, context).await
    }
}
