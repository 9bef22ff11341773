//! Both MCP generations against one running proxy: legacy clients that `initialize` and modern
//! (2026-07-28) clients that send `_meta` on every request, over stdio and HTTP.

use rmcp::model::*;
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RunningService};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::json;

use crate::support::*;

fn modern() -> ClientLifecycleMode {
    ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    }
}

/// A modern (2026-07-28) rmcp client on the stdio of a proxy serving `demo`.
async fn modern_stdio_client(
    demo: serde_json::Value,
) -> (RunningService<RoleClient, TestClient>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcp.json");
    std::fs::write(&config, json!({"mcpServers": {"demo": demo}}).to_string()).unwrap();
    let mut command = tokio::process::Command::new(proxy_bin());
    command
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"));
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = TestClient::new()
        .serve_with_lifecycle(transport, modern())
        .await
        .unwrap();
    (client, dir)
}

async fn echo(client: &RunningService<RoleClient, TestClient>, text: &str) -> CallToolResult {
    let mut arguments = serde_json::Map::new();
    arguments.insert("message".into(), json!(text));
    client
        .peer()
        .call_tool(CallToolRequestParams::new("demo__echo").with_arguments(arguments))
        .await
        .unwrap()
}

async fn wait_tool(client: &RunningService<RoleClient, TestClient>, tool: &str) {
    tokio::time::timeout(WAIT, async {
        loop {
            if client
                .peer()
                .list_all_tools()
                .await
                .unwrap()
                .iter()
                .any(|t| t.name == tool)
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{tool} never appeared"));
}

#[tokio::test]
async fn a_modern_client_works_over_stdio() {
    let (client, _dir) = modern_stdio_client(demo()).await;
    wait_tool(&client, "demo__echo").await;
    let result = echo(&client, "modern over stdio").await;
    assert_eq!(text_of(&result), "Echo: modern over stdio");
}

#[tokio::test]
async fn legacy_and_modern_clients_share_one_http_proxy_and_modern_ones_listen() {
    let dir = tempfile::tempdir().unwrap();
    let (_proxy, _log, url) = spawn_http_proxy(&dir, json!({"demo": demo()}), &[]).await;

    let legacy = TestClient::new()
        .serve(StreamableHttpClientTransport::from_uri(url.as_str()))
        .await
        .unwrap();
    let modern_client = TestClient::new()
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_uri(url.as_str()),
            modern(),
        )
        .await
        .unwrap();
    wait_tool(&legacy, "demo__echo").await;
    wait_tool(&modern_client, "demo__echo").await;

    // Mixed load: both generations at once, each answer to its own caller.
    let calls = (0..20).map(|i| {
        let legacy = &legacy;
        let modern_client = &modern_client;
        async move {
            let (legacy_text, modern_text) = (format!("legacy {i}"), format!("modern {i}"));
            let (a, b) = tokio::join!(
                echo(legacy, &legacy_text),
                echo(modern_client, &modern_text)
            );
            assert_eq!(text_of(&a), format!("Echo: legacy {i}"));
            assert_eq!(text_of(&b), format!("Echo: modern {i}"));
        }
    });
    futures::future::join_all(calls).await;

    // A modern client learns of list changes through subscriptions/listen.
    let mut filter = SubscriptionFilter::default();
    filter.tools_list_changed = Some(true);
    let mut subscription = modern_client.peer().listen(filter).await.unwrap();
    legacy
        .peer()
        .call_tool(CallToolRequestParams::new("demo__test_dynamic_tool"))
        .await
        .unwrap();
    let notification = tokio::time::timeout(WAIT, subscription.next())
        .await
        .expect("a notification on the listen stream")
        .unwrap()
        .expect("the stream is open");
    assert!(
        matches!(
            notification,
            ServerNotification::ToolListChangedNotification(_)
        ),
        "{notification:?}"
    );
    let _ = subscription.cancel().await;
}

fn modern_demo() -> serde_json::Value {
    json!({"command": demo_bin(), "protocol": "modern"})
}

#[tokio::test]
async fn a_legacy_client_answers_a_modern_servers_input_requests() {
    let proxy = proxy().server("demo", modern_demo()).start().await;
    proxy.wait_for_tool("demo__test_sampling").await;
    proxy.log.wait_for("protocol=2026-07-28").await;
    // The server answers with InputRequiredResult; the proxy asks this legacy client for real and
    // retries with the answers.
    let sampled = proxy
        .call_text("demo__test_sampling", json!({"prompt": "hi"}))
        .await;
    assert!(sampled.contains("sampled by the test client"), "{sampled}");
    let elicited = proxy
        .call_text("demo__test_elicitation", json!({"message": "who?"}))
        .await;
    assert!(elicited.contains("tester"), "{elicited}");
    let roots = proxy.call_text("demo__roots", json!({})).await;
    assert!(roots.contains("file:///tmp/test-root"), "{roots}");
    let asked = proxy.requests.lock().unwrap().clone();
    assert!(
        asked.contains(&"sampling/createMessage".to_owned()),
        "{asked:?}"
    );
}

#[tokio::test]
async fn a_modern_client_and_a_modern_server_pass_input_required_through() {
    let (client, _dir) = modern_stdio_client(modern_demo()).await;
    wait_tool(&client, "demo__test_sampling").await;
    // rmcp's modern client answers the InputRequiredResult itself and retries; the retry's
    // inputResponses and requestState reach the same server through the proxy.
    let mut arguments = serde_json::Map::new();
    arguments.insert("prompt".into(), json!("hi"));
    // The service's call_tool (not the peer's) drives the input rounds.
    let result = client
        .call_tool(CallToolRequestParams::new("demo__test_sampling").with_arguments(arguments))
        .await
        .unwrap();
    assert!(
        text_of(&result).contains("sampled by the test client"),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_modern_servers_list_changes_arrive_through_listen() {
    let mut proxy = proxy().server("demo", modern_demo()).start().await;
    proxy.wait_for_tool("demo__test_dynamic_tool").await;
    let before = proxy.tool_names().await;
    while proxy.events.try_recv().is_ok() {}
    proxy
        .call("demo__test_dynamic_tool", json!({}))
        .await
        .unwrap();
    proxy
        .next_event(|event| matches!(event, Event::ToolsChanged).then_some(()))
        .await;
    assert_ne!(before, proxy.tool_names().await);
}

#[tokio::test]
async fn auto_detects_each_servers_generation() {
    let proxy = proxy()
        .server("dual", json!({"command": demo_bin(), "protocol": "auto"}))
        .server(
            "legacy-only",
            json!({"command": "node", "args": [everything_js(), "stdio"], "protocol": "auto"}),
        )
        .start()
        .await;
    proxy.wait_for_tool("dual__echo").await;
    proxy.wait_for_tool("legacy-only__echo").await;
    let log = proxy.log.text();
    let protocol_of = |server: &str| {
        log.lines()
            .find(|line| line.contains(&format!("server={server}")) && line.contains(" connected "))
            .and_then(|line| line.split("protocol=").nth(1))
            .map(|rest| rest.split_whitespace().next().unwrap_or("").to_owned())
    };
    assert_eq!(protocol_of("dual").as_deref(), Some("2026-07-28"), "{log}");
    assert_eq!(
        protocol_of("legacy-only").as_deref(),
        Some("2025-11-25"),
        "{log}"
    );
    assert_eq!(
        proxy.call_text("dual__echo", json!({"message": "m"})).await,
        "Echo: m"
    );
    assert_eq!(
        proxy
            .call_text("legacy-only__echo", json!({"message": "l"}))
            .await,
        "Echo: l"
    );
}
