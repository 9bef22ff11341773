//! Editing the config while the proxy runs.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn edits_start_stop_and_restart_only_the_changed_servers() {
    let mut proxy = proxy()
        .server("keep", demo())
        .server("drop", demo())
        .start()
        .await;
    proxy.wait_for_tool("keep__pid").await;
    proxy.wait_for_tool("drop__echo").await;
    let keep_pid = proxy.call_text("keep__pid", json!({})).await;

    while proxy.events.try_recv().is_ok() {}
    proxy.rewrite_config(json!({"keep": demo(), "added": demo()}));
    proxy
        .next_event(|event| matches!(event, Event::ToolsChanged).then_some(()))
        .await;
    proxy.wait_for_tool("added__echo").await;
    let names = proxy.tool_names().await;
    assert!(!names.iter().any(|n| n.starts_with("drop__")), "{names:?}");
    // The untouched server kept its process.
    assert_eq!(proxy.call_text("keep__pid", json!({})).await, keep_pid);
}

#[tokio::test]
async fn a_broken_edit_is_refused_and_the_running_config_stays() {
    let proxy = proxy().server("demo", demo()).start().await;
    proxy.wait_for_tool("demo__echo").await;
    std::fs::write(&proxy.config_path, "{\"mcpServers\": {\"demo\": ").unwrap();
    proxy.log.wait_for("config edit refused").await;
    assert_eq!(
        proxy
            .call_text("demo__echo", json!({"message": "still"}))
            .await,
        "Echo: still"
    );
}
