//! What a demo tool asks of the client (`test_sampling`, `test_elicitation`, `roots`): on the
//! `initialize` lifecycle a server-to-client request, on 2026-07-28 an MRTR
//! `InputRequiredResult` that the client's retry answers. A tool says what it needs and how to
//! render the answer; this file asks, checks the client declared the capability, and turns a
//! failure into an error result.

use std::collections::BTreeMap;

use rmcp::{RoleServer, model::*, service::RequestContext};
use serde_json::{Value, json};

use crate::{
    server::is_modern,
    tools::{error_result, text_result},
};

/// What a tool needs from the client: sent as a request (legacy) or an input request (MRTR).
pub(crate) enum ClientInput {
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
    pub(crate) async fn tool_result(
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
pub(crate) fn sampling_reply_text(result: &Value) -> String {
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
