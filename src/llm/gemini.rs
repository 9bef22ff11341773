//! Google Gemini's API: `POST {base}/v1beta/models/{model}:streamGenerateContent?alt=sse`, each
//! event a whole `GenerateContentResponse` read into [`Delta`]s, and `GET {base}/v1beta/models`
//! for the models that generate content. The key travels in the `x-goog-api-key` header, never
//! in the URL (which error messages may show).
//!
//! Gemini matches a function's answer to its call by name and order (an id only when the model
//! gave one), so the answers of one turn are sent in the order of the calls. Thinking models
//! sign their function calls and Gemini 3 refuses a replayed call without its signature; the
//! neutral conversation keeps none, so replayed calls carry the value Google documents for
//! calls whose signature is not at hand.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::sse::{self, Decode, Event};
use super::{
    Delta, Deltas, Endpoint, ErrorKind, LlmError, Message, Part, Request, Role, Stop, Usage,
};

/// Google's documented stand-in for a thought signature not at hand.
const NO_SIGNATURE: &str = "skip_thought_signature_validator";

/// The most pages of models read.
const MAX_PAGES: usize = 10;

pub(super) async fn stream(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    request: &Request,
) -> Result<Deltas, LlmError> {
    let model = request
        .model
        .strip_prefix("models/")
        .unwrap_or(&request.model);
    let url = format!(
        "{}/v1beta/models/{}:streamGenerateContent?alt=sse",
        endpoint.base_url,
        sse::encoded(model)
    );
    let builder = keyed(http.post(&url), endpoint)?
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
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut url = format!("{}/v1beta/models?pageSize=1000", endpoint.base_url);
        if let Some(token) = &token {
            url.push_str("&pageToken=");
            url.push_str(&sse::encoded(token));
        }
        let page = sse::get_json(keyed(http.get(&url), endpoint)?, &url, refusal).await?;
        for model in page["models"].as_array().into_iter().flatten() {
            let generates = model["supportedGenerationMethods"]
                .as_array()
                .is_some_and(|methods| methods.iter().any(|m| m == "generateContent"));
            if let Some(name) = model["name"].as_str().filter(|_| generates) {
                models.push(name.strip_prefix("models/").unwrap_or(name).to_owned());
            }
        }
        token = page["nextPageToken"]
            .as_str()
            .filter(|token| !token.is_empty())
            .map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    Ok(models)
}

fn keyed(
    builder: reqwest::RequestBuilder,
    endpoint: &Endpoint,
) -> Result<reqwest::RequestBuilder, LlmError> {
    Ok(match &endpoint.key {
        Some(key) => builder.header("x-goog-api-key", sse::secret_header(key.expose())?),
        None => builder,
    })
}

/// The request body.
fn body(request: &Request) -> Value {
    let mut body = json!({
        "contents": contents(&request.messages),
        "generationConfig": {"maxOutputTokens": request.max_tokens},
    });
    if let Some(system) = request.system.as_deref().filter(|s| !s.trim().is_empty()) {
        body["systemInstruction"] = json!({"parts": [{"text": system}]});
    }
    if !request.tools.is_empty() {
        let declarations: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                let mut declaration = json!({"name": tool.name, "description": tool.description});
                if !tool.input_schema.is_null() {
                    declaration["parameters"] = tool.input_schema.clone();
                }
                declaration
            })
            .collect();
        body["tools"] = json!([{"functionDeclarations": declarations}]);
    }
    body
}

/// An id worth sending back: one the model gave, not one made up for it.
fn model_given(id: &str) -> Option<&str> {
    (!id.is_empty() && !sse::is_made_up_call_id(id)).then_some(id)
}

