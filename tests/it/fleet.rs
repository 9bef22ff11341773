//! A fleet: three replicas in Streamable HTTP mode on one PostgreSQL database, behind HAProxy in
//! round robin with no session pinning, driven by the official Python SDK and rmcp through the
//! load balancer. A session is served wherever its requests land (they are passed to the replica
//! that holds it), survives the death of that replica (another adopts it), and the fleet keeps
//! serving downstream tools while PostgreSQL restarts. A server of fleet scope runs on one
//! replica, reached through it by the others, and moves when its owner dies, stops or freezes.

use std::path::PathBuf;
use std::process::Stdio;

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::pg_cluster;
use crate::support::*;

/// One replica of the fleet.
struct Replica {
    child: ProxyChild,
    log: Log,
    /// Its `/mcp` URL.
    url: String,
    _dir: tempfile::TempDir,
}

impl Replica {
    /// Sends it `signal` (`-9`, `-TERM`) and waits until it has exited.
    async fn signal(&mut self, signal: &str) {
        let pid = self.child.id().unwrap();
        let sent = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let _ = self.child.wait().await;
    }

    /// Its base URL (`http://127.0.0.1:PORT`).
    fn base(&self) -> String {
        self.url.trim_end_matches("/mcp").to_owned()
    }

    /// The sum of the samples of metric `name` on its `/metrics` page whose labels contain
    /// `labels`.
    async fn metric(&self, name: &str, labels: &str) -> f64 {
        let page = reqwest::get(format!("{}/metrics", self.base()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        page.lines()
            .filter(|line| !line.starts_with('#'))
            .filter(|line| {
                let sample = line.split(['{', ' ']).next().unwrap_or_default();
                (sample == name || sample.strip_suffix("_total") == Some(name))
                    && line.contains(labels)
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// The replicas and their load balancer.
struct Fleet {
    replicas: Vec<Replica>,
    balancer: Background,
    /// The load balancer's `/mcp` URL.
    url: String,
    _dir: tempfile::TempDir,
}

fn haproxy() -> PathBuf {
    ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .expect("haproxy is installed (scripts/test-deps.sh)")
}

/// Three replicas serving the demo server on `database`, and HAProxy in front of them.
async fn fleet(database: &str) -> Fleet {
    fleet_of(database, json!({"demo": demo()})).await
}

/// Three replicas serving `servers` on `database`, and HAProxy in front of them.
async fn fleet_of(database: &str, servers: Value) -> Fleet {
    fleet_with(database, servers, &[]).await
}

/// [`fleet_of`], each replica started with `args` too.
async fn fleet_with(database: &str, servers: Value, args: &[&str]) -> Fleet {
    fleet_behind(database, servers, args, None).await
}

/// [`fleet_with`], the balancer connecting to the replicas from `source` when given.
async fn fleet_behind(
    database: &str,
    servers: Value,
    args: &[&str],
    source: Option<&str>,
) -> Fleet {
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let mut all = vec![
            "--database-url",
            database,
            "--session-key",
            "fleet test key",
        ];
        all.extend_from_slice(args);
        let (child, log, url) = spawn_http_proxy(&dir, servers.clone(), &all).await;
        log.wait_for("joined the fleet").await;
        replicas.push(Replica {
            child,
            log,
            url,
            _dir: dir,
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/haproxy_lb.py");
    let mut args = vec![
        script.to_str().unwrap().to_owned(),
        haproxy().to_str().unwrap().to_owned(),
        dir.path().to_str().unwrap().to_owned(),
    ];
    if let Some(source) = source {
        args.extend(["--source".to_owned(), source.to_owned()]);
    }
    args.extend(replicas.iter().map(Replica::base));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let balancer = Background::start("python3", &args, &[], "listening on").await;
    let url = format!("{}/mcp", listening_url(&balancer.log).await);
    Fleet {
        replicas,
        balancer,
        url,
        _dir: dir,
    }
}

/// The Python SDK's fleet client (`tests/clients/fleet_client.py`), one command at a time.
struct Driver {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    log: Log,
}

impl Driver {
    fn start(url: &str) -> Driver {
        let mut child = tokio::process::Command::new(venv_python())
            .arg(clients_dir().join("fleet_client.py"))
            .arg(url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let log = Log::capture(child.stderr.take().unwrap());
        Driver {
            child,
            stdin,
            lines,
            log,
        }
    }

    async fn ask(&mut self, command: &str) -> Value {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no answer to {command}:\n{}", self.log.text()))
            .unwrap()
            .unwrap_or_else(|| panic!("the client ended at {command}:\n{}", self.log.text()));
        serde_json::from_str(&line).unwrap()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            stop(pid);
        }
    }
}

/// The index of the replica that holds the one session made so far (the one that counted it
/// opened).
async fn home_of(replicas: &[Replica]) -> usize {
    let mut homes = Vec::new();
    for (index, replica) in replicas.iter().enumerate() {
        if replica.metric("pluggedin_proxy_sessions_opened", "").await > 0.0 {
            homes.push(index);
        }
    }
    assert_eq!(homes.len(), 1, "one replica made the session");
    homes[0]
}

#[tokio::test]
async fn a_session_is_served_through_every_replica_and_outlives_the_one_holding_it() {
    // A cluster of this test's own: it is restarted below.
    let cluster = tokio::task::spawn_blocking(pg_cluster::private)
        .await
        .unwrap();
    let database = cluster.url("postgres");
    let mut fleet = fleet(&database).await;
    let mut client = Driver::start(&fleet.url);
    let started = client.ask("start").await;
    assert!(
        started["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("demo__echo")),
        "{started}"
    );

    let calls = client.ask("calls 200").await;
    assert_eq!(
        calls,
        json!({"ok": 200, "errors": []}),
        "{}",
        fleet.replicas[0].log.text()
    );
    let home = home_of(&fleet.replicas).await;
    // The requests that landed on the other two replicas were passed to the home.
    for (index, replica) in fleet.replicas.iter().enumerate() {
        let forwarded = replica.metric("pluggedin_proxy_fleet_forwarded", "").await;
        if index == home {
            assert_eq!(forwarded, 0.0, "the home passes nothing on");
        } else {
            assert!(forwarded > 0.0, "replica {index} took some of the requests");
        }
    }
    let calls_at_home = fleet.replicas[home]
        .metric(
            "mcp_server_operation_duration_seconds_count",
            "mcp_method_name=\"tools/call\"",
        )
        .await;
    assert!(calls_at_home >= 200.0, "{calls_at_home}");

    // The server's questions and progress reach the client wherever its requests land.
    assert_eq!(
        client.ask("sampling").await,
        json!({"text": "LLM response: sampled by the fleet client"})
    );
    let progress = client.ask("progress").await;
    assert!(
        !progress["progress"].as_array().unwrap().is_empty(),
        "{progress}"
    );

    // The home dies with a call in flight: that call fails, the session goes on elsewhere.
    assert_eq!(client.ask("slow 60000").await, json!({"started": true}));
    let holder = &fleet.replicas[home];
    tokio::time::timeout(WAIT, async {
        while holder
            .metric("pluggedin_proxy_requests_in_flight", "")
            .await
            < 1.0
        {
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    })
    .await
    .expect("the slow call reaches the home");
    fleet.replicas[home].signal("-9").await;
    let slow = client.ask("slow-result").await;
    assert!(slow["error"].is_string(), "{slow}");

    let calls = client.ask("calls 20").await;
    assert_eq!(calls, json!({"ok": 20, "errors": []}));
    let mut adopted = 0.0;
    for (index, replica) in fleet.replicas.iter().enumerate() {
        if index != home {
            adopted += replica.metric("pluggedin_proxy_sessions_adopted", "").await;
        }
    }
    assert_eq!(adopted, 1.0, "one replica adopted the session");
    assert_eq!(
        client.ask("sampling").await,
        json!({"text": "LLM response: sampled by the fleet client"})
    );

    // PostgreSQL restarts: downstream tools keep working, built-in tools say the store is away,
    // and everything comes back by itself.
    cluster.stop();
    let calls = client.ask("calls 20").await;
    assert_eq!(calls, json!({"ok": 20, "errors": []}));
    let away = client
        .ask(r#"tool pluggedin_clipboard_get {"name": "x"}"#)
        .await;
    assert!(
        away["error"]
            .as_str()
            .is_some_and(|error| error.contains("store unavailable")),
        "{away}"
    );
    cluster.start();
    let set = client
        .ask(r#"tool pluggedin_clipboard_set {"name": "after", "value": "the restart"}"#)
        .await;
    let set = if set["error"].is_string() {
        // The first call after the outage may meet a connection the database cut.
        client
            .ask(r#"tool pluggedin_clipboard_set {"name": "after", "value": "the restart"}"#)
            .await
    } else {
        set
    };
    assert!(set["text"].is_string(), "{set}");
    assert_eq!(
        client.ask("calls 10").await,
        json!({"ok": 10, "errors": []})
    );
    drop(client);
    let _ = &fleet.balancer;
}

#[tokio::test]
async fn an_rmcp_client_through_the_balancer_and_the_store_shared_by_every_replica() {
    let database = pg_cluster::database().await;
    let fleet = fleet(&database).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = TestClient::new()
        .serve(StreamableHttpClientTransport::from_uri(fleet.url.as_str()))
        .await
        .unwrap();
    for n in 0..30 {
        let result = client
            .call_tool(
                CallToolRequestParams::new("demo__echo").with_arguments(
                    json!({"message": format!("rmcp {n}")})
                        .as_object()
                        .unwrap()
                        .clone(),
                ),
            )
            .await
            .unwrap();
        assert_eq!(text_of(&result), format!("Echo: rmcp {n}"));
    }
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|tool| tool.name == "demo__echo"));

    // A document made through one replica is found through another.
    let direct = |index: usize| fleet.replicas[index].url.clone();
    let one = TestClient::new()
        .serve(StreamableHttpClientTransport::from_uri(direct(0).as_str()))
        .await
        .unwrap();
    let other = TestClient::new()
        .serve(StreamableHttpClientTransport::from_uri(direct(2).as_str()))
        .await
        .unwrap();
    let created = one
        .call_tool(
            CallToolRequestParams::new("pluggedin_create_document").with_arguments(
                json!({
                    "title": "Fleet notes",
                    "content": "Replicas share one database.",
                    "metadata": {"model": {"name": "claude-3-opus", "provider": "anthropic"}}
                })
                .as_object()
                .unwrap()
                .clone(),
            ),
        )
        .await
        .unwrap();
    let id = line_after(&text_of(&created), "ID:");
    let found = other
        .call_tool(
            CallToolRequestParams::new("pluggedin_search_documents").with_arguments(
                json!({"query": "replicas database"})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        )
        .await
        .unwrap();
    assert!(text_of(&found).contains(&id), "{}", text_of(&found));
    client.cancel().await.unwrap();
    one.cancel().await.unwrap();
    other.cancel().await.unwrap();
}

/// A session id no replica made is refused by every replica at once, without a store lookup.
#[tokio::test]
async fn a_forged_session_id_is_refused_by_the_fleet() {
    let database = pg_cluster::database().await;
    let fleet = fleet(&database).await;
    for target in fleet
        .replicas
        .iter()
        .map(|r| r.url.clone())
        .chain([fleet.url.clone()])
    {
        for forged in ["0123456789abcdef0123456789abcdef", "not-a-sealed-id"] {
            let response = post_mcp(
                &target,
                Some(forged),
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
            )
            .send()
            .await
            .unwrap();
            assert_eq!(response.status(), 404, "{target} {forged}");
        }
    }
}

/// A modern (2026-07-28) client's call parked on one replica for its input is resumed by a retry
/// sent to another; once that replica is gone, the retry gets a clear error.
#[tokio::test]
async fn a_modern_clients_parked_call_is_resumed_through_another_replica() {
    use rmcp::model::{
        CallToolResponse, CreateMessageResult, InputResponses, ProtocolVersion, SamplingMessage,
    };
    use rmcp::service::{ClientLifecycleMode, ClientServiceExt};

    let database = pg_cluster::database().await;
    // A legacy server asks its questions inside the call: the proxy parks the call for the
    // modern client.
    let legacy = json!({"command": demo_bin(), "protocol": "legacy"});
    let mut fleet = fleet_of(&database, json!({"demo": legacy})).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let modern = |url: String| async move {
        TestClient::new()
            .serve_with_lifecycle(
                StreamableHttpClientTransport::from_uri(url.as_str()),
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                },
            )
            .await
            .unwrap()
    };
    let first = modern(fleet.replicas[0].url.clone()).await;
    let second = modern(fleet.replicas[1].url.clone()).await;
    let params = CallToolRequestParams::new("demo__test_sampling")
        .with_arguments(json!({"prompt": "parked"}).as_object().unwrap().clone());
    let CallToolResponse::InputRequired(input) =
        first.peer().call_tool_once(params.clone()).await.unwrap()
    else {
        panic!("expected input_required")
    };
    let state = input
        .request_state
        .clone()
        .unwrap_or_else(|| panic!("{input:?}"));
    let (key, _) = input.input_requests.unwrap().into_iter().next().unwrap();
    let answer = CreateMessageResult::new(
        SamplingMessage::assistant_text("answered on another replica"),
        "hand".into(),
    );
    let mut responses = InputResponses::new();
    responses.insert(key, serde_json::to_value(answer).unwrap());
    let mut retry = params.clone();
    retry.input_responses = Some(responses);
    retry.request_state = Some(state);
    let CallToolResponse::Complete(done) = second.peer().call_tool_once(retry).await.unwrap()
    else {
        panic!("expected the final result")
    };
    assert!(
        text_of(&done).contains("answered on another replica"),
        "{done:?}"
    );

    // Parked again on the first replica, which then dies: the retry elsewhere says so.
    let CallToolResponse::InputRequired(input) =
        first.peer().call_tool_once(params.clone()).await.unwrap()
    else {
        panic!("expected input_required")
    };
    let mut retry = params;
    retry.request_state = input.request_state;
    retry.input_responses = Some(InputResponses::new());
    fleet.replicas[0].signal("-9").await;
    let error = mcp_error(second.peer().call_tool_once(retry).await.unwrap_err());
    assert!(error.message.contains("which is gone"), "{error:?}");
}

/// Python SDK sessions held by every replica (each made through the load balancer, where its
/// `initialize` landed), with the index of the replica holding each.
async fn sessions_on_every_replica(fleet: &Fleet) -> Vec<(Driver, usize)> {
    let mut sessions: Vec<(Driver, usize)> = Vec::new();
    for _ in 0..12 {
        let before = opened(&fleet.replicas).await;
        let mut driver = Driver::start(&fleet.url);
        driver.ask("start").await;
        let after = opened(&fleet.replicas).await;
        let home = (0..after.len())
            .find(|&index| after[index] > before[index])
            .expect("a replica counted the session opened");
        if sessions.iter().all(|(_, known)| *known != home) {
            sessions.push((driver, home));
        }
        if sessions.len() == fleet.replicas.len() {
            return sessions;
        }
    }
    panic!("the balancer never spread sessions over every replica");
}

/// How many sessions each replica opened.
async fn opened(replicas: &[Replica]) -> Vec<f64> {
    let mut counts = Vec::new();
    for replica in replicas {
        counts.push(replica.metric("pluggedin_proxy_sessions_opened", "").await);
    }
    counts
}

fn names(answer: &Value) -> Vec<String> {
    answer["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|name| name.as_str().unwrap().to_owned())
        .collect()
}

/// A server that tells only the session whose call changed its tools (as the SDKs' servers do)
/// is shared by the replicas: the one that heard tells the others, and every replica's clients
/// get the list change. A tool switched off through one replica's API vanishes from every
/// replica's sessions, each told.
#[tokio::test]
async fn list_changes_and_a_tool_switched_off_reach_the_sessions_of_every_replica() {
    let database = pg_cluster::database().await;
    let shared = Background::start(
        demo_bin(),
        &["--http", "0", "--notify-caller-only"],
        &[],
        "listening on http://",
    )
    .await;
    let shared_url = listening_url(&shared.log).await;
    let fleet = fleet_of(
        &database,
        json!({
            "demo": demo(),
            "shared": {"url": shared_url, "type": "streamable-http"},
        }),
    )
    .await;
    let mut sessions = sessions_on_every_replica(&fleet).await;
    for (driver, _) in &mut sessions {
        let tools = names(&driver.ask("tools").await);
        assert!(tools.contains(&"shared__echo".to_owned()), "{tools:?}");
        assert!(!tools.contains(&"shared__test_dynamic_tool_extra".to_owned()));
    }

    // The session on the first replica changes the shared server's tools.
    let said = sessions[0]
        .0
        .ask("tool shared__test_trigger_tool_change {}")
        .await;
    assert_eq!(said["text"], "Added tool test_dynamic_tool_extra", "{said}");
    for (driver, home) in &mut sessions {
        let answer = driver.ask("await-change 1").await;
        let tools = names(&answer);
        assert!(
            tools.contains(&"shared__test_dynamic_tool_extra".to_owned()),
            "replica {home}: {tools:?}"
        );
    }
    // Only the replica whose session made the change heard it from the server.
    let heard: Vec<bool> = fleet
        .replicas
        .iter()
        .map(|replica| replica.log.text().contains("list changed, re-listed"))
        .collect();
    let first = sessions[0].1;
    assert!(heard[first], "{heard:?}");
    assert_eq!(heard.iter().filter(|heard| **heard).count(), 1, "{heard:?}");

    // Switched off through the second replica's API: gone everywhere, each session told.
    let switched = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/tools/shared__echo/disable",
            fleet.replicas[sessions[1].1].base()
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(switched.status().is_success(), "{switched:?}");
    for (driver, home) in &mut sessions {
        let tools = names(&driver.ask("await-change 2").await);
        assert!(
            !tools.contains(&"shared__echo".to_owned()),
            "replica {home}: {tools:?}"
        );
        assert!(tools.contains(&"demo__echo".to_owned()), "{tools:?}");
        let refused = driver.ask(r#"tool shared__echo {"message": "off"}"#).await;
        assert!(
            refused["error"]
                .as_str()
                .unwrap_or_default()
                .contains("disabled"),
            "replica {home}: {refused}"
        );
    }
    drop(sessions);
    drop(fleet);
}

fn initialize_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}})
}

/// A session made by a raw `initialize` at `url` (with `token`, if any): its id.
async fn raw_session(url: &str, token: Option<&str>) -> String {
    session_from(&reqwest::Client::new(), url, token).await
}

/// The status of a `tools/list` in `session` at `url` with `token`.
async fn list_status(url: &str, session: &str, token: &str) -> u16 {
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    post_mcp(url, Some(session), list)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A session is its token's on every replica: bound at its first use wherever that lands, kept
/// when the replica holding it dies or stops and another adopts it; a DELETE through any replica
/// ends it on all of them.
#[tokio::test]
async fn a_sessions_token_and_its_deletion_hold_on_every_replica() {
    let database = pg_cluster::database().await;
    let mut fleet = fleet_with(
        &database,
        json!({"demo": demo()}),
        &[
            "--require-api-auth",
            "--auth-token",
            "token-one",
            "--auth-token",
            "token-two",
        ],
    )
    .await;
    let urls: Vec<String> = fleet.replicas.iter().map(|r| r.url.clone()).collect();
    // Made without a token on the first replica, bound to token-one by its first use, which
    // lands on the second.
    let first = raw_session(&urls[0], None).await;
    assert_eq!(list_status(&urls[1], &first, "token-one").await, 200);
    // Made with token-two on the third.
    let second = raw_session(&urls[2], Some("token-two")).await;
    for url in &urls {
        assert_eq!(list_status(url, &first, "token-one").await, 200, "{url}");
        assert_eq!(list_status(url, &first, "token-two").await, 404, "{url}");
        assert_eq!(list_status(url, &second, "token-two").await, 200, "{url}");
        assert_eq!(list_status(url, &second, "token-one").await, 404, "{url}");
    }

    // Deleted through a replica that does not hold it: gone on every replica.
    let deleted = reqwest::Client::new()
        .delete(&urls[1])
        .header("mcp-session-id", &second)
        .header("mcp-protocol-version", "2025-11-25")
        .bearer_auth("token-two")
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{deleted:?}");
    for url in &urls {
        assert_eq!(list_status(url, &second, "token-two").await, 404, "{url}");
    }

    // The first session's home dies: adopted elsewhere, it is still token-one's alone.
    fleet.replicas[0].signal("-9").await;
    assert_eq!(list_status(&urls[1], &first, "token-two").await, 404);
    assert_eq!(list_status(&urls[1], &first, "token-one").await, 200);
    assert_eq!(list_status(&urls[2], &first, "token-two").await, 404);
    assert_eq!(list_status(&urls[2], &first, "token-one").await, 200);
    assert!(fleet.replicas[1].log.text().contains("adopted"));

    // A replica stopped gracefully hands its sessions over: adopted where they land next.
    let third = raw_session(&urls[2], Some("token-one")).await;
    assert_eq!(list_status(&urls[1], &third, "token-one").await, 200);
    fleet.replicas[2].signal("-TERM").await;
    assert!(fleet.replicas[2].log.text().contains("left the fleet"));
    assert_eq!(list_status(&urls[1], &third, "token-two").await, 404);
    assert_eq!(list_status(&urls[1], &third, "token-one").await, 200);
}

/// The answer to `body` (a request with id 2) in `session` at `url`, from a JSON body or an
/// SSE stream.
async fn answer_at(url: &str, session: &str, body: Value) -> Value {
    let response = post_mcp(url, Some(session), body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let sse = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream");
    if !sse {
        return response.json().await.unwrap();
    }
    let mut messages = sse_messages(response);
    loop {
        let message = tokio::time::timeout(WAIT, messages.recv())
            .await
            .expect("an answer within the wait")
            .expect("the stream ends with its answer");
        if message["id"] == 2 {
            return message;
        }
    }
}

/// The tool names of a `tools/list` in `session` at `url`.
async fn listed_at(url: &str, session: &str) -> Vec<String> {
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let answer = answer_at(url, session, list).await;
    let tools = answer["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"));
    tools
        .iter()
        .map(|tool| tool["name"].as_str().unwrap().to_owned())
        .collect()
}

/// In search mode, the tools a session activated stay in its list when its replica dies and
/// another adopts it.
#[tokio::test]
async fn a_sessions_activated_tools_stay_listed_when_another_replica_adopts_it() {
    let database = pg_cluster::database().await;
    let mut fleet = fleet_with(
        &database,
        json!({"demo": demo()}),
        &["--tool-exposure", "search"],
    )
    .await;
    let urls: Vec<String> = fleet.replicas.iter().map(|r| r.url.clone()).collect();
    let session = raw_session(&urls[0], None).await;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let sent = post_mcp(&urls[0], Some(&session), initialized)
        .send()
        .await
        .unwrap();
    assert!(sent.status().is_success(), "{sent:?}");
    assert!(
        !listed_at(&urls[0], &session)
            .await
            .contains(&"demo__echo".to_owned())
    );

    // Activated once the demo server's tools are in the catalog (its start is not awaited).
    let activate = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "pluggedin_activate_tools", "arguments": {"names": ["demo__echo", "demo__add"]}}});
    let answer = tokio::time::timeout(WAIT, async {
        loop {
            let answer = answer_at(&urls[0], &session, activate.clone()).await;
            if answer["result"]["isError"] != true {
                return answer;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the demo server's tools within the wait");
    let activated = &answer["result"]["structuredContent"]["activated"];
    assert_eq!(activated, &json!(["demo__echo", "demo__add"]), "{answer}");
    let listed = listed_at(&urls[0], &session).await;
    let tail = &listed[listed.len() - 2..];
    assert_eq!(tail, ["demo__echo", "demo__add"], "{listed:?}");

    // The session's home dies; the replica it lands on next adopts it, activations and all.
    fleet.replicas[0].signal("-9").await;
    let adopted = listed_at(&urls[1], &session).await;
    assert!(fleet.replicas[1].log.text().contains("adopted"));
    assert_eq!(
        adopted, listed,
        "the adopting replica lists what the home did"
    );
}

/// A session left alone expires on the replica that holds it, and with it on every replica.
#[tokio::test]
async fn an_idle_session_expires_on_every_replica() {
    let database = pg_cluster::database().await;
    let fleet = fleet_with(&database, json!({"demo": demo()}), &["--session-ttl", "1"]).await;
    let urls: Vec<String> = fleet.replicas.iter().map(|r| r.url.clone()).collect();
    let session = raw_session(&urls[0], None).await;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let status = |url: String| {
        let list = list.clone();
        let session = session.clone();
        async move {
            post_mcp(&url, Some(&session), list)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(urls[2].clone()).await, 200);
    // Asked only once it has expired where it lives (asking sooner would keep it alive).
    let log = &fleet.replicas[0].log;
    tokio::time::timeout(WAIT, async {
        while !["a hibernated session expired", "session idle past its TTL"]
            .iter()
            .any(|line| log.text().contains(line))
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the session expires where it lives");
    for url in &urls {
        assert_eq!(status(url.clone()).await, 404, "{url}");
    }
}

/// A TCP relay in front of one replica, which the test can cut (connections refused, as by a
/// replica that is gone) and restore on the same port.
struct Relay {
    port: u16,
    target: String,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Relays connections to `listener` to `target` (`host:port`).
    fn start(listener: tokio::net::TcpListener, target: &str) -> Relay {
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(Relay::serve(listener, target.to_owned()));
        Relay {
            port,
            target: target.to_owned(),
            task,
        }
    }

    /// Passes every connection on to `target` (`host:port`); the connections end with the task.
    async fn serve(listener: tokio::net::TcpListener, target: String) {
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            connections.spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    }

    /// Connections to the relay's port are refused until [`Relay::restore`].
    async fn cut(&mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    async fn restore(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap_or_else(|error| panic!("the relay's port {} again: {error}", self.port));
        self.task = tokio::spawn(Relay::serve(listener, self.target.clone()));
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A replica that could not be reached for a moment, while another adopted one of its sessions,
/// finds out when it is back: it drops its stale copy, and the session's requests that land on
/// it go to the adopter — one session is never served by two replicas for longer than a sweep.
#[tokio::test]
async fn a_replica_cut_off_while_its_session_was_adopted_drops_its_copy_when_back() {
    let database = pg_cluster::database().await;
    let servers = json!({"demo": demo()});
    let common = [
        "--database-url",
        &database,
        "--session-key",
        "fleet test key",
    ];
    // The first replica is reached by the others through a relay the test can cut.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_url = format!("http://{}", listener.local_addr().unwrap());
    let first_dir = tempfile::tempdir().unwrap();
    let mut args = common.to_vec();
    args.extend(["--replica-url", &relay_url]);
    let (_first, first_log, first_url) = spawn_http_proxy(&first_dir, servers.clone(), &args).await;
    first_log.wait_for("joined the fleet").await;
    let first_address = first_url
        .trim_end_matches("/mcp")
        .trim_start_matches("http://");
    let mut relay = Relay::start(listener, first_address);
    let second_dir = tempfile::tempdir().unwrap();
    let (_second, second_log, second_url) = spawn_http_proxy(&second_dir, servers, &common).await;
    second_log.wait_for("joined the fleet").await;

    let session = raw_session(&first_url, None).await;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let status = |url: &str| {
        let request = post_mcp(url, Some(&session), list.clone());
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(
        status(&second_url).await,
        200,
        "passed to the first through the relay"
    );

    // Cut off: the second replica adopts the session.
    relay.cut().await;
    assert_eq!(status(&second_url).await, 200);
    second_log
        .wait_for("adopted a session whose replica is gone")
        .await;

    // Back: the first still holds its copy and serves a request sent to it directly, until its
    // sweep hears from the store that the session lives elsewhere now.
    relay.restore().await;
    assert_eq!(status(&first_url).await, 200);
    first_log
        .wait_for("session adopted by another replica while this one could not be reached")
        .await;
    // From then on, the first passes the session's requests to the second; its row is intact.
    assert_eq!(status(&first_url).await, 200);
    assert_eq!(status(&second_url).await, 200);
    assert!(
        !first_log
            .text()
            .contains("adopted a session whose replica is gone")
    );
    let forwarded = reqwest::get(format!("{}/metrics", first_url.trim_end_matches("/mcp")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        forwarded.lines().any(
            |line| line.starts_with("pluggedin_proxy_fleet_forwarded") && !line.ends_with(" 0")
        ),
        "the first replica passed the request on:\n{forwarded}"
    );
}

/// A `demo__echo` call in `session` at `url` from `client`, with `token` if any: its status.
async fn call_status(
    client: &reqwest::Client,
    url: &str,
    session: &str,
    token: Option<&str>,
    forwarded_for: Option<&str>,
) -> u16 {
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "demo__echo", "arguments": {"message": "counted"}}});
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", session)
        .json(&call);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded_for);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert!(matches!(status, 200 | 429), "{status}: {body}");
    if status == 429 {
        assert!(body.contains("tool calls per minute"), "{body}");
    }
    status
}

/// A session made by a raw `initialize` at `url` from `client`, with `token` if any: its id.
async fn session_from(client: &reqwest::Client, url: &str, token: Option<&str>) -> String {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .json(&initialize_body());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// How many `demo__echo` calls `client` makes at `url` with `token`, round the `sessions`, before
/// one is refused; more than `bound` fails the test.
async fn admitted_until_refused(
    client: &reqwest::Client,
    url: &str,
    sessions: &[String],
    token: Option<&str>,
    bound: usize,
) -> usize {
    let mut admitted = 0;
    for n in 0.. {
        let session = &sessions[n % sessions.len()];
        if call_status(client, url, session, token, None).await != 200 {
            break;
        }
        admitted += 1;
        assert!(admitted <= bound, "{admitted} admitted, over {bound}");
    }
    admitted
}

/// A client whose connections come from `address` (any of 127.0.0.0/8 on loopback).
fn client_at(address: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(address.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// The rate limits' part of each replica's `/health` (seen with `token`, if any).
async fn rate_health(replicas: &[Replica], token: Option<&str>) -> Vec<Value> {
    let mut all = Vec::new();
    for replica in replicas {
        let mut request = reqwest::Client::new().get(format!("{}/health", replica.base()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let health: Value = request.send().await.unwrap().json().await.unwrap();
        all.push(health["rateLimits"].clone());
    }
    all
}

/// Waits until each of `replicas` has shared its rate-limit counts with the fleet twice more:
/// once a share that began after this call has ended, what it counted before is in the store
/// and what the others had stored is known to it.
async fn shared_twice(replicas: &[Replica], token: Option<&str>) {
    let shares = |health: Vec<Value>| -> Vec<u64> {
        health
            .iter()
            .map(|limits| limits["shares"].as_u64().expect("a fleet shares"))
            .collect()
    };
    let before = shares(rate_health(replicas, token).await);
    tokio::time::timeout(WAIT, async {
        loop {
            let now = shares(rate_health(replicas, token).await);
            if now
                .iter()
                .zip(&before)
                .all(|(now, before)| *now >= before + 2)
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("every replica shares its counts every second");
}

/// Waits until each of `replicas` counts all of them live (its heartbeat has seen the others), so
/// that its rate limits' fair parts are the fleet's.
async fn all_replicas_seen(replicas: &[Replica], token: Option<&str>) {
    tokio::time::timeout(WAIT, async {
        loop {
            let health = rate_health(replicas, token).await;
            if health
                .iter()
                .all(|limits| limits["replicas"].as_u64() == Some(replicas.len() as u64))
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("every replica's heartbeat sees the others");
}

/// A token's tool-call budget is the fleet's: calls spread over the replicas (each counted once,
/// where its session lives, though most land elsewhere and are passed there) are refused once
/// the fleet has admitted the limit, within the bound the README gives (the limit plus the
/// other replicas' fair parts); a replica that never counted the token refuses it once the
/// others' counts reach it; other tokens keep their own.
#[tokio::test]
async fn a_tokens_rate_limit_holds_across_the_fleet_and_each_token_has_its_own() {
    const LIMIT: usize = 6;
    let database = pg_cluster::database().await;
    let fleet = fleet_with(
        &database,
        json!({"demo": demo()}),
        &[
            "--require-api-auth",
            "--auth-token",
            "token-one",
            "--auth-token",
            "token-two",
            "--auth-token",
            "token-three",
            "--rate-limit-tools",
            "6",
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let urls: Vec<String> = fleet.replicas.iter().map(|r| r.url.clone()).collect();
    let health = rate_health(&fleet.replicas, Some("token-one")).await;
    for limits in &health {
        assert_eq!(limits["scope"], "fleet", "{limits}");
        assert_eq!(limits["toolCallsPerMinute"], LIMIT, "{limits}");
    }

    // Token one: a session on each replica, every call through the balancer.
    let mut sessions = Vec::new();
    for url in &urls {
        sessions.push(session_from(&client, url, Some("token-one")).await);
    }
    all_replicas_seen(&fleet.replicas, Some("token-one")).await;
    // README: the fleet admits at most the limit plus, for each other replica, its fair part
    // of what remained at its last share: 6 + 2 × ⌈6 / 3⌉.
    let bound = LIMIT + (urls.len() - 1) * LIMIT.div_ceil(urls.len());
    let admitted =
        admitted_until_refused(&client, &fleet.url, &sessions, Some("token-one"), bound).await;
    // Never refused before the limit (a call passed between replicas is counted once).
    assert!(admitted >= LIMIT, "{admitted} admitted");
    // Once the counts are shared, every replica refuses it, wherever the call lands.
    shared_twice(&fleet.replicas, Some("token-one")).await;
    for (url, session) in urls.iter().zip(&sessions) {
        assert_eq!(
            call_status(&client, url, session, Some("token-one"), None).await,
            429,
            "{url}"
        );
    }

    // Token two spends its budget on the first replica alone; the second and third never
    // counted a call of it, and refuse it once the first's counts are in the store.
    let two: Vec<String> = {
        let mut two = Vec::new();
        for url in &urls {
            two.push(session_from(&client, url, Some("token-two")).await);
        }
        two
    };
    for _ in 0..LIMIT {
        assert_eq!(
            call_status(&client, &urls[0], &two[0], Some("token-two"), None).await,
            200
        );
    }
    shared_twice(&fleet.replicas[..1], Some("token-two")).await;
    shared_twice(&fleet.replicas[1..], Some("token-two")).await;
    for index in [1, 2] {
        assert_eq!(
            call_status(&client, &urls[index], &two[index], Some("token-two"), None).await,
            429,
            "replica {index} refuses what the first counted"
        );
    }
    let refused: Vec<u64> = rate_health(&fleet.replicas, Some("token-two"))
        .await
        .iter()
        .map(|limits| limits["refusedToolCalls"].as_u64().unwrap())
        .collect();
    assert!(refused[1] >= 1 && refused[2] >= 1, "{refused:?}");

    // Token three has a budget of its own, on every replica.
    for url in &urls {
        let session = session_from(&client, url, Some("token-three")).await;
        assert_eq!(
            call_status(&client, &fleet.url, &session, Some("token-three"), None).await,
            200
        );
    }
}

/// Behind a load balancer named by `--trusted-proxies`, clients without a token are counted by
/// their own addresses (from HAProxy's `X-Forwarded-For`), on every replica — a request passed
/// between replicas keeps its client's address — and a peer the proxy does not trust cannot name
/// an address of its choosing.
#[tokio::test]
async fn clients_behind_a_trusted_balancer_have_budgets_of_their_own() {
    const LIMIT: usize = 4;
    let database = pg_cluster::database().await;
    // HAProxy reaches the replicas from 127.0.0.4, the only trusted address: replicas pass
    // requests to each other from 127.0.0.1, which is not.
    let fleet = fleet_behind(
        &database,
        json!({"demo": demo()}),
        &[
            "--rate-limit-tools",
            "4",
            "--trusted-proxies",
            "127.0.0.4/32",
        ],
        Some("127.0.0.4"),
    )
    .await;
    let urls: Vec<String> = fleet.replicas.iter().map(|r| r.url.clone()).collect();
    let (two, three) = (client_at("127.0.0.2"), client_at("127.0.0.3"));
    let first = session_from(&two, &urls[0], None).await;
    let mut sessions = vec![first.clone()];
    for url in &urls[1..] {
        sessions.push(session_from(&two, url, None).await);
    }

    // 127.0.0.2 through the balancer until the fleet refuses it.
    let admitted = admitted_until_refused(&two, &fleet.url, &sessions, None, 3 * LIMIT).await;
    assert!(
        (LIMIT..=3 * LIMIT).contains(&admitted),
        "{admitted} admitted"
    );
    shared_twice(&fleet.replicas, None).await;
    // Refused wherever its calls land: those passed from another replica to the one holding
    // the session count as 127.0.0.2's too.
    for _ in 0..3 {
        assert_eq!(call_status(&two, &fleet.url, &first, None, None).await, 429);
    }

    // 127.0.0.3, through the same balancer, has its own budget.
    let session = session_from(&three, &urls[1], None).await;
    for _ in 0..3 {
        assert_eq!(
            call_status(&three, &fleet.url, &session, None, None).await,
            200
        );
    }

    // Straight to a replica, not through the trusted balancer, the header is ignored: 127.0.0.3
    // naming the spent 127.0.0.2 is still itself, and 127.0.0.2 naming another is still spent.
    assert_eq!(
        call_status(&three, &urls[1], &session, None, Some("127.0.0.2")).await,
        200
    );
    assert_eq!(
        call_status(&two, &urls[0], &first, None, Some("127.0.0.9")).await,
        429
    );
}

/// The `/health` of a replica.
async fn health(replica: &Replica) -> Value {
    reqwest::get(format!("{}/health", replica.base()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The entry of server `name` in a `/health`.
fn server_entry<'a>(health: &'a Value, name: &str) -> &'a Value {
    health["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|server| server["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {health}"))
}

/// Waits until the replicas at `live` agree which of them runs server `name` and each has it
/// connected: that replica's index.
async fn owner_of(fleet: &Fleet, live: &[usize], name: &str) -> usize {
    owner_within(fleet, live, name, WAIT).await
}

/// [`owner_of`], waiting up to `wait`.
async fn owner_within(
    fleet: &Fleet,
    live: &[usize],
    name: &str,
    wait: std::time::Duration,
) -> usize {
    let settled = tokio::time::timeout(wait, async {
        loop {
            let mut owner = None;
            let mut agreed = true;
            let mut ids = Vec::new();
            for &index in live {
                let health = health(&fleet.replicas[index]).await;
                let entry = server_entry(&health, name);
                ids.push(entry["owner"]["replica"].clone());
                agreed &= entry["state"] == "connected" && entry["owner"].is_object();
                if entry["owner"]["here"] == true {
                    owner = Some(index);
                }
            }
            if let Some(owner) = owner
                && agreed
                && ids.windows(2).all(|pair| pair[0] == pair[1])
            {
                return owner;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    settled.unwrap_or_else(|_| {
        let logs: Vec<String> = live.iter().map(|i| fleet.replicas[*i].log.text()).collect();
        panic!(
            "the replicas never agreed who runs {name}:\n{}",
            logs.join("\n---\n")
        )
    })
}

/// The processes below replica `index` whose command line has `marker`.
fn servers_with(fleet: &Fleet, index: usize, marker: &str) -> Vec<u32> {
    let pid = fleet.replicas[index].child.id().unwrap();
    descendants(pid)
        .into_iter()
        .filter(|child| {
            std::fs::read(format!("/proc/{child}/cmdline")).is_ok_and(|cmdline| {
                cmdline
                    .split(|byte| *byte == 0)
                    .any(|arg| arg == marker.as_bytes())
            })
        })
        .collect()
}

/// `tool` of the demo called with no arguments through an rmcp client of replica `index`: its
/// text, or the error.
async fn call_on(fleet: &Fleet, index: usize, tool: &str) -> Result<String, String> {
    let client = TestClient::new()
        .serve(StreamableHttpClientTransport::from_uri(
            fleet.replicas[index].url.as_str(),
        ))
        .await
        .map_err(|error| error.to_string())?;
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_owned()))
        .await
        .map_err(|error| error.to_string());
    let _ = client.cancel().await;
    let result = result?;
    if result.is_error == Some(true) {
        return Err(text_of(&result));
    }
    Ok(text_of(&result))
}

/// How many times the fleet's activity log has `server`'s `item`.
async fn activity_rows(database: &str, server: &str, item: &str) -> i64 {
    let config: tokio_postgres::Config = database.parse().unwrap();
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    let connection = tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT count(*) FROM activity WHERE server_name = $1 AND item = $2",
            &[&server, &item],
        )
        .await
        .unwrap();
    drop(client);
    let _ = connection.await;
    row.get(0)
}

/// A server of fleet scope runs on one replica, and every replica's clients reach its one
/// process (its state in memory is shared); a server of replica scope runs on each. The owner
/// killed, another replica takes the server over (its state starts over) and calls work again.
#[tokio::test]
async fn a_server_of_fleet_scope_runs_on_one_replica_and_every_replica_reaches_it() {
    let database = pg_cluster::database().await;
    let mut shared = demo_with(&["--counter"]);
    shared["scope"] = json!("fleet");
    let mut fleet = fleet_of(
        &database,
        json!({"demo": shared, "own": demo_with(&["--watch-roots"])}),
    )
    .await;
    let owner = owner_of(&fleet, &[0, 1, 2], "demo").await;

    // One process in the fleet for `demo`; one per replica for `own`.
    for index in 0..3 {
        let counters = servers_with(&fleet, index, "--counter");
        assert_eq!(
            counters.len(),
            usize::from(index == owner),
            "replica {index}"
        );
        assert_eq!(servers_with(&fleet, index, "--watch-roots").len(), 1);
    }
    let health = health(&fleet.replicas[(owner + 1) % 3]).await;
    let entry = server_entry(&health, "demo");
    assert_eq!(entry["scope"], "fleet", "{health}");
    assert_eq!(entry["owner"]["here"], false, "{health}");
    assert_eq!(
        entry["owner"]["url"],
        fleet.replicas[owner].base(),
        "{health}"
    );
    assert!(server_entry(&health, "own").get("scope").is_none());
    // `stats` on the shared database names the owner too.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcp.json");
    std::fs::write(&config, r#"{"mcpServers": {}}"#).unwrap();
    let stats = std::process::Command::new(proxy_bin())
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--database-url", &database, "stats"])
        .env_remove("PLUGGEDIN_API_KEY")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&stats.stdout);
    assert!(stats.status.success(), "{out}");
    let line = out
        .lines()
        .find(|line| line.starts_with("demo "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.ends_with(&fleet.replicas[owner].base()), "{out}");

    // Counted through each replica in turn: one counter.
    for (index, expected) in [(0, "1"), (1, "2"), (2, "3")] {
        assert_eq!(
            call_on(&fleet, index, "demo__count").await.as_deref(),
            Ok(expected),
            "through replica {index}"
        );
    }
    let mut pids = Vec::new();
    let mut own_pids = Vec::new();
    for index in 0..3 {
        pids.push(call_on(&fleet, index, "demo__pid").await.unwrap());
        own_pids.push(call_on(&fleet, index, "own__pid").await.unwrap());
    }
    assert!(pids.windows(2).all(|pair| pair[0] == pair[1]), "{pids:?}");
    own_pids.sort();
    own_pids.dedup();
    assert_eq!(own_pids.len(), 3, "{own_pids:?}");
    // A server's error comes back as it said it.
    let failed = call_on(&fleet, (owner + 1) % 3, "demo__test_error_handling").await;
    assert_eq!(
        failed,
        Err("This tool intentionally returns an error for testing".to_owned())
    );

    // Every call is in the fleet's activity log once, recorded by the replica its client
    // called (the owner, reached by another replica, records nothing of it). Each replica
    // records in order: once the calls of `own`, made after the others, are all in, so are
    // the others.
    while activity_rows(&database, "own", "pid").await < 3 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(activity_rows(&database, "demo", "count").await, 3);
    assert_eq!(activity_rows(&database, "demo", "pid").await, 3);

    // Through a replica that does not run it: the server's questions reach the client and its
    // progress comes back.
    let mut client = Driver::start(&fleet.replicas[(owner + 2) % 3].url);
    client.ask("start").await;
    assert_eq!(
        client.ask("sampling").await,
        json!({"text": "LLM response: sampled by the fleet client"})
    );
    let progress = client.ask("progress").await;
    assert!(
        !progress["progress"].as_array().unwrap().is_empty(),
        "{progress}"
    );
    drop(client);

    // The route is the replicas' own.
    let refused = reqwest::Client::new()
        .post(format!(
            "{}/fleet/servers/demo/mcp",
            fleet.replicas[owner].base()
        ))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let body = refused.text().await.unwrap();
    assert!(body.contains("pluggedin-fleet-server header"), "{body}");

    // The owner dies: another replica takes the server over, and its state starts over.
    fleet.replicas[owner].signal("-9").await;
    let live: Vec<usize> = (0..3).filter(|index| *index != owner).collect();
    let heir = owner_of(&fleet, &live, "demo").await;
    assert_ne!(heir, owner);
    for &index in &live {
        assert_eq!(
            servers_with(&fleet, index, "--counter").len(),
            usize::from(index == heir),
            "replica {index}"
        );
    }
    assert_eq!(
        call_on(&fleet, live[0], "demo__count").await.as_deref(),
        Ok("1")
    );
    assert_eq!(
        call_on(&fleet, live[1], "demo__count").await.as_deref(),
        Ok("2")
    );
    assert!(
        fleet.replicas[heir]
            .log
            .text()
            .contains("this replica runs the server for the fleet")
    );

    // The new owner is stopped (SIGTERM): it drains, leaves the fleet and gives the server up
    // to the last replica.
    let last = live.iter().copied().find(|index| *index != heir).unwrap();
    fleet.replicas[heir].signal("-TERM").await;
    assert!(fleet.replicas[heir].log.text().contains("left the fleet"));
    assert_eq!(owner_of(&fleet, &[last], "demo").await, last);
    assert_eq!(servers_with(&fleet, last, "--counter").len(), 1);
    assert_eq!(
        call_on(&fleet, last, "demo__count").await.as_deref(),
        Ok("1")
    );
}

/// An owner that stops answering without closing its database connection (frozen here, as a
/// machine cut off would be) is counted gone by the others after its heartbeat's silence; one
/// of them ends its connection, which ends its lock, and takes the server over. Back, the old
/// owner finds its lock gone, stops its copy and reaches the new owner.
#[tokio::test]
async fn a_frozen_owner_gives_its_server_up_once_counted_gone() {
    let database = pg_cluster::database().await;
    let mut shared = demo_with(&["--counter"]);
    shared["scope"] = json!("fleet");
    let fleet = fleet_of(&database, json!({"demo": shared})).await;
    let owner = owner_of(&fleet, &[0, 1, 2], "demo").await;
    assert_eq!(
        call_on(&fleet, owner, "demo__count").await.as_deref(),
        Ok("1")
    );

    let pid = fleet.replicas[owner].child.id().unwrap().to_string();
    let signal = |signal: &str| {
        let sent = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    signal("-STOP");
    let live: Vec<usize> = (0..3).filter(|index| *index != owner).collect();
    // Counted gone after `REPLICA_GONE_MS` (30 s) of silence, then taken over.
    let heir = owner_within(&fleet, &live, "demo", std::time::Duration::from_secs(90)).await;
    let text = |index: usize| fleet.replicas[index].log.text();
    assert!(
        live.iter()
            .any(|index| text(*index).contains("its database connection held on")),
        "{}",
        text(heir)
    );
    assert_eq!(
        call_on(&fleet, live[0], "demo__count").await.as_deref(),
        Ok("1")
    );

    signal("-CONT");
    let back = tokio::time::timeout(WAIT, async {
        loop {
            let health = health(&fleet.replicas[owner]).await;
            let entry = server_entry(&health, "demo");
            if entry["owner"]["here"] == false
                && entry["state"] == "connected"
                && servers_with(&fleet, owner, "--counter").is_empty()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(back.is_ok(), "{}", text(owner));
    assert_eq!(
        call_on(&fleet, owner, "demo__count").await.as_deref(),
        Ok("2")
    );
}

/// Without a shared database one proxy is its own fleet: a server of fleet scope runs there
/// as any other, and `/health` names no owner.
#[tokio::test]
async fn without_a_shared_database_a_server_of_fleet_scope_runs_as_any_other() {
    let dir = tempfile::tempdir().unwrap();
    let mut shared = demo_with(&["--counter"]);
    shared["scope"] = json!("fleet");
    let (child, log, url) = spawn_http_proxy(&dir, json!({"demo": shared}), &[]).await;
    let replica = Replica {
        child,
        log,
        url,
        _dir: dir,
    };
    let client = TestClient::new()
        .serve(StreamableHttpClientTransport::from_uri(
            replica.url.as_str(),
        ))
        .await
        .unwrap();
    for expected in ["1", "2"] {
        let result = client
            .call_tool(CallToolRequestParams::new("demo__count"))
            .await
            .unwrap();
        assert_eq!(text_of(&result), expected);
    }
    client.cancel().await.unwrap();
    let health = health(&replica).await;
    let entry = server_entry(&health, "demo");
    assert_eq!(entry["scope"], "fleet", "{health}");
    assert!(entry["owner"].is_null(), "{health}");
    assert_eq!(entry["transport"], "stdio", "{health}");
}
