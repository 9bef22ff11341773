//! 2025-11-25 "core" tasks at the byte level (the legacy generation's tasks:
//! `capabilities.tasks`, `execution.taskSupport`, `tools/call` with `params.task`,
//! `tasks/get|result|list|cancel`, `notifications/tasks/status`).
//!
//! **The rmcp behaviour compensated:** rmcp 3.11's typed model drops the data these need while
//! parsing (pinned by `router::tasks::tests::rmcp_drops_the_data_core_tasks_need`), so they are
//! carried as raw JSON, rewritten at our own framing on both sides, where the bytes are still
//! seen:
//!
//! - **Downstream** ([`DownstreamWire`], in every transport of ours that reads a server's
//!   messages: the child's stdio, legacy SSE, Streamable HTTP): a server's `capabilities.tasks`
//!   moves to `capabilities.experimental["io.pluggedin/tasks"]` and each tool's `execution` to
//!   its `_meta["io.pluggedin/execution"]`, slots rmcp keeps; the answer to a core-task request
//!   the proxy sent (tracked by request id) is wrapped as `{"io.pluggedin/raw": answer}`, which
//!   no typed result accepts, so rmcp hands it over whole as `CustomResult` ([`raw`] takes it
//!   out); a `notifications/tasks/status` becomes the custom notification [`STATUS_CUSTOM`].
//!   Requests go out as `ClientRequest::CustomRequest` with the client's raw params ([`custom`]).
//! - **Upstream** ([`rename_request`], [`unstash_result`], in our stdio transport and the HTTP
//!   guard): a legacy client's `tasks/*` request and `tools/call` carrying `params.task` (no
//!   per-request protocol version: a modern client's `tasks/*` keep the extension's path, and
//!   the `task` param it may send is ignored, SEP-2663) are renamed to
//!   `io.pluggedin/core-tasks/<method>` (answered by the router's core-task half); the stashed
//!   capability and `execution`s go back to their places in the answers to `initialize` and
//!   `tools/list`.
//!
//! **Dropping it:** when rmcp's model keeps `capabilities.tasks`, `Tool::execution`,
//! `params.task` and the 2025-11-25 task results, the renaming, stashing and wrapping go, and the
//! router's core-task answers become typed handlers.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use rmcp::ErrorData;
use rmcp::RoleClient;
use rmcp::model::{
    ClientNotification, ClientRequest, CustomRequest, JsonRpcMessage, RequestId, ServerResult,
};
use rmcp::service::TxJsonRpcMessage;
use serde_json::{Value, json};

use crate::sync::lock;

/// Where a server's `capabilities.tasks` waits in `capabilities.experimental`.
pub const TASKS_STASH: &str = "io.pluggedin/tasks";
/// Where a tool's `execution` waits in its `_meta`.
pub const EXECUTION_STASH: &str = "io.pluggedin/execution";
/// The key wrapping a raw answer so that rmcp's untagged `ServerResult` keeps it as `CustomResult`.
pub const RAW: &str = "io.pluggedin/raw";
/// The core tasks status notification.
pub const STATUS: &str = "notifications/tasks/status";
/// What a server's status notification is called between our transport and our handler.
pub const STATUS_CUSTOM: &str = "io.pluggedin/core-tasks/status";
/// The prefix of the methods a legacy client's core-task requests are renamed to.
pub const PREFIX: &str = "io.pluggedin/core-tasks/";
/// The `_meta` key of a task's result naming its task.
pub const RELATED: &str = "io.modelcontextprotocol/related-task";
/// The per-request protocol version of a modern (2026-07-28) client.
pub const MODERN_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// The core task methods, as a client sends them.
pub const TASK_METHODS: [&str; 4] = ["tasks/get", "tasks/result", "tasks/list", "tasks/cancel"];
/// Whether any server's task data was stashed in this process: until then no answer carries a
/// stash, and the HTTP guard leaves answers alone (streamed, not read whole).
static STASHED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The most task owners remembered for status notifications.
pub const MAX_OWNERS: usize = 4096;
/// The most core-task requests awaiting their answers on one connection.
pub const MAX_PENDING: usize = 4096;
/// The most statuses kept for tasks whose creation has not passed yet.
pub const MAX_EARLY: usize = 256;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

