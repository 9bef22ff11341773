//! `pluggedin-demo-server` is the MCP server used as the demo and test fixture of
//! pluggedin-mcp-proxy: it exposes the tool, resource and prompt catalog of the official MCP
//! conformance suite's fixture server plus a few friendly test tools (`echo`, `add`, `sleep`,
//! `exit`, `roots`, `touch_watched_resource`, `pid`; `roots_seen` with `--watch-roots`, which
//! makes it follow the client's roots as a roots-using server does). By default it speaks MCP
//! over stdio; `--http PORT` serves Streamable HTTP at `/mcp` and `--sse PORT` serves the legacy
//! 2024-11-05 HTTP+SSE transport (`GET /sse` + `POST /message`), both on 127.0.0.1. Every mode
//! accepts both the `initialize` lifecycle and the 2026-07-28 per-request `_meta` lifecycle.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    convert::Infallible,
    hash::{BuildHasher, Hasher, RandomState},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Query, State},
    http::StatusCode,
    response::sse::{Event, KeepAlive, Sse},
    routing::{get, post},
    serve::ListenerExt as _,
};
use clap::Parser;
use futures::{Stream, StreamExt, channel::mpsc, stream};
use rmcp::{
    ErrorData as McpError, Peer, RoleServer, ServerHandler, ServiceExt,
    handler::server::{
        common::schema_for_empty_input,
        tool::{parse_json_object, schema_for_input},
    },
    model::*,
    schemars::JsonSchema,
    service::{
        NotificationContext, QuitReason, RequestContext, ServerInitializeError,
        SubscriptionContext, SubscriptionSink,
    },
    transport::{
        StreamableHttpServerConfig, StreamableHttpService,
        streamable_http_server::session::local::LocalSessionManager,
    },
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

#[path = "demo/conformance/mod.rs"]
mod conformance;

// ===== Command line =====

/// MCP demo/test server for pluggedin-mcp-proxy (stdio by default).
#[derive(Debug, Parser)]
#[command(name = "pluggedin-demo-server", version, about)]
struct Cli {
    /// Serve Streamable HTTP on 127.0.0.1:PORT at /mcp (0 picks a free port).
    #[arg(long, value_name = "PORT", conflicts_with = "sse")]
    http: Option<u16>,
    /// Serve the legacy HTTP+SSE transport on 127.0.0.1:PORT (GET /sse, POST /message).
    #[arg(long, value_name = "PORT")]
    sse: Option<u16>,
    /// serverInfo name reported in the initialize result.
    #[arg(long, default_value = "pluggedin-demo-server")]
    name: String,
    /// Additionally expose N trivial echo tools `tool_0` … `tool_{N-1}`.
    #[arg(long, value_name = "N", default_value_t = 0)]
    extra_tools: usize,
    /// Sleep this long before starting to serve (simulates a slow server).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    start_delay_ms: u64,
    /// Server instructions returned in the initialize result.
    #[arg(long, value_name = "TEXT")]
    instructions: Option<String>,
    /// With --http or --sse: answer 401 unless the request has `Authorization: Bearer TOKEN` (an
    /// OAuth protected server whose token can expire).
    #[arg(long, value_name = "TOKEN")]
    require_token: Option<String>,
    /// Behave like a hostile server (for the proxy's security tests): also expose a tool whose
    /// name and description carry control and bidi characters, `flood` (sends `count` log
    /// notifications as fast as it can) and `big` (answers with `bytes` bytes of text).
    #[arg(long)]
    hostile: bool,
    /// With --require-token: publish OAuth protected-resource metadata (RFC 9728) naming this
    /// authorization server, and point the 401's `WWW-Authenticate` at it.
    #[arg(long, value_name = "URL", requires = "require_token")]
    oauth_issuer: Option<String>,
    /// Follow the client's roots as a roots-using server does: ask `roots/list` once the client
    /// initialized and again on each `notifications/roots/list_changed`, and expose `roots_seen`
    /// (what it was told, in order).
    #[arg(long)]
    watch_roots: bool,
}

/// The hostile tool's name: a bell and an escape sequence in it.
const HOSTILE_TOOL: &str = "bell\u{7}\u{1b}[31mtool";

#[derive(Deserialize, JsonSchema)]
struct FloodArgs {
    /// How many log notifications to send.
    count: u32,
}

#[derive(Deserialize, JsonSchema)]
struct BigArgs {
    /// How many bytes of text to answer with.
    bytes: usize,
}

// ===== Fixture data =====

/// A 1x1 PNG pixel.
const TEST_IMAGE_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mNQSjsDAAICAVXysorDAAAAAElFTkSuQmCC";
/// A two-sample, 8 kHz, 16-bit mono WAV file.
const TEST_AUDIO_BASE64: &str = "UklGRigAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQQAAAAAAAAA";
const STATIC_TEXT_URI: &str = "test://static-text";
const STATIC_BINARY_URI: &str = "test://static-binary";
const WATCHED_URI: &str = "test://watched-resource";
const TEMPLATE_URI: &str = "test://template/{id}/data";
/// The tool that `test_dynamic_tool` adds to / removes from the tool list.
const DYNAMIC_EXTRA_TOOL: &str = "test_dynamic_tool_extra";
/// The prompt that `test_trigger_prompt_change` adds to / removes from the prompt list.
const DYNAMIC_PROMPT: &str = "test_dynamic_prompt";
/// The prompt that asks for input first (MRTR).
const MRTR_PROMPT: &str = "test_input_required_result_prompt";

#[derive(Deserialize, JsonSchema)]
struct EchoArgs {
    /// The message to echo back.
    message: String,
}

#[derive(Deserialize, JsonSchema)]
struct AddArgs {
    /// First addend.
    a: f64,
    /// Second addend.
    b: f64,
}

#[derive(Deserialize, JsonSchema)]
struct SleepArgs {
    /// How long to sleep, in milliseconds.
    ms: u64,
}

#[derive(Deserialize, JsonSchema)]
struct ExitArgs {
    /// Process exit code (default 1).
    code: Option<i32>,
}

#[derive(Deserialize, JsonSchema)]
struct TextArgs {
    /// Text to echo back.
    text: String,
}

#[derive(Deserialize, JsonSchema)]
struct SamplingArgs {
    /// The prompt to send to the LLM.
    prompt: String,
}

#[derive(Deserialize, JsonSchema)]
struct ElicitationArgs {
    /// The message to show the user.
    message: String,
}

type SchemaFn = fn() -> Arc<JsonObject>;

/// Name, description and input schema of every always-present tool.
#[rustfmt::skip] // one row per tool reads better than rustfmt's vertical tuples
const STATIC_TOOLS: &[(&str, &str, SchemaFn)] = &[
    ("test_simple_text", "Tests simple text content response", schema_for_empty_input),
    ("test_image_content", "Tests image content response", schema_for_empty_input),
    ("test_audio_content", "Tests audio content response", schema_for_empty_input),
    ("test_embedded_resource", "Tests embedded resource content response", schema_for_empty_input),
    ("test_multiple_content_types", "Tests response with multiple content types (text, image, resource)", schema_for_empty_input),
    ("test_tool_with_logging", "Tests tool that emits log messages during execution", schema_for_empty_input),
    ("test_tool_with_progress", "Tests tool that reports progress notifications", schema_for_empty_input),
    ("test_error_handling", "Tests error response handling", schema_for_empty_input),
    ("test_sampling", "Tests server-initiated sampling (LLM completion request)", input_schema::<SamplingArgs>),
    ("test_elicitation", "Tests server-initiated elicitation (user input request)", input_schema::<ElicitationArgs>),
    ("test_dynamic_tool", "Toggles the runtime tool test_dynamic_tool_extra and sends tools/list_changed", schema_for_empty_input),
    ("test_trigger_tool_change", "Toggles the runtime tool test_dynamic_tool_extra and sends tools/list_changed", schema_for_empty_input),
    ("test_trigger_prompt_change", "Toggles the runtime prompt test_dynamic_prompt and sends prompts/list_changed", schema_for_empty_input),
    ("test_logging_tool", "Logs three messages, only at the level the request asked for", schema_for_empty_input),
    ("test_reconnection", "Over HTTP, its response stream is closed after the first event; the answer waits for a reconnect with Last-Event-ID (SEP-1699)", schema_for_empty_input),
    ("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)", json_schema_2020_12),
    ("echo", "Echoes the message back", input_schema::<EchoArgs>),
    ("add", "Adds two numbers", input_schema::<AddArgs>),
    ("sleep", "Waits the given number of milliseconds (stops early when cancelled)", input_schema::<SleepArgs>),
    ("exit", "Terminates the server process immediately with the given exit code", input_schema::<ExitArgs>),
    ("roots", "Asks the client for its roots and returns them as JSON", schema_for_empty_input),
    ("touch_watched_resource", "Changes test://watched-resource and notifies its subscribers", schema_for_empty_input),
    ("pid", "Returns the server's process id", schema_for_empty_input),
    ("spawn_sleeper", "Starts a `sleep 600` child of its own (in its process group) and returns the child's process id", schema_for_empty_input),
    (
        "http_headers",
        "Returns the HTTP request headers of this call as a JSON object (empty over stdio)",
        schema_for_empty_input,
    ),
];

/// An input schema using JSON Schema 2020-12 keywords that must survive `tools/list` verbatim.
fn json_schema_2020_12() -> Arc<JsonObject> {
    object_schema(json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}}
            }
        },
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"}
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": false
    }))
}

