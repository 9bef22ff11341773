//! Search mode (`--tool-exposure search`) through real clients: `tools/list` shows the pinned
//! tools and the meta-tools; search finds demo tools by words, describe gives the definitions
//! `tools/list` gives in all mode, a call through `pluggedin_call_tool` behaves as the direct
//! call (tool errors, progress, cancellation, the server's questions, a modern client's parked
//! call, the activity log), activation adds to one session's list with `list_changed`, and
//! tools switched off or outside the workspace are never found nor called. Over stdio and
//! Streamable HTTP, with rmcp and the official Python SDK.

use std::process::Stdio;

use rmcp::model::*;
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RunningService};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

use crate::support::*;

const META: [&str; 4] = [
    "pluggedin_search_tools",
    "pluggedin_describe_tools",
    "pluggedin_call_tool",
    "pluggedin_activate_tools",
];

fn params(tool: &str, arguments: Value) -> CallToolRequestParams {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments)
}

/// `pluggedin_call_tool`'s params for a call of `tool` with `arguments`.
fn through_meta(tool: &str, arguments: Value) -> CallToolRequestParams {
    params(
        "pluggedin_call_tool",
        json!({"name": tool, "arguments": arguments}),
    )
}

async fn call(
    peer: &rmcp::service::Peer<RoleClient>,
    params: CallToolRequestParams,
) -> CallToolResult {
    let name = params.name.clone();
    peer.call_tool(params)
        .await
        .unwrap_or_else(|error| panic!("{name} failed: {error}"))
}

async fn listed(peer: &rmcp::service::Peer<RoleClient>) -> Vec<Tool> {
    peer.list_all_tools().await.unwrap()
}

