//! Server-to-client input across MCP generations: each of the four combinations of a legacy or
//! modern client with a legacy or modern downstream, parked calls (a modern client calling a
//! legacy server that asks for input) and their expiry, `subscriptions/listen` across a
//! downstream restart, and a mixed-generation HTTP load.

use std::process::Stdio;

use rmcp::model::*;
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RunningService};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

use crate::support::*;

fn modern() -> ClientLifecycleMode {
    ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    }
}

fn legacy_demo() -> Value {
    json!({"command": demo_bin(), "protocol": "legacy"})
}

fn modern_demo() -> Value {
    json!({"command": demo_bin(), "protocol": "modern"})
}

/// A proxy on stdio with a modern (2026-07-28) rmcp client in front of it.
struct ModernProxy {
    client: RunningService<RoleClient, TestClient>,
    events: tokio::sync::broadcast::Receiver<Event>,
    log: Log,
    _dir: tempfile::TempDir,
}

impl ModernProxy {
    async fn start(servers: Value, args: &[&str]) -> ModernProxy {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("mcp.json");
        std::fs::write(&config, json!({"mcpServers": servers}).to_string()).unwrap();
        let mut command = tokio::process::Command::new(proxy_bin());
        command
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(args)
            .env("RUST_LOG", "info,pluggedin_mcp_proxy=debug");
        let (transport, stderr) = TokioChildProcess::builder(command)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Log::capture(stderr.unwrap());
        let client = TestClient::new();
        let events = client.subscribe();
        let client = client
            .serve_with_lifecycle(transport, modern())
            .await
            .unwrap();
        let proxy = ModernProxy {
            client,
            events,
            log,
            _dir: dir,
        };
        proxy.log.wait_for(" connected ").await;
        proxy
    }

    fn peer(&self) -> &rmcp::service::Peer<RoleClient> {
        self.client.peer()
    }

    /// A call whose input rounds the client's service drives (it answers and retries).
    async fn call(&self, tool: &str, arguments: Value) -> CallToolResult {
        let Value::Object(arguments) = arguments else {
            panic!("arguments must be an object")
        };
        self.client
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
            .await
            .unwrap_or_else(|e| panic!("{tool}: {e}\n{}", self.log.text()))
    }

    /// One round only: the proxy's answer as it is.
    async fn call_once(
        &self,
        params: CallToolRequestParams,
    ) -> Result<CallToolResponse, rmcp::ServiceError> {
        self.peer().call_tool_once(params).await
    }
}

fn with_args(tool: &str, arguments: Value) -> CallToolRequestParams {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments)
}

// --- the four combinations -----------------------------------------------------------------

#[tokio::test]
async fn legacy_client_and_legacy_server_input_goes_to_the_calling_session() {
    let proxy = proxy().server("demo", legacy_demo()).start().await;
    proxy.wait_for_tool("demo__test_sampling").await;
    let sampled = proxy
        .call_text("demo__test_sampling", json!({"prompt": "hi"}))
        .await;
    assert!(sampled.contains("sampled by the test client"), "{sampled}");
    let elicited = proxy
        .call_text("demo__test_elicitation", json!({"message": "who?"}))
        .await;
    assert!(elicited.contains("tester"), "{elicited}");
    assert!(proxy.log.text().contains("protocol=2025-11-25"));
    let asked = proxy.requests.lock().unwrap().clone();
    assert!(
        asked.contains(&"sampling/createMessage".to_owned())
            && asked.contains(&"elicitation/create".to_owned()),
        "{asked:?}"
    );
}

#[tokio::test]
async fn legacy_client_and_modern_server_input_is_asked_for_real_and_retried() {
    let proxy = proxy().server("demo", modern_demo()).start().await;
    proxy.wait_for_tool("demo__test_sampling").await;
    proxy.log.wait_for("protocol=2026-07-28").await;
    let sampled = proxy
        .call_text("demo__test_sampling", json!({"prompt": "hi"}))
        .await;
    assert!(sampled.contains("sampled by the test client"), "{sampled}");
    let roots = proxy.call_text("demo__roots", json!({})).await;
    assert!(roots.contains("file:///tmp/test-root"), "{roots}");
    let asked = proxy.requests.lock().unwrap().clone();
    assert!(asked.contains(&"roots/list".to_owned()), "{asked:?}");
}