// ===== Shared state =====

/// State shared by every session of the process (one per stdio/SSE connection, one per
/// Streamable HTTP session or stateless request).
struct Shared {
    info: ServerConfig,
    name: String,
    extra_tools: usize,
    hostile: bool,
    /// `--watch-roots`: every `roots/list` answer and `list_changed` received, in order.
    watched_roots: Option<Mutex<Vec<Value>>>,
    dynamic_tool_enabled: AtomicBool,
    dynamic_prompt_enabled: AtomicBool,
    /// The conformance suite's MRTR and tasks fixtures.
    fixtures: conformance::Fixtures,
    watched_version: AtomicU64,
    next_id: AtomicU64,
    /// Sessions that used `initialize`; they get notifications pushed directly.
    legacy_peers: Mutex<HashMap<u64, LegacyPeer>>,
    /// Open 2026-07-28 `subscriptions/listen` streams.
    listeners: Mutex<HashMap<u64, SubscriptionSink>>,
}

struct LegacyPeer {
    peer: Peer<RoleServer>,
    subscriptions: HashSet<String>,
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    // `logging` is SEP-2577-deprecated, but this fixture must still advertise it.
    #[allow(deprecated)]
    fn new(cli: &Cli) -> Self {
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_resources_subscribe()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_tasks()
            .build();
        let mut info = InitializeResult::new(capabilities).with_server_info(Implementation::new(
            cli.name.clone(),
            env!("CARGO_PKG_VERSION"),
        ));
        if let Some(instructions) = &cli.instructions {
            info = info.with_instructions(instructions.clone());
        }
        Self {
            info,
            name: cli.name.clone(),
            extra_tools: cli.extra_tools,
            hostile: cli.hostile,
            watched_roots: cli.watch_roots.then(Mutex::default),
            dynamic_tool_enabled: AtomicBool::new(false),
            dynamic_prompt_enabled: AtomicBool::new(false),
            fixtures: conformance::Fixtures::new(),
            watched_version: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            legacy_peers: Mutex::new(HashMap::new()),
            listeners: Mutex::new(HashMap::new()),
        }
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn watched_content(&self) -> String {
        match self.watched_version.load(Ordering::Relaxed) {
            0 => "Watched resource content".to_string(),
            n => format!("Watched resource content (update {n})"),
        }
    }

    /// Live legacy peers matching `filter`; closed sessions are pruned on the way.
    fn live_legacy_peers(&self, filter: impl Fn(&LegacyPeer) -> bool) -> Vec<Peer<RoleServer>> {
        let mut peers = lock(&self.legacy_peers);
        peers.retain(|_, entry| !entry.peer.is_transport_closed());
        peers
            .values()
            .filter(|entry| filter(entry))
            .map(|entry| entry.peer.clone())
            .collect()
    }

    fn listeners(&self) -> Vec<SubscriptionSink> {
        lock(&self.listeners).values().cloned().collect()
    }

    async fn broadcast_tool_list_changed(&self) {
        for peer in self.live_legacy_peers(|_| true) {
            if let Err(error) = peer.notify_tool_list_changed().await {
                debug!(%error, "tools/list_changed not delivered");
            }
        }
        for sink in self.listeners() {
            if let Err(error) = sink.notify_tool_list_changed().await {
                debug!(%error, "tools/list_changed not delivered to listener");
            }
        }
    }

    async fn broadcast_prompt_list_changed(&self) {
        for peer in self.live_legacy_peers(|_| true) {
            if let Err(error) = peer.notify_prompt_list_changed().await {
                debug!(%error, "prompts/list_changed not delivered");
            }
        }
        for sink in self.listeners() {
            if let Err(error) = sink.notify_prompt_list_changed().await {
                debug!(%error, "prompts/list_changed not delivered to listener");
            }
        }
    }

    async fn broadcast_resource_updated(&self, uri: &str) {
        for peer in self.live_legacy_peers(|entry| entry.subscriptions.contains(uri)) {
            let param = ResourceUpdatedNotificationParam::new(uri);
            if let Err(error) = peer.notify_resource_updated(param).await {
                debug!(%error, "resources/updated not delivered");
            }
        }
        for sink in self.listeners() {
            if let Err(error) = sink.notify_resource_updated(uri).await {
                debug!(%error, "resources/updated not delivered to listener");
            }
        }
    }
}

/// Removes a `subscriptions/listen` sink from [`Shared`] when the listen request ends.
struct ListenerGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        lock(&self.shared.listeners).remove(&self.id);
    }
}

