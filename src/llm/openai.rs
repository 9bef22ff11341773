//! OpenAI's Chat Completions, also spoken by xAI and by OpenAI-compatible servers (Ollama,
//! LM Studio, llama.cpp, vLLM, OpenRouter): `POST {base}/chat/completions` with `stream: true`,
//! its chunks read into [`Delta`]s, and `GET {base}/models` for the models.
//!
//! Tool calls stream as pieces keyed by `index` (the id and name first, the arguments as
//! fragments of a JSON string) and are given whole when the choice finishes. Compatible servers
//! differ: some send a whole call in one chunk, some no id, some no `[DONE]`; all are taken.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::sse::{self, Decode, Event};
use super::{
    Delta, Deltas, Endpoint, ErrorKind, LlmError, Message, Part, ProviderKind, Request, Role, Stop,
    Usage,
};

pub(super) async fn stream(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    request: &Request,
) -> Result<Deltas, LlmError> {
    let url = format!("{}/chat/completions", endpoint.base_url);
    let builder = authorized(http.post(&url), endpoint)?
        .header("accept", "text/event-stream")
        .json(&body(endpoint.kind, request));
    let response = sse::send(builder, &url, refusal).await?;
    Ok(sse::deltas(response.bytes_stream(), Decoder::default()))
}

pub(super) async fn models(
    http: &reqwest::Client,
    endpoint: &Endpoint,
) -> Result<Vec<String>, LlmError> {
    let url = format!("{}/models", endpoint.base_url);
    let listing = sse::get_json(authorized(http.get(&url), endpoint)?, &url, refusal).await?;
    Ok(listing["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|model| model["id"].as_str())
        .map(str::to_owned)
        .collect())
}

fn authorized(
    builder: reqwest::RequestBuilder,
    endpoint: &Endpoint,
) -> Result<reqwest::RequestBuilder, LlmError> {
    Ok(match &endpoint.key {
        Some(key) => builder.header(
            "authorization",
            sse::secret_header(&format!("Bearer {}", key.expose()))?,
        ),
        None => builder,
    })
}

/// The request body.
fn body(kind: ProviderKind, request: &Request) -> Value {
    let mut body = json!({
        "model": request.model,
        "messages": messages(request.system.as_deref(), &request.messages),
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    // OpenAI's newer models refuse `max_tokens`; xAI and compatible servers know only it.
    let limit = match kind {
        ProviderKind::OpenAi => "max_completion_tokens",
        _ => "max_tokens",
    };
    body[limit] = json!(request.max_tokens);
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                let parameters = if tool.input_schema.is_null() {
                    json!({"type": "object", "properties": {}})
                } else {
                    tool.input_schema.clone()
                };
                json!({
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": parameters,
                    }
                })
            })
            .collect();
        body["tools"] = Value::Array(tools);
    }
    body
}

/// The text parts of a message, joined.
fn joined_text(parts: &[Part]) -> String {
    let texts: Vec<&str> = parts
        .iter()
        .filter_map(|part| match part {
            Part::Text { text } if !text.is_empty() => Some(text.as_str()),
            _ => None,
        })
        .collect();
    texts.join("\n")
}

/// The neutral conversation in Chat Completions' terms.
fn messages(system: Option<&str>, messages: &[Message]) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(system) = system.filter(|system| !system.trim().is_empty()) {
        out.push(json!({"role": "system", "content": system}));
    }
    for message in messages {
        let text = joined_text(&message.content);
        match message.role {
            Role::User => {
                for part in &message.content {
                    if let Part::ToolResult { id, content, .. } = part {
                        out.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
                    }
                }
                if !text.is_empty() {
                    out.push(json!({"role": "user", "content": text}));
                }
            }
            Role::Assistant => {
                let calls: Vec<Value> = message
                    .content
                    .iter()
                    .filter_map(|part| match part {
                        Part::ToolCall {
                            id,
                            name,
                            arguments,
                        } => {
                            let arguments = if arguments.is_null() {
                                "{}".to_owned()
                            } else {
                                arguments.to_string()
                            };
                            Some(json!({
                                "id": id,
                                "type": "function",
                                "function": {"name": name, "arguments": arguments},
                            }))
                        }
                        _ => None,
                    })
                    .collect();
                if text.is_empty() && calls.is_empty() {
                    continue;
                }
                let mut assistant = json!({
                    "role": "assistant",
                    "content": if text.is_empty() { Value::Null } else { json!(text) },
                });
                if !calls.is_empty() {
                    assistant["tool_calls"] = Value::Array(calls);
                }
                out.push(assistant);
            }
        }
    }
    out
}

