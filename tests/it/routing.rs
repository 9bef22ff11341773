//! Routing: one catalog from several servers, each method reaching its owner with original names.

use std::path::Path;

use rmcp::model::*;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn merges_tools_of_three_servers_and_routes_calls_to_their_owners() {
    let proxy = proxy()
        .server("demo", demo())
        .server("everything", everything_stdio())
        .server("time", time_stdio())
        .start()
        .await;
    proxy.wait_for_tool("demo__echo").await;
    proxy.wait_for_tool("everything__echo").await;
    proxy.wait_for_tool("time__get_current_time").await;

    assert_eq!(
        proxy
            .call_text("demo__echo", json!({"message": "hi"}))
            .await,
        "Echo: hi"
    );
    assert_eq!(
        proxy
            .call_text("everything__echo", json!({"message": "hi"}))
            .await,
        "Echo: hi"
    );
    let now = proxy
        .call_text("time__get_current_time", json!({"timezone": "UTC"}))
        .await;
    assert!(now.contains("UTC"), "{now}");
    let sum = proxy
        .call("demo__add", json!({"a": 2, "b": 3}))
        .await
        .unwrap();
    assert_eq!(text_of(&sum), "5");
    let structured = sum
        .structured_content
        .expect("structuredContent passes through");
    assert_eq!(structured["sum"].as_f64(), Some(5.0), "{structured}");
}

#[tokio::test]
async fn tools_keep_annotations_output_schema_and_title() {
    let proxy = proxy().server("demo", demo()).start().await;
    proxy.wait_for_tool("demo__add").await;
    let tools = proxy.peer().list_all_tools().await.unwrap();
    let add = tools.iter().find(|tool| tool.name == "demo__add").unwrap();
    assert!(
        add.output_schema.is_some(),
        "outputSchema passes through: {add:?}"
    );
    assert!(add.input_schema.get("properties").is_some());
}

#[tokio::test]
async fn uuid_prefix_is_accepted_on_calls() {
    let proxy = proxy().server("demo", demo()).start().await;
    proxy.wait_for_tool("demo__echo").await;
    let uuid = proxy.server_uuid("demo").await;
    let text = proxy
        .call_text(&format!("{uuid}__echo"), json!({"message": "by uuid"}))
        .await;
    assert_eq!(text, "Echo: by uuid");
}

#[tokio::test]
async fn unknown_tool_is_invalid_params_naming_it() {
    let proxy = proxy().server("demo", demo()).start().await;
    proxy.wait_for_tool("demo__echo").await;
    let error = mcp_error(
        proxy
            .call("demo__no_such_tool", json!({}))
            .await
            .unwrap_err(),
    );
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
    assert!(
        error.message.contains("demo__no_such_tool"),
        "{}",
        error.message
    );
    // The unprefixed name is not a catalog name in the default mode.
    let error = mcp_error(
        proxy
            .call("echo", json!({"message": "x"}))
            .await
            .unwrap_err(),
    );
    assert!(error.message.contains("\"echo\""), "{}", error.message);
}

#[tokio::test]
async fn downstream_errors_keep_their_code_and_message() {
    let proxy = proxy().server("demo", demo()).start().await;
    proxy.wait_for_tool("demo__add").await;
    // A tool-level error passes through as isError.
    let result = proxy
        .call("demo__test_error_handling", json!({}))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true));
    // Bad arguments get the downstream's own JSON-RPC answer.
    let error = mcp_error(
        proxy
            .call("demo__add", json!({"a": "x"}))
            .await
            .unwrap_err(),
    );
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS, "{error:?}");
    assert_eq!(
        error.message,
        "failed to deserialize parameters: invalid type: string \"x\", expected f64"
    );
}