// ----------------------------------------------------------------------------------------------
// Downstream: our transports to servers.

/// One connection's half of the raw path: which requests we sent are core-task requests, and
/// the rewriting of what the server sends. Cheap to clone (the send future holds a copy).
#[derive(Clone, Default)]
pub struct DownstreamWire {
    pending: Arc<Mutex<HashSet<RequestId>>>,
}

impl DownstreamWire {
    /// Notes a request we are sending whose answer must stay raw, and forgets one we cancel (a
    /// timeout, or the client gave up): no answer may come for it.
    pub fn sent(&self, message: &TxJsonRpcMessage<RoleClient>) {
        match message {
            JsonRpcMessage::Request(request) => {
                if let ClientRequest::CustomRequest(custom) = &request.request
                    && (custom.method == "tools/call"
                        || TASK_METHODS.contains(&custom.method.as_str()))
                {
                    let mut pending = lock(&self.pending);
                    if pending.len() >= MAX_PENDING {
                        // Only answers lost without a cancellation get here; forget them.
                        pending.clear();
                    }
                    pending.insert(request.id.clone());
                }
            }
            JsonRpcMessage::Notification(notification) => {
                if let ClientNotification::CancelledNotification(cancelled) =
                    &notification.notification
                    && let Some(id) = &cancelled.params.request_id
                {
                    lock(&self.pending).remove(id);
                }
            }
            _ => {}
        }
    }

    /// A message from the server, rewritten for the raw path: `Some` when something changed
    /// (decode that instead of the bytes), `None` when the bytes decode as they are.
    pub fn received(&self, bytes: &[u8]) -> Option<Value> {
        let waiting = !lock(&self.pending).is_empty();
        if !waiting
            && !contains(bytes, b"\"tasks\"")
            && !contains(bytes, b"\"execution\"")
            && !contains(bytes, STATUS.as_bytes())
        {
            return None;
        }
        let mut value: Value = serde_json::from_slice(bytes).ok()?;
        self.rewrite(&mut value)
            .then_some(value)
            .inspect(|_| STASHED.store(true, std::sync::atomic::Ordering::Relaxed))
    }

    fn rewrite(&self, value: &mut Value) -> bool {
        let Some(object) = value.as_object_mut() else {
            return false;
        };
        let is_answer = object.contains_key("result") || object.contains_key("error");
        if is_answer
            && let Some(id) = object.get("id")
            && let Ok(id) = serde_json::from_value::<RequestId>(id.clone())
            && lock(&self.pending).remove(&id)
        {
            return match object.remove("result") {
                Some(result) => {
                    object.insert("result".into(), json!({ RAW: result }));
                    true
                }
                None => false,
            };
        }
        if object.get("method").and_then(Value::as_str) == Some(STATUS) {
            object.insert("method".into(), STATUS_CUSTOM.into());
            return true;
        }
        let Some(result) = object.get_mut("result").and_then(Value::as_object_mut) else {
            return false;
        };
        let mut changed = false;
        if let Some(capabilities) = result
            .get_mut("capabilities")
            .and_then(Value::as_object_mut)
            && let Some(tasks) = capabilities.remove("tasks")
        {
            changed = true;
            if tasks.is_object() {
                let experimental = capabilities
                    .entry("experimental")
                    .or_insert_with(|| json!({}));
                if let Some(experimental) = experimental.as_object_mut() {
                    experimental.insert(TASKS_STASH.into(), tasks);
                }
            }
        }
        if let Some(tools) = result.get_mut("tools").and_then(Value::as_array_mut) {
            for tool in tools.iter_mut().filter_map(Value::as_object_mut) {
                let Some(execution) = tool.remove("execution") else {
                    continue;
                };
                changed = true;
                let meta = tool.entry("_meta").or_insert_with(|| json!({}));
                if let Some(meta) = meta.as_object_mut() {
                    meta.insert(EXECUTION_STASH.into(), execution);
                }
            }
        }
        changed
    }
}

