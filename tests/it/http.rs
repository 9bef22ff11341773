//! Serving over Streamable HTTP: real HTTP, the rmcp client and raw requests for the edge cases.

use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use rmcp::model::*;
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

use crate::support::*;

/// The proxy serving HTTP, killed on drop.
pub(crate) struct HttpProxy {
    child: ProxyChild,
    pub(crate) url: String,
    pub(crate) log: Log,
    _dir: tempfile::TempDir,
}

/// No rate limits, as by default, spelled out so that tests about other things hold whatever the
/// defaults become (every test client shares 127.0.0.1).
pub(crate) const NO_LIMITS: &[&str] = &["--rate-limit-tools", "0", "--rate-limit-requests", "0"];

impl HttpProxy {
    pub(crate) async fn start(servers: Value, args: &[&str]) -> HttpProxy {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("mcp.json");
        std::fs::write(&config, json!({"mcpServers": servers}).to_string()).unwrap();
        let mut child = ProxyChild::spawn(
            tokio::process::Command::new(proxy_bin())
                .args(["--transport", "streamable-http", "--port", "0"])
                .arg("--config")
                .arg(&config)
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .args(args)
                .env_remove("PLUGGEDIN_API_KEY")
                .env("RUST_LOG", "info,pluggedin_mcp_proxy=debug")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        );
        let log = Log::capture(child.stderr.take().unwrap());
        let listening = listening_url(&log).await;
        let port = url::Url::parse(&listening).unwrap().port().unwrap();
        // Reached on loopback, whatever --host it was given.
        HttpProxy {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
            log,
            _dir: dir,
        }
    }

    pub(crate) async fn client(&self) -> RunningService<RoleClient, TestClient> {
        self.client_with(StreamableHttpClientTransportConfig::with_uri(
            self.url.as_str(),
        ))
        .await
    }

    async fn client_with(
        &self,
        config: StreamableHttpClientTransportConfig,
    ) -> RunningService<RoleClient, TestClient> {
        let transport = StreamableHttpClientTransport::from_config(config);
        TestClient::new().serve(transport).await.unwrap()
    }

    /// A client whose sampling answers say `label`, so a test can tell who answered.
    async fn labelled_client(&self, label: &str) -> RunningService<RoleClient, TestClient> {
        let mut client = TestClient::new();
        client.label = label.into();
        client
            .serve(StreamableHttpClientTransport::from_uri(self.url.as_str()))
            .await
            .unwrap()
    }

    fn post(&self, body: Value) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .json(&body)
    }

    /// Initializes a raw session and returns its id.
    async fn raw_session(&self, token: Option<&str>) -> String {
        let mut request = self.post(initialize_body());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned()
    }
}

impl Drop for HttpProxy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- proxy stderr ---\n{}", self.log.text());
        }
    }
}

fn initialize_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
}

fn call_body(id: u64, tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": arguments}})
}

async fn wait_tool(client: &RunningService<RoleClient, TestClient>, tool: &str) {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let tools = client.peer().list_all_tools().await.unwrap();
            if tools.iter().any(|t| t.name == tool) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(found.is_ok(), "tool {tool} never appeared");
}

async fn call_text(
    client: &RunningService<RoleClient, TestClient>,
    tool: &str,
    arguments: Value,
) -> String {
    let Value::Object(arguments) = arguments else {
        panic!()
    };
    let result = client
        .peer()
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    text_of(&result)
}

#[tokio::test]
async fn the_rmcp_client_initializes_lists_and_calls_over_http() {
    let proxy = HttpProxy::start(json!({"demo": demo()}), NO_LIMITS).await;
    let client = proxy.client().await;
    assert_eq!(
        client
            .peer()
            .peer_info()
            .unwrap()
            .server_info
            .as_ref()
            .unwrap()
            .name,
        "PluggedinMCP"
    );
    wait_tool(&client, "demo__echo").await;
    assert_eq!(
        call_text(&client, "demo__echo", json!({"message": "over http"})).await,
        "Echo: over http"
    );
    let prompts = client.peer().list_all_prompts().await.unwrap();
    assert!(prompts.iter().any(|p| p.name == "demo__test_simple_prompt"));
}

/// A session opened with raw requests and acknowledged (`notifications/initialized`), for
/// looking at the HTTP answers themselves.
struct RawSession {
    client: reqwest::Client,
    url: String,
    id: String,
}

impl RawSession {
    async fn open(proxy: &HttpProxy) -> RawSession {
        let session = RawSession {
            client: reqwest::Client::new(),
            url: proxy.url.clone(),
            id: proxy.raw_session(None).await,
        };
        let ack = session
            .post(
                "application/json, text/event-stream",
                json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
            )
            .await
            .unwrap();
        assert_eq!(ack.status(), 202);
        session
    }

    /// Posts `body` in this session, accepting `accept`.
    fn post(
        &self,
        accept: &str,
        body: Value,
    ) -> impl Future<Output = reqwest::Result<reqwest::Response>> + use<> {
        self.client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", accept)
            .header("mcp-session-id", &self.id)
            .json(&body)
            .send()
    }
}

