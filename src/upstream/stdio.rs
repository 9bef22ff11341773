//! The stdio transport towards the client: newline-delimited JSON-RPC on stdin and stdout. We
//! frame it ourselves (`wire::framing`) instead of using rmcp's `stdio()` because rmcp silently
//! drops a line it cannot parse, and a client deserves an answer: malformed JSON gets `-32700`, a
//! batch, a message that is not JSON-RPC or one over `MAX_MESSAGE_BYTES` gets `-32600`, a known
//! method with unusable params gets `-32602` — each with the request's id where it has one. This
//! is the only module that writes stdout.

use std::sync::{Arc, OnceLock};

use rmcp::RoleServer;
use rmcp::model::{ClientNotification, ClientRequest, JsonRpcMessage, RequestId};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Mutex, mpsc};

use super::fast_calls::{Answer, FastCalls};
use super::tool_pages::{Shortcut, ToolPages};
use crate::wire::framing::{Frame, LineReader};

/// The longest message we accept on stdin. The original refuses tool calls over 50 MiB.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Messages read ahead of the service loop; bounded so a flood cannot grow memory.
const READ_AHEAD: usize = 64;

type Writer = Arc<Mutex<Output>>;

/// A buffer kept between messages up to this capacity, so a large answer (a page of 1,000 tools
/// is about 350 KB) is not encoded into a buffer grown from nothing, copy after copy, every time.
const KEPT_BUFFER: usize = 1024 * 1024;

/// stdout, and the buffer messages are encoded into; one message at a time.
struct Output {
    stream: Box<dyn AsyncWrite + Send + Unpin>,
    buffer: Vec<u8>,
}

impl Output {
    /// Encodes one message as a line and writes it.
    async fn write(&mut self, message: &impl serde::Serialize) -> std::io::Result<()> {
        self.buffer.clear();
        let encoded =
            serde_json::to_writer(&mut self.buffer, message).map_err(std::io::Error::other);
        self.write_buffer(encoded).await
    }

    /// Writes the answer to request `id` whose `result` is already encoded (`tool_pages`): the
    /// same line rmcp's `JsonRpcResponse` encodes to.
    async fn write_result(&mut self, id: &RequestId, result: &[u8]) -> std::io::Result<()> {
        self.buffer.clear();
        self.buffer.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
        let encoded = serde_json::to_writer(&mut self.buffer, id).map_err(std::io::Error::other);
        self.buffer.extend_from_slice(br#","result":"#);
        self.buffer.extend_from_slice(result);
        self.buffer.push(b'}');
        self.write_buffer(encoded).await
    }

    /// Ends the encoded message in the buffer with a newline and writes it.
    async fn write_buffer(&mut self, encoded: std::io::Result<()>) -> std::io::Result<()> {
        let written = match encoded {
            Ok(()) => {
                self.buffer.push(b'\n');
                let written = self.stream.write_all(&self.buffer).await;
                match written {
                    Ok(()) => self.stream.flush().await,
                    Err(error) => Err(error),
                }
            }
            Err(error) => Err(error),
        };
        if self.buffer.capacity() > KEPT_BUFFER {
            self.buffer = Vec::new();
        }
        written
    }
}

/// The stdio server transport.
pub struct StdioTransport {
    incoming: mpsc::Receiver<RxJsonRpcMessage<RoleServer>>,
    writer: Writer,
    shortcut: Arc<Shortcut>,
    fast: Arc<OnceLock<Arc<FastCalls>>>,
}

impl StdioTransport {
    /// Serves on the process's stdin and stdout. Must be called within a tokio runtime.
    pub fn new() -> StdioTransport {
        StdioTransport::with_io(
            crate::wire::process_io::stdin(),
            crate::wire::process_io::stdout(),
        )
    }

    /// Serves on any pair of streams (tests use in-memory pipes).
    pub fn with_io(
        input: impl AsyncRead + Send + Unpin + 'static,
        output: impl AsyncWrite + Send + Unpin + 'static,
    ) -> StdioTransport {
        let writer: Writer = Arc::new(Mutex::new(Output {
            stream: Box::new(output),
            buffer: Vec::new(),
        }));
        let (sender, incoming) = mpsc::channel(READ_AHEAD);
        let shortcut = Arc::new(Shortcut::default());
        let fast = Arc::new(OnceLock::new());
        let entries = Entries {
            shortcut: shortcut.clone(),
            fast: fast.clone(),
        };
        tokio::spawn(read_loop(input, sender, writer.clone(), entries));
        StdioTransport {
            incoming,
            writer,
            shortcut,
            fast,
        }
    }