/// The names a search for `query` finds (its structured content), best first.
async fn found(peer: &rmcp::service::Peer<RoleClient>, arguments: Value) -> Vec<String> {
    let result = call(peer, params("pluggedin_search_tools", arguments)).await;
    assert_ne!(result.is_error, Some(true), "{}", text_of(&result));
    result.structured_content.unwrap()["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap().to_owned())
        .collect()
}

/// In search mode a session lists the meta-tools first, then only pinned tools.
fn assert_search_mode_list(tools: &[Tool]) {
    let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    assert_eq!(names[..4], META, "{names:?}");
    for tool in &tools[4..] {
        assert!(
            pluggedin_mcp_proxy::router::is_pinned(tool),
            "{} is listed without being pinned",
            tool.name
        );
    }
}

/// Waits until a search for `query` satisfies `check` (the catalog follows the servers and the
/// settings in the background; each change is announced with `list_changed`).
async fn search_until(proxy: &mut Proxy, query: Value, check: impl Fn(&[String]) -> bool) {
    loop {
        if check(&found(proxy.peer(), query.clone()).await) {
            return;
        }
        proxy
            .next_event(|event| matches!(event, Event::ToolsChanged).then_some(()))
            .await;
    }
}

#[tokio::test]
async fn search_mode_over_stdio_finds_describes_calls_and_activates_demo_tools() {
    let all = proxy().server("demo", demo()).start().await;
    all.wait_for_tool("demo__echo").await;
    let mut proxy = proxy()
        .server("demo", demo())
        .arg("--tool-exposure")
        .arg("search")
        .start_after(Some(" connected "))
        .await;
    assert_search_mode_list(&listed(proxy.peer()).await);

    // Found by words of their descriptions, best first, with scores.
    let echo = found(proxy.peer(), json!({"query": "echo my message back"})).await;
    assert_eq!(
        echo.first().map(String::as_str),
        Some("demo__echo"),
        "{echo:?}"
    );
    let add = call(
        proxy.peer(),
        params(
            "pluggedin_search_tools",
            json!({"query": "add two numbers", "server": "demo", "limit": 3}),
        ),
    )
    .await;
    let hits = add.structured_content.clone().unwrap()["tools"].clone();
    assert_eq!(hits[0]["name"], "demo__add", "{hits}");
    assert_eq!(hits[0]["server"], "demo", "{hits}");
    assert!(hits[0]["score"].as_f64().unwrap() > 0.0, "{hits}");
    assert!(hits.as_array().unwrap().len() <= 3, "{hits}");
    assert!(text_of(&add).contains("demo__add ("), "{}", text_of(&add));
    for (arguments, cause) in [
        (
            json!({"query": "x", "limit": 0}),
            "\"limit\" must be at least 1",
        ),
        (
            json!({"query": "x", "server": "nope"}),
            "no server named \"nope\"",
        ),
        (json!({"limit": 3}), "\"query\" is required"),
        (json!({"query": "x", "page": 2}), "\"page\""),
    ] {
        let error = proxy.call_error("pluggedin_search_tools", arguments).await;
        assert!(error.contains(cause), "{error}");
    }

    // Described exactly as tools/list shows them in all mode.
    let described = call(
        proxy.peer(),
        params(
            "pluggedin_describe_tools",
            json!({"names": ["demo__echo", "demo__add", "nope__nothing"]}),
        ),
    )
    .await;
    let described = described.structured_content.unwrap();
    let in_all_mode: Vec<Value> = listed(all.peer())
        .await
        .into_iter()
        .filter(|tool| tool.name == "demo__echo" || tool.name == "demo__add")
        .map(|tool| serde_json::to_value(tool).unwrap())
        .collect();
    assert_eq!(described["tools"], json!(in_all_mode));
    assert_eq!(described["unknown"], json!(["nope__nothing"]));

    // A call through the meta-tool is the direct call: its result, its tool error, its
    // protocol error.
    let direct = call(proxy.peer(), params("demo__echo", json!({"message": "hi"}))).await;
    let meta = call(
        proxy.peer(),
        through_meta("demo__echo", json!({"message": "hi"})),
    )
    .await;
    assert_eq!(meta, direct);
    assert_eq!(text_of(&meta), "Echo: hi");
    let failed = call(
        proxy.peer(),
        through_meta("demo__test_error_handling", json!({})),
    )
    .await;
    assert_eq!(failed.is_error, Some(true), "{failed:?}");
    assert_eq!(
        failed,
        call(proxy.peer(), params("demo__test_error_handling", json!({}))).await
    );
    let unknown = mcp_error(
        proxy
            .peer()
            .call_tool(through_meta("demo__missing", json!({})))
            .await
            .unwrap_err(),
    );
    let direct_unknown = mcp_error(proxy.call("demo__missing", json!({})).await.unwrap_err());
    assert_eq!(
        (unknown.code, unknown.message),
        (direct_unknown.code, direct_unknown.message)
    );
    let unfit = proxy
        .call_error("pluggedin_call_tool", json!({"arguments": {}}))
        .await;
    assert!(unfit.contains("\"name\" is required"), "{unfit}");

    // Progress with the client's token, the server's questions reach the client.
    let mut with_progress = through_meta("demo__test_tool_with_progress", json!({}));
    with_progress.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(
        NumberOrString::String("meta-token".into()),
    )));
    let handle = proxy
        .peer()
        .send_request_with_option(
            ClientRequest::CallToolRequest(Request::new(with_progress)),
            Default::default(),
        )
        .await
        .unwrap();
    let sent_token = handle.progress_token.clone();
    handle.await_response().await.unwrap();
    let progress = proxy
        .next_event(|event| match event {
            Event::Progress(progress) => Some(progress.clone()),
            _ => None,
        })
        .await;
    assert_eq!(progress.progress_token, sent_token);
    let sampled = call(
        proxy.peer(),
        through_meta("demo__test_sampling", json!({"prompt": "hi"})),
    )
    .await;
    assert!(
        text_of(&sampled).contains("sampled by the test client"),
        "{sampled:?}"
    );
    let elicited = call(
        proxy.peer(),
        through_meta("demo__test_elicitation", json!({"message": "who?"})),
    )
    .await;
    assert!(text_of(&elicited).contains("tester"), "{elicited:?}");
    let asked: Vec<String> = proxy
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|method| *method != "roots/list")
        .cloned()
        .collect();
    assert_eq!(asked, ["sampling/createMessage", "elicitation/create"]);

    // Cancelling the outer request cancels the call on the server.
    let sleeping = proxy
        .peer()
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(through_meta(
                "demo__sleep",
                json!({"ms": 600_000}),
            ))),
            Default::default(),
        )
        .await
        .unwrap();
    proxy.log.wait_for("sleep started").await;
    sleeping
        .cancel(Some("changed my mind".into()))
        .await
        .unwrap();
    proxy.log.wait_for("sleep cancelled by the client").await;

    // Activation: this session's list grows at its end, and says so.
    let activated = call(
        proxy.peer(),
        params(
            "pluggedin_activate_tools",
            json!({"names": ["demo__echo", "nope__nothing"]}),
        ),
    )
    .await;
    assert_eq!(
        activated.structured_content.unwrap(),
        json!({"activated": ["demo__echo"], "listedAlready": [], "refused": [],
               "unknown": ["nope__nothing"]})
    );
    let names = proxy
        .tools_changed_until(|names| names.contains(&"demo__echo".to_owned()))
        .await;
    assert_eq!(names.last().map(String::as_str), Some("demo__echo"));
    assert_search_mode_list(&listed(proxy.peer()).await[..names.len() - 1]);
    assert_eq!(
        proxy
            .call_text("demo__echo", json!({"message": "direct"}))
            .await,
        "Echo: direct"
    );
    let again = call(
        proxy.peer(),
        params("pluggedin_activate_tools", json!({"names": ["demo__echo"]})),
    )
    .await;
    assert!(text_of(&again).contains("Listed already"), "{again:?}");

    // The activity log has the real tool's name, never the meta-tool's.
    // The recorder writes in batches: the stats are read until they show the calls.
    let deadline = tokio::time::Instant::now() + WAIT;
    let stats = loop {
        let stats = proxy.cli_ok(&["stats", "--since", "1h"]);
        let echo_calls = stats
            .lines()
            .find(|line| line.split_whitespace().nth(1) == Some("echo"))
            .and_then(|line| line.split_whitespace().nth(2).map(str::to_owned));
        if echo_calls.as_deref() == Some("3") {
            break stats;
        }
        assert!(tokio::time::Instant::now() < deadline, "{stats}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    // Only the call whose arguments named no tool is the meta-tool's own.
    let meta_calls = stats
        .lines()
        .find(|line| line.contains("pluggedin_call_tool"))
        .map(|line| line.split_whitespace().rev().nth(3).unwrap().to_owned());
    assert_eq!(meta_calls.as_deref(), Some("1"), "{stats}");
    assert!(stats.contains("test_error_handling"), "{stats}");

    // All mode: the meta-tools are not listed, yet answer.
    let names = all.tool_names().await;
    assert!(
        names.iter().all(|name| !META.contains(&name.as_str())),
        "{names:?}"
    );
    assert_eq!(
        text_of(
            &call(
                all.peer(),
                through_meta("demo__echo", json!({"message": "a"}))
            )
            .await
        ),
        "Echo: a"
    );
    let listed_already = call(
        all.peer(),
        params("pluggedin_activate_tools", json!({"names": ["demo__add"]})),
    )
    .await;
    assert!(
        text_of(&listed_already).contains("Listed already"),
        "{listed_already:?}"
    );
}

#[tokio::test]
async fn tools_switched_off_or_outside_the_workspace_are_never_found_nor_called() {
    let mut proxy = proxy()
        .server("demo", demo())
        .server("other", demo())
        .arg("--tool-exposure")
        .arg("search")
        .start_after(Some(" connected "))
        .await;
    let query = json!({"query": "add two numbers", "limit": 50});
    search_until(&mut proxy, query.clone(), |names| {
        names.contains(&"demo__add".to_owned()) && names.contains(&"other__add".to_owned())
    })
    .await;

    proxy.cli_ok(&["tools", "disable", "demo__add"]);
    search_until(&mut proxy, query.clone(), |names| {
        !names.contains(&"demo__add".to_owned())
    })
    .await;
    let disabled = mcp_error(
        proxy
            .peer()
            .call_tool(through_meta("demo__add", json!({"a": 1, "b": 2})))
            .await
            .unwrap_err(),
    );
    assert_eq!(disabled.code, ErrorCode::INVALID_PARAMS);
    assert!(disabled.message.contains("is disabled"), "{disabled:?}");
    let described = proxy
        .call_error("pluggedin_describe_tools", json!({"names": ["demo__add"]}))
        .await;
    assert!(
        described.contains("No tool named \"demo__add\""),
        "{described}"
    );

    proxy.cli_ok(&["workspace", "create", "focus", "--servers", "demo"]);
    proxy.cli_ok(&["workspace", "switch", "focus"]);
    search_until(&mut proxy, json!({"query": "echo", "limit": 50}), |names| {
        names.iter().all(|name| !name.starts_with("other__"))
            && names.contains(&"demo__echo".to_owned())
    })
    .await;
    let adding = found(proxy.peer(), query).await;
    assert!(
        adding
            .iter()
            .all(|name| !name.starts_with("other__") && name != "demo__add"),
        "{adding:?}"
    );
    let elsewhere = proxy
        .call_error(
            "pluggedin_search_tools",
            json!({"query": "echo", "server": "other"}),
        )
        .await;
    assert!(
        elsewhere.contains("no server named \"other\""),
        "{elsewhere}"
    );
    let outside = mcp_error(
        proxy
            .peer()
            .call_tool(through_meta("other__echo", json!({"message": "x"})))
            .await
            .unwrap_err(),
    );
    assert!(
        outside.message.contains("not in the active workspace"),
        "{outside:?}"
    );
    let activated = proxy
        .call_error(
            "pluggedin_activate_tools",
            json!({"names": ["other__echo"]}),
        )
        .await;
    assert!(
        activated.contains("No tool named \"other__echo\""),
        "{activated}"
    );
}

#[tokio::test]
async fn search_mode_over_http_calls_as_directly_and_activates_per_session() {
    let dir = tempfile::tempdir().unwrap();
    let (_child, log, url) = spawn_http_proxy(
        &dir,
        json!({"demo": demo()}),
        &["--tool-exposure", "search"],
    )
    .await;
    let connect = || async {
        let client = TestClient::new();
        let events = client.subscribe();
        let service = client
            .serve(StreamableHttpClientTransport::from_uri(url.as_str()))
            .await
            .unwrap();
        (service, events)
    };
    let (client, mut events) = connect().await;
    let (other, _other_events) = connect().await;
    let peer = client.peer();
    assert_search_mode_list(&listed(peer).await);
    let echo = found(peer, json!({"query": "echo the message"})).await;
    assert_eq!(
        echo.first().map(String::as_str),
        Some("demo__echo"),
        "{echo:?}"
    );

    let meta = call(peer, through_meta("demo__echo", json!({"message": "hi"}))).await;
    assert_eq!(
        meta,
        call(peer, params("demo__echo", json!({"message": "hi"}))).await
    );

    let mut with_progress = through_meta("demo__test_tool_with_progress", json!({}));
    with_progress.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(
        NumberOrString::String("http-token".into()),
    )));
    let handle = peer
        .send_request_with_option(
            ClientRequest::CallToolRequest(Request::new(with_progress)),
            Default::default(),
        )
        .await
        .unwrap();
    let sent_token = handle.progress_token.clone();
    handle.await_response().await.unwrap();
    let progress = next(&mut events, |event| match event {
        Event::Progress(progress) => Some(progress.clone()),
        _ => None,
    })
    .await;
    assert_eq!(progress.progress_token, sent_token);
    let sampled = call(
        peer,
        through_meta("demo__test_sampling", json!({"prompt": "hi"})),
    )
    .await;
    assert!(
        text_of(&sampled).contains("sampled by the test client"),
        "{sampled:?}"
    );

    let sleeping = peer
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(through_meta(
                "demo__sleep",
                json!({"ms": 600_000}),
            ))),
            Default::default(),
        )
        .await
        .unwrap();
    log.wait_for("sleep started").await;
    sleeping.cancel(None).await.unwrap();
    log.wait_for("sleep cancelled by the client").await;

    call(
        peer,
        params("pluggedin_activate_tools", json!({"names": ["demo__add"]})),
    )
    .await;
    next(&mut events, |event| {
        matches!(event, Event::ToolsChanged).then_some(())
    })
    .await;
    let names: Vec<String> = listed(peer)
        .await
        .into_iter()
        .map(|tool| tool.name.to_string())
        .collect();
    assert_eq!(names.last().map(String::as_str), Some("demo__add"));
    // Another session's list is its own.
    assert_search_mode_list(&listed(other.peer()).await);
    let sum = call(peer, params("demo__add", json!({"a": 2, "b": 3}))).await;
    assert_eq!(text_of(&sum), "5");
    drop(other);
    let _ = client.cancel().await;
}