// ===== The MCP handler =====

/// One MCP session's handler; all sessions share [`Shared`].
#[derive(Clone)]
struct DemoServer {
    shared: Arc<Shared>,
    session_id: u64,
    /// Level set by `logging/setLevel` (legacy lifecycle); `None` sends every level.
    #[allow(deprecated)] // logging is SEP-2577-deprecated but part of the legacy protocol
    log_level: Arc<Mutex<Option<LoggingLevel>>>,
}

/// Whether this request uses the 2026-07-28+ lifecycle (no server-to-client requests).
fn is_modern(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|version| !version.has_initialize())
}

#[allow(deprecated)] // logging is SEP-2577-deprecated but part of the legacy protocol
fn level_rank(level: LoggingLevel) -> u8 {
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

fn text_result(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

fn error_result(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

fn input_schema<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    schema_for_input::<T>().expect("derived argument structs always have an object schema")
}

fn object_schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(object) => Arc::new(object),
        _ => schema_for_empty_input(),
    }
}

/// JSON number for `x`, written as an integer when it has no fractional part.
fn number_json(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

/// The `id` of a `test://template/{id}/data` URI.
fn template_id(uri: &str) -> Option<&str> {
    let id = uri
        .strip_prefix("test://template/")?
        .strip_suffix("/data")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// What a tool needs from the client: sent as a request (legacy) or an input request (MRTR).
enum ClientInput {
    Sampling(String),
    Elicitation(String),
    Roots,
}

enum ClientAnswer {
    Value(Value),
    Pending(InputRequiredResult),
    Failed(String),
}

impl ClientInput {
    fn key(&self) -> &'static str {
        match self {
            Self::Sampling(_) => "sampling",
            Self::Elicitation(_) => "elicitation",
            Self::Roots => "roots",
        }
    }

    fn elicitation_params(message: &str) -> Result<ElicitRequestParams, String> {
        serde_json::from_value(json!({
            "mode": "form",
            "message": message,
            "requestedSchema": {
                "type": "object",
                "properties": {
                    "username": {"type": "string", "description": "User's response"},
                    "email": {"type": "string", "description": "User's email address"}
                },
                "required": ["username", "email"]
            }
        }))
        .map_err(|error| format!("invalid elicitation request: {error}"))
    }

    // Sampling and roots are SEP-2577-deprecated; exercising them is this fixture's purpose.
    #[allow(deprecated)]
    fn as_input_request(&self) -> Result<InputRequest, String> {
        Ok(match self {
            Self::Sampling(prompt) => InputRequest::CreateMessage(CreateMessageRequest::new(
                CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100),
            )),
            Self::Elicitation(message) => {
                InputRequest::Elicitation(ElicitRequest::new(Self::elicitation_params(message)?))
            }
            Self::Roots => InputRequest::ListRoots(ListRootsRequest {
                method: Default::default(),
                extensions: Default::default(),
            }),
        })
    }

    fn client_supports(&self, context: &RequestContext<RoleServer>) -> bool {
        let Some(caps) = context.client_capabilities() else {
            return false;
        };
        match self {
            Self::Sampling(_) => caps.sampling.is_some(),
            Self::Elicitation(_) => caps.elicitation.is_some(),
            Self::Roots => caps.roots.is_some(),
        }
    }

    /// Asks the client: a server-to-client request on the legacy lifecycle, an MRTR
    /// `InputRequiredResult` (answered by the client's retry) on 2026-07-28+.
    #[allow(deprecated)] // see `as_input_request`
    async fn ask(
        self,
        context: &RequestContext<RoleServer>,
        responses: &InputResponses,
    ) -> ClientAnswer {
        if let Some(answer) = responses.get(self.key()) {
            return ClientAnswer::Value(answer.clone());
        }
        if !self.client_supports(context) {
            return ClientAnswer::Failed(format!(
                "client did not declare the {} capability",
                self.key()
            ));
        }
        if is_modern(context) {
            return match self.as_input_request() {
                Ok(request) => ClientAnswer::Pending(InputRequiredResult::from_input_requests(
                    BTreeMap::from([(self.key().to_string(), request)]),
                )),
                Err(error) => ClientAnswer::Failed(error),
            };
        }
        let peer = &context.peer;
        let answer = match self.as_input_request() {
            Ok(InputRequest::CreateMessage(request)) => {
                to_json(peer.create_message(request.params).await)
            }
            Ok(InputRequest::Elicitation(request)) => {
                to_json(peer.create_elicitation(request.params).await)
            }
            Ok(InputRequest::ListRoots(_)) => to_json(peer.list_roots().await),
            Ok(_) => Err("unsupported input request".to_string()),
            Err(error) => Err(error),
        };
        match answer {
            Ok(value) => ClientAnswer::Value(value),
            Err(error) => ClientAnswer::Failed(error),
        }
    }

    /// Asks the client and renders its answer as the tool result (or hands back the MRTR round).
    async fn tool_result(
        self,
        context: &RequestContext<RoleServer>,
        responses: &InputResponses,
        render: impl FnOnce(&Value) -> String,
    ) -> CallToolResponse {
        let what = self.key();
        match self.ask(context, responses).await {
            ClientAnswer::Value(reply) => text_result(render(&reply)).into(),
            ClientAnswer::Pending(pending) => pending.into(),
            ClientAnswer::Failed(error) => {
                error_result(format!("{what} not supported or failed: {error}")).into()
            }
        }
    }
}

