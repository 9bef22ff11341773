//! The conformance suite's fixtures that the plain demo tools don't cover, one family per file:
//! the elicitation schemas (SEP-1034, SEP-1330), the stateless diagnostics (including the
//! `x-mcp-header` tool, SEP-2243), the MRTR tools with their sealed `requestState` (SEP-2322),
//! the tasks extension's tools (SEP-2663) and `test_reconnection` with its HTTP layer (SEP-1699).
//! This file holds their catalog, the state they share across sessions, and the dispatch of a
//! call to its family.

use std::sync::Arc;

use rmcp::{
    ErrorData as McpError, RoleServer, handler::server::common::schema_for_empty_input, model::*,
    service::RequestContext, task_manager::TaskManager,
};
use serde_json::{Value, json};

mod diagnostics;
mod elicitation;
mod input;
mod mrtr;
mod reconnection;
mod request_state;
mod tasks;

pub(crate) use mrtr::mrtr_prompt;
pub(crate) use reconnection::{Resumptions, drop_stream_mid_call, reconnection};

use request_state::RequestSeal;

/// Fixture state shared by every session: the tasks and the key sealing `requestState`.
pub(crate) struct Fixtures {
    /// Resumed streams per session, shared with the HTTP layer.
    pub(crate) resumptions: Arc<Resumptions>,
    tasks: TaskManager,
    request_state: RequestSeal,
}

/// What a call needs from the request besides its context.
pub(crate) struct Call<'a> {
    pub(crate) name: &'a str,
    pub(crate) args: &'a JsonObject,
    pub(crate) responses: Option<&'a InputResponses>,
    pub(crate) state: Option<&'a str>,
}

impl Fixtures {
    pub(crate) fn new() -> Self {
        Self {
            resumptions: Arc::default(),
            tasks: TaskManager::new(),
            request_state: RequestSeal::new(),
        }
    }

    /// Runs fixture tool `call.name`; `None` when it is not one of ours.
    pub(crate) async fn call(
        &self,
        call: Call<'_>,
        context: &RequestContext<RoleServer>,
    ) -> Option<Result<CallToolResponse, McpError>> {
        let result = match call.name {
            "test_elicitation_sep1034_defaults" => elicitation::defaults(call, context).await,
            "test_elicitation_sep1330_enums" => elicitation::enums(call, context).await,
            "test_missing_capability" => diagnostics::missing_capability(context),
            "test_streaming_elicitation" => elicitation::streaming(call, context).await,
            "test_header_params" => Ok(diagnostics::header_params(call.args)),
            "test_input_required_result_capabilities" => {
                mrtr::capability_requests(context, call.responses)
            }
            name if name.starts_with("test_input_required_result_") => {
                mrtr::call(&self.request_state, call)
            }
            "greet" => Ok(tasks::greet(call.args)),
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
