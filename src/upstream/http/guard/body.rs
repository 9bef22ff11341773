//! The body of a POST: refused before a byte is read when `Content-Length` announces more than
//! `--max-body-bytes` (413), read within [`BODY_READ_TIMEOUT`] and the limit (408, 413), and
//! checked to be JSON-RPC objects (400, `-32700` or `-32600`). Only the `id` of the first message
//! and every `method` are read ([`Head`]); rmcp parses the body for real, from the same bytes.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;

use super::Guard;
use super::refusals::{self, PARSE_ERROR, Refused};
use crate::wire::json_answers::Head;

/// A request body must arrive within this time.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What the guard learned from a POST body.
#[derive(Default)]
pub(super) struct Parsed {
    /// The first message's id (for error bodies).
    pub(super) id: Value,
    pub(super) methods: Vec<String>,
}

/// A body the guard refuses: the JSON-RPC code, the id if one was read, and why.
#[derive(Debug)]
struct Refusal {
    code: i64,
    id: Value,
    message: String,
}

impl Guard {
    /// A POST's body, read and parsed; other methods have none (empty bytes, nothing parsed).
    pub(super) async fn read_body(
        &self,
        method: &Method,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<(Bytes, Parsed), Refused> {
        let max = self.config.max_body_bytes;
        // A body announced over the limit is refused before a byte of it is read.
        let announced = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok());
        if announced.is_some_and(|length| length > max as u64) {
            return Err(refusals::body_too_large(max));
        }
        if *method != Method::POST {
            return Ok((Bytes::new(), Parsed::default()));
        }
        let bytes = collect(body, max).await?;
        match parse_body(&bytes) {
            Ok(parsed) => Ok((bytes, parsed)),
            Err(refusal) => Err(refusals::bad_body(
                refusal.id,
                refusal.code,
                refusal.message,
            )),
        }
    }
}

/// Reads a body of at most `max` bytes within [`BODY_READ_TIMEOUT`].
async fn collect(body: Body, max: usize) -> Result<Bytes, Refused> {
    let limited = http_body_util::Limited::new(body, max);
    match tokio::time::timeout(BODY_READ_TIMEOUT, limited.collect()).await {
        Err(_) => Err(refusals::invalid(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {}s",
                BODY_READ_TIMEOUT.as_secs()
            ),
        )),
        Ok(Err(error)) => {
            let too_large = error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            Err(if too_large {
                refusals::body_too_large(max)
            } else {
                refusals::invalid(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the body: {error}"),
                )
            })
        }
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// Reads the `id` of the first message and every `method`, without building the messages; a body
/// that is not JSON or not JSON-RPC objects takes the checking path for its exact refusal.
fn parse_body(bytes: &[u8]) -> Result<Parsed, Refusal> {
    let batch = bytes
        .iter()
        .find(|byte| !byte.is_ascii_whitespace())
        .is_some_and(|byte| *byte == b'[');
    let heads = if batch {
        serde_json::from_slice::<Vec<Head>>(bytes)
    } else {
        serde_json::from_slice::<Head>(bytes).map(|head| vec![head])
    };
    let Ok(heads) = heads else {
        return parse_body_checked(bytes);
    };
    let id = heads
        .first()
        .and_then(|head| head.id.clone())
        .unwrap_or(Value::Null);
    let methods = heads
        .into_iter()
        .filter_map(|head| match head.method {
            Some(Value::String(method)) => Some(method),
            _ => None,
        })
        .collect();
    Ok(Parsed { id, methods })
}

fn parse_body_checked(bytes: &[u8]) -> Result<Parsed, Refusal> {
    let value: Value = serde_json::from_slice(bytes).map_err(|error| Refusal {
        code: PARSE_ERROR,
        id: Value::Null,
        message: format!("parse error: {error}"),
    })?;
    let messages: Vec<&Value> = match &value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let id = messages
        .first()
        .and_then(|message| message.get("id"))
        .cloned()
        .unwrap_or(Value::Null);
    let mut methods = Vec::new();
    for message in &messages {
        if !message.is_object() {
            return Err(Refusal {
                code: refusals::INVALID_REQUEST,
                id,
                message: "invalid request: a JSON-RPC message must be a JSON object".into(),
            });
        }
        if let Some(method) = message.get("method").and_then(Value::as_str) {
            methods.push(method.to_owned());
        }
    }
    Ok(Parsed { id, methods })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bodies_must_be_json_rpc_objects() {
        assert!(parse_body(b"{nope").is_err());
        assert!(parse_body(b"[1]").is_err());
        let parsed = parse_body(br#"{"jsonrpc":"2.0","id":3,"method":"tools/call"}"#).unwrap();
        assert_eq!(
            (parsed.id, parsed.methods),
            (json!(3), vec!["tools/call".to_owned()])
        );
    }
}
