//! The conformance suite's fixtures that the plain demo tools don't cover: elicitation schemas
//! (SEP-1034 defaults, SEP-1330 enums), the stateless diagnostic tool `test_missing_capability`,
//! the MRTR tools (`test_input_required_result_*`, SEP-2322) with an integrity-protected
//! `requestState`, a tool with `x-mcp-header` parameters (SEP-2243), and the task-supporting
//! tools of the tasks extension (SEP-2663), run by rmcp's `TaskManager`.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use base64::Engine as _;
use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::schema_for_empty_input,
    model::*,
    service::RequestContext,
    task_manager::{TaskContext, TaskExit, TaskFuture, TaskManager, TaskOptions},
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// How long `test_reconnection` waits for its client to resume before answering anyway.
const RECONNECTION_WAIT_LIMIT: Duration = Duration::from_secs(20);

/// Resumptions (`GET` with `Last-Event-ID`) seen per session, for `test_reconnection`.
#[derive(Default)]
pub(crate) struct Resumptions(
    std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Notify>>>,
);

impl Resumptions {
    fn entry(&self, session: &str) -> Arc<tokio::sync::Notify> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.entry(session.to_owned()).or_default().clone()
    }

    /// A client of `session` resumed a stream (its resumed stream is in place).
    fn resumed(&self, session: &str) {
        // A stored permit if the tool is not waiting yet.
        self.entry(session).notify_one();
    }

    /// Waits until a client of `session` resumes, or the limit passes.
    async fn wait(&self, session: &str) {
        let resumed = self.entry(session);
        let _ = tokio::time::timeout(RECONNECTION_WAIT_LIMIT, resumed.notified()).await;
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.remove(session);
    }
}

/// `test_reconnection`: over Streamable HTTP with a session, answers only once the client has
/// resumed the stream that [`drop_stream_mid_call`] cut (rmcp forgets a request's stream once
/// its answer is sent, so an answer sent before the resume could never be replayed); over
/// other transports at once.
pub(crate) async fn reconnection(
    resumptions: &Resumptions,
    context: &RequestContext<RoleServer>,
) -> CallToolResult {
    let session = context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.headers.get("mcp-session-id"))
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    if let Some(session) = session {
        resumptions.wait(&session).await;
    }
    text("Answered after the stream was closed; delivered on resumption")
}

/// The largest request body the stream-dropping layer reads to recognise `test_reconnection`.
const INSPECTED_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Streamable HTTP layer for SEP-1699 polling (`server-sse-polling`): a `tools/call` of
/// `test_reconnection` gets its SSE response cut after the first event (rmcp's priming event,
/// which carries the event id and `retry`). The call goes on; once the client comes back with a
/// `GET` and `Last-Event-ID` (recorded in `resumptions`), it answers on the resumed stream.
/// Every other request passes untouched.
pub(crate) async fn drop_stream_mid_call(
    axum::extract::State(resumptions): axum::extract::State<Arc<Resumptions>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::body::Body;
    use futures::StreamExt as _;
    use http_body_util::BodyExt as _;

    if request.method() == axum::http::Method::GET {
        let resuming = request
            .headers()
            .contains_key("last-event-id")
            .then(|| request.headers().get("mcp-session-id"))
            .flatten()
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let response = next.run(request).await;
        if let Some(session) = resuming.filter(|_| response.status().is_success()) {
            resumptions.resumed(&session);
        }
        return response;
    }
    if request.method() != axum::http::Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match http_body_util::Limited::new(body, INSPECTED_BODY_LIMIT)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return axum::response::IntoResponse::into_response((
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body not readable: {error}"),
            ));
        }
    };
    let reconnection = serde_json::from_slice::<Value>(&bytes).is_ok_and(|message| {
        message["method"] == "tools/call" && message["params"]["name"] == "test_reconnection"
    });
    let response = next
        .run(axum::extract::Request::from_parts(parts, Body::from(bytes)))
        .await;
    let is_stream = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
    if !reconnection || !is_stream {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Pass bytes through up to the end of the first event ("\n\n"), then end the stream at
    // once, without waiting for (and so without consuming) what the call sends next.
    let inner = body.into_data_stream();
    let cut = futures::stream::unfold(
        (inner, Vec::new(), false),
        |(mut inner, mut seen, done)| async move {
            if done {
                return None;
            }
            let chunk = match inner.next().await? {
                Ok(chunk) => chunk,
                Err(error) => return Some((Err(error), (inner, seen, true))),
            };
            let start = seen.len();
            seen.extend_from_slice(&chunk);
            match seen.windows(2).position(|pair| pair == b"\n\n") {
                Some(at) => {
                    let end = (at + 2).saturating_sub(start).min(chunk.len());
                    Some((Ok(chunk.slice(..end)), (inner, seen, true)))
                }
                None => Some((Ok(chunk), (inner, seen, false))),
            }
        },
    );
    axum::response::Response::from_parts(parts, Body::from_stream(cut))
}

