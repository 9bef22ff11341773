//! The config's `"toolHints"` as a client sees them: in `tools/list`, each tool's `_meta` holds
//! the hints clients that search tools themselves read, and a configured description replaces
//! the server's; an edit of the file changes them for the running proxy without restarting the
//! server.

use rmcp::model::Tool;
use serde_json::{Value, json};

use crate::support::*;

fn demo_with_hints(hints: Value) -> Value {
    // The counter tells whether an edit restarted the server: it counts in memory.
    let mut server = demo_with(&["--counter"]);
    server["toolHints"] = hints;
    server
}

fn meta(tools: &[Tool], name: &str) -> serde_json::Map<String, Value> {
    tools
        .iter()
        .find(|tool| tool.name == name)
        .unwrap_or_else(|| panic!("no tool {name}"))
        .meta
        .clone()
        .map(|meta| meta.0)
        .unwrap_or_default()
}

fn description<'a>(tools: &'a [Tool], name: &str) -> &'a str {
    tools
        .iter()
        .find(|tool| tool.name == name)
        .and_then(|tool| tool.description.as_deref())
        .unwrap_or_default()
}

#[tokio::test]
async fn configured_hints_reach_the_clients_tool_list_and_follow_edits_of_the_config() {
    let mut proxy = proxy()
        .server(
            "demo",
            demo_with_hints(json!({
                "*": {"searchHint": "demo toolbox"},
                "echo": {"alwaysLoad": true, "searchHint": "repeat say back",
                         "description": "Says the message back, word for word."}
            })),
        )
        .start()
        .await;
    proxy.wait_for_tool("demo__echo").await;
    let tools = proxy.peer().list_all_tools().await.unwrap();
    let echo = meta(&tools, "demo__echo");
    assert_eq!(echo["anthropic/alwaysLoad"], true);
    assert_eq!(echo["anthropic/searchHint"], "repeat say back");
    assert_eq!(
        description(&tools, "demo__echo"),
        "Says the message back, word for word."
    );
    // "*" alone: its search hint, no alwaysLoad, the server's own description.
    let add = meta(&tools, "demo__add");
    assert_eq!(add["anthropic/searchHint"], "demo toolbox");
    assert!(!add.contains_key("anthropic/alwaysLoad"), "{add:?}");
    assert_eq!(description(&tools, "demo__add"), "Adds two numbers");
    // The built-in tools carry their own hints, none loaded up front.
    let clipboard = meta(&tools, "pluggedin_clipboard_get");
    assert!(
        clipboard["anthropic/searchHint"]
            .as_str()
            .unwrap()
            .contains("paste")
    );
    assert_eq!(clipboard["anthropic/alwaysLoad"], false);
    // The call still reaches the server's tool under its own name.
    assert_eq!(
        proxy
            .call_text("demo__echo", json!({"message": "hi"}))
            .await,
        "Echo: hi"
    );
    assert_eq!(proxy.call_text("demo__count", json!({})).await, "1");

    while proxy.events.try_recv().is_ok() {}
    proxy.rewrite_config(json!({"demo": demo_with_hints(json!({
        "echo": {"alwaysLoad": false, "searchHint": "parrot"}
    }))}));
    let tools = loop {
        proxy
            .next_event(|event| matches!(event, Event::ToolsChanged).then_some(()))
            .await;
        let tools = proxy.peer().list_all_tools().await.unwrap();
        if tools.iter().any(|tool| tool.name == "demo__echo")
            && meta(&tools, "demo__echo").get("anthropic/searchHint") == Some(&json!("parrot"))
        {
            break tools;
        }
    };
    assert_eq!(meta(&tools, "demo__echo")["anthropic/alwaysLoad"], false);
    assert_eq!(description(&tools, "demo__echo"), "Echoes the message back");
    assert!(
        meta(&tools, "demo__add").is_empty(),
        "the \"*\" hint is gone"
    );
    // The same process still counts: hints changed how its tools are shown, nothing else.
    assert_eq!(proxy.call_text("demo__count", json!({})).await, "2");
}

#[tokio::test]
async fn a_bad_hint_in_an_edit_is_refused_naming_the_field_and_the_running_hints_stay() {
    let proxy = proxy()
        .server(
            "demo",
            demo_with_hints(json!({"echo": {"searchHint": "repeat"}})),
        )
        .start()
        .await;
    proxy.wait_for_tool("demo__echo").await;
    proxy.rewrite_config(json!({"demo": demo_with_hints(json!({
        "*": {"description": "one for all"}
    }))}));
    proxy.log.wait_for("toolHints.*.description").await;
    let tools = proxy.peer().list_all_tools().await.unwrap();
    assert_eq!(meta(&tools, "demo__echo")["anthropic/searchHint"], "repeat");
}
