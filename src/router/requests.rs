//! The requests that name one item: `tools/call`, `prompts/get`, `resources/read` and
//! `completion/complete`. Each finds its owner — a built-in tool or prompt, the library, the
//! catalog's server, or the server the App names (`source`) — forwards with the original name,
//! and hands the outcome to the activity recorder. A tool that is off says why; in App mode a
//! server that answered 401 gets its configuration re-read from the App once. How a request
//! travels is `forward`'s business.

use std::sync::Arc;
use std::time::Instant;

use serde_json::value::RawValue;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientRequest, CompleteRequestParams, CompleteResult,
    GetPromptRequestParams, GetPromptResult, ReadResourceRequestParams, Reference, Request,
    ServerResult, Tool,
};

use super::error::RouteError;
use super::relay::{self, Relayable, Relayed};
use super::session::Caller;
use super::source::{Owner, Source};
use super::{Router, exposure, tasks};
use crate::builtin;
use crate::builtin::search_tools;
use crate::catalog::{Catalog, Item, PromptRoute, Route};
use crate::control::app::AppError;
use crate::control::time::now_ms;
use crate::control::{Activity, ActivityAction};
use crate::downstream::{Downstream, ServerState};
use crate::metrics::{self, HasCode, Outcome};
use crate::traces;

impl Router {
    pub async fn call_tool(
        &self,
        caller: &Caller,
        params: CallToolRequestParams,
    ) -> Result<ServerResult, RouteError> {
        match self.call_tool_relayed(caller, params, None).await? {
            Relayed::Typed(result) => Ok(*result),
            Relayed::Raw(_) => unreachable!("a call with typed arguments is answered typed"),
        }
    }

    /// A `tools/call` whose arguments may be raw (`raw`, in place of `params.arguments`: the fast
    /// entries, `upstream::fast_calls`), answered then with a server's result unparsed where it
    /// was relayed on a lane (`relay`), in the legacy shape; a call with typed arguments is
    /// answered typed. Every call takes this one path: built-in tools, the first-contact wait,
    /// policy, forwarding and the activity log.
    pub async fn call_tool_relayed(
        &self,
        caller: &Caller,
        params: CallToolRequestParams,
        raw: Option<Box<RawValue>>,
    ) -> Result<Relayed, RouteError> {
        let _in_flight = metrics::global().in_flight();
        // A call through `pluggedin_call_tool` is the direct call from here on: its span,
        // metrics, route, policy and activity entry are the named tool's.
        let (params, raw) = exposure::direct_call(params, raw);
        let name = params.name.clone();
        // With tracing on, the route the catalog keeps for the name is taken first: the call's
        // spans begin with the heads it keeps.
        let route = traces::enabled()
            .then(|| self.catalog().tool_route(&name).cloned())
            .flatten();
        let head = route.as_ref().and_then(|route| route.heads.server());
        let operation = self.begin_kept(caller, "tools/call", Some(&name), head);
        let started = Instant::now();
        // Without a span the call is awaited where it is made; with one it is pinned where it is
        // made and the span's wrapper holds a reference to it: a call's future is large, and
        // moving it into the wrapper would copy it.
        let (outcome, tool_error) = if let Some(context) = operation.span.context() {
            let routed =
                std::pin::pin!(self.call_tool_routed(caller, (params, route), raw, started));
            traces::entered(context.clone(), routed).await
        } else {
            self.call_tool_routed(caller, (params, route), raw, started)
                .await
        };
        let metric = match &outcome {
            Ok(_) if tool_error => Outcome::ToolError,
            Ok(_) => Outcome::Ok,
            Err(error) => Outcome::Code(error.code()),
        };
        // A name the catalog does not serve is no label: clients choose it.
        let named = !matches!(
            outcome,
            Err(RouteError::Resolve(_) | RouteError::NotServed { .. })
        );
        let error = outcome
            .as_ref()
            .err()
            .map(|error| error as &dyn std::fmt::Display);
        self.finish(operation, caller, named.then_some(&*name), metric, error);
        outcome
    }

