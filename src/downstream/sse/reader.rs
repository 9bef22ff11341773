//! The reading side of a legacy SSE connection: what each event means to the transport (an
//! `endpoint` to POST to, a JSON-RPC message, or nothing), and the background task that forwards
//! messages and endpoint updates until the stream ends. The transport waits for the first endpoint
//! itself; turning bytes into events is `stream`'s job.

use futures::StreamExt;
use rmcp::{RoleClient, service::RxJsonRpcMessage};
use sse_stream::Sse;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use url::Url;

use super::error::{SseTransportError, truncate_chars};
use super::stream::{EventStream, is_too_large, stream_error_detail};
use crate::wire::core_tasks::DownstreamWire;

/// How much of an unparsable event is quoted in the warning.
const MAX_LOGGED_EVENT_CHARS: usize = 200;

/// What one SSE event means to the transport.
pub(super) enum Incoming {
    Endpoint(Url),
    Message(Box<RxJsonRpcMessage<RoleClient>>),
    Ignored,
}

/// Classifies one event; only a bad `endpoint` event is an error.
pub(super) fn interpret(
    event: Sse,
    sse_url: &Url,
    wire: &DownstreamWire,
) -> Result<Incoming, SseTransportError> {
    // Per the SSE spec an event without an `event:` field is of type "message".
    let kind = event.event.as_deref().unwrap_or("message");
    match kind {
        "endpoint" => {
            let data = event.data.unwrap_or_default();
            resolve_endpoint(sse_url, data.trim()).map(Incoming::Endpoint)
        }
        "message" => {
            let Some(data) = event.data else {
                return Ok(Incoming::Ignored);
            };
            let decoded = match wire.received(data.as_bytes()) {
                Some(value) => serde_json::from_value(value),
                None => serde_json::from_str::<RxJsonRpcMessage<RoleClient>>(&data),
            };
            match decoded {
                Ok(message) => Ok(Incoming::Message(Box::new(message))),
                Err(e) => {
                    tracing::warn!(
                        url = %sse_url,
                        error = %e,
                        data = %truncate_chars(&data, MAX_LOGGED_EVENT_CHARS),
                        "skipping an SSE message that is not a JSON-RPC message"
                    );
                    Ok(Incoming::Ignored)
                }
            }
        }
        other => {
            tracing::debug!(url = %sse_url, event = other, "ignoring SSE event");
            Ok(Incoming::Ignored)
        }
    }
}

/// Resolves an `endpoint` event's data against the SSE URL and enforces the same-origin rule.
fn resolve_endpoint(sse_url: &Url, data: &str) -> Result<Url, SseTransportError> {
    let invalid = |detail: String| SseTransportError::InvalidEndpoint {
        url: sse_url.to_string(),
        endpoint: data.to_owned(),
        detail,
    };
    if data.is_empty() {
        return Err(invalid("empty".to_owned()));
    }
    let endpoint = sse_url.join(data).map_err(|e| invalid(e.to_string()))?;
    if endpoint.origin() != sse_url.origin() {
        return Err(SseTransportError::CrossOriginEndpoint {
            url: sse_url.to_string(),
            endpoint: endpoint.into(),
        });
    }
    Ok(endpoint)
}

/// Background task: forwards `message` events and applies `endpoint` updates until the stream
/// ends, fails, or the transport is closed. Dropping `messages` makes `receive()` return `None`.
pub(super) async fn read_events(
    wire: DownstreamWire,
    mut events: EventStream,
    sse_url: Url,
    limit: usize,
    messages: mpsc::Sender<RxJsonRpcMessage<RoleClient>>,
    endpoint: watch::Sender<Url>,
    cancel: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            () = cancel.cancelled() => return,
            next = events.next() => next,
        };
        let event = match next {
            Some(Ok(event)) => event,
            Some(Err(e)) => {
                if is_too_large(&e) {
                    tracing::error!(
                        url = %sse_url,
                        limit,
                        "SSE event exceeds the size limit; dropping the connection"
                    );
                } else {
                    tracing::warn!(url = %sse_url, error = %stream_error_detail(&e), "SSE stream failed");
                }
                return;
            }
            None => {
                tracing::info!(url = %sse_url, "SSE stream ended");
                return;
            }
        };
        match interpret(event, &sse_url, &wire) {
            Ok(Incoming::Message(message)) => {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    sent = messages.send(*message) => if sent.is_err() { return },
                }
            }
            Ok(Incoming::Endpoint(new_endpoint)) => {
                endpoint.send_if_modified(|current| {
                    if *current == new_endpoint {
                        false
                    } else {
                        tracing::info!(url = %sse_url, endpoint = %new_endpoint, "SSE endpoint changed");
                        *current = new_endpoint;
                        true
                    }
                });
            }
            Ok(Incoming::Ignored) => {}
            Err(e) => tracing::warn!(error = %e, "ignoring endpoint update"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_resolution() {
        let sse = Url::parse("http://localhost:3001/mcp/sse").unwrap();
        assert_eq!(
            resolve_endpoint(&sse, "/message?sessionId=1")
                .unwrap()
                .as_str(),
            "http://localhost:3001/message?sessionId=1"
        );
        assert_eq!(
            resolve_endpoint(&sse, "messages/").unwrap().as_str(),
            "http://localhost:3001/mcp/messages/"
        );
        assert!(resolve_endpoint(&sse, "http://localhost:3001/x").is_ok());
        assert!(resolve_endpoint(&sse, "https://localhost:3001/x").is_err());
        assert!(resolve_endpoint(&sse, "http://localhost:3002/x").is_err());
        assert!(resolve_endpoint(&sse, "//evil.example/x").is_err());
        assert!(resolve_endpoint(&sse, "").is_err());
        let default_port = Url::parse("http://localhost/sse").unwrap();
        assert!(resolve_endpoint(&default_port, "http://localhost:80/m").is_ok());
    }
}