#[tokio::test]
async fn json_only_and_sse_clients_both_get_answers() {
    let proxy = HttpProxy::start(json!({"demo": demo()}), NO_LIMITS).await;
    // The demo server joins in the background; its tools must be in the catalog first.
    proxy
        .log
        .wait_for("connected server_info=pluggedin-demo-server")
        .await;
    let session = RawSession::open(&proxy).await;
    let send = |accept: &'static str, body: Value| session.post(accept, body);
    let json = send(
        "application/json",
        call_body(2, "demo__add", json!({"a": 1, "b": 2})),
    )
    .await
    .unwrap();
    assert_eq!(json.headers()["content-type"], "application/json");
    let json: Value = json.json().await.unwrap();
    assert_eq!(json["id"], 2);
    assert_eq!(json["result"]["content"][0]["text"], "3");
    // A client that takes both gets a quick answer (the first message of its stream) as JSON, a
    // slower one on its stream (how quick depends on the machine's load): asked until an answer
    // comes as JSON, each answer checked in the form it came in…
    let deadline = tokio::time::Instant::now() + WAIT;
    for id in 100.. {
        let answer = send(
            "application/json, text/event-stream",
            call_body(id, "demo__add", json!({"a": 2, "b": 2})),
        )
        .await
        .unwrap();
        let as_json = answer.headers()["content-type"] == "application/json";
        let answer = message_of(answer).await;
        assert_eq!(answer["id"], id, "{answer}");
        assert_eq!(answer["result"]["content"][0]["text"], "4", "{answer}");
        if as_json {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no answer came as JSON"
        );
    }
    // …and the stream itself when something comes before the answer: progress, in order.
    let sse = send(
        "application/json, text/event-stream",
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
            "name": "demo__test_tool_with_progress", "arguments": {},
            "_meta": {"progressToken": "p-4"}}}),
    )
    .await
    .unwrap();
    assert!(
        sse.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = sse.text().await.unwrap();
    let messages: Vec<Value> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str(data.trim()).ok())
        .collect();
    let progress = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .count();
    assert!(progress > 0, "no progress on the stream: {text}");
    let last = messages.last().unwrap();
    assert_eq!(last["id"], 4, "the answer comes last: {text}");
    assert!(last.get("result").is_some(), "{text}");
}

#[tokio::test]
async fn sse_answers_keeps_every_answer_on_a_stream() {
    let args = [NO_LIMITS, &["--sse-answers"]].concat();
    let proxy = HttpProxy::start(json!({"demo": demo()}), &args).await;
    proxy
        .log
        .wait_for("connected server_info=pluggedin-demo-server")
        .await;
    let session = RawSession::open(&proxy).await;
    let send = |accept: &'static str, body: Value| session.post(accept, body);
    // The quick call that gets a JSON body by default comes on its own SSE stream here.
    let quick = send(
        "application/json, text/event-stream",
        call_body(3, "demo__add", json!({"a": 2, "b": 2})),
    )
    .await
    .unwrap();
    let content_type = quick.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let text = quick.text().await.unwrap();
    let answer: Value = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .find_map(|data| serde_json::from_str(data.trim()).ok())
        .unwrap_or_else(|| panic!("no message on the stream: {text}"));
    assert_eq!(answer["id"], 3, "{text}");
    assert_eq!(answer["result"]["content"][0]["text"], "4", "{text}");
    // A client that accepts only JSON still gets JSON.
    let json = send(
        "application/json",
        call_body(4, "demo__add", json!({"a": 1, "b": 2})),
    )
    .await
    .unwrap();
    assert_eq!(json.headers()["content-type"], "application/json");
    let json: Value = json.json().await.unwrap();
    assert_eq!(json["result"]["content"][0]["text"], "3");
}

/// The demo server over Streamable HTTP, whose transport says which request a sampling request
/// belongs to.
async fn demo_over_http() -> (Background, Value) {
    let server = Background::start(demo_bin(), &["--http", "0"], &[], "listening on http://").await;
    let url = listening_url(&server.log).await;
    (server, json!({"url": url}))
}

#[tokio::test]
async fn two_hundred_concurrent_sessions_do_not_cross_talk() {
    let (_demo, demo_config) = demo_over_http().await;
    let proxy = HttpProxy::start(json!({"demo": demo_config}), NO_LIMITS).await;
    let first = proxy.client().await;
    wait_tool(&first, "demo__echo").await;
    let sessions = (0..200).map(|i| {
        let proxy = &proxy;
        async move {
            let mut client = TestClient::new();
            client.label = format!("session {i}");
            let mut events = client.subscribe();
            let transport = StreamableHttpClientTransport::from_uri(proxy.url.as_str());
            let service = client.serve(transport).await.unwrap();
            let text = call_text(
                &service,
                "demo__echo",
                json!({"message": format!("from {i}")}),
            )
            .await;
            assert_eq!(text, format!("Echo: from {i}"));
            let sampled =
                call_text(&service, "demo__test_sampling", json!({"prompt": "who"})).await;
            assert!(
                sampled.contains(&format!("session {i})")),
                "session {i} got {sampled}"
            );
            // Progress of this session's call reaches this session.
            let mut params = CallToolRequestParams::new("demo__test_tool_with_progress");
            params.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(
                NumberOrString::Number(i),
            )));
            let handle = service
                .peer()
                .send_request_with_option(
                    ClientRequest::CallToolRequest(Request::new(params)),
                    Default::default(),
                )
                .await
                .unwrap();
            let token = handle.progress_token.clone();
            handle.await_response().await.unwrap();
            let progress = tokio::time::timeout(WAIT, async {
                loop {
                    if let Ok(Event::Progress(progress)) = events.recv().await {
                        return progress;
                    }
                }
            })
            .await
            .expect("progress reached the session");
            assert_eq!(progress.progress_token, token);
            service.cancel().await.unwrap();
        }
    });
    futures::future::join_all(sessions).await;
}

