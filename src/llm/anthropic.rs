//! Anthropic's Messages API: `POST {base}/v1/messages` with `stream: true`, its events read into
//! [`Delta`]s (`message_start`, `content_block_start/delta/stop`, `message_delta`,
//! `message_stop`, `ping`, `error`), and `GET {base}/v1/models` for the models.
//!
//! The neutral conversation is already Anthropic's shape: tool results travel in user messages.
//! What this adds is what the API insists on: consecutive messages of one role are one message,
//! tool results come first in theirs, and no text block is empty.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::sse::{self, Decode, Event};
use super::{
    Delta, Deltas, Endpoint, ErrorKind, LlmError, Message, Part, Request, Role, Stop, Usage,
};

const VERSION: &str = "2023-06-01";

/// The most pages of models read.
const MAX_PAGES: usize = 10;

pub(super) async fn stream(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    request: &Request,
) -> Result<Deltas, LlmError> {
    let url = format!("{}/v1/messages", endpoint.base_url);
    let builder = headers(http.post(&url), endpoint)?
        .header("accept", "text/event-stream")
        .json(&body(request));
    let response = sse::send(builder, &url, refusal).await?;
    Ok(sse::deltas(response.bytes_stream(), Decoder::default()))
}

pub(super) async fn models(
    http: &reqwest::Client,
    endpoint: &Endpoint,
) -> Result<Vec<String>, LlmError> {
    let mut models = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut url = format!("{}/v1/models?limit=1000", endpoint.base_url);
        if let Some(after) = &after {
            url.push_str("&after_id=");
            url.push_str(&sse::encoded(after));
        }
        let page = sse::get_json(headers(http.get(&url), endpoint)?, &url, refusal).await?;
        models.extend(
            page["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|model| model["id"].as_str())
                .map(str::to_owned),
        );
        after = page["last_id"].as_str().map(str::to_owned);
        if page["has_more"] != json!(true) || after.is_none() {
            break;
        }
    }
    Ok(models)
}

fn headers(
    builder: reqwest::RequestBuilder,
    endpoint: &Endpoint,
) -> Result<reqwest::RequestBuilder, LlmError> {
    let builder = builder.header("anthropic-version", VERSION);
    Ok(match &endpoint.key {
        Some(key) => builder.header("x-api-key", sse::secret_header(key.expose())?),
        None => builder,
    })
}

/// The request body.
fn body(request: &Request) -> Value {
    let mut body = json!({
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": messages(&request.messages),
        "stream": true,
    });
    if let Some(system) = request.system.as_deref().filter(|s| !s.trim().is_empty()) {
        body["system"] = json!(system);
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                let mut spec = json!({"name": tool.name, "input_schema": tool.input_schema});
                if tool.input_schema.is_null() {
                    spec["input_schema"] = json!({"type": "object", "properties": {}});
                }
                if !tool.description.is_empty() {
                    spec["description"] = json!(tool.description);
                }
                spec
            })
            .collect();
        body["tools"] = Value::Array(tools);
    }
    body
}

/// A tool's arguments as Anthropic takes them: an object.
fn input(arguments: &Value) -> Value {
    match arguments {
        Value::Object(_) => arguments.clone(),
        _ => Value::Object(Map::new()),
    }
}

/// The neutral conversation in Anthropic's terms.
fn messages(messages: &[Message]) -> Vec<Value> {
    // Per message: its role, its tool results, its other blocks.
    let mut merged: Vec<(Role, Vec<Value>, Vec<Value>)> = Vec::new();
    for message in messages {
        let mut results = Vec::new();
        let mut others = Vec::new();
        for part in &message.content {
            match part {
                Part::Text { text } if text.trim().is_empty() => {}
                Part::Text { text } => others.push(json!({"type": "text", "text": text})),
                Part::ToolCall {
                    id,
                    name,
                    arguments,
                } => others.push(json!({
                    "type": "tool_use",
                    "id": id,
                    "name": name,
                    "input": input(arguments),
                })),
                Part::ToolResult {
                    id,
                    content,
                    is_error,
                    ..
                } => {
                    let mut block = json!({
                        "type": "tool_result",
                        "tool_use_id": id,
                        "content": content,
                    });
                    if *is_error {
                        block["is_error"] = json!(true);
                    }
                    results.push(block);
                }
            }
        }
        if results.is_empty() && others.is_empty() {
            continue;
        }
        match merged.last_mut() {
            Some((role, earlier_results, earlier_others)) if *role == message.role => {
                earlier_results.extend(results);
                earlier_others.extend(others);
            }
            _ => merged.push((message.role, results, others)),
        }
    }
    merged
        .into_iter()
        .map(|(role, mut results, others)| {
            results.extend(others);
            let role = match role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            json!({"role": role, "content": results})
        })
        .collect()
}

