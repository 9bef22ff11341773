//! The local control plane through the real binary: data surviving `kill -9`, two processes on
//! one data dir, settings changed by the CLI reaching a running proxy, workspaces, the activity
//! figures and their ALERTs, and e-mail to a loopback SMTP server.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

/// Waits until `check` passes on the output of a CLI command (the activity writer is off the
/// call path, so figures appear shortly after the calls).
async fn wait_for_cli(proxy: &Proxy, args: &[&str], check: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    let found = tokio::time::timeout(WAIT, async {
        loop {
            last = proxy.cli_ok(args);
            if check(&last) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "{args:?} never showed what was expected:\n{last}"
    );
    last
}

#[tokio::test]
async fn saved_data_survives_kill_9_and_restart() {
    let first = proxy().start().await;
    first
        .call_text(
            "pluggedin_clipboard_set",
            json!({"name": "keep", "value": "safe"}),
        )
        .await;
    first
        .call_text(
            "pluggedin_send_notification",
            json!({"title": "Kept", "message": "still here"}),
        )
        .await;
    let started = first
        .call_text(
            "pluggedin_memory_session_start",
            json!({"content_session_id": "c"}),
        )
        .await;
    let session = started
        .lines()
        .find_map(|line| line.strip_prefix("Session UUID: "))
        .unwrap()
        .to_owned();
    first
        .call_text(
            "pluggedin_memory_observe",
            json!({"session_uuid": session, "type": "insight", "content": "durable observation"}),
        )
        .await;
    first.kill9().await;

    let second = proxy().in_dir_of(&first).start().await;
    let entry = second
        .call_text("pluggedin_clipboard_get", json!({"name": "keep"}))
        .await;
    assert!(entry.contains("\"value\": \"safe\""), "{entry}");
    let listing = second
        .call_text("pluggedin_list_notifications", json!({}))
        .await;
    assert!(listing.contains("**Kept**"), "{listing}");
    let found = second
        .call_text("pluggedin_memory_search", json!({"query": "durable"}))
        .await;
    assert!(found.starts_with("Found 1 memories"), "{found}");
}

#[tokio::test]
async fn two_proxies_share_one_data_dir() {
    let one = proxy().start().await;
    let two = proxy().in_dir_of(&one).start().await;
    one.call_text("pluggedin_clipboard_push", json!({"value": "from one"}))
        .await;
    two.call_text("pluggedin_clipboard_push", json!({"value": "from two"}))
        .await;
    let popped = one.call_text("pluggedin_clipboard_pop", json!({})).await;
    assert!(popped.contains("\"value\": \"from two\""), "{popped}");
    let popped = two.call_text("pluggedin_clipboard_pop", json!({})).await;
    assert!(popped.contains("\"value\": \"from one\""), "{popped}");
}

#[tokio::test]
async fn a_tool_disabled_from_the_cli_vanishes_from_a_running_proxy() {
    let mut proxy = proxy().server("demo", demo()).start().await;
    proxy.wait_for_tool("demo__echo").await;
    let said = proxy.cli_ok(&["tools", "disable", "demo__echo"]);
    assert_eq!(said.trim(), "tool demo__echo disabled");
    let names = proxy
        .tools_changed_until(|names| !names.contains(&"demo__echo".to_owned()))
        .await;
    assert!(names.contains(&"demo__add".to_owned()), "{names:?}");
    let error = mcp_error(
        proxy
            .call("demo__echo", json!({"message": "x"}))
            .await
            .unwrap_err(),
    );
    assert_eq!(error.code, rmcp::model::ErrorCode::INVALID_PARAMS);
    assert_eq!(
        error.message,
        "tool \"demo__echo\" is disabled (pluggedin-mcp-proxy tools enable demo__echo)"
    );
    let uuid = proxy.server_uuid("demo").await;
    let by_uuid = mcp_error(
        proxy
            .call(&format!("{uuid}__echo"), json!({"message": "x"}))
            .await
            .unwrap_err(),
    );
    assert_eq!(by_uuid.code, rmcp::model::ErrorCode::INVALID_PARAMS);
    assert!(
        by_uuid
            .message
            .ends_with("is disabled (pluggedin-mcp-proxy tools enable demo__echo)"),
        "{by_uuid:?}"
    );
    let report = proxy.call_text("pluggedin_discover_tools", json!({})).await;
    assert!(!report.contains("**demo__echo**"), "{report}");
    assert!(report.contains("**demo__add**"), "{report}");

    // A built-in tool can be turned off the same way.
    proxy.cli_ok(&["tools", "disable", "pluggedin_clipboard_pop"]);
    proxy
        .tools_changed_until(|names| !names.contains(&"pluggedin_clipboard_pop".to_owned()))
        .await;
    let error = mcp_error(
        proxy
            .call("pluggedin_clipboard_pop", json!({}))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        error.message,
        "tool \"pluggedin_clipboard_pop\" is disabled (pluggedin-mcp-proxy tools enable \
         pluggedin_clipboard_pop)"
    );

    proxy.cli_ok(&["tools", "enable", "demo__echo"]);
    proxy
        .tools_changed_until(|names| names.contains(&"demo__echo".to_owned()))
        .await;
    assert_eq!(
        proxy
            .call_text("demo__echo", json!({"message": "back"}))
            .await,
        "Echo: back"
    );
}

#[tokio::test]
async fn tools_enable_and_disable_check_the_name_against_the_servers_and_their_catalog() {
    let proxy = proxy()
        .server("demo", demo())
        .server(
            "narrow",
            json!({"command": demo_bin(), "tools": {"allow": ["add"]}}),
        )
        .start()
        .await;
    proxy.wait_for_tool("demo__echo").await;
    let stderr =
        |output: &std::process::Output| String::from_utf8_lossy(&output.stderr).into_owned();
    // What the servers offer reaches the store's catalog cache off the call path.
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let output = proxy.cli(&["tools", "disable", "demo__nosuch"]);
            if stderr(&output).contains("server \"demo\" offers no tool \"nosuch\"") {
                return output;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the CLI learns demo's tools from the catalog cache");
    assert!(!found.status.success());

    let refused = proxy.cli(&["tools", "disable", "nosuch__tool"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused)
            .contains("no server \"nosuch\" for the tool \"nosuch__tool\" (servers: demo, narrow)"),
        "{}",
        stderr(&refused)
    );
    let refused = proxy.cli(&["tools", "disable", "nonsense"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("no tool named \"nonsense\""),
        "{}",
        stderr(&refused)
    );
    let refused = proxy.cli(&["tools", "enable", "demo__nosuch"]);
    assert!(!refused.status.success(), "enable checks the name too");
    assert!(
        stderr(&refused).contains("server \"demo\" offers no tool \"nosuch\""),
        "{}",
        stderr(&refused)
    );

    // A tool the config's filter hides may be disabled, with a word about it.
    let hidden = proxy.cli(&["tools", "disable", "narrow__echo"]);
    assert!(hidden.status.success(), "{}", stderr(&hidden));
    assert!(
        stderr(&hidden).contains("already hides \"echo\""),
        "{}",
        stderr(&hidden)
    );

    assert_eq!(
        proxy.cli_ok(&["tools", "enable", "demo__add"]).trim(),
        "tool demo__add is not disabled"
    );
    // Disabled under its UUID spelling, enabled under its slug.
    let uuid = proxy.server_uuid("demo").await;
    proxy.cli_ok(&["tools", "disable", &format!("{uuid}__echo")]);
    assert_eq!(
        proxy.cli_ok(&["tools", "enable", "demo__echo"]).trim(),
        format!("tool {uuid}__echo enabled")
    );
    // A disabled name can always be enabled again, whatever became of its server.
    proxy.cli_ok(&["tools", "disable", "narrow__add"]);
    proxy.rewrite_config(json!({"demo": demo()}));
    assert_eq!(
        proxy.cli_ok(&["tools", "enable", "narrow__add"]).trim(),
        "tool narrow__add enabled"
    );

    // A server never connected with this data dir: its tool names cannot be checked, and that
    // is said rather than refused.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcp.json");
    std::fs::write(
        &config,
        json!({"mcpServers": {"fresh": demo()}}).to_string(),
    )
    .unwrap();
    let output = std::process::Command::new(proxy_bin())
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["tools", "disable", "fresh__echo"])
        .env_remove("PLUGGEDIN_API_KEY")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("server \"fresh\" has not been connected with this data dir yet"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn a_server_disabled_from_the_cli_leaves_the_running_catalog() {
    let mut proxy = proxy()
        .server("demo", demo())
        .server("other", demo())
        .start()
        .await;
    proxy.wait_for_tool("other__echo").await;
    proxy.cli_ok(&["servers", "disable", "other"]);
    let names = proxy
        .tools_changed_until(|names| names.iter().all(|name| !name.starts_with("other__")))
        .await;
    assert!(names.contains(&"demo__echo".to_owned()), "{names:?}");
    let error = mcp_error(
        proxy
            .call("other__echo", json!({"message": "x"}))
            .await
            .unwrap_err(),
    );
    assert_eq!(error.code, rmcp::model::ErrorCode::INVALID_PARAMS);
    assert_eq!(
        error.message,
        "tool \"other__echo\" is in server \"other\", which is disabled (pluggedin-mcp-proxy \
         servers enable other)"
    );
    let listed = proxy.cli_ok(&["servers", "list"]);
    assert!(
        listed
            .lines()
            .any(|line| line.split_whitespace().collect::<Vec<_>>()
                == ["other", "stdio", "no", "yes"]),
        "{listed}"
    );
    proxy.cli_ok(&["servers", "enable", "other"]);
    proxy.wait_for_tool("other__echo").await;

    let refused = proxy.cli(&["servers", "disable", "nope"]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("no server named \"nope\""), "{message}");
}

#[tokio::test]
async fn switching_workspace_reaches_a_running_proxy() {
    let mut proxy = proxy()
        .server("demo", demo())
        .server("other", demo())
        .start()
        .await;
    proxy.wait_for_tool("other__echo").await;
    proxy.cli_ok(&["workspace", "create", "focus", "--servers", "demo"]);
    proxy.cli_ok(&["workspace", "switch", "focus"]);
    let names = proxy
        .tools_changed_until(|names| names.iter().all(|name| !name.starts_with("other__")))
        .await;
    assert!(names.contains(&"demo__echo".to_owned()));
    let error = mcp_error(
        proxy
            .call("other__echo", json!({"message": "x"}))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        error.message,
        "tool \"other__echo\" is in server \"other\", which is not in the active workspace \
         \"focus\" (pluggedin-mcp-proxy workspace switch all)"
    );
    let listed = proxy.cli_ok(&["workspace", "list"]);
    assert!(listed.contains("*  focus"), "{listed}");

    proxy.cli_ok(&["workspace", "switch", "all"]);
    proxy.wait_for_tool("other__echo").await;

    let refused = proxy.cli(&["workspace", "switch", "nope"]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("no workspace named \"nope\""), "{message}");
    let refused = proxy.cli(&["workspace", "create", "bad", "--servers", "ghost"]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("no server named \"ghost\""), "{message}");
    proxy.cli_ok(&["workspace", "delete", "focus"]);
    assert!(!proxy.cli_ok(&["workspace", "list"]).contains("focus"));
}

#[tokio::test]
async fn a_workspaces_tool_exposure_is_set_by_the_workspace_command_and_reaches_a_running_proxy() {
    let proxy = proxy().server("demo", demo()).start().await;
    proxy.wait_for_tool("demo__echo").await;
    proxy.cli_ok(&[
        "workspace",
        "create",
        "focus",
        "--servers",
        "demo",
        "--tool-exposure",
        "search",
    ]);
    let focus_row = |listed: String| {
        listed
            .lines()
            .find(|line| line.contains("focus"))
            .unwrap_or_else(|| panic!("no focus row in {listed}"))
            .to_owned()
    };
    let listed = proxy.cli_ok(&["workspace", "list"]);
    assert!(listed.contains("TOOL EXPOSURE"), "{listed}");
    assert_eq!(
        focus_row(listed).split_whitespace().collect::<Vec<_>>(),
        ["focus", "demo", "search"]
    );
    proxy.cli_ok(&["workspace", "switch", "focus"]);
    proxy.log.wait_for("tool_exposure=\"search\"").await;
    let set = proxy.cli_ok(&["workspace", "set", "focus", "--tool-exposure", "all"]);
    assert_eq!(set.trim(), "workspace focus: tool exposure all");
    proxy.log.wait_for("tool_exposure=\"all\"").await;
    proxy.cli_ok(&["workspace", "set", "focus", "--tool-exposure", "default"]);
    assert_eq!(
        focus_row(proxy.cli_ok(&["workspace", "list"]))
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["*", "focus", "demo", "default"]
    );

    let refused = proxy.cli(&["workspace", "set", "focus", "--tool-exposure", "some"]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message
            .contains("tool exposure \"some\" is neither \"all\" nor \"search\", nor \"default\""),
        "{message}"
    );
    let refused = proxy.cli(&["workspace", "set", "nope", "--tool-exposure", "all"]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("no workspace named \"nope\""), "{message}");
    let refused = proxy.cli(&[
        "workspace",
        "create",
        "bad",
        "--servers",
        "demo",
        "--tool-exposure",
        "some",
    ]);
    assert!(!refused.status.success());
}

#[tokio::test]
async fn a_proxy_pinned_to_a_workspace_serves_only_its_servers() {
    let setup = proxy()
        .server("demo", demo())
        .server("other", demo())
        .start()
        .await;
    setup.cli_ok(&["workspace", "create", "only-other", "--servers", "other"]);
    let pinned = proxy()
        .server("demo", demo())
        .server("other", demo())
        .in_dir_of(&setup)
        .arg("--workspace")
        .arg("only-other")
        .start()
        .await;
    pinned.wait_for_tool("other__echo").await;
    assert!(!pinned.tool_names().await.contains(&"demo__echo".to_owned()));

    let refused = setup.cli(&["--workspace", "ghost", "tools"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--workspace ghost: no such workspace")
    );
}

#[tokio::test]
async fn stats_show_calls_error_rate_and_percentiles_and_failures_raise_alerts() {
    let proxy = proxy().server("demo", demo()).start().await;
    proxy.wait_for_tool("demo__echo").await;
    for _ in 0..3 {
        proxy.call_text("demo__echo", json!({"message": "x"})).await;
    }
    for _ in 0..2 {
        let failed = proxy
            .call("demo__test_error_handling", json!({}))
            .await
            .unwrap();
        assert_eq!(failed.is_error, Some(true));
    }
    proxy.call_error("pluggedin_clipboard_pop", json!({})).await;
    proxy
        .peer()
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "test://static-text",
        ))
        .await
        .unwrap();
    proxy
        .peer()
        .get_prompt(rmcp::model::GetPromptRequestParams::new(
            "demo__test_simple_prompt",
        ))
        .await
        .unwrap();

    // Rows as words: SERVER (may be two words), TOOL, CALLS, ERRORS, P50, P95, counted from the end.
    let row = |out: &str, item: &str| -> Option<Vec<String>> {
        out.lines()
            .find(|line| line.split_whitespace().rev().nth(4) == Some(item))
            .map(|line| line.split_whitespace().map(str::to_owned).collect())
    };
    let calls = |out: &str, item: &str| row(out, item).map(|words| words[words.len() - 4].clone());
    let stats = wait_for_cli(&proxy, &["stats", "--since", "1h"], |out| {
        calls(out, "echo").as_deref() == Some("3")
            && calls(out, "test_error_handling").as_deref() == Some("2")
            && calls(out, "pluggedin_clipboard_pop").is_some()
            && calls(out, "test://static-text").is_some()
            && calls(out, "test_simple_prompt").is_some()
    })
    .await;
    let row = |item: &str| row(&stats, item).unwrap();
    let echo = row("echo");
    assert_eq!(
        echo[..],
        ["demo", "echo", "3", "0.0%", &echo[4], &echo[5]],
        "{stats}"
    );
    assert!(
        echo[4].ends_with("ms") && echo[5].ends_with("ms"),
        "{stats}"
    );
    let failing = row("test_error_handling");
    assert_eq!(failing[2..4], ["2", "100.0%"], "{stats}");
    let pop = row("pluggedin_clipboard_pop");
    assert_eq!(
        pop[..5],
        [
            "Clipboard",
            "System",
            "pluggedin_clipboard_pop",
            "1",
            "100.0%"
        ],
        "{stats}"
    );

    let listing = proxy
        .call_text("pluggedin_list_notifications", json!({}))
        .await;
    assert!(listing.contains("**Tool execution failed**"), "{listing}");
    assert!(
        listing.contains("Type: ALERT | Severity: ALERT"),
        "{listing}"
    );
    assert!(
        listing.contains("Message: Tool \"test_error_handling\" from demo failed: This tool intentionally returns an error for testing"),
        "{listing}"
    );
}

#[tokio::test]
async fn notification_email_reaches_a_loopback_smtp_server() {
    let maildir = tempfile::tempdir().unwrap();
    let script = clients_dir().join("smtp_sink.py");
    let smtp = Background::start(
        venv_python().to_str().unwrap(),
        &[script.to_str().unwrap(), maildir.path().to_str().unwrap()],
        &[],
        "listening on smtp://",
    )
    .await;
    let smtp_url = listening_url(&smtp.log).await;
    let port = url::Url::parse(&smtp_url).unwrap().port().unwrap();
    let proxy = proxy()
        .config_key(
            "smtp",
            json!({"host": "127.0.0.1", "security": "none", "from": "proxy@example.com", "to": ["ops@example.com"]}),
        )
        .env("PLUGGEDIN_SMTP_PORT", &port.to_string())
        .start()
        .await;
    let said = proxy
        .call_text(
            "pluggedin_send_notification",
            json!({"title": "Deploy", "message": "Deployment finished", "severity": "SUCCESS", "sendEmail": true}),
        )
        .await;
    assert_eq!(said, "Notification created and email sent");
    let mail = std::fs::read_to_string(maildir.path().join("1.eml")).unwrap();
    assert!(mail.contains("X-Envelope-To: ops@example.com"), "{mail}");
    assert!(mail.contains("Subject: Deploy - Plugged.in"), "{mail}");
    assert!(mail.contains("From: proxy@example.com"), "{mail}");
    assert!(mail.contains("Deployment finished"), "{mail}");
    assert!(mail.contains("Severity: SUCCESS"), "{mail}");
}

#[tokio::test]
async fn a_failed_delivery_is_reported_and_the_notification_kept() {
    // A port bound but not listening: connections to it are refused, and no other process can
    // take it while the test holds it.
    let refusing = tokio::net::TcpSocket::new_v4().unwrap();
    refusing.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = refusing.local_addr().unwrap().port();
    let proxy = proxy()
        .config_key(
            "smtp",
            json!({"host": "127.0.0.1", "port": port, "security": "none", "from": "a@example.com", "to": "b@example.com"}),
        )
        .start()
        .await;
    let said = proxy
        .call_text(
            "pluggedin_send_notification",
            json!({"message": "m", "sendEmail": true}),
        )
        .await;
    assert!(
        said.starts_with("Notification created (email failed: SMTP delivery failed")
            && said.contains("Connection refused"),
        "{said}"
    );
    let listing = proxy
        .call_text("pluggedin_list_notifications", json!({}))
        .await;
    assert!(listing.starts_with("Found 1 notification:"), "{listing}");
}

#[tokio::test]
async fn activity_older_than_the_retention_is_deleted_at_start() {
    let first = proxy().start().await;
    first.call_text("pluggedin_setup", json!({})).await;
    wait_for_cli(&first, &["stats"], |out| out.contains("pluggedin_setup")).await;
    let second = proxy()
        .in_dir_of(&first)
        .arg("--activity-retention-days")
        .arg("0")
        .start()
        .await;
    second.log.wait_for("old activity deleted").await;
    let stats = second.cli_ok(&["stats"]);
    assert!(
        stats.contains("no activity recorded in this window"),
        "{stats}"
    );
}

/// Several proxies on one data dir, each with a client sending concurrent writes, and `docs add`
/// processes beside them: no write is refused (`database is locked` or otherwise), and every
/// acknowledged one is in the store.
#[tokio::test]
async fn concurrent_writes_from_several_processes_are_all_acknowledged_and_kept() {
    concurrent_writes(None).await;
}

/// The same on one PostgreSQL database (`--database-url`), whose writes take its advisory lock.
#[tokio::test]
async fn concurrent_writes_to_one_postgresql_database_are_all_acknowledged_and_kept() {
    concurrent_writes(Some(crate::pg_cluster::database().await)).await;
}

/// Several proxies and `docs add` processes writing at once, on one data dir's SQLite store or
/// on the PostgreSQL database at `database_url`.
async fn concurrent_writes(database_url: Option<String>) {
    use pluggedin_mcp_proxy::control::{ClipboardKey, ControlPlane};

    const PROXIES: usize = 4;
    const ROUNDS: usize = 20;
    const FILES: usize = 12;
    let database: Vec<&str> = match &database_url {
        Some(url) => vec!["--database-url", url],
        None => Vec::new(),
    };
    let with_database = |mut builder: ProxyBuilder| {
        for arg in &database {
            builder = builder.arg(arg);
        }
        builder
    };
    let first = with_database(proxy()).start().await;
    let mut proxies = vec![first];
    for _ in 1..PROXIES {
        let next = with_database(proxy().in_dir_of(&proxies[0])).start().await;
        proxies.push(next);
    }
    let mut sessions = Vec::new();
    for proxy in &proxies {
        let started = proxy
            .call_text(
                "pluggedin_memory_session_start",
                json!({"content_session_id": "concurrent"}),
            )
            .await;
        sessions.push(line_after(&started, "Session UUID:"));
    }
    let folders: Vec<_> = (0..2)
        .map(|folder| {
            let path = proxies[0].dir.path().join(format!("files-{folder}"));
            std::fs::create_dir(&path).unwrap();
            for file in 0..FILES {
                std::fs::write(
                    path.join(format!("note-{file}.md")),
                    format!("# Note {folder}-{file}\n\nFiled by docs add {folder}, file {file}."),
                )
                .unwrap();
            }
            path
        })
        .collect();

    // Every call of every client at once; the proxies and the `docs add` processes all write.
    let adds = folders.iter().map(|folder| {
        tokio::process::Command::new(proxy_bin())
            .arg("--config")
            .arg(&proxies[0].config_path)
            .arg("--data-dir")
            .arg(proxies[0].data_dir())
            .args(&database)
            .args(["docs", "add"])
            .arg(folder)
            .env_remove("PLUGGEDIN_API_KEY")
            .output()
    });
    let calls = proxies
        .iter()
        .zip(&sessions)
        .enumerate()
        .flat_map(|(p, (proxy, session))| {
            (0..ROUNDS).flat_map(move |round| {
                [
                    (
                        "pluggedin_create_document",
                        json!({"title": format!("Doc {p}-{round}"),
                           "content": format!("Written by proxy {p} in round {round}."),
                           "metadata": {"model": {"name": "m", "provider": "p"}}}),
                    ),
                    (
                        "pluggedin_memory_observe",
                        json!({"session_uuid": session, "type": "insight",
                           "content": format!("observation {p}-{round}")}),
                    ),
                    (
                        "pluggedin_clipboard_push",
                        json!({"value": format!("pushed {p}-{round}")}),
                    ),
                ]
                .map(|(tool, args)| async move { (tool, proxy.call(tool, args).await) })
            })
        });
    let (added, answers) = tokio::join!(
        futures::future::join_all(adds),
        futures::future::join_all(calls)
    );

    let mut refused = Vec::new();
    let (mut documents, mut observations, mut indexes) = (Vec::new(), Vec::new(), Vec::new());
    for (tool, answer) in answers {
        match answer {
            Ok(result) if result.is_error != Some(true) => {
                let text = text_of(&result);
                match tool {
                    "pluggedin_create_document" => documents.push(line_after(&text, "ID:")),
                    "pluggedin_memory_observe" => observations.push(line_after(&text, "UUID:")),
                    _ => indexes.push(
                        line_after(&text, "Pushed to clipboard at index")
                            .parse::<i64>()
                            .unwrap(),
                    ),
                }
            }
            Ok(result) => refused.push(format!("{tool}: {}", text_of(&result))),
            Err(error) => refused.push(format!("{tool}: {error}")),
        }
    }
    for output in added {
        let output = output.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            refused.push(format!(
                "docs add: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        } else {
            assert!(
                stdout.starts_with(&format!("added {FILES}, duplicates 0, skipped 0, failed 0")),
                "{stdout}"
            );
        }
    }
    let locked = proxies
        .iter()
        .filter(|proxy| proxy.log.text().contains("database is locked"))
        .count();
    assert!(
        refused.is_empty() && locked == 0,
        "{} writes refused, {locked} proxies logged `database is locked`:\n{}",
        refused.len(),
        refused.join("\n")
    );

    let store: Box<dyn ControlPlane> = match &database_url {
        Some(url) => Box::new(
            pluggedin_mcp_proxy::control::postgres::PostgresStore::connect(url)
                .await
                .unwrap(),
        ),
        None => Box::new(
            pluggedin_mcp_proxy::control::local::LocalStore::open(Some(&proxies[0].data_dir()))
                .unwrap(),
        ),
    };
    for id in &documents {
        assert!(
            store
                .get_document(id, false, false)
                .await
                .unwrap()
                .is_some(),
            "document {id} was acknowledged but is not in the store"
        );
    }
    let found = store.memory_details(observations.clone()).await.unwrap();
    assert_eq!(
        found.len(),
        observations.len(),
        "acknowledged observations are missing"
    );
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(
        indexes.len(),
        PROXIES * ROUNDS,
        "two pushes were given one index"
    );
    for idx in indexes {
        assert!(
            store
                .clipboard_get(ClipboardKey::Index(idx), None)
                .await
                .unwrap()
                .is_some(),
            "the clipboard entry at index {idx} was acknowledged but is not in the store"
        );
    }
    let (_, total) = store.list_documents(Default::default()).await.unwrap();
    assert_eq!(total as usize, PROXIES * ROUNDS + 2 * FILES);
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_dir_and_the_store_are_the_owners_only() {
    use std::os::unix::fs::PermissionsExt;
    let proxy = proxy().server("demo", demo()).start().await;
    proxy.call_text("demo__echo", json!({"message": "x"})).await;
    let mode = |path: std::path::PathBuf| {
        std::fs::metadata(&path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(proxy.data_dir()), 0o700);
    assert_eq!(mode(proxy.data_dir().join("store.db")), 0o600);
    assert_eq!(mode(proxy.data_dir().join("store.db-wal")), 0o600);
}