#[tokio::test]
async fn sampling_goes_to_the_session_that_caused_it() {
    let (_demo, demo_config) = demo_over_http().await;
    let proxy = HttpProxy::start(json!({"demo": demo_config}), NO_LIMITS).await;
    let alice = proxy.labelled_client("alice").await;
    let bob = proxy.labelled_client("bob").await;
    wait_tool(&alice, "demo__test_sampling").await;
    let (a, b) = tokio::join!(
        call_text(&alice, "demo__test_sampling", json!({"prompt": "a"})),
        call_text(&bob, "demo__test_sampling", json!({"prompt": "b"})),
    );
    assert!(a.contains("(alice)"), "{a}");
    assert!(b.contains("(bob)"), "{b}");
}

#[tokio::test]
async fn sampling_on_a_shared_stdio_server_never_reaches_another_session() {
    // Over stdio a legacy server's request carries nothing that ties it to one of our calls
    // (a 2026-07-28 server asks within the call's own answer); with two sessions calling at once
    // the proxy must refuse rather than guess.
    let legacy = json!({"command": demo_bin(), "protocol": "legacy"});
    let proxy = HttpProxy::start(json!({"demo": legacy}), NO_LIMITS).await;
    let alice = proxy.labelled_client("alice").await;
    let bob = proxy.labelled_client("bob").await;
    wait_tool(&alice, "demo__test_sampling").await;
    // Alone, a session gets its own answer.
    let alone = call_text(&alice, "demo__test_sampling", json!({"prompt": "a"})).await;
    assert!(alone.contains("(alice)"), "{alone}");
    // Each session holds a call in flight on the server; then both sample at once. Nothing in the
    // server's request says whose it is: both are refused, and neither gets the other's answer.
    let forwarded_before = proxy.log.text().matches(FORWARDED_CALL).count();
    let hold = |client: &RunningService<RoleClient, TestClient>| {
        let peer = client.peer().clone();
        async move {
            let mut ms = serde_json::Map::new();
            ms.insert("ms".into(), json!(600_000));
            let request = ClientRequest::CallToolRequest(Request::new(
                CallToolRequestParams::new("demo__sleep").with_arguments(ms),
            ));
            peer.send_request_with_option(request, Default::default())
                .await
                .unwrap()
        }
    };
    let holds = [hold(&alice).await, hold(&bob).await];
    wait_for_count(&proxy, FORWARDED_CALL, forwarded_before + 2).await;
    let sample = |client: &RunningService<RoleClient, TestClient>| {
        let peer = client.peer().clone();
        async move {
            let mut arguments = serde_json::Map::new();
            arguments.insert("prompt".into(), json!("x"));
            match peer
                .call_tool(
                    CallToolRequestParams::new("demo__test_sampling").with_arguments(arguments),
                )
                .await
            {
                Ok(result) => text_of(&result),
                Err(error) => error.to_string(),
            }
        }
    };
    let (a, b) = tokio::join!(sample(&alice), sample(&bob));
    for (text, me, other) in [(a, "alice", "bob"), (b, "bob", "alice")] {
        assert!(
            !text.contains(&format!("({other})")),
            "{me} received {other}'s answer: {text}"
        );
        assert!(
            text.contains(
                "sampling/createMessage from server \"demo\" refused: 2 client sessions have \
                 calls in flight on it"
            ),
            "{me}: {text}"
        );
    }
    for hold in holds {
        hold.cancel(None).await.unwrap();
    }
}

/// What the proxy logs when it sends a tool call on to a server (the demo here).
const FORWARDED_CALL: &str = "forwarding server=\"demo\" method=\"tools/call\"";

#[tokio::test]
async fn the_get_stream_receives_list_changed() {
    let proxy = HttpProxy::start(json!({"demo": demo()}), NO_LIMITS).await;
    let watcher_client = TestClient::new();
    let mut events = watcher_client.subscribe();
    let watcher = watcher_client
        .serve(StreamableHttpClientTransport::from_uri(proxy.url.as_str()))
        .await
        .unwrap();
    let actor = proxy.client().await;
    wait_tool(&actor, "demo__test_dynamic_tool").await;
    wait_tool(&watcher, "demo__test_dynamic_tool").await;
    while events.try_recv().is_ok() {}
    call_text(&actor, "demo__test_dynamic_tool", json!({})).await;
    let changed = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(Event::ToolsChanged) = events.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(
        changed.is_ok(),
        "the idle session got no list_changed:\n{}",
        proxy.log.text()
    );
}

#[tokio::test]
async fn delete_ends_a_session_and_unknown_ids_get_404() {
    let proxy = HttpProxy::start(json!({"demo": demo()}), NO_LIMITS).await;
    let session = proxy.raw_session(None).await;
    let delete = || {
        reqwest::Client::new()
            .delete(&proxy.url)
            .header("mcp-session-id", &session)
            .send()
    };
    // The original's answer: what the SDK clients expect of a DELETE (200 or 204).
    let deleted = delete().await.unwrap();
    assert_eq!(deleted.status(), 200);
    let body: Value = deleted.json().await.unwrap();
    assert_eq!(
        body,
        json!({"success": true, "message": "Session terminated"})
    );
    let after = proxy
        .post(json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}))
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 404);
    let body: Value = after.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Session not found"),
        "{body}"
    );
    let again = delete().await.unwrap();
    assert_eq!(again.status(), 404);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32001, "{body}");
    assert_eq!(body["error"]["message"], "Session not found", "{body}");
}

