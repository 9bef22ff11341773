//! The legacy SSE transport's errors and their text: each names the request and URL that failed,
//! and quotes at most a line of what the server answered. The transport and the reader build them;
//! nothing here touches the network beyond reading an error response's body.

use std::time::Duration;

use reqwest::StatusCode;
use url::Url;

use crate::telemetry::error_chain;

/// Longest response body (in characters) quoted in an error message.
const MAX_ERROR_BODY_CHARS: usize = 512;
/// How long to wait for an error response's body before giving up on quoting it.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors of the legacy SSE client transport; each names the request and URL that failed.
#[derive(Debug, thiserror::Error)]
pub enum SseTransportError {
    /// The request could not be sent or its response could not be read (DNS, refused, TLS, reset…).
    #[error("{method} {url}: {detail}")]
    Request {
        method: &'static str,
        url: String,
        detail: String,
    },
    /// The server answered with a non-2xx status.
    #[error("{method} {url}: HTTP {status}{}", body_suffix(.body))]
    Status {
        method: &'static str,
        url: String,
        status: StatusCode,
        body: String,
    },
    /// The SSE response is not an event stream.
    #[error("GET {url}: expected content-type text/event-stream, got {content_type}")]
    NotEventStream { url: String, content_type: String },
    /// Nothing (or no `endpoint` event) arrived within the connect timeout.
    #[error("GET {url}: timed out after {timeout:?} waiting for {waiting_for}")]
    Timeout {
        url: String,
        timeout: Duration,
        waiting_for: &'static str,
    },
    /// The event stream ended or failed before it sent an `endpoint` event.
    #[error("GET {url}: stream ended before the endpoint event: {detail}")]
    NoEndpoint { url: String, detail: String },
    /// The `endpoint` event's data is not a usable URL.
    #[error("GET {url}: invalid endpoint {endpoint:?}: {detail}")]
    InvalidEndpoint {
        url: String,
        endpoint: String,
        detail: String,
    },
    /// The `endpoint` event points to another origin than the SSE URL.
    #[error(
        "GET {url}: refusing endpoint {endpoint} on another origin (scheme, host and port must match)"
    )]
    CrossOriginEndpoint { url: String, endpoint: String },
    /// An outgoing message could not be serialized.
    #[error("POST {url}: cannot serialize the JSON-RPC message: {source}")]
    Serialize {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    /// `send` was called after `close`.
    #[error("POST {url}: transport is closed")]
    Closed { url: String },
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

/// A request that got no response, named by method and URL; a timeout says so.
pub(super) fn request_error(
    method: &'static str,
    url: &Url,
    error: reqwest::Error,
) -> SseTransportError {
    let detail = if error.is_timeout() {
        format!("timed out ({})", error_chain(&error.without_url()))
    } else {
        error_chain(&error.without_url())
    };
    SseTransportError::Request {
        method,
        url: url.to_string(),
        detail,
    }
}

/// Up to [`MAX_ERROR_BODY_CHARS`] characters of an error response's body, on one line.
pub(super) async fn body_snippet(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    let read = async {
        // A character is at most 4 bytes in UTF-8.
        while bytes.len() < MAX_ERROR_BODY_CHARS * 4 {
            match response.chunk().await {
                Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
    };
    // Whatever arrived before the deadline is still worth quoting.
    let _ = tokio::time::timeout(ERROR_BODY_TIMEOUT, read).await;
    let text = String::from_utf8_lossy(&bytes);
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate_chars(&one_line, MAX_ERROR_BODY_CHARS)
}

/// The first `max` characters of `text`, with `…` appended when something was cut.
pub(super) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_is_by_characters() {
        assert_eq!(truncate_chars("héllo", 3), "hél…");
        assert_eq!(truncate_chars("héllo", 5), "héllo");
    }
}
