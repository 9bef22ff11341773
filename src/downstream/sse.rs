//! Client side of MCP's legacy HTTP+SSE transport (protocol 2024-11-05), which rmcp no longer ships.
//! The client opens a long-lived `GET` event stream, learns from its first `endpoint` event where to
//! `POST` its JSON-RPC messages, and receives the server's messages as `message` events on that stream.
//! A background task reads the stream into a bounded channel, so nothing is lost between `receive()`
//! calls; when the stream ends the transport reports end of input and leaves reconnecting to the caller.

use std::{borrow::Cow, fmt, time::Duration};

use futures::{StreamExt, stream::BoxStream};
use reqwest::{
    StatusCode,
    header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue},
};
use rmcp::{
    RoleClient,
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use sse_stream::{Sse, SseStream};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::telemetry::error_chain;
use crate::wire::core_tasks::DownstreamWire;

/// Largest single SSE event accepted by default; a larger one drops the connection.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;
/// Messages buffered between the stream reader and `receive()`.
const CHANNEL_CAPACITY: usize = 64;
/// Longest response body (in characters) quoted in an error message.
const MAX_ERROR_BODY_CHARS: usize = 512;
/// How much of an unparsable event is quoted in the warning.
const MAX_LOGGED_EVENT_CHARS: usize = 200;
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
    /// 2025-11-25 tasks' raw path (`router::core_tasks`).
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

type EventStream = BoxStream<'static, Result<Sse, sse_stream::Error>>;

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

/// What one SSE event means to the transport.
enum Incoming {
    Endpoint(Url),
    Message(Box<RxJsonRpcMessage<RoleClient>>),
    Ignored,
}

/// Classifies one event; only a bad `endpoint` event is an error.
fn interpret(
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
async fn read_events(
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

/// Error of the byte stream fed to the SSE parser.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("{}", error_chain(.0))]
    Read(reqwest::Error),
    #[error("event larger than the size limit (security.maxMessageBytes)")]
    TooLarge,
}

fn is_too_large(error: &sse_stream::Error) -> bool {
    matches!(error, sse_stream::Error::Body(e) if matches!(e.downcast_ref::<BodyError>(), Some(BodyError::TooLarge)))
}

fn stream_error_detail(error: &sse_stream::Error) -> String {
    match error {
        sse_stream::Error::Body(e) => e.to_string(),
        other => format!("malformed event stream: {other}"),
    }
}

/// Turns the response body into a stream of SSE events, with the per-event size cap applied
/// to the raw bytes before the parser buffers them.
fn event_stream(response: reqwest::Response, limit: usize) -> EventStream {
    let mut guard = EventSizeGuard::new(limit);
    let mut failed = false;
    let bytes = response.bytes_stream().map(move |chunk| {
        if failed {
            return Err(BodyError::TooLarge);
        }
        let chunk = chunk.map_err(|e| BodyError::Read(e.without_url()))?;
        if guard.observe(&chunk) {
            Ok(chunk)
        } else {
            failed = true;
            Err(BodyError::TooLarge)
        }
    });
    Box::pin(SseStream::from_bytes_stream(bytes))
}

/// Tracks how many bytes the SSE parser would hold for the event being received: the data of
/// the completed lines of the current event (comments excluded) plus the line in progress.
#[derive(Debug)]
struct EventSizeGuard {
    limit: usize,
    event_bytes: usize,
    line_bytes: usize,
    line_is_comment: bool,
    after_cr: bool,
}

impl EventSizeGuard {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            event_bytes: 0,
            line_bytes: 0,
            line_is_comment: false,
            after_cr: false,
        }
    }

    /// Feeds a chunk; returns false once the current event exceeds the limit.
    fn observe(&mut self, chunk: &[u8]) -> bool {
        for &byte in chunk {
            let after_cr = std::mem::take(&mut self.after_cr);
            match byte {
                b'\n' if after_cr => {}
                b'\r' | b'\n' => {
                    self.end_line();
                    self.after_cr = byte == b'\r';
                }
                _ => {
                    if self.line_bytes == 0 {
                        self.line_is_comment = byte == b':';
                    }
                    self.line_bytes += 1;
                }
            }
            if self.event_bytes.saturating_add(self.line_bytes) > self.limit {
                return false;
            }
        }
        true
    }

    fn end_line(&mut self) {
        if self.line_bytes == 0 {
            // A blank line dispatches the event.
            self.event_bytes = 0;
        } else if !self.line_is_comment {
            // +1 for the newline the parser inserts between data lines.
            self.event_bytes = self.event_bytes.saturating_add(self.line_bytes + 1);
        }
        self.line_bytes = 0;
        self.line_is_comment = false;
    }
}