/// How often clients should poll `tasks/get` (the suite polls at this pace).
const POLL_INTERVAL_MS: u64 = 100;

/// Fixture state shared by every session: the tasks and the key sealing `requestState`.
pub(crate) struct Fixtures {
    /// Resumed streams per session, shared with the HTTP layer.
    pub(crate) resumptions: Arc<Resumptions>,
    tasks: TaskManager,
    key: [u8; 32],
}

impl Fixtures {
    pub(crate) fn new() -> Self {
        let mut key = [0u8; 32];
        // A fresh key per process; without randomness the state is still sealed, just guessable.
        if getrandom::fill(&mut key).is_err() {
            key = Sha256::digest(std::process::id().to_le_bytes()).into();
        }
        Self {
            resumptions: Arc::default(),
            tasks: TaskManager::new(),
            key,
        }
    }

    /// HMAC-SHA256 of `message` under the process key.
    fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut inner_key = [0x36u8; 64];
        let mut outer_key = [0x5cu8; 64];
        for (index, byte) in self.key.iter().enumerate() {
            inner_key[index] ^= byte;
            outer_key[index] ^= byte;
        }
        let inner = Sha256::new()
            .chain_update(inner_key)
            .chain_update(message)
            .finalize();
        Sha256::new()
            .chain_update(outer_key)
            .chain_update(inner)
            .finalize()
            .into()
    }

    /// Seals `state` (bound to `tool`) into an opaque, integrity-protected `requestState`.
    fn seal(&self, tool: &str, state: Value) -> String {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = json!({ "tool": tool, "state": state }).to_string();
        let mac = self.mac(payload.as_bytes());
        format!("{}.{}", engine.encode(payload), engine.encode(mac))
    }

    /// Opens a `requestState` sealed by [`Self::seal`] for `tool`; tampering is an error.
    fn open(&self, tool: &str, sealed: &str) -> Result<Value, McpError> {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let invalid = || {
            McpError::invalid_params(
                "requestState failed its integrity check (tampered, foreign or truncated)",
                None,
            )
        };
        let (payload, mac) = sealed.split_once('.').ok_or_else(invalid)?;
        let payload = engine.decode(payload).map_err(|_| invalid())?;
        let mac = engine.decode(mac).map_err(|_| invalid())?;
        let expected = self.mac(&payload);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &mac[..])) {
            return Err(invalid());
        }
        let value: Value = serde_json::from_slice(&payload).map_err(|_| invalid())?;
        if value["tool"] != tool {
            return Err(invalid());
        }
        Ok(value["state"].clone())
    }

    /// Answers `tasks/get`.
    pub(crate) fn get_task(&self, task_id: &str) -> Result<GetTaskResult, McpError> {
        self.tasks.get_task(task_id).map(GetTaskResult::new)
    }

    /// Answers `tasks/update`.
    pub(crate) fn update_task(&self, request: UpdateTaskParams) -> Result<(), McpError> {
        self.tasks
            .update_task(&request.task_id, request.input_responses)
    }

    /// Answers `tasks/cancel` (idempotent on terminal tasks).
    pub(crate) fn cancel_task(&self, task_id: &str) -> Result<(), McpError> {
        self.tasks.cancel_task(task_id)
    }
}

fn object(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(object) => Arc::new(object),
        _ => schema_for_empty_input(),
    }
}

