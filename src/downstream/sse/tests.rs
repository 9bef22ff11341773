//! The transport against a minimal HTTP/1.1 server: connecting, POSTing, receiving, errors that
//! name their request, the size cap and closing.

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
