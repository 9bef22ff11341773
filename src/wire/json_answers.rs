//! A session's answers as JSON bodies instead of SSE streams, rewritten at the byte level.
//!
//! **The rmcp behaviour compensated:** rmcp 3.11's `StreamableHttpService` answers every request
//! of a session on an SSE stream of its own (headers, a priming event, then the messages),
//! whatever the client's `Accept` says; its `json_response` setting applies to stateless requests
//! only. So the HTTP guard rewrites the response: a client that accepts only JSON gets the
//! stream's last answer as a JSON body ([`final_answer`]), and a client that takes both gets the
//! answer as a JSON body when it is the first message of its stream and comes quickly
//! ([`first_answer`]): one write instead of a stream.
//!
//! **Dropping it:** when rmcp answers a session's request with JSON whenever the answer is the
//! first message (falling back to SSE when a notification or a request comes first, as its
//! stateless `json_response` does), both rewrites go and the guard passes rmcp's response on.
//! [`Head`] stays: it is also what the guard reads of a request body.

use std::ops::Range;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::Value;

/// What is read of one JSON-RPC message: its `id` and `method`; everything else (the params) is
/// skipped without being built.
pub struct Head {
    pub id: Option<Value>,
    pub method: Option<Value>,
}

/// Why [`final_answer`] has no answer to give.
#[derive(Debug)]
pub enum NoAnswer {
    /// The stream failed before it ended.
    StreamFailed(axum::Error),
    /// The stream ended without a JSON-RPC response or error.
    NoneOnStream,
}

/// What the start of an SSE body holds.
enum FirstMessage {
    /// No message yet (only priming events or comments so far).
    NotYet,
    /// The first message is a JSON-RPC response or error: these bytes.
    Answer(Range<usize>),
    /// The first message is a notification or a request: the stream must stay a stream.
    Other,
}

impl<'de> serde::Deserialize<'de> for Head {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Head, D::Error> {
        enum Key {
            Id,
            Method,
            Other,
        }
        impl<'de> serde::Deserialize<'de> for Key {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
                struct KeyVisitor;
                impl serde::de::Visitor<'_> for KeyVisitor {
                    type Value = Key;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a member name")
                    }
                    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Key, E> {
                        Ok(match key {
                            "id" => Key::Id,
                            "method" => Key::Method,
                            _ => Key::Other,
                        })
                    }
                }
                deserializer.deserialize_str(KeyVisitor)
            }
        }
        struct HeadVisitor;
        impl<'de> serde::de::Visitor<'de> for HeadVisitor {
            type Value = Head;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON-RPC message object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Head, A::Error> {
                let mut head = Head {
                    id: None,
                    method: None,
                };
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Id => head.id = Some(map.next_value()?),
                        Key::Method => head.method = Some(map.next_value()?),
                        Key::Other => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(head)
            }
        }
        deserializer.deserialize_map(HeadVisitor)
    }
}

/// Whether a response is an SSE stream.
pub fn is_sse(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"))
}

/// Finds the first message (an event with data) in the complete events at the start of `text`.
fn first_message(text: &[u8]) -> FirstMessage {
    let mut start = 0;
    while let Some(end) = find(&text[start..], b"\n\n").map(|at| start + at) {
        let mut data: Option<Range<usize>> = None;
        let mut line_start = start;
        for line in text[start..end].split(|byte| *byte == b'\n') {
            let line_range = line_start..line_start + line.len();
            line_start += line.len() + 1;
            let Some(rest) = line.strip_prefix(b"data:") else {
                continue;
            };
            if data.is_some() {
                // A message over several data lines: rare (rmcp writes one line); keep it a stream.
                return FirstMessage::Other;
            }
            let skip = usize::from(rest.first() == Some(&b' '));
            data = Some(line_range.end - rest.len() + skip..line_range.end);
        }
        if let Some(data) = data.filter(|data| !data.is_empty()) {
            return match serde_json::from_slice::<Head>(&text[data.clone()]) {
                Ok(head) if head.method.is_none() => FirstMessage::Answer(data),
                _ => FirstMessage::Other,
            };
        }
        start = end + 2;
    }
    FirstMessage::NotYet
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// rmcp writes a session's answer as the first message of its request's SSE stream, and closes
/// that stream with the answer, so no other message can follow it. When the first message is
/// the answer and it comes within `wait`, the client gets it as a JSON body. A progress
/// notification or a server request first, or a slow answer, leaves the stream as it is (what
/// was read of it goes first).
pub async fn first_answer(response: Response, wait: Duration) -> Response {
    let (mut parts, mut body) = response.into_parts();
    let mut seen: Vec<u8> = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(_)) | None) | Err(_) => break,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen.extend_from_slice(&data);
        match first_message(&seen) {
            FirstMessage::NotYet => {}
            FirstMessage::Other => break,
            FirstMessage::Answer(range) => {
                parts.headers.remove(header::CONTENT_LENGTH);
                parts.headers.remove(header::CACHE_CONTROL);
                parts.headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                let answer = Bytes::copy_from_slice(&seen[range]);
                return Response::from_parts(parts, Body::from(answer));
            }
        }
    }
    let read = futures::stream::once(async move { Ok::<_, axum::Error>(Bytes::from(seen)) });
    let rest = body.into_data_stream();
    Response::from_parts(
        parts,
        Body::from_stream(futures::StreamExt::chain(read, rest)),
    )
}

/// Reads an SSE response to its end and answers with its last JSON-RPC response (or error) as
/// a JSON body.
pub async fn final_answer(response: Response) -> Result<Response, NoAnswer> {
    let (mut parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map_err(NoAnswer::StreamFailed)?
        .to_bytes();
    let message = last_answer(&String::from_utf8_lossy(&bytes)).ok_or(NoAnswer::NoneOnStream)?;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok((parts, Body::from(message.to_string())).into_response())
}

/// The last JSON-RPC response or error among the events of an SSE body.
fn last_answer(text: &str) -> Option<Value> {
    let mut last = None;
    let mut data = String::new();
    for line in text.lines().chain(std::iter::once("")) {
        if let Some(rest) = line.strip_prefix("data:") {
            data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
        } else if line.is_empty() && !data.is_empty() {
            if let Ok(message) = serde_json::from_str::<Value>(&data)
                && (message.get("result").is_some() || message.get("error").is_some())
            {
                last = Some(message);
            }
            data.clear();
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_message_is_an_answer_only_without_a_method() {
        let answer = b"id: 0\ndata:\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n";
        let FirstMessage::Answer(range) = first_message(answer) else {
            panic!("an answer after a priming event");
        };
        assert_eq!(&answer[range], br#"{"jsonrpc":"2.0","id":1,"result":{}}"#);
        let progress = b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n";
        assert!(matches!(first_message(progress), FirstMessage::Other));
        assert!(matches!(
            first_message(b"data: {\"id\":1"),
            FirstMessage::NotYet
        ));
    }

    #[test]
    fn the_last_answer_of_a_stream_is_kept() {
        let text = "data: {\"id\":1,\"result\":1}\n\ndata: {\"method\":\"x\"}\n\ndata: {\"id\":2,\"error\":{}}\n";
        assert_eq!(
            last_answer(text),
            Some(serde_json::json!({"id": 2, "error": {}}))
        );
        assert_eq!(last_answer(": keep-alive\n\n"), None);
    }
}
