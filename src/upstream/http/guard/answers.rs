//! How a session's answer reaches the client. rmcp answers on an SSE stream (the rewrite itself
//! is `wire::json_answers`); this layer decides per request: a client that accepts only JSON gets
//! the stream's final answer as a JSON body, one that accepts both gets a quick first answer as
//! a JSON body unless `--sse-answers` is on, and a plain-text refusal of rmcp's becomes a JSON-RPC
//! error. rmcp itself is always asked for both (it refuses a POST that does not accept both).

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use super::refusals;
use crate::wire::json_answers::{self, is_sse};

/// How long the guard waits for a session's answer to come as the first message of its stream.
const JSON_ANSWER_WAIT: Duration = Duration::from_millis(100);

/// What a request's client takes as an answer.
pub(super) struct Answers {
    /// A POST that does not accept SSE: the stream's final answer, as JSON.
    json_only: bool,
    /// A POST that accepts both: a quick first answer as JSON (see [`JSON_ANSWER_WAIT`]).
    json_welcome: bool,
}

impl Answers {
    /// Reads the client's `Accept`, then sets it to what rmcp wants for a POST.
    pub(super) fn negotiate(
        method: &Method,
        headers: &mut HeaderMap,
        stream_answers: bool,
    ) -> Answers {
        let post = *method == Method::POST;
        let json_only = post && !accepts_sse(headers);
        let json_welcome = post && !json_only && !stream_answers && accepts_json(headers);
        if post {
            headers.insert(
                header::ACCEPT,
                HeaderValue::from_static("application/json, text/event-stream"),
            );
        }
        Answers {
            json_only,
            json_welcome,
        }
    }

    /// How long a call the session layer runs itself may take to be answered with a JSON body
    /// (`None`: as long as it takes); `None` outside: this client is answered on a stream.
    pub(super) fn json_wait(&self) -> Option<Option<Duration>> {
        if self.json_only {
            Some(None)
        } else if self.json_welcome {
            Some(Some(JSON_ANSWER_WAIT))
        } else {
            None
        }
    }

    /// A quick answer that is the first message of its stream, as a JSON body.
    pub(super) async fn first(&self, response: Response) -> Response {
        if self.json_welcome && response.status() == StatusCode::OK && is_sse(response.headers()) {
            json_answers::first_answer(response, JSON_ANSWER_WAIT).await
        } else {
            response
        }
    }

    /// A JSON-only client's final answer; rmcp's plain-text refusals as JSON-RPC errors on `id`.
    pub(super) async fn last(&self, response: Response, id: Value) -> Response {
        if self.json_only && is_sse(response.headers()) {
            return match json_answers::final_answer(response).await {
                Ok(answer) => answer,
                Err(why) => refusals::no_answer(&why),
            };
        }
        if response.status().is_client_error() && !is_json(response.headers()) {
            return refusals::as_json_rpc_error(response, id).await;
        }
        response
    }
}

fn accepts_sse(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.to_ascii_lowercase().contains("text/event-stream"))
}

fn accepts_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| {
            let value = value.to_ascii_lowercase();
            value.contains("application/json") || value.contains("*/*")
        })
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"))
}
