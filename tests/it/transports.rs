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

/// A demo server the proxy starts itself, serving `flag` (`--http` or `--sse`) on `{port}`.
fn started_demo(flag: &str, url: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![flag, "{port}"];
    args.extend_from_slice(extra);
    json!({"command": demo_bin(), "args": args, "url": url})
}

/// Calls `tool` until it answers (the server may be restarting); its text.
async fn call_when_back(proxy: &Proxy, tool: &str) -> String {
    let answered = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(result) = proxy.call(tool, json!({})).await {
                return text_of(&result);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    answered.unwrap_or_else(|_| panic!("{tool} never answered:\n{}", proxy.log.text()))
}

#[tokio::test]
async fn servers_the_proxy_starts_serve_on_the_port_it_picked_and_are_restarted_when_they_exit() {
    let proxy = proxy()
        .server(
            "web",
            // Slow to listen: the proxy waits for the port, not for a fixed time.
            started_demo(
                "--http",
                "http://127.0.0.1:{port}/mcp",
                &["--start-delay-ms", "300"],
            ),
        )
        .server(
            "legacy",
            started_demo("--sse", "http://localhost:{port}/sse", &[]),
        )
        .start()
        .await;
    proxy.wait_for_tool("web__echo").await;
    proxy.wait_for_tool("legacy__echo").await;
    assert_eq!(
        proxy
            .call_text("web__echo", json!({"message": "started"}))
            .await,
        "Echo: started"
    );
    assert_eq!(
        proxy
            .call_text("legacy__echo", json!({"message": "over sse"}))
            .await,
        "Echo: over sse"
    );
    // Each is the proxy's own child, leading its process group, and said where it listens.
    let web: u32 = proxy
        .call_text("web__pid", json!({}))
        .await
        .parse()
        .unwrap();
    assert!(children(proxy.pid).contains(&web), "{web}");
    let log = proxy.log.text();
    assert!(
        log.contains("stderr: listening on http://127.0.0.1:") && log.contains("server=web"),
        "{log}"
    );

    // The process exits: the connection is lost, and the proxy starts it again.
    let _ = proxy.call("web__exit", json!({"code": 3})).await;
    wait_gone(&[web]).await;
    let back: u32 = call_when_back(&proxy, "web__pid").await.parse().unwrap();
    assert_ne!(back, web);
    assert!(children(proxy.pid).contains(&back), "{back}");
    assert_eq!(
        proxy
            .call_text("web__echo", json!({"message": "again"}))
            .await,
        "Echo: again"
    );
    proxy.log.wait_for("the server's process exited").await;
}

#[tokio::test]
async fn a_started_server_that_exits_before_listening_fails_with_its_status_and_stderr() {
    let proxy = proxy()
        .server(
            "broken",
            started_demo("--http", "http://127.0.0.1:{port}/mcp", &["--no-such-flag"]),
        )
        .server("demo", demo())
        .start()
        .await;
    proxy.wait_for_tool("demo__echo").await;
    proxy
        .log
        .wait_for("exited (exit status: 2) before it listened on http://127.0.0.1:")
        .await;
    let log = proxy.log.text();
    assert!(
        log.contains("its last lines on stderr:") && log.contains("--no-such-flag"),
        "{log}"
    );
}
