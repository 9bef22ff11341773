//! Client side of MCP's legacy HTTP+SSE transport (protocol 2024-11-05), which rmcp no longer ships.
//! The client opens a long-lived `GET` event stream, learns from its first `endpoint` event where to
//! `POST` its JSON-RPC messages, and receives the server's messages as `message` events on that stream.
//! A background task reads the stream into a bounded channel, so nothing is lost between `receive()`
//! calls; when the stream ends the transport reports end of input and leaves reconnecting to the caller.
//! Errors live in `error`, the parsing of the body into events and its size cap in `stream`, the
//! meaning of events and the reader task in `reader`.

mod error;
mod reader;
mod stream;
#[cfg(test)]
mod tests;

use std::{borrow::Cow, fmt, time::Duration};

use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use rmcp::{
    RoleClient,
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use url::Url;

pub use error::SseTransportError;

use crate::wire::core_tasks::DownstreamWire;
use error::{body_snippet, request_error};
use reader::{Incoming, interpret, read_events};
use stream::{event_stream, stream_error_detail};

/// Largest single SSE event accepted by default; a larger one drops the connection.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;
/// Messages buffered between the stream reader and `receive()`.
const CHANNEL_CAPACITY: usize = 64;

/// Legacy HTTP+SSE client transport for [`RoleClient`].
pub struct SseClientTransport {
    client: reqwest::Client,
    headers: HeaderMap,
    /// Current POST URL; the reader task updates it on later `endpoint` events.
    endpoint: watch::Receiver<Url>,
    messages: mpsc::Receiver<RxJsonRpcMessage<RoleClient>>,
    cancel: CancellationToken,
    reader: Option<JoinHandle<()>>,
    closed: bool,
    /// Bounds each POST: a server that never answers one (server-everything does that for an
    /// unknown session) must not hold a request forever.
    post_timeout: Duration,
    /// 2025-11-25 tasks' raw path (`wire::core_tasks`).
    wire: DownstreamWire,
}

impl fmt::Debug for SseClientTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseClientTransport")
            .field("endpoint", &self.endpoint.borrow().as_str())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl SseClientTransport {
    /// Opens the SSE stream (GET `url`, `Accept: text/event-stream`, plus `headers`), waits (up to `connect_timeout`) for the
    /// `endpoint` event, resolves its data against `url`, and refuses an endpoint on another origin (scheme/host/port).
    ///
    /// `client` should have no total request timeout (`ClientBuilder::timeout`) and no read timeout
    /// shorter than the server's idle gaps: both apply to the long-lived event stream too and would cut it.
    pub async fn connect(
        client: reqwest::Client,
        url: Url,
        headers: HeaderMap,
        connect_timeout: Duration,
        max_event_bytes: usize,
    ) -> Result<Self, SseTransportError> {
        let deadline = Instant::now() + connect_timeout;
        let timeout = |waiting_for| SseTransportError::Timeout {
            url: url.to_string(),
            timeout: connect_timeout,
            waiting_for,
        };

        let mut get_headers = headers.clone();
        get_headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        let request = client.get(url.clone()).headers(get_headers).send();
        let response = tokio::time::timeout_at(deadline, request)
            .await
            .map_err(|_| timeout("the response"))?
            .map_err(|e| request_error("GET", &url, e))?;

        let status = response.status();
        if !status.is_success() {
            return Err(SseTransportError::Status {
                method: "GET",
                url: url.into(),
                status,
                body: body_snippet(response).await,
            });
        }
        if let Some(content_type) = response.headers().get(CONTENT_TYPE) {
            let content_type = String::from_utf8_lossy(content_type.as_bytes()).into_owned();
            if !content_type
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("text/event-stream")
            {
                return Err(SseTransportError::NotEventStream {
                    url: url.into(),
                    content_type,
                });
            }
        }

        let mut events = event_stream(response, max_event_bytes);
        let (message_tx, message_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let wire = DownstreamWire::default();
        let endpoint = loop {
            let next = tokio::time::timeout_at(deadline, events.next())
                .await
                .map_err(|_| timeout("the endpoint event"))?;
            let event = match next {
                Some(Ok(event)) => event,
                Some(Err(e)) => {
                    return Err(SseTransportError::NoEndpoint {
                        url: url.into(),
                        detail: stream_error_detail(&e),
                    });
                }
                None => {
                    return Err(SseTransportError::NoEndpoint {
                        url: url.into(),
                        detail: "end of stream".to_owned(),
                    });
                }
            };
            match interpret(event, &url, &wire)? {
                Incoming::Endpoint(endpoint) => break endpoint,
                Incoming::Message(message) => {
                    // A message before the endpoint is unusual; keep it if there is room.
                    if message_tx.try_send(*message).is_err() {
                        tracing::warn!(%url, "dropping a message received before the endpoint event");
                    }
                }
                Incoming::Ignored => {}
            }
        };
        tracing::debug!(%url, %endpoint, "legacy SSE transport connected");

        let (endpoint_tx, endpoint_rx) = watch::channel(endpoint);
        let cancel = CancellationToken::new();
        let reader = tokio::spawn(read_events(
            wire.clone(),
            events,
            url,
            max_event_bytes,
            message_tx,
            endpoint_tx,
            cancel.clone(),
        ));
        Ok(Self {
            client,
            headers,
            endpoint: endpoint_rx,
            messages: message_rx,
            cancel,
            reader: Some(reader),
            closed: false,
            post_timeout: connect_timeout.max(Duration::from_secs(10)),
            wire,
        })
    }

    /// The URL messages are currently POSTed to.
    pub fn endpoint(&self) -> Url {
        self.endpoint.borrow().clone()
    }
}

impl Drop for SseClientTransport {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Transport<RoleClient> for SseClientTransport {
    type Error = SseTransportError;

    fn name() -> Cow<'static, str> {
        "legacy-sse".into()
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let url = self.endpoint.borrow().clone();
        let closed = self.closed;
        let client = self.client.clone();
        let post_timeout = self.post_timeout;
        let mut headers = self.headers.clone();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let body = serde_json::to_vec(&item);
        self.wire.sent(&item);
        async move {
            if closed {
                return Err(SseTransportError::Closed { url: url.into() });
            }
            let body = body.map_err(|source| SseTransportError::Serialize {
                url: url.to_string(),
                source,
            })?;
            let response = client
                .post(url.clone())
                .timeout(post_timeout)
                .headers(headers)
                .body(body)
                .send()
                .await
                .map_err(|e| request_error("POST", &url, e))?;
            let status = response.status();
            if status.is_success() {
                Ok(())
            } else {
                Err(SseTransportError::Status {
                    method: "POST",
                    url: url.into(),
                    status,
                    body: body_snippet(response).await,
                })
            }
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        if self.closed {
            return None;
        }
        self.messages.recv().await
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.closed = true;
        self.cancel.cancel();
        self.messages.close();
        if let Some(reader) = self.reader.take()
            && let Err(e) = reader.await
        {
            tracing::warn!(error = %e, "legacy SSE reader task failed");
        }
        Ok(())
    }
}