/// The next event of `events` that `pick` takes, within [`WAIT`].
async fn next<T>(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(error) => panic!("event channel closed: {error}"),
            }
        }
    })
    .await
    .expect("the event within the wait")
}

#[tokio::test]
async fn a_modern_clients_call_through_the_meta_tool_is_parked_and_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcp.json");
    let servers = json!({"demo": {"command": demo_bin(), "protocol": "legacy"}});
    std::fs::write(&config, json!({"mcpServers": servers}).to_string()).unwrap();
    let mut command = tokio::process::Command::new(proxy_bin());
    command
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--tool-exposure", "search"])
        .env("RUST_LOG", "info,pluggedin_mcp_proxy=debug");
    let (transport, stderr) = TokioChildProcess::builder(command)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Log::capture(stderr.unwrap());
    let modern = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let client: RunningService<RoleClient, TestClient> = TestClient::new()
        .serve_with_lifecycle(transport, modern)
        .await
        .unwrap();
    log.wait_for(" connected ").await;
    assert_search_mode_list(&listed(client.peer()).await);

    // rmcp's modern client answers the InputRequiredResult and retries the same call.
    let sampled = client
        .call_tool(through_meta("demo__test_sampling", json!({"prompt": "hi"})))
        .await
        .unwrap_or_else(|error| panic!("{error}\n{}", log.text()));
    assert!(
        text_of(&sampled).contains("sampled by the test client"),
        "{sampled:?}"
    );

    // By hand: the call parks under a request state, and the retry of the meta call resumes it.
    let first = through_meta("demo__test_sampling", json!({"prompt": "by hand"}));
    let CallToolResponse::InputRequired(input) =
        client.peer().call_tool_once(first.clone()).await.unwrap()
    else {
        panic!("expected input_required")
    };
    let state = input.request_state.clone().unwrap();
    assert!(state.starts_with("pluggedin-parked."), "{state}");
    let (key, _) = input.input_requests.unwrap().into_iter().next().unwrap();
    let answer = CreateMessageResult::new(
        SamplingMessage::assistant_text("answered by hand"),
        "hand".into(),
    );
    let mut retry = first;
    retry.input_responses = Some(InputResponses::from([(
        key,
        serde_json::to_value(answer).unwrap(),
    )]));
    retry.request_state = Some(state);
    let CallToolResponse::Complete(done) = client.peer().call_tool_once(retry).await.unwrap()
    else {
        panic!("expected the final result")
    };
    assert!(text_of(&done).contains("answered by hand"), "{done:?}");
}

