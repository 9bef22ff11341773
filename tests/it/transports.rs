//! The three downstream transports, with our demo server and server-everything on each.

use serde_json::json;

use crate::support::*;

async fn demo_http(flag: &str) -> (Background, String) {
    let server = Background::start(demo_bin(), &[flag, "0"], &[], "listening on http://").await;
    let url = listening_url(&server.log).await;
    (server, url)
}

#[tokio::test]
async fn demo_over_streamable_http_and_legacy_sse() {
    let (_http, http_url) = demo_http("--http").await;
    let (_sse, sse_url) = demo_http("--sse").await;
    let proxy = proxy()
        .server(
            "web",
            json!({"url": http_url, "type": "streamable-http", "headers": {"X-Test": "1"}}),
        )
        .server("legacy", json!({"url": sse_url, "type": "sse"}))
        .start()
        .await;
    proxy.wait_for_tool("web__echo").await;
    proxy.wait_for_tool("legacy__echo").await;
    assert_eq!(
        proxy
            .call_text("web__echo", json!({"message": "http"}))
            .await,
        "Echo: http"
    );
    assert_eq!(
        proxy
            .call_text("legacy__echo", json!({"message": "sse"}))
            .await,
        "Echo: sse"
    );
    let sampled = proxy
        .call_text("legacy__test_sampling", json!({"prompt": "hi"}))
        .await;
    assert!(sampled.contains("sampled by the test client"), "{sampled}");
}

#[tokio::test]
async fn server_everything_over_sse_and_streamable_http() {
    let (_sse, sse_base) = everything_over("sse").await;
    let (_http, http_base) = everything_over("streamableHttp").await;
    let proxy = proxy()
        .server("everything-sse", json!({"url": format!("{sse_base}/sse")}))
        .server(
            "everything-http",
            json!({"url": format!("{http_base}/mcp")}),
        )
        .start()
        .await;
    proxy.wait_for_tool("everything-sse__echo").await;
    proxy.wait_for_tool("everything-http__echo").await;
    assert_eq!(
        proxy
            .call_text("everything-sse__echo", json!({"message": "a"}))
            .await,
        "Echo: a"
    );
    let sum = proxy
        .call_text("everything-http__get-sum", json!({"a": 1, "b": 2}))
        .await;
    assert!(sum.contains('3'), "{sum}");
}

#[tokio::test]
async fn stdio_children_get_a_minimal_environment_plus_their_env_and_their_stderr_is_logged() {
    // The harness starts the proxy with this process's environment, so a
    // variable set for the proxy would leak unless the proxy filters it.
    let proxy = proxy()
        .server(
            "everything",
            json!({"command": "node", "args": [everything_js(), "stdio"], "env": {"FROM_CONFIG": "yes"}}),
        )
        .env("PROXY_SECRET_TOKEN", "must-not-leak")
        .start()
        .await;
    proxy.wait_for_tool("everything__get-env").await;
    let env = proxy.call_text("everything__get-env", json!({})).await;
    assert!(env.contains("FROM_CONFIG"), "{env}");
    assert!(env.contains("PATH"), "{env}");
    assert!(!env.contains("PROXY_SECRET_TOKEN"), "{env}");
    proxy
        .log
        .wait_for("stderr: Starting default (STDIO) server")
        .await;
    assert!(
        proxy.log.text().contains("server=everything"),
        "{}",
        proxy.log.text()
    );
}
