//! A client's first look right after the proxy starts: `initialize` (or `server/discover`), the
//! first `tools/list` and an immediate call see every server that connects within
//! `--startup-wait`, with the official Python and TypeScript SDK clients, rmcp and raw HTTP. Calls
//! to a server that is starting or restarting wait for it; a server that never starts is named in
//! a bounded error.

use std::path::{Path, PathBuf};

use rmcp::model::*;
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

use crate::support::*;

const SLOW_NOTES: &str = "Notes from the slow server.";

/// A demo server that takes a second to start and has instructions of its own.
fn slow_demo() -> Value {
    demo_with(&["--start-delay-ms", "1000", "--instructions", SLOW_NOTES])
}

/// Two servers that take about a second to start: server-everything (on Node.js; it announces
/// 2025-11-25 tasks) and the slow demo server.
fn slow_servers() -> Value {
    json!({"everything": everything_stdio(), "slow": slow_demo()})
}

/// Writes `servers` as the config file in `dir`; returns its path and the data dir.
fn write_config(dir: &Path, servers: Value) -> (PathBuf, PathBuf) {
    let config = dir.join("mcp.json");
    std::fs::write(&config, json!({ "mcpServers": servers }).to_string()).unwrap();
    (config, dir.join("data"))
}

/// What an SDK client's first look must show: both slow servers' tools, the slow server's
/// instructions, server-everything's tasks for a client on 2025-11-25, an answered call.
fn assert_complete_first_look(seen: &Value) {
    let tools = seen["tools"].as_array().unwrap();
    for tool in ["slow__echo", "everything__echo"] {
        assert!(tools.contains(&json!(tool)), "{tool} missing: {seen}");
    }
    assert!(
        seen["instructions"]
            .as_str()
            .is_some_and(|text| text.contains(SLOW_NOTES)),
        "{seen}"
    );
    assert!(
        seen["capabilities"]["tasks"].is_object(),
        "server-everything's tasks not announced: {seen}"
    );
    assert_eq!(seen["call"], "Echo: first", "{seen}");
    assert_eq!(seen["is_error"], false, "{seen}");
}

/// Runs a client script and returns the JSON it printed.
async fn run_client(mut command: tokio::process::Command) -> Value {
    let output = command.output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the client failed:\n{stderr}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "{error}: {}\n{stderr}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn python_first_look(tool: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(venv_python());
    command.arg(clients_dir().join("first_look.py")).arg(tool);
    command
}

fn typescript_first_look(tool: &str) -> tokio::process::Command {
    ts_sdk();
    let mut command = tokio::process::Command::new("node");
    command.arg(clients_dir().join("first_look.mjs")).arg(tool);
    command
}

#[tokio::test]
async fn the_python_sdk_sees_every_server_on_its_first_look() {
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = write_config(dir.path(), slow_servers());
    let mut stdio = python_first_look("slow__echo");
    stdio.arg("stdio").arg(proxy_bin()).arg(&config).arg(&data);
    assert_complete_first_look(&run_client(stdio).await);

    let dir = tempfile::tempdir().unwrap();
    let (_proxy, _log, url) = spawn_http_proxy(&dir, slow_servers(), &[]).await;
    let mut http = python_first_look("slow__echo");
    http.arg("http").arg(&url);
    assert_complete_first_look(&run_client(http).await);
}

#[tokio::test]
async fn the_typescript_sdk_sees_every_server_on_its_first_look() {
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = write_config(dir.path(), slow_servers());
    let mut stdio = typescript_first_look("slow__echo");
    stdio.arg("stdio").arg(proxy_bin()).arg(&config).arg(&data);
    assert_complete_first_look(&run_client(stdio).await);

    let dir = tempfile::tempdir().unwrap();
    let (_proxy, _log, url) = spawn_http_proxy(&dir, slow_servers(), &[]).await;
    let mut http = typescript_first_look("slow__echo");
    http.arg("http").arg(&url);
    assert_complete_first_look(&run_client(http).await);
}

#[tokio::test]
async fn rmcp_sees_every_server_on_its_first_look() {
    let proxy = proxy().server("slow", slow_demo()).start().await;
    let info = proxy.peer().peer_info().unwrap();
    assert!(
        info.instructions
            .as_deref()
            .is_some_and(|text| text.contains(SLOW_NOTES)),
        "{info:?}"
    );
    let tools = proxy.peer().list_tools(None).await.unwrap().tools;
    assert!(tools.iter().any(|tool| tool.name == "slow__echo"));
    assert_eq!(
        proxy.call_text("slow__add", json!({"a": 2, "b": 3})).await,
        "5"
    );
}

#[tokio::test]
async fn a_modern_client_sees_every_server_on_its_first_look() {
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = write_config(dir.path(), json!({"slow": slow_demo()}));
    let mut command = tokio::process::Command::new(proxy_bin());
    command
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data);
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let modern = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let client = TestClient::new()
        .serve_with_lifecycle(transport, modern)
        .await
        .unwrap();
    let info = client.peer().peer_info().unwrap();
    assert!(
        info.instructions
            .as_deref()
            .is_some_and(|text| text.contains(SLOW_NOTES)),
        "server/discover answered without the slow server: {info:?}"
    );
    let tools = client.peer().list_tools(None).await.unwrap().tools;
    assert!(tools.iter().any(|tool| tool.name == "slow__echo"));
}