/// A refusal: `{"type":"error","error":{"type","message"}}`.
fn refusal(status: u16, body: &str) -> LlmError {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let error = parsed.as_ref().map(|body| &body["error"]);
    let message = error
        .and_then(|error| error["message"].as_str())
        .map(sse::trimmed)
        .filter(|message| !message.is_empty())
        .unwrap_or_else(|| match sse::trimmed(body) {
            text if text.is_empty() => sse::no_message(status),
            text => text,
        });
    LlmError {
        kind: sse::kind_for_status(status, &message),
        status: Some(status),
        message,
    }
}

/// The kind of an `error` event, from its `error.type`.
fn kind_for_type(kind: &str, message: &str) -> ErrorKind {
    match kind {
        "authentication_error" | "permission_error" => ErrorKind::Auth,
        "rate_limit_error" => ErrorKind::RateLimit,
        "invalid_request_error" | "not_found_error" | "request_too_large" => {
            if sse::too_long(message) {
                ErrorKind::ContextLength
            } else {
                ErrorKind::InvalidRequest
            }
        }
        _ => ErrorKind::Unavailable,
    }
}

/// A tool call being streamed: its arguments come in pieces.
struct ToolBlock {
    id: String,
    name: String,
    json: String,
}

#[derive(Default)]
struct Decoder {
    tools: HashMap<u64, ToolBlock>,
    usage: Option<Usage>,
    stop: Option<Stop>,
    done: bool,
}

fn stop_reason(reason: &str) -> Stop {
    match reason {
        "end_turn" | "stop_sequence" => Stop::EndTurn,
        "tool_use" => Stop::ToolUse,
        "max_tokens" | "model_context_window_exceeded" => Stop::MaxTokens,
        "refusal" => Stop::Refused,
        _ => Stop::Other,
    }
}

/// Tokens counted as input: the uncached ones and those read from or written to a cache.
fn input_tokens(usage: &Value) -> Option<u64> {
    let fresh = usage["input_tokens"].as_u64()?;
    let cached = ["cache_creation_input_tokens", "cache_read_input_tokens"]
        .iter()
        .filter_map(|field| usage[*field].as_u64())
        .sum::<u64>();
    Some(fresh + cached)
}