#[tokio::test]
async fn idle_sessions_expire_and_the_oldest_is_evicted_at_the_limit() {
    let proxy = HttpProxy::start(json!({}), &["--session-ttl", "1", "--max-sessions", "2"]).await;
    let first = proxy.raw_session(None).await;
    let second = proxy.raw_session(None).await;
    let third = proxy.raw_session(None).await;
    let status = |session: String| {
        let request = proxy
            .post(json!({"jsonrpc":"2.0","id":2,"method":"ping"}))
            .header("mcp-session-id", session);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(
        status(first).await,
        404,
        "the least recently used session was evicted"
    );
    assert_eq!(status(third.clone()).await, 200);
    let health = health_of(&proxy).await;
    assert_eq!(health["maxSessions"], 2);
    assert!(health["sessions"].as_u64().unwrap() <= 2, "{health}");
    // With a one-second TTL, sessions left alone end: /health stops counting them (asking a
    // session would keep it alive).
    let mut sessions = Value::Null;
    let expired = tokio::time::timeout(WAIT, async {
        loop {
            sessions = health_of(&proxy).await["sessions"].clone();
            if sessions == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(expired.is_ok(), "sessions still counted: {sessions}");
    assert_eq!(status(second).await, 404, "the idle session expired");
}

#[tokio::test]
async fn stateless_mode_serves_fifty_concurrent_requests() {
    let proxy = HttpProxy::start(
        json!({"demo": demo()}),
        &[
            "--stateless",
            "--rate-limit-tools",
            "0",
            "--rate-limit-requests",
            "0",
        ],
    )
    .await;
    let health: Value = reqwest::get(proxy.url.replace("/mcp", "/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (health["sessions"].clone(), health["maxSessions"].clone()),
        (json!(0), json!(0))
    );
    // Wait until the demo server is connected.
    tokio::time::timeout(WAIT, async {
        loop {
            let response = proxy
                .post(call_body(1, "demo__echo", json!({"message": "warm"})))
                .send()
                .await
                .unwrap();
            if message_of(response).await.get("result").is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap();
    let calls = (0..50u64).map(|i| {
        let request = proxy.post(call_body(
            i,
            "demo__echo",
            json!({"message": format!("n{i}")}),
        ));
        async move {
            let response = request.send().await.unwrap();
            assert!(response.headers().get("mcp-session-id").is_none());
            let message = message_of(response).await;
            assert_eq!(message["id"], i);
            assert_eq!(
                message["result"]["content"][0]["text"],
                format!("Echo: n{i}")
            );
        }
    });
    futures::future::join_all(calls).await;
}

#[tokio::test]
async fn bearer_auth_cases() {
    let proxy = HttpProxy::start(
        json!({"demo": demo()}),
        &[
            "--require-api-auth",
            "--auth-token",
            "token-one",
            "--auth-token",
            "token-two",
            "--rate-limit-tools",
            "0",
            "--rate-limit-requests",
            "0",
        ],
    )
    .await;
    // initialize needs no token; the session it makes is then bound to the first token used.
    let session = proxy.raw_session(None).await;
    let list = json!({"jsonrpc":"2.0","id":2,"method":"tools/list"});
    let missing = proxy
        .post(list.clone())
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32001);
    assert_eq!(
        body["error"]["message"],
        "Unauthorized: Invalid or missing API key"
    );
    let malformed = proxy
        .post(list.clone())
        .header("mcp-session-id", &session)
        .header("authorization", "Basic dG9rZW4tb25l")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 401);
    let wrong = proxy
        .post(list.clone())
        .header("mcp-session-id", &session)
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let right = proxy
        .post(list.clone())
        .header("mcp-session-id", &session)
        .bearer_auth("token-one")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert!(message_of(right).await.get("result").is_some());
    // Another valid token cannot use a session that belongs to the first.
    let stolen = proxy
        .post(list.clone())
        .header("mcp-session-id", &session)
        .bearer_auth("token-two")
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), 404);
    // A session created with a token is bound to it from the start.
    let owned = proxy.raw_session(Some("token-two")).await;
    let stolen = proxy
        .post(list)
        .header("mcp-session-id", &owned)
        .bearer_auth("token-one")
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), 404);
    // The rmcp client with its token works end to end.
    let client = proxy
        .client_with(
            StreamableHttpClientTransportConfig::with_uri(proxy.url.as_str())
                .auth_header("token-one"),
        )
        .await;
    wait_tool(&client, "demo__echo").await;
    assert_eq!(
        call_text(&client, "demo__echo", json!({"message": "authed"})).await,
        "Echo: authed"
    );
}

#[tokio::test]
async fn a_thousand_calls_with_default_flags_are_never_refused() {
    let proxy = HttpProxy::start(json!({"demo": demo()}), &[]).await;
    let client = proxy.client().await;
    wait_tool(&client, "demo__echo").await;
    // As fast as they go, eight at a time, with listings in between (other requests).
    let outcomes: Vec<Result<String, String>> = futures::stream::iter(0..1200u32)
        .map(|i| {
            let peer = client.peer().clone();
            async move {
                if i % 6 == 5 {
                    return peer
                        .list_tools(None)
                        .await
                        .map(|_| "listed".to_owned())
                        .map_err(|e| e.to_string());
                }
                let mut arguments = serde_json::Map::new();
                arguments.insert("message".into(), json!(format!("n{i}")));
                peer.call_tool(CallToolRequestParams::new("demo__echo").with_arguments(arguments))
                    .await
                    .map(|result| text_of(&result))
                    .map_err(|e| e.to_string())
            }
        })
        .buffered(8)
        .collect()
        .await;
    let calls = outcomes
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 6 != 5)
        .inspect(|(i, outcome)| {
            assert_eq!(outcome.as_deref(), Ok(format!("Echo: n{i}").as_str()));
        })
        .count();
    assert_eq!(calls, 1000);
    assert!(outcomes.iter().all(Result::is_ok));
    let health = health_of(&proxy).await;
    assert_eq!(
        health["rateLimits"],
        json!({"toolCallsPerMinute": 0, "requestsPerMinute": 0, "scope": "replica",
               "refusedToolCalls": 0, "refusedRequests": 0})
    );
    assert!(
        !proxy.log.text().contains("rate limit"),
        "{}",
        proxy.log.text()
    );
}

async fn health_of(proxy: &HttpProxy) -> Value {
    reqwest::get(proxy.url.replace("/mcp", "/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Log lines about the rate limit.
fn rate_limit_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| line.contains("rate limit"))
        .collect()
}

#[tokio::test]
async fn configured_limits_count_per_token_and_refusals_are_summarised_not_logged_each() {
    let mut proxy = HttpProxy::start(
        json!({"demo": demo()}),
        &[
            "--require-api-auth",
            "--auth-token",
            "token-one",
            "--auth-token",
            "token-two",
            "--rate-limit-tools",
            "5",
        ],
    )
    .await;
    proxy
        .log
        .wait_for("connected server_info=pluggedin-demo-server")
        .await;
    let one = proxy.raw_session(Some("token-one")).await;
    let two = proxy.raw_session(Some("token-two")).await;
    let call = |token: &'static str, session: &str, id: u64| {
        proxy
            .post(call_body(
                id,
                "demo__echo",
                json!({"message": format!("m{id}")}),
            ))
            .header("mcp-session-id", session)
            .bearer_auth(token)
            .send()
    };
    for id in 0..5 {
        let response = call("token-one", &one, id).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            message_of(response).await["result"]["content"][0]["text"],
            format!("Echo: m{id}")
        );
    }
    // Token one's budget is spent: every further call is refused, saying why and until when.
    for id in 5..205 {
        let response = call("token-one", &one, id).await.unwrap();
        assert_eq!(response.status(), 429);
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["id"], id);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(
                "rate limit of 5 tool calls per minute for this token exceeded; retry in "
            ) && message.ends_with(" s"),
            "{body}"
        );
        assert_eq!(body["error"]["data"]["limit"], 5, "{body}");
    }
    // Token two has its own budget.
    let response = call("token-two", &two, 300).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        message_of(response).await["result"]["content"][0]["text"],
        "Echo: m300"
    );

    // With auth on, /health shows its details to a token.
    let health: Value = reqwest::Client::new()
        .get(proxy.url.replace("/mcp", "/health"))
        .bearer_auth("token-one")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        health["rateLimits"],
        json!({"toolCallsPerMinute": 5, "requestsPerMinute": 0, "scope": "replica",
               "refusedToolCalls": 200, "refusedRequests": 0})
    );
    // One warning at the first refusal, not 200 lines (on a machine so slow that a minute
    // passed meanwhile: a summary and another first warning).
    let log = proxy.log.text();
    let lines = rate_limit_lines(&log);
    assert!(
        (1..=3).contains(&lines.len()),
        "{} lines about the rate limit:\n{log}",
        lines.len()
    );
    assert!(
        lines[0]
            .contains("rate limit of 5 tool calls per minute exceeded by the token with SHA-256"),
        "{log}"
    );
    assert!(
        !log.contains("token-one"),
        "a token reached the log:\n{log}"
    );

    // Shutting down summarises the period: to the log and to the store, for `stats`.
    let pid = proxy.child.id().unwrap();
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    let status = tokio::time::timeout(WAIT, proxy.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    let log = proxy.log.text();
    let lines = rate_limit_lines(&log);
    assert!((2..=4).contains(&lines.len()), "{log}");
    assert!(
        lines.iter().any(
            |line| line.contains("requests refused by the rate limit in the last")
                && line.contains("tool calls, 0 other requests")
        ),
        "{log}"
    );
    let stats = std::process::Command::new(proxy_bin())
        .arg("--data-dir")
        .arg(proxy._dir.path().join("data"))
        .args(["stats", "--since", "1d"])
        .env_remove("PLUGGEDIN_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&stats.stdout);
    assert!(stats.status.success(), "{stdout}");
    assert!(
        stdout.contains(
            "refused by the HTTP rate limit: 200 requests (200 tool calls, 0 other requests)"
        ),
        "{stdout}"
    );
}

#[tokio::test]
async fn refusals_have_the_right_status_and_a_json_rpc_body() {
    let proxy = HttpProxy::start(json!({}), &["--max-body-bytes", "1000"]).await;
    let client = reqwest::Client::new();
    let origin = proxy
        .post(initialize_body())
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(origin.status(), 403);
    let allowed = proxy
        .post(initialize_body())
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    let big = proxy
        .post(json!({"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"x".repeat(5000)}}))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    let bad = client
        .post(&proxy.url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700);
    // Headers over the limit (64 KiB) are refused before rmcp sees the request.
    let huge = client
        .post(&proxy.url)
        .header("x-padding", "y".repeat(100 * 1024))
        .json(&initialize_body())
        .send()
        .await;
    let huge = huge.unwrap();
    assert_eq!(huge.status(), 431);
    let body: Value = huge.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    let put = client.put(&proxy.url).send().await.unwrap();
    assert_eq!(put.status(), 405);
    let body: Value = put.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    let version = proxy
        .post(initialize_body())
        .header("mcp-protocol-version", "1999-01-01")
        .send()
        .await
        .unwrap();
    assert_eq!(version.status(), 400);
    // Every version we speak passes, including the ones the original refused after negotiating them.
    for version in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        let mut initialize = initialize_body();
        initialize["params"]["protocolVersion"] = json!(version);
        let ok = proxy
            .post(initialize)
            .header("mcp-protocol-version", version)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200, "{version}");
        let session = ok.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        let negotiated = message_of(ok).await["result"]["protocolVersion"].clone();
        assert_eq!(negotiated, json!(version));
        let next = proxy
            .post(json!({"jsonrpc":"2.0","id":2,"method":"ping"}))
            .header("mcp-protocol-version", version)
            .header("mcp-session-id", session)
            .send()
            .await
            .unwrap();
        assert_eq!(
            next.status(),
            200,
            "a request with the negotiated {version} is served"
        );
    }
    // POST / is an alias of POST /mcp; /health answers like the original.
    let root = proxy.url.trim_end_matches("mcp").to_owned();
    let aliased = client
        .post(&root)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .json(&initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(aliased.status(), 200);
    let health: Value = reqwest::get(format!("{root}health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["transport"], "streamable-http");
    let options = client
        .request(reqwest::Method::OPTIONS, &proxy.url)
        .send()
        .await
        .unwrap();
    assert_eq!(options.status(), 200);
    assert_eq!(
        options.headers()["access-control-expose-headers"],
        "Mcp-Session-Id, Mcp-Protocol-Version"
    );
}

#[tokio::test]
async fn health_and_servers_count_the_tools_clients_get_after_filters_and_disabled_tools() {
    let servers = json!({
        "demo": demo(),
        "narrow": {"command": demo_bin(), "tools": {"allow": ["add", "echo"]}},
    });
    let proxy = HttpProxy::start(servers, NO_LIMITS).await;
    let health_url = proxy.url.replace("/mcp", "/health");
    let tools_of = |health: &Value, name: &str| {
        health["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|server| server["name"] == name)
            .map(|server| (server["state"].clone(), server["tools"].clone()))
            .unwrap()
    };
    let wait_for_health = |check: Box<dyn Fn(&Value) -> bool>| {
        let health_url = health_url.clone();
        async move {
            let mut last = Value::Null;
            let found = tokio::time::timeout(WAIT, async {
                loop {
                    last = reqwest::get(&health_url)
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    if check(&last) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
            .await;
            assert!(found.is_ok(), "/health never showed it: {last}");
            last
        }
    };
    let health = wait_for_health(Box::new(move |health| {
        tools_of(health, "narrow") == (json!("connected"), json!(2))
            && tools_of(health, "demo").0 == json!("connected")
    }))
    .await;
    let (_, demo_tools) = tools_of(&health, "demo");
    assert!(demo_tools.as_u64().unwrap() > 2, "{health}");

    // The operator turns one off: both counts follow.
    let cli = |args: &[&str]| {
        std::process::Command::new(proxy_bin())
            .arg("--config")
            .arg(proxy._dir.path().join("mcp.json"))
            .arg("--data-dir")
            .arg(proxy._dir.path().join("data"))
            .args(args)
            .env_remove("PLUGGEDIN_API_KEY")
            .output()
            .unwrap()
    };
    // The command reads the catalog the proxy keeps in the store, written just after the
    // connection that /health shows: it may not have the tool for a moment.
    let deadline = tokio::time::Instant::now() + WAIT;
    let disabled = loop {
        let disabled = cli(&["tools", "disable", "narrow__echo"]);
        if disabled.status.success() || tokio::time::Instant::now() >= deadline {
            break disabled;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(disabled.status.success(), "{disabled:?}");
    wait_for_health(Box::new(move |health| {
        tools_of(health, "narrow") == (json!("connected"), json!(1))
    }))
    .await;
    let listed = String::from_utf8_lossy(&cli(&["servers"]).stdout).into_owned();
    let row = |name: &str| {
        listed
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row in {listed}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row("narrow"),
        ["narrow", "stdio", "connected", "1", "tools"]
    );
    assert_eq!(
        row("demo")[3],
        demo_tools.to_string(),
        "servers and /health agree: {listed}"
    );
}

#[tokio::test]
async fn shutdown_lets_a_call_in_flight_finish() {
    let mut proxy = HttpProxy::start(json!({"demo": demo()}), NO_LIMITS).await;
    let client = proxy.client().await;
    wait_tool(&client, "demo__sleep").await;
    let call = tokio::spawn({
        let peer = client.peer().clone();
        async move {
            let mut arguments = serde_json::Map::new();
            arguments.insert("ms".into(), json!(1500));
            peer.call_tool(CallToolRequestParams::new("demo__sleep").with_arguments(arguments))
                .await
        }
    });
    proxy.log.wait_for("method=\"tools/call\"").await;
    let pid = proxy.child.id().unwrap();
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    let result = tokio::time::timeout(WAIT, call)
        .await
        .expect("the call in flight got an answer")
        .unwrap()
        .expect("the call in flight finished");
    assert_eq!(text_of(&result), "slept 1500ms");
    let status = tokio::time::timeout(WAIT, proxy.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    // New connections are refused once shutdown began.
    assert!(
        reqwest::get(proxy.url.replace("/mcp", "/health"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_python_sdk_http_client_lists_calls_samples_and_sees_progress() {
    let proxy = HttpProxy::start(json!({"demo": demo()}), NO_LIMITS).await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/python_sdk_client.py");
    let output = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(venv_python())
            .arg(script)
            .arg("http")
            .arg(&proxy.url)
            .output(),
    )
    .await
    .expect("the Python client finished")
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the Python client failed:\n{stderr}"
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["server"], "PluggedinMCP");
    assert_eq!(seen["echo"], "Echo: from python");
    assert!(
        seen["sampling"]
            .as_str()
            .unwrap()
            .contains("sampled by the python client"),
        "{seen}"
    );
    assert_eq!(seen["progress"], json!([0.0, 50.0, 100.0]));
    assert_eq!(seen["prompt_messages"], 1);
    assert_eq!(seen["unknown"]["code"], -32602);
    // The client ends its session with a DELETE on exit and warns unless it gets 200 or 204.
    assert!(
        !stderr.contains("Session termination failed"),
        "the Python client warned at exit:\n{stderr}"
    );
}

#[tokio::test]
async fn a_cancelled_call_leaves_the_typescript_client_nothing_to_poll() {
    let proxy = HttpProxy::start(json!({"demo": demo()}), NO_LIMITS).await;
    ts_sdk();
    let script = clients_dir().join("ts_sdk_client.mjs");
    let output = tokio::time::timeout(
        WAIT * 2,
        tokio::process::Command::new("node")
            .arg(script)
            .arg("cancel")
            .arg(&proxy.url)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the TypeScript client finished")
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the TypeScript client failed:\n{stderr}"
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["server"], "PluggedinMCP");
    assert!(
        seen["cancelled"]
            .as_str()
            .unwrap()
            .contains("cancelled by the test"),
        "{seen}"
    );
    assert_eq!(seen["later"], "slept 7000ms");
    // The SDK tries once to resume the cancelled call's stream (it had a priming event and no
    // answer), is told there is nothing to resume, and stops: no attempt during the later call,
    // which lasted over two of its 3 s intervals.
    let resumes = seen["resumes"].as_array().unwrap();
    assert_eq!(resumes.len(), 1, "{seen}");
    assert_eq!(resumes[0]["status"], 405, "{seen}");
    assert_eq!(
        proxy
            .log
            .text()
            .matches("resumption of a request stream that ended refused")
            .count(),
        1,
        "{}",
        proxy.log.text()
    );
}

#[tokio::test]
async fn listening_beyond_loopback_without_auth_warns_at_start() {
    const WARNING: &str = "warning: listening beyond loopback (0.0.0.0) without --require-api-auth: \
                           anyone who can reach port";
    let open = HttpProxy::start(json!({}), &["--host", "0.0.0.0"]).await;
    let log = open.log.text();
    let listening = log
        .lines()
        .position(|line| line.contains("listening on http://0.0.0.0:"))
        .unwrap_or_else(|| panic!("{log}"));
    // Printed with the listening line, just before it.
    assert!(
        listening > 0
            && log.lines().nth(listening - 1).is_some_and(|line| {
                line.starts_with(WARNING)
                    && line.ends_with(
                        "can call every tool, write tools included, and read the documents and \
                         memory; the console and its API (/console/, /api/) stay off",
                    )
            }),
        "{log}"
    );
    let authed = HttpProxy::start(
        json!({}),
        &[
            "--host",
            "0.0.0.0",
            "--require-api-auth",
            "--auth-token",
            "t",
        ],
    )
    .await;
    assert!(
        !authed.log.text().contains("warning: listening beyond"),
        "{}",
        authed.log.text()
    );
    let loopback = HttpProxy::start(json!({}), &["--host", "127.0.0.1"]).await;
    assert!(
        !loopback.log.text().contains("warning: listening beyond"),
        "{}",
        loopback.log.text()
    );
}

/// Waits until the proxy has logged `needle` `count` times.
async fn wait_for_count(proxy: &HttpProxy, needle: &str, count: usize) {
    let found = tokio::time::timeout(WAIT, async {
        while proxy.log.text().matches(needle).count() < count {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "{needle:?} not logged {count} times:\n{}",
        proxy.log.text()
    );
}

const HIBERNATING: &str = "session idle: hibernating";
const WAKING: &str = "hibernated session: waking";

/// A raw session that said `initialized` (so it may hibernate), on a proxy with the demo server.
async fn initialized_session(proxy: &HttpProxy) -> String {
    proxy
        .log
        .wait_for("connected server_info=pluggedin-demo-server")
        .await;
    let session = proxy.raw_session(None).await;
    let ack = proxy
        .post(json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(ack.status(), 202);
    session
}

async fn session_call(
    proxy: &HttpProxy,
    session: &str,
    id: u64,
    method: &str,
    params: Value,
) -> Value {
    let response = proxy
        .post(json!({"jsonrpc":"2.0","id":id,"method":method,"params":params}))
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{method}");
    let message = message_of(response).await;
    assert_eq!(message["id"], id, "{message}");
    assert!(message.get("error").is_none(), "{method}: {message}");
    message["result"].clone()
}

#[tokio::test]
async fn a_hibernated_session_wakes_with_its_subscriptions_and_log_level() {
    let proxy = HttpProxy::start(
        json!({"demo": demo()}),
        &[NO_LIMITS, &["--session-hibernate-after", "1"][..]].concat(),
    )
    .await;
    let session = initialized_session(&proxy).await;
    session_call(
        &proxy,
        &session,
        2,
        "resources/subscribe",
        json!({"uri": "test://watched-resource"}),
    )
    .await;
    session_call(
        &proxy,
        &session,
        3,
        "logging/setLevel",
        json!({"level": "emergency"}),
    )
    .await;

    wait_for_count(&proxy, HIBERNATING, 1).await;
    let health: Value = reqwest::get(proxy.url.replace("/mcp", "/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        health["sessions"], 1,
        "a hibernated session still counts: {health}"
    );

    // The same id still works: a call answers, and wakes the session.
    let echoed = session_call(
        &proxy,
        &session,
        4,
        "tools/call",
        json!({"name": "demo__echo", "arguments": {"message": "still here"}}),
    )
    .await;
    assert_eq!(echoed["content"][0]["text"], "Echo: still here", "{echoed}");
    wait_for_count(&proxy, WAKING, 1).await;

    // Hibernate again, then wake through the GET stream: the subscription made before the first
    // hibernation still brings resource updates to it, and the log level still holds.
    wait_for_count(&proxy, HIBERNATING, 2).await;
    let stream = reqwest::Client::new()
        .get(&proxy.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut messages = sse_messages(stream);
    wait_for_count(&proxy, WAKING, 2).await;
    session_call(
        &proxy,
        &session,
        5,
        "tools/call",
        json!({"name": "demo__test_tool_with_logging", "arguments": {}}),
    )
    .await;
    session_call(
        &proxy,
        &session,
        6,
        "tools/call",
        json!({"name": "demo__touch_watched_resource", "arguments": {}}),
    )
    .await;
    let mut seen = Vec::new();
    let updated = tokio::time::timeout(WAIT, async {
        while let Some(message) = messages.recv().await {
            seen.push(message.clone());
            if message["method"] == "notifications/resources/updated" {
                return message;
            }
        }
        panic!("the GET stream ended");
    })
    .await
    .expect("no resource update on the GET stream");
    assert_eq!(updated["params"]["uri"], "test://watched-resource");
    // With its GET stream open, the session stays awake and gets what it subscribed to.
    session_call(
        &proxy,
        &session,
        7,
        "tools/call",
        json!({"name": "demo__touch_watched_resource", "arguments": {}}),
    )
    .await;
    let again = tokio::time::timeout(WAIT, async {
        while let Some(message) = messages.recv().await {
            seen.push(message.clone());
            if message["method"] == "notifications/resources/updated" {
                return message;
            }
        }
        panic!("the GET stream ended");
    })
    .await
    .expect("no second resource update");
    assert_eq!(again["params"]["uri"], "test://watched-resource");
    // Whatever the logging tool let through came before the updates of the two later calls.
    assert!(
        !seen.iter().any(|m| m["method"] == "notifications/message"),
        "a log passed the emergency level after waking: {seen:?}"
    );
}

#[tokio::test]
async fn hibernated_sessions_can_be_deleted_and_expire() {
    let proxy = HttpProxy::start(
        json!({"demo": demo()}),
        &[
            NO_LIMITS,
            &["--session-hibernate-after", "1", "--session-ttl", "3"][..],
        ]
        .concat(),
    )
    .await;
    let deleted = initialized_session(&proxy).await;
    let expiring = initialized_session(&proxy).await;
    wait_for_count(&proxy, HIBERNATING, 2).await;

    let response = reqwest::Client::new()
        .delete(&proxy.url)
        .header("mcp-session-id", &deleted)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let status = |session: String| {
        let request = proxy
            .post(json!({"jsonrpc":"2.0","id":9,"method":"ping"}))
            .header("mcp-session-id", session);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(
        status(deleted).await,
        404,
        "a deleted hibernated session is gone"
    );

    proxy.log.wait_for("a hibernated session expired").await;
    assert_eq!(
        status(expiring).await,
        404,
        "an expired hibernated session is gone"
    );
    assert_eq!(
        status("0123456789abcdef0123456789abcdef".into()).await,
        404,
        "unknown ids stay unknown"
    );
}

#[tokio::test]
async fn a_session_with_its_get_stream_open_does_not_hibernate() {
    let proxy = HttpProxy::start(
        json!({"demo": demo()}),
        &[NO_LIMITS, &["--session-hibernate-after", "1"][..]].concat(),
    )
    .await;
    let watcher_client = TestClient::new();
    let mut events = watcher_client.subscribe();
    let watcher = watcher_client
        .serve(StreamableHttpClientTransport::from_uri(proxy.url.as_str()))
        .await
        .unwrap();
    wait_tool(&watcher, "demo__test_dynamic_tool").await;
    // A raw session without a GET stream hibernates meanwhile: sweeps have run.
    let _idle = initialized_session(&proxy).await;
    wait_for_count(&proxy, HIBERNATING, 1).await;
    let actor = proxy.client().await;
    while events.try_recv().is_ok() {}
    call_text(&actor, "demo__test_dynamic_tool", json!({})).await;
    let changed = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(Event::ToolsChanged) = events.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(changed.is_ok(), "no list_changed:\n{}", proxy.log.text());
    assert_eq!(
        proxy.log.text().matches(HIBERNATING).count(),
        1,
        "only the raw session hibernated:\n{}",
        proxy.log.text()
    );
}

#[tokio::test]
async fn concurrent_requests_wake_a_hibernated_session_once() {
    let proxy = HttpProxy::start(
        json!({"demo": demo()}),
        &[NO_LIMITS, &["--session-hibernate-after", "1"][..]].concat(),
    )
    .await;
    let session = initialized_session(&proxy).await;
    wait_for_count(&proxy, HIBERNATING, 1).await;
    let calls = (0..10u64).map(|n| {
        let (proxy, session) = (&proxy, session.clone());
        async move {
            let message = format!("call {n}");
            let result = session_call(
                proxy,
                &session,
                100 + n,
                "tools/call",
                json!({"name": "demo__echo", "arguments": {"message": message}}),
            )
            .await;
            assert_eq!(result["content"][0]["text"], format!("Echo: {message}"));
        }
    });
    futures::future::join_all(calls).await;
    assert_eq!(
        proxy.log.text().matches(WAKING).count(),
        1,
        "one wake for ten requests:\n{}",
        proxy.log.text()
    );
}
