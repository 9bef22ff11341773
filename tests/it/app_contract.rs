//! App mode against the real App's contract: what the App's route handlers do beyond the shapes
//! of their answers — the CSRF check on document updates, slow routes, lists that fail on their
//! own, `200 {success: false}` answers, the App's reasons for a refusal, the side effects of
//! asking — and what the original proxy serves besides (its static prompt, `/.well-known`).
//! The stand-in (`app_stub.rs`) models each of these as the App's handlers do.

use rmcp::model::{CallToolRequestParams, GetPromptRequestParams};
use serde_json::{Value, json};

use crate::app::{
    DEMO, OTHER, app_proxy, app_tool, demo_server, in_app_mode, run_cli, standard_app, stdout,
};
use crate::app_stub::{AppStub, KEY, MEMORY_SESSION_ID, MEMORY_SESSION_UUID};
use crate::support::*;

const DOC: &str = "7c6d5e4f-3a2b-4c1d-9e8f-7a6b5c4d3e2f";

fn arguments(value: Value) -> rmcp::model::JsonObject {
    value.as_object().unwrap().clone()
}

/// Waits until `count` requests are held at `route` of the stand-in.
async fn until_held(app: &AppStub, route: &str, count: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while app.held(route) < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} requests never reached {route}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The proxy over Streamable HTTP in App mode; returns it with its `/health` URL once it listens.
async fn http_app_proxy(
    app: &AppStub,
    dir: &tempfile::TempDir,
    env: &[(&str, &str)],
) -> (Background, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let data_dir = dir.path().to_str().unwrap().to_owned();
    let config = crate::app::app_config_file(dir.path());
    let config = config.to_str().unwrap().to_owned();
    let url = app.url();
    let mut vars = vec![
        ("PLUGGEDIN_API_KEY", KEY),
        ("PLUGGEDIN_API_BASE_URL", url.as_str()),
        ("RUST_LOG", "info"),
    ];
    vars.extend_from_slice(env);
    let proxy = Background::start(
        proxy_bin(),
        &[
            "--transport",
            "streamable-http",
            "--port",
            "0",
            "--data-dir",
            &data_dir,
            "--config",
            &config,
        ],
        &vars,
        "listening on http://",
    )
    .await;
    let health_url = listening_url(&proxy.log).await.replace("/mcp", "/health");
    (proxy, health_url)
}

async fn health(url: &str) -> Value {
    reqwest::get(url)
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()
}

// --- document updates and the App's CSRF check ---

#[tokio::test]
async fn a_document_update_passes_the_apps_csrf_check() {
    let app = standard_app().await;
    let proxy = app_proxy(&app).await;
    let text = proxy
        .call_text(
            "pluggedin_update_document",
            json!({"documentId": DOC, "operation": "append", "content": "More"}),
        )
        .await;
    assert!(
        text.ends_with("Operation: append\nNew version: 2"),
        "{text}"
    );
    let patch = app
        .requests_to("PATCH", &format!("/api/documents/{DOC}"))
        .pop()
        .unwrap();
    assert_eq!(patch.origin.as_deref(), Some(app.url().as_str()));
    assert!(patch.requested_with.is_some(), "{patch:?}");
}

#[tokio::test]
async fn a_csrf_refusal_says_why_and_what_to_check() {
    let app = standard_app().await;
    // The App knows itself as 127.0.0.1; a proxy that calls it "localhost" sends another Origin.
    let proxy = in_app_mode(proxy(), &app)
        .env(
            "PLUGGEDIN_API_BASE_URL",
            &app.url().replace("127.0.0.1", "localhost"),
        )
        .start()
        .await;
    let text = proxy
        .call_error(
            "pluggedin_update_document",
            json!({"documentId": DOC, "operation": "append", "content": "More"}),
        )
        .await;
    assert!(
        text.contains("Invalid request origin") && text.contains("NEXTAUTH_URL"),
        "{text}"
    );
}

// --- a timeout per kind of call ---

