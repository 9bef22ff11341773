//! The proxy's downstream client, runnable on its own for the MCP conformance suite's client
//! scenarios: `conformance client --command "pluggedin-conformance-client"` starts it as
//! `pluggedin-conformance-client <url>` with `MCP_CONFORMANCE_SCENARIO`,
//! `MCP_CONFORMANCE_PROTOCOL_VERSION` and (sometimes) `MCP_CONFORMANCE_CONTEXT` set.
//!
//! It connects to `<url>` exactly as the proxy connects to a configured Streamable HTTP server —
//! the same config parsing, supervisor, handshake, client handler and listing code
//! (`downstream`) — speaking the generation the suite asks for (2026-07-28: `server/discover`
//! and per-request `_meta`; older: `initialize`). Then it does what a client in front of the
//! proxy would: calls the scenario's tools (from the context, else every listed tool with
//! arguments made from its schema), reads every resource and gets every prompt. Where the proxy
//! would ask its own client (sampling, elicitation, roots), this stands in for that user: it
//! answers sampling with a fixed text, accepts elicitation with the schema's defaults, and has
//! no roots. A modern server's `InputRequiredResult` is answered the same way and retried, as the
//! router does for a legacy client.

// Sampling, roots and logging are SEP-2577-deprecated; legacy servers still use them.
#![allow(deprecated)]

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use pluggedin_mcp_proxy::config::Config;
use pluggedin_mcp_proxy::downstream::{self, Downstream, Events, ServerState};
use pluggedin_mcp_proxy::router::method_of;
use pluggedin_mcp_proxy::secret::Secret;
use rmcp::RoleClient;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientResult, CreateMessageResult, ElicitResult,
    ElicitationAction, ErrorData, GetPromptRequestParams, GetPromptResponse, InputRequest,
    InputResponses, ListRootsResult, LoggingMessageNotificationParam, ProgressNotificationParam,
    ReadResourceRequestParams, ReadResourceResponse, ResourceUpdatedNotificationParam,
    SamplingMessage, ServerRequest,
};
use rmcp::service::{Peer, RequestContext};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a legacy session's standalone stream gets to open before the first call.
const STREAM_SETTLE: Duration = Duration::from_millis(500);

/// Rounds of `InputRequiredResult` answered before giving up, as rmcp's own client does.
const MAX_ROUNDS: usize = 10;

/// This client's metadata document (SEP-991), as the suite's CIMD scenario expects it.
const CLIENT_METADATA_URL: &str = "https://conformance-test.local/client-metadata.json";

/// Stands in for the user behind the proxy.
struct User;

impl Events for User {
    fn catalog_changed(&self) {}

    fn progress(&self, server: &str, params: ProgressNotificationParam) {
        tracing::info!(server, progress = params.progress, "progress");
    }

    fn log(&self, server: &str, params: LoggingMessageNotificationParam) {
        tracing::info!(server, level = ?params.level, data = %params.data, "log message");
    }

    fn resource_updated(&self, server: &str, params: ResourceUpdatedNotificationParam) {
        tracing::info!(server, uri = params.uri, "resource updated");
    }

    fn server_request(
        &self,
        server: &str,
        request: ServerRequest,
        _context: RequestContext<RoleClient>,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
        tracing::info!(server, "the server asks: {}", method_of(&request));
        Box::pin(async move { answer(request) })
    }
}

/// The user's answer to a server's question.
fn answer(request: ServerRequest) -> Result<ClientResult, ErrorData> {
    match request {
        ServerRequest::PingRequest(_) => Ok(ClientResult::empty(())),
        ServerRequest::CreateMessageRequest(_) => Ok(ClientResult::CreateMessageResult(Box::new(
            CreateMessageResult::new(
                SamplingMessage::assistant_text("This is a test response from the client."),
                "pluggedin-conformance-client".into(),
            )
            .with_stop_reason(CreateMessageResult::STOP_REASON_END_TURN),
        ))),
        ServerRequest::ElicitRequest(request) => {
            let params = serde_json::to_value(&request.params).unwrap_or_default();
            let content = schema_defaults(&params["requestedSchema"]);
            Ok(ClientResult::ElicitResult(
                ElicitResult::new(ElicitationAction::Accept).with_content(Value::Object(content)),
            ))
        }
        ServerRequest::ListRootsRequest(_) => {
            Ok(ClientResult::ListRootsResult(ListRootsResult::default()))
        }
        _ => Err(ErrorData::new(
            rmcp::model::ErrorCode::METHOD_NOT_FOUND,
            "this client answers sampling, elicitation, roots and ping only",
            None,
        )),
    }
}

/// An object with each property's `default` from a JSON schema (what a form left untouched
/// submits, SEP-1034).
fn schema_defaults(schema: &Value) -> Map<String, Value> {
    let mut content = Map::new();
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            if let Some(default) = property.get("default") {
                content.insert(name.clone(), default.clone());
            }
        }
    }
    content
}