// ----------------------------------------------------------------------------------------------
// Upstream: our framing towards clients.

/// Whether a client's message may be a core-task request (a cheap test before parsing it).
pub fn may_rename(bytes: &[u8]) -> bool {
    contains(bytes, b"tasks/") || contains(bytes, b"\"task\"")
}

/// Renames a legacy client's core-task request (a `tasks/*` request, or a `tools/call` with
/// `params.task`, without a modern per-request protocol version) to the custom method our
/// handler answers with raw JSON. Whether it renamed.
pub fn rename_request(message: &mut Value) -> bool {
    let Some(object) = message.as_object_mut() else {
        return false;
    };
    let Some(method) = object.get("method").and_then(Value::as_str) else {
        return false;
    };
    let params = object.get("params");
    // A modern client's request names its protocol version in `_meta`; its `tasks/*` are the
    // extension's, and a `task` param it sends is to be ignored, not made a task (SEP-2663).
    let legacy = params
        .and_then(|params| params.get("_meta"))
        .and_then(|meta| meta.get(MODERN_VERSION))
        .is_none();
    let rename = legacy
        && if method == "tools/call" {
            params
                .and_then(|params| params.get("task"))
                .is_some_and(Value::is_object)
        } else {
            TASK_METHODS.contains(&method)
        };
    if rename {
        let renamed = format!("{PREFIX}{method}");
        object.insert("method".into(), renamed.into());
    }
    rename
}

/// Whether an answer carries stashed task data that [`unstash_result`] must put back.
pub fn needs_unstash(result: &ServerResult) -> bool {
    match result {
        ServerResult::InitializeResult(result) => result
            .capabilities
            .experimental
            .as_ref()
            .is_some_and(|experimental| experimental.contains_key(TASKS_STASH)),
        ServerResult::ListToolsResult(result) => result.tools.iter().any(|tool| {
            tool.meta
                .as_ref()
                .is_some_and(|meta| meta.0.contains_key(EXECUTION_STASH))
        }),
        _ => false,
    }
}

/// Puts stashed task data of an encoded `initialize` or `tools/list` result back in place:
/// `capabilities.tasks`, and each tool's `execution`.
pub fn unstash_result(result: &mut Value) {
    let Some(result) = result.as_object_mut() else {
        return;
    };
    if let Some(capabilities) = result
        .get_mut("capabilities")
        .and_then(Value::as_object_mut)
        && let Some(experimental) = capabilities
            .get_mut("experimental")
            .and_then(Value::as_object_mut)
        && let Some(tasks) = experimental.remove(TASKS_STASH)
    {
        if experimental.is_empty() {
            capabilities.remove("experimental");
        }
        capabilities.insert("tasks".into(), tasks);
    }
    if let Some(tools) = result.get_mut("tools").and_then(Value::as_array_mut) {
        for tool in tools.iter_mut().filter_map(Value::as_object_mut) {
            let Some(meta) = tool.get_mut("_meta").and_then(Value::as_object_mut) else {
                continue;
            };
            let Some(execution) = meta.remove(EXECUTION_STASH) else {
                continue;
            };
            if meta.is_empty() {
                tool.remove("_meta");
            }
            tool.insert("execution".into(), execution);
        }
    }
}