#[tokio::test]
async fn modern_client_and_modern_server_pass_input_required_through() {
    let proxy = ModernProxy::start(json!({"demo": modern_demo()}), &[]).await;
    proxy.log.wait_for("protocol=2026-07-28").await;
    // The first round is the server's own InputRequiredResult, its state untouched.
    let first = proxy
        .call_once(with_args("demo__test_sampling", json!({"prompt": "hi"})))
        .await
        .unwrap();
    let CallToolResponse::InputRequired(input) = first else {
        panic!("expected input_required, got {first:?}")
    };
    assert!(
        input
            .request_state
            .as_deref()
            .is_none_or(|state| !state.starts_with("pluggedin-parked.")),
        "{input:?}"
    );
    let result = proxy
        .call("demo__test_sampling", json!({"prompt": "hi"}))
        .await;
    assert!(
        text_of(&result).contains("sampled by the test client"),
        "{result:?}"
    );
}

#[tokio::test]
async fn modern_client_and_legacy_server_calls_are_parked_and_resumed() {
    let proxy = ModernProxy::start(json!({"demo": legacy_demo()}), &[]).await;
    assert!(proxy.log.text().contains("protocol=2025-11-25"));
    // rmcp's modern client answers each InputRequiredResult and retries; the proxy hands the
    // answers to the legacy server, which has been waiting inside tools/call.
    let sampled = proxy
        .call("demo__test_sampling", json!({"prompt": "hi"}))
        .await;
    assert!(
        text_of(&sampled).contains("sampled by the test client"),
        "{sampled:?}"
    );
    let elicited = proxy
        .call("demo__test_elicitation", json!({"message": "who?"}))
        .await;
    assert!(text_of(&elicited).contains("tester"), "{elicited:?}");
    let roots = proxy.call("demo__roots", json!({})).await;
    assert!(
        text_of(&roots).contains("file:///tmp/test-root"),
        "{roots:?}"
    );
    let asked = proxy.client.service().requests.lock().unwrap().clone();
    assert_eq!(
        asked,
        ["sampling/createMessage", "elicitation/create", "roots/list"],
        "each question reached the client once, as an input request"
    );

    // By hand: the InputRequiredResult names the parked call, the retry resumes it.
    let params = with_args("demo__test_sampling", json!({"prompt": "by hand"}));
    let CallToolResponse::InputRequired(input) = proxy.call_once(params.clone()).await.unwrap()
    else {
        panic!("expected input_required")
    };
    let state = input.request_state.clone().unwrap();
    assert!(state.starts_with("pluggedin-parked."), "{state}");
    let requests = input.input_requests.unwrap();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let (key, request) = requests.into_iter().next().unwrap();
    assert!(
        matches!(request, InputRequest::CreateMessage(_)),
        "{request:?}"
    );
    let answer = CreateMessageResult::new(
        SamplingMessage::assistant_text("answered by hand"),
        "hand".into(),
    );
    let mut responses = InputResponses::new();
    responses.insert(key, serde_json::to_value(answer).unwrap());
    let mut retry = params.clone();
    retry.input_responses = Some(responses.clone());
    retry.request_state = Some(state.clone());
    let CallToolResponse::Complete(done) = proxy.call_once(retry.clone()).await.unwrap() else {
        panic!("expected the final result")
    };
    assert!(text_of(&done).contains("answered by hand"), "{done:?}");

    // The state is spent: using it again is refused with a clear error.
    let error = mcp_error(proxy.call_once(retry).await.unwrap_err());
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS, "{error:?}");
    assert!(error.message.contains("names no parked call"), "{error:?}");

    // A state for another request (another tool) is refused too, and the call stays parked.
    let CallToolResponse::InputRequired(input) = proxy.call_once(params.clone()).await.unwrap()
    else {
        panic!("expected input_required")
    };
    let mut other = with_args("demo__test_elicitation", json!({"message": "x"}));
    other.request_state = input.request_state.clone();
    other.input_responses = Some(InputResponses::new());
    let error = mcp_error(proxy.call_once(other).await.unwrap_err());
    assert!(error.message.contains("names no parked call"), "{error:?}");
    let mut resumed = params;
    resumed.request_state = input.request_state;
    let key = input.input_requests.unwrap().into_keys().next().unwrap();
    resumed.input_responses = Some(InputResponses::from([(
        key,
        serde_json::to_value(CreateMessageResult::new(
            SamplingMessage::assistant_text("still parked"),
            "hand".into(),
        ))
        .unwrap(),
    )]));
    let CallToolResponse::Complete(done) = proxy.call_once(resumed).await.unwrap() else {
        panic!("expected the final result")
    };
    assert!(text_of(&done).contains("still parked"), "{done:?}");
}