/// One JSON-RPC request on the raw HTTP endpoint; the answer and the session id it carried.
async fn post(url: &str, session: Option<&str>, body: Value) -> (Value, Option<String>) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .json(&body);
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-06-18");
    }
    let response = request.send().await.unwrap();
    let id = response
        .headers()
        .get("mcp-session-id")
        .map(|id| id.to_str().unwrap().to_owned());
    (message_of(response).await, id)
}

#[tokio::test]
async fn a_raw_http_client_sees_every_server_on_its_first_look() {
    let dir = tempfile::tempdir().unwrap();
    let (_proxy, _log, url) = spawn_http_proxy(&dir, json!({"slow": slow_demo()}), &[]).await;
    let (init, session) = post(
        &url,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}}),
    )
    .await;
    let session = session.expect("a session id");
    assert!(
        init["result"]["instructions"]
            .as_str()
            .is_some_and(|text| text.contains(SLOW_NOTES)),
        "{init}"
    );
    let (list, _) = post(
        &url,
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    assert!(
        list["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|tool| tool["name"] == "slow__echo"),
        "{list}"
    );
    let (call, _) = post(
        &url,
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
               "params": {"name": "slow__echo", "arguments": {"message": "raw"}}}),
    )
    .await;
    assert_eq!(call["result"]["content"][0]["text"], "Echo: raw", "{call}");
}

#[tokio::test]
async fn a_call_during_a_restart_waits_for_the_server() {
    for mode in ["always", "never"] {
        let proxy = proxy()
            .server("demo", demo())
            .arg("--prefix-mode")
            .arg(mode)
            .start()
            .await;
        let (echo, exit) = match mode {
            "always" => ("demo__echo", "demo__exit"),
            _ => ("echo", "exit"),
        };
        let _ = proxy.call(exit, json!({})).await;
        // The connection is gone and the server is not back yet: its tools left the catalog.
        proxy.log.wait_for("server not connected").await;
        let text = proxy
            .call_text(echo, json!({"message": "after the restart"}))
            .await;
        assert_eq!(text, "Echo: after the restart", "prefix mode {mode}");
    }
}

#[tokio::test]
async fn a_call_right_after_a_warm_start_waits_for_its_server() {
    // A first run lists the server and keeps its catalog in the data dir.
    let first = proxy()
        .server("slow", slow_demo())
        .arg("--prefix-mode")
        .arg("never")
        .start()
        .await;
    first.wait_for_tool("echo").await;
    let store =
        pluggedin_mcp_proxy::control::local::LocalStore::open(Some(&first.data_dir())).unwrap();
    tokio::time::timeout(WAIT, async {
        use pluggedin_mcp_proxy::control::ControlPlane;
        while store.cached_servers().await.unwrap().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the catalog is kept in the data dir");
    let dir = first.dir.clone();
    drop(first);
    // The second run answers `initialize` at once (`--startup-wait 0`): the unprefixed name is
    // found in the kept catalog, and the call waits for its server.
    let second = proxy()
        .server("slow", slow_demo())
        .arg("--prefix-mode")
        .arg("never")
        .arg("--startup-wait")
        .arg("0")
        .in_dir_of_path(dir)
        .start()
        .await;
    assert_eq!(
        second.call_text("echo", json!({"message": "warm"})).await,
        "Echo: warm"
    );
}

/// A server that takes longer to start than rmcp's fixed 10 s `server/discover` probe (a big
/// runtime, `npx` fetching its package) connects at its first start with `protocol: auto`: the
/// probe's late answer does not break the `initialize` sent after it.
#[tokio::test]
async fn a_server_slower_to_start_than_the_protocol_probe_connects() {
    let proxy = proxy()
        .server("slow", demo_with(&["--start-delay-ms", "15000"]))
        .arg("--startup-wait")
        .arg("0")
        .start()
        .await;
    let connected = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        while !proxy.log.text().contains("connected server_info") {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(connected.is_ok(), "never connected:\n{}", proxy.log.text());
    let log = proxy.log.text();
    assert!(!log.contains("handshake failed"), "{log}");
    assert!(
        log.contains("dropped the late answer to a server/discover probe"),
        "{log}"
    );
    proxy.wait_for_tool("slow__echo").await;
    assert_eq!(
        proxy
            .call_text("slow__echo", json!({"message": "late"}))
            .await,
        "Echo: late"
    );
}

#[tokio::test]
async fn a_server_that_never_starts_is_named_in_a_bounded_error() {
    // `sleep` never answers `initialize`: its handshake times out after the server's timeout.
    let proxy = proxy()
        .server(
            "never",
            json!({"command": "sleep", "args": ["600"], "timeout": 3}),
        )
        .server("demo", demo())
        .arg("--startup-wait")
        .arg("1")
        .start()
        .await;
    proxy.wait_for_tool("demo__echo").await;
    let error = mcp_error(proxy.call("never__anything", json!({})).await.unwrap_err());
    assert!(
        error.message.contains("server \"never\"")
            && (error.message.contains("failed to start")
                || error.message.contains("is still starting")),
        "{}",
        error.message
    );
}

#[test]
fn the_tools_command_says_what_it_waits_for() {
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = write_config(
        dir.path(),
        json!({
            "late": demo_with(&["--start-delay-ms", "1500"]),
            "never": {"command": "sleep", "args": ["600"]},
        }),
    );
    let output = std::process::Command::new(proxy_bin())
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .args(["--startup-wait", "8", "tools"])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("waiting up to") && stderr.contains("late") && stderr.contains("never"),
        "{stderr}"
    );
    assert!(stderr.contains("left out: never"), "{stderr}");
    assert!(stdout.contains("late__echo"), "{stdout}");
}