fn to_json<T: serde::Serialize>(result: Result<T, rmcp::ServiceError>) -> Result<Value, String> {
    let value = result.map_err(|error| error.to_string())?;
    serde_json::to_value(value).map_err(|error| error.to_string())
}

/// The text of a `sampling/createMessage` result (single content block or an array).
fn sampling_reply_text(result: &Value) -> String {
    let blocks: Vec<&Value> = match &result["content"] {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let text: String = blocks
        .iter()
        .filter_map(|block| block.get("text").and_then(Value::as_str))
        .collect();
    if text.is_empty() {
        "No response".to_string()
    } else {
        text
    }
}

impl DemoServer {
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

    fn new_session(shared: &Arc<Shared>) -> Self {
        Self {
            shared: shared.clone(),
            session_id: shared.next_id(),
            log_level: Arc::new(Mutex::new(None)),
        }
    }

    /// Records this session's peer for pushed notifications, optionally with a subscription.
    fn register_legacy_peer(&self, peer: &Peer<RoleServer>, subscribe: Option<String>) {
        let mut peers = lock(&self.shared.legacy_peers);
        let entry = peers.entry(self.session_id).or_insert_with(|| LegacyPeer {
            peer: peer.clone(),
            subscriptions: HashSet::new(),
        });
        entry.subscriptions.extend(subscribe);
    }

    /// The current tool catalog.
    fn tools(&self) -> Vec<Tool> {
        let mut tools: Vec<Tool> = STATIC_TOOLS
            .iter()
            .map(|(name, description, schema)| Tool::new(*name, *description, schema()))
            .collect();
        if let Some(add) = tools.iter_mut().find(|tool| tool.name == "add") {
            add.output_schema = Some(object_schema(json!({
                "type": "object",
                "properties": {"sum": {"type": "number"}},
                "required": ["sum"]
            })));
        }
        if self.shared.dynamic_tool_enabled.load(Ordering::Relaxed) {
            tools.push(Tool::new(
                DYNAMIC_EXTRA_TOOL,
                "A tool registered at runtime by test_dynamic_tool",
                schema_for_empty_input(),
            ));
        }
        if self.shared.hostile {
            tools.push(Tool::new(
                HOSTILE_TOOL,
                "Rings\u{1b}[31m red\u{0} and \u{202e}reversed\u{202c} text\u{200b}",
                schema_for_empty_input(),
            ));
            tools.push(Tool::new(
                "flood",
                "Sends `count` log notifications as fast as it can",
                input_schema::<FloodArgs>(),
            ));
            tools.push(Tool::new(
                "big",
                "Answers with `bytes` bytes of text",
                input_schema::<BigArgs>(),
            ));
        }
        if self.shared.watched_roots.is_some() {
            tools.push(Tool::new(
                "roots_seen",
                "What the client said about its roots, in order: each roots/list answer and each \
                 notifications/roots/list_changed",
                schema_for_empty_input(),
            ));
        }
        tools.extend(conformance::tools());
        tools.extend((0..self.shared.extra_tools).map(|i| {
            Tool::new(
                format!("tool_{i}"),
                format!("Extra tool #{i}: echoes its text argument"),
                input_schema::<TextArgs>(),
            )
        }));
        tools
    }

    /// Sends `count` log notifications without waiting for anything between them.
    #[allow(deprecated)] // logging is SEP-2577-deprecated but part of the legacy protocol
    async fn flood(context: &RequestContext<RoleServer>, count: u32) -> CallToolResult {
        let mut sent = 0;
        for index in 0..count {
            let param = LoggingMessageNotificationParam::new(
                LoggingLevel::Info,
                json!(format!("flood {index}")),
            );
            if context.peer.notify_logging_message(param).await.is_err() {
                break;
            }
            sent += 1;
        }
        text_result(format!("sent {sent}"))
    }

    fn is_extra_tool(&self, name: &str) -> bool {
        name.strip_prefix("tool_")
            .and_then(|index| index.parse::<usize>().ok())
            .is_some_and(|index| index < self.shared.extra_tools && name == format!("tool_{index}"))
    }

    /// Sends a `notifications/message` if the request's effective log level allows it:
    /// the request's `_meta` logLevel, else (legacy only) the session's `logging/setLevel`.
    #[allow(deprecated)] // logging is SEP-2577-deprecated but part of the legacy protocol
    async fn log(&self, context: &RequestContext<RoleServer>, level: LoggingLevel, message: &str) {
        let threshold = match context.meta.log_level() {
            Some(level) => level,
            None if is_modern(context) => return,
            None => lock(&self.log_level).unwrap_or(LoggingLevel::Debug),
        };
        if level_rank(level) < level_rank(threshold) {
            return;
        }
        let param = LoggingMessageNotificationParam::new(level, json!(message))
            .with_logger(&self.shared.name);
        if let Err(error) = context.peer.notify_logging_message(param).await {
            debug!(%error, "log notification not delivered");
        }
    }

    #[allow(deprecated)] // logging is SEP-2577-deprecated but part of the legacy protocol
    async fn tool_with_logging(&self, context: &RequestContext<RoleServer>) -> CallToolResult {
        let steps = [
            "Tool execution started",
            "Tool processing data",
            "Tool execution completed",
        ];
        for (index, step) in steps.into_iter().enumerate() {
            if index > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            self.log(context, LoggingLevel::Info, step).await;
        }
        text_result("Tool with logging executed successfully")
    }

    async fn tool_with_progress(context: &RequestContext<RoleServer>) -> CallToolResult {
        let token = context.meta.get_progress_token();
        for (index, progress) in [0.0, 50.0, 100.0].into_iter().enumerate() {
            if index > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if let Some(token) = &token {
                let param = ProgressNotificationParam::new(token.clone(), progress)
                    .with_total(100.0)
                    .with_message(format!("Completed step {progress} of 100"));
                if let Err(error) = context.peer.notify_progress(param).await {
                    debug!(%error, "progress notification not delivered");
                }
            }
        }
        match token {
            Some(token) => text_result(token.0.to_string()),
            None => text_result("no progress token"),
        }
    }

    async fn sleep(
        ms: u64,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(ms)) => Ok(text_result(format!("slept {ms}ms"))),
            () = context.ct.cancelled() => {
                info!(ms, "sleep cancelled by the client");
                Err(McpError::internal_error("request cancelled", None))
            }
        }
    }

    async fn dynamic_tool(&self) -> CallToolResult {
        let was_enabled = self
            .shared
            .dynamic_tool_enabled
            .fetch_xor(true, Ordering::Relaxed);
        self.shared.broadcast_tool_list_changed().await;
        text_result(if was_enabled {
            format!("Removed tool {DYNAMIC_EXTRA_TOOL}")
        } else {
            format!("Added tool {DYNAMIC_EXTRA_TOOL}")
        })
    }

    async fn dynamic_prompt(&self) -> CallToolResult {
        let was_enabled = self
            .shared
            .dynamic_prompt_enabled
            .fetch_xor(true, Ordering::Relaxed);
        self.shared.broadcast_prompt_list_changed().await;
        text_result(if was_enabled {
            format!("Removed prompt {DYNAMIC_PROMPT}")
        } else {
            format!("Added prompt {DYNAMIC_PROMPT}")
        })
    }

    async fn call(
        &self,
        request: CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let args = request.arguments.unwrap_or_default();
        let name = request.name.as_ref();
        debug!(session = self.session_id, tool = name, "tools/call");
        let fixture = conformance::Call {
            name,
            args: &args,
            responses: request.input_responses.as_ref(),
            state: request.request_state.as_deref(),
        };
        if let Some(result) = self.shared.fixtures.call(fixture, context).await {
            return result;
        }
        let responses = request.input_responses.clone().unwrap_or_default();
        let result = match name {
            "test_simple_text" => text_result("This is a simple text response for testing."),
            "test_image_content" => {
                CallToolResult::success(vec![ContentBlock::image(TEST_IMAGE_BASE64, "image/png")])
            }
            "test_audio_content" => {
                CallToolResult::success(vec![ContentBlock::audio(TEST_AUDIO_BASE64, "audio/wav")])
            }
            "test_embedded_resource" => CallToolResult::success(vec![ContentBlock::embedded_text(
                "test://embedded-resource",
                "This is an embedded resource content.",
            )]),
            "test_multiple_content_types" => CallToolResult::success(vec![
                ContentBlock::text("Multiple content types test:"),
                ContentBlock::image(TEST_IMAGE_BASE64, "image/png"),
                ContentBlock::resource(
                    ResourceContents::text(
                        json!({"test": "data", "value": 123}).to_string(),
                        "test://mixed-content-resource",
                    )
                    .with_mime_type("application/json"),
                ),
            ]),
            "test_tool_with_logging" => self.tool_with_logging(context).await,
            "test_tool_with_progress" => Self::tool_with_progress(context).await,
            "test_error_handling" => {
                error_result("This tool intentionally returns an error for testing")
            }
            "test_sampling" => {
                let args: SamplingArgs = parse_json_object(args)?;
                let input = ClientInput::Sampling(args.prompt);
                return Ok(input
                    .tool_result(context, &responses, |reply| {
                        format!("LLM response: {}", sampling_reply_text(reply))
                    })
                    .await);
            }
            "test_elicitation" => {
                let args: ElicitationArgs = parse_json_object(args)?;
                let input = ClientInput::Elicitation(args.message);
                return Ok(input
                    .tool_result(context, &responses, |reply| {
                        let content = reply.get("content").cloned().unwrap_or(json!({}));
                        let action = reply["action"].as_str().unwrap_or("unknown");
                        format!("User response: action={action}, content={content}")
                    })
                    .await);
            }
            "test_dynamic_tool" | "test_trigger_tool_change" => self.dynamic_tool().await,
            "test_trigger_prompt_change" => self.dynamic_prompt().await,
            "test_logging_tool" => self.tool_with_logging(context).await,
            "test_reconnection" => {
                // Over HTTP its stream is cut (`conformance::drop_stream_mid_call`); it answers
                // once the client has resumed.
                conformance::reconnection(&self.shared.fixtures.resumptions, context).await
            }
            "json_schema_2020_12_tool" => text_result(format!(
                "JSON Schema 2020-12 tool called with: {}",
                Value::Object(args)
            )),
            DYNAMIC_EXTRA_TOOL if self.shared.dynamic_tool_enabled.load(Ordering::Relaxed) => {
                text_result("This tool was added at runtime by test_dynamic_tool.")
            }
            "echo" => {
                let args: EchoArgs = parse_json_object(args)?;
                text_result(format!("Echo: {}", args.message))
            }
            "add" => {
                let args: AddArgs = parse_json_object(args)?;
                let sum = number_json(args.a + args.b);
                let mut result = text_result(sum.to_string());
                result.structured_content = Some(json!({ "sum": sum }));
                result
            }
            "sleep" => {
                let args: SleepArgs = parse_json_object(args)?;
                Self::sleep(args.ms, context).await?
            }
            "exit" => {
                let args: ExitArgs = parse_json_object(args)?;
                let code = args.code.unwrap_or(1);
                warn!(code, "exit tool called; terminating the process");
                std::process::exit(code);
            }
            "roots" => {
                let render = |reply: &Value| reply["roots"].to_string();
                return Ok(ClientInput::Roots
                    .tool_result(context, &responses, render)
                    .await);
            }
            "touch_watched_resource" => {
                self.shared.watched_version.fetch_add(1, Ordering::Relaxed);
                self.shared.broadcast_resource_updated(WATCHED_URI).await;
                text_result("touched")
            }
            "pid" => text_result(std::process::id().to_string()),
            "spawn_sleeper" => {
                // Not waited for and not killed on drop: a helper a server forgot about.
                let child = std::process::Command::new("sleep")
                    .arg("600")
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .map_err(|error| McpError::internal_error(error.to_string(), None))?;
                text_result(child.id().to_string())
            }
            "http_headers" => {
                let headers: serde_json::Map<String, Value> = context
                    .extensions
                    .get::<axum::http::request::Parts>()
                    .map(|parts| {
                        parts
                            .headers
                            .iter()
                            .map(|(name, value)| {
                                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                                (name.as_str().to_owned(), Value::String(value))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                text_result(Value::Object(headers).to_string())
            }
            HOSTILE_TOOL if self.shared.hostile => text_result("rang"),
            "roots_seen" if let Some(seen) = &self.shared.watched_roots => {
                text_result(Value::Array(lock(seen).clone()).to_string())
            }
            "flood" if self.shared.hostile => {
                let args: FloodArgs = parse_json_object(args)?;
                Self::flood(context, args.count).await
            }
            "big" if self.shared.hostile => {
                let args: BigArgs = parse_json_object(args)?;
                text_result("x".repeat(args.bytes))
            }
            extra if self.is_extra_tool(extra) => {
                let args: TextArgs = parse_json_object(args)?;
                text_result(args.text)
            }
            unknown => {
                return Err(McpError::invalid_params(
                    format!("unknown tool: {unknown}"),
                    Some(json!({ "name": unknown })),
                ));
            }
        };
        Ok(result.into())
    }

    fn prompts() -> Vec<Prompt> {
        let arg = |name: &str, description: &str| {
            PromptArgument::new(name)
                .with_description(description)
                .with_required(true)
        };
        vec![
            Prompt::new(
                "test_simple_prompt",
                Some("A simple prompt without arguments"),
                None,
            )
            .with_title("Simple Test Prompt"),
            Prompt::new(
                "test_prompt_with_arguments",
                Some("A prompt with required arguments"),
                Some(vec![
                    arg("arg1", "First test argument"),
                    arg("arg2", "Second test argument"),
                ]),
            )
            .with_title("Prompt With Arguments"),
            Prompt::new(
                "test_prompt_with_embedded_resource",
                Some("A prompt that includes an embedded resource"),
                Some(vec![arg("resourceUri", "URI of the resource to embed")]),
            )
            .with_title("Prompt With Embedded Resource"),
            Prompt::new(
                "test_prompt_with_image",
                Some("A prompt that includes image content"),
                None,
            )
            .with_title("Prompt With Image"),
        ]
    }

    fn prompt(request: &GetPromptRequestParams) -> Result<GetPromptResult, McpError> {
        let arg = |name: &str| {
            request
                .arguments
                .as_ref()
                .and_then(|args| args.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    McpError::invalid_params(format!("missing required argument: {name}"), None)
                })
        };
        let messages = match request.name.as_str() {
            "test_simple_prompt" => vec![PromptMessage::new_text(
                Role::User,
                "This is a simple prompt for testing.",
            )],
            "test_prompt_with_arguments" => {
                let (arg1, arg2) = (arg("arg1")?, arg("arg2")?);
                vec![PromptMessage::new_text(
                    Role::User,
                    format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"),
                )]
            }
            "test_prompt_with_embedded_resource" => vec![
                PromptMessage::new(
                    Role::User,
                    ContentBlock::embedded_text(
                        arg("resourceUri")?,
                        "Embedded resource content for testing.",
                    ),
                ),
                PromptMessage::new_text(Role::User, "Please process the embedded resource above."),
            ],
            "test_prompt_with_image" => vec![
                PromptMessage::new(
                    Role::User,
                    ContentBlock::image(TEST_IMAGE_BASE64, "image/png"),
                ),
                PromptMessage::new_text(Role::User, "Please analyze the image above."),
            ],
            unknown => {
                return Err(McpError::invalid_params(
                    format!("unknown prompt: {unknown}"),
                    None,
                ));
            }
        };
        Ok(GetPromptResult::new(messages))
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
        self.register_legacy_peer(&context.peer, None);
        self.negotiate_initialize(&request)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools().into_iter().find(|tool| tool.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.call(request, &context).await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(vec![
            Resource::new(STATIC_TEXT_URI, "static-text")
                .with_title("Static Text Resource")
                .with_description("A static text resource for testing")
                .with_mime_type("text/plain"),
            Resource::new(STATIC_BINARY_URI, "static-binary")
                .with_title("Static Binary Resource")
                .with_description("A static binary resource (image) for testing")
                .with_mime_type("image/png"),
            Resource::new(WATCHED_URI, "watched-resource")
                .with_title("Watched Resource")
                .with_description("A subscribable resource; touch_watched_resource changes it")
                .with_mime_type("text/plain"),
        ]))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(TEMPLATE_URI, "template")
                .with_title("Resource Template")
                .with_description("A resource template with parameter substitution")
                .with_mime_type("application/json"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let uri = request.uri.as_str();
        let contents = match uri {
            STATIC_TEXT_URI => {
                ResourceContents::text("This is the content of the static text resource.", uri)
            }
            STATIC_BINARY_URI => {
                ResourceContents::blob(TEST_IMAGE_BASE64, uri).with_mime_type("image/png")
            }
            WATCHED_URI => ResourceContents::text(self.shared.watched_content(), uri),
            _ => match template_id(uri) {
                Some(id) => ResourceContents::text(
                    json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")})
                        .to_string(),
                    uri,
                )
                .with_mime_type("application/json"),
                None => {
                    return Err(McpError::resource_not_found(
                        format!("Resource not found: {uri}"),
                        Some(json!({ "uri": uri })),
                    ));
                }
            },
        };
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.register_legacy_peer(&context.peer, Some(request.uri));
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if let Some(entry) = lock(&self.shared.legacy_peers).get_mut(&self.session_id) {
            entry.subscriptions.remove(&request.uri);
        }
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
        let id = self.shared.next_id();
        lock(&self.shared.listeners).insert(id, context.sink().clone());
        let _guard = ListenerGuard {
            shared: self.shared.clone(),
            id,
        };
        context.cancelled().await;
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let mut prompts = Self::prompts();
        prompts.push(
            Prompt::new(
                MRTR_PROMPT,
                Some("Asks the client for context first (MRTR)"),
                None,
            )
            .with_title("Prompt Asking For Input"),
        );
        if self.shared.dynamic_prompt_enabled.load(Ordering::Relaxed) {
            prompts.push(Prompt::new(
                DYNAMIC_PROMPT,
                Some("A prompt registered at runtime by test_trigger_prompt_change"),
                None,
            ));
        }
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        match request.name.as_str() {
            MRTR_PROMPT => conformance::mrtr_prompt(&request),
            DYNAMIC_PROMPT if self.shared.dynamic_prompt_enabled.load(Ordering::Relaxed) => {
                Ok(GetPromptResult::new(vec![PromptMessage::new_text(
                    Role::User,
                    "This prompt was added at runtime.",
                )])
                .into())
            }
            _ => Self::prompt(&request).map(Into::into),
        }
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let reference = &request.r#ref;
        let candidates: &[&str] = match (
            reference.as_prompt_name(),
            reference.as_resource_uri(),
            request.argument.name.as_str(),
        ) {
            (Some("test_prompt_with_arguments"), _, "arg1") => {
                &["paris", "park", "party", "test", "testing"]
            }
            (Some("test_prompt_with_arguments"), _, "arg2") => {
                &["hello", "help", "world", "wonder"]
            }
            (Some("test_prompt_with_embedded_resource"), _, "resourceUri") => {
                &[STATIC_TEXT_URI, STATIC_BINARY_URI, WATCHED_URI]
            }
            (_, Some(TEMPLATE_URI), "id") => &["1", "2", "3", "42", "123"],
            _ => &[],
        };
        let prefix = request.argument.value.as_str();
        let values = candidates
            .iter()
            .filter(|value| value.starts_with(prefix))
            .map(|value| value.to_string())
            .collect();
        let completion = CompletionInfo::with_all_values(values)
            .map_err(|error| McpError::internal_error(error, None))?;
        Ok(CompleteResult::new(completion))
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
        *lock(&self.log_level) = Some(request.level);
        Ok(())
    }
}

// ===== Transports: stdio and Streamable HTTP =====

async fn serve_stdio(shared: Arc<Shared>) -> anyhow::Result<()> {
    let input_closed = CancellationToken::new();
    let server = StdioSession {
        inner: DemoServer::new_session(&shared),
        input_closed: input_closed.clone(),
    };
    let stdin = WatchedStdin {
        inner: tokio::io::stdin(),
        closed: input_closed,
    };
    match server.serve((stdin, tokio::io::stdout())).await {
        Ok(running) => {
            match running.waiting().await? {
                QuitReason::Closed => info!("stdin closed, exiting"),
                QuitReason::Cancelled => info!("session cancelled, exiting"),
                QuitReason::JoinError(error) => warn!("session task failed: {error}"),
                _ => info!("stdio session ended"),
            }
            Ok(())
        }
        Err(ServerInitializeError::ConnectionClosed(_)) => {
            info!("stdin closed before the session started");
            Ok(())
        }
        Err(error) => Err(error).context("MCP session over stdio failed to start"),
    }
}

/// The stdio session: the demo's handler, except that `subscriptions/listen` streams end when
/// stdin does. At stdin EOF rmcp stops reading and waits (up to 5 s) for every request handler
/// to answer before it lets the process go; a listen stream only ends when cancelled, and one
/// caught while rmcp acknowledges it waits for the service loop that EOF already ended. Ending
/// the stream at EOF lets the process exit as soon as the answers it owes are written.
struct StdioSession {
    inner: DemoServer,
    input_closed: CancellationToken,
}

impl rmcp::Service<RoleServer> for StdioSession {
    async fn handle_request(
        &self,
        request: ClientRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<ServerResult, McpError> {
        if !matches!(request, ClientRequest::SubscriptionsListenRequest(_)) {
            return self.inner.handle_request(request, context).await;
        }
        let id = context.id.clone();
        tokio::select! {
            result = self.inner.handle_request(request, context) => result,
            () = self.input_closed.cancelled() => Ok(ServerResult::SubscriptionsListenResult(
                SubscriptionsListenResult::complete(id),
            )),
        }
    }

    async fn handle_notification(
        &self,
        notification: ClientNotification,
        context: rmcp::service::NotificationContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.inner.handle_notification(notification, context).await
    }

    fn get_info(&self) -> ServerConfig {
        rmcp::Service::<RoleServer>::get_info(&self.inner)
    }

    fn supported_protocol_versions(&self) -> std::borrow::Cow<'static, [ProtocolVersion]> {
        rmcp::Service::<RoleServer>::supported_protocol_versions(&self.inner)
    }
}

/// Stdin that cancels `closed` when it ends (or fails): in stdio mode the end of input is the
/// end of the session, whatever streams are still open.
struct WatchedStdin {
    inner: tokio::io::Stdin,
    closed: CancellationToken,
}

impl tokio::io::AsyncRead for WatchedStdin {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
        let ended = match &poll {
            std::task::Poll::Ready(Ok(())) => buf.filled().len() == before && buf.remaining() > 0,
            std::task::Poll::Ready(Err(_)) => true,
            std::task::Poll::Pending => false,
        };
        if ended {
            this.closed.cancel();
        }
        poll
    }
}

async fn bind(port: u16) -> anyhow::Result<(tokio::net::TcpListener, std::net::SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Prints the one line tests wait for (on stderr: stdout is never used outside stdio mode).
#[allow(
    clippy::print_stderr,
    reason = "a fixed, parseable readiness line, not a log"
)]
fn announce(addr: std::net::SocketAddr, path: &str) {
    eprintln!("listening on http://{addr}{path}");
}

/// With a required token: answers 401 to requests without `Authorization: Bearer TOKEN`; with
/// an issuer too, publishes protected-resource metadata (RFC 9728) for the endpoint at `path`
/// and points the 401's challenge at it.
fn protect(
    mut app: Router,
    addr: std::net::SocketAddr,
    path: &'static str,
    require_token: Option<String>,
    oauth_issuer: Option<String>,
) -> Router {
    let metadata_path = format!("/.well-known/oauth-protected-resource{path}");
    if let Some(token) = require_token {
        let expected = format!("Bearer {token}");
        let challenge = match &oauth_issuer {
            Some(_) => format!("Bearer resource_metadata=\"http://{addr}{metadata_path}\""),
            None => "Bearer".to_owned(),
        };
        app = app.layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let challenge = challenge.clone();
                let allowed = request
                    .headers()
                    .get(axum::http::header::AUTHORIZATION)
                    .is_some_and(|value| value.as_bytes() == expected.as_bytes());
                async move {
                    if allowed {
                        next.run(request).await
                    } else {
                        info!("request without the required bearer token: 401");
                        axum::response::IntoResponse::into_response((
                            axum::http::StatusCode::UNAUTHORIZED,
                            [(axum::http::header::WWW_AUTHENTICATE, challenge)],
                            "unauthorized",
                        ))
                    }
                }
            },
        ));
    }
    if let Some(issuer) = oauth_issuer {
        let metadata = serde_json::json!({
            "resource": format!("http://{addr}{path}"),
            "authorization_servers": [issuer],
            "scopes_supported": ["mcp"],
        });
        app = app.route(
            &metadata_path,
            axum::routing::get(move || {
                let metadata = metadata.clone();
                async move { axum::Json(metadata) }
            }),
        );
    }
    app
}

