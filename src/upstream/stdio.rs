//! The stdio transport towards the client: newline-delimited JSON-RPC on stdin and stdout. We
//! frame it ourselves instead of using rmcp's `stdio()` because rmcp silently drops a line it
//! cannot parse, and a client deserves an answer: malformed JSON gets `-32700`, a batch or a
//! message that is not JSON-RPC gets `-32600`, a known method with unusable params gets `-32602`
//! — each with the request's id where it has one. This is the only module that writes stdout.

use std::sync::Arc;

use futures::StreamExt;
use rmcp::RoleServer;
use rmcp::model::{ClientRequest, JsonRpcMessage};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Mutex, mpsc};
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

/// The longest message we accept on stdin. The original refuses tool calls over 50 MiB.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Messages read ahead of the service loop; bounded so a flood cannot grow memory.
const READ_AHEAD: usize = 64;

type Writer = Arc<Mutex<Box<dyn AsyncWrite + Send + Unpin>>>;

/// The stdio server transport.
pub struct StdioTransport {
    incoming: mpsc::Receiver<RxJsonRpcMessage<RoleServer>>,
    writer: Writer,
}

impl StdioTransport {
    /// Serves on the process's stdin and stdout.
    pub fn new() -> StdioTransport {
        StdioTransport::with_io(tokio::io::stdin(), tokio::io::stdout())
    }

    /// Serves on any pair of streams (tests use in-memory pipes).
    pub fn with_io(
        input: impl AsyncRead + Send + Unpin + 'static,
        output: impl AsyncWrite + Send + Unpin + 'static,
    ) -> StdioTransport {
        let writer: Writer = Arc::new(Mutex::new(Box::new(output)));
        let (sender, incoming) = mpsc::channel(READ_AHEAD);
        tokio::spawn(read_loop(input, sender, writer.clone()));
        StdioTransport { incoming, writer }
    }
}

impl Default for StdioTransport {
    fn default() -> Self {
        StdioTransport::new()
    }
}

async fn read_loop(
    input: impl AsyncRead + Send + Unpin,
    sender: mpsc::Sender<RxJsonRpcMessage<RoleServer>>,
    writer: Writer,
) {
    let mut lines = FramedRead::new(input, LinesCodec::new_with_max_length(MAX_MESSAGE_BYTES));
    while let Some(line) = lines.next().await {
        let line = match line {
            Ok(line) => line,
            Err(LinesCodecError::MaxLineLengthExceeded) => {
                tracing::warn!("a message over {MAX_MESSAGE_BYTES} bytes was refused");
                let reply = error_reply(
                    Value::Null,
                    -32600,
                    format!("message too large: the limit is {MAX_MESSAGE_BYTES} bytes"),
                );
                write_line(&writer, &reply).await;
                continue;
            }
            Err(LinesCodecError::Io(error)) => {
                tracing::info!("stdin closed: {error}");
                break;
            }
        };
        match decode(&line) {
            Ok(Some(message)) => {
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

/// Decodes one line: a message, nothing (blank line, or a notification we cannot use), or the
/// error reply to send.
fn decode(line: &str) -> Result<Option<RxJsonRpcMessage<RoleServer>>, Value> {
    let line = line.trim_start_matches('\u{feff}').trim();
    if line.is_empty() {
        return Ok(None);
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
        InitializeRequestParams, ReadResourceRequestParams, SetLevelRequestParams,
        SubscribeRequestParams,
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
        "logging/setLevel" => check::<SetLevelRequestParams>(params),
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
    let mut bytes = match serde_json::to_vec(value) {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::error!("cannot serialize an outgoing message: {error}");
            return;
        }
    };
    bytes.push(b'\n');
    let mut writer = writer.lock().await;
    if let Err(error) = async {
        writer.write_all(&bytes).await?;
        writer.flush().await
    }
    .await
    {
        tracing::debug!("stdout closed: {error}");
    }
}

impl Transport<RoleServer> for StdioTransport {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let writer = self.writer.clone();
        async move {
            let mut bytes = serde_json::to_vec(&item).map_err(std::io::Error::other)?;
            bytes.push(b'\n');
            let mut writer = writer.lock().await;
            writer.write_all(&bytes).await?;
            writer.flush().await
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