fn text(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

/// The fixture tools, in `tools/list` order.
#[rustfmt::skip] // one row per tool
pub(crate) fn tools() -> Vec<Tool> {
    let empty = schema_for_empty_input;
    vec![
        Tool::new("test_elicitation_sep1034_defaults", "Elicitation with default values for every primitive type (SEP-1034)", empty()),
        Tool::new("test_elicitation_sep1330_enums", "Elicitation with every enum schema variant (SEP-1330)", empty()),
        Tool::new("test_missing_capability", "Needs the client's sampling capability; fails with -32021 without it", empty()),
        Tool::new("test_streaming_elicitation", "Asks the client for input (an InputRequiredResult on 2026-07-28)", empty()),
        Tool::new("test_input_required_result_elicitation", "MRTR: asks for the user's name", empty()),
        Tool::new("test_input_required_result_sampling", "MRTR: asks the client's LLM a question", empty()),
        Tool::new("test_input_required_result_list_roots", "MRTR: asks for the client's roots", empty()),
        Tool::new("test_input_required_result_request_state", "MRTR: a confirmation round-tripped with requestState", empty()),
        Tool::new("test_input_required_result_multiple_inputs", "MRTR: elicitation, sampling and roots in one round", empty()),
        Tool::new("test_input_required_result_multi_round", "MRTR: two rounds with evolving requestState", empty()),
        Tool::new("test_input_required_result_tampered_state", "MRTR: rejects a requestState that fails its integrity check", empty()),
        Tool::new("test_input_required_result_capabilities", "MRTR: asks only for what the client declared", empty()),
        Tool::new(
            "test_header_params",
            "Mirrors its region argument into the Mcp-Param-Region header (SEP-2243)",
            object(json!({
                "type": "object",
                "properties": {
                    "region": {"type": "string", "description": "Region, mirrored into a header", "x-mcp-header": "Region"},
                    "query": {"type": "string", "description": "Not mirrored"}
                },
                "required": ["region"]
            })),
        ),
        Tool::new(
            "greet",
            "Says hello (synchronous only)",
            object(json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]})),
        ),
        Tool::new(
            "slow_compute",
            "Sleeps the given seconds, then answers; a task when the client supports tasks",
            object(json!({
                "type": "object",
                "properties": {"seconds": {"type": "number"}, "label": {"type": "string"}},
                "required": ["seconds"]
            })),
        ),
        Tool::new("failing_job", "A task (required) whose tool fails after a moment", empty()),
        Tool::new("protocol_error_job", "A task that fails with a protocol error", empty()),
        Tool::new(
            "confirm_delete",
            "A task that asks the client to confirm deleting a file",
            object(json!({"type": "object", "properties": {"filename": {"type": "string"}}, "required": ["filename"]})),
        ),
        Tool::new("multi_input", "A task that asks two questions at once", empty()),
        Tool::new("test_tool_with_task", "Asks for a name (MRTR), then finishes as a task (required)", empty()),
    ]
}

fn elicitation_params(message: &str, schema: Value) -> Result<ElicitRequestParams, McpError> {
    serde_json::from_value(json!({"mode": "form", "message": message, "requestedSchema": schema}))
        .map_err(|error| McpError::internal_error(format!("bad elicitation: {error}"), None))
}

fn elicitation(message: &str, schema: Value) -> Result<InputRequest, McpError> {
    let params = elicitation_params(message, schema)?;
    Ok(InputRequest::Elicitation(ElicitRequest::new(params)))
}

#[allow(deprecated)] // sampling and roots are SEP-2577-deprecated; exercising them is the point
fn sampling(prompt: &str, max_tokens: u32) -> InputRequest {
    InputRequest::CreateMessage(CreateMessageRequest::new(CreateMessageRequestParams::new(
        vec![SamplingMessage::user_text(prompt)],
        max_tokens,
    )))
}

#[allow(deprecated)] // roots are SEP-2577-deprecated; exercising them is the point
fn roots() -> InputRequest {
    InputRequest::ListRoots(ListRootsRequest {
        method: Default::default(),
        extensions: Default::default(),
    })
}

fn name_schema(field: &str) -> Value {
    json!({"type": "object", "properties": {field: {"type": "string"}}, "required": [field]})
}

/// The accepted `content.<field>` string of an elicitation answer, if the answer is one.
fn accepted_field(answer: Option<&Value>, field: &str) -> Option<String> {
    let answer = answer?;
    (answer["action"] == "accept")
        .then(|| answer["content"][field].as_str().map(str::to_owned))
        .flatten()
}

/// Whether the client's answer to a `kind` request has the right shape.
fn valid_answer(kind: &str, answer: Option<&Value>) -> bool {
    let Some(answer) = answer.filter(|answer| answer.is_object()) else {
        return false;
    };
    match kind {
        "elicitation" => answer["action"].is_string(),
        "sampling" => answer.get("content").is_some(),
        "roots" => answer["roots"].is_array(),
        _ => false,
    }
}