async fn serve_http(
    shared: Arc<Shared>,
    port: u16,
    require_token: Option<String>,
    oauth_issuer: Option<String>,
) -> anyhow::Result<()> {
    let (listener, addr) = bind(port).await?;
    let resumptions = shared.fixtures.resumptions.clone();
    let service = StreamableHttpService::new(
        move || Ok(DemoServer::new_session(&shared)),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app =
        Router::new()
            .route_service("/mcp", service)
            .layer(axum::middleware::from_fn_with_state(
                resumptions,
                conformance::drop_stream_mid_call,
            ));
    let app = protect(app, addr, "/mcp", require_token, oauth_issuer);
    announce(addr, "/mcp");
    // TCP_NODELAY: otherwise an SSE answer's second write waits ~40 ms for a delayed ACK.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

// ===== Transport: legacy HTTP+SSE (MCP 2024-11-05) =====

#[derive(Clone)]
struct SseState {
    shared: Arc<Shared>,
    /// Session id -> the channel feeding client messages into that session.
    sessions: Arc<Mutex<HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>>>,
}

#[derive(Deserialize)]
struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: String,
}

fn new_session_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let salt = RandomState::new().build_hasher().finish();
    format!("{:016x}{salt:016x}", hasher.finish())
}

fn message_event(message: &ServerJsonRpcMessage) -> Event {
    match serde_json::to_string(message) {
        Ok(json) => Event::default().event("message").data(json),
        Err(error) => {
            warn!(%error, "cannot serialize server message");
            Event::default().comment("unserializable message dropped")
        }
    }
}