fn request_error(method: &'static str, url: &Url, error: reqwest::Error) -> SseTransportError {
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
async fn body_snippet(mut response: reqwest::Response) -> String {
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
fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::{Arc, Mutex};

    use tokio::{
        io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
        net::{TcpListener, TcpStream},
    };

    fn http_client() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::new()
    }

    const TIMEOUT: Duration = Duration::from_secs(5);

    /// A request the mock server received.
    #[derive(Debug, Clone)]
    struct Received {
        method: String,
        target: String,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Received {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// A minimal HTTP/1.1 server: `GET /sse` streams whatever the test pushes (the stream ends
    /// when the test drops its sender), `POST /fail…` answers 500 with a long body, other POSTs
    /// answer 202, and any other GET answers 404.
    struct MockServer {
        base: Url,
        requests: mpsc::UnboundedReceiver<Received>,
    }

    impl MockServer {
        async fn start() -> (Self, mpsc::UnboundedSender<Vec<u8>>) {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
            let (event_tx, event_rx) = mpsc::unbounded_channel();
            let events = Arc::new(Mutex::new(Some(event_rx)));
            let (request_tx, requests) = mpsc::unbounded_channel();
            tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    tokio::spawn(serve_connection(socket, events.clone(), request_tx.clone()));
                }
            });
            (Self { base, requests }, event_tx)
        }

        fn url(&self, path: &str) -> Url {
            self.base.join(path).unwrap()
        }

        async fn next_request(&mut self) -> Received {
            tokio::time::timeout(TIMEOUT, self.requests.recv())
                .await
                .expect("no request within timeout")
                .expect("mock server gone")
        }
    }

    async fn serve_connection(
        socket: TcpStream,
        events: Arc<Mutex<Option<mpsc::UnboundedReceiver<Vec<u8>>>>>,
        requests: mpsc::UnboundedSender<Received>,
    ) {
        let mut reader = BufReader::new(socket);
        loop {
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                return;
            }
            let mut parts = request_line.split_whitespace();
            let method = parts.next().unwrap_or_default().to_owned();
            let target = parts.next().unwrap_or_default().to_owned();
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).await.unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap();
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            let length = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.parse::<usize>().unwrap());
            let mut body = vec![0; length];
            reader.read_exact(&mut body).await.unwrap();
            let received = Received {
                method: method.clone(),
                target: target.clone(),
                headers,
                body: String::from_utf8(body).unwrap(),
            };
            let _ = requests.send(received);
            let socket = reader.get_mut();
            match (method.as_str(), target.as_str()) {
                ("GET", "/sse") => {
                    let Some(mut events) = events.lock().unwrap().take() else {
                        return;
                    };
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n";
                    if socket.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    while let Some(chunk) = events.recv().await {
                        if socket.write_all(&chunk).await.is_err() {
                            return;
                        }
                    }
                    let _ = socket.shutdown().await;
                    return;
                }
                ("POST", t) if t.starts_with("/fail") => {
                    let body = "é".repeat(2000);
                    let response = format!(
                        "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    socket.write_all(response.as_bytes()).await.unwrap();
                }
                ("POST", _) => {
                    let response = "HTTP/1.1 202 Accepted\r\ncontent-length: 8\r\n\r\nAccepted";
                    socket.write_all(response.as_bytes()).await.unwrap();
                }
                _ => {
                    let body = "<pre>\n  Cannot GET  it\n</pre>";
                    let response = format!(
                        "HTTP/1.1 404 Not Found\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    socket.write_all(response.as_bytes()).await.unwrap();
                }
            }
        }
    }

    fn event(kind: &str, data: &str) -> Vec<u8> {
        format!("event: {kind}\ndata: {data}\n\n").into_bytes()
    }

    fn notification(method: &str) -> TxJsonRpcMessage<RoleClient> {
        serde_json::from_value(serde_json::json!({"jsonrpc": "2.0", "method": method})).unwrap()
    }

    fn test_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-test", HeaderValue::from_static("yes"));
        headers
    }

    async fn connected(
        server: &MockServer,
        events: &mpsc::UnboundedSender<Vec<u8>>,
    ) -> SseClientTransport {
        events
            .send(event("endpoint", "/message?sessionId=abc"))
            .unwrap();
        SseClientTransport::connect(
            http_client(),
            server.url("/sse"),
            test_headers(),
            TIMEOUT,
            MAX_EVENT_BYTES,
        )
        .await
        .unwrap()
    }

    async fn receive(transport: &mut SseClientTransport) -> Option<RxJsonRpcMessage<RoleClient>> {
        tokio::time::timeout(TIMEOUT, transport.receive())
            .await
            .expect("receive() hung")
    }

    #[tokio::test]
    async fn posts_to_endpoint_and_receives_messages() {
        let (mut server, events) = MockServer::start().await;
        let mut transport = connected(&server, &events).await;

        let get = server.next_request().await;
        assert_eq!((get.method.as_str(), get.target.as_str()), ("GET", "/sse"));
        assert_eq!(get.header("accept"), Some("text/event-stream"));
        assert_eq!(get.header("x-test"), Some("yes"));
        assert_eq!(
            transport.endpoint(),
            server.url("/message?sessionId=abc"),
            "endpoint resolved against the SSE URL"
        );

        transport
            .send(notification("notifications/initialized"))
            .await
            .unwrap();
        let post = server.next_request().await;
        assert_eq!(post.method, "POST");
        assert_eq!(post.target, "/message?sessionId=abc");
        assert_eq!(post.header("content-type"), Some("application/json"));
        assert_eq!(post.header("x-test"), Some("yes"));
        let body: serde_json::Value = serde_json::from_str(&post.body).unwrap();
        assert_eq!(body["method"], "notifications/initialized");

        // Unparsable and unknown events are skipped; comments and default-typed events work.
        events.send(event("message", "not json")).unwrap();
        events.send(event("ping", "{}")).unwrap();
        events.send(b": keep-alive\n\n".to_vec()).unwrap();
        events
            .send(b"data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\r\n\r\n".to_vec())
            .unwrap();
        let message = receive(&mut transport).await.expect("a message");
        let value = serde_json::to_value(&message).unwrap();
        assert_eq!(value["id"], 7);

        // A later endpoint event moves the POST URL; a cross-origin one is ignored.
        events.send(event("endpoint", "/other?s=2")).unwrap();
        events
            .send(event("endpoint", "http://example.com/evil"))
            .unwrap();
        events
            .send(event("message", r#"{"jsonrpc":"2.0","id":8,"result":{}}"#))
            .unwrap();
        assert!(receive(&mut transport).await.is_some());
        assert_eq!(transport.endpoint(), server.url("/other?s=2"));
        transport
            .send(notification("notifications/x"))
            .await
            .unwrap();
        assert_eq!(server.next_request().await.target, "/other?s=2");

        // End of stream: receive() returns None.
        drop(events);
        assert!(receive(&mut transport).await.is_none());
        transport.close().await.unwrap();
    }

    #[tokio::test]
    async fn post_error_names_status_and_truncates_body() {
        let (server, events) = MockServer::start().await;
        events.send(event("endpoint", "/fail")).unwrap();
        let mut transport = SseClientTransport::connect(
            http_client(),
            server.url("/sse"),
            HeaderMap::new(),
            TIMEOUT,
            MAX_EVENT_BYTES,
        )
        .await
        .unwrap();
        let error = transport
            .send(notification("notifications/initialized"))
            .await
            .unwrap_err()
            .to_string();
        let prefix = format!(
            "POST {}: HTTP 500 Internal Server Error: ",
            server.url("/fail")
        );
        assert!(error.starts_with(&prefix), "{error}");
        assert_eq!(error[prefix.len()..].chars().count(), 513, "512 chars + …");
    }

    #[tokio::test]
    async fn http_404_names_status_and_url() {
        let (server, _events) = MockServer::start().await;
        let url = server.url("/nope");
        let error = SseClientTransport::connect(
            http_client(),
            url.clone(),
            HeaderMap::new(),
            TIMEOUT,
            MAX_EVENT_BYTES,
        )
        .await
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            format!("GET {url}: HTTP 404 Not Found: <pre> Cannot GET it </pre>")
        );
    }

    #[tokio::test]
    async fn connection_refused_names_url() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/sse", listener.local_addr().unwrap())).unwrap();
        drop(listener);
        let error = SseClientTransport::connect(
            http_client(),
            url.clone(),
            HeaderMap::new(),
            TIMEOUT,
            MAX_EVENT_BYTES,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(error.starts_with(&format!("GET {url}: ")), "{error}");
        assert!(error.to_lowercase().contains("refused"), "{error}");
    }

    #[tokio::test]
    async fn cross_origin_first_endpoint_is_refused() {
        let (server, events) = MockServer::start().await;
        events
            .send(event("endpoint", "http://127.0.0.2:9/message"))
            .unwrap();
        let error = SseClientTransport::connect(
            http_client(),
            server.url("/sse"),
            HeaderMap::new(),
            TIMEOUT,
            MAX_EVENT_BYTES,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(error, SseTransportError::CrossOriginEndpoint { .. }),
            "{error}"
        );
    }

    #[tokio::test]
    async fn missing_endpoint_times_out_or_fails() {
        let (server, events) = MockServer::start().await;
        let error = SseClientTransport::connect(
            http_client(),
            server.url("/sse"),
            HeaderMap::new(),
            Duration::from_millis(300),
            MAX_EVENT_BYTES,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("timed out after 300ms waiting for the endpoint event"),
            "{error}"
        );

        let (server, events2) = MockServer::start().await;
        events2.send(event("message", "{}")).unwrap();
        drop(events2);
        let error = SseClientTransport::connect(
            http_client(),
            server.url("/sse"),
            HeaderMap::new(),
            TIMEOUT,
            MAX_EVENT_BYTES,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("stream ended before the endpoint event"),
            "{error}"
        );
        drop(events);
    }

    #[tokio::test]
    async fn oversized_event_drops_connection() {
        let (server, events) = MockServer::start().await;
        let mut transport = connected(&server, &events).await;
        let mut big = b"event: message\ndata: ".to_vec();
        big.resize(big.len() + MAX_EVENT_BYTES + 1, b'a');
        events.send(big).unwrap();
        assert!(receive(&mut transport).await.is_none());
    }

    #[tokio::test]
    async fn close_stops_the_stream() {
        let (server, events) = MockServer::start().await;
        let mut transport = connected(&server, &events).await;
        transport.close().await.unwrap();
        assert!(receive(&mut transport).await.is_none());
        // The reader dropped the connection, so the mock's writes start failing.
        let mut failed = false;
        for _ in 0..50 {
            if events.send(b": ping\n\n".to_vec()).is_err() {
                failed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(failed, "the SSE connection is still open after close()");
    }

    #[test]
    fn size_guard_counts_one_event() {
        let mut guard = EventSizeGuard::new(12);
        assert!(guard.observe(b"data: 1234\n\n"), "11 bytes, then reset");
        assert!(guard.observe(b": comment\r\n: comment\r\n: comment\r"));
        assert!(
            guard.observe(b"\ndata:\r\n\r\ndata: 12"),
            "CRLF split across chunks"
        );
        assert!(guard.observe(b"345"));
        assert!(!guard.observe(b"67"), "13 bytes in one event");
        let mut guard = EventSizeGuard::new(12);
        assert!(
            !guard.observe(b": a long comment line"),
            "an unfinished line counts"
        );
    }

    #[test]
    fn truncation_is_by_characters() {
        assert_eq!(truncate_chars("héllo", 3), "hél…");
        assert_eq!(truncate_chars("héllo", 5), "héllo");
    }

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