impl Decode for Decoder {
    fn event(&mut self, event: Event, out: &mut Vec<Delta>) -> Result<(), LlmError> {
        if self.done {
            return Ok(());
        }
        let data: Value =
            serde_json::from_str(&event.data).map_err(|e| sse::unreadable("Anthropic", &e))?;
        let kind = data["type"].as_str().unwrap_or(event.name.as_str());
        let index = data["index"].as_u64().unwrap_or(0);
        match kind {
            "message_start" => {
                let usage = &data["message"]["usage"];
                if let Some(input) = input_tokens(usage) {
                    self.usage = Some(Usage {
                        input_tokens: input,
                        output_tokens: usage["output_tokens"].as_u64().unwrap_or(0),
                    });
                }
            }
            "content_block_start" => {
                let block = &data["content_block"];
                match block["type"].as_str() {
                    Some("tool_use") => {
                        let name = block["name"].as_str().unwrap_or_default().to_owned();
                        let id = block["id"]
                            .as_str()
                            .map_or_else(sse::new_call_id, str::to_owned);
                        self.tools.insert(
                            index,
                            ToolBlock {
                                id,
                                name,
                                json: String::new(),
                            },
                        );
                    }
                    Some("text") => {
                        if let Some(text) = block["text"].as_str().filter(|t| !t.is_empty()) {
                            out.push(Delta::Text(text.to_owned()));
                        }
                    }
                    // Thinking and server tools' blocks are not part of the answer.
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta = &data["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => {
                        if let Some(text) = delta["text"].as_str().filter(|t| !t.is_empty()) {
                            out.push(Delta::Text(text.to_owned()));
                        }
                    }
                    Some("input_json_delta") => {
                        if let Some(tool) = self.tools.get_mut(&index) {
                            let piece = delta["partial_json"].as_str().unwrap_or_default();
                            if tool.json.len() + piece.len() > sse::MAX_ARGUMENTS {
                                return Err(sse::arguments_too_long(&tool.name));
                            }
                            tool.json.push_str(piece);
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(tool) = self.tools.remove(&index) {
                    let arguments = sse::parse_arguments(&tool.name, &tool.json)?;
                    out.push(Delta::ToolCall {
                        id: tool.id,
                        name: tool.name,
                        arguments,
                    });
                }
            }
            "message_delta" => {
                if let Some(reason) = data["delta"]["stop_reason"].as_str() {
                    self.stop = Some(stop_reason(reason));
                }
                let usage = &data["usage"];
                if let Some(output) = usage["output_tokens"].as_u64() {
                    let counted = self.usage.get_or_insert_with(Usage::default);
                    counted.output_tokens = output;
                    if let Some(input) = input_tokens(usage) {
                        counted.input_tokens = input;
                    }
                }
            }
            "message_stop" => {
                self.done = true;
                out.push(Delta::Done {
                    stop: self.stop.unwrap_or(Stop::Other),
                    usage: self.usage,
                });
            }
            "error" => {
                let error = &data["error"];
                let message = error["message"]
                    .as_str()
                    .map(sse::trimmed)
                    .unwrap_or_else(|| "the stream reported an error".to_owned());
                return Err(LlmError {
                    kind: kind_for_type(error["type"].as_str().unwrap_or_default(), &message),
                    status: None,
                    message,
                });
            }
            // `ping` and events added later.
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, _out: &mut Vec<Delta>) -> Result<(), LlmError> {
        if self.done {
            Ok(())
        } else {
            Err(sse::ended_early())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ToolSpec;
    use futures::StreamExt;

    fn text(text: &str) -> Part {
        Part::Text {
            text: text.to_owned(),
        }
    }

    fn result(id: &str, content: &str, is_error: bool) -> Part {
        Part::ToolResult {
            id: id.to_owned(),
            name: "search".to_owned(),
            content: content.to_owned(),
            is_error,
        }
    }

    fn request(messages: Vec<Message>) -> Request {
        Request {
            model: "claude-sonnet-4-5".to_owned(),
            system: Some("Be brief.".to_owned()),
            messages,
            tools: vec![ToolSpec {
                name: "search".to_owned(),
                description: "Search the docs".to_owned(),
                input_schema: json!({"type": "object", "properties": {"q": {"type": "string"}}}),
            }],
            max_tokens: 1024,
        }
    }

    async fn decode(chunks: &[&str]) -> Vec<Result<Delta, LlmError>> {
        sse::decode_chunks(chunks, Decoder::default()).await
    }

    #[test]
    fn the_body_carries_model_system_tools_and_stream() {
        let body = body(&request(vec![Message {
            role: Role::User,
            content: vec![text("hi")],
        }]));
        assert_eq!(
            body,
            json!({
                "model": "claude-sonnet-4-5",
                "max_tokens": 1024,
                "system": "Be brief.",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                "tools": [{
                    "name": "search",
                    "description": "Search the docs",
                    "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}
                }],
                "stream": true
            })
        );
    }

    #[test]
    fn a_tool_result_goes_first_in_its_user_message() {
        let messages = messages(&[
            Message {
                role: Role::User,
                content: vec![text("find rust")],
            },
            Message {
                role: Role::Assistant,
                content: vec![
                    text("Looking."),
                    Part::ToolCall {
                        id: "toolu_1".to_owned(),
                        name: "search".to_owned(),
                        arguments: json!({"q": "rust"}),
                    },
                ],
            },
            Message {
                role: Role::User,
                content: vec![
                    text("and be quick"),
                    result("toolu_1", "3 hits", false),
                    result("toolu_2", "boom", true),
                ],
            },
        ]);
        assert_eq!(
            messages,
            vec![
                json!({"role": "user", "content": [{"type": "text", "text": "find rust"}]}),
                json!({"role": "assistant", "content": [
                    {"type": "text", "text": "Looking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "search",
                     "input": {"q": "rust"}}
                ]}),
                json!({"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "3 hits"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "boom",
                     "is_error": true},
                    {"type": "text", "text": "and be quick"}
                ]}),
            ]
        );
    }

    #[test]
    fn consecutive_messages_of_one_role_merge_and_empty_text_is_dropped() {
        let messages = messages(&[
            Message {
                role: Role::User,
                content: vec![text("first"), text("")],
            },
            Message {
                role: Role::User,
                content: vec![result("toolu_1", "ok", false)],
            },
            Message {
                role: Role::Assistant,
                content: vec![text("  ")],
            },
            Message {
                role: Role::User,
                content: vec![text("second")],
            },
        ]);
        assert_eq!(
            messages,
            vec![json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"},
                {"type": "text", "text": "first"},
                {"type": "text", "text": "second"}
            ]})]
        );
    }

    const TOOL_STREAM: &str = "event: message_start\n\
data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\
\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\
\"usage\":{\"input_tokens\":472,\"output_tokens\":2}}}\n\n\
event: content_block_start\n\
data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\
\"text\":\"\"}}\n\n\
event: ping\ndata: {\"type\": \"ping\"}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\
\"text\":\"Let me look.\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: content_block_start\n\
data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\
\"id\":\"toolu_01T1x\",\"name\":\"search\",\"input\":{}}}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\
\"partial_json\":\"\"}}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\
\"partial_json\":\"{\\\"q\\\": \\\"ru\"}}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\
\"partial_json\":\"st\\\"}\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n\
event: message_delta\n\
data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\
\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    #[tokio::test]
    async fn a_streamed_tool_call_is_gathered_from_its_pieces() {
        let deltas = decode(&[TOOL_STREAM]).await;
        assert_eq!(
            deltas,
            vec![
                Ok(Delta::Text("Let me look.".to_owned())),
                Ok(Delta::ToolCall {
                    id: "toolu_01T1x".to_owned(),
                    name: "search".to_owned(),
                    arguments: json!({"q": "rust"}),
                }),
                Ok(Delta::Done {
                    stop: Stop::ToolUse,
                    usage: Some(Usage {
                        input_tokens: 472,
                        output_tokens: 89
                    }),
                }),
            ]
        );
    }

    #[tokio::test]
    async fn the_same_stream_in_small_crlf_chunks_decodes_the_same() {
        let crlf = TOOL_STREAM.replace('\n', "\r\n");
        let chunks: Vec<&str> = crlf
            .as_bytes()
            .chunks(7)
            .map(|chunk| std::str::from_utf8(chunk).unwrap())
            .collect();
        let whole = decode(&[TOOL_STREAM]).await;
        assert_eq!(decode(&chunks).await, whole);
    }

    #[tokio::test]
    async fn a_tool_call_without_arguments_gets_an_empty_object() {
        let deltas = decode(&["event: content_block_start\n\
             data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":\
             {\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"list\",\"input\":{}}}\n\n\
             event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
             event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":\
             {\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":3}}\n\n\
             event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"])
        .await;
        assert_eq!(
            deltas,
            vec![
                Ok(Delta::ToolCall {
                    id: "toolu_2".to_owned(),
                    name: "list".to_owned(),
                    arguments: json!({}),
                }),
                Ok(Delta::Done {
                    stop: Stop::MaxTokens,
                    usage: Some(Usage {
                        input_tokens: 0,
                        output_tokens: 3
                    }),
                }),
            ]
        );
    }

    #[tokio::test]
    async fn an_error_event_mid_stream_ends_it_with_the_providers_message() {
        let deltas = decode(&[
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\
             \"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\
             \"message\":\"Overloaded\"}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        ])
        .await;
        assert_eq!(
            deltas,
            vec![
                Ok(Delta::Text("Hel".to_owned())),
                Err(LlmError {
                    kind: ErrorKind::Unavailable,
                    status: None,
                    message: "Overloaded".to_owned(),
                }),
            ]
        );
    }

    #[tokio::test]
    async fn a_stream_that_ends_before_message_stop_is_an_error() {
        let deltas = decode(&[
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\
             \"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
        ])
        .await;
        assert_eq!(deltas.len(), 2);
        let error = deltas[1].clone().unwrap_err();
        assert_eq!(error.kind, ErrorKind::Unavailable);
        assert!(error.message.contains("ended before"), "{error}");
    }

    #[test]
    fn refusals_carry_the_providers_message_and_kind() {
        let body = r#"{"type":"error","error":{"type":"invalid_request_error",
            "message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#;
        let error = refusal(400, body);
        assert_eq!(error.kind, ErrorKind::ContextLength);
        assert_eq!(error.status, Some(400));
        assert_eq!(
            error.message,
            "prompt is too long: 210000 tokens > 200000 maximum"
        );
        let error = refusal(
            401,
            r#"{"type":"error",
                "error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        );
        assert_eq!(error.kind, ErrorKind::Auth);
        assert_eq!(error.message, "invalid x-api-key");
        let error = refusal(529, "");
        assert_eq!(error.kind, ErrorKind::Unavailable);
        assert!(error.message.contains("529"), "{error}");
        let error = refusal(502, "<html>Bad gateway</html>");
        assert_eq!(error.message, "<html>Bad gateway</html>");
    }

    /// A stand-in for the API that records what it was sent.
    mod wire {
        use std::sync::{Arc, Mutex};

        use axum::http::{HeaderMap, StatusCode};
        use axum::routing::{get, post};

        use super::*;
        use crate::secret::Secret;

        type Seen = Arc<Mutex<Vec<(HeaderMap, String)>>>;

        async fn serve(status: StatusCode, answer: &'static str) -> (String, Seen) {
            let seen: Seen = Arc::default();
            let record = seen.clone();
            let app = axum::Router::new()
                .route(
                    "/v1/messages",
                    post(move |headers: HeaderMap, body: String| {
                        record.lock().unwrap().push((headers, body));
                        async move { (status, answer) }
                    }),
                )
                .route(
                    "/v1/models",
                    get(|| async {
                        r#"{"data":[{"type":"model","id":"claude-sonnet-4-5"},
                            {"type":"model","id":"claude-haiku-4-5"}],"has_more":false,
                            "first_id":"claude-sonnet-4-5","last_id":"claude-haiku-4-5"}"#
                    }),
                );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await });
            (base, seen)
        }

        fn endpoint(base: String) -> Endpoint {
            Endpoint {
                kind: crate::llm::ProviderKind::Anthropic,
                base_url: base,
                key: Some(Secret::new("sk-ant-test")),
            }
        }

        fn http() -> reqwest::Client {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::new()
        }

        #[tokio::test]
        async fn the_request_carries_the_key_version_and_body() {
            let (base, seen) = serve(StatusCode::OK, TOOL_STREAM).await;
            let request = request(vec![Message {
                role: Role::User,
                content: vec![text("hi")],
            }]);
            let deltas: Vec<_> = stream(&http(), &endpoint(base.clone()), &request)
                .await
                .unwrap()
                .collect()
                .await;
            assert_eq!(deltas.len(), 3, "{deltas:?}");
            let (headers, sent) = seen.lock().unwrap()[0].clone();
            assert_eq!(headers["x-api-key"], "sk-ant-test");
            assert_eq!(headers["anthropic-version"], "2023-06-01");
            assert_eq!(headers["content-type"], "application/json");
            let sent: Value = serde_json::from_str(&sent).unwrap();
            assert_eq!(sent, body(&request));
            let models = models(&http(), &endpoint(base)).await.unwrap();
            assert_eq!(models, vec!["claude-sonnet-4-5", "claude-haiku-4-5"]);
        }

        #[tokio::test]
        async fn a_refusal_and_an_unreachable_server_say_what_happened() {
            let (base, _) = serve(
                StatusCode::TOO_MANY_REQUESTS,
                r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
            )
            .await;
            let request = request(Vec::new());
            let Err(error) = stream(&http(), &endpoint(base), &request).await else {
                panic!("a 429 streams nothing");
            };
            assert_eq!(
                error,
                LlmError {
                    kind: ErrorKind::RateLimit,
                    status: Some(429),
                    message: "slow down".to_owned(),
                }
            );
            let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", closed.local_addr().unwrap());
            drop(closed);
            let Err(error) = stream(&http(), &endpoint(base.clone()), &request).await else {
                panic!("nothing listens there");
            };
            assert_eq!(error.kind, ErrorKind::Unavailable);
            assert_eq!(error.status, None);
            assert!(
                error
                    .message
                    .starts_with(&format!("could not reach {base}/v1/messages: ")),
                "{error}"
            );
            assert!(!error.message.contains("sk-ant-test"), "{error}");
        }
    }
}
