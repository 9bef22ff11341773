//! `test_reconnection` and the Streamable HTTP layer behind it (SEP-1699, `server-sse-polling`):
//! the layer cuts the tool's SSE response after its priming event and records when the client
//! resumes with `Last-Event-ID`; the tool answers only after that resume. The wait is needed
//! because rmcp forgets a request's stream, replay cache included, once its answer is sent.
//! Over stdio, SSE or a stateless request the tool answers at once.

use std::{collections::HashMap, sync::Arc, time::Duration};

use pluggedin_mcp_proxy::sync::lock;
use rmcp::{RoleServer, model::CallToolResult, service::RequestContext};
use serde_json::Value;
use tokio::sync::Notify;

use super::text;

/// How long `test_reconnection` waits for its client to resume before answering anyway.
const RECONNECTION_WAIT_LIMIT: Duration = Duration::from_secs(20);

/// Resumptions (`GET` with `Last-Event-ID`) seen per session, for `test_reconnection`.
#[derive(Default)]
pub(crate) struct Resumptions(std::sync::Mutex<HashMap<String, Arc<Notify>>>);

impl Resumptions {
    fn entry(&self, session: &str) -> Arc<Notify> {
        lock(&self.0).entry(session.to_owned()).or_default().clone()
    }

    /// A client of `session` resumed a stream (its resumed stream is in place).
    fn resumed(&self, session: &str) {
        // A stored permit if the tool is not waiting yet.
        self.entry(session).notify_one();
    }

    /// Waits until a client of `session` resumes, or the limit passes.
    async fn wait(&self, session: &str) {
        let resumed = self.entry(session);
        let _ = tokio::time::timeout(RECONNECTION_WAIT_LIMIT, resumed.notified()).await;
        lock(&self.0).remove(session);
    }
}

/// `test_reconnection`: over Streamable HTTP with a session, answers only once the client has
/// resumed the stream that [`drop_stream_mid_call`] cut (rmcp forgets a request's stream once
/// its answer is sent, so an answer sent before the resume could never be replayed); over
/// other transports at once.
pub(crate) async fn reconnection(
    resumptions: &Resumptions,
    context: &RequestContext<RoleServer>,
) -> CallToolResult {
    let session = context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.headers.get("mcp-session-id"))
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    if let Some(session) = session {
        resumptions.wait(&session).await;
    }
    text("Answered after the stream was closed; delivered on resumption")
}

/// The largest request body the stream-dropping layer reads to recognise `test_reconnection`.
const INSPECTED_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Streamable HTTP layer for SEP-1699 polling (`server-sse-polling`): a `tools/call` of
/// `test_reconnection` gets its SSE response cut after the first event (rmcp's priming event,
/// which carries the event id and `retry`). The call goes on; once the client comes back with a
/// `GET` and `Last-Event-ID` (recorded in `resumptions`), it answers on the resumed stream.
/// Every other request passes untouched.
pub(crate) async fn drop_stream_mid_call(
    axum::extract::State(resumptions): axum::extract::State<Arc<Resumptions>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::body::Body;
    use futures::StreamExt as _;
    use http_body_util::BodyExt as _;

    if request.method() == axum::http::Method::GET {
        let resuming = request
            .headers()
            .contains_key("last-event-id")
            .then(|| request.headers().get("mcp-session-id"))
            .flatten()
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let response = next.run(request).await;
        if let Some(session) = resuming.filter(|_| response.status().is_success()) {
            resumptions.resumed(&session);
        }
        return response;
    }
    if request.method() != axum::http::Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match http_body_util::Limited::new(body, INSPECTED_BODY_LIMIT)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return axum::response::IntoResponse::into_response((
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body not readable: {error}"),
            ));
        }
    };
    let reconnection = serde_json::from_slice::<Value>(&bytes).is_ok_and(|message| {
        message["method"] == "tools/call" && message["params"]["name"] == "test_reconnection"
    });
    let response = next
        .run(axum::extract::Request::from_parts(parts, Body::from(bytes)))
        .await;
    let is_stream = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
    if !reconnection || !is_stream {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Pass bytes through up to the end of the first event ("\n\n"), then end the stream at
    // once, without waiting for (and so without consuming) what the call sends next.
    let inner = body.into_data_stream();
    let cut = futures::stream::unfold(
        (inner, Vec::new(), false),
        |(mut inner, mut seen, done)| async move {
            if done {
                return None;
            }
            let chunk = match inner.next().await? {
                Ok(chunk) => chunk,
                Err(error) => return Some((Err(error), (inner, seen, true))),
            };
            let start = seen.len();
            seen.extend_from_slice(&chunk);
            match seen.windows(2).position(|pair| pair == b"\n\n") {
                Some(at) => {
                    let end = (at + 2).saturating_sub(start).min(chunk.len());
                    Some((Ok(chunk.slice(..end)), (inner, seen, true)))
                }
                None => Some((Ok(chunk), (inner, seen, false))),
            }
        },
    );
    axum::response::Response::from_parts(parts, Body::from_stream(cut))
}
