//! Every JSON-RPC error response the guard answers with: one function per refusal, each with its
//! HTTP status and JSON-RPC code, so a client always gets a body it can read. The layers decide
//! whether to refuse; this file decides what the refusal looks like. It also turns rmcp's own
//! plain-text refusals and a JSON-only client's missing answer into the same shape.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use rmcp::model::ProtocolVersion;
use serde_json::{Value, json};

use crate::upstream::http::limits::Refusal as RateRefusal;
use crate::wire::json_answers::NoAnswer;

/// A refusal on its way out of a layer (boxed: a `Response` is large for an `Err`).
pub(super) type Refused = Box<Response>;

/// The JSON-RPC code of the original's auth failure.
const UNAUTHORIZED: i64 = -32001;
/// The JSON-RPC code of an unknown session, as the official SDKs answer it.
const SESSION_NOT_FOUND: i64 = -32001;
/// The JSON-RPC code of a request the guard will not pass on.
pub(super) const INVALID_REQUEST: i64 = -32600;
/// The JSON-RPC code of a body that is not JSON.
pub(super) const PARSE_ERROR: i64 = -32700;
/// The JSON-RPC code of an internal failure.
const INTERNAL_ERROR: i64 = -32603;
/// The JSON-RPC code of a rate-limit refusal (the original's).
const RATE_LIMITED: i64 = -32000;
/// The JSON-RPC code of a request refused while the proxy cannot take it (as the connection
/// ceiling's refusal says it).
const UNAVAILABLE: i64 = -32000;
/// What a refusal while draining tells the client to wait before trying again: long enough not
/// to spin, short enough that a load balancer that has noticed the drain sends the retry to
/// another instance soon.
const DRAINING_RETRY_AFTER_SECS: u16 = 1;

pub(super) fn rpc_error(
    status: StatusCode,
    id: Value,
    code: i64,
    message: impl Into<String>,
) -> Response {
    let body =
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}});
    (status, axum::Json(body)).into_response()
}

/// A request refused as invalid (-32600) before its id is known.
pub(super) fn invalid(status: StatusCode, message: impl Into<String>) -> Refused {
    Box::new(rpc_error(status, Value::Null, INVALID_REQUEST, message))
}

pub(super) fn method_not_allowed(method: &Method) -> Refused {
    let mut response = invalid(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed here; use POST, GET or DELETE"),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
    response
}

pub(super) fn headers_too_large(max: usize) -> Refused {
    invalid(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        format!("request headers over the limit of {max} bytes"),
    )
}

pub(super) fn body_too_large(max: usize) -> Refused {
    invalid(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body over the limit of {max} bytes"),
    )
}

/// A body the guard could not parse (`code`: parse error or invalid request).
pub(super) fn bad_body(id: Value, code: i64, message: String) -> Refused {
    Box::new(rpc_error(StatusCode::BAD_REQUEST, id, code, message))
}

/// An `MCP-Protocol-Version` header the proxy does not speak: the error of the 2026-07-28
/// revision (-32022, with the versions we speak), on the request's id.
pub(super) fn unsupported_version(id: Value, version: String) -> Refused {
    let requested: ProtocolVersion = match serde_json::from_value(Value::String(version)) {
        Ok(requested) => requested,
        Err(error) => {
            return Box::new(rpc_error(
                StatusCode::BAD_REQUEST,
                id,
                INVALID_REQUEST,
                format!("bad MCP-Protocol-Version: {error}"),
            ));
        }
    };
    let error =
        rmcp::ErrorData::unsupported_protocol_version(requested, ProtocolVersion::KNOWN_VERSIONS);
    let body = json!({"jsonrpc": "2.0", "id": id, "error": error});
    Box::new((StatusCode::BAD_REQUEST, axum::Json(body)).into_response())
}

pub(super) fn unauthorized(id: Value) -> Refused {
    let mut response = rpc_error(
        StatusCode::UNAUTHORIZED,
        id,
        UNAUTHORIZED,
        "Unauthorized: Invalid or missing API key",
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Box::new(response)
}

pub(super) fn session_not_found(id: Value) -> Refused {
    Box::new(rpc_error(
        StatusCode::NOT_FOUND,
        id,
        SESSION_NOT_FOUND,
        "Session not found",
    ))
}

/// A modern client's retry names a call parked on a fleet replica that is gone: the call went
/// with it (a JSON-RPC error, as the call's own answer would be).
pub(super) fn parked_elsewhere_gone(id: Value, replica: i64) -> Refused {
    Box::new(rpc_error(
        StatusCode::OK,
        id,
        -32602,
        format!(
            "the call this requestState names was parked on fleet replica {replica}, which is \
             gone, and the call with it; make the request again without requestState"
        ),
    ))
}

/// The fleet's store could not say where a session lives: 503, try again.
pub(super) fn store_unavailable(id: Value, error: &str) -> Refused {
    let mut response = rpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        id,
        INTERNAL_ERROR,
        format!("store unavailable: cannot find where this session lives ({error})"),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    Box::new(response)
}

/// A `GET` resuming a request stream that has ended: 405, what the SDKs take for "no stream
/// here" (see `BoundedSessions::stream_ended`).
pub(super) fn stream_ended(last_event_id: &str) -> Refused {
    let mut response = invalid(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "the stream of event {last_event_id} has ended (its request was answered or \
             cancelled): there is nothing to resume"
        ),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// A request that would begin a session while the proxy drains: 503 with `Retry-After`, and a
/// reason a person reading the client's error understands.
pub(super) fn draining(id: Value, method: &str) -> Refused {
    let mut response = rpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        id,
        UNAVAILABLE,
        format!(
            "this proxy instance is shutting down (draining) and takes no new sessions: \
             {method} refused; retry, and another instance will answer"
        ),
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(DRAINING_RETRY_AFTER_SECS),
    );
    Box::new(response)
}

/// A request over a rate limit: 429 with `Retry-After`, and the limit in the error's data.
pub(super) fn rate_limited(id: Value, refusal: &RateRefusal, tool_call: bool) -> Refused {
    let body = json!({"jsonrpc": "2.0", "id": id, "error": {
        "code": RATE_LIMITED,
        "message": refusal.message(),
        "data": {
            "limit": refusal.limit,
            "per": "minute",
            "counts": if tool_call { "toolCalls" } else { "requests" },
            "retryAfterSeconds": refusal.retry_after_secs(),
        },
    }});
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(refusal.retry_after_secs()),
    );
    Box::new(response)
}

/// A JSON-only client's stream that brought no answer to give it.
pub(super) fn no_answer(why: &NoAnswer) -> Response {
    let message = match why {
        NoAnswer::StreamFailed(error) => format!("response stream failed: {error}"),
        NoAnswer::NoneOnStream => "no response on the stream".to_owned(),
    };
    rpc_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        Value::Null,
        INTERNAL_ERROR,
        message,
    )
}

/// rmcp answers some refusals (unknown session, bad Accept) in plain text; clients get a JSON-RPC
/// error body with the same status, text and headers.
pub(super) async fn as_json_rpc_error(response: Response, id: Value) -> Response {
    let (parts, body) = response.into_parts();
    let text = match body.collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes())
            .trim()
            .to_owned(),
        Err(_) => String::new(),
    };
    let text = if text.is_empty() {
        parts
            .status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_owned()
    } else {
        text
    };
    let code = if parts.status == StatusCode::NOT_FOUND {
        SESSION_NOT_FOUND
    } else {
        INVALID_REQUEST
    };
    let mut refused = rpc_error(parts.status, id, code, text);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            refused.headers_mut().insert(name.clone(), value.clone());
        }
    }
    refused
}