/// What an error object (or a compatible server's string) says, and its code.
fn said(error: &Value) -> (Option<String>, String) {
    match error {
        Value::String(text) => (Some(text.clone()), String::new()),
        Value::Object(_) => {
            let code = match &error["code"] {
                Value::String(code) => code.clone(),
                Value::Number(code) => code.to_string(),
                _ => String::new(),
            };
            (error["message"].as_str().map(str::to_owned), code)
        }
        _ => (None, String::new()),
    }
}

/// A refusal: `{"error":{"message","type","code","param"}}`, or what a compatible server sent
/// instead (`{"error":"…"}`, `{"message":"…"}`, `{"detail":"…"}`, plain text).
fn refusal(status: u16, body: &str) -> LlmError {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let (message, code) = said(&parsed["error"]);
    let message = message
        .or_else(|| parsed["message"].as_str().map(str::to_owned))
        .or_else(|| parsed["detail"].as_str().map(str::to_owned))
        .map(|message| sse::trimmed(&message))
        .filter(|message| !message.is_empty())
        .unwrap_or_else(|| match sse::trimmed(body) {
            text if text.is_empty() => sse::no_message(status),
            text => text,
        });
    LlmError {
        kind: sse::kind_for_status(status, &format!("{code} {message}")),
        status: Some(status),
        message,
    }
}

/// A tool call being streamed.
#[derive(Default)]
struct Call {
    id: Option<String>,
    name: String,
    arguments: String,
}

#[derive(Default)]
struct Decoder {
    calls: BTreeMap<u64, Call>,
    stop: Option<Stop>,
    usage: Option<Usage>,
    /// A call was given: a finish saying `stop` still means the model wants a tool.
    called: bool,
    refused: bool,
    done: bool,
}

fn finish_reason(reason: &str) -> Stop {
    match reason {
        "stop" => Stop::EndTurn,
        "tool_calls" | "function_call" => Stop::ToolUse,
        "length" => Stop::MaxTokens,
        "content_filter" => Stop::Refused,
        _ => Stop::Other,
    }
}

impl Decoder {
    /// Gives every gathered call, in index order.
    fn flush(&mut self, out: &mut Vec<Delta>) -> Result<(), LlmError> {
        for (_, call) in std::mem::take(&mut self.calls) {
            let arguments = sse::parse_arguments(&call.name, &call.arguments)?;
            let id = call
                .id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(sse::new_call_id);
            out.push(Delta::ToolCall {
                id,
                name: call.name,
                arguments,
            });
            self.called = true;
        }
        Ok(())
    }

    fn done(&mut self, out: &mut Vec<Delta>) -> Result<(), LlmError> {
        self.flush(out)?;
        self.done = true;
        let stop = match self.stop {
            _ if self.refused => Stop::Refused,
            Some(Stop::EndTurn) | None if self.called => Stop::ToolUse,
            Some(stop) => stop,
            None => Stop::Other,
        };
        out.push(Delta::Done {
            stop,
            usage: self.usage,
        });
        Ok(())
    }

    fn tool_call_piece(&mut self, piece: &Value) -> Result<(), LlmError> {
        let function = &piece["function"];
        let id = piece["id"].as_str().filter(|id| !id.is_empty());
        let name = function["name"].as_str().filter(|name| !name.is_empty());
        let index = match piece["index"].as_u64() {
            Some(index) => index,
            // Without an index: a piece with an id or a name starts a call, others continue
            // the last one.
            None => {
                let last = self.calls.keys().next_back().copied();
                match last {
                    Some(last) if id.is_none() && name.is_none() => last,
                    Some(last) => last + 1,
                    None => 0,
                }
            }
        };
        let call = self.calls.entry(index).or_default();
        if call.id.is_none() {
            call.id = id.map(str::to_owned);
        }
        if call.name.is_empty()
            && let Some(name) = name
        {
            name.clone_into(&mut call.name);
        }
        let arguments = match &function["arguments"] {
            Value::String(text) => text.clone(),
            Value::Null => String::new(),
            // Some servers send the arguments as an object, not as a JSON string.
            other => other.to_string(),
        };
        if call.arguments.len() + arguments.len() > sse::MAX_ARGUMENTS {
            return Err(sse::arguments_too_long(&call.name));
        }
        call.arguments.push_str(&arguments);
        Ok(())
    }
}