/// The neutral conversation as Gemini's `contents`.
fn contents(messages: &[Message]) -> Vec<Value> {
    let mut merged: Vec<(Role, Vec<Value>)> = Vec::new();
    // Where each call stands in the conversation, by id: the answers in one user message
    // follow the order of the calls they answer.
    let mut call_order: HashMap<&str, usize> = HashMap::new();
    let mut calls = 0usize;
    for message in messages {
        let mut parts = Vec::new();
        match message.role {
            Role::Assistant => {
                let mut signed = false;
                for part in &message.content {
                    match part {
                        Part::Text { text } if !text.is_empty() => {
                            parts.push(json!({"text": text}));
                        }
                        Part::ToolCall {
                            id,
                            name,
                            arguments,
                        } => {
                            let args = match arguments {
                                Value::Object(_) => arguments.clone(),
                                _ => Value::Object(Map::new()),
                            };
                            let mut call = json!({"name": name, "args": args});
                            if let Some(id) = model_given(id) {
                                call["id"] = json!(id);
                            }
                            let mut part = json!({"functionCall": call});
                            // One signature per step, on its first call.
                            if !signed {
                                part["thoughtSignature"] = json!(NO_SIGNATURE);
                                signed = true;
                            }
                            call_order.insert(id.as_str(), calls);
                            calls += 1;
                            parts.push(part);
                        }
                        _ => {}
                    }
                }
            }
            Role::User => {
                let mut answers: Vec<(usize, Value)> = Vec::new();
                let mut texts = Vec::new();
                for part in &message.content {
                    match part {
                        Part::Text { text } if !text.is_empty() => {
                            texts.push(json!({"text": text}));
                        }
                        Part::ToolResult {
                            id,
                            name,
                            content,
                            is_error,
                        } => {
                            let response = if *is_error {
                                json!({"error": content})
                            } else {
                                json!({"result": content})
                            };
                            let mut answer = json!({"name": name, "response": response});
                            if let Some(id) = model_given(id) {
                                answer["id"] = json!(id);
                            }
                            let place = call_order.get(id.as_str()).copied().unwrap_or(usize::MAX);
                            answers.push((place, json!({"functionResponse": answer})));
                        }
                        _ => {}
                    }
                }
                answers.sort_by_key(|(place, _)| *place);
                parts.extend(answers.into_iter().map(|(_, answer)| answer));
                parts.extend(texts);
            }
        }
        if parts.is_empty() {
            continue;
        }
        match merged.last_mut() {
            Some((role, earlier)) if *role == message.role => earlier.extend(parts),
            _ => merged.push((message.role, parts)),
        }
    }
    merged
        .into_iter()
        .map(|(role, parts)| {
            let role = match role {
                Role::User => "user",
                Role::Assistant => "model",
            };
            json!({"role": role, "parts": parts})
        })
        .collect()
}

/// A refusal: `{"error":{"code","message","status","details"}}` (in a list, from some
/// endpoints).
fn refusal(status: u16, body: &str) -> LlmError {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let error = match &parsed {
        Value::Array(list) => list.first().map_or(&Value::Null, |first| &first["error"]),
        other => &other["error"],
    };
    let message = error["message"]
        .as_str()
        .map(sse::trimmed)
        .filter(|message| !message.is_empty())
        .unwrap_or_else(|| match sse::trimmed(body) {
            text if text.is_empty() => sse::no_message(status),
            text => text,
        });
    LlmError {
        kind: kind_of(status, error, &message),
        status: Some(status),
        message,
    }
}

/// A refusal's kind: Gemini answers a key it does not know with a 400.
fn kind_of(status: u16, error: &Value, message: &str) -> ErrorKind {
    let key_refused = error["details"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|detail| detail["reason"] == "API_KEY_INVALID")
        || message.contains("API_KEY_INVALID")
        || message.contains("API key not valid");
    if status == 400 && key_refused {
        ErrorKind::Auth
    } else {
        sse::kind_for_status(status, message)
    }
}

#[derive(Default)]
struct Decoder {
    stop: Option<Stop>,
    usage: Option<Usage>,
    called: bool,
}

fn finish_reason(reason: &str) -> Option<Stop> {
    Some(match reason {
        "FINISH_REASON_UNSPECIFIED" => return None,
        "STOP" => Stop::EndTurn,
        "MAX_TOKENS" => Stop::MaxTokens,
        "SAFETY" | "RECITATION" | "PROHIBITED_CONTENT" | "BLOCKLIST" | "SPII" | "IMAGE_SAFETY" => {
            Stop::Refused
        }
        _ => Stop::Other,
    })
}