#[tokio::test]
async fn a_parked_call_expires_is_cancelled_downstream_and_its_state_is_refused() {
    let proxy = ModernProxy::start(
        json!({"demo": legacy_demo()}),
        &["--parked-call-ttl", "0.3"],
    )
    .await;
    let params = with_args("demo__test_sampling", json!({"prompt": "nobody answers"}));
    let CallToolResponse::InputRequired(input) = proxy.call_once(params.clone()).await.unwrap()
    else {
        panic!("expected input_required")
    };
    // The client never comes back: the call is cancelled downstream and its entry freed.
    proxy
        .log
        .wait_for("parked call expired (its client did not retry in time); cancelled downstream")
        .await;
    let mut retry = params;
    retry.request_state = input.request_state;
    retry.input_responses = Some(InputResponses::new());
    let error = mcp_error(proxy.call_once(retry).await.unwrap_err());
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS, "{error:?}");
    assert!(
        error.message.contains("names no parked call") && error.message.contains("expired"),
        "{error:?}"
    );
    // The server is still fine.
    let echoed = proxy.call("demo__echo", json!({"message": "after"})).await;
    assert_eq!(text_of(&echoed), "Echo: after");
}

#[tokio::test]
async fn a_parked_calls_state_is_refused_to_another_token() {
    let dir = tempfile::tempdir().unwrap();
    let auth = [
        "--require-api-auth",
        "--auth-token",
        "alice",
        "--auth-token",
        "bob",
    ];
    let (_child, log, url) = spawn_http_proxy(&dir, json!({"demo": legacy_demo()}), &auth).await;
    log.wait_for(" connected ").await;
    let client = |token: &str| {
        let config =
            rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                url.as_str(),
            )
            .auth_header(token);
        TestClient::new()
            .serve_with_lifecycle(StreamableHttpClientTransport::from_config(config), modern())
    };
    let alice = client("alice").await.unwrap();
    let bob = client("bob").await.unwrap();
    let params = with_args("demo__test_sampling", json!({"prompt": "alice's"}));
    let CallToolResponse::InputRequired(input) =
        alice.peer().call_tool_once(params.clone()).await.unwrap()
    else {
        panic!("expected input_required")
    };
    let key = input.input_requests.unwrap().into_keys().next().unwrap();
    let answer = |text: &str| {
        let result = CreateMessageResult::new(SamplingMessage::assistant_text(text), "m".into());
        InputResponses::from([(key.clone(), serde_json::to_value(result).unwrap())])
    };
    let mut retry = params;
    retry.request_state = input.request_state;
    // Bob holds Alice's state (say, it leaked): refused, and Alice's call stays parked.
    retry.input_responses = Some(answer("bob's answer"));
    let error = mcp_error(bob.peer().call_tool_once(retry.clone()).await.unwrap_err());
    assert!(error.message.contains("names no parked call"), "{error:?}");
    assert!(log.text().contains("another caller or request; refused"));
    retry.input_responses = Some(answer("alice's answer"));
    let CallToolResponse::Complete(done) = alice.peer().call_tool_once(retry).await.unwrap() else {
        panic!("expected the final result")
    };
    assert!(text_of(&done).contains("alice's answer"), "{done:?}");
}

// --- subscriptions/listen across a downstream restart --------------------------------------