/// Runs `tests/clients/search_mode_client.py` over `args` and returns what it saw.
async fn python_sees(args: &[&str]) -> Value {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients/search_mode_client.py");
    let output = tokio::time::timeout(
        WAIT * 2,
        tokio::process::Command::new(venv_python())
            .arg(script)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Python client finished")
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the Python client failed:\n{stderr}"
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn assert_python_saw(seen: &Value) {
    assert_eq!(
        seen["listed"].as_array().unwrap()[..4],
        json!(META).as_array().unwrap()[..]
    );
    assert_eq!(seen["found"][0], "demo__echo", "{seen}");
    assert_eq!(seen["described"]["name"], "demo__echo", "{seen}");
    assert_eq!(
        seen["described"]["inputSchema"]["required"],
        json!(["message"])
    );
    assert_eq!(seen["echo"], "Echo: from python");
    assert_eq!(seen["error"], true, "{seen}");
    assert_eq!(seen["progress"], json!([0.0, 50.0, 100.0]));
    assert!(
        seen["sampling"]
            .as_str()
            .unwrap()
            .contains("sampled by the python client"),
        "{seen}"
    );
    assert!(
        seen["elicitation"].as_str().unwrap().contains("python"),
        "{seen}"
    );
    assert_eq!(seen["unknown"]["code"], -32602, "{seen}");
    assert_eq!(seen["list_changed"], true, "{seen}");
    assert_eq!(seen["activated_listed"], true, "{seen}");
    assert_eq!(seen["direct"], "Echo: activated");
}

#[tokio::test]
async fn the_python_sdk_client_uses_search_mode_over_stdio() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcp.json");
    std::fs::write(&config, json!({"mcpServers": {"demo": demo()}}).to_string()).unwrap();
    let data = dir.path().join("data");
    let seen = python_sees(&[
        "stdio",
        proxy_bin(),
        config.to_str().unwrap(),
        data.to_str().unwrap(),
    ])
    .await;
    assert_python_saw(&seen);
}

#[tokio::test]
async fn the_python_sdk_client_uses_search_mode_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let (_child, _log, url) = spawn_http_proxy(
        &dir,
        json!({"demo": demo()}),
        &["--tool-exposure", "search"],
    )
    .await;
    assert_python_saw(&python_sees(&["http", &url]).await);
}