impl Decode for Decoder {
    fn event(&mut self, event: Event, out: &mut Vec<Delta>) -> Result<(), LlmError> {
        let chunk: Value =
            serde_json::from_str(&event.data).map_err(|e| sse::unreadable("Gemini", &e))?;
        let error = &chunk["error"];
        if !error.is_null() {
            let message = error["message"]
                .as_str()
                .map(sse::trimmed)
                .unwrap_or_else(|| "the stream reported an error".to_owned());
            let code = error["code"]
                .as_u64()
                .and_then(|code| u16::try_from(code).ok());
            return Err(LlmError {
                kind: kind_of(code.unwrap_or(500), error, &message),
                status: None,
                message,
            });
        }
        if chunk["promptFeedback"]["blockReason"].is_string() {
            self.stop = Some(Stop::Refused);
        }
        let usage = &chunk["usageMetadata"];
        if let Some(input) = usage["promptTokenCount"].as_u64() {
            // Thinking is billed as output: counted with the answer's tokens.
            let output = ["candidatesTokenCount", "thoughtsTokenCount"]
                .iter()
                .filter_map(|field| usage[*field].as_u64())
                .sum();
            self.usage = Some(Usage {
                input_tokens: input,
                output_tokens: output,
            });
        }
        let Some(candidate) = chunk["candidates"]
            .as_array()
            .and_then(|candidates| candidates.first())
        else {
            return Ok(());
        };
        for part in candidate["content"]["parts"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if part["thought"] == json!(true) {
                continue;
            }
            if let Some(text) = part["text"].as_str().filter(|text| !text.is_empty()) {
                out.push(Delta::Text(text.to_owned()));
            }
            let call = &part["functionCall"];
            if let Some(name) = call["name"].as_str() {
                let id = call["id"]
                    .as_str()
                    .filter(|id| !id.is_empty())
                    .map_or_else(sse::new_call_id, str::to_owned);
                let arguments = match &call["args"] {
                    Value::Object(args) => Value::Object(args.clone()),
                    _ => Value::Object(Map::new()),
                };
                self.called = true;
                out.push(Delta::ToolCall {
                    id,
                    name: name.to_owned(),
                    arguments,
                });
            }
        }
        if let Some(stop) = candidate["finishReason"].as_str().and_then(finish_reason) {
            self.stop = Some(stop);
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<Delta>) -> Result<(), LlmError> {
        // Gemini sends no end marker: the body ends after the chunk with the finish reason.
        let Some(stop) = self.stop else {
            return Err(sse::ended_early());
        };
        let stop = match stop {
            Stop::EndTurn if self.called => Stop::ToolUse,
            stop => stop,
        };
        out.push(Delta::Done {
            stop,
            usage: self.usage,
        });
        Ok(())
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

    fn call(id: &str, name: &str, arguments: Value) -> Part {
        Part::ToolCall {
            id: id.to_owned(),
            name: name.to_owned(),
            arguments,
        }
    }

    fn answer(id: &str, name: &str, content: &str, is_error: bool) -> Part {
        Part::ToolResult {
            id: id.to_owned(),
            name: name.to_owned(),
            content: content.to_owned(),
            is_error,
        }
    }

    async fn decode(chunks: &[&str]) -> Vec<Result<Delta, LlmError>> {
        sse::decode_chunks(chunks, Decoder::default()).await
    }

    #[test]
    fn the_body_declares_functions_and_a_tool_without_parameters_has_none() {
        let request = Request {
            model: "gemini-2.5-flash".to_owned(),
            system: Some("Be brief.".to_owned()),
            messages: vec![Message {
                role: Role::User,
                content: vec![text("hi")],
            }],
            tools: vec![
                ToolSpec {
                    name: "search".to_owned(),
                    description: "Search the docs".to_owned(),
                    input_schema: json!({"type": "OBJECT",
                                         "properties": {"q": {"type": "STRING"}}}),
                },
                ToolSpec {
                    name: "now".to_owned(),
                    description: "The time".to_owned(),
                    input_schema: Value::Null,
                },
            ],
            max_tokens: 2048,
        };
        assert_eq!(
            body(&request),
            json!({
                "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                "systemInstruction": {"parts": [{"text": "Be brief."}]},
                "tools": [{"functionDeclarations": [
                    {"name": "search", "description": "Search the docs",
                     "parameters": {"type": "OBJECT", "properties": {"q": {"type": "STRING"}}}},
                    {"name": "now", "description": "The time"}
                ]}],
                "generationConfig": {"maxOutputTokens": 2048}
            })
        );
    }

    #[test]
    fn answers_follow_the_order_of_their_calls_and_carry_ids_the_model_gave() {
        let contents = contents(&[
            Message {
                role: Role::User,
                content: vec![text("weather and time?")],
            },
            Message {
                role: Role::Assistant,
                content: vec![
                    call("call_17", "weather", json!({"city": "Paris"})),
                    call("fc-abc", "now", Value::Null),
                ],
            },
            Message {
                role: Role::User,
                content: vec![
                    text("quickly"),
                    answer("fc-abc", "now", "noon", false),
                    answer("call_17", "weather", "no such city", true),
                ],
            },
        ]);
        assert_eq!(
            contents,
            vec![
                json!({"role": "user", "parts": [{"text": "weather and time?"}]}),
                json!({"role": "model", "parts": [
                    {"functionCall": {"name": "weather", "args": {"city": "Paris"}},
                     "thoughtSignature": "skip_thought_signature_validator"},
                    {"functionCall": {"name": "now", "args": {}, "id": "fc-abc"}}
                ]}),
                json!({"role": "user", "parts": [
                    {"functionResponse": {"name": "weather",
                                          "response": {"error": "no such city"}}},
                    {"functionResponse": {"name": "now", "response": {"result": "noon"},
                                          "id": "fc-abc"}},
                    {"text": "quickly"}
                ]}),
            ]
        );
    }

    #[test]
    fn consecutive_messages_of_one_role_merge_and_empty_text_is_dropped() {
        let contents = contents(&[
            Message {
                role: Role::User,
                content: vec![text("a")],
            },
            Message {
                role: Role::User,
                content: vec![text(""), text("b")],
            },
            Message {
                role: Role::Assistant,
                content: vec![text("")],
            },
        ]);
        assert_eq!(
            contents,
            vec![json!({"role": "user", "parts": [{"text": "a"}, {"text": "b"}]})]
        );
    }

    #[tokio::test]
    async fn a_streamed_answer_gives_text_calls_and_the_finish() {
        let deltas = decode(&[
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"thinking…\",\
             \"thought\": true}, {\"text\": \"Let me check.\"}],\"role\": \"model\"},\
             \"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 30,\
             \"totalTokenCount\": 30},\"modelVersion\": \"gemini-2.5-flash\"}\r\n\r\n",
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \
             \"weather\",\"args\": {\"city\": \"Paris\"}},\"thoughtSignature\": \"Q2lRQj==\"},\
             {\"functionCall\": {\"name\": \"now\", \"id\": \"fc-1\"}}],\"role\": \"model\"},\
             \"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\"",
            ": 30,\"candidatesTokenCount\": 12,\"thoughtsTokenCount\": 5,\
             \"totalTokenCount\": 47}}\r\n\r\n",
        ])
        .await;
        assert_eq!(deltas.len(), 4, "{deltas:?}");
        assert_eq!(deltas[0], Ok(Delta::Text("Let me check.".to_owned())));
        let Ok(Delta::ToolCall {
            id,
            name,
            arguments,
        }) = &deltas[1]
        else {
            panic!("{deltas:?}");
        };
        assert!(sse::is_made_up_call_id(id), "{id}");
        assert_eq!(name, "weather");
        assert_eq!(arguments, &json!({"city": "Paris"}));
        assert_eq!(
            deltas[2],
            Ok(Delta::ToolCall {
                id: "fc-1".to_owned(),
                name: "now".to_owned(),
                arguments: json!({}),
            })
        );
        assert_eq!(
            deltas[3],
            Ok(Delta::Done {
                stop: Stop::ToolUse,
                usage: Some(Usage {
                    input_tokens: 30,
                    output_tokens: 17
                }),
            })
        );
    }

    #[tokio::test]
    async fn safety_finishes_and_blocked_prompts_are_refusals() {
        let deltas = decode(&[
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"I\"}]},\
             \"finishReason\": \"SAFETY\"}]}\n\n",
        ])
        .await;
        assert_eq!(
            deltas.last(),
            Some(&Ok(Delta::Done {
                stop: Stop::Refused,
                usage: None
            }))
        );
        let deltas = decode(&[
            "data: {\"promptFeedback\": {\"blockReason\": \"PROHIBITED_CONTENT\"},\
             \"usageMetadata\": {\"promptTokenCount\": 8, \"totalTokenCount\": 8}}\n\n",
        ])
        .await;
        assert_eq!(
            deltas,
            vec![Ok(Delta::Done {
                stop: Stop::Refused,
                usage: Some(Usage {
                    input_tokens: 8,
                    output_tokens: 0
                }),
            })]
        );
        let deltas = decode(&[
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"a\"}]},\
             \"finishReason\": \"MAX_TOKENS\"}]}\n\n",
        ])
        .await;
        assert_eq!(
            deltas.last(),
            Some(&Ok(Delta::Done {
                stop: Stop::MaxTokens,
                usage: None
            }))
        );
    }

    #[tokio::test]
    async fn an_error_mid_stream_or_a_body_without_a_finish_is_an_error() {
        let deltas = decode(&[
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"a\"}]}}]}\n\n",
            "data: {\"error\": {\"code\": 503, \"message\": \"The model is overloaded.\",\
             \"status\": \"UNAVAILABLE\"}}\n\n",
        ])
        .await;
        assert_eq!(
            deltas[1],
            Err(LlmError {
                kind: ErrorKind::Unavailable,
                status: None,
                message: "The model is overloaded.".to_owned(),
            })
        );
        let deltas =
            decode(&["data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"a\"}]}}]}"])
                .await;
        let error = deltas[1].clone().unwrap_err();
        assert!(error.message.contains("ended before"), "{error}");
    }

    #[test]
    fn a_key_gemini_does_not_know_is_an_auth_error_though_it_answers_400() {
        let error = refusal(
            400,
            r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.",
                "status":"INVALID_ARGUMENT","details":[{
                "@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID",
                "domain":"googleapis.com"}]}}"#,
        );
        assert_eq!(error.kind, ErrorKind::Auth);
        assert_eq!(
            error.message,
            "API key not valid. Please pass a valid API key."
        );
        let error = refusal(
            400,
            concat!(
                r#"[{"error":{"code":400,"status":"INVALID_ARGUMENT","message":"#,
                r#""The input token count (1200000) exceeds the maximum number of tokens "#,
                r#"allowed (1048576)."}}]"#
            ),
        );
        assert_eq!(error.kind, ErrorKind::ContextLength);
        let error = refusal(
            429,
            r#"{"error":{"code":429,"message":"Resource has been exhausted",
                "status":"RESOURCE_EXHAUSTED"}}"#,
        );
        assert_eq!(error.kind, ErrorKind::RateLimit);
        let error = refusal(
            400,
            r#"{"error":{"code":400,"message":"* GenerateContentRequest.tools[0]...",
                "status":"INVALID_ARGUMENT"}}"#,
        );
        assert_eq!(error.kind, ErrorKind::InvalidRequest);
    }

    #[tokio::test]
    async fn the_key_goes_in_a_header_and_the_listing_keeps_generating_models() {
        use axum::extract::{Path, RawQuery};
        use axum::http::HeaderMap;
        use axum::routing::{get, post};
        use std::sync::{Arc, Mutex};

        type Seen = Arc<Mutex<Vec<(String, Option<String>, HeaderMap, String)>>>;
        let seen: Seen = Arc::default();
        let record = seen.clone();
        let app = axum::Router::new()
            .route(
                "/v1beta/models/{call}",
                post(
                    move |Path(call): Path<String>,
                          RawQuery(query): RawQuery,
                          headers: HeaderMap,
                          body: String| {
                        record.lock().unwrap().push((call, query, headers, body));
                        async {
                            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \
                             \"hi\"}]},\"finishReason\": \"STOP\"}]}\r\n\r\n"
                        }
                    },
                ),
            )
            .route(
                "/v1beta/models",
                get(|RawQuery(query): RawQuery| async move {
                    if query
                        .as_deref()
                        .is_some_and(|q| q.contains("pageToken=next"))
                    {
                        r#"{"models":[{"name":"models/gemini-2.5-pro",
                            "supportedGenerationMethods":["generateContent"]}]}"#
                    } else {
                        r#"{"models":[{"name":"models/gemini-2.5-flash",
                            "supportedGenerationMethods":["generateContent","countTokens"]},
                            {"name":"models/text-embedding-004",
                            "supportedGenerationMethods":["embedContent"]}],
                            "nextPageToken":"next"}"#
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let endpoint = Endpoint {
            kind: crate::llm::ProviderKind::Gemini,
            base_url: base,
            key: Some(crate::secret::Secret::new("AIza-test")),
        };
        let request = Request {
            model: "models/gemini-2.5-flash".to_owned(),
            system: None,
            messages: vec![Message {
                role: Role::User,
                content: vec![text("hi")],
            }],
            tools: Vec::new(),
            max_tokens: 100,
        };
        let deltas: Vec<_> = stream(&http, &endpoint, &request)
            .await
            .unwrap()
            .collect()
            .await;
        assert_eq!(
            deltas,
            vec![
                Ok(Delta::Text("hi".to_owned())),
                Ok(Delta::Done {
                    stop: Stop::EndTurn,
                    usage: None
                }),
            ]
        );
        let (call, query, headers, sent) = seen.lock().unwrap()[0].clone();
        assert_eq!(call, "gemini-2.5-flash:streamGenerateContent");
        assert_eq!(query.as_deref(), Some("alt=sse"));
        assert_eq!(headers["x-goog-api-key"], "AIza-test");
        let sent: Value = serde_json::from_str(&sent).unwrap();
        assert_eq!(sent, body(&request));
        assert_eq!(
            models(&http, &endpoint).await.unwrap(),
            vec!["gemini-2.5-flash", "gemini-2.5-pro"]
        );
    }
}