impl Decode for Decoder {
    fn event(&mut self, event: Event, out: &mut Vec<Delta>) -> Result<(), LlmError> {
        if self.done {
            return Ok(());
        }
        let data = event.data.trim();
        if data == "[DONE]" {
            return self.done(out);
        }
        let chunk: Value =
            serde_json::from_str(data).map_err(|error| sse::unreadable("the provider", &error))?;
        if !chunk["error"].is_null() {
            let (message, code) = said(&chunk["error"]);
            let message = message
                .map(|message| sse::trimmed(&message))
                .unwrap_or_else(|| "the stream reported an error".to_owned());
            let kind = match code.parse::<u16>() {
                Ok(status) => sse::kind_for_status(status, &message),
                Err(_) if sse::too_long(&format!("{code} {message}")) => ErrorKind::ContextLength,
                Err(_) => ErrorKind::Unavailable,
            };
            return Err(LlmError {
                kind,
                status: None,
                message,
            });
        }
        if let Some(usage) = chunk["usage"].as_object() {
            self.usage = Some(Usage {
                input_tokens: usage
                    .get("prompt_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                output_tokens: usage
                    .get("completion_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            });
        }
        // `choices` may be missing, `null` or empty (the usage chunk); only the first is read.
        let Some(choice) = chunk["choices"].as_array().and_then(|choices| {
            choices
                .iter()
                .find(|choice| choice["index"].as_u64().unwrap_or(0) == 0)
        }) else {
            return Ok(());
        };
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str().filter(|text| !text.is_empty()) {
            out.push(Delta::Text(text.to_owned()));
        }
        if let Some(text) = delta["refusal"].as_str().filter(|text| !text.is_empty()) {
            self.refused = true;
            out.push(Delta::Text(text.to_owned()));
        }
        for piece in delta["tool_calls"].as_array().into_iter().flatten() {
            self.tool_call_piece(piece)?;
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.stop = Some(finish_reason(reason));
            self.flush(out)?;
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<Delta>) -> Result<(), LlmError> {
        if self.done {
            return Ok(());
        }
        // Some compatible servers end the body without `[DONE]`: a finished choice suffices.
        if self.stop.is_some() {
            return self.done(out);
        }
        Err(sse::ended_early())
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

    fn request() -> Request {
        Request {
            model: "gpt-4.1".to_owned(),
            system: Some("Be brief.".to_owned()),
            messages: vec![Message {
                role: Role::User,
                content: vec![text("hi")],
            }],
            tools: vec![ToolSpec {
                name: "search".to_owned(),
                description: "Search the docs".to_owned(),
                input_schema: json!({"type": "object", "properties": {"q": {"type": "string"}}}),
            }],
            max_tokens: 512,
        }
    }

    async fn decode(chunks: &[&str]) -> Vec<Result<Delta, LlmError>> {
        sse::decode_chunks(chunks, Decoder::default()).await
    }

    fn call(id: &str, name: &str, arguments: Value) -> Result<Delta, LlmError> {
        Ok(Delta::ToolCall {
            id: id.to_owned(),
            name: name.to_owned(),
            arguments,
        })
    }

    #[test]
    fn the_body_names_the_token_limit_each_provider_knows() {
        let request = request();
        let openai = body(ProviderKind::OpenAi, &request);
        assert_eq!(
            openai,
            json!({
                "model": "gpt-4.1",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "hi"}
                ],
                "stream": true,
                "stream_options": {"include_usage": true},
                "max_completion_tokens": 512,
                "tools": [{"type": "function", "function": {
                    "name": "search",
                    "description": "Search the docs",
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}
                }}]
            })
        );
        for kind in [ProviderKind::Xai, ProviderKind::Compatible] {
            let body = body(kind, &request);
            assert_eq!(body["max_tokens"], json!(512));
            assert!(body.get("max_completion_tokens").is_none());
        }
    }

    #[test]
    fn tool_results_become_tool_messages_in_order_before_the_users_text() {
        let messages = messages(
            None,
            &[
                Message {
                    role: Role::Assistant,
                    content: vec![
                        Part::ToolCall {
                            id: "call_a".to_owned(),
                            name: "search".to_owned(),
                            arguments: json!({"q": "rust"}),
                        },
                        Part::ToolCall {
                            id: "call_b".to_owned(),
                            name: "list".to_owned(),
                            arguments: Value::Null,
                        },
                    ],
                },
                Message {
                    role: Role::User,
                    content: vec![
                        text("thanks"),
                        Part::ToolResult {
                            id: "call_a".to_owned(),
                            name: "search".to_owned(),
                            content: "3 hits".to_owned(),
                            is_error: false,
                        },
                        Part::ToolResult {
                            id: "call_b".to_owned(),
                            name: "list".to_owned(),
                            content: "failed".to_owned(),
                            is_error: true,
                        },
                    ],
                },
                Message {
                    role: Role::Assistant,
                    content: vec![text("Done."), text("")],
                },
            ],
        );
        assert_eq!(
            messages,
            vec![
                json!({"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_a", "type": "function",
                     "function": {"name": "search", "arguments": "{\"q\":\"rust\"}"}},
                    {"id": "call_b", "type": "function",
                     "function": {"name": "list", "arguments": "{}"}}
                ]}),
                json!({"role": "tool", "tool_call_id": "call_a", "content": "3 hits"}),
                json!({"role": "tool", "tool_call_id": "call_b", "content": "failed"}),
                json!({"role": "user", "content": "thanks"}),
                json!({"role": "assistant", "content": "Done."}),
            ]
        );
    }

    const TOOL_STREAM: &str = "\
data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\
\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\
\"id\":\"call_abc\",\"type\":\"function\",\"function\":{\"name\":\"search\",\
\"arguments\":\"\"}}]},\"finish_reason\":null}],\"usage\":null}\n\n\
data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\
\"function\":{\"arguments\":\"{\\\"q\\\":\"}}]},\"finish_reason\":null}],\"usage\":null}\n\n\
data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\
\"id\":\"call_def\",\"type\":\"function\",\"function\":{\"name\":\"list\",\
\"arguments\":\"\"}}]},\"finish_reason\":null}],\"usage\":null}\n\n\
data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\
\"function\":{\"arguments\":\"\\\"rust\\\"}\"}}]},\"finish_reason\":null}],\"usage\":null}\n\n\
data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{},\
\"finish_reason\":\"tool_calls\"}],\"usage\":null}\n\n\
data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":82,\
\"completion_tokens\":17,\"total_tokens\":99}}\n\n\
data: [DONE]\n\n";

    #[tokio::test]
    async fn tool_calls_are_gathered_per_index_and_given_at_the_finish() {
        let deltas = decode(&[TOOL_STREAM]).await;
        assert_eq!(
            deltas,
            vec![
                call("call_abc", "search", json!({"q": "rust"})),
                call("call_def", "list", json!({})),
                Ok(Delta::Done {
                    stop: Stop::ToolUse,
                    usage: Some(Usage {
                        input_tokens: 82,
                        output_tokens: 17
                    }),
                }),
            ]
        );
        let crlf = TOOL_STREAM.replace('\n', "\r\n");
        let chunks: Vec<&str> = crlf
            .as_bytes()
            .chunks(5)
            .map(|chunk| std::str::from_utf8(chunk).unwrap())
            .collect();
        assert_eq!(decode(&chunks).await, deltas);
    }

    #[tokio::test]
    async fn text_streams_as_it_comes_and_keep_alives_bring_nothing() {
        let deltas = decode(&[
            ": OPENROUTER PROCESSING\n\ndata:\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\
             \"finish_reason\":null}]}\n\n\
             data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\
             \"finish_reason\":null}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\
             \"finish_reason\":null}]}\n\n\
             data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n\
             data: [DONE]\n\n",
        ])
        .await;
        assert_eq!(
            deltas,
            vec![
                Ok(Delta::Text("Hel".to_owned())),
                Ok(Delta::Text("lo".to_owned())),
                Ok(Delta::Done {
                    stop: Stop::MaxTokens,
                    usage: None
                }),
            ]
        );
    }

    #[tokio::test]
    async fn a_compatible_server_without_done_or_ids_is_taken() {
        // Ollama's shape: the whole call in one chunk, `stop` as the reason, then the body ends.
        let deltas = decode(&[
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\
             \"tool_calls\":[{\"function\":{\"name\":\"search\",\
             \"arguments\":\"{\\\"q\\\":\\\"rust\\\"}\"}}]},\"finish_reason\":null}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\
             \"finish_reason\":\"stop\"}]}\n\n",
        ])
        .await;
        assert_eq!(deltas.len(), 2, "{deltas:?}");
        let Ok(Delta::ToolCall {
            id,
            name,
            arguments,
        }) = &deltas[0]
        else {
            panic!("{deltas:?}");
        };
        assert!(sse::is_made_up_call_id(id), "{id}");
        assert_eq!(name, "search");
        assert_eq!(arguments, &json!({"q": "rust"}));
        assert_eq!(
            deltas[1],
            Ok(Delta::Done {
                stop: Stop::ToolUse,
                usage: None
            })
        );
    }

    #[tokio::test]
    async fn arguments_that_are_not_json_name_the_tool() {
        let deltas = decode(&[
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\
             \"id\":\"call_1\",\"function\":{\"name\":\"search\",\"arguments\":\"{\\\"q\\\":\"}}]},\
             \"finish_reason\":\"tool_calls\"}]}\n\n",
        ])
        .await;
        assert_eq!(deltas.len(), 1);
        let error = deltas[0].clone().unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidRequest);
        assert!(
            error
                .message
                .starts_with("the model's arguments for search are not JSON: "),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_error_chunk_mid_stream_and_a_cut_body_are_errors() {
        let deltas = decode(&[
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
            "data: {\"error\":{\"message\":\"Provider returned error\",\"code\":502}}\n\n",
        ])
        .await;
        assert_eq!(
            deltas,
            vec![
                Ok(Delta::Text("Hi".to_owned())),
                Err(LlmError {
                    kind: ErrorKind::Unavailable,
                    status: None,
                    message: "Provider returned error".to_owned(),
                }),
            ]
        );
        let deltas =
            decode(&["data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"])
                .await;
        let error = deltas[1].clone().unwrap_err();
        assert!(error.message.contains("ended before"), "{error}");
    }

    #[test]
    fn refusals_take_whatever_message_the_server_gave() {
        let error = refusal(
            400,
            r#"{"error":{"message":"This model's maximum context length is 128000 tokens.",
                "type":"invalid_request_error","param":"messages",
                "code":"context_length_exceeded"}}"#,
        );
        assert_eq!(error.kind, ErrorKind::ContextLength);
        assert_eq!(
            error.message,
            "This model's maximum context length is 128000 tokens."
        );
        let error = refusal(
            401,
            r#"{"error":{"message":"Incorrect API key provided.","type":"invalid_request_error",
                "param":null,"code":"invalid_api_key"}}"#,
        );
        assert_eq!(error.kind, ErrorKind::Auth);
        let error = refusal(404, r#"{"error":"model 'llama9' not found"}"#);
        assert_eq!(error.kind, ErrorKind::InvalidRequest);
        assert_eq!(error.message, "model 'llama9' not found");
        let error = refusal(400, r#"{"detail":"Invalid request"}"#);
        assert_eq!(error.message, "Invalid request");
        let error = refusal(503, &format!("  {}  ", "x".repeat(5000)));
        assert_eq!(error.kind, ErrorKind::Unavailable);
        assert_eq!(error.message.chars().count(), 2001);
    }

    #[tokio::test]
    async fn the_request_carries_the_bearer_key_and_the_listing_reads_ids() {
        use axum::http::HeaderMap;
        use axum::routing::{get, post};
        use std::sync::{Arc, Mutex};

        let seen: Arc<Mutex<Vec<(HeaderMap, String)>>> = Arc::default();
        let record = seen.clone();
        let app = axum::Router::new()
            .route(
                "/v1/chat/completions",
                post(move |headers: HeaderMap, body: String| {
                    record.lock().unwrap().push((headers, body));
                    async { TOOL_STREAM }
                }),
            )
            .route(
                "/v1/models",
                get(|| async {
                    r#"{"object":"list","data":[{"id":"gpt-4.1","object":"model"},
                        {"id":"gpt-4o-mini","object":"model"}]}"#
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let endpoint = Endpoint {
            kind: ProviderKind::OpenAi,
            base_url: base.clone(),
            key: Some(crate::secret::Secret::new("sk-test")),
        };
        let request = request();
        let deltas: Vec<_> = stream(&http, &endpoint, &request)
            .await
            .unwrap()
            .collect()
            .await;
        assert_eq!(deltas.len(), 3, "{deltas:?}");
        let (headers, sent) = seen.lock().unwrap()[0].clone();
        assert_eq!(headers["authorization"], "Bearer sk-test");
        let sent: Value = serde_json::from_str(&sent).unwrap();
        assert_eq!(sent, body(ProviderKind::OpenAi, &request));
        assert_eq!(
            models(&http, &endpoint).await.unwrap(),
            vec!["gpt-4.1", "gpt-4o-mini"]
        );
        // A local server without a key is sent no authorization.
        let keyless = Endpoint {
            kind: ProviderKind::Compatible,
            key: None,
            ..endpoint
        };
        let _ = stream(&http, &keyless, &request).await.unwrap();
        assert!(seen.lock().unwrap()[1].0.get("authorization").is_none());
    }
}
