//! App mode, through the real binary and a real rmcp client, against the stand-in App
//! (`app_stub.rs`) and real downstream demo servers that the stand-in lists.

use std::collections::BTreeMap;

use rmcp::model::{GetPromptRequestParams, ReadResourceRequestParams};
use serde_json::{Value, json};

use crate::app_stub::{AppStub, KEY};
use crate::support::*;

pub const DEMO: &str = "550e8400-e29b-41d4-a716-446655440000";
pub const OTHER: &str = "6ba7b810-9dad-41d1-80b4-00c04fd430c8";
pub const WEB: &str = "7d444840-9dc0-41d2-a5e5-0c0f7e1a3b2c";

pub fn demo_server(uuid: &str, name: &str, slug: Option<&str>) -> Value {
    let mut server = json!({
        "uuid": uuid, "name": name, "type": "STDIO", "command": demo_bin(), "args": [],
        "env": {}, "status": "ACTIVE", "profile_uuid": "p", "source": "PLUGGEDIN",
        "created_at": "2026-01-01T00:00:00.000Z"
    });
    if let Some(slug) = slug {
        server["slug"] = json!(slug);
    }
    server
}

pub fn app_tool(name: &str, server: &str, description: &str) -> Value {
    json!({"name": name, "description": description,
           "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}, "a": {"type": "number"}, "b": {"type": "number"}}},
           "_serverUuid": server, "_serverName": "x"})
}

/// The stand-in with two demo servers: "Demo" (slug `demo-server`) offering `echo` and
/// `test_error_handling`, and "Other" (no slug) offering `add`. The demo servers have more tools;
/// what the App does not list (switched off there) must stay off.
pub async fn standard_app() -> AppStub {
    let app = AppStub::start().await;
    let mut demo = demo_server(DEMO, "Demo", Some("demo-server"));
    demo["customInstructions"] = json!([{"role": "user", "content": [{"type": "text", "text": "This server is read-only."}]}]);
    app.set_servers(json!([demo, demo_server(OTHER, "Other", None)]));
    app.set_tools(json!([
        app_tool("demo-server__echo", DEMO, "Echo text"),
        app_tool("demo-server__test_error_handling", DEMO, "Fails"),
        app_tool(&format!("{OTHER}__add"), OTHER, "Adds"),
    ]));
    app
}

/// The local config file's settings that still apply in App mode. The App's servers here are
/// local demo processes and loopback URLs, which the security policy for App-origin servers
/// refuses unless the operator allows them (`security`).
pub fn local_settings() -> Value {
    json!({"allowLocalTargets": true, "allowedCommands": [demo_bin()]})
}

/// A config file for App mode: no servers of its own, the settings above, an extra HTTP token.
pub fn app_config_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("settings.json");
    std::fs::write(
        &path,
        json!({"mcpServers": {}, "authTokens": ["file-token"], "security": local_settings()})
            .to_string(),
    )
    .unwrap();
    path
}

pub fn in_app_mode(builder: ProxyBuilder, app: &AppStub) -> ProxyBuilder {
    builder
        .config_key("security", local_settings())
        .env("PLUGGEDIN_API_KEY", KEY)
        .env("PLUGGEDIN_API_BASE_URL", &app.url())
}

pub async fn app_proxy(app: &AppStub) -> Proxy {
    in_app_mode(proxy(), app).start().await
}

/// Runs the binary with a command in App mode (async: the stand-in runs on this test's runtime).
pub async fn run_cli(
    app: &AppStub,
    data_dir: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    std::fs::create_dir_all(data_dir).unwrap();
    tokio::process::Command::new(proxy_bin())
        .env("PLUGGEDIN_API_KEY", KEY)
        .env("PLUGGEDIN_API_BASE_URL", app.url())
        .env("RUST_LOG", "warn")
        .arg("--config")
        .arg(app_config_file(data_dir))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .await
        .unwrap()
}

pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn app_catalog_is_listed_and_calls_route_to_live_servers() {
    let app = standard_app().await;
    let proxy = app_proxy(&app).await;

    // A call before any tools/list works (the original needed a keyed tools/list first).
    let echoed = proxy
        .call_text("demo-server__echo", json!({"message": "first"}))
        .await;
    assert!(echoed.contains("first"), "{echoed}");

    // The catalog is what the App lists, after the built-in tools, without the App's fields.
    let tools = proxy.peer().list_all_tools().await.unwrap();
    let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    let dynamic: Vec<&str> = names
        .iter()
        .filter(|name| !name.starts_with("pluggedin_"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        dynamic,
        [
            "demo-server__echo",
            "demo-server__test_error_handling",
            &format!("{OTHER}__add")
        ]
    );
    assert!(names[0].starts_with("pluggedin_"));
    let wire = serde_json::to_value(&tools).unwrap();
    assert!(
        !wire.to_string().contains("_serverUuid") && !wire.to_string().contains("_serverName"),
        "{wire}"
    );

    // The App's custom instructions reach the client, under the App's prefix.
    let instructions = proxy
        .peer()
        .peer_info()
        .and_then(|info| info.instructions.clone())
        .unwrap_or_default();
    assert!(
        instructions.contains("## Demo (tools prefixed demo-server__)")
            && instructions.contains("This server is read-only."),
        "{instructions}"
    );

    // Discovery reports what the App lists, not everything the live server has.
    let report = proxy.call_text("pluggedin_discover_tools", json!({})).await;
    assert!(report.contains("**demo-server__echo**"), "{report}");
    assert!(!report.contains("demo-server__add"), "{report}");
    assert!(report.contains("This server is read-only."), "{report}");

    // Unprefixed names work when one server offers them; UUID prefixes work.
    assert!(
        proxy
            .call_text("add", json!({"a": 2, "b": 3}))
            .await
            .contains('5')
    );
    assert!(
        proxy
            .call_text(&format!("{OTHER}__add"), json!({"a": 1, "b": 1}))
            .await
            .contains('2')
    );
    assert!(
        proxy
            .call_text(&format!("{DEMO}__echo"), json!({"message": "by uuid"}))
            .await
            .contains("by uuid")
    );
    // The demo server has `add` too, but the App does not list it for Demo: it stays off.
    let error = proxy
        .call("demo-server__add", json!({"a": 1, "b": 1}))
        .await
        .unwrap_err();
    assert!(
        mcp_error(error).message.contains("unknown tool"),
        "switched-off tool must not be callable"
    );

    // Activity: the original's body, off the call path.
    let reports = app
        .wait_requests("POST", "/api/notifications/mcp-activity", 4)
        .await;
    let echo = reports
        .iter()
        .find(|r| r.body["itemName"] == json!("echo"))
        .unwrap();
    assert_eq!(
        keys(&echo.body),
        [
            "action",
            "executionTime",
            "itemName",
            "serverName",
            "serverUuid",
            "success"
        ]
    );
    assert_eq!(echo.body["action"], json!("tool_call"));
    assert_eq!(echo.body["serverName"], json!("Demo"));
    assert_eq!(echo.body["serverUuid"], json!(DEMO));
    assert_eq!(echo.body["success"], json!(true));
    assert!(echo.body["executionTime"].is_i64());
    assert_eq!(
        echo.authorization.as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );

    // A downstream isError result is answered as it is (how it is reported: `app_contract`).
    let failed = proxy
        .call_error("demo-server__test_error_handling", json!({}))
        .await;
    assert!(failed.contains("intentionally"));
    // The App raises its own alerts: the proxy creates no notification for the failure.
    assert!(
        app.requests_to("POST", "/api/notifications/custom")
            .is_empty()
    );
}

/// A demo server over HTTP: its process and URL.
async fn demo_over(flag: &str, extra: &[&str]) -> (Background, String) {
    let mut args = vec![flag, "0"];
    args.extend_from_slice(extra);
    let server = Background::start(demo_bin(), &args, &[], "listening on http://").await;
    let url = listening_url(&server.log).await;
    (server, url)
}

#[tokio::test]
async fn sse_and_streamable_http_servers_come_from_the_app_too() {
    let (_sse, sse_url) = demo_over("--sse", &[]).await;
    let (_http, http_url) = demo_over("--http", &["--require-token", "t0k3n"]).await;
    let app = AppStub::start().await;
    app.set_servers(json!([
        {"uuid": DEMO, "name": "Legacy", "slug": "legacy", "type": "SSE", "url": sse_url},
        {"uuid": WEB, "name": "Web", "slug": "web", "type": "STREAMABLE_HTTP", "url": http_url,
         "streamableHTTPOptions": {"headers": {"Authorization": "Bearer t0k3n"}}},
        {"uuid": OTHER, "name": "Broken", "type": "SSE"}
    ]));
    app.set_tools(json!([
        app_tool("legacy__echo", DEMO, "Echo"),
        app_tool("web__add", WEB, "Adds"),
    ]));
    let proxy = app_proxy(&app).await;
    assert!(
        proxy
            .call_text("legacy__echo", json!({"message": "over sse"}))
            .await
            .contains("over sse")
    );
    assert!(
        proxy
            .call_text("web__add", json!({"a": 40, "b": 2}))
            .await
            .contains("42")
    );
    // An SSE entry without a URL is skipped, as the original does, and said so.
    proxy.log.wait_for("App server skipped").await;
}

#[tokio::test]
async fn prompts_and_resources_resolve_through_the_app() {
    let app = standard_app().await;
    app.set_prompts(
        json!([{"name": "test_simple_prompt", "description": "A simple prompt", "arguments": []}]),
        DEMO,
    );
    app.set_resources(
        json!([{"uri": "test://static-text", "name": "Static text", "mimeType": "text/plain"}]),
        json!([{"uriTemplate": "test://template/{id}/data", "name": "Template", "mediaType": "application/json"}]),
        DEMO,
    );
    let proxy = app_proxy(&app).await;

    let prompts = proxy.peer().list_all_prompts().await.unwrap();
    assert_eq!(
        prompts.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        [
            "pluggedin_proxy_capabilities",
            "demo-server__instructions",
            "test_simple_prompt"
        ]
    );
    // The App's custom instructions are a prompt answered here (no resolve at the App).
    let instructions = proxy
        .peer()
        .get_prompt(GetPromptRequestParams::new("demo-server__instructions"))
        .await
        .unwrap();
    assert!(
        serde_json::to_string(&instructions)
            .unwrap()
            .contains("This server is read-only."),
        "{instructions:?}"
    );
    assert!(app.requests_to("GET", "/api/resolve/prompt").is_empty());
    let resources = proxy.peer().list_all_resources().await.unwrap();
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0].uri, "test://static-text");
    let templates = proxy.peer().list_all_resource_templates().await.unwrap();
    assert_eq!(templates[0].mime_type.as_deref(), Some("application/json"));

    let prompt = proxy
        .peer()
        .get_prompt(GetPromptRequestParams::new("test_simple_prompt"))
        .await
        .unwrap();
    assert!(!prompt.messages.is_empty());
    let resolve = app.wait_request("GET", "/api/resolve/prompt").await;
    assert_eq!(resolve.query, "name=test_simple_prompt");

    let read = proxy
        .peer()
        .read_resource(ReadResourceRequestParams::new("test://static-text"))
        .await
        .unwrap();
    assert!(serde_json::to_string(&read).unwrap().contains("static"));
    let resolve = app.wait_request("GET", "/api/resolve/resource").await;
    assert_eq!(resolve.query, "uri=test%3A%2F%2Fstatic-text");

    // A template URI the App resolves to the same server.
    app.own_resource("test://template/42/data", DEMO);
    let read = proxy
        .peer()
        .read_resource(ReadResourceRequestParams::new("test://template/42/data"))
        .await
        .unwrap();
    assert!(serde_json::to_string(&read).unwrap().contains("42"));

    // The App's 404 reaches the client sanitised, naming the resource.
    let error = mcp_error(
        proxy
            .peer()
            .read_resource(ReadResourceRequestParams::new("test://nowhere"))
            .await
            .unwrap_err(),
    );
    assert!(
        error.message.contains("test://nowhere") && error.message.contains("Resource not found"),
        "{}",
        error.message
    );

    let reports = app
        .wait_requests("POST", "/api/notifications/mcp-activity", 5)
        .await;
    let prompt_get = reports
        .iter()
        .find(|r| r.body["itemName"] == json!("test_simple_prompt"))
        .unwrap();
    assert_eq!(prompt_get.body["action"], json!("prompt_get"));
    assert_eq!(prompt_get.body["serverUuid"], json!(DEMO));
    assert_eq!(prompt_get.body["serverName"], json!("Demo"));
    let instructions = reports
        .iter()
        .find(|r| r.body["itemName"] == json!("demo-server__instructions"))
        .unwrap();
    assert_eq!(
        instructions.body["serverName"],
        json!("Custom Instructions")
    );
    assert_eq!(instructions.body["serverUuid"], json!(DEMO));
    let read_reports: Vec<_> = reports
        .iter()
        .filter(|r| r.body["action"] == json!("resource_read"))
        .collect();
    assert!(read_reports.iter().any(
        |r| r.body["success"] == json!(false) && r.body["itemName"] == json!("test://nowhere")
    ));
}

