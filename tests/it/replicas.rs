//! Several replicas behind a load balancer: `GET /health/ready` (the store answers, the servers'
//! first attempts are over, no drain) and the drain on SIGTERM (not ready at once, no new
//! sessions, the existing ones served, calls in flight finished or answered with an error, a
//! second signal ends it at once). The real binary, a real client, a real PostgreSQL cluster
//! stopped and started again.

use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

use crate::app::{app_config_file, standard_app};
use crate::app_stub::KEY;
use crate::pg_cluster;
use crate::support::*;

/// `/health/ready` beside the proxy's `/mcp` URL.
fn ready_url(mcp: &str) -> String {
    mcp.replace("/mcp", "/health/ready")
}

/// The status and JSON body of `GET /health/ready`, with `token` as a bearer token if given.
async fn ready(mcp: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(ready_url(mcp));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Asks `/health/ready` until `check` holds for its answer (the store's answer is kept a second,
/// servers connect when they do); the answer.
async fn ready_until(mcp: &str, check: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    let mut last = (0, Value::Null);
    let found = tokio::time::timeout(WAIT, async {
        loop {
            last = ready(mcp, None).await;
            if check(last.0, &last.1) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(found.is_ok(), "readiness never came to that: {last:?}");
    last
}

/// The causes named in a readiness body, in order.
fn causes(body: &Value) -> Vec<&str> {
    body["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|cause| cause["cause"].as_str().unwrap())
        .collect()
}

async fn client(mcp: &str) -> RunningService<RoleClient, TestClient> {
    TestClient::new()
        .serve(StreamableHttpClientTransport::from_uri(mcp))
        .await
        .unwrap()
}

/// Calls `demo__wait_for_file` on a task of its own: in flight until `gate` exists.
fn call_until_file_exists(
    client: &RunningService<RoleClient, TestClient>,
    gate: &std::path::Path,
) -> tokio::task::JoinHandle<Result<rmcp::model::CallToolResult, rmcp::service::ServiceError>> {
    let peer = client.peer().clone();
    let arguments = json!({"path": gate.to_str().unwrap()});
    let serde_json::Value::Object(arguments) = arguments else {
        unreachable!()
    };
    tokio::spawn(async move {
        peer.call_tool(CallToolRequestParams::new("demo__wait_for_file").with_arguments(arguments))
            .await
    })
}

fn sigterm(child: &ProxyChild) {
    let pid = child.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn exits_zero(child: &mut ProxyChild, log: &Log) {
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap_or_else(|_| panic!("the proxy did not exit:\n{}", log.text()))
        .unwrap();
    assert!(status.success(), "{status}\n{}", log.text());
}

#[tokio::test]
async fn a_healthy_proxy_is_ready_and_a_broken_server_is_named_without_holding_it() {
    let dir = tempfile::tempdir().unwrap();
    let servers = json!({
        "demo": demo(),
        "broken": {"command": dir.path().join("no-such-server").to_str().unwrap()},
    });
    let (_child, log, url) = spawn_http_proxy(&dir, servers, &[]).await;
    let (status, body) = ready_until(&url, |status, _| status == 200).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(causes(&body), Vec::<&str>::new(), "{body}");
    let down = body["serversDown"].as_array().unwrap();
    assert_eq!(down.len(), 1, "{body}");
    assert_eq!(down[0]["name"], "broken", "{body}");
    assert!(
        down[0]["state"].as_str().unwrap().starts_with("failed"),
        "{body}"
    );

    // `/health` is as it was; readiness answers GET only, under the same Host and Origin rules.
    let health: Value = reqwest::get(url.replace("/mcp", "/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    let posted = reqwest::Client::new()
        .post(ready_url(&url))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 405);
    assert_eq!(posted.headers()["allow"], "GET");
    let message = posted.json::<Value>().await.unwrap();
    assert_rpc_error(&message, -32600, "/health/ready answers GET only");
    let foreign = reqwest::Client::new()
        .get(ready_url(&url))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    assert!(foreign.json::<Value>().await.unwrap()["error"].is_object());
    assert!(!log.text().contains("panicked"), "{}", log.text());
}

#[tokio::test]
async fn a_server_in_its_first_attempt_holds_readiness_until_it_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("start-slow");
    let servers = json!({
        "demo": demo(),
        "slow": demo_with(&["--start-when", gate.to_str().unwrap()]),
    });
    let args = [
        "--startup-wait",
        "600",
        "--require-api-auth",
        "--auth-token",
        "ready-token",
    ];
    let (_child, log, url) = spawn_http_proxy(&dir, servers, &args).await;
    log.wait_for("starting once the file exists").await;

    // Without a token, the causes only; with one, the servers they concern.
    let (status, body) = ready(&url, None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not ready", "{body}");
    assert_eq!(causes(&body), ["servers-starting"], "{body}");
    assert!(body["causes"][0].get("servers").is_none(), "{body}");
    assert!(body.get("serversDown").is_none(), "{body}");
    let (status, body) = ready(&url, Some("ready-token")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["causes"][0]["servers"], json!(["slow"]), "{body}");
    assert!(
        body["causes"][0]["message"]
            .as_str()
            .unwrap()
            .contains("slow"),
        "{body}"
    );

    std::fs::write(&gate, "").unwrap();
    let (_, body) = ready_until(&url, |status, _| status == 200).await;
    assert_eq!(body["status"], "ready", "{body}");
    let health: Value = reqwest::Client::new()
        .get(url.replace("/mcp", "/health"))
        .bearer_auth("ready-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let slow = health["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|server| server["name"] == "slow")
        .unwrap();
    assert_eq!(slow["state"], "connected", "{health}\n{}", log.text());
}

#[tokio::test]
async fn the_postgresql_store_going_down_makes_the_proxy_not_ready_until_it_is_back() {
    let cluster = tokio::task::spawn_blocking(pg_cluster::private)
        .await
        .unwrap();
    let url = cluster
        .url("postgres")
        .replace("postgres:///", "postgres://postgres:pg-s3cret@/")
        .replace("&user=postgres", "");
    let dir = tempfile::tempdir().unwrap();
    let (_child, log, mcp) = spawn_http_proxy(&dir, json!({}), &["--database-url", &url]).await;
    ready_until(&mcp, |status, _| status == 200).await;

    let cluster = std::sync::Arc::new(cluster);
    let stopping = cluster.clone();
    tokio::task::spawn_blocking(move || stopping.stop())
        .await
        .unwrap();
    let (_, body) = ready_until(&mcp, |status, _| status == 503).await;
    assert_eq!(causes(&body), ["store-unreachable"], "{body}");
    let message = body["causes"][0]["message"].as_str().unwrap();
    assert!(message.contains("store unavailable"), "{message}");
    assert!(
        message.contains("postgres://postgres@/postgres"),
        "{message}"
    );
    assert!(!message.contains("pg-s3cret"), "{message}");

    let starting = cluster.clone();
    tokio::task::spawn_blocking(move || starting.start())
        .await
        .unwrap();
    let (_, body) = ready_until(&mcp, |status, _| status == 200).await;
    assert_eq!(body["status"], "ready", "{body}");
    assert!(!log.text().contains("pg-s3cret"), "{}", log.text());
}

#[tokio::test]
async fn in_app_mode_the_app_going_away_leaves_the_proxy_ready_on_its_last_good_copy() {
    let app = standard_app().await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let config = app_config_file(dir.path());
    let proxy = Background::start(
        proxy_bin(),
        &[
            "--transport",
            "streamable-http",
            "--port",
            "0",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        &[
            ("PLUGGEDIN_API_KEY", KEY),
            ("PLUGGEDIN_API_BASE_URL", &app.url()),
            ("PLUGGEDIN_APP_REFRESH_SECS", "1"),
            ("RUST_LOG", "info"),
        ],
        "listening on http://",
    )
    .await;
    let mcp = listening_url(&proxy.log).await;
    ready_until(&mcp, |status, _| status == 200).await;

    // Every replica shares the App; one that cannot reach it serves its last good copy.
    app.go_away().await;
    let health_url = mcp.replace("/mcp", "/health");
    let unreachable = tokio::time::timeout(WAIT, async {
        loop {
            let health: Value = reqwest::get(&health_url)
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if health["controlPlane"]["state"] == "unreachable" {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(unreachable.is_ok(), "{}", proxy.log.text());
    let (status, body) = ready(&mcp, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(causes(&body), Vec::<&str>::new(), "{body}");
}

#[tokio::test]
async fn sigterm_drains_a_call_in_flight_to_its_result_while_refusing_new_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("finish-call");
    let (mut child, log, url) =
        spawn_http_proxy(&dir, json!({"demo": demo()}), &["--drain-secs", "600"]).await;
    ready_until(&url, |status, _| status == 200).await;
    let session = client(&url).await;
    let call = call_until_file_exists(&session, &gate);
    log.wait_for("waiting for the file").await;

    sigterm(&child);
    log.wait_for("SIGTERM: draining").await;
    let (status, body) = ready(&url, None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(causes(&body), ["draining"], "{body}");
    // Liveness is not readiness: `/health` still says ok.
    let health = reqwest::get(url.replace("/mcp", "/health")).await.unwrap();
    assert_eq!(health.status(), 200);

    // A new session is refused, with a reason and when to retry.
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "late", "version": "1"}}});
    let refused = post_mcp(&url, None, initialize).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let message = refused.json::<Value>().await.unwrap();
    assert_eq!(message["id"], 1, "{message}");
    assert_rpc_error(&message, -32000, "shutting down");
    assert!(
        message["error"]["message"]
            .as_str()
            .unwrap()
            .contains("initialize"),
        "{message}"
    );

    // So is a modern client's first look, the one request that tells a new modern client.
    let discover = json!({"jsonrpc": "2.0", "id": 2, "method": "server/discover", "params": {}});
    let refused = post_mcp(&url, None, discover).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_rpc_error(
        &refused.json::<Value>().await.unwrap(),
        -32000,
        "server/discover",
    );

    // The existing session's other requests are served.
    let echo = session
        .peer()
        .call_tool(
            CallToolRequestParams::new("demo__echo").with_arguments(
                json!({"message": "still here"})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(text_of(&echo), "Echo: still here");

    // The call in flight completes with its result; then the drain is over and the process
    // exits 0.
    std::fs::write(&gate, "").unwrap();
    let result = tokio::time::timeout(WAIT, call)
        .await
        .expect("the call in flight got an answer")
        .unwrap()
        .expect("the call in flight finished");
    assert_eq!(
        text_of(&result),
        format!("{} exists", gate.to_str().unwrap())
    );
    exits_zero(&mut child, &log).await;
    let text = log.text();
    assert!(
        text.contains("drain over (nothing left in flight)"),
        "{text}"
    );
    assert!(text.contains("in_flight=0"), "{text}");
}

#[tokio::test]
async fn a_second_signal_ends_the_drain_and_the_call_in_flight_gets_an_error_answer() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("never-created");
    let (mut child, log, url) =
        spawn_http_proxy(&dir, json!({"demo": demo()}), &["--drain-secs", "600"]).await;
    ready_until(&url, |status, _| status == 200).await;
    let session = client(&url).await;
    let call = call_until_file_exists(&session, &gate);
    log.wait_for("waiting for the file").await;

    sigterm(&child);
    log.wait_for("SIGTERM: draining").await;
    sigterm(&child);
    log.wait_for("SIGTERM again: ending the drain now").await;
    let answer = tokio::time::timeout(WAIT, call)
        .await
        .expect("the call in flight got an answer, not silence")
        .unwrap();
    let error = mcp_error(answer.expect_err("the call could not finish"));
    assert!(error.message.contains("shutting down"), "{error:?}");
    assert!(error.message.contains("demo"), "{error:?}");
    exits_zero(&mut child, &log).await;
    let text = log.text();
    assert!(text.contains("drain over (cut short)"), "{text}");
    assert!(text.contains("in_flight=1"), "{text}");
}