fn pending(requests: Vec<(&str, InputRequest)>, state: Option<String>) -> CallToolResponse {
    let requests: InputRequests = requests
        .into_iter()
        .map(|(key, request)| (key.to_string(), request))
        .collect();
    let mut result = InputRequiredResult::from_input_requests(requests);
    result.request_state = state;
    result.into()
}

fn client_has(context: &RequestContext<RoleServer>, what: &str) -> bool {
    context
        .client_capabilities()
        .is_some_and(|caps| match what {
            "sampling" => caps.sampling.is_some(),
            "elicitation" => caps.elicitation.is_some(),
            "roots" => caps.roots.is_some(),
            "tasks" => caps.supports_tasks(),
            _ => false,
        })
}

fn missing(capabilities: Value) -> McpError {
    match serde_json::from_value(capabilities) {
        Ok(required) => McpError::missing_required_client_capability(required),
        Err(error) => McpError::internal_error(error.to_string(), None),
    }
}

fn tasks_required() -> McpError {
    missing(json!({"extensions": {TASKS_EXTENSION_ID: {}}}))
}

/// What a call needs from the request besides its context.
pub(crate) struct Call<'a> {
    pub(crate) name: &'a str,
    pub(crate) args: &'a JsonObject,
    pub(crate) responses: Option<&'a InputResponses>,
    pub(crate) state: Option<&'a str>,
}

