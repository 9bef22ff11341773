//! What flows back: progress, logging, list changes, resource updates, server-to-client requests,
//! and cancellation going down.

use rmcp::model::*;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn progress_reaches_the_client_with_its_own_token() {
    let proxy = proxy().server("demo", demo()).start().await;
    proxy.wait_for_tool("demo__test_tool_with_progress").await;
    let mut proxy = proxy;
    let token = ProgressToken(NumberOrString::String("client-token-7".into()));
    let mut params = CallToolRequestParams::new("demo__test_tool_with_progress");
    params.meta = Some(RequestMetaObject::with_progress_token(token.clone()));
    let request = ClientRequest::CallToolRequest(Request::new(params));
    let handle = proxy
        .peer()
        .send_request_with_option(request, Default::default())
        .await
        .unwrap();
    // rmcp stamps its own token on outgoing requests; read the one it used.
    let sent_token = handle.progress_token.clone();
    let result = handle.await_response().await.unwrap();
    assert!(
        matches!(result, ServerResult::CallToolResult(_)),
        "{result:?}"
    );
    let progress = proxy
        .next_event(|event| match event {
            Event::Progress(p) => Some(p.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        progress.progress_token, sent_token,
        "the client's token, not the proxy's"
    );
}

#[tokio::test]
async fn log_messages_are_forwarded_and_set_level_is_honoured() {
    let mut proxy = proxy().server("demo", demo()).start().await;
    proxy.wait_for_tool("demo__test_tool_with_logging").await;
    proxy
        .peer()
        .set_level(SetLevelRequestParams::new(LoggingLevel::Debug))
        .await
        .unwrap();
    proxy
        .call("demo__test_tool_with_logging", json!({}))
        .await
        .unwrap();
    let log = proxy
        .next_event(|event| match event {
            Event::Log(log) => Some(log.clone()),
            _ => None,
        })
        .await;
    assert!(
        log.logger.as_deref().unwrap_or("").starts_with("demo"),
        "{log:?}"
    );

    // At `emergency`, nothing the tool logs passes.
    proxy
        .peer()
        .set_level(SetLevelRequestParams::new(LoggingLevel::Emergency))
        .await
        .unwrap();
    while proxy.events.try_recv().is_ok() {}
    proxy
        .call("demo__test_tool_with_logging", json!({}))
        .await
        .unwrap();
    // Back at `debug`, the same call's three messages arrive: whatever the first call let through
    // was forwarded before them.
    proxy
        .peer()
        .set_level(SetLevelRequestParams::new(LoggingLevel::Debug))
        .await
        .unwrap();
    proxy
        .call("demo__test_tool_with_logging", json!({}))
        .await
        .unwrap();
    let mut messages = Vec::new();
    while messages.last().map(String::as_str) != Some("Tool execution completed") {
        let message = proxy
            .next_event(|event| match event {
                Event::Log(log) if log.logger.as_deref().unwrap_or("").starts_with("demo") => {
                    Some(log.data.as_str().unwrap_or_default().to_owned())
                }
                _ => None,
            })
            .await;
        messages.push(message);
    }
    assert_eq!(
        messages,
        [
            "Tool execution started",
            "Tool processing data",
            "Tool execution completed"
        ],
        "a log passed the emergency level"
    );
}

#[tokio::test]
async fn sampling_elicitation_and_roots_are_answered_by_the_client() {
    let proxy = proxy().server("demo", demo()).start().await;
    proxy.wait_for_tool("demo__test_sampling").await;
    let sampled = proxy
        .call_text("demo__test_sampling", json!({"prompt": "Say hi"}))
        .await;
    assert!(sampled.contains("sampled by the test client"), "{sampled}");
    let elicited = proxy
        .call_text("demo__test_elicitation", json!({"message": "Who are you?"}))
        .await;
    assert!(elicited.contains("tester"), "{elicited}");
    let roots = proxy.call_text("demo__roots", json!({})).await;
    assert!(roots.contains("file:///tmp/test-root"), "{roots}");
    let asked = proxy.requests.lock().unwrap().clone();
    assert!(
        asked.contains(&"sampling/createMessage".to_owned()),
        "{asked:?}"
    );
    assert!(
        asked.contains(&"elicitation/create".to_owned()),
        "{asked:?}"
    );
    assert!(asked.contains(&"roots/list".to_owned()), "{asked:?}");
}

#[tokio::test]
async fn cancellation_reaches_the_downstream_request() {
    let proxy = proxy().server("demo", demo()).start().await;
    proxy.wait_for_tool("demo__sleep").await;
    let mut arguments = serde_json::Map::new();
    arguments.insert("ms".into(), json!(60_000));
    let request = ClientRequest::CallToolRequest(Request::new(
        CallToolRequestParams::new("demo__sleep").with_arguments(arguments),
    ));
    let handle = proxy
        .peer()
        .send_request_with_option(request, Default::default())
        .await
        .unwrap();
    // Cancelled once the proxy has sent the call on to the server.
    proxy
        .log
        .wait_for("forwarding server=\"demo\" method=\"tools/call\"")
        .await;
    handle.cancel(Some("test cancels".into())).await.unwrap();
    proxy.log.wait_for("sleep cancelled by the client").await;
    // The proxy stays responsive.
    assert_eq!(
        proxy
            .call_text("demo__echo", json!({"message": "after"}))
            .await,
        "Echo: after"
    );
}

#[tokio::test]
async fn list_changes_are_relisted_and_notified() {
    let mut proxy = proxy().server("demo", demo()).start().await;
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
    let after = proxy.tool_names().await;
    assert_ne!(before, after, "the tool list changed behind the proxy");
}

#[tokio::test]
async fn resource_updates_reach_subscribers() {
    let mut proxy = proxy().server("demo", demo()).start().await;
    proxy.wait_for_tool("demo__touch_watched_resource").await;
    proxy
        .peer()
        .subscribe(SubscribeRequestParams::new("test://watched-resource"))
        .await
        .unwrap();
    let uri = proxy
        .touch_until_updated("demo__touch_watched_resource")
        .await;
    assert_eq!(uri, "test://watched-resource");
    proxy
        .peer()
        .unsubscribe(UnsubscribeRequestParams::new("test://watched-resource"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_slow_server_joins_later_with_a_list_changed() {
    // The slow server starts once the test lets it: when `gate` exists.
    let gate_dir = tempfile::tempdir().unwrap();
    let gate = gate_dir.path().join("go");
    let slow = json!({"command": "sh", "args": [
        "-c", "while [ ! -e \"$0\" ]; do sleep 0.05; done; exec \"$1\"",
        gate, demo_bin()]});
    let mut proxy = proxy()
        .server("fast", demo())
        .server("slow", slow)
        .arg("--startup-wait")
        .arg("1")
        .start()
        .await;
    // initialize waited one second at most, not for the slow server.
    assert!(!proxy.tool_names().await.contains(&"slow__echo".to_owned()));
    proxy.wait_for_tool("fast__echo").await;
    while proxy.events.try_recv().is_ok() {}
    std::fs::write(&gate, "").unwrap();
    proxy
        .next_event(|event| matches!(event, Event::ToolsChanged).then_some(()))
        .await;
    proxy.wait_for_tool("slow__echo").await;
    assert_eq!(
        proxy
            .call_text("slow__echo", json!({"message": "late"}))
            .await,
        "Echo: late"
    );
}