/// Arguments for a tool: every required property, from its default, first enum value, or type.
fn arguments_for(schema: &Map<String, Value>) -> Map<String, Value> {
    let mut arguments = Map::new();
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let properties = schema.get("properties").and_then(Value::as_object);
    for name in required {
        let property = properties.and_then(|p| p.get(name)).cloned();
        let property = property.unwrap_or(Value::Null);
        let value = if let Some(default) = property.get("default") {
            default.clone()
        } else if let Some(first) = property["enum"].as_array().and_then(|v| v.first()) {
            first.clone()
        } else {
            match property["type"].as_str() {
                Some("number" | "integer") => json!(1),
                Some("boolean") => json!(true),
                Some("array") => json!([]),
                Some("object") => json!({}),
                _ => json!("test"),
            }
        };
        arguments.insert(name.to_owned(), value);
    }
    arguments
}

/// Answers an `InputRequiredResult`'s questions as the user would.
fn input_responses(
    requests: Option<std::collections::BTreeMap<String, InputRequest>>,
) -> Result<InputResponses, String> {
    let mut responses = InputResponses::new();
    for (key, request) in requests.unwrap_or_default() {
        let request = match request {
            InputRequest::CreateMessage(request) => ServerRequest::CreateMessageRequest(request),
            InputRequest::Elicitation(request) => ServerRequest::ElicitRequest(request),
            InputRequest::ListRoots(request) => ServerRequest::ListRootsRequest(request),
            other => return Err(format!("an input request of an unknown kind: {other:?}")),
        };
        let result = answer(request).map_err(|error| error.message.to_string())?;
        let value = match result {
            ClientResult::CreateMessageResult(result) => serde_json::to_value(result),
            ClientResult::ElicitResult(result) => serde_json::to_value(result),
            ClientResult::ListRootsResult(result) => serde_json::to_value(result),
            _ => return Err("no answer for an input request".into()),
        }
        .map_err(|error| error.to_string())?;
        responses.insert(key, value);
    }
    Ok(responses)
}

async fn call_tool(
    peer: &Peer<RoleClient>,
    name: &str,
    arguments: Map<String, Value>,
) -> Result<(), String> {
    let mut params = CallToolRequestParams::new(name.to_owned()).with_arguments(arguments);
    for _ in 0..MAX_ROUNDS {
        match peer
            .call_tool_once(params.clone())
            .await
            .map_err(|e| e.to_string())?
        {
            CallToolResponse::InputRequired(input) => {
                params.input_responses = Some(input_responses(input.input_requests)?);
                params.request_state = input.request_state;
            }
            CallToolResponse::Complete(result) => {
                tracing::info!(tool = name, is_error = ?result.is_error, "called");
                return Ok(());
            }
            other => {
                tracing::info!(tool = name, "called: {other:?}");
                return Ok(());
            }
        }
    }
    Err(format!("still asking for input after {MAX_ROUNDS} rounds"))
}

async fn get_prompt(peer: &Peer<RoleClient>, prompt: &rmcp::model::Prompt) -> Result<(), String> {
    let mut arguments = Map::new();
    for argument in prompt.arguments.iter().flatten() {
        if argument.required == Some(true) {
            arguments.insert(argument.name.clone(), json!("test"));
        }
    }
    let mut params = GetPromptRequestParams::new(prompt.name.clone()).with_arguments(arguments);
    for _ in 0..MAX_ROUNDS {
        match peer
            .get_prompt_once(params.clone())
            .await
            .map_err(|e| e.to_string())?
        {
            GetPromptResponse::InputRequired(input) => {
                params.input_responses = Some(input_responses(input.input_requests)?);
                params.request_state = input.request_state;
            }
            _ => return Ok(()),
        }
    }
    Err(format!("still asking for input after {MAX_ROUNDS} rounds"))
}

async fn read_resource(peer: &Peer<RoleClient>, uri: &str) -> Result<(), String> {
    let mut params = ReadResourceRequestParams::new(uri.to_owned());
    for _ in 0..MAX_ROUNDS {
        match peer
            .read_resource_once(params.clone())
            .await
            .map_err(|e| e.to_string())?
        {
            ReadResourceResponse::InputRequired(input) => {
                params.input_responses = Some(input_responses(input.input_requests)?);
                params.request_state = input.request_state;
            }
            _ => return Ok(()),
        }
    }
    Err(format!("still asking for input after {MAX_ROUNDS} rounds"))
}

/// The tool calls the scenario's context names, if it names any.
fn context_tool_calls() -> Option<Vec<(String, Map<String, Value>)>> {
    let context: Value =
        serde_json::from_str(&std::env::var("MCP_CONFORMANCE_CONTEXT").ok()?).ok()?;
    let calls = context["toolCalls"].as_array()?;
    Some(
        calls
            .iter()
            .filter_map(|call| {
                let name = call["name"].as_str()?.to_owned();
                let arguments = call["arguments"].as_object().cloned().unwrap_or_default();
                Some((name, arguments))
            })
            .collect(),
    )
}