impl Fixtures {
    /// Runs fixture tool `call.name`; `None` when it is not one of ours.
    pub(crate) async fn call(
        &self,
        call: Call<'_>,
        context: &RequestContext<RoleServer>,
    ) -> Option<Result<CallToolResponse, McpError>> {
        let result = match call.name {
            "test_elicitation_sep1034_defaults" => {
                let schema = json!({
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "description": "User name", "default": "John Doe"},
                        "age": {"type": "integer", "description": "User age", "default": 30},
                        "score": {"type": "number", "description": "User score", "default": 95.5},
                        "status": {"type": "string", "description": "User status", "enum": ["active", "inactive", "pending"], "default": "active"},
                        "verified": {"type": "boolean", "description": "Verification status", "default": true}
                    },
                    "required": []
                });
                self.elicit(
                    call,
                    context,
                    "Please review your profile (defaults filled in)",
                    schema,
                )
                .await
            }
            "test_elicitation_sep1330_enums" => {
                let schema = json!({
                    "type": "object",
                    "properties": {
                        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
                        "titledSingle": {"type": "string", "oneOf": [
                            {"const": "value1", "title": "First Option"},
                            {"const": "value2", "title": "Second Option"},
                            {"const": "value3", "title": "Third Option"}
                        ]},
                        "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"]},
                        "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                        "titledMulti": {"type": "array", "items": {"anyOf": [
                            {"const": "value1", "title": "First Choice"},
                            {"const": "value2", "title": "Second Choice"},
                            {"const": "value3", "title": "Third Choice"}
                        ]}}
                    },
                    "required": []
                });
                self.elicit(call, context, "Pick your options", schema)
                    .await
            }
            "test_missing_capability" => {
                if client_has(context, "sampling") {
                    Ok(text("the client declared sampling").into())
                } else {
                    Err(missing(json!({"sampling": {}})))
                }
            }
            "test_streaming_elicitation" => {
                let schema = name_schema("name");
                self.elicit(call, context, "What is your name?", schema)
                    .await
            }
            "test_header_params" => {
                let region = call
                    .args
                    .get("region")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                Ok(text(format!("region: {region}")).into())
            }
            "test_input_required_result_capabilities" => {
                capability_requests(context, call.responses)
            }
            name if name.starts_with("test_input_required_result_") => self.mrtr(call),
            "greet" => {
                let name = call
                    .args
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("stranger");
                Ok(text(format!("Hello, {name}!")).into())
            }
            "slow_compute"
            | "failing_job"
            | "protocol_error_job"
            | "confirm_delete"
            | "multi_input"
            | "test_tool_with_task" => self.task_tool(call, context).await,
            _ => return None,
        };
        Some(result)
    }

    /// Asks the client to fill `schema`: a server-to-client request on the legacy lifecycle,
    /// an `InputRequiredResult` (key `answer`) on 2026-07-28.
    async fn elicit(
        &self,
        call: Call<'_>,
        context: &RequestContext<RoleServer>,
        message: &str,
        schema: Value,
    ) -> Result<CallToolResponse, McpError> {
        if !client_has(context, "elicitation") {
            return Err(missing(json!({"elicitation": {}})));
        }
        let params = elicitation_params(message, schema)?;
        let modern = context
            .protocol_version()
            .is_some_and(|version| !version.has_initialize());
        let answer = if modern {
            match call.responses.and_then(|responses| responses.get("answer")) {
                Some(answer) if valid_answer("elicitation", Some(answer)) => answer.clone(),
                _ => {
                    let request = InputRequest::Elicitation(ElicitRequest::new(params));
                    return Ok(pending(vec![("answer", request)], None));
                }
            }
        } else {
            let result = context
                .peer
                .create_elicitation(params)
                .await
                .map_err(|error| McpError::internal_error(error.to_string(), None))?;
            serde_json::to_value(result).unwrap_or_default()
        };
        let action = answer["action"].as_str().unwrap_or("unknown");
        let content = answer.get("content").cloned().unwrap_or(json!({}));
        Ok(text(format!(
            "Elicitation completed: action={action}, content={content}"
        ))
        .into())
    }

    /// The `test_input_required_result_*` tools (stateless MRTR, SEP-2322).
    fn mrtr(&self, call: Call<'_>) -> Result<CallToolResponse, McpError> {
        let tool = call.name;
        let responses = call.responses;
        let answer = |key: &str| responses.and_then(|responses| responses.get(key));
        // A state that was sent back must be ours; a missing one starts over at round 1.
        let state = match call.state {
            Some(sealed) => Some(self.open(tool, sealed)?),
            None => None,
        };
        let ask_name = || elicitation("What is your name?", name_schema("name"));
        Ok(match tool {
            "test_input_required_result_elicitation" => {
                match accepted_field(answer("user_name"), "name") {
                    Some(name) => text(format!("Hello, {name}!")).into(),
                    None => pending(vec![("user_name", ask_name()?)], None),
                }
            }
            "test_input_required_result_sampling" => {
                if valid_answer("sampling", answer("capital_question")) {
                    let reply = &answer("capital_question").cloned().unwrap_or_default();
                    let said = reply["content"]["text"].as_str().unwrap_or("");
                    text(format!("The model said: {said}")).into()
                } else {
                    let question = sampling("What is the capital of France?", 100);
                    pending(vec![("capital_question", question)], None)
                }
            }
            "test_input_required_result_list_roots" => {
                if valid_answer("roots", answer("client_roots")) {
                    let roots = &answer("client_roots").cloned().unwrap_or_default()["roots"];
                    text(format!("Client roots: {roots}")).into()
                } else {
                    pending(vec![("client_roots", roots())], None)
                }
            }
            "test_input_required_result_request_state"
            | "test_input_required_result_tampered_state" => {
                let confirmed = answer("confirm").filter(|answer| answer["action"] == "accept");
                match (state, confirmed) {
                    (Some(state), Some(_)) if state["round"] == 1 => {
                        text("state-ok: confirmation received").into()
                    }
                    _ => {
                        let schema = json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]});
                        let request = elicitation("Please confirm", schema)?;
                        let state = self.seal(tool, json!({"round": 1}));
                        pending(vec![("confirm", request)], Some(state))
                    }
                }
            }
            "test_input_required_result_multiple_inputs" => {
                let complete = valid_answer("elicitation", answer("user_name"))
                    && valid_answer("sampling", answer("greeting"))
                    && valid_answer("roots", answer("client_roots"));
                if complete && state.is_some() {
                    let name = accepted_field(answer("user_name"), "name").unwrap_or_default();
                    text(format!("Got all three answers, {name}")).into()
                } else {
                    let state = self.seal(tool, json!({"round": 1}));
                    pending(
                        vec![
                            ("user_name", ask_name()?),
                            ("greeting", sampling("Generate a greeting", 50)),
                            ("client_roots", roots()),
                        ],
                        Some(state),
                    )
                }
            }
            "test_input_required_result_multi_round" => {
                let round = state.as_ref().and_then(|state| state["round"].as_u64());
                let step1 = || elicitation("Step 1: What is your name?", name_schema("name"));
                match round {
                    Some(1) => match accepted_field(answer("step1"), "name") {
                        Some(name) => {
                            let request = elicitation(
                                "Step 2: What is your favorite color?",
                                name_schema("color"),
                            )?;
                            let state = self.seal(tool, json!({"round": 2, "name": name}));
                            pending(vec![("step2", request)], Some(state))
                        }
                        None => {
                            let state = self.seal(tool, json!({"round": 1}));
                            pending(vec![("step1", step1()?)], Some(state))
                        }
                    },
                    Some(2) => {
                        let name = state.as_ref().map(|state| state["name"].clone());
                        let name = name.as_ref().and_then(Value::as_str).unwrap_or("");
                        match accepted_field(answer("step2"), "color") {
                            Some(color) => text(format!("{name} likes {color}")).into(),
                            None => {
                                let request = elicitation(
                                    "Step 2: What is your favorite color?",
                                    name_schema("color"),
                                )?;
                                let state = self.seal(tool, json!({"round": 2, "name": name}));
                                pending(vec![("step2", request)], Some(state))
                            }
                        }
                    }
                    _ => {
                        let state = self.seal(tool, json!({"round": 1}));
                        pending(vec![("step1", step1()?)], Some(state))
                    }
                }
            }
            other => {
                return Err(McpError::invalid_params(
                    format!("unknown tool: {other}"),
                    Some(json!({ "name": other })),
                ));
            }
        })
    }

    /// Task-supporting tools: a task when the request declares the tasks extension.
    async fn task_tool(
        &self,
        call: Call<'_>,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let tasks = client_has(context, "tasks");
        let seconds = call
            .args
            .get("seconds")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let label = call
            .args
            .get("label")
            .and_then(Value::as_str)
            .unwrap_or("job")
            .to_string();
        let filename = call
            .args
            .get("filename")
            .and_then(Value::as_str)
            .unwrap_or("file")
            .to_string();
        let run: Box<dyn FnOnce(TaskContext) -> TaskFuture + Send> = match call.name {
            "slow_compute" => {
                let duration = Duration::from_secs_f64(seconds.clamp(0.0, 3600.0));
                if !tasks {
                    tokio::select! {
                        () = tokio::time::sleep(duration) => {}
                        () = context.ct.cancelled() => {
                            return Err(McpError::internal_error("request cancelled", None));
                        }
                    }
                    return Ok(text(format!("computed {label} after {seconds}s")).into());
                }
                Box::new(move |task: TaskContext| {
                    Box::pin(async move {
                        tokio::select! {
                            () = tokio::time::sleep(duration) => Ok(text(format!("computed {label} after {seconds}s"))),
                            () = task.cancelled() => Err(TaskExit::Cancelled),
                        }
                    })
                })
            }
            "failing_job" => {
                if !tasks {
                    return Err(tasks_required());
                }
                Box::new(|_task: TaskContext| {
                    Box::pin(async move {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        Ok(CallToolResult::error(vec![ContentBlock::text(
                            "failing_job failed, as it always does",
                        )]))
                    })
                })
            }
            "protocol_error_job" => {
                let error = McpError::internal_error("protocol_error_job broke down", None);
                if !tasks {
                    return Err(error);
                }
                Box::new(move |_task: TaskContext| {
                    Box::pin(async move { Err(TaskExit::Error(error)) })
                })
            }
            "confirm_delete" => {
                let schema = json!({"type": "object", "properties": {"confirm": {"type": "boolean"}}, "required": ["confirm"]});
                let request = elicitation(&format!("Delete {filename}?"), schema)?;
                if !tasks {
                    let answer = call
                        .responses
                        .and_then(|responses| responses.get("confirm"));
                    return Ok(match answer.filter(|answer| answer["action"].is_string()) {
                        Some(answer) => text(confirm_text(&filename, answer)).into(),
                        None => pending(vec![("confirm", request)], None),
                    });
                }
                Box::new(move |task: TaskContext| {
                    Box::pin(async move {
                        let answer = task.request_input("confirm", request).await?;
                        Ok(text(confirm_text(&filename, &answer)))
                    })
                })
            }
            "multi_input" => {
                if !tasks {
                    return Err(tasks_required());
                }
                let first = elicitation("What is your name?", name_schema("name"))?;
                let second = elicitation(
                    "Shall we go on?",
                    json!({"type": "object", "properties": {"confirm": {"type": "boolean"}}}),
                )?;
                Box::new(move |task: TaskContext| {
                    Box::pin(async move {
                        let (name, go_on) = futures::join!(
                            task.request_input("name", first),
                            task.request_input("confirm", second)
                        );
                        let (name, go_on) = (name?, go_on?);
                        Ok(text(format!(
                            "answers: name={}, confirm={}",
                            name["content"], go_on["content"]
                        )))
                    })
                })
            }
            "test_tool_with_task" => {
                if !tasks {
                    return Err(tasks_required());
                }
                let answer = call
                    .responses
                    .and_then(|responses| responses.get("user_name"));
                let Some(name) = accepted_field(answer, "name") else {
                    let request = elicitation("What is your name?", name_schema("name"))?;
                    return Ok(pending(vec![("user_name", request)], None));
                };
                Box::new(move |_task: TaskContext| {
                    Box::pin(
                        async move { Ok(text(format!("Hello, {name}! (finished as a task)"))) },
                    )
                })
            }
            other => unreachable!("{other} is not a task tool"),
        };
        let options = TaskOptions::new().with_poll_interval_ms(POLL_INTERVAL_MS);
        let task = self.tasks.spawn(options, run);
        Ok(CallToolResponse::Task(CreateTaskResult::new(task)))
    }
}