    /// Takes a legacy session's `tools/call` past the service (see `upstream::fast_calls`).
    pub fn with_fast_calls(self, calls: Arc<FastCalls>) -> StdioTransport {
        let _ = self.fast.set(calls);
        self
    }

    /// Answers `tools/list` from `pages` once the session is initialized on a protocol before
    /// 2026-07-28, without the service (see `upstream::tool_pages`): the same bytes, encoded
    /// once per catalog instead of once per request.
    pub fn with_tool_pages(self, pages: Arc<ToolPages>) -> StdioTransport {
        self.shortcut.enable(pages);
        self
    }
}

impl Default for StdioTransport {
    fn default() -> Self {
        StdioTransport::new()
    }
}

/// The ways past the service a line may take: `tools/list` from encoded pages, `tools/call`
/// straight to the router.
struct Entries {
    shortcut: Arc<Shortcut>,
    fast: Arc<OnceLock<Arc<FastCalls>>>,
}

async fn read_loop(
    input: impl AsyncRead + Send + Unpin,
    sender: mpsc::Sender<RxJsonRpcMessage<RoleServer>>,
    writer: Writer,
    entries: Entries,
) {
    let Entries { shortcut, fast } = entries;
    // Lines as bytes: whatever a client writes, a line that is not UTF-8 is that line's parse
    // error, never the end of the session.
    let mut lines = LineReader::new(input, MAX_MESSAGE_BYTES);
    loop {
        let bytes = match lines.next().await {
            Ok(Some(Frame::Line(bytes))) => bytes,
            Ok(Some(Frame::Oversized { id })) => {
                tracing::warn!("a message over {MAX_MESSAGE_BYTES} bytes was refused");
                let reply = error_reply(
                    serde_json::to_value(id).unwrap_or(Value::Null),
                    -32600,
                    format!("message too large: the limit is {MAX_MESSAGE_BYTES} bytes"),
                );
                write_line(&writer, &reply).await;
                continue;
            }
            Ok(None) => break,
            Err(error) => {
                tracing::info!("stdin closed: {error}");
                break;
            }
        };
        let line = match std::str::from_utf8(bytes) {
            Ok(line) => line,
            Err(error) => {
                let reply = error_reply(
                    Value::Null,
                    -32700,
                    format!(
                        "parse error: the message is not valid UTF-8 (byte {})",
                        error.valid_up_to()
                    ),
                );
                write_line(&writer, &reply).await;
                continue;
            }
        };
        if shortcut.is_ready()
            && let Some(fast) = fast.get()
            && let Some(taken) = fast.take(bytes)
        {
            let (fast, writer) = (fast.clone(), writer.clone());
            tokio::spawn(async move {
                if let Some(answer) = fast.run(taken).await {
                    write_answer(&writer, answer).await;
                }
            });
            continue;
        }
        // A legacy client's 2025-11-25 task request goes to the handler's raw path.
        let renamed = rename_core_task(line);
        match decode(renamed.as_deref().unwrap_or(line)) {
            Ok(Some(message)) => {
                if let Some(fast) = fast.get()
                    && let JsonRpcMessage::Notification(notification) = &message
                    && let ClientNotification::CancelledNotification(cancelled) =
                        &notification.notification
                    && let Some(id) = &cancelled.params.request_id
                {
                    fast.cancel(id);
                }
                if let Some((id, result)) = shortcut.answer(&message) {
                    write_result(&writer, &id, &result).await;
                    continue;
                }
                if sender.send(message).await.is_err() {
                    break;
                }
            }
            Ok(None) => {}
            Err(reply) => write_line(&writer, &reply).await,
        }
    }
    tracing::debug!("stdin ended");
}

/// The line of a legacy client's core-task request renamed for `router::core_tasks`, if it is one.
fn rename_core_task(line: &str) -> Option<String> {
    if !crate::wire::core_tasks::may_rename(line.as_bytes()) {
        return None;
    }
    let mut message: Value = serde_json::from_str(line).ok()?;
    crate::wire::core_tasks::rename_request(&mut message).then(|| message.to_string())
}

/// Decodes one line: a message, nothing (blank line, or a notification we cannot use), or the
/// error reply to send.
fn decode(line: &str) -> Result<Option<RxJsonRpcMessage<RoleServer>>, Value> {
    let line = line.trim_start_matches('\u{feff}').trim();
    if line.is_empty() {
        return Ok(None);
    }
    // The common case straight into rmcp's types: a well-formed request (rmcp checks "2.0" and
    // that the id is a string or an integer) or notification. Anything else — responses (a null
    // id is valid there for rmcp but not for us), errors to report, standard methods with bad
    // params — takes the checking path below.
    if let Ok(message) = serde_json::from_str::<RxJsonRpcMessage<RoleServer>>(line) {
        match &message {
            JsonRpcMessage::Request(request) if !matches!(&request.request, ClientRequest::CustomRequest(custom) if is_standard(&custom.method)) =>
            {
                return Ok(Some(message));
            }
            JsonRpcMessage::Notification(_) => return Ok(Some(message)),
            _ => {}
        }
    }
    let value: Value = serde_json::from_str(line)
        .map_err(|error| error_reply(Value::Null, -32700, format!("parse error: {error}")))?;
    let Value::Object(object) = &value else {
        let message = if value.is_array() {
            "batch requests are not supported"
        } else {
            "invalid request: a JSON-RPC message must be a JSON object"
        };
        return Err(error_reply(Value::Null, -32600, message.into()));
    };
    let id = object.get("id").cloned();
    let id_is_valid = id
        .as_ref()
        .is_none_or(|id| id.is_string() || id.is_i64() || id.is_u64());
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") || !id_is_valid {
        return Err(error_reply(
            if id_is_valid {
                id.unwrap_or(Value::Null)
            } else {
                Value::Null
            },
            -32600,
            "invalid request: \"jsonrpc\" must be \"2.0\" and \"id\" a string or an integer".into(),
        ));
    }
    let method = object
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let params = object.get("params").cloned();
    match serde_json::from_value::<RxJsonRpcMessage<RoleServer>>(value) {
        // rmcp takes a standard request whose params do not fit for a custom request; that is a
        // params error, not an unknown method.
        Ok(JsonRpcMessage::Request(request)) if matches!(&request.request, ClientRequest::CustomRequest(custom) if is_standard(&custom.method)) =>
        {
            let method = request.request.method().to_owned();
            let detail = params_error(&method, params.unwrap_or(Value::Null));
            Err(error_reply(
                serde_json::to_value(&request.id).unwrap_or(Value::Null),
                -32602,
                format!("invalid params for {method}: {detail}"),
            ))
        }
        Ok(message) => Ok(Some(message)),
        Err(error) => match (id, method) {
            (Some(id), Some(method)) => Err(error_reply(
                id,
                -32602,
                format!("invalid params for {method}: {error}"),
            )),
            (None, Some(method)) => {
                tracing::warn!(method, "unusable notification dropped: {error}");
                Ok(None)
            }
            (id, None) => {
                // A response to a request we sent that does not parse, or no method at all.
                if object_is_response(line) {
                    tracing::warn!("unusable response from the client dropped: {error}");
                    Ok(None)
                } else {
                    Err(error_reply(
                        id.unwrap_or(Value::Null),
                        -32600,
                        "invalid request: no \"method\"".into(),
                    ))
                }
            }
        },
    }
}

