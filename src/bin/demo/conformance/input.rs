//! What the fixtures ask of the client and how they read its answers: building elicitation,
//! sampling and roots input requests, an `InputRequiredResult` round, checks on the shape of an
//! answer, the client's declared capabilities, and the missing-capability error (-32021). The
//! families decide what to ask and when; this file only builds and reads.

use rmcp::{ErrorData as McpError, RoleServer, model::*, service::RequestContext};
use serde_json::{Value, json};

pub(super) fn elicitation_params(
    message: &str,
    schema: Value,
) -> Result<ElicitRequestParams, McpError> {
    serde_json::from_value(json!({"mode": "form", "message": message, "requestedSchema": schema}))
        .map_err(|error| McpError::internal_error(format!("bad elicitation: {error}"), None))
}

pub(super) fn elicitation(message: &str, schema: Value) -> Result<InputRequest, McpError> {
    let params = elicitation_params(message, schema)?;
    Ok(InputRequest::Elicitation(ElicitRequest::new(params)))
}

#[allow(deprecated)] // sampling and roots are SEP-2577-deprecated; exercising them is the point
pub(super) fn sampling(prompt: &str, max_tokens: u32) -> InputRequest {
    InputRequest::CreateMessage(CreateMessageRequest::new(CreateMessageRequestParams::new(
        vec![SamplingMessage::user_text(prompt)],
        max_tokens,
    )))
}

#[allow(deprecated)] // roots are SEP-2577-deprecated; exercising them is the point
pub(super) fn roots() -> InputRequest {
    InputRequest::ListRoots(ListRootsRequest {
        method: Default::default(),
        extensions: Default::default(),
    })
}

pub(super) fn name_schema(field: &str) -> Value {
    json!({"type": "object", "properties": {field: {"type": "string"}}, "required": [field]})
}

/// The accepted `content.<field>` string of an elicitation answer, if the answer is one.
pub(super) fn accepted_field(answer: Option<&Value>, field: &str) -> Option<String> {
    let answer = answer?;
    (answer["action"] == "accept")
        .then(|| answer["content"][field].as_str().map(str::to_owned))
        .flatten()
}

/// Whether the client's answer to a `kind` request has the right shape.
pub(super) fn valid_answer(kind: &str, answer: Option<&Value>) -> bool {
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

pub(super) fn pending(
    requests: Vec<(&str, InputRequest)>,
    state: Option<String>,
) -> CallToolResponse {
    let requests: InputRequests = requests
        .into_iter()
        .map(|(key, request)| (key.to_string(), request))
        .collect();
    let mut result = InputRequiredResult::from_input_requests(requests);
    result.request_state = state;
    result.into()
}

pub(super) fn client_has(context: &RequestContext<RoleServer>, what: &str) -> bool {
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

pub(super) fn missing(capabilities: Value) -> McpError {
    match serde_json::from_value(capabilities) {
        Ok(required) => McpError::missing_required_client_capability(required),
        Err(error) => McpError::internal_error(error.to_string(), None),
    }
}
