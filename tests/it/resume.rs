//! SSE polling and resumption (SEP-1699, 2025-11-25): a response stream that ends before the
//! answer is resumed with `GET` + `Last-Event-ID`, on both sides of the proxy.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// The proxy over Streamable HTTP with the demo server (stdio) behind it.
async fn http_proxy(dir: &tempfile::TempDir) -> (ProxyChild, Log, String) {
    let (child, log, url) = spawn_http_proxy(dir, json!({"demo": demo()}), &[]).await;
    log.wait_for("connected server_info=pluggedin-demo-server")
        .await;
    (child, log, url)
}

/// The `id:` of the first SSE event in `chunk`.
fn first_event_id(chunk: &str) -> Option<String> {
    chunk
        .lines()
        .find_map(|line| line.strip_prefix("id:"))
        .map(|id| id.trim().to_owned())
}

#[tokio::test]
async fn a_client_that_loses_its_stream_mid_call_resumes_it_and_gets_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (_child, _log, url) = http_proxy(&dir).await;
    let session = initialized_session(&url, json!({"sampling": {}})).await;

    // The call's stream opens with a priming event (an id, no data); the client then goes away.
    // The call cannot end while it is away (rmcp forgets a stream once its answer is out): it
    // waits for the client's answer to the server's sampling request, which comes on the stream.
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "demo__test_sampling", "arguments": {"prompt": "still there?"}}});
    let mut response = post_mcp(&url, Some(&session), call).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().expect("a first event");
    let first = String::from_utf8_lossy(&first).into_owned();
    let last_event_id = first_event_id(&first).unwrap_or_else(|| panic!("no id in {first:?}"));
    assert!(first.contains("retry:"), "{first:?}");
    drop(response);

    // It comes back with the last id it saw: the resumed stream brings what it missed, the
    // server's question, and once that is answered, the answer to the call.
    let resumed = reqwest::Client::new()
        .get(&url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .header("last-event-id", &last_event_id)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let mut resumed = resumed;
    let mut text = String::new();
    let question = message_on(&mut resumed, &mut text, |message| {
        message["method"] == "sampling/createMessage"
    })
    .await;
    let reply = json!({"jsonrpc": "2.0", "id": question["id"], "result": {
        "role": "assistant", "content": {"type": "text", "text": "yes, resumed"},
        "model": "test-model"}});
    let replied = post_mcp(&url, Some(&session), reply).send().await.unwrap();
    assert_eq!(replied.status(), 202);
    let answer = message_on(&mut resumed, &mut text, |message| {
        message["id"] == 2 && message.get("method").is_none()
    })
    .await;
    assert!(
        answer["result"]["content"][0]["text"]
            .as_str()
            .is_some_and(|text| text.contains("yes, resumed")),
        "{answer}"
    );
}

/// The first message on an SSE stream, read on from `text` (what was read of it so far), that
/// `check` accepts.
async fn message_on(
    stream: &mut reqwest::Response,
    text: &mut String,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let found = text
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
                .find(|message| check(message));
            if let Some(message) = found {
                return message;
            }
            let chunk = stream
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no such message on the stream: {text}"))
}

#[tokio::test]
async fn the_proxy_resumes_a_servers_stream_that_closes_mid_call() {
    // The demo over Streamable HTTP cuts test_reconnection's stream after the priming event and
    // answers later; the proxy's client must reconnect with Last-Event-ID to get the answer.
    let server = Background::start(demo_bin(), &["--http", "0"], &[], "listening on http://").await;
    let url = listening_url(&server.log).await;
    let proxy = proxy()
        .server("web", json!({"url": url, "type": "streamable-http"}))
        .start()
        .await;
    proxy.wait_for_tool("web__test_reconnection").await;
    let answer = tokio::time::timeout(
        Duration::from_secs(30),
        proxy.call_text("web__test_reconnection", json!({})),
    )
    .await
    .expect("an answer after the reconnect");
    assert!(answer.contains("delivered on resumption"), "{answer}");
}
