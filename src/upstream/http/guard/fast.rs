//! The response to a call the session layer runs itself (`sessions::fast`): its answer as a JSON
//! body when it comes first and within the client's wait (`answers.rs`), else an SSE stream as
//! rmcp's would be: a priming event (the call's event id, the retry interval), what comes before
//! the answer (each with its event id), keep-alive comments while nothing comes, the answer, the
//! end.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;

use super::answers::Answers;
use super::refusals;
use crate::router::Router;
use crate::upstream::http::sessions::{BoundedSessions, Next, Outcome, Waiter};
use crate::upstream::http::{SSE_KEEP_ALIVE, SSE_RETRY};
use crate::wire::json_answers::NoAnswer;

/// The methods the session layer runs itself (`sessions::fast`).
const FAST_METHODS: [&str; 4] = [
    "tools/call",
    "prompts/get",
    "resources/read",
    "completion/complete",
];

/// Answers `body` as a fast call when it is one; `None`: the request goes to rmcp's service.
pub(super) async fn answer(
    sessions: &BoundedSessions,
    router: &Arc<Router>,
    method: &Method,
    headers: &HeaderMap,
    body: &Bytes,
    methods: &[String],
    answers: &Answers,
) -> Option<Response> {
    let one = match methods {
        [one] => one.as_str(),
        _ => return None,
    };
    if method != Method::POST || !FAST_METHODS.contains(&one) {
        return None;
    }
    let wait = answers.json_wait()?;
    if !plain(headers) {
        return None;
    }
    let session = headers.get("mcp-session-id")?.to_str().ok()?;
    // A client that takes SSE can be sent what comes before the answer.
    let streams = wait.is_some();
    let mut waiter = sessions.start_fast_call(router, session, headers, body, streams)?;
    let mut first = waiter.next(wait).await;
    // A client that takes JSON only cannot be sent a message before the answer (its calls are
    // those that should have none: a question can still come, should the roots it had answered
    // change meanwhile); it goes unseen, as on rmcp's path.
    while !streams && matches!(first, Next::Message(..)) {
        first = waiter.next(wait).await;
    }
    if !matches!(first, Next::Ended) {
        return Some(stream(waiter, first));
    }
    Some(match waiter.take() {
        Outcome::Answer(answer) => json(answer),
        // A cancelled call's stream ends without an answer; a client that takes JSON only is
        // told there is none, as from rmcp's stream.
        Outcome::Cancelled | Outcome::Taken if wait.is_none() => {
            refusals::no_answer(&NoAnswer::NoneOnStream)
        }
        Outcome::Cancelled | Outcome::Taken => sse(futures::stream::iter([Ok(priming(&waiter))])),
    })
}

/// Whether rmcp would have nothing to check in the headers: a JSON body, and none of the
/// standard headers it checks against the body (`Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`).
fn plain(headers: &HeaderMap) -> bool {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            let essence = value.split_once(';').map_or(value, |(essence, _)| essence);
            essence.trim().eq_ignore_ascii_case("application/json")
        });
    json && !headers.keys().any(|name| {
        let name = name.as_str();
        name == "mcp-method" || name == "mcp-name" || name.starts_with("mcp-param-")
    })
}

fn json(bytes: Bytes) -> Response {
    let mut response = Response::new(Body::from(bytes));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The priming event of the call's stream (SEP-1699): its id, the retry interval, no data.
fn priming(waiter: &Waiter) -> Bytes {
    format!(
        "id: {}\nretry: {}\ndata: \n\n",
        waiter.priming_id(),
        SSE_RETRY.as_millis()
    )
    .into()
}

/// A call's stream, once it is not answered at once (`first` is what came within the wait): the
/// priming event, then what comes before the answer (a server's questions, progress), each with
/// its event id, keep-alive comments while nothing comes, the answer, the end.
fn stream(waiter: Waiter, first: Next) -> Response {
    enum Step {
        Priming(Next),
        Next(Option<Next>),
        Done,
    }
    let events = futures::stream::unfold(
        (waiter, Step::Priming(first)),
        |(mut waiter, step)| async move {
            let next = match step {
                Step::Priming(first) => {
                    let event = priming(&waiter);
                    return Some((Ok(event), (waiter, Step::Next(Some(first)))));
                }
                Step::Next(Some(next)) => next,
                Step::Next(None) => waiter.next(Some(SSE_KEEP_ALIVE)).await,
                Step::Done => return None,
            };
            match next {
                Next::Nothing => {
                    Some((Ok(Bytes::from_static(b":\n\n")), (waiter, Step::Next(None))))
                }
                Next::Message(_, message) => {
                    let mut event = format!("id: {}\ndata: ", waiter.event_id()).into_bytes();
                    serde_json::to_writer(&mut event, &*message).ok()?;
                    event.extend_from_slice(b"\n\n");
                    Some((Ok(event.into()), (waiter, Step::Next(None))))
                }
                Next::Ended => match waiter.take() {
                    Outcome::Answer(answer) => {
                        let mut event = Vec::with_capacity(answer.len() + 8);
                        event.extend_from_slice(b"data: ");
                        event.extend_from_slice(&answer);
                        event.extend_from_slice(b"\n\n");
                        Some((Ok(event.into()), (waiter, Step::Done)))
                    }
                    Outcome::Cancelled | Outcome::Taken => None,
                },
            }
        },
    );
    sse(events)
}

fn sse(
    events: impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static,
) -> Response {
    let mut response = Response::new(Body::from_stream(events));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