/// `GET /sse`: opens one MCP session whose server->client messages flow on this stream.
async fn sse_connect(
    State(state): State<SseState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let id = new_session_id();
    let (in_tx, in_rx) = mpsc::channel::<ClientJsonRpcMessage>(64);
    let (out_tx, out_rx) = mpsc::channel::<ServerJsonRpcMessage>(64);
    lock(&state.sessions).insert(id.clone(), in_tx);
    let ct = CancellationToken::new();
    let server = DemoServer::new_session(&state.shared);
    let sessions = state.sessions.clone();
    let session_id = id.clone();
    let session_ct = ct.clone();
    tokio::spawn(async move {
        info!(session = %session_id, "SSE session opened");
        match server.serve_with_ct((out_tx, in_rx), session_ct).await {
            Ok(running) => {
                if let Err(error) = running.waiting().await {
                    warn!(%error, "SSE session task failed");
                }
            }
            Err(error) => info!(%error, "SSE session ended before initialization"),
        }
        lock(&sessions).remove(&session_id);
        info!(session = %session_id, "SSE session closed");
    });
    // Dropping the response stream (client went away) cancels the session.
    let guard = ct.drop_guard();
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/message?sessionId={id}"));
    let messages = out_rx.map(move |message| {
        let _session_alive = &guard;
        Ok(message_event(&message))
    });
    Sse::new(stream::once(async move { Ok(endpoint) }).chain(messages))
        .keep_alive(KeepAlive::default())
}