#[tokio::test]
async fn a_slow_document_create_outlasts_an_ordinary_request() {
    let app = standard_app().await;
    let proxy = in_app_mode(proxy(), &app)
        .env("PLUGGEDIN_APP_TIMEOUT_SECS", "2")
        .start()
        .await;
    app.hold("POST /api/documents/ai");
    let peer = proxy.peer().clone();
    let create = tokio::spawn(async move {
        peer.call_tool(
            CallToolRequestParams::new("pluggedin_create_document")
                .with_arguments(arguments(json!({"title": "T", "content": "C",
                       "metadata": {"model": {"name": "claude", "provider": "anthropic"}}}))),
        )
        .await
    });
    until_held(&app, "POST /api/documents/ai", 1).await;
    // An ordinary request, started after the create, runs out of time first.
    app.hold("GET /api/clipboard");
    let text = proxy
        .call_error("pluggedin_clipboard_list", json!({}))
        .await;
    assert!(text.contains("Request timed out"), "{text}");
    app.release("GET /api/clipboard");
    // The App answers the create now; the proxy is still waiting for it.
    app.release("POST /api/documents/ai");
    let result = create.await.unwrap().unwrap();
    assert!(
        text_of(&result).starts_with("Document created successfully!"),
        "{}",
        text_of(&result)
    );
    assert_eq!(app.requests_to("POST", "/api/documents/ai").len(), 1);
}

#[tokio::test]
async fn a_document_create_that_times_out_is_not_repeated_and_may_exist() {
    let app = standard_app().await;
    let proxy = in_app_mode(proxy(), &app)
        .env("PLUGGEDIN_APP_TIMEOUT_SECS", "1")
        .start()
        .await;
    app.hold("POST /api/documents/ai");
    let text = proxy
        .call_error(
            "pluggedin_create_document",
            json!({"title": "T", "content": "C",
                   "metadata": {"model": {"name": "claude", "provider": "anthropic"}}}),
        )
        .await;
    assert!(
        text.contains("Request timed out") && text.contains("may have been created"),
        "{text}"
    );
    assert_eq!(app.requests_to("POST", "/api/documents/ai").len(), 1);
    app.release("POST /api/documents/ai");
}

// --- each list on its own ---

#[tokio::test]
async fn a_cold_start_serves_every_list_that_answered() {
    let app = standard_app().await;
    app.set_prompts(
        json!([{"name": "test_simple_prompt", "arguments": []}]),
        DEMO,
    );
    // The App's resources route checks the key on its own and can fail alone.
    app.fail(
        "GET /api/resources",
        401,
        json!({"error": "Unauthorized: Cannot determine active profile for API key."}),
    );
    let mut proxy = in_app_mode(proxy(), &app)
        .env("PLUGGEDIN_APP_REFRESH_SECS", "1")
        .start()
        .await;
    assert!(
        proxy
            .tool_names()
            .await
            .contains(&"demo-server__echo".to_owned())
    );
    assert_eq!(
        proxy
            .call_text("demo-server__echo", json!({"message": "served"}))
            .await,
        "Echo: served"
    );
    let prompts = proxy.peer().list_all_prompts().await.unwrap();
    assert!(prompts.iter().any(|p| p.name == "test_simple_prompt"));
    assert!(proxy.peer().list_all_resources().await.unwrap().is_empty());

    // `servers` says which list fails, and why, in the App's words.
    let output = run_cli(&app, &proxy.data_dir(), &["servers"]).await;
    let text = stdout(&output);
    assert!(
        text.contains("/api/resources")
            && text.contains("Cannot determine active profile")
            && !text.contains("UNREACHABLE"),
        "{text}"
    );
    assert!(text.contains("Demo") && text.contains("Other"), "{text}");

    // The resources come back; then the prompts fail: their last good copy stays while the
    // tools keep following the App.
    app.set_resources(
        json!([{"uri": "test://static-text", "name": "Static text"}]),
        json!([]),
        DEMO,
    );
    app.clear_failures();
    proxy.log.wait_for("/api/resources answers again").await;
    proxy
        .next_event(|event| matches!(event, Event::ResourcesChanged).then_some(()))
        .await;
    assert_eq!(proxy.peer().list_all_resources().await.unwrap().len(), 1);
    app.fail(
        "GET /api/prompts",
        500,
        json!({"error": "Internal Server Error"}),
    );
    app.set_tools(json!([
        app_tool("demo-server__echo", DEMO, "Echo text"),
        app_tool("demo-server__add", DEMO, "Adds"),
        app_tool(&format!("{OTHER}__add"), OTHER, "Adds"),
    ]));
    proxy
        .tools_changed_until(|names| names.iter().any(|n| n == "demo-server__add"))
        .await;
    let prompts = proxy.peer().list_all_prompts().await.unwrap();
    assert!(prompts.iter().any(|p| p.name == "test_simple_prompt"));
}

