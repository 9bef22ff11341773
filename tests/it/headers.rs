//! The 2026-07-28 standard headers (SEP-2243) on calls through the proxy: a tool's
//! `x-mcp-header` parameters must be mirrored in `Mcp-Param-*` headers that match the body.
//! Raw HTTP requests, because a well-behaved client (rmcp) never sends a mismatch.

use serde_json::{Value, json};

use crate::support::*;

/// A 2026-07-28 `tools/call` of the demo's `test_header_params` with `region` in the body.
fn call(region: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "demo__test_header_params",
        "arguments": {"region": region},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"}
        }
    }})
}

#[tokio::test]
async fn mcp_param_headers_are_checked_against_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, log, url) = spawn_http_proxy(&dir, json!({"demo": demo()}), &[]).await;
    log.wait_for("connected server_info=pluggedin-demo-server")
        .await;
    let send = |region_header: Option<&'static str>| {
        let mut request = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "demo__test_header_params")
            .json(&call("eu-west"));
        if let Some(value) = region_header {
            request = request.header("mcp-param-region", value);
        }
        request.send()
    };

    // Matching header: the call goes through to the server.
    let response = send(Some("eu-west")).await.unwrap();
    assert_eq!(response.status(), 200);
    let message = message_of(response).await;
    assert_eq!(
        message["result"]["content"][0]["text"], "region: eu-west",
        "{message}"
    );
    // Base64-wrapped values are decoded before comparing ("eu-west").
    let response = send(Some("=?base64?ZXUtd2VzdA==?=")).await.unwrap();
    assert_eq!(response.status(), 200);

    // A header that contradicts the body, or none at all: 400 and HeaderMismatch.
    for header in [Some("us-east"), None] {
        let response = send(header).await.unwrap();
        assert_eq!(response.status(), 400, "{header:?}");
        let message = message_of(response).await;
        assert_eq!(message["error"]["code"], -32020, "{header:?}: {message}");
        assert_eq!(message["id"], 7, "{message}");
    }
    let _ = child.kill().await;
}