#[tokio::test]
async fn completion_and_subscriptions_find_their_owner_through_the_app() {
    let app = standard_app().await;
    app.set_prompts(
        json!([{"name": "test_prompt_with_arguments", "arguments": [{"name": "arg1", "required": true}]}]),
        DEMO,
    );
    app.set_resources(
        json!([{"uri": "test://watched-resource", "name": "Watched"}]),
        json!([]),
        DEMO,
    );
    app.set_tools(json!([app_tool(
        "demo-server__touch_watched_resource",
        DEMO,
        "Touch"
    )]));
    let mut proxy = app_proxy(&app).await;
    let completion = proxy
        .peer()
        .complete_prompt_simple("test_prompt_with_arguments", "arg1", "pa")
        .await
        .unwrap();
    assert_eq!(completion, ["paris", "park", "party"]);
    // A prompt the App cannot place gets no suggestions, not an error.
    let none = proxy
        .peer()
        .complete_prompt_simple("unknown_prompt", "arg1", "")
        .await
        .unwrap();
    assert!(none.is_empty());

    proxy
        .peer()
        .subscribe(rmcp::model::SubscribeRequestParams::new(
            "test://watched-resource",
        ))
        .await
        .unwrap();
    proxy
        .call("demo-server__touch_watched_resource", json!({}))
        .await
        .unwrap();
    let uri = proxy
        .next_event(|event| match event {
            Event::ResourceUpdated(uri) => Some(uri.clone()),
            _ => None,
        })
        .await;
    assert_eq!(uri, "test://watched-resource");
    proxy
        .peer()
        .unsubscribe(rmcp::model::UnsubscribeRequestParams::new(
            "test://watched-resource",
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn app_errors_reach_clients_sanitised_and_slow_answers_time_out() {
    let app = standard_app().await;
    app.set_prompts(
        json!([{"name": "test_simple_prompt", "arguments": []}]),
        DEMO,
    );
    let proxy = in_app_mode(proxy(), &app)
        .env("PLUGGEDIN_APP_TIMEOUT_SECS", "2")
        .start()
        .await;
    let prompt = |name: &'static str| {
        let peer = proxy.peer().clone();
        async move {
            mcp_error(
                peer.get_prompt(GetPromptRequestParams::new(name))
                    .await
                    .unwrap_err(),
            )
            .message
        }
    };
    app.fail(
        "/api/resolve/prompt",
        429,
        json!({"error": "Too many requests", "limit": 100, "remaining": 0, "reset": 0}),
    );
    let message = prompt("test_simple_prompt").await;
    assert!(
        message.contains("Rate limit exceeded. Please try again later"),
        "{message}"
    );
    app.fail(
        "/api/resolve/prompt",
        401,
        json!({"error": "No active profile found for this API key"}),
    );
    let message = prompt("test_simple_prompt").await;
    assert!(message.contains("Authentication failed"), "{message}");
    assert!(!message.contains(KEY));

    // Built-in tools: the App's 401 and 500 become the fixed texts.
    app.fail("/api/clipboard", 401, json!({"error": "Invalid API key"}));
    let text = proxy
        .call_error("pluggedin_clipboard_list", json!({}))
        .await;
    assert!(text.contains("Authentication failed"), "{text}");
    app.fail(
        "/api/notifications",
        500,
        json!({"error": "db down at postgres://u:pw@h"}),
    );
    let text = proxy
        .call_error("pluggedin_list_notifications", json!({}))
        .await;
    assert!(text.contains("Service temporarily unavailable"), "{text}");
    assert!(!text.contains("pw@h"), "{text}");
    app.clear_failures();

    // A slow App: the request is bounded by the App timeout, the proxy stays up.
    app.hold("POST /api/rag/query");
    let text = proxy
        .call_error("pluggedin_ask_knowledge_base", json!({"query": "status?"}))
        .await;
    assert!(text.contains("Request timed out"), "{text}");
    app.release("POST /api/rag/query");
    let text = proxy
        .call_text("pluggedin_ask_knowledge_base", json!({"query": "status?"}))
        .await;
    assert!(text.contains("The release is green."), "{text}");

    // A slow App never slows a call: activity reports wait at the App while calls answer.
    app.hold("POST /api/notifications/mcp-activity");
    for i in 0..5 {
        let message = format!("while the App is slow {i}");
        let text = proxy
            .call_text("demo-server__echo", json!({"message": message}))
            .await;
        assert!(text.contains(&message), "{text}");
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while app.held("POST /api/notifications/mcp-activity") == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no report reached the App"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    app.release("POST /api/notifications/mcp-activity");

    let log = proxy.log.text();
    assert!(!log.contains(KEY), "the key leaked into the log");
}

#[tokio::test]
async fn every_builtin_tool_speaks_the_app() {
    let app = standard_app().await;
    let proxy = app_proxy(&app).await;
    let doc = "7c6d5e4f-3a2b-4c1d-9e8f-7a6b5c4d3e2f";
    let last = |method: &str, path: &str| {
        app.requests_to(method, path)
            .pop()
            .unwrap_or_else(|| panic!("no {method} {path}"))
    };

    // Knowledge base: {query, includeMetadata:true}; the original's JSON answer.
    let text = proxy
        .call_text(
            "pluggedin_ask_knowledge_base",
            json!({"query": "Is the release green?"}),
        )
        .await;
    assert_eq!(
        last("POST", "/api/rag/query").body,
        json!({"query": "Is the release green?", "includeMetadata": true})
    );
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["answer"], json!("The release is green."));
    assert_eq!(
        answer["sources"],
        json!([{"name": "Release notes", "id": doc, "version": null, "relevance": null}])
    );
    assert_eq!(answer["metadata"]["sourceCount"], json!(1));

    // Notifications.
    let text = proxy
        .call_text(
            "pluggedin_send_notification",
            json!({"title": "Deploy", "message": "Done", "severity": "SUCCESS", "sendEmail": true}),
        )
        .await;
    assert_eq!(text, "Notification created and email sent");
    assert_eq!(
        last("POST", "/api/notifications/custom").body,
        json!({"title": "Deploy", "message": "Done", "severity": "SUCCESS", "sendEmail": true})
    );
    let text = proxy
        .call_text(
            "pluggedin_list_notifications",
            json!({"onlyUnread": true, "limit": 5}),
        )
        .await;
    assert_eq!(
        last("GET", "/api/notifications").query,
        "onlyUnread=true&limit=5"
    );
    assert!(
        text.starts_with("Found 1 notification (unread only):\n\n1. **Build finished**"),
        "{text}"
    );
    assert!(text.contains("ID: 3f8a1c2e-4b5d-4e6f-8a9b-0c1d2e3f4a5b (use this ID for operations)"));
    assert!(text.contains("Type: CUSTOM | Severity: SUCCESS"));
    assert!(text.contains("   Link: https://plugged.in/notifications"));
    let text = proxy
        .call_text(
            "pluggedin_mark_notification_done",
            json!({"notificationId": "3f8a1c2e-4b5d-4e6f-8a9b-0c1d2e3f4a5b"}),
        )
        .await;
    assert_eq!(text, "Notification marked as done");
    let patch = last(
        "PATCH",
        "/api/notifications/3f8a1c2e-4b5d-4e6f-8a9b-0c1d2e3f4a5b/completed",
    );
    assert_eq!(patch.body, json!({}));
    // The App toggles; a notification it lists as completed already is not toggled back.
    app.answer(
        "GET /api/notifications",
        200,
        json!({"success": true, "notifications": [{"id": "3f8a1c2e-4b5d-4e6f-8a9b-0c1d2e3f4a5b",
               "type": "CUSTOM", "title": "t", "message": "m", "read": true, "severity": "INFO",
               "completed": true, "created_at": "2026-01-02T03:04:05.000Z"}]}),
    );
    let patches = app
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    let text = proxy
        .call_text(
            "pluggedin_mark_notification_done",
            json!({"notificationId": "3f8a1c2e-4b5d-4e6f-8a9b-0c1d2e3f4a5b"}),
        )
        .await;
    assert_eq!(text, "Notification marked as done");
    assert_eq!(
        app.requests()
            .iter()
            .filter(|r| r.method == "PATCH")
            .count(),
        patches
    );
    let unknown = "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e";
    let text = proxy
        .call_error(
            "pluggedin_delete_notification",
            json!({"notificationId": unknown}),
        )
        .await;
    assert!(text.contains("not found"), "{text}");
    assert_eq!(
        last("DELETE", &format!("/api/notifications/{unknown}")).method,
        "DELETE"
    );

    // Clipboard: writes carry source "mcp".
    let text = proxy
        .call_text(
            "pluggedin_clipboard_set",
            json!({"name": "k", "value": "hello", "createdByTool": "test"}),
        )
        .await;
    assert!(
        text.starts_with("Clipboard entry set successfully!\nname=\"k\"\nSize: 5 bytes"),
        "{text}"
    );
    assert_eq!(
        last("POST", "/api/clipboard").body,
        json!({"name": "k", "value": "hello", "contentType": "text/plain", "encoding": "utf-8",
               "visibility": "private", "createdByTool": "test", "ttlSeconds": 86400, "source": "mcp"})
    );
    let text = proxy
        .call_text("pluggedin_clipboard_get", json!({"name": "k"}))
        .await;
    assert_eq!(
        last("GET", "/api/clipboard").query,
        "name=k&limit=50&offset=0"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["value"],
        json!("stored")
    );
    let text = proxy
        .call_error("pluggedin_clipboard_get", json!({"name": "missing"}))
        .await;
    assert!(text.contains("Clipboard entry not found"), "{text}");
    let text = proxy
        .call_text("pluggedin_clipboard_list", json!({"limit": 10}))
        .await;
    assert_eq!(last("GET", "/api/clipboard").query, "limit=10&offset=0");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["total"],
        json!(1)
    );
    let text = proxy
        .call_text("pluggedin_clipboard_delete", json!({"name": "k"}))
        .await;
    assert_eq!(text, "Deleted 1 clipboard entry");
    assert_eq!(
        last("DELETE", "/api/clipboard").body,
        json!({"name": "k", "clearAll": false})
    );
    let text = proxy
        .call_text("pluggedin_clipboard_push", json!({"value": "pushed"}))
        .await;
    assert!(
        text.starts_with("Pushed to clipboard at index 3\nSize: 6 bytes"),
        "{text}"
    );
    assert_eq!(
        last("POST", "/api/clipboard/push").body["source"],
        json!("mcp")
    );
    let text = proxy.call_text("pluggedin_clipboard_pop", json!({})).await;
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["value"],
        json!("popped")
    );
    assert_eq!(last("POST", "/api/clipboard/pop").body, json!({}));

    // Memory.
    let text = proxy
        .call_text(
            "pluggedin_memory_session_start",
            json!({"content_session_id": "chat-1"}),
        )
        .await;
    assert!(
        text.contains("Session UUID: 9b2f6d1e-0a4c-4e8b-9f3a-2c5d7e9f1a3b"),
        "{text}"
    );
    assert!(text.contains("Memory Session ID: ms_V1StGXR8_Z5jdHi6B-myT"));
    assert_eq!(
        last("POST", "/api/memory/sessions").body,
        json!({"content_session_id": "chat-1"})
    );
    proxy
        .call_text(
            "pluggedin_memory_observe",
            json!({"session_uuid": "9b2f6d1e-0a4c-4e8b-9f3a-2c5d7e9f1a3b", "type": "insight",
                   "content": "Prefers dark mode", "outcome": "success"}),
        )
        .await;
    assert_eq!(
        last(
            "POST",
            "/api/memory/sessions/9b2f6d1e-0a4c-4e8b-9f3a-2c5d7e9f1a3b/observations"
        )
        .body,
        json!({"type": "insight", "content": "Prefers dark mode", "outcome": "success"})
    );
    proxy
        .call_text(
            "pluggedin_memory_session_end",
            json!({"memory_session_id": "ms_V1StGXR8_Z5jdHi6B-myT"}),
        )
        .await;
    assert_eq!(
        last("PATCH", "/api/memory/sessions/ms_V1StGXR8_Z5jdHi6B-myT").body,
        json!({"action": "end"})
    );
    let text = proxy
        .call_text("pluggedin_memory_search", json!({"query": "dark mode"}))
        .await;
    assert_eq!(
        last("POST", "/api/memory/search").body,
        json!({"query": "dark mode", "top_k": 10, "include_gut": false})
    );
    assert!(
        text.contains("UUID: 5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"),
        "{text}"
    );
    assert!(text.contains("Similarity: 82%"), "{text}");
    let text = proxy
        .call_text(
            "pluggedin_memory_details",
            json!({"memory_uuids": ["5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"]}),
        )
        .await;
    assert_eq!(
        last("POST", "/api/memory/search/details").body,
        json!({"memory_uuids": ["5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"]})
    );
    assert!(
        text.contains("The user prefers dark mode in every editor."),
        "{text}"
    );

    // Documents.
    let text = proxy
        .call_text(
            "pluggedin_create_document",
            json!({"title": "T", "content": "C", "tags": ["a"],
                   "metadata": {"model": {"name": "claude", "provider": "anthropic"}}}),
        )
        .await;
    assert_eq!(
        text,
        format!("Document created successfully!\nID: {doc}\nTitle: T\nURL: /library/{doc}")
    );
    assert_eq!(
        last("POST", "/api/documents/ai").body,
        json!({"title": "T", "content": "C", "format": "md", "tags": ["a"], "category": "other",
               "metadata": {"model": {"name": "claude", "provider": "anthropic"}, "visibility": "private"}})
    );
    let text = proxy
        .call_text(
            "pluggedin_list_documents",
            json!({"filters": {"source": "ai_generated", "tags": ["a", "b"]}}),
        )
        .await;
    assert_eq!(
        last("GET", "/api/documents").query,
        "source=ai_generated&tags=a&tags=b&sort=date_desc&limit=20&offset=0"
    );
    assert!(text.contains("**Release notes**"), "{text}");
    let text = proxy
        .call_text("pluggedin_search_documents", json!({"query": "release"}))
        .await;
    assert_eq!(
        last("POST", "/api/documents/search").body,
        json!({"query": "release", "limit": 10})
    );
    assert!(text.contains("Relevance: 87.5%"), "{text}");
    let text = proxy
        .call_text(
            "pluggedin_get_document",
            json!({"documentId": doc, "includeContent": true}),
        )
        .await;
    assert_eq!(
        last("GET", &format!("/api/documents/{doc}")).query,
        "includeContent=true&includeVersions=false"
    );
    assert!(text.contains("All green."), "{text}");
    let text = proxy
        .call_text(
            "pluggedin_update_document",
            json!({"documentId": doc, "operation": "append", "content": "More",
                   "metadata": {"changeSummary": "more", "model": {"name": "claude", "provider": "anthropic"}}}),
        )
        .await;
    assert!(
        text.ends_with("Operation: append\nNew version: 2"),
        "{text}"
    );
    assert_eq!(
        last("PATCH", &format!("/api/documents/{doc}")).body,
        json!({"documentId": doc, "operation": "append", "content": "More",
               "metadata": {"changeSummary": "more", "model": {"name": "claude", "provider": "anthropic"}}})
    );

    // Discovery: a forced refresh asks the App to discover too.
    let text = proxy
        .call_text("pluggedin_discover_tools", json!({"force_refresh": true}))
        .await;
    assert_eq!(
        last("POST", "/api/discover/all").body,
        json!({"force_refresh": true})
    );
    assert!(
        text.contains("Discovery process initiated for all active servers"),
        "{text}"
    );

    // Every built-in call was reported with the original's system names. Reports leave off the
    // call path (batched), so wait until each system's has arrived.
    let expected = [
        ("pluggedin_rag", "RAG System"),
        ("pluggedin_notifications", "Notification System"),
        ("pluggedin_clipboard", "Clipboard System"),
        ("pluggedin_memory", "Memory System"),
        ("pluggedin_documents", "Document System"),
    ];
    let deadline = tokio::time::Instant::now() + WAIT;
    let systems = loop {
        let systems: BTreeMap<String, String> = app
            .requests_to("POST", "/api/notifications/mcp-activity")
            .iter()
            .map(|r| {
                (
                    r.body["serverUuid"].as_str().unwrap().to_owned(),
                    r.body["serverName"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        if expected.iter().all(|(uuid, _)| systems.contains_key(*uuid))
            || tokio::time::Instant::now() > deadline
        {
            break systems;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    for (uuid, name) in expected {
        assert_eq!(
            systems.get(uuid).map(String::as_str),
            Some(name),
            "{systems:?}"
        );
    }
}

#[tokio::test]
async fn discovery_with_nothing_known_asks_the_app_to_discover() {
    let app = AppStub::start().await;
    let proxy = app_proxy(&app).await;
    let text = proxy.call_text("pluggedin_discover_tools", json!({})).await;
    assert_eq!(
        text,
        "No cached dynamic data found. Discovery process initiated for all active servers. Results \
         will be available shortly.\n\nNote: You can call pluggedin_discover_tools again to see the \
         cached results including both static and dynamic tools."
    );
    let request = app.wait_request("POST", "/api/discover/all").await;
    assert_eq!(request.body, json!({"force_refresh": false}));
    app.fail(
        "POST /api/discover/all",
        429,
        json!({"error": "Too many", "limit": 1, "remaining": 0, "reset": 0}),
    );
    let text = proxy
        .call_error("pluggedin_discover_tools", json!({}))
        .await;
    assert!(
        text.starts_with("Failed to trigger discovery via API: Rate limit exceeded"),
        "{text}"
    );
}

#[test]
fn a_malformed_key_or_base_url_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = |key: &str, url: Option<&str>| {
        let mut command = std::process::Command::new(proxy_bin());
        command
            .env("PLUGGEDIN_API_KEY", key)
            .env("HOME", dir.path())
            .arg("--data-dir")
            .arg(dir.path())
            .arg("servers");
        match url {
            Some(url) => command.env("PLUGGEDIN_API_BASE_URL", url),
            None => command.env_remove("PLUGGEDIN_API_BASE_URL"),
        };
        command.output().unwrap()
    };
    let output = run("too-short-secret", None);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(
        text.contains("PLUGGEDIN_API_KEY") && text.contains("16 characters"),
        "{text}"
    );
    assert!(!text.contains("too-short-secret"), "the key leaked: {text}");
    let output = run(&format!("{}!", "a".repeat(40)), None);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("'!'"), "{}", stderr(&output));
    let output = run(KEY, Some("not a url"));
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(
        text.contains("PLUGGEDIN_API_BASE_URL") && text.contains("does not parse"),
        "{text}"
    );
    let output = run(KEY, Some("ftp://files.example"));
    assert!(!output.status.success());
    assert!(stderr(&output).contains("http or https"));
}

#[tokio::test]
async fn the_app_going_away_serves_the_last_good_copy_and_recovers() {
    let app = standard_app().await;
    let proxy = in_app_mode(proxy(), &app)
        .env("PLUGGEDIN_APP_REFRESH_SECS", "1")
        .start()
        .await;
    assert!(
        proxy
            .tool_names()
            .await
            .contains(&"demo-server__echo".to_owned())
    );

    app.go_away().await;
    proxy.log.wait_for("cannot be reached").await;
    // Still serving: the catalog and calls to the live servers.
    assert!(
        proxy
            .tool_names()
            .await
            .contains(&"demo-server__echo".to_owned())
    );
    assert!(
        proxy
            .call_text("demo-server__echo", json!({"message": "still here"}))
            .await
            .contains("still here")
    );

    // A second proxy started while the App is away serves the last good copy from the data dir
    // and says so.
    let output = run_cli(&app, &proxy.data_dir(), &["servers"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("UNREACHABLE"), "{text}");
    assert!(text.contains("last good copy"), "{text}");
    assert!(text.contains("Demo") && text.contains("Other"), "{text}");
    let output = run_cli(&app, &proxy.data_dir(), &["tools"]).await;
    assert!(
        stdout(&output).contains("demo-server__echo"),
        "{}",
        stdout(&output)
    );

    // The App comes back with a changed catalog; the proxy picks it up by itself.
    app.set_tools(json!([
        app_tool("demo-server__echo", DEMO, "Echo text"),
        app_tool("demo-server__add", DEMO, "Adds"),
    ]));
    app.come_back();
    let mut proxy = proxy;
    let names = proxy
        .tools_changed_until(|names| names.iter().any(|n| n == "demo-server__add"))
        .await;
    assert!(!names.iter().any(|n| n.ends_with("__test_error_handling")));
    proxy.log.wait_for("reachable; serving").await;
    assert!(
        proxy
            .call_text("demo-server__add", json!({"a": 20, "b": 22}))
            .await
            .contains("42")
    );
    let output = run_cli(&app, &proxy.data_dir(), &["servers"]).await;
    assert!(
        stdout(&output).contains(": reachable"),
        "{}",
        stdout(&output)
    );
}

#[tokio::test]
async fn a_restart_with_a_last_good_copy_does_not_wait_for_a_slow_app() {
    let app = standard_app().await;
    let first = app_proxy(&app).await;
    assert!(
        first
            .tool_names()
            .await
            .contains(&"demo-server__echo".to_owned())
    );
    let dir = first.dir.clone();
    drop(first);

    // The App is slow now: the restarted proxy serves from the copy at once and asks meanwhile.
    app.hold("GET /api/mcp-servers");
    let second = in_app_mode(proxy(), &app).in_dir_of_path(dir).start().await;
    assert!(
        second
            .tool_names()
            .await
            .contains(&"demo-server__echo".to_owned())
    );
    assert!(
        second
            .call_text("demo-server__echo", json!({"message": "from the copy"}))
            .await
            .contains("from the copy")
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while app.held("GET /api/mcp-servers") == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the proxy never asked the App"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    second
        .log
        .wait_for("starting from the last good copy")
        .await;
    app.release("GET /api/mcp-servers");
    second.log.wait_for("reachable; serving").await;
}

#[tokio::test]
async fn health_reports_the_app_state() {
    let app = standard_app().await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap().to_owned();
    let config = app_config_file(dir.path());
    let config = config.to_str().unwrap().to_owned();
    let url = app.url();
    let proxy = Background::start(
        proxy_bin(),
        &[
            "--transport",
            "streamable-http",
            "--port",
            "0",
            "--data-dir",
            &data_dir,
            "--require-api-auth",
            "--config",
            &config,
        ],
        &[
            ("PLUGGEDIN_API_KEY", KEY),
            ("PLUGGEDIN_API_BASE_URL", &url),
            ("PLUGGEDIN_APP_REFRESH_SECS", "1"),
            ("RUST_LOG", "info"),
        ],
        "listening on http://",
    )
    .await;
    let mcp = listening_url(&proxy.log).await;
    let health_url = mcp.replace("/mcp", "/health");
    // With --require-api-auth, /health shows the details to a token (the App key is one).
    let health = || async {
        reqwest::Client::new()
            .get(&health_url)
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    // With --require-api-auth the App key is an accepted token, as in the original.
    let initialize = |token: Option<&str>| {
        let mut request = reqwest::Client::new()
            .post(&mcp)
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(initialize(None).await.unwrap().status(), 401);
    assert_eq!(initialize(Some("not-the-key")).await.unwrap().status(), 401);
    assert_ne!(initialize(Some(KEY)).await.unwrap().status(), 401);
    // The --config file's settings still apply in App mode (its own servers would not).
    assert_ne!(initialize(Some("file-token")).await.unwrap().status(), 401);

    let body = health().await;
    assert_eq!(body["controlPlane"]["mode"], json!("app"));
    assert_eq!(body["controlPlane"]["state"], json!("reachable"));
    app.go_away().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let body = health().await;
        if body["controlPlane"]["state"] == json!("unreachable") {
            assert_eq!(body["controlPlane"]["servingFrom"], json!("last-good-copy"));
            assert!(
                body["controlPlane"]["lastError"]
                    .as_str()
                    .unwrap()
                    .contains("Network error")
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.come_back();
    loop {
        if health().await["controlPlane"]["state"] == json!("reachable") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_downstream_401_rereads_its_config_once_and_retries() {
    let (_web, url) = demo_over("--http", &["--require-token", "fresh-token"]).await;
    let app = AppStub::start().await;
    let server = |token: &str| {
        json!([{"uuid": WEB, "name": "Web", "slug": "web", "type": "STREAMABLE_HTTP", "url": url,
                "streamableHTTPOptions": {"headers": {"Authorization": format!("Bearer {token}")}}}])
    };
    app.set_servers(server("expired-token"));
    app.set_tools(json!([app_tool("web__echo", WEB, "Echo")]));
    let proxy = in_app_mode(proxy(), &app)
        .env("PLUGGEDIN_APP_REFRESH_SECS", "3600")
        .start()
        .await;
    proxy.log.wait_for("server not connected").await;
    let fetched_before = app.requests_to("GET", "/api/mcp-servers").len();

    // The App has refreshed the OAuth token meanwhile.
    app.set_servers(server("fresh-token"));
    let text = proxy
        .call_text("web__echo", json!({"message": "after refresh"}))
        .await;
    assert!(text.contains("after refresh"), "{text}");
    assert_eq!(
        app.requests_to("GET", "/api/mcp-servers").len(),
        fetched_before + 1,
        "one re-read"
    );
    proxy.log.wait_for("re-reading its configuration").await;
}

#[tokio::test]
async fn a_401_with_nothing_new_in_the_app_fails_after_one_reread() {
    let (_web, url) = demo_over("--http", &["--require-token", "fresh-token"]).await;
    let app = AppStub::start().await;
    app.set_servers(
        json!([{"uuid": WEB, "name": "Web", "slug": "web", "type": "STREAMABLE_HTTP",
        "url": url, "streamableHTTPOptions": {"headers": {"Authorization": "Bearer revoked"}}}]),
    );
    app.set_tools(json!([app_tool("web__echo", WEB, "Echo")]));
    let proxy = in_app_mode(proxy(), &app)
        .env("PLUGGEDIN_APP_REFRESH_SECS", "3600")
        .start()
        .await;
    proxy.log.wait_for("server not connected").await;
    let fetched_before = app.requests_to("GET", "/api/mcp-servers").len();
    let error = mcp_error(
        proxy
            .call("web__echo", json!({"message": "x"}))
            .await
            .unwrap_err(),
    );
    assert!(
        error.message.contains("server \"Web\" failed to start"),
        "{}",
        error.message
    );
    // rmcp's transport errors name the transport, not a Rust type path.
    assert!(!error.message.contains("::"), "{}", error.message);
    assert_eq!(
        app.requests_to("GET", "/api/mcp-servers").len(),
        fetched_before + 1
    );
    proxy.log.wait_for("unchanged; not retrying").await;
}

#[tokio::test]
async fn fifty_concurrent_401_calls_share_one_server_list_reread() {
    let (_web, url) = demo_over("--http", &["--require-token", "fresh-token"]).await;
    let app = AppStub::start().await;
    let server = |token: &str| {
        json!([{"uuid": WEB, "name": "Web", "slug": "web", "type": "STREAMABLE_HTTP", "url": url,
                "streamableHTTPOptions": {"headers": {"Authorization": format!("Bearer {token}")}}}])
    };
    app.set_servers(server("expired-token"));
    app.set_tools(json!([app_tool("web__echo", WEB, "Echo")]));
    let proxy = in_app_mode(proxy(), &app)
        .env("PLUGGEDIN_APP_REFRESH_SECS", "3600")
        .start()
        .await;
    proxy.log.wait_for("server not connected").await;
    let fetched_before = app.requests_to("GET", "/api/mcp-servers").len();
    app.set_servers(server("fresh-token"));
    app.hold("GET /api/mcp-servers");
    let mut calls = Vec::new();
    for i in 0..50 {
        let peer = proxy.peer().clone();
        calls.push(tokio::spawn(async move {
            peer.call_tool(
                rmcp::model::CallToolRequestParams::new("web__echo").with_arguments(
                    json!({"message": format!("call {i}")})
                        .as_object()
                        .unwrap()
                        .clone(),
                ),
            )
            .await
        }));
    }
    // One re-read at the App; the other 49 calls wait for it.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let joined = proxy
            .log
            .text()
            .matches("joining an App GET in flight path=/api/mcp-servers")
            .count();
        if app.held("GET /api/mcp-servers") == 1 && joined == 49 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "held {}, joined {joined}",
            app.held("GET /api/mcp-servers")
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    app.release("GET /api/mcp-servers");
    for (i, call) in calls.into_iter().enumerate() {
        let result = call.await.unwrap().unwrap();
        assert!(
            text_of(&result).contains(&format!("call {i}")),
            "{}",
            text_of(&result)
        );
    }
    assert_eq!(
        app.requests_to("GET", "/api/mcp-servers").len(),
        fetched_before + 1
    );
}

#[tokio::test]
async fn fifty_concurrent_reads_share_one_app_fetch() {
    let app = standard_app().await;
    app.set_resources(
        json!([{"uri": "test://static-text", "name": "Static text"}]),
        json!([]),
        DEMO,
    );
    let proxy = app_proxy(&app).await;
    app.hold("GET /api/resolve/resource");
    let mut calls = Vec::new();
    for _ in 0..50 {
        let peer = proxy.peer().clone();
        calls.push(tokio::spawn(async move {
            peer.read_resource(ReadResourceRequestParams::new("test://static-text"))
                .await
        }));
    }
    // Every call is either the one request at the App or waiting for it.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let joined = proxy
            .log
            .text()
            .matches("joining an App GET in flight")
            .count();
        if app.held("GET /api/resolve/resource") == 1 && joined == 49 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "held {}, joined {joined}",
            app.held("GET /api/resolve/resource")
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    app.release("GET /api/resolve/resource");
    for call in calls {
        let result = call.await.unwrap().unwrap();
        assert!(serde_json::to_string(&result).unwrap().contains("static"));
    }
    assert_eq!(app.requests_to("GET", "/api/resolve/resource").len(), 1);
}

#[tokio::test]
async fn servers_and_tools_commands_work_in_both_modes() {
    let app = standard_app().await;
    let dir = tempfile::tempdir().unwrap();
    let output = run_cli(&app, dir.path(), &["servers"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains(": reachable"), "{text}");
    assert!(
        text.contains("Demo") && text.contains("connected"),
        "{text}"
    );
    let output = run_cli(&app, dir.path(), &["tools"]).await;
    let text = stdout(&output);
    assert!(
        text.contains("demo-server__echo") && text.contains("(built-in)"),
        "{text}"
    );

    // Without a key: the local config file.
    let local = proxy().server("local", demo()).start().await;
    let text = local.cli_ok(&["tools"]);
    assert!(text.contains("local__echo"), "{text}");
    let text = local.cli_ok(&["servers"]);
    assert!(!text.contains("plugged.in App"), "{text}");
}

#[tokio::test]
async fn app_mode_calls_wait_for_a_server_that_is_starting_or_restarting() {
    let app = AppStub::start().await;
    let mut slow = demo_server(DEMO, "Demo", Some("demo-server"));
    slow["args"] = json!(["--start-delay-ms", "1000"]);
    app.set_servers(json!([slow]));
    app.set_tools(json!([
        app_tool("demo-server__echo", DEMO, "Echo text"),
        app_tool("demo-server__exit", DEMO, "Exits"),
    ]));
    let proxy = app_proxy(&app).await;
    // The App lists the tool at once; its server takes a second to start.
    let text = proxy
        .call_text("demo-server__echo", json!({"message": "while starting"}))
        .await;
    assert_eq!(text, "Echo: while starting");

    let _ = proxy.call("demo-server__exit", json!({})).await;
    proxy.log.wait_for("server not connected").await;
    let text = proxy
        .call_text("demo-server__echo", json!({"message": "while restarting"}))
        .await;
    assert_eq!(text, "Echo: while restarting");
}
