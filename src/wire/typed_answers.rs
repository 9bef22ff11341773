//! Answers decoded straight into the type their request expects.
//!
//! rmcp decodes every answer from a server as its untagged `ServerResult`: serde first copies the
//! whole message into a generic tree, then tries the variants in order until one fits. A
//! `tools/call` answer is the 16th variant, so each one paid for fifteen failed attempts — about
//! 5 µs of the proxy's ~35 µs of CPU per stdio call. The transport sees the requests
//! going out, so it notes the id of each `tools/call` and `tools/list` and decodes their answers
//! as `CallToolResult` / `ListToolsResult` directly.
//!
//! Purely a shortcut: an answer that does not decode as the expected type (an error, a task, an
//! `InputRequiredResult`, a stashed core-task answer…) takes rmcp's untagged path as before, and
//! the table of ids is bounded (cleared when full), so a request that is never answered costs
//! nothing but the shortcut for the ones in flight with it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use rmcp::RoleClient;
use rmcp::model::{
    CallToolResult, ClientNotification, ClientRequest, JsonRpcMessage, ListToolsResult, RequestId,
    ServerResult,
};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The most requests remembered at once; past it the table starts over.
const MAX_PENDING: usize = 4096;

#[derive(Clone, Copy, Debug)]
enum Expect {
    CallTool,
    ListTools,
}

/// The requests in flight whose answers can be decoded directly, by id.
#[derive(Debug, Default)]
pub struct TypedAnswers {
    pending: Mutex<HashMap<RequestId, Expect>>,
}

/// The parts of an answer the shortcut reads; the result stays unparsed until its type is known.
#[derive(Deserialize)]
struct Head<'a> {
    id: Option<RequestId>,
    /// Present on requests and notifications (a server's request ids are its own, so one may
    /// equal an id of ours).
    method: Option<serde::de::IgnoredAny>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
}

impl TypedAnswers {
    /// Notes a message on its way to the server.
    pub fn sent(&self, message: &TxJsonRpcMessage<RoleClient>) {
        match message {
            JsonRpcMessage::Request(request) => {
                let expect = match &request.request {
                    ClientRequest::CallToolRequest(_) => Expect::CallTool,
                    ClientRequest::ListToolsRequest(_) => Expect::ListTools,
                    _ => return,
                };
                let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
                if pending.len() >= MAX_PENDING {
                    pending.clear();
                }
                pending.insert(request.id.clone(), expect);
            }
            JsonRpcMessage::Notification(notification) => {
                if let ClientNotification::CancelledNotification(cancelled) =
                    &notification.notification
                    && let Some(id) = &cancelled.params.request_id
                {
                    self.forget(id);
                }
            }
            _ => {}
        }
    }

