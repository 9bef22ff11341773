//! The built-in `pluggedin_*` tools through the real binary and a real client: listing, each
//! tool's happy path, and its errors (tool errors naming the field or the id).

use base64::Engine;
use serde_json::json;

use crate::support::*;

const BUILTINS: [&str; 23] = [
    "pluggedin_setup",
    "pluggedin_discover_tools",
    "pluggedin_ask_knowledge_base",
    "pluggedin_create_document",
    "pluggedin_list_documents",
    "pluggedin_search_documents",
    "pluggedin_get_document",
    "pluggedin_update_document",
    "pluggedin_send_notification",
    "pluggedin_list_notifications",
    "pluggedin_mark_notification_done",
    "pluggedin_delete_notification",
    "pluggedin_clipboard_set",
    "pluggedin_clipboard_get",
    "pluggedin_clipboard_delete",
    "pluggedin_clipboard_list",
    "pluggedin_clipboard_push",
    "pluggedin_clipboard_pop",
    "pluggedin_memory_session_start",
    "pluggedin_memory_session_end",
    "pluggedin_memory_observe",
    "pluggedin_memory_search",
    "pluggedin_memory_details",
];

/// The id on the `ID:` line of a notification listing, after `title`.
fn notification_id(listing: &str, title: &str) -> String {
    let at = listing
        .find(title)
        .unwrap_or_else(|| panic!("{title} not in {listing}"));
    listing[at..]
        .lines()
        .find_map(|line| line.trim().strip_prefix("ID: "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned()
}

fn line_value(text: &str, prefix: &str) -> String {
    text.lines()
        .find_map(|line| line.trim().strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in {text}"))
        .trim()
        .to_owned()
}

#[tokio::test]
async fn builtin_tools_are_listed_first_unprefixed_with_the_original_schemas() {
    let proxy = proxy().server("demo", demo()).start().await;
    proxy.wait_for_tool("demo__echo").await;
    let tools = proxy.peer().list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    assert_eq!(names[..23], BUILTINS);
    assert!(names[23..].iter().all(|name| name.starts_with("demo__")));

    let send = &tools[8];
    assert_eq!(send.input_schema.get("required"), Some(&json!(["message"])));
    assert_eq!(
        send.input_schema["properties"]["severity"]["enum"],
        json!(["INFO", "SUCCESS", "WARNING", "ALERT"])
    );
    let set = &tools[12];
    assert_eq!(set.input_schema["additionalProperties"], json!(false));
    assert_eq!(
        set.input_schema["$schema"],
        json!("http://json-schema.org/draft-07/schema#")
    );
    assert_eq!(
        set.input_schema["properties"]["ttlSeconds"]["maximum"],
        json!(31536000)
    );
    let annotations = tools[17].annotations.as_ref().unwrap();
    assert_eq!(
        annotations.destructive_hint,
        Some(true),
        "clipboard_pop is destructive"
    );
}

#[tokio::test]
async fn setup_answers_each_topic_and_names_a_bad_one() {
    let proxy = proxy().start().await;
    let welcome = proxy.call_text("pluggedin_setup", json!({})).await;
    assert!(
        welcome.starts_with("# Welcome to Plugged.in MCP! 🚀"),
        "{welcome}"
    );
    assert!(welcome.contains("Local mode"), "{welcome}");
    for (topic, heading) in [
        ("api_key", "# Setting up your Plugged.in API Key 🔑"),
        ("configuration", "# Plugged.in Configuration Guide ⚙️"),
        ("troubleshooting", "# Troubleshooting Guide 🔧"),
    ] {
        let text = proxy
            .call_text("pluggedin_setup", json!({"topic": topic}))
            .await;
        assert!(text.starts_with(heading), "{topic}: {text}");
    }
    let error = proxy
        .call_error("pluggedin_setup", json!({"topic": "nope"}))
        .await;
    assert!(error.contains("\"topic\" must be one of"), "{error}");
}

#[tokio::test]
async fn notifications_are_sent_listed_marked_done_and_deleted() {
    let proxy = proxy().start().await;
    let sent = proxy
        .call_text(
            "pluggedin_send_notification",
            json!({"title": "Build", "message": "Build passed", "severity": "SUCCESS"}),
        )
        .await;
    assert_eq!(sent, "Notification created successfully");
    proxy
        .call_text(
            "pluggedin_send_notification",
            json!({"message": "no title"}),
        )
        .await;

    let listing = proxy
        .call_text("pluggedin_list_notifications", json!({}))
        .await;
    assert!(
        listing.starts_with("Found 2 notifications:\n\n1. **Custom notification**"),
        "{listing}"
    );
    assert!(
        listing.contains("Type: CUSTOM | Severity: SUCCESS"),
        "{listing}"
    );
    assert!(listing.contains("Status: Unread\n"), "{listing}");
    assert!(listing.contains("   Message: Build passed\n"), "{listing}");
    assert!(listing.ends_with("💡 **Tip**: Use the UUID shown in the ID field when marking as read or deleting notifications."));
    let id = notification_id(&listing, "**Build**");

    let done = proxy
        .call_text(
            "pluggedin_mark_notification_done",
            json!({"notificationId": id}),
        )
        .await;
    assert_eq!(done, "Notification marked as done");
    let unread = proxy
        .call_text("pluggedin_list_notifications", json!({"onlyUnread": true}))
        .await;
    assert!(
        unread.starts_with("Found 1 notification (unread only):"),
        "{unread}"
    );
    let all = proxy
        .call_text("pluggedin_list_notifications", json!({"limit": 5}))
        .await;
    assert!(all.contains("Status: Read | Completed"), "{all}");

    // The name before the original's 1.4.2 still works.
    let again = proxy
        .call_text(
            "pluggedin_mark_notification_read",
            json!({"notificationId": id}),
        )
        .await;
    assert_eq!(again, "Notification marked as done");

    let deleted = proxy
        .call_text(
            "pluggedin_delete_notification",
            json!({"notificationId": id}),
        )
        .await;
    assert_eq!(deleted, "Notification deleted successfully");
    let error = proxy
        .call_error(
            "pluggedin_delete_notification",
            json!({"notificationId": id}),
        )
        .await;
    assert_eq!(error, format!("Notification not found: {id}"));
    let error = proxy
        .call_error(
            "pluggedin_mark_notification_done",
            json!({"notificationId": "a/b?c"}),
        )
        .await;
    assert_eq!(error, "Notification not found: a/b?c");
}

#[tokio::test]
async fn notification_tools_name_the_bad_field() {
    let proxy = proxy().start().await;
    for (tool, args, field) in [
        (
            "pluggedin_send_notification",
            json!({}),
            "\"message\" is required",
        ),
        (
            "pluggedin_send_notification",
            json!({"message": ""}),
            "\"message\" must not be empty",
        ),
        (
            "pluggedin_send_notification",
            json!({"message": "m", "severity": "LOUD"}),
            "\"severity\" must be one of",
        ),
        (
            "pluggedin_send_notification",
            json!({"message": "m", "sendEmail": "yes"}),
            "\"sendEmail\" must be a boolean",
        ),
        (
            "pluggedin_list_notifications",
            json!({"limit": 101}),
            "\"limit\" must be at most 100",
        ),
        (
            "pluggedin_list_notifications",
            json!({"limit": 0}),
            "\"limit\" must be at least 1",
        ),
        (
            "pluggedin_mark_notification_done",
            json!({}),
            "\"notificationId\" is required",
        ),
        (
            "pluggedin_delete_notification",
            json!({"notificationId": ""}),
            "\"notificationId\" must not be empty",
        ),
    ] {
        let error = proxy.call_error(tool, args).await;
        assert!(error.contains(field), "{tool}: {error}");
    }
}

#[tokio::test]
async fn email_without_smtp_says_plainly_that_no_mail_was_sent() {
    let proxy = proxy().start().await;
    let text = proxy
        .call_text(
            "pluggedin_send_notification",
            json!({"message": "hello", "sendEmail": true}),
        )
        .await;
    assert!(
        text.contains("No email was sent: SMTP is not configured"),
        "{text}"
    );
}

#[tokio::test]
async fn clipboard_entries_by_name_and_index() {
    let proxy = proxy().start().await;
    let set = proxy
        .call_text(
            "pluggedin_clipboard_set",
            json!({"name": "ctx", "value": "{\"a\":1}", "contentType": "application/json", "createdByTool": "t"}),
        )
        .await;
    assert!(
        set.starts_with(
            "Clipboard entry set successfully!\nname=\"ctx\"\nSize: 7 bytes\nExpires: "
        ),
        "{set}"
    );
    proxy
        .call_text(
            "pluggedin_clipboard_set",
            json!({"name": "ctx", "value": "updated"}),
        )
        .await;
    let entry: serde_json::Value = serde_json::from_str(
        &proxy
            .call_text("pluggedin_clipboard_get", json!({"name": "ctx"}))
            .await,
    )
    .unwrap();
    assert_eq!(entry["value"], "updated");
    assert_eq!(entry["source"], "mcp");
    assert_eq!(entry["contentType"], "text/plain");

    proxy
        .call_text(
            "pluggedin_clipboard_set",
            json!({"idx": 3, "value": "third", "ttlSeconds": 60}),
        )
        .await;
    let conflict = proxy
        .call_error(
            "pluggedin_clipboard_set",
            json!({"idx": 3, "value": "again"}),
        )
        .await;
    assert!(
        conflict.starts_with("Index conflict: index 3 already exists"),
        "{conflict}"
    );

    let listing = proxy.call_text("pluggedin_clipboard_get", json!({})).await;
    assert!(listing.starts_with("Found 2 clipboard entries (showing 2):\n\n1. name=\"ctx\"\n   Type: text/plain\n   Size: 7 bytes\n"), "{listing}");
    assert!(listing.contains("2. idx=3\n"), "{listing}");
    assert!(listing.contains("   Preview: third"), "{listing}");

    let list: serde_json::Value = serde_json::from_str(
        &proxy
            .call_text("pluggedin_clipboard_list", json!({"limit": 1}))
            .await,
    )
    .unwrap();
    assert_eq!(list["total"], 2);
    assert_eq!(list["limit"], 1);
    assert_eq!(list["entries"].as_array().unwrap().len(), 1);

    let deleted = proxy
        .call_text("pluggedin_clipboard_delete", json!({"idx": 3}))
        .await;
    assert_eq!(deleted, "Deleted 1 clipboard entry");
    let missing = proxy
        .call_error("pluggedin_clipboard_get", json!({"idx": 3}))
        .await;
    assert_eq!(missing, "Clipboard entry not found: idx=3");
    let cleared = proxy
        .call_text("pluggedin_clipboard_delete", json!({"clearAll": true}))
        .await;
    assert_eq!(cleared, "Cleared all clipboard entries (1 removed)");
    let missing = proxy
        .call_error("pluggedin_clipboard_delete", json!({"name": "ctx"}))
        .await;
    assert_eq!(missing, "Clipboard entry not found: name=\"ctx\"");
}

#[tokio::test]
async fn clipboard_limits_and_bad_input_are_named() {
    let proxy = proxy().start().await;
    let too_big = "x".repeat(2 * 1024 * 1024 + 1);
    for (tool, args, expected) in [
        (
            "pluggedin_clipboard_set",
            json!({"value": "v"}),
            "Either name or idx must be provided",
        ),
        (
            "pluggedin_clipboard_set",
            json!({"name": "n"}),
            "\"value\" is required",
        ),
        (
            "pluggedin_clipboard_set",
            json!({"name": "n", "value": too_big}),
            "Clipboard entry too large. Maximum size is 2MB",
        ),
        (
            "pluggedin_clipboard_set",
            json!({"name": "n", "value": "v", "contentType": "image/png"}),
            "Image content types require base64 encoding",
        ),
        (
            "pluggedin_clipboard_set",
            json!({"name": "n", "value": "@@", "contentType": "image/png", "encoding": "base64"}),
            "not valid base64",
        ),
        (
            "pluggedin_clipboard_set",
            json!({"name": "n", "value": "v", "contentType": "not a type"}),
            "\"contentType\" must be a MIME type",
        ),
        (
            "pluggedin_clipboard_set",
            json!({"name": "n", "value": "v", "ttlSeconds": 0}),
            "\"ttlSeconds\" must be greater than 0",
        ),
        (
            "pluggedin_clipboard_set",
            json!({"name": "n".repeat(256), "value": "v"}),
            "\"name\" must be at most 255 characters",
        ),
        (
            "pluggedin_clipboard_get",
            json!({"limit": 101}),
            "\"limit\" must be at most 100",
        ),
        (
            "pluggedin_clipboard_list",
            json!({"offset": -1}),
            "\"offset\" must be at least 0",
        ),
        (
            "pluggedin_clipboard_delete",
            json!({}),
            "Either name, idx, or clearAll must be provided",
        ),
        (
            "pluggedin_clipboard_push",
            json!({"value": "v", "encoding": "utf-16"}),
            "\"encoding\" must be one of",
        ),
        (
            "pluggedin_clipboard_pop",
            json!({}),
            "No indexed entries to pop",
        ),
    ] {
        let error = proxy.call_error(tool, args).await;
        assert!(error.contains(expected), "{tool}: {error}");
    }
}

#[tokio::test]
async fn clipboard_push_and_pop_are_lifo_and_images_come_back_as_images() {
    let proxy = proxy().start().await;
    let png = base64::engine::general_purpose::STANDARD.encode([0x89, b'P', b'N', b'G']);
    let first = proxy
        .call_text("pluggedin_clipboard_push", json!({"value": "step 1"}))
        .await;
    assert!(
        first.starts_with("Pushed to clipboard at index 0\nSize: 6 bytes\nExpires: "),
        "{first}"
    );
    let second = proxy
        .call_text(
            "pluggedin_clipboard_push",
            json!({"value": png, "contentType": "image/png", "encoding": "base64"}),
        )
        .await;
    assert!(
        second.starts_with("Pushed to clipboard at index 1"),
        "{second}"
    );

    let popped = proxy
        .call("pluggedin_clipboard_pop", json!({}))
        .await
        .unwrap();
    let image = popped.content[0]
        .as_image()
        .expect("an image comes back as image content");
    assert_eq!(image.data, png);
    assert_eq!(image.mime_type, "image/png");
    let popped: serde_json::Value =
        serde_json::from_str(&proxy.call_text("pluggedin_clipboard_pop", json!({})).await).unwrap();
    assert_eq!(popped["value"], "step 1");
    assert_eq!(popped["idx"], 0);
    let empty = proxy.call_error("pluggedin_clipboard_pop", json!({})).await;
    assert_eq!(empty, "No indexed entries to pop");
}

#[tokio::test]
async fn memory_sessions_record_search_and_detail_observations() {
    let proxy = proxy().start().await;
    let started = proxy
        .call_text(
            "pluggedin_memory_session_start",
            json!({"content_session_id": "chat-1"}),
        )
        .await;
    assert!(
        started.starts_with("Memory session started!\nSession UUID: "),
        "{started}"
    );
    let session = line_value(&started, "Session UUID:");
    let memory_session = line_value(&started, "Memory Session ID:");
    assert!(memory_session.starts_with("ms_"), "{memory_session}");

    for (kind, content, tags) in [
        (
            "error_pattern",
            "kubernetes deployment failed: image pull backoff on kubernetes",
            json!(["k8s"]),
        ),
        (
            "insight",
            "JWT tokens belong in httpOnly cookies",
            json!([]),
        ),
    ] {
        let recorded = proxy
            .call_text(
                "pluggedin_memory_observe",
                json!({"session_uuid": session, "type": kind, "content": content, "outcome": "failure", "metadata": {"tags": tags}}),
            )
            .await;
        assert!(
            recorded.starts_with("Observation recorded.\nUUID: "),
            "{recorded}"
        );
        assert!(recorded.ends_with(&format!("Type: {kind}")), "{recorded}");
    }

    let found = proxy
        .call_text(
            "pluggedin_memory_search",
            json!({"query": "kubernetes deployment"}),
        )
        .await;
    assert!(
        found.starts_with("Found 1 memories for: \"kubernetes deployment\"\n\n---\nUUID: "),
        "{found}"
    );
    assert!(
        found.contains("Ring: shocks | Decay: fresh\nRelevance: 100% | Similarity: 100%"),
        "{found}"
    );
    assert!(found.contains("Tags: k8s"), "{found}");
    assert!(
        found.ends_with("Use pluggedin_memory_details with specific UUIDs to get full content.")
    );
    let memory = line_value(&found, "UUID:");

    let none = proxy
        .call_text(
            "pluggedin_memory_search",
            json!({"query": "kubernetes", "ring_types": ["longterm"]}),
        )
        .await;
    assert_eq!(none, "No memories found for query: \"kubernetes\"");

    let missing = "550e8400-e29b-41d4-a716-446655440000";
    let details = proxy
        .call_text(
            "pluggedin_memory_details",
            json!({"memory_uuids": [memory, missing]}),
        )
        .await;
    assert!(
        details.starts_with(&format!(
            "Memory Details (1 items):\n\n===== {memory} =====\nRing: shocks"
        )),
        "{details}"
    );
    assert!(details.contains("Success: 0%\nReinforcements: 0 | Accessed: 1 times\n\nFull Content:\nkubernetes deployment failed"), "{details}");
    assert!(
        details.ends_with(&format!("Not found: {missing}")),
        "{details}"
    );
    let error = proxy
        .call_error(
            "pluggedin_memory_details",
            json!({"memory_uuids": [missing]}),
        )
        .await;
    assert_eq!(error, format!("Memory not found: {missing}"));

    let ended = proxy
        .call_text(
            "pluggedin_memory_session_end",
            json!({"memory_session_id": memory_session}),
        )
        .await;
    assert!(
        ended.starts_with("Memory session ended successfully.\nZ-report: 2 observations"),
        "{ended}"
    );
    let again = proxy
        .call_error(
            "pluggedin_memory_session_end",
            json!({"memory_session_id": memory_session}),
        )
        .await;
    assert_eq!(
        again,
        format!("Memory session {memory_session} has already ended")
    );
    let late = proxy
        .call_error(
            "pluggedin_memory_observe",
            json!({"session_uuid": session, "type": "insight", "content": "late"}),
        )
        .await;
    assert!(
        late.starts_with(&format!("Memory session {session} has ended")),
        "{late}"
    );
}

#[tokio::test]
async fn memory_tools_name_unknown_ids_and_bad_fields() {
    let proxy = proxy().start().await;
    let unknown = "123e4567-e89b-12d3-a456-426614174000";
    for (tool, args, expected) in [
        (
            "pluggedin_memory_session_start",
            json!({}),
            "\"content_session_id\" is required".to_owned(),
        ),
        (
            "pluggedin_memory_session_start",
            json!({"content_session_id": "c", "agent_uuid": "x"}),
            "\"agent_uuid\" must be a UUID".to_owned(),
        ),
        (
            "pluggedin_memory_session_end",
            json!({"memory_session_id": "ms bad"}),
            "\"memory_session_id\" may only contain".to_owned(),
        ),
        (
            "pluggedin_memory_session_end",
            json!({"memory_session_id": "ms_nope"}),
            "Memory session not found: ms_nope".to_owned(),
        ),
        (
            "pluggedin_memory_observe",
            json!({"session_uuid": unknown, "type": "insight", "content": "c"}),
            format!("Memory session not found: {unknown}"),
        ),
        (
            "pluggedin_memory_observe",
            json!({"session_uuid": unknown, "type": "gossip", "content": "c"}),
            "\"type\" must be one of".to_owned(),
        ),
        (
            "pluggedin_memory_observe",
            json!({"session_uuid": unknown, "type": "insight", "content": "x".repeat(50_001)}),
            "\"content\" must be at most 50000 characters".to_owned(),
        ),
        (
            "pluggedin_memory_search",
            json!({"query": "q", "top_k": 51}),
            "\"top_k\" must be at most 50".to_owned(),
        ),
        (
            "pluggedin_memory_search",
            json!({"query": "q", "ring_types": ["dreams"]}),
            "\"ring_types[0]\" must be one of".to_owned(),
        ),
        (
            "pluggedin_memory_details",
            json!({"memory_uuids": []}),
            "\"memory_uuids\" must have at least 1 item(s)".to_owned(),
        ),
        (
            "pluggedin_memory_details",
            json!({"memory_uuids": ["nope"]}),
            "\"memory_uuids[0]\" must be a UUID".to_owned(),
        ),
    ] {
        let error = proxy.call_error(tool, args).await;
        assert!(error.contains(&expected), "{tool}: {error}");
    }
}

#[tokio::test]
async fn discovery_reports_static_and_server_items_with_true_counts() {
    let mut config = demo();
    config["instructions"] = json!("Read-only access.\nDenied operations: delete");
    let proxy = proxy().server("demo", config).start().await;
    proxy.wait_for_tool("demo__echo").await;
    let dynamic = proxy.tool_names().await.len() - BUILTINS.len();
    let report = proxy.call_text("pluggedin_discover_tools", json!({})).await;
    let heading = format!(
        "Returning cached discovery data for all servers. Found cached data: {dynamic} dynamic tools + 23 static tools = {} total tools, 3 resources, 5 prompts, 1 templates. Use force_refresh=true to update.",
        dynamic + 23
    );
    assert!(report.starts_with(&heading), "{report}");
    assert!(
        report.contains("**Documents (5):**\n4. **pluggedin_create_document**"),
        "{report}"
    );
    assert!(report.contains("**Clipboard (6):**"), "{report}");
    assert!(
        report.contains("**Notifications (4):**\n9. **pluggedin_send_notification**")
            && report.contains("23. **pluggedin_memory_details** - "),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "## ⚡ Dynamic MCP Tools ({dynamic}) - From Connected Servers:\n"
        )),
        "{report}"
    );
    assert!(
        report.contains("**demo__echo** - Echoes the message back"),
        "{report}"
    );
    assert!(report.contains("## 💬 Available Prompts (5):"), "{report}");
    assert!(
        report.contains("## 📋 Available Resource Templates (1):"),
        "{report}"
    );
    assert!(
        report.contains("### demo\n**Instructions:** Read-only access.\nDenied operations: delete"),
        "{report}"
    );
}

#[tokio::test]
async fn discovery_filters_by_server_uuid_and_names_an_unknown_one() {
    let proxy = proxy()
        .server("demo", demo())
        .server("other", demo())
        .start()
        .await;
    proxy.wait_for_tool("other__echo").await;
    let uuid = proxy.server_uuid("other").await;
    let report = proxy
        .call_text("pluggedin_discover_tools", json!({"server_uuid": uuid}))
        .await;
    assert!(
        report.starts_with(&format!(
            "Returning cached discovery data for server {uuid}."
        )),
        "{report}"
    );
    assert!(
        report.contains("other__echo") && !report.contains("demo__echo"),
        "{report}"
    );

    let unknown = "123e4567-e89b-12d3-a456-426614174000";
    let error = proxy
        .call_error("pluggedin_discover_tools", json!({"server_uuid": unknown}))
        .await;
    assert_eq!(error, format!("Server not found: {unknown}"));
    let error = proxy
        .call_error("pluggedin_discover_tools", json!({"server_uuid": "x"}))
        .await;
    assert!(error.contains("\"server_uuid\" must be a UUID"), "{error}");
}

#[tokio::test]
async fn discovery_force_refresh_relists_in_the_background_and_says_so() {
    let proxy = proxy().server("demo", demo()).start().await;
    proxy.wait_for_tool("demo__echo").await;
    let report = proxy
        .call_text("pluggedin_discover_tools", json!({"force_refresh": true}))
        .await;
    assert!(report.starts_with("🔄 Force refresh initiated for all servers. Discovery is running in background.\n\nShowing current cached data ("), "{report}");
    assert!(
        report.ends_with("to see if any new tools were discovered."),
        "{report}"
    );
    proxy.log.wait_for("re-listed").await;
}

#[tokio::test]
async fn discovery_answers_from_the_cache_while_a_server_is_down() {
    let first = proxy().server("demo", demo()).start().await;
    first.wait_for_tool("demo__echo").await;
    let pid = first.pid;
    let dir = first.dir.clone();
    drop(first);
    wait_gone(&[pid]).await;

    // The same server name, now unable to start: its lists come from the cache.
    let mut second = proxy().server("demo", json!({"command": "/nonexistent/server"}));
    second = second.in_dir_of_path(dir);
    let second = second.start().await;
    let report = second
        .call_text("pluggedin_discover_tools", json!({}))
        .await;
    assert!(
        report.contains("**demo__echo** - Echoes the message back"),
        "{report}"
    );
    assert!(!report.contains("Not discovered yet"), "{report}");
}

#[tokio::test]
async fn discovery_shows_the_names_clients_call_in_every_prefix_mode() {
    let proxy = proxy()
        .server("demo", demo())
        .arg("--prefix-mode")
        .arg("never")
        .start()
        .await;
    proxy.wait_for_tool("echo").await;
    let report = proxy.call_text("pluggedin_discover_tools", json!({})).await;
    assert!(
        report.contains(". **echo** - Echoes the message back"),
        "{report}"
    );
    assert!(!report.contains("demo__echo"), "{report}");
}