/// `POST /message?sessionId=…`: feeds one JSON-RPC message (or batch) into the session.
async fn sse_message(
    State(state): State<SseState>,
    Query(query): Query<SessionQuery>,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let Some(mut sender) = lock(&state.sessions).get(&query.session_id).cloned() else {
        return (StatusCode::NOT_FOUND, "unknown session");
    };
    let messages = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => items,
        Ok(item) => vec![item],
        Err(_) => return (StatusCode::BAD_REQUEST, "body is not JSON"),
    };
    for message in messages {
        let Ok(message) = serde_json::from_value::<ClientJsonRpcMessage>(message) else {
            return (StatusCode::BAD_REQUEST, "not a JSON-RPC message");
        };
        if futures::SinkExt::send(&mut sender, message).await.is_err() {
            return (StatusCode::NOT_FOUND, "session closed");
        }
    }
    (StatusCode::ACCEPTED, "Accepted")
}

async fn serve_sse(
    shared: Arc<Shared>,
    port: u16,
    require_token: Option<String>,
    oauth_issuer: Option<String>,
) -> anyhow::Result<()> {
    let state = SseState {
        shared,
        sessions: Arc::new(Mutex::new(HashMap::new())),
    };
    let app = Router::new()
        .route("/sse", get(sse_connect))
        .route("/message", post(sse_message))
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(state);
    let (listener, addr) = bind(port).await?;
    let app = protect(app, addr, "/sse", require_token, oauth_issuer);
    announce(addr, "/sse");
    // TCP_NODELAY: otherwise an SSE answer's second write waits ~40 ms for a delayed ACK.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

// ===== Entry point =====

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("Ctrl-C received, exiting"),
        () = terminate => info!("SIGTERM received, exiting"),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let shared = Arc::new(Shared::new(&cli));
    let serve = async {
        if cli.start_delay_ms > 0 {
            info!(ms = cli.start_delay_ms, "delaying start");
            tokio::time::sleep(Duration::from_millis(cli.start_delay_ms)).await;
        }
        match (cli.http, cli.sse) {
            (Some(port), _) => {
                serve_http(
                    shared,
                    port,
                    cli.require_token.clone(),
                    cli.oauth_issuer.clone(),
                )
                .await
            }
            (None, Some(port)) => {
                serve_sse(
                    shared,
                    port,
                    cli.require_token.clone(),
                    cli.oauth_issuer.clone(),
                )
                .await
            }
            (None, None) => serve_stdio(shared).await,
        }
    };
    tokio::select! {
        result = serve => result,
        () = shutdown_signal() => Ok(()),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Without timestamps and targets: a proxy puts each stderr line into its own log, stamped.
    // rmcp's per-request warnings (a client's bad call) are the client's to see, not ours.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,rmcp::service=error,pluggedin_demo_server=info".into()),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // The stdio reader may sit in a blocking read; don't wait for it.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