    /// The answer of a tool the proxy runs itself (a built-in or a meta-tool), recorded, and
    /// whether it is the tool's own error.
    fn answer_builtin(
        &self,
        caller: &Caller,
        name: &str,
        started: Instant,
        result: CallToolResult,
    ) -> (Result<Relayed, RouteError>, bool) {
        let error = (result.is_error == Some(true)).then(|| relay::result_text(&result));
        let tool_error = error.is_some();
        self.record(
            caller,
            ActivityAction::ToolCall,
            builtin::activity_identity(name),
            name,
            started,
            error,
        );
        let answer = Relayed::typed(ServerResult::CallToolResult(result));
        (Ok(answer), tool_error)
    }

    /// A `tools/call` routed (`route`: the catalog's for its name, when already taken),
    /// recorded, and said whether the tool answered with its own error.
    async fn call_tool_routed(
        &self,
        caller: &Caller,
        (mut params, route): (CallToolRequestParams, Option<Route>),
        raw: Option<Box<RawValue>>,
        started: Instant,
    ) -> (Result<Relayed, RouteError>, bool) {
        if let Some(name) = search_tools::canonical(&params.name) {
            if let Err(error) = decode_raw(&mut params, raw.as_deref()) {
                return (Err(error), false);
            }
            let result = self.call_meta_tool(caller, name, params.arguments.as_ref());
            return self.answer_builtin(caller, name, started, result);
        }
        if let Some(name) = builtin::canonical(&params.name)
            && !self.visibility.disables(name)
        {
            if let Err(error) = decode_raw(&mut params, raw.as_deref()) {
                return (Err(error), false);
            }
            // Boxed: a call to a server does not carry a built-in's future in its own.
            let mut span =
                traces::Span::child(traces::Kind::Internal, ("execute_tool", Some(name)));
            span.set("gen_ai.operation.name", "execute_tool");
            span.set("gen_ai.tool.name", name);
            let call = self.builtins.call(self, name, params.arguments.as_ref());
            let result = Box::pin(traces::within(&span, call)).await;
            if result.is_error == Some(true) {
                span.fail("tool_error", "the built-in tool answered with an error");
            }
            return self.answer_builtin(caller, name, started, result);
        }
        let name = params.name.clone();
        // A tool that is off (disabled, its server disabled or outside the workspace, filtered)
        // says so instead of "unknown"; one whose server is starting is waited for.
        let route = match route {
            Some(route) => Ok(route),
            None => {
                self.resolve_waiting(caller, Item::Tool(&name), |catalog| {
                    catalog.resolve_tool(&name).map_err(|error| {
                        self.visibility
                            .not_served(&name, &self.fleet)
                            .unwrap_or(error.into())
                    })
                })
                .await
            }
        };
        let route = match route {
            Ok(route) => route,
            Err(error) => return (Err(error), false),
        };
        params.name = route.original.clone().into();
        params.meta = None;
        let before = self.fleet.server(&route.server).ok();
        let raw = raw.as_deref();
        let head = route.heads.client();
        let mut outcome = self
            .relay_tool_call(&route.server, (&params, head), raw, caller)
            .await;
        if let Err(error) = &outcome
            && self
                .reread_after_unauthorized(&route.server, before.as_ref(), error)
                .await
        {
            outcome = self
                .relay_tool_call(&route.server, (&params, head), raw, caller)
                .await;
        }
        let raw_caller = raw.is_some();
        let outcome = outcome.and_then(|answer| match answer {
            Relayed::Typed(result) => {
                Ok(Relayed::typed(tasks::created(self, &route.server, *result)))
            }
            relayed => relayed.for_caller(&route.server, Relayable::CallTool, raw_caller),
        });
        let (error, tool_error) = match &outcome {
            Ok(answer) => match answer.tool_error() {
                Some(text) => (Some(text), true),
                None => (None, false),
            },
            Err(error) => (Some(error.to_string()), false),
        };
        let (name, uuid) = self.fleet.identity(&route.server);
        self.record_call(
            caller,
            ActivityAction::ToolCall,
            (&name, &uuid),
            &route.original,
            started,
            (error, tool_error),
        );
        (outcome, tool_error)
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
        let Source::App(app) = self.source() else {
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
        let current = self.fleet.server(server).ok();
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
        let Ok(downstream) = self.fleet.server(server) else {
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

    pub async fn get_prompt(
        &self,
        caller: &Caller,
        params: GetPromptRequestParams,
    ) -> Result<ServerResult, RouteError> {
        self.get_prompt_relayed(caller, params, false)
            .await
            .map(typed)
    }

    /// A `prompts/get`, answered with a server's result unparsed for a `raw_caller` (a legacy
    /// client's fast entry, `upstream::fast_calls`) where it was relayed on a lane, in the
    /// legacy shape; a typed caller is answered typed.
    pub async fn get_prompt_relayed(
        &self,
        caller: &Caller,
        params: GetPromptRequestParams,
        raw_caller: bool,
    ) -> Result<Relayed, RouteError> {
        let operation = self.begin(caller, "prompts/get", Some(&params.name));
        let routed = self.get_prompt_routed(caller, params, raw_caller, Instant::now());
        self.observed(caller, operation, routed).await
    }

    async fn get_prompt_routed(
        &self,
        caller: &Caller,
        mut params: GetPromptRequestParams,
        raw_caller: bool,
        started: Instant,
    ) -> Result<Relayed, RouteError> {
        if params.name == builtin::capabilities::NAME {
            let result = builtin::capabilities::get(&self.builtin_tools());
            self.record(
                caller,
                ActivityAction::PromptGet,
                builtin::capabilities::ACTIVITY_IDENTITY,
                builtin::capabilities::NAME,
                started,
                None,
            );
            return Ok(Relayed::typed(ServerResult::GetPromptResult(result)));
        }
        let catalog = self.catalog();
        if let Owner::App(owner) = self.source().prompt_owner(&catalog, &params.name).await {
            // App mode: the owner from `/api/resolve/prompt`, the name unchanged.
            let name = params.name.clone();
            params.meta = None;
            let request = ClientRequest::GetPromptRequest(Request::new(params));
            let target = (ActivityAction::PromptGet, "get prompt", name.as_str());
            return self
                .forward_to_app_owner(caller, target, owner, request, started)
                .await
                .map(Relayed::typed);
        }
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
                let (_, uuid) = self.fleet.identity(&server);
                self.record(
                    caller,
                    ActivityAction::PromptGet,
                    ("Custom Instructions", &uuid),
                    &params.name,
                    started,
                    None,
                );
                Ok(Relayed::typed(ServerResult::GetPromptResult(result)))
            }
            PromptRoute::Downstream(route) => {
                params.name = route.original.clone();
                params.meta = None;
                let request = ClientRequest::GetPromptRequest(Request::new(params));
                let outcome = self
                    .relay_request(&route.server, request, caller)
                    .await
                    .and_then(|relayed| {
                        relayed.for_caller(&route.server, Relayable::GetPrompt, raw_caller)
                    });
                let (name, uuid) = self.fleet.identity(&route.server);
                self.record(
                    caller,
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
        params: ReadResourceRequestParams,
    ) -> Result<ServerResult, RouteError> {
        self.read_resource_relayed(caller, params, false)
            .await
            .map(typed)
    }

    /// A `resources/read`, answered as [`Router::get_prompt_relayed`] answers.
    pub async fn read_resource_relayed(
        &self,
        caller: &Caller,
        params: ReadResourceRequestParams,
        raw_caller: bool,
    ) -> Result<Relayed, RouteError> {
        let operation = self.begin(caller, "resources/read", None);
        let routed = self.read_resource_routed(caller, params, raw_caller, Instant::now());
        self.observed(caller, operation, routed).await
    }

    async fn read_resource_routed(
        &self,
        caller: &Caller,
        mut params: ReadResourceRequestParams,
        raw_caller: bool,
        started: Instant,
    ) -> Result<Relayed, RouteError> {
        match self.source().resource_owner(&params.uri).await {
            Owner::App(owner) => {
                // App mode: the owner from `/api/resolve/resource`, the URI unchanged.
                let uri = params.uri.clone();
                params.meta = None;
                let request = ClientRequest::ReadResourceRequest(Request::new(params));
                let target = (ActivityAction::ResourceRead, "read resource", uri.as_str());
                return self
                    .forward_to_app_owner(caller, target, owner, request, started)
                    .await
                    .map(Relayed::typed);
            }
            Owner::Library => {
                // The library's documents are read from the store, not a server.
                let outcome = match self.builtins.read_document(&params.uri).await {
                    Ok(Some(result)) => Ok(ServerResult::ReadResourceResult(result)),
                    Ok(None) => Err(RouteError::UnknownResource(params.uri.clone())),
                    Err(error) => Err(RouteError::Library(error.to_string())),
                };
                self.record(
                    caller,
                    ActivityAction::ResourceRead,
                    ("Document System", "pluggedin_documents"),
                    &params.uri,
                    started,
                    outcome.as_ref().err().map(ToString::to_string),
                );
                return outcome.map(Relayed::typed);
            }
            Owner::Catalog => {}
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
        let request = ClientRequest::ReadResourceRequest(Request::new(params));
        let outcome = self
            .relay_request(&server, request, caller)
            .await
            .and_then(|relayed| relayed.for_caller(&server, Relayable::ReadResource, raw_caller));
        let (name, uuid) = self.fleet.identity(&server);
        self.record(
            caller,
            ActivityAction::ResourceRead,
            (&name, &uuid),
            &uri,
            started,
            outcome.as_ref().err().map(ToString::to_string),
        );
        outcome
    }

    /// Sends a request to the server the App named as its owner (a UUID), and records it.
    /// `target` is the activity, the verb for error messages and the item's name.
    async fn forward_to_app_owner(
        &self,
        caller: &Caller,
        (action, verb, item): (ActivityAction, &str, &str),
        owner: Result<String, AppError>,
        request: ClientRequest,
        started: Instant,
    ) -> Result<ServerResult, RouteError> {
        let server = match owner {
            Ok(uuid) => self.fleet.by_uuid(&uuid).ok_or_else(|| {
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
            caller,
            action,
            (&identity.0, &identity.1),
            item,
            started,
            outcome.as_ref().err().map(ToString::to_string),
        );
        outcome
    }

    pub async fn complete(
        &self,
        caller: &Caller,
        params: CompleteRequestParams,
    ) -> Result<CompleteResult, RouteError> {
        match self
            .complete_relayed(caller, params, false)
            .await
            .map(typed)?
        {
            ServerResult::CompleteResult(result) => Ok(result),
            // `complete_at` turns any other result of a server into `UnexpectedResult`.
            _ => unreachable!("a typed completion is answered with a CompleteResult"),
        }
    }

    /// A `completion/complete`, answered as [`Router::get_prompt_relayed`] answers.
    pub async fn complete_relayed(
        &self,
        caller: &Caller,
        params: CompleteRequestParams,
        raw_caller: bool,
    ) -> Result<Relayed, RouteError> {
        let operation = self.begin(caller, "completion/complete", None);
        let routed = self.complete_routed(caller, params, raw_caller);
        self.observed(caller, operation, routed).await
    }

    async fn complete_routed(
        &self,
        caller: &Caller,
        mut params: CompleteRequestParams,
        raw_caller: bool,
    ) -> Result<Relayed, RouteError> {
        let none = || {
            Ok(Relayed::typed(ServerResult::CompleteResult(
                CompleteResult::default(),
            )))
        };
        let catalog = self.catalog();
        // App mode: the App knows who owns its prompts and resources. Completion is a
        // convenience, so an owner the App cannot name means no suggestions, not an error.
        let owner = match &params.r#ref {
            Reference::Prompt(prompt) => self.source().prompt_owner(&catalog, &prompt.name).await,
            Reference::Resource(resource) => self.source().resource_owner(&resource.uri).await,
            _ => return none(),
        };
        if let Owner::App(owner) = owner {
            let Some(server) = owner.ok().and_then(|uuid| self.fleet.by_uuid(&uuid)) else {
                return none();
            };
            return self
                .complete_at(&server.name, caller, params, raw_caller)
                .await;
        }
        let server = match &mut params.r#ref {
            Reference::Prompt(prompt) => match catalog.resolve_prompt(&prompt.name)? {
                // Instructions take no arguments.
                PromptRoute::Instructions { .. } => return none(),
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
            _ => return none(),
        };
        self.complete_at(&server, caller, params, raw_caller).await
    }

    /// Forwards a completion request to `server` (none when it does not do completions).
    async fn complete_at(
        &self,
        server: &str,
        caller: &Caller,
        mut params: CompleteRequestParams,
        raw_caller: bool,
    ) -> Result<Relayed, RouteError> {
        let downstream = self.fleet.server(server)?;
        if downstream
            .connection()
            .is_some_and(|c| c.capabilities.completions.is_none())
        {
            return Ok(Relayed::typed(ServerResult::CompleteResult(
                CompleteResult::default(),
            )));
        }
        params.meta = None;
        let request = ClientRequest::CompleteRequest(Request::new(params));
        match self.relay_request(server, request, caller).await? {
            Relayed::Typed(typed) if matches!(*typed, ServerResult::CompleteResult(_)) => {
                Ok(Relayed::Typed(typed))
            }
            Relayed::Typed(_) => Err(RouteError::UnexpectedResult {
                server: server.to_owned(),
                method: Relayable::Complete.method().into(),
            }),
            relayed => relayed.for_caller(server, Relayable::Complete, raw_caller),
        }
    }

    /// Records a tool call that did not go through [`Router::call_tool`] (`core_tasks`).
    pub(super) fn record_tool_call(
        &self,
        caller: &Caller,
        server: &str,
        tool: &str,
        started: Instant,
        error: Option<String>,
    ) {
        let (name, uuid) = self.fleet.identity(server);
        self.record(
            caller,
            ActivityAction::ToolCall,
            (&name, &uuid),
            tool,
            started,
            error,
        );
    }

    /// Hands one finished request to the activity recorder.
    fn record(
        &self,
        caller: &Caller,
        action: ActivityAction,
        identity: (&str, &str),
        item: &str,
        started: Instant,
        error: Option<String>,
    ) {
        self.record_call(caller, action, identity, item, started, (error, false));
    }

    /// [`Router::record`], saying whether the error is a tool's own error result (`isError`)
    /// rather than a failed request.
    fn record_call(
        &self,
        caller: &Caller,
        action: ActivityAction,
        (server_name, server_uuid): (&str, &str),
        item: &str,
        started: Instant,
        (error, tool_error): (Option<String>, bool),
    ) {
        // Another replica's request for a server of fleet scope: that replica, which its client
        // called, records it (once for the fleet, with the whole call's duration and outcome).
        if caller.serves_replica() {
            return;
        }
        self.recorder.record(Activity {
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
}

/// What the built-in tools see of the servers (`pluggedin_discover_tools`).
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

    fn builtin_tools(&self) -> Vec<Tool> {
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

/// The answer to a typed caller, which the `_relayed` methods always answer typed.
fn typed(relayed: Relayed) -> ServerResult {
    match relayed {
        Relayed::Typed(result) => *result,
        Relayed::Raw(_) => unreachable!("a typed caller is answered typed"),
    }
}

/// A fast entry's arguments as written (`raw`), decoded into `params` for a tool the proxy runs
/// itself.
fn decode_raw(
    params: &mut CallToolRequestParams,
    raw: Option<&RawValue>,
) -> Result<(), RouteError> {
    if let Some(raw) = raw {
        params.arguments = Some(relay::decode_arguments(raw)?);
    }
    Ok(())
}