/// Rewrites an encoded JSON-RPC message (one line, one SSE `data`, one JSON body) whose result
/// may carry stashed task data; `None` when nothing changed.
pub fn unstash_message(bytes: &[u8]) -> Option<Vec<u8>> {
    if !contains(bytes, TASKS_STASH.as_bytes()) && !contains(bytes, EXECUTION_STASH.as_bytes()) {
        return None;
    }
    let mut message: Value = serde_json::from_slice(bytes).ok()?;
    unstash_result(message.get_mut("result")?);
    serde_json::to_vec(&message).ok()
}

/// The HTTP guard's half: a POST body with a legacy client's core-task request renamed
/// ([`rename_request`]), and its `Mcp-Method` header, if it sent one, naming the new method (rmcp
/// checks that they agree); the bytes unchanged otherwise.
pub fn rename_post(
    headers: &mut axum::http::HeaderMap,
    bytes: axum::body::Bytes,
) -> axum::body::Bytes {
    let renamed = rename_body(bytes.clone());
    if renamed != bytes
        && headers.contains_key("mcp-method")
        && let Ok(message) = serde_json::from_slice::<Value>(&renamed)
        && let Some(method) = message.get("method").and_then(Value::as_str)
        && let Ok(value) = axum::http::HeaderValue::from_str(method)
    {
        headers.insert("mcp-method", value);
    }
    renamed
}

fn rename_body(bytes: axum::body::Bytes) -> axum::body::Bytes {
    if !may_rename(&bytes) {
        return bytes;
    }
    let Ok(mut body) = serde_json::from_slice::<Value>(&bytes) else {
        return bytes;
    };
    let renamed = match &mut body {
        Value::Array(messages) => {
            // Every message of a batch, not only up to the first renamed one.
            let mut renamed = false;
            for message in messages {
                renamed |= rename_request(message);
            }
            renamed
        }
        message => rename_request(message),
    };
    if !renamed {
        return bytes;
    }
    serde_json::to_vec(&body).map_or(bytes, Into::into)
}

/// Whether the HTTP guard must pass an answer through [`unstash_response`]: a POST of
/// `initialize` or `tools/list`.
pub fn answers_need_unstash(methods: &[String]) -> bool {
    STASHED.load(std::sync::atomic::Ordering::Relaxed)
        && methods
            .iter()
            .any(|method| method == "initialize" || method == "tools/list")
}

/// The HTTP guard's answer to `initialize` or `tools/list` (one JSON body, or an SSE stream
/// that ends after the answer) with stashed task data back in place.
pub async fn unstash_response(response: axum::response::Response) -> axum::response::Response {
    use http_body_util::BodyExt;
    let (mut parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            tracing::debug!("answer body failed: {error}");
            return axum::response::Response::from_parts(parts, axum::body::Body::empty());
        }
    };
    let rewritten = match unstash_message(&bytes) {
        Some(message) => Some(message),
        None if contains(&bytes, b"data:") => unstash_events(&bytes),
        None => None,
    };
    let bytes = rewritten.map_or(bytes, Into::into);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// An SSE stream with each event's (one-line) `data` rewritten by [`unstash_message`].
fn unstash_events(bytes: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut changed = false;
    let mut out = Vec::with_capacity(bytes.len());
    for line in text.split_inclusive('\n') {
        let (content, end) = match line.strip_suffix('\n') {
            Some(content) => (content, "\n"),
            None => (line, ""),
        };
        let (content, cr) = match content.strip_suffix('\r') {
            Some(content) => (content, "\r"),
            None => (content, ""),
        };
        match content
            .strip_prefix("data:")
            .and_then(|data| unstash_message(data.trim_start().as_bytes()))
        {
            Some(message) => {
                changed = true;
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(&message);
            }
            None => out.extend_from_slice(content.as_bytes()),
        }
        out.extend_from_slice(cr.as_bytes());
        out.extend_from_slice(end.as_bytes());
    }
    changed.then_some(out)
}