/// A bearer token's `toolExposure` (the config's `authTokens`) decides its sessions' lists over
/// the flag; the active workspace's exposure decides for every other session, and a change of
/// it is announced with `list_changed` though the catalog stayed the same.
#[tokio::test]
async fn a_tokens_and_the_workspaces_exposure_decide_a_sessions_list_and_changes_are_announced() {
    let dir = tempfile::tempdir().unwrap();
    let file = json!({
        "mcpServers": {"demo": demo()},
        "authTokens": ["plain", {"token": "searcher", "toolExposure": "search"}],
    });
    let (_child, log, url) =
        spawn_http_proxy_with_config(&dir, file, &["--require-api-auth"]).await;
    log.wait_for(" connected ").await;
    let connect = |token: &'static str| {
        let url = url.clone();
        async move {
            let client = TestClient::new();
            let events = client.subscribe();
            let config =
                rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                    url.as_str(),
                )
                .auth_header(token);
            let service = client
                .serve(StreamableHttpClientTransport::from_config(config))
                .await
                .unwrap();
            (service, events)
        }
    };
    let (searcher, _searcher_events) = connect("searcher").await;
    let (plain, mut plain_events) = connect("plain").await;
    let all_mode = |tools: &[Tool]| tools.iter().any(|tool| tool.name == "demo__echo");
    assert_search_mode_list(&listed(searcher.peer()).await);
    let plain_tools = listed(plain.peer()).await;
    assert!(all_mode(&plain_tools), "{plain_tools:?}");

    let cli = |args: &[&str]| {
        let output = run_cli(&dir.path().join("mcp.json"), &dir.path().join("data"), args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    // A workspace of every server, so that only the exposure changes what a session lists.
    cli(&[
        "workspace",
        "create",
        "focus",
        "--servers",
        "demo",
        "--tool-exposure",
        "search",
    ]);
    cli(&["workspace", "switch", "focus"]);
    next(&mut plain_events, |event| {
        matches!(event, Event::ToolsChanged).then_some(())
    })
    .await;
    assert_search_mode_list(&listed(plain.peer()).await);

    cli(&["workspace", "set", "focus", "--tool-exposure", "all"]);
    next(&mut plain_events, |event| {
        matches!(event, Event::ToolsChanged).then_some(())
    })
    .await;
    let plain_tools = listed(plain.peer()).await;
    assert!(all_mode(&plain_tools), "{plain_tools:?}");
    // The token's own exposure still wins over the workspace's.
    assert_search_mode_list(&listed(searcher.peer()).await);
    let _ = searcher.cancel().await;
    let _ = plain.cancel().await;
}