#[tokio::test]
async fn health_names_the_lists_that_fail() {
    let app = standard_app().await;
    app.fail(
        "GET /api/resource-templates",
        429,
        json!({"error": "Too many requests. Please try again later."}),
    );
    let dir = tempfile::tempdir().unwrap();
    let (_proxy, health_url) = http_app_proxy(&app, &dir, &[]).await;
    let body = health(&health_url).await;
    let plane = &body["controlPlane"];
    assert_eq!(plane["state"], json!("degraded"), "{body}");
    assert_eq!(
        plane["failingLists"],
        json!(["/api/resource-templates"]),
        "{body}"
    );
    assert_eq!(
        plane["lists"]["/api/resource-templates"]["servingFrom"],
        json!("nothing"),
        "{body}"
    );
    assert_eq!(
        plane["lists"]["/api/tools"]["servingFrom"],
        json!("live"),
        "{body}"
    );
    let servers: Vec<&str> = body["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|server| server["name"].as_str().unwrap())
        .collect();
    assert_eq!(servers, ["Demo", "Other"], "{body}");
}

// --- memory, as the App answers it ---

#[tokio::test]
async fn memory_tools_report_what_the_app_answers() {
    let app = standard_app().await;
    let proxy = app_proxy(&app).await;
    proxy
        .call_text(
            "pluggedin_memory_session_start",
            json!({"content_session_id": "chat-1"}),
        )
        .await;
    // The App answers the end with `{success, data: {uuid}}`: no count of observations.
    let text = proxy
        .call_text(
            "pluggedin_memory_session_end",
            json!({"memory_session_id": MEMORY_SESSION_ID}),
        )
        .await;
    assert_eq!(
        text,
        "Memory session ended successfully.\nZ-report generation has been triggered and will \
         process in the background."
    );
    // Ending it again: the App answers 200 {success: false}.
    let text = proxy
        .call_error(
            "pluggedin_memory_session_end",
            json!({"memory_session_id": MEMORY_SESSION_ID}),
        )
        .await;
    assert!(text.contains("already ended"), "{text}");
    let text = proxy
        .call_error(
            "pluggedin_memory_observe",
            json!({"session_uuid": MEMORY_SESSION_UUID, "type": "insight", "content": "late"}),
        )
        .await;
    assert!(text.contains("has ended"), "{text}");

    // Search and details read the App's decay stage and scores.
    let text = proxy
        .call_text("pluggedin_memory_search", json!({"query": "dark mode"}))
        .await;
    assert!(
        text.contains("Ring: longterm | Decay: compressed\nSimilarity: 82%\n"),
        "{text}"
    );
    let text = proxy
        .call_text(
            "pluggedin_memory_details",
            json!({"memory_uuids": ["5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"]}),
        )
        .await;
    assert!(
        text.contains(
            "Ring: longterm | Decay Stage: compressed\nRelevance: 73%\nSuccess: 90%\n\
             Reinforcements: 4 | Accessed: 2 times"
        ),
        "{text}"
    );

    // A `200 {success: false}` answer is a failure with the App's reason, not "nothing found".
    app.answer(
        "POST /api/memory/search",
        200,
        json!({"success": false, "error": "Failed to generate embedding"}),
    );
    let text = proxy
        .call_error("pluggedin_memory_search", json!({"query": "dark mode"}))
        .await;
    assert!(
        text.contains("Failed to generate embedding") && !text.contains("No memories found"),
        "{text}"
    );
    app.answer(
        "POST /api/memory/search/details",
        200,
        json!({"success": false, "error": "Failed to get memory details"}),
    );
    let text = proxy
        .call_error(
            "pluggedin_memory_details",
            json!({"memory_uuids": ["5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"]}),
        )
        .await;
    assert!(
        text.contains("Failed to get memory details") && !text.contains("Memory not found"),
        "{text}"
    );
}

// --- the App's own reason ---

#[tokio::test]
async fn the_apps_reason_reaches_the_client_without_the_key() {
    let app = standard_app().await;
    let proxy = app_proxy(&app).await;
    proxy
        .call_text(
            "pluggedin_memory_session_start",
            json!({"content_session_id": "chat-1"}),
        )
        .await;
    // The proxy takes up to 50,000 characters (the original's schema); the App 10,000.
    let text = proxy
        .call_error(
            "pluggedin_memory_observe",
            json!({"session_uuid": MEMORY_SESSION_UUID, "type": "insight",
                   "content": "x".repeat(10_001)}),
        )
        .await;
    assert!(
        text.contains("Invalid request body")
            && text.contains("content: String must contain at most 10000 character(s)"),
        "{text}"
    );
    let message = mcp_error(
        proxy
            .peer()
            .get_prompt(GetPromptRequestParams::new("nowhere"))
            .await
            .unwrap_err(),
    )
    .message;
    assert!(
        message.contains("Prompt not found or not associated with an active server: nowhere"),
        "{message}"
    );
    app.fail(
        "/api/clipboard",
        400,
        json!({"error": format!("key {KEY} is not allowed here")}),
    );
    let text = proxy
        .call_error("pluggedin_clipboard_list", json!({}))
        .await;
    assert!(
        text.contains("is not allowed here") && !text.contains(KEY),
        "{text}"
    );
}

// --- side effects of asking ---

#[tokio::test]
async fn polling_the_app_does_not_restart_its_discovery() {
    let app = AppStub::start().await;
    // "Other" has no tools: every `GET /api/tools` past the App's throttle discovers it again.
    app.set_servers(json!([
        demo_server(DEMO, "Demo", Some("demo-server")),
        demo_server(OTHER, "Other", None)
    ]));
    app.set_tools(json!([app_tool("demo-server__echo", DEMO, "Echo text")]));
    let proxy = in_app_mode(proxy(), &app)
        .env("PLUGGEDIN_APP_REFRESH_SECS", "1")
        .start()
        .await;
    let before = app.requests_to("GET", "/api/mcp-servers").len();
    app.wait_requests("GET", "/api/mcp-servers", before + 4)
        .await;
    // The first read, and one more to pick up what that discovery found.
    assert_eq!(app.requests_to("GET", "/api/tools").len(), 2);
    assert_eq!(app.discoveries(), 1);
    // A client listing tools is what makes the proxy ask again, as the original did.
    assert!(
        proxy
            .tool_names()
            .await
            .contains(&"demo-server__echo".to_owned())
    );
    app.wait_requests("GET", "/api/tools", 3).await;
}

#[tokio::test]
async fn a_tool_error_result_reaches_the_app_as_the_original_reported_it() {
    let app = standard_app().await;
    let proxy = app_proxy(&app).await;
    let failed = proxy
        .call_error("demo-server__test_error_handling", json!({}))
        .await;
    assert!(failed.contains("intentionally"), "{failed}");
    let deadline = tokio::time::Instant::now() + WAIT;
    let report = loop {
        if let Some(report) = app
            .requests_to("POST", "/api/notifications/mcp-activity")
            .into_iter()
            .find(|r| r.body["itemName"] == json!("test_error_handling"))
        {
            break report;
        }
        assert!(tokio::time::Instant::now() < deadline, "no report");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    // The call itself worked: no 7-day "Tool execution failed" alert at the App.
    assert_eq!(report.body["success"], json!(true), "{:?}", report.body);
    assert!(
        report.body.get("errorMessage").is_none(),
        "{:?}",
        report.body
    );
}

#[tokio::test]
async fn a_notification_id_the_app_would_refuse_is_not_found() {
    let app = standard_app().await;
    let proxy = app_proxy(&app).await;
    for tool in [
        "pluggedin_mark_notification_done",
        "pluggedin_delete_notification",
    ] {
        let text = proxy
            .call_error(tool, json!({"notificationId": "not-a-uuid"}))
            .await;
        assert_eq!(text, "Notification not found: not-a-uuid");
    }
    assert!(
        !app.requests()
            .iter()
            .any(|r| r.path.starts_with("/api/notifications/not-a-uuid"))
    );
    // A UUID the App's `validate` refuses (version 0): its 400 means "no such notification".
    let text = proxy
        .call_error(
            "pluggedin_mark_notification_done",
            json!({"notificationId": "3f8a1c2e-4b5d-0e6f-8a9b-0c1d2e3f4a5b"}),
        )
        .await;
    assert_eq!(
        text,
        "Notification not found: 3f8a1c2e-4b5d-0e6f-8a9b-0c1d2e3f4a5b"
    );
}

#[tokio::test]
async fn clipboard_get_and_document_filters_reach_the_app() {
    let app = standard_app().await;
    let proxy = app_proxy(&app).await;
    let text = proxy
        .call_error(
            "pluggedin_clipboard_get",
            json!({"name": "k", "contentType": "application/json"}),
        )
        .await;
    assert!(text.contains("Clipboard entry not found"), "{text}");
    assert_eq!(
        app.requests_to("GET", "/api/clipboard")
            .pop()
            .unwrap()
            .query,
        "name=k&contentType=application%2Fjson&limit=50&offset=0"
    );

    let text = proxy
        .call_text(
            "pluggedin_list_documents",
            json!({"filters": {"visibility": "public"}}),
        )
        .await;
    assert_eq!(
        app.requests_to("GET", "/api/documents")
            .pop()
            .unwrap()
            .query,
        "source=all&visibility=public&sort=date_desc&limit=20&offset=0"
    );
    assert!(text.starts_with("Found 0 document(s)"), "{text}");
    // The App's search has no such filter; its results say each one's visibility.
    let text = proxy
        .call_text(
            "pluggedin_search_documents",
            json!({"query": "release", "filters": {"visibility": "public"}}),
        )
        .await;
    assert!(text.contains("(0 found)"), "{text}");
    let text = proxy
        .call_text(
            "pluggedin_search_documents",
            json!({"query": "release", "filters": {"visibility": "private"}}),
        )
        .await;
    assert!(text.contains("(1 found)"), "{text}");
}

#[tokio::test]
async fn uuid_tool_prefixing_false_lists_the_apps_plain_names() {
    let app = standard_app().await;
    let proxy = in_app_mode(proxy(), &app)
        .env("PLUGGEDIN_UUID_TOOL_PREFIXING", "false")
        .start()
        .await;
    let names = proxy.tool_names().await;
    assert!(
        names.contains(&"echo".to_owned()) && names.contains(&"add".to_owned()),
        "{names:?}"
    );
    assert!(
        app.requests_to("GET", "/api/tools")
            .iter()
            .all(|r| r.query.is_empty())
    );
    assert_eq!(
        proxy.call_text("echo", json!({"message": "plain"})).await,
        "Echo: plain"
    );
}

// --- what the original serves besides ---

#[tokio::test]
async fn the_capabilities_prompt_comes_first_in_both_modes() {
    let local = proxy().server("demo", demo()).start().await;
    local.wait_for_tool("demo__echo").await;
    let app = standard_app().await;
    let remote = app_proxy(&app).await;
    for proxy in [&local, &remote] {
        let prompts = proxy.peer().list_all_prompts().await.unwrap();
        assert_eq!(prompts[0].name, "pluggedin_proxy_capabilities");
        assert!(prompts.len() > 1);
        let prompt = proxy
            .peer()
            .get_prompt(GetPromptRequestParams::new("pluggedin_proxy_capabilities"))
            .await
            .unwrap();
        let text = serde_json::to_value(&prompt.messages[0]).unwrap()["content"]["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            text.starts_with("# Plugged.in MCP Proxy Capabilities"),
            "{text}"
        );
        assert!(
            text.contains("pluggedin_discover_tools") && text.contains("pluggedin_memory_details"),
            "{text}"
        );
    }
    // Answered by the proxy, reported as the original's "Proxy System".
    assert!(app.requests_to("GET", "/api/resolve/prompt").is_empty());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if app
            .requests_to("POST", "/api/notifications/mcp-activity")
            .iter()
            .any(|r| {
                r.body["action"] == json!("prompt_get")
                    && r.body["serverName"] == json!("Proxy System")
                    && r.body["serverUuid"] == json!("pluggedin_proxy")
                    && r.body["itemName"] == json!("pluggedin_proxy_capabilities")
            })
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no report");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn well_known_mcp_config_describes_how_to_start_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let (_child, _log, url) = spawn_http_proxy(&dir, json!({}), &[]).await;
    let base = url.trim_end_matches("/mcp").to_owned();
    for path in [
        "/.well-known/mcp-config",
        "/.well-known/mcp.json",
        "/mcp/.well-known/mcp-config",
        "/mcp/.well-known/mcp.json",
    ] {
        let response = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["startCommand"],
            json!({"type": "http", "endpoint": "/mcp", "health": "/health"}),
            "{path}"
        );
        assert_eq!(body["transport"], json!("streamable-http"));
        assert_eq!(body["endpoint"], json!("/mcp"));
        let properties = &body["configSchema"]["properties"];
        assert_eq!(
            properties["PLUGGEDIN_API_BASE_URL"]["default"],
            json!("https://plugged.in"),
            "{body}"
        );
        assert!(properties["PLUGGEDIN_API_KEY"].is_object(), "{body}");
    }
}