fn confirm_text(filename: &str, answer: &Value) -> String {
    if answer["action"] == "accept" && answer["content"]["confirm"] != false {
        format!("Deleted {filename}")
    } else {
        format!("Kept {filename}")
    }
}

/// `test_input_required_result_capabilities`: asks only for what the client declared.
pub(crate) fn capability_requests(
    context: &RequestContext<RoleServer>,
    responses: Option<&InputResponses>,
) -> Result<CallToolResponse, McpError> {
    let mut requests = Vec::new();
    if client_has(context, "sampling") {
        requests.push(("question", sampling("Say something", 20)));
    }
    if client_has(context, "elicitation") {
        requests.push((
            "user_name",
            elicitation("What is your name?", name_schema("name"))?,
        ));
    }
    if client_has(context, "roots") {
        requests.push(("client_roots", roots()));
    }
    let answered = requests
        .iter()
        .all(|(key, _)| responses.is_some_and(|responses| responses.contains_key(*key)));
    if requests.is_empty() {
        return Ok(text("the client declared no capability to ask with").into());
    }
    if answered {
        return Ok(text("all declared capabilities answered").into());
    }
    Ok(pending(requests, None))
}

/// The prompt `test_input_required_result_prompt`: asks for context first (MRTR).
pub(crate) fn mrtr_prompt(request: &GetPromptRequestParams) -> Result<GetPromptResponse, McpError> {
    let answer = request
        .input_responses
        .as_ref()
        .and_then(|responses| responses.get("user_context"));
    match accepted_field(answer, "context") {
        Some(context) => Ok(GetPromptResult::new(vec![PromptMessage::new_text(
            Role::User,
            format!("Answer with this context in mind: {context}"),
        )])
        .into()),
        None => {
            let request = elicitation(
                "What context should the prompt use?",
                name_schema("context"),
            )?;
            let requests = BTreeMap::from([("user_context".to_string(), request)]);
            Ok(InputRequiredResult::from_input_requests(requests).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_state_opens_only_untouched_and_for_its_tool() {
        let fixtures = Fixtures::new();
        let sealed = fixtures.seal("tool_a", json!({"round": 2, "name": "Ann"}));
        assert_eq!(
            fixtures.open("tool_a", &sealed).unwrap(),
            json!({"round": 2, "name": "Ann"})
        );
        // Another tool's state, an appended suffix, a flipped byte, garbage: all refused.
        assert!(fixtures.open("tool_b", &sealed).is_err());
        assert!(
            fixtures
                .open("tool_a", &format!("{sealed}-TAMPERED"))
                .is_err()
        );
        let mut flipped = sealed.clone().into_bytes();
        flipped[3] ^= 1;
        assert!(
            fixtures
                .open("tool_a", &String::from_utf8_lossy(&flipped))
                .is_err()
        );
        assert!(fixtures.open("tool_a", "not a state").is_err());
        // A state sealed by another process (another key) is refused too.
        assert!(Fixtures::new().open("tool_a", &sealed).is_err());
    }
}
