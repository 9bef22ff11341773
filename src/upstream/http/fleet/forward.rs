//! Passing a request to the replica that holds its session, and its answer back: the method,
//! path, headers and body as the client sent them (the home checks them all again: `Host`,
//! `Origin`, the token, the session's owner), plus one header naming each replica it passed
//! through ([`FORWARDED_BY`]), which bounds the hops, and the client's address sealed with the
//! fleet's key ([`CLIENT_ADDRESS`]; one the client sent is dropped). The answer streams back as
//! it comes (an SSE stream stays one). A home that refuses the connection is gone ([`Forwarded::Unreachable`]:
//! the request was never sent, so it may be served elsewhere); one that fails after taking the
//! request ends its calls with an error the client can read, never with silence.

use axum::body::{Body, Bytes};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};

/// The header a replica adds when it passes a request on: its id.
pub(crate) const FORWARDED_BY: &str = "pluggedin-forwarded-by";
/// The header a replica adds when it passes a request on: the client's address as it resolved
/// it, sealed (`Sealer::seal_address`), for the rate limits where the request is served.
pub(crate) const CLIENT_ADDRESS: &str = "pluggedin-client-address";

/// What became of a request passed on.
pub(crate) enum Forwarded {
    /// The home answered (or failed after taking the request: an error answer).
    Answered(Response),
    /// The home could not be reached: the request was not sent.
    Unreachable(String),
}

/// Headers that belong to one connection, never passed on.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
    )
}

/// Passes the request (`parts`, `body`) to the replica at `url`, on behalf of replica `me`,
/// for the client at `address` (sealed); `id` is the first message's id, for an error answer.
pub(crate) async fn forward(
    client: &reqwest::Client,
    url: &str,
    me: i64,
    parts: &Parts,
    address: &str,
    body: Bytes,
    id: &Value,
) -> Forwarded {
    let path = parts
        .uri
        .path_and_query()
        .map_or("/mcp", axum::http::uri::PathAndQuery::as_str);
    let target = format!("{}{path}", url.trim_end_matches('/'));
    let mut headers = HeaderMap::with_capacity(parts.headers.len() + 2);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) && name != CLIENT_ADDRESS {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.append(FORWARDED_BY, HeaderValue::from(me));
    if let Ok(address) = HeaderValue::from_str(address) {
        headers.append(CLIENT_ADDRESS, address);
    }
    let sent = client
        .request(parts.method.clone(), &target)
        .headers(headers)
        .body(body)
        .send()
        .await;
    crate::metrics::global()
        .fleet_forwarded
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let answer = match sent {
        Ok(answer) => answer,
        Err(error) if error.is_connect() => return Forwarded::Unreachable(error.to_string()),
        Err(error) => {
            return Forwarded::Answered(failed(
                id,
                &format!("the replica holding this session ({url}) failed on the request: {error}"),
            ));
        }
    };
    let status = answer.status();
    let mut response = Response::builder().status(status);
    let sse = answer
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"));
    if let Some(out) = response.headers_mut() {
        for (name, value) in answer.headers() {
            if !hop_by_hop(name) {
                out.append(name.clone(), value.clone());
            }
        }
    }
    let url = url.to_owned();
    let id = id.clone();
    let stream = answer.bytes_stream();
    let body = futures::stream::unfold(
        (stream, false, Tail::default()),
        move |(mut stream, done, mut tail)| {
            let url = url.clone();
            let id = id.clone();
            async move {
                if done {
                    return None;
                }
                match stream.next().await {
                    Some(Ok(bytes)) => {
                        tail.saw(&bytes);
                        Some((Ok(bytes), (stream, false, tail)))
                    }
                    Some(Err(error)) if sse && !id.is_null() => {
                        let message = format!(
                            "the replica holding this session ({url}) went away during the \
                             request: {error}"
                        );
                        let event = tail.error_event(&id, &message);
                        Some((Ok(event), (stream, true, tail)))
                    }
                    Some(Err(error)) => {
                        Some((Err(std::io::Error::other(error)), (stream, true, tail)))
                    }
                    None => None,
                }
            }
        },
    );
    match response.body(Body::from_stream(body)) {
        Ok(response) => Forwarded::Answered(response),
        Err(error) => Forwarded::Answered(failed(&Value::Null, &error.to_string())),
    }
}

/// The last two bytes an SSE stream passed on: whether it stopped between events.
#[derive(Default)]
struct Tail([u8; 2]);

impl Tail {
    fn saw(&mut self, bytes: &Bytes) {
        match bytes.len() {
            0 => {}
            1 => self.0 = [self.0[1], bytes[0]],
            n => self.0 = [bytes[n - 2], bytes[n - 1]],
        }
    }

    /// An SSE event carrying a JSON-RPC error for request `id`, after whatever event the stream
    /// was cut in (ended first, so the error is an event of its own).
    fn error_event(&self, id: &Value, message: &str) -> Bytes {
        let between = self.0 == *b"\n\n" || self.0 == [0, 0];
        let error = json!({"jsonrpc": "2.0", "id": id,
            "error": {"code": -32603, "message": message}});
        let lead = if between { "" } else { "\n\n" };
        Bytes::from(format!("{lead}event: message\ndata: {error}\n\n"))
    }
}

/// A 502 with a JSON-RPC error body.
fn failed(id: &Value, message: &str) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603, "message": message}});
    (StatusCode::BAD_GATEWAY, axum::Json(body)).into_response()
}