/// Methods a client may send whose params rmcp types.
fn is_standard(method: &str) -> bool {
    matches!(
        method,
        "initialize"
            | "ping"
            | "server/discover"
            | "tools/list"
            | "tools/call"
            | "prompts/list"
            | "prompts/get"
            | "resources/list"
            | "resources/templates/list"
            | "resources/read"
            | "resources/subscribe"
            | "resources/unsubscribe"
            | "subscriptions/listen"
            | "completion/complete"
            | "logging/setLevel"
    )
}

/// What is wrong with a standard method's params, in serde's words where we can get them.
fn params_error(method: &str, params: Value) -> String {
    use rmcp::model::{
        CallToolRequestParams, CompleteRequestParams, GetPromptRequestParams,
        InitializeRequestParams, ReadResourceRequestParams, SubscribeRequestParams,
    };
    fn check<T: serde::de::DeserializeOwned>(params: Value) -> Option<String> {
        serde_json::from_value::<T>(params)
            .err()
            .map(|error| error.to_string())
    }
    let detail = match method {
        "tools/call" => check::<CallToolRequestParams>(params),
        "prompts/get" => check::<GetPromptRequestParams>(params),
        "resources/read" => check::<ReadResourceRequestParams>(params),
        "resources/subscribe" | "resources/unsubscribe" => check::<SubscribeRequestParams>(params),
        "completion/complete" => check::<CompleteRequestParams>(params),
        "initialize" => check::<InitializeRequestParams>(params),
        // Logging is deprecated by SEP-2577; legacy clients use it.
        #[allow(deprecated)]
        "logging/setLevel" => check::<rmcp::model::SetLevelRequestParams>(params),
        _ => None,
    };
    detail.unwrap_or_else(|| "they do not match the method's schema".to_owned())
}