async fn run(url: &str) -> Result<(), String> {
    let version = std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION").unwrap_or_default();
    let protocol = if version.as_str() >= "2026-07-28" {
        "modern"
    } else {
        "legacy"
    };
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    tracing::info!(scenario, version, protocol, url, "conformance client");
    // The same path as a configured server: parsed from an mcpServers entry.
    let text = json!({"mcpServers": {"server": {"type": "streamable-http", "url": url, "protocol": protocol}}})
        .to_string();
    let config = Config::parse(std::path::Path::new("<conformance>"), &text)
        .map_err(|error| error.to_string())?;
    let mut server_config = config
        .servers
        .get("server")
        .cloned()
        .ok_or("no server in the config")?;
    // The suite's authorization servers approve without a user: follow their redirect. A
    // pre-registered client comes from the context; the client-ID metadata document URL is the
    // one the suite expects.
    server_config.oauth.headless = true;
    server_config.oauth.client_metadata_url = Some(CLIENT_METADATA_URL.into());
    if let Some(context) = std::env::var("MCP_CONFORMANCE_CONTEXT")
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
    {
        server_config.oauth.client_id = context["client_id"].as_str().map(str::to_owned);
        server_config.oauth.client_secret = context["client_secret"].as_str().map(Secret::new);
        server_config.oauth.private_key_pem = context["private_key_pem"].as_str().map(Secret::new);
        server_config.oauth.assertion = context["valid_jwt"].as_str().map(Secret::new);
        server_config.oauth.idp_token_endpoint =
            context["idp_token_endpoint"].as_str().map(str::to_owned);
        server_config.oauth.idp_client_id = context["idp_client_id"].as_str().map(str::to_owned);
        server_config.oauth.id_token = context["idp_id_token"].as_str().map(Secret::new);
    }
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let server = Arc::new(Downstream::new(
        "server".into(),
        "server".into(),
        uuid::Uuid::new_v4().to_string(),
        server_config,
        Arc::new(config.security.clone()),
        cancel.child_token(),
    ));
    downstream::spawn(server.clone(), Arc::new(User), &tracker);
    let mut state = server.subscribe_state();
    let settled = state
        .wait_for(|state| !matches!(state, ServerState::Starting))
        .await
        .map(|state| state.clone())
        .map_err(|error| error.to_string())?;
    let outcome = match (settled, server.connection()) {
        (ServerState::Connected, Some(connection)) => {
            if !connection.is_modern() {
                // rmcp opens the legacy session's standalone GET stream in the background after
                // the handshake, and a server may send requests tied to no call there (the
                // suite's elicitation fixture does): with no stream yet, they are lost. Nothing
                // reports the stream open, so give it a moment before calling.
                tokio::time::sleep(STREAM_SETTLE).await;
            }
            exercise(&server, &connection.peer).await;
            Ok(())
        }
        (state, _) => Err(format!("not connected: {state}")),
    };
    cancel.cancel();
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    outcome
}

/// Calls what the scenario offers: its tools, resources and prompts.
async fn exercise(server: &Downstream, peer: &Peer<RoleClient>) {
    let lists = server.lists();
    let calls = context_tool_calls().unwrap_or_else(|| {
        lists
            .tools
            .iter()
            .map(|tool| (tool.name.to_string(), arguments_for(&tool.input_schema)))
            .collect()
    });
    // json-schema-2020-12-preservation: hand back the schema as listed, to show that listing
    // kept every keyword.
    let echo = std::env::var("MCP_CONFORMANCE_SCENARIO")
        .is_ok_and(|scenario| scenario == "json-schema-2020-12-preservation");
    let calls = calls.into_iter().map(|(name, mut arguments)| {
        if echo
            && name == "json_schema_echo"
            && let Some(tool) = lists
                .tools
                .iter()
                .find(|tool| tool.name == "json_schema_2020_12_tool")
        {
            arguments.insert(
                "schema".into(),
                Value::Object(tool.input_schema.as_ref().clone()),
            );
        }
        (name, arguments)
    });
    for (name, arguments) in calls {
        if let Err(error) = call_tool(peer, &name, arguments).await {
            tracing::warn!(tool = name, "call failed: {error}");
        }
    }
    for resource in &lists.resources {
        if let Err(error) = read_resource(peer, &resource.uri).await {
            tracing::warn!(uri = resource.uri, "read failed: {error}");
        }
    }
    for prompt in &lists.prompts {
        if let Err(error) = get_prompt(peer, prompt).await {
            tracing::warn!(prompt = prompt.name, "get failed: {error}");
        }
    }
}

fn main() -> std::process::ExitCode {
    // This binary is also the reaper of the server processes it starts (see the proxy's main).
    #[cfg(unix)]
    pluggedin_mcp_proxy::downstream::reaper::run_if_reaper();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(url) = std::env::args().nth(1) else {
        tracing::error!("usage: pluggedin-conformance-client <server url>");
        return std::process::ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!("cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&url)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            std::process::ExitCode::FAILURE
        }
    }
}