#[tokio::test]
async fn prompts_resources_templates_and_completion_reach_their_owner() {
    let proxy = proxy().server("demo", demo()).start().await;
    proxy.wait_for_tool("demo__echo").await;
    let peer = proxy.peer();

    let prompts = peer.list_all_prompts().await.unwrap();
    let names: Vec<_> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert!(
        names.contains(&"demo__test_prompt_with_arguments"),
        "{names:?}"
    );
    let prompt = peer
        .get_prompt(
            GetPromptRequestParams::new("demo__test_prompt_with_arguments").with_arguments(
                serde_json::from_value(json!({"arg1": "one", "arg2": "two"})).unwrap(),
            ),
        )
        .await
        .unwrap();
    let text = serde_json::to_string(&prompt.messages).unwrap();
    assert!(text.contains("one") && text.contains("two"), "{text}");

    let resources = peer.list_all_resources().await.unwrap();
    assert!(resources.iter().any(|r| r.uri == "test://static-text"));
    let read = peer
        .read_resource(ReadResourceRequestParams::new("test://static-text"))
        .await
        .unwrap();
    assert!(!read.contents.is_empty());

    let templates = peer.list_all_resource_templates().await.unwrap();
    assert!(
        templates
            .iter()
            .any(|t| t.uri_template == "test://template/{id}/data")
    );
    let read = peer
        .read_resource(ReadResourceRequestParams::new("test://template/42/data"))
        .await
        .unwrap();
    assert!(serde_json::to_string(&read).unwrap().contains("42"));

    let completion = peer
        .complete_prompt_simple("demo__test_prompt_with_arguments", "arg1", "")
        .await
        .unwrap();
    assert!(
        !completion.is_empty(),
        "completion values come from the demo server"
    );

    let error = mcp_error(
        peer.read_resource(ReadResourceRequestParams::new("test://nowhere"))
            .await
            .unwrap_err(),
    );
    assert!(
        error.message.contains("test://nowhere"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn custom_instructions_are_a_prompt_and_in_initialize() {
    let proxy = proxy()
        .server(
            "Docs Server",
            json!({"command": demo_bin(), "instructions": ["Always cite the page.", {"role": "system", "content": "Be brief."}]}),
        )
        .start()
        .await;
    let info = proxy.peer().peer_info().unwrap();
    let instructions = info.instructions.clone().unwrap_or_default();
    assert!(
        instructions.contains("Always cite the page."),
        "{instructions}"
    );
    let prompt = proxy
        .peer()
        .get_prompt(GetPromptRequestParams::new("docs-server__instructions"))
        .await
        .unwrap();
    let text = serde_json::to_string(&prompt.messages).unwrap();
    assert!(
        text.contains("Always cite the page.") && text.contains("System: Be brief."),
        "{text}"
    );
}

#[tokio::test]
async fn prefix_mode_auto_and_never() {
    let auto = proxy()
        .server("a", demo())
        .server("b", demo_with(&["--extra-tools", "1"]))
        .arg("--prefix-mode")
        .arg("auto")
        .start()
        .await;
    // Both servers must be in: before `a` connects, `b`'s echo is not ambiguous yet.
    auto.log.wait_for("downstream{server=a}: connected").await;
    auto.log.wait_for("downstream{server=b}: connected").await;
    let names = auto.tool_names().await;
    assert!(
        names.contains(&"a__echo".to_owned()) && names.contains(&"b__echo".to_owned()),
        "{names:?}"
    );
    assert!(
        auto.call_text("tool_0", json!({"text": "x"}))
            .await
            .contains('x')
    );

    let never = proxy()
        .server("a", demo())
        .server("b", demo_with(&["--extra-tools", "1"]))
        .arg("--prefix-mode")
        .arg("never")
        .start()
        .await;
    never.log.wait_for("downstream{server=a}: connected").await;
    never.log.wait_for("downstream{server=b}: connected").await;
    let names = never.tool_names().await;
    assert!(
        !names.iter().any(|n| n == "echo"),
        "ambiguous names are not listed: {names:?}"
    );
    let error = mcp_error(
        never
            .call("echo", json!({"message": "x"}))
            .await
            .unwrap_err(),
    );
    assert!(
        error.message.contains("several servers") && error.message.contains("a, b"),
        "{}",
        error.message
    );
    assert_eq!(
        never.call_text("b__echo", json!({"message": "x"})).await,
        "Echo: x"
    );
}

#[tokio::test]
async fn large_catalogs_are_paginated() {
    let proxy = proxy()
        .server("big", demo_with(&["--extra-tools", "45"]))
        .arg("--page-size")
        .arg("10")
        .start()
        .await;
    proxy.wait_for_tool("big__tool_44").await;
    let first = proxy.peer().list_tools(None).await.unwrap();
    assert_eq!(first.tools.len(), 10);
    assert!(first.next_cursor.is_some());
    let all = proxy.peer().list_all_tools().await.unwrap();
    assert!(all.len() > 45, "{}", all.len());
    let error = mcp_error(
        proxy
            .peer()
            .list_tools(Some(
                PaginatedRequestParams::default().with_cursor(Some("bogus".into())),
            ))
            .await
            .unwrap_err(),
    );
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
    assert_eq!(error.message, "invalid cursor \"bogus\"");
}

#[tokio::test]
async fn announced_capabilities_are_what_the_servers_support() {
    // mcp-server-time offers tools, prompts and resources, but no logging, completions or
    // subscriptions.
    let time_only = proxy()
        .server("time", time_stdio())
        .start_after(Some("connected server_info=mcp-time"))
        .await;
    let caps = time_only.peer().peer_info().unwrap().capabilities.clone();
    assert!(caps.tools.is_some());
    assert!(caps.completions.is_none(), "{caps:?}");
    assert!(caps.logging.is_none(), "{caps:?}");
    assert_ne!(
        caps.resources.as_ref().and_then(|r| r.subscribe),
        Some(true),
        "{caps:?}"
    );

    let demo_only = proxy()
        .server("demo", demo())
        .start_after(Some("connected server_info=pluggedin-demo-server"))
        .await;
    let caps = demo_only.peer().peer_info().unwrap().capabilities.clone();
    assert!(
        caps.completions.is_some() && caps.logging.is_some(),
        "{caps:?}"
    );
    assert_eq!(
        caps.resources.as_ref().and_then(|r| r.subscribe),
        Some(true),
        "{caps:?}"
    );
    assert_eq!(caps.tools.as_ref().and_then(|t| t.list_changed), Some(true));
}

#[tokio::test]
async fn the_bundled_example_configuration_works() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mcp.json");
    let proxy = proxy().config_file(&example).start().await;
    proxy.wait_for_tool("demo__add").await;
    proxy.wait_for_tool("calculator__add").await;
    let names = proxy.tool_names().await;
    assert!(
        !names.contains(&"calculator__sleep".to_owned()),
        "the allow list applies: {names:?}"
    );
    let error = mcp_error(
        proxy
            .call("calculator__sleep", json!({"ms": 1}))
            .await
            .unwrap_err(),
    );
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
    assert_eq!(
        error.message,
        "tool \"calculator__sleep\" is left out by the \"tools\" filter of server \"calculator\" \
         in the config"
    );
    assert_eq!(
        proxy
            .call_text("calculator__add", json!({"a": 2, "b": 3}))
            .await,
        "5"
    );
}