fn object_is_response(line: &str) -> bool {
    serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|value| {
            value
                .as_object()
                .map(|o| o.contains_key("result") || o.contains_key("error"))
        })
        .unwrap_or(false)
}

fn error_reply(id: Value, code: i64, message: String) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

async fn write_line(writer: &Writer, value: &impl serde::Serialize) {
    if let Err(error) = writer.lock().await.write(value).await {
        tracing::debug!("cannot write to stdout: {error}");
    }
}

async fn write_answer(writer: &Writer, answer: Answer) {
    match answer {
        Answer::Raw(id, result) => write_result(writer, &id, result.get().as_bytes()).await,
        Answer::Message(message) => write_line(writer, &*message).await,
    }
}

async fn write_result(writer: &Writer, id: &RequestId, result: &[u8]) {
    if let Err(error) = writer.lock().await.write_result(id, result).await {
        tracing::debug!("cannot write to stdout: {error}");
    }
}

impl Transport<RoleServer> for StdioTransport {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let writer = self.writer.clone();
        self.shortcut.sent(&item);
        // Stashed 2025-11-25 task data goes back in place (`router::core_tasks`).
        let unstash = matches!(&item, JsonRpcMessage::Response(response)
            if crate::wire::core_tasks::needs_unstash(&response.result));
        async move {
            if unstash {
                let mut message = serde_json::to_value(&item).map_err(std::io::Error::other)?;
                if let Some(result) = message.get_mut("result") {
                    crate::wire::core_tasks::unstash_result(result);
                }
                return writer.lock().await.write(&message).await;
            }
            writer.lock().await.write(&item).await
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<RoleServer>>> + Send {
        self.incoming.recv()
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.incoming.close();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(reply: &Value) -> i64 {
        reply["error"]["code"].as_i64().unwrap()
    }

    #[test]
    fn malformed_json_is_a_parse_error() {
        let reply = decode("{not json").unwrap_err();
        assert_eq!(code(&reply), -32700);
        assert_eq!(reply["id"], Value::Null);
    }

    #[test]
    fn batches_and_non_objects_are_invalid_requests() {
        assert_eq!(code(&decode("[1, 2]").unwrap_err()), -32600);
        assert_eq!(code(&decode("42").unwrap_err()), -32600);
        let reply = decode(r#"{"jsonrpc":"1.0","id":7,"method":"ping"}"#).unwrap_err();
        assert_eq!((code(&reply), reply["id"].clone()), (-32600, json!(7)));
    }

    #[test]
    fn bad_params_keep_the_id() {
        let reply =
            decode(r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":5}}"#)
                .unwrap_err();
        assert_eq!(code(&reply), -32602);
        assert_eq!(reply["id"], json!("a"));
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap()
                .contains("tools/call")
        );
    }

    #[test]
    fn good_messages_and_blank_lines_pass() {
        assert!(decode("").unwrap().is_none());
        assert!(
            decode(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
                .unwrap()
                .is_some()
        );
        // An unknown method is a request rmcp answers with -32601.
        assert!(
            decode(r#"{"jsonrpc":"2.0","id":1,"method":"no/such"}"#)
                .unwrap()
                .is_some()
        );
    }
}
