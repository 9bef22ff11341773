//! Bad input on stdio: every malformed message gets the right JSON-RPC error, and the proxy keeps
//! serving. These tests speak raw newline-delimited JSON to see exactly what comes back.

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn malformed_messages_get_errors_and_the_proxy_keeps_serving() {
    let mut raw = RawStdio::start().await;
    raw.initialize().await;

    raw.send("{this is not json").await;
    let reply = raw.answer(Value::Null).await;
    assert_eq!(reply["error"]["code"], -32700, "{reply}");

    raw.send(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#)
        .await;
    let reply = raw.answer(Value::Null).await;
    assert_eq!(reply["error"]["code"], -32600, "{reply}");

    raw.send(r#"{"jsonrpc":"2.0","id":2,"method":"no/such/method"}"#)
        .await;
    let reply = raw.answer(json!(2)).await;
    assert_eq!(reply["error"]["code"], -32601, "{reply}");

    raw.send(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":42}}"#)
        .await;
    let reply = raw.answer(json!(3)).await;
    assert_eq!(reply["error"]["code"], -32602, "{reply}");

    raw.send(r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"nope__nothing","arguments":{}}}"#).await;
    let reply = raw.answer(json!(4)).await;
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nope__nothing"),
        "{reply}"
    );

    // Still serving: a ping and a real call.
    raw.send(r#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#)
        .await;
    let reply = raw.answer(json!(5)).await;
    assert_eq!(reply["result"], json!({}), "{reply}");
    assert!(
        raw.child.try_wait().unwrap().is_none(),
        "the proxy is still running"
    );
}

#[tokio::test]
async fn stdout_carries_only_protocol_messages() {
    let mut raw = RawStdio::start().await;
    raw.initialize().await;
    // Logs are plentiful at start-up (servers connecting); every stdout line must still be JSON-RPC.
    for id in 10..15 {
        raw.send(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#
        ))
        .await;
        let reply = raw.answer(json!(id)).await;
        assert_eq!(reply["jsonrpc"], "2.0");
    }
}

#[tokio::test]
async fn a_line_that_is_not_utf8_is_a_parse_error_and_the_session_goes_on() {
    let mut raw = RawStdio::start().await;
    raw.initialize().await;
    // A call in flight across the bad line keeps its answer.
    raw.send(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"demo__sleep","arguments":{"ms":200}}}"#).await;
    raw.send_bytes(b"{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"ping\",\"x\":\"\xff\xfe\"}\n")
        .await;
    let reply = raw.answer(Value::Null).await;
    assert_eq!(reply["error"]["code"], -32700, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid UTF-8"),
        "{reply}"
    );
    let slept = raw.answer(json!(7)).await;
    assert!(slept["result"].is_object(), "{slept}");
    raw.send(r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"demo__echo","arguments":{"message":"still here"}}}"#).await;
    let reply = raw.answer(json!(9)).await;
    assert_eq!(
        reply["result"]["content"][0]["text"], "Echo: still here",
        "{reply}"
    );
}

#[tokio::test]
async fn an_oversized_line_is_refused_with_its_id_and_the_session_goes_on() {
    let mut raw = RawStdio::start().await;
    raw.initialize().await;
    // One byte over the 64 MiB limit of a client's message.
    let limit = 64 * 1024 * 1024;
    let head = r#"{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"demo__echo","arguments":{"message":""#;
    let tail = r#""}}}"#;
    let mut line = Vec::with_capacity(limit + 2);
    line.extend_from_slice(head.as_bytes());
    line.resize(limit + 1 - tail.len(), b'x');
    line.extend_from_slice(tail.as_bytes());
    line.push(b'\n');
    raw.send_bytes(&line).await;
    drop(line);
    let reply = raw.answer(json!(11)).await;
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("the limit is {limit} bytes")),
        "{reply}"
    );
    raw.send(r#"{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"demo__echo","arguments":{"message":"after"}}}"#).await;
    let reply = raw.answer(json!(12)).await;
    assert_eq!(
        reply["result"]["content"][0]["text"], "Echo: after",
        "{reply}"
    );
}

#[tokio::test]
async fn a_second_initialize_is_refused_and_the_first_version_stays() {
    let mut raw = RawStdio::start().await;
    raw.initialize().await;
    raw.send(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"again","version":"1"}}}"#).await;
    let reply = raw.answer(json!(1)).await;
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already initialized"),
        "{reply}"
    );
    // The session of the first handshake goes on.
    raw.send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"demo__echo","arguments":{"message":"same session"}}}"#).await;
    let reply = raw.answer(json!(2)).await;
    assert_eq!(
        reply["result"]["content"][0]["text"], "Echo: same session",
        "{reply}"
    );
}