#[tokio::test]
async fn listen_receives_list_changes_when_a_downstream_restarts() {
    // The default protocol, `auto`: the first connection probes, the restart speaks what it found.
    let proxy = ModernProxy::start(json!({"demo": {"command": demo_bin()}}), &[]).await;
    assert!(proxy.log.text().contains("protocol=2026-07-28"));
    let mut filter = SubscriptionFilter::default();
    filter.tools_list_changed = Some(true);
    let mut subscription = proxy.peer().listen(filter).await.unwrap();
    let pid = text_of(&proxy.call("demo__pid", json!({})).await);
    // The server dies; its tools leave the catalog, then come back when it is restarted.
    let _ = proxy
        .call_once(with_args("demo__exit", json!({"code": 3})))
        .await;
    let mut changes = 0;
    while changes < 2 {
        let notification = tokio::time::timeout(WAIT, subscription.next())
            .await
            .expect("a notification on the listen stream")
            .unwrap()
            .expect("the stream is open");
        if matches!(
            notification,
            ServerNotification::ToolListChangedNotification(_)
        ) {
            changes += 1;
        }
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    let restarted = loop {
        if let Ok(CallToolResponse::Complete(result)) =
            proxy.call_once(with_args("demo__pid", json!({}))).await
            && result.is_error != Some(true)
        {
            break text_of(&result);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server never came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_ne!(restarted, pid, "a new process serves after the restart");
    assert!(
        proxy
            .log
            .text()
            .contains("speaking the generation detected before protocol=Modern"),
        "{}",
        proxy.log.text()
    );
    let _ = subscription.cancel().await;
}

// --- resource subscriptions carried to a modern server ------------------------------------

#[tokio::test]
async fn a_legacy_clients_subscription_reaches_a_modern_server_through_listen() {
    let mut proxy = proxy().server("demo", modern_demo()).start().await;
    proxy.wait_for_tool("demo__touch_watched_resource").await;
    assert!(proxy.log.text().contains("protocol=2026-07-28"));
    // No resources/subscribe in 2026-07-28: the proxy's listen stream to the server takes the URI,
    // and subscribe returns once the server acknowledged it.
    proxy
        .peer()
        .subscribe(SubscribeRequestParams::new("test://watched-resource"))
        .await
        .unwrap();
    // rmcp acknowledges a listen stream before the server's handler has taken its sink, so the
    // first touch may come too early for the server: touch until an update arrives.
    let updated = proxy
        .touch_until_updated("demo__touch_watched_resource")
        .await;
    assert_eq!(updated, "test://watched-resource");
    proxy
        .peer()
        .unsubscribe(UnsubscribeRequestParams::new("test://watched-resource"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_modern_clients_listen_with_resources_follows_a_modern_server() {
    let proxy = ModernProxy::start(json!({"demo": modern_demo()}), &[]).await;
    let mut filter = SubscriptionFilter::default();
    filter.resource_subscriptions = Some(vec!["test://watched-resource".into()]);
    let mut subscription = proxy.peer().listen(filter).await.unwrap();
    // The proxy reopens its own stream to the server with the URI; once the server acknowledged
    // it, updates flow.
    proxy
        .log
        .wait_for("subscriptions/listen stream open resources=1")
        .await;
    // The server takes its stream's sink just after acknowledging it: touch until an update
    // arrives.
    let deadline = tokio::time::Instant::now() + WAIT;
    let updated = loop {
        proxy.call("demo__touch_watched_resource", json!({})).await;
        let next = tokio::time::timeout(std::time::Duration::from_millis(500), subscription.next());
        if let Ok(notification) = next.await {
            let notification = notification.unwrap().expect("the stream is open");
            let ServerNotification::ResourceUpdatedNotification(notification) = notification else {
                panic!("expected resources/updated, got {notification:?}")
            };
            break notification.params.uri;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no resources/updated within {WAIT:?}"
        );
    };
    assert_eq!(updated, "test://watched-resource");
    let _ = subscription.cancel().await;
}

// --- per-request log level carried to a modern server -------------------------------------

/// The log messages among the events received so far.
fn logs(events: &mut tokio::sync::broadcast::Receiver<Event>) -> Vec<String> {
    let mut messages = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let Event::Log(log) = event {
            messages.push(log.data.as_str().unwrap_or_default().to_owned());
        }
    }
    messages
}

#[tokio::test]
async fn a_modern_clients_log_level_reaches_a_modern_server_and_its_logs_come_back() {
    let mut proxy = ModernProxy::start(json!({"demo": modern_demo()}), &[]).await;
    // Without a level, a modern server sends no log messages.
    proxy.call("demo__test_tool_with_logging", json!({})).await;
    // With one, they come back to this request.
    let mut params = with_args("demo__test_tool_with_logging", json!({}));
    let mut meta = RequestMetaObject::default();
    meta.set_log_level(LoggingLevel::Info);
    params.meta = Some(meta);
    let result = proxy.client.call_tool(params).await.unwrap();
    assert_eq!(text_of(&result), "Tool with logging executed successfully");
    // The demo logs before it answers; the notifications may still be on their way.
    let mut messages = logs(&mut proxy.events);
    while messages.len() < 3 {
        match tokio::time::timeout(WAIT, proxy.events.recv()).await {
            Ok(Ok(Event::Log(log))) => {
                messages.push(log.data.as_str().unwrap_or_default().to_owned());
            }
            Ok(Ok(_)) => {}
            other => panic!("log messages missing: {messages:?} {other:?}"),
        }
    }
    assert_eq!(
        messages,
        [
            "Tool execution started",
            "Tool processing data",
            "Tool execution completed"
        ],
        "{}",
        proxy.log.text()
    );
}

#[tokio::test]
async fn a_legacy_sessions_log_level_is_sent_per_request_to_a_modern_server() {
    let mut proxy = proxy().server("demo", modern_demo()).start().await;
    proxy.wait_for_tool("demo__test_tool_with_logging").await;
    assert!(proxy.log.text().contains("protocol=2026-07-28"));
    proxy
        .peer()
        .set_level(SetLevelRequestParams::new(LoggingLevel::Info))
        .await
        .unwrap();
    proxy
        .call("demo__test_tool_with_logging", json!({}))
        .await
        .unwrap();
    let mut messages = Vec::new();
    while messages.len() < 3 {
        let message = proxy
            .next_event(|event| match event {
                Event::Log(log) => Some(log.data.as_str().unwrap_or_default().to_owned()),
                _ => None,
            })
            .await;
        messages.push(message);
    }
    assert_eq!(messages[0], "Tool execution started");
    assert_eq!(messages[2], "Tool execution completed");
}

// --- mixed generations over HTTP -----------------------------------------------------------

#[tokio::test]
async fn mixed_generation_http_load_answers_every_caller_correctly() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The demo over Streamable HTTP: its requests to clients say which call they came with, so
    // input is attributed exactly even with many calls in flight.
    let demo = Background::start(demo_bin(), &["--http", "0"], &[], "listening on http://").await;
    let demo_url = listening_url(&demo.log).await;
    let dir = tempfile::tempdir().unwrap();
    let servers = json!({"demo": {"url": demo_url, "protocol": "legacy"}});
    let (_child, log, url) = spawn_http_proxy(&dir, servers, &[]).await;
    log.wait_for(" connected ").await;

    let mut clients = Vec::new();
    for index in 0..6 {
        let mut client = TestClient::new();
        client.label = format!("client {index}");
        let transport = StreamableHttpClientTransport::from_uri(url.as_str());
        let service = if index % 2 == 0 {
            client.serve(transport).await.unwrap()
        } else {
            client
                .serve_with_lifecycle(transport, modern())
                .await
                .unwrap()
        };
        clients.push(service);
    }
    let calls = clients.iter().enumerate().flat_map(|(index, client)| {
        (0..15).map(move |call| async move {
            let label = format!("client {index}");
            if call % 5 == 0 {
                // Sampling: a legacy client is asked for real, a modern one through a parked call;
                // either way the answer must come from this very client.
                let result = client
                    .call_tool(with_args(
                        "demo__test_sampling",
                        json!({"prompt": format!("{label} call {call}")}),
                    ))
                    .await
                    .unwrap();
                assert!(
                    text_of(&result).contains(&format!("({label})")),
                    "{label} call {call}: {result:?}"
                );
            } else {
                let (a, b) = (index as i64 * 1000, call as i64);
                let result = client
                    .call_tool(with_args("demo__add", json!({"a": a, "b": b})))
                    .await
                    .unwrap();
                assert_eq!(text_of(&result), (a + b).to_string(), "{label} call {call}");
            }
        })
    });
    futures::future::join_all(calls).await;
    let parked = log
        .text()
        .matches("call parked until the client answers")
        .count();
    assert_eq!(
        parked,
        9,
        "every modern sampling call was parked once\n{}",
        log.text()
    );
}