/// Takes a raw answer out of its wrapper.
pub fn raw(server: &str, method: &str, result: ServerResult) -> Result<Value, ErrorData> {
    match result {
        ServerResult::CustomResult(custom) => match custom.0 {
            Value::Object(mut wrapper) if wrapper.contains_key(RAW) => {
                Ok(wrapper.remove(RAW).unwrap_or_default())
            }
            other => Ok(other),
        },
        // A transport without the raw path (none of ours): the typed answer as it is.
        other => serde_json::to_value(other).map_err(|error| {
            ErrorData::internal_error(
                format!("server {server} answered {method} with something unusable: {error}"),
                None,
            )
        }),
    }
}

pub fn custom(method: &str, params: Value) -> ClientRequest {
    ClientRequest::CustomRequest(CustomRequest::new(method, Some(params)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_answer_survives_rmcps_result_types() {
        let task = json!({
            "taskId": "t1", "status": "working", "createdAt": "2025-11-25T10:30:00Z",
            "lastUpdatedAt": "2025-11-25T10:30:00Z", "ttl": 60000, "pollInterval": 1000
        });
        for answer in [
            task.clone(),
            json!({ "task": task }),
            json!({ "tasks": [task], "nextCursor": "2" }),
            json!({ "content": [{ "type": "text", "text": "done" }] }),
        ] {
            let parsed: ServerResult =
                serde_json::from_value(json!({ RAW: answer.clone() })).expect("server result");
            assert_eq!(raw("s", "m", parsed).expect("raw"), answer);
        }
    }

    #[test]
    fn servers_task_data_is_stashed_and_put_back() {
        let wire = DownstreamWire::default();
        let tasks = json!({ "list": {}, "cancel": {}, "requests": { "tools": { "call": {} } } });
        let line = json!({ "jsonrpc": "2.0", "id": 0, "result": {
            "protocolVersion": "2025-11-25", "capabilities": { "tools": {}, "tasks": tasks },
            "serverInfo": { "name": "s", "version": "1" } } });
        let stashed = wire
            .received(line.to_string().as_bytes())
            .expect("rewritten");
        let message: rmcp::service::RxJsonRpcMessage<RoleClient> =
            serde_json::from_value(stashed).expect("decodes");
        let mut value = serde_json::to_value(&message).expect("encodes");
        unstash_result(&mut value["result"]);
        assert_eq!(value["result"]["capabilities"]["tasks"], tasks);

        let execution = json!({ "taskSupport": "required" });
        let line = json!({ "jsonrpc": "2.0", "id": 1, "result": { "tools": [{
            "name": "research", "inputSchema": { "type": "object" }, "execution": execution }] } });
        let stashed = wire
            .received(line.to_string().as_bytes())
            .expect("rewritten");
        let message: rmcp::service::RxJsonRpcMessage<RoleClient> =
            serde_json::from_value(stashed).expect("decodes");
        let JsonRpcMessage::Response(response) = &message else {
            panic!("a response");
        };
        assert!(needs_unstash(&response.result));
        let mut value = serde_json::to_value(&message).expect("encodes");
        unstash_result(&mut value["result"]);
        assert_eq!(value["result"]["tools"][0]["execution"], execution);
        assert!(value["result"]["tools"][0].get("_meta").is_none());
    }

    #[test]
    fn sse_answers_and_json_bodies_are_unstashed() {
        let stashed = json!({ "jsonrpc": "2.0", "id": 3, "result": { "tools": [{ "name": "t",
            "inputSchema": {}, "_meta": { EXECUTION_STASH: { "taskSupport": "optional" } } }] } });
        let stream = format!("id: 1\nevent: message\ndata: {stashed}\n\n");
        let rewritten = unstash_events(stream.as_bytes()).expect("rewritten");
        let text = String::from_utf8(rewritten).unwrap();
        let data = text
            .lines()
            .find_map(|line| line.strip_prefix("data: "))
            .unwrap();
        let message: Value = serde_json::from_str(data).unwrap();
        assert_eq!(
            message["result"]["tools"][0]["execution"],
            json!({ "taskSupport": "optional" })
        );
        assert!(text.starts_with("id: 1\nevent: message\n") && text.ends_with("\n\n"));
        let body = unstash_message(stashed.to_string().as_bytes()).expect("rewritten");
        let message: Value = serde_json::from_slice(&body).unwrap();
        assert!(message["result"]["tools"][0].get("_meta").is_none());
        // Nothing stashed: nothing rewritten.
        assert!(unstash_message(br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#).is_none());
    }

    #[test]
    fn a_batch_body_has_every_core_task_request_renamed() {
        let body = json!([
            { "jsonrpc": "2.0", "id": 1, "method": "tasks/list" },
            { "jsonrpc": "2.0", "id": 2, "method": "tasks/get", "params": { "taskId": "a__b" } },
            { "jsonrpc": "2.0", "id": 3, "method": "ping" },
        ]);
        let mut headers = axum::http::HeaderMap::new();
        let renamed = rename_post(&mut headers, body.to_string().into_bytes().into());
        let renamed: Value = serde_json::from_slice(&renamed).unwrap();
        assert_eq!(renamed[0]["method"], "io.pluggedin/core-tasks/tasks/list");
        assert_eq!(renamed[1]["method"], "io.pluggedin/core-tasks/tasks/get");
        assert_eq!(renamed[2]["method"], "ping");
    }

    #[test]
    fn the_mcp_method_header_follows_the_renamed_method() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            "mcp-method",
            axum::http::HeaderValue::from_static("tasks/result"),
        );
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tasks/result",
            "params": { "taskId": "a__b" } });
        rename_post(&mut headers, body.to_string().into_bytes().into());
        assert_eq!(
            headers["mcp-method"],
            "io.pluggedin/core-tasks/tasks/result"
        );
    }

    #[test]
    fn a_cancelled_task_request_stops_waiting_for_its_answer() {
        let wire = DownstreamWire::default();
        let request = ClientRequest::CustomRequest(CustomRequest::new(
            "tasks/result",
            Some(json!({ "taskId": "t" })),
        ));
        wire.sent(&JsonRpcMessage::request(request, RequestId::Number(7)));
        assert!(lock(&wire.pending).contains(&RequestId::Number(7)));
        let cancelled: TxJsonRpcMessage<RoleClient> = serde_json::from_value(json!({
            "jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": { "requestId": 7, "reason": "timeout" } }))
        .expect("a cancellation");
        wire.sent(&cancelled);
        assert!(lock(&wire.pending).is_empty());
        // With nothing pending, a plain answer is left to rmcp as it is.
        assert!(
            wire.received(br#"{"jsonrpc":"2.0","id":8,"result":{"content":[]}}"#)
                .is_none()
        );
    }

    #[test]
    fn only_legacy_task_requests_are_renamed() {
        let mut get = json!({ "jsonrpc": "2.0", "id": 1, "method": "tasks/get",
            "params": { "taskId": "a__b" } });
        assert!(rename_request(&mut get));
        assert_eq!(get["method"], "io.pluggedin/core-tasks/tasks/get");
        let mut modern = json!({ "jsonrpc": "2.0", "id": 1, "method": "tasks/get",
            "params": { "taskId": "a__b", "_meta": { MODERN_VERSION: "2026-07-28" } } });
        assert!(!rename_request(&mut modern));
        let mut plain = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": { "name": "x" } });
        assert!(!rename_request(&mut plain));
        let mut task = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": { "name": "x", "task": { "ttl": 1000 } } });
        assert!(rename_request(&mut task));
        let mut modern_task = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": { "name": "x", "task": { "ttl": 1000 },
                "_meta": { MODERN_VERSION: "2026-07-28" } } });
        assert!(!rename_request(&mut modern_task));
    }
}