    fn forget(&self, id: &RequestId) -> Option<Expect> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.is_empty() {
            return None;
        }
        pending.remove(id)
    }

    /// The message in `line`, when it answers a noted request and decodes as that request's
    /// result; `None` sends the line down rmcp's general path.
    pub fn decode(&self, line: &[u8]) -> Option<RxJsonRpcMessage<RoleClient>> {
        if self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
        {
            return None;
        }
        let head: Head<'_> = serde_json::from_slice(line).ok()?;
        if head.method.is_some() {
            return None;
        }
        let id = head.id?;
        // Answered one way or another: the id is done with.
        let expect = self.forget(&id)?;
        let result = head.result?.get();
        let result = match expect {
            Expect::CallTool => {
                ServerResult::CallToolResult(serde_json::from_str::<CallToolResult>(result).ok()?)
            }
            Expect::ListTools => {
                ServerResult::ListToolsResult(serde_json::from_str::<ListToolsResult>(result).ok()?)
            }
        };
        Some(JsonRpcMessage::response(result, id))
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::{
        CallToolRequestParams, CancelledNotificationParam, ClientJsonRpcMessage, Notification,
        NumberOrString, PaginatedRequestParams, Request, RequestOptionalParam,
    };
    use serde_json::json;

    use super::*;

    fn call(id: i64) -> ClientJsonRpcMessage {
        JsonRpcMessage::request(
            ClientRequest::CallToolRequest(Request::new(CallToolRequestParams::new("echo"))),
            NumberOrString::Number(id),
        )
    }

    /// What rmcp's own path makes of `line`.
    fn general(line: &str) -> Value {
        let message: RxJsonRpcMessage<RoleClient> = serde_json::from_str(line).unwrap();
        serde_json::to_value(message).unwrap()
    }

    use serde_json::Value;

    #[test]
    fn a_noted_call_is_decoded_directly_and_equals_the_general_path() {
        let answers = TypedAnswers::default();
        answers.sent(&call(7));
        let line = json!({"jsonrpc": "2.0", "id": 7, "result": {
            "content": [{"type": "text", "text": "hi"}],
            "structuredContent": {"a": 1}, "isError": false, "_meta": {"k": "v"}}})
        .to_string();
        let direct = answers.decode(line.as_bytes()).expect("decoded directly");
        assert!(matches!(
            &direct,
            JsonRpcMessage::Response(response)
                if matches!(response.result, ServerResult::CallToolResult(_))
        ));
        assert_eq!(serde_json::to_value(direct).unwrap(), general(&line));
        // Done with: the same id again goes the general way.
        assert!(answers.decode(line.as_bytes()).is_none());
    }

    #[test]
    fn a_noted_list_is_decoded_directly() {
        let answers = TypedAnswers::default();
        answers.sent(&JsonRpcMessage::request(
            ClientRequest::ListToolsRequest(RequestOptionalParam::with_param(
                PaginatedRequestParams::default(),
            )),
            NumberOrString::String("l".into()),
        ));
        let line = json!({"jsonrpc": "2.0", "id": "l", "result": {
            "tools": [{"name": "t", "inputSchema": {"type": "object"}}], "nextCursor": "2"}})
        .to_string();
        let direct = answers.decode(line.as_bytes()).expect("decoded directly");
        assert_eq!(serde_json::to_value(direct).unwrap(), general(&line));
    }

    #[test]
    fn other_answers_take_the_general_path() {
        let answers = TypedAnswers::default();
        // Nothing noted.
        let line = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": []}}).to_string();
        assert!(answers.decode(line.as_bytes()).is_none());
        // An error, a task and an input request for noted calls; a request from the server.
        for (id, line) in [
            (
                1,
                json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "no"}}),
            ),
            (
                2,
                json!({"jsonrpc": "2.0", "id": 2, "result": {"task": {"taskId": "t",
                "status": "working", "createdAt": "2025-11-25T10:30:00Z", "ttl": 1000}}}),
            ),
            (
                3,
                json!({"jsonrpc": "2.0", "id": 3, "result": {"resultType": "input_required",
                "inputRequests": {}}}),
            ),
            (
                4,
                json!({"jsonrpc": "2.0", "id": 4, "method": "roots/list"}),
            ),
        ] {
            answers.sent(&call(id));
            assert!(
                answers.decode(line.to_string().as_bytes()).is_none(),
                "{line}"
            );
        }
        // The server's request 4 did not end our call 4.
        let line = json!({"jsonrpc": "2.0", "id": 4, "result": {"content": []}}).to_string();
        assert!(answers.decode(line.as_bytes()).is_some());
        // A cancelled call is forgotten.
        answers.sent(&call(5));
        answers.sent(&JsonRpcMessage::notification(
            ClientNotification::CancelledNotification(Notification::new(
                CancelledNotificationParam::new(Some(NumberOrString::Number(5)), None),
            )),
        ));
        let line = json!({"jsonrpc": "2.0", "id": 5, "result": {"content": []}}).to_string();
        assert!(answers.decode(line.as_bytes()).is_none());
    }
}
