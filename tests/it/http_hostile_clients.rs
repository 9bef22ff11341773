//! Hostile HTTP clients: more connections than descriptors or than the ceiling, made-up session
//! ids, floods of sessions without a token, web pages reading `/health`, request ids reused while
//! in flight, malformed and oversized requests. Each test asserts the counters that prove the
//! bound (`/health` details, log lines), never a time or a memory figure.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// The proxy's stderr, counted line by line: only the first lines are kept, so a flood cannot
/// fill the test's memory, and lines about running out of descriptors are counted.
#[derive(Clone, Default)]
struct Stderr(Arc<Mutex<StderrLines>>);

#[derive(Default)]
struct StderrLines {
    kept: String,
    kept_lines: usize,
    out_of_descriptors: usize,
}

/// Lines kept for assertions and for the failure report.
const KEPT_LINES: usize = 5_000;

impl Stderr {
    fn capture(stderr: tokio::process::ChildStderr) -> Stderr {
        let log = Stderr::default();
        let sink = log.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut state = sink.0.lock().unwrap();
                if line.to_ascii_lowercase().contains("too many open files") {
                    state.out_of_descriptors += 1;
                }
                if state.kept_lines < KEPT_LINES {
                    state.kept.push_str(&line);
                    state.kept.push('\n');
                    state.kept_lines += 1;
                }
            }
        });
        log
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().kept.clone()
    }

    fn out_of_descriptors(&self) -> usize {
        self.0.lock().unwrap().out_of_descriptors
    }

    fn count(&self, needle: &str) -> usize {
        self.text()
            .lines()
            .filter(|line| line.contains(needle))
            .count()
    }

    async fn wait_for(&self, needle: &str) {
        let found = tokio::time::timeout(WAIT, async {
            while !self.0.lock().unwrap().kept.contains(needle) {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
        .await;
        assert!(
            found.is_ok(),
            "the log never said {needle:?}:\n{}",
            self.text()
        );
    }
}

/// The proxy serving HTTP on a port it chose, ended on drop.
struct Served {
    _child: ProxyChild,
    log: Stderr,
    addr: SocketAddr,
    url: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- proxy stderr ---\n{}", self.log.text());
        }
    }
}

impl Served {
    /// Starts the proxy on `servers` with `args`; `open_files` runs it under that
    /// `RLIMIT_NOFILE` (soft and hard).
    async fn start(servers: Value, args: &[&str], open_files: Option<u32>) -> Served {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("mcp.json");
        std::fs::write(&config, json!({ "mcpServers": servers }).to_string()).unwrap();
        let mut command = match open_files {
            Some(limit) => {
                let mut command = tokio::process::Command::new("sh");
                command
                    .arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .arg(proxy_bin());
                command
            }
            None => tokio::process::Command::new(proxy_bin()),
        };
        command
            .args(["--transport", "streamable-http", "--port", "0"])
            .args(args)
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env_remove("PLUGGEDIN_API_KEY")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = ProxyChild::spawn(&mut command);
        let log = Stderr::capture(child.stderr.take().unwrap());
        log.wait_for("listening on http://").await;
        let url = listening_url_in(&log.text()).unwrap();
        let addr: SocketAddr = url
            .trim_start_matches("http://")
            .trim_end_matches("/mcp")
            .parse()
            .unwrap();
        Served {
            _child: child,
            log,
            addr,
            url,
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    fn post(&self, body: Value) -> reqwest::RequestBuilder {
        self.client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .json(&body)
    }

    /// A raw session made with `token` (or none) and `capabilities`; returns its id.
    async fn session(&self, token: Option<&str>, capabilities: Value) -> String {
        let mut request = self.post(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": capabilities,
                       "clientInfo": {"name": "raw", "version": "1"}}}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        let id = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let mut initialized =
            self.post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        if let Some(token) = token {
            initialized = initialized.bearer_auth(token);
        }
        let ack = initialized
            .header("mcp-session-id", &id)
            .send()
            .await
            .unwrap();
        assert_eq!(ack.status(), 202);
        id
    }

    /// `/health` as a client on loopback sees it, with `token` if given.
    async fn health(&self, token: Option<&str>) -> Value {
        let mut request = reqwest::Client::new().get(self.url.replace("/mcp", "/health"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Waits until `/health` (seen with `token`) satisfies `check`.
    async fn health_until(&self, token: Option<&str>, check: impl Fn(&Value) -> bool) -> Value {
        let found = tokio::time::timeout(WAIT, async {
            loop {
                let health = self.health(token).await;
                if check(&health) {
                    return health;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        match found {
            Ok(health) => health,
            Err(_) => panic!("/health never got there: {}", self.health(token).await),
        }
    }
}

/// One HTTP/1.1 response read off a raw connection.
struct Raw {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "not a JSON body ({error}): {}\n{}",
                self.head,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The JSON-RPC error a refusal carries.
    fn rpc_error(&self) -> Value {
        let body = self.json();
        assert_eq!(body["jsonrpc"], "2.0", "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
        body["error"].clone()
    }
}

/// Sends `request` on `stream` and reads one response (by its `content-length`, or to the end).
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> Raw {
    stream.write_all(request).await.unwrap();
    read_response(stream).await
}

async fn read_response(stream: &mut TcpStream) -> Raw {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = received.windows(4).position(|window| window == b"\r\n\r\n") {
            break at;
        }
        let read = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("a response within the wait")
            .unwrap_or(0);
        assert!(
            read > 0,
            "the connection closed before a response head: {:?}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    let mut body = received[head_end + 4..].to_vec();
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
    });
    loop {
        if length.is_some_and(|length| body.len() >= length) {
            break;
        }
        let read = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("the body within the wait")
            .unwrap_or(0);
        if read == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    Raw { status, head, body }
}

/// One request on a connection of its own.
async fn raw(addr: SocketAddr, request: &[u8]) -> Raw {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    exchange(&mut stream, request).await
}

fn get_health(host: &str, extra: &str) -> Vec<u8> {
    format!("GET /health HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n").into_bytes()
}

fn post_mcp(headers: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /mcp HTTP/1.1\r\n{headers}Content-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

#[tokio::test]
async fn out_of_descriptors_the_accept_loop_pauses_and_logs_once_per_episode() {
    // A ceiling above the descriptor limit, so that the kernel, not the ceiling, says no.
    let proxy = Served::start(json!({}), &["--max-connections", "1000"], Some(64)).await;
    // More connections than descriptors, sending nothing.
    let mut idle = Vec::new();
    for _ in 0..120 {
        idle.push(TcpStream::connect(proxy.addr).await.unwrap());
    }
    proxy.log.wait_for("Too many open files").await;
    let started = Instant::now();
    // The proxy ends the idle connections it holds when their header time is up: an episode
    // long enough for a loop without a pause to fail millions of times.
    let first_closed = futures::future::select_all(idle.iter_mut().map(|stream| {
        Box::pin(async move {
            let mut byte = [0u8; 1];
            stream.read(&mut byte).await
        })
    }));
    assert!(
        tokio::time::timeout(WAIT, first_closed).await.is_ok(),
        "no idle connection was ended by the proxy"
    );
    drop(idle);
    proxy
        .log
        .wait_for("accepting connections again after")
        .await;
    let elapsed = started.elapsed();
    let health = proxy.health(None).await;
    let failed = health["connections"]["failedAccepts"].as_u64().unwrap();
    assert!(failed >= 1, "{health}");
    // Paused between failures (10 ms at first, doubling): a handful of retries a second at most.
    let most = 20 + 100 * elapsed.as_secs();
    assert!(
        failed <= most,
        "{failed} failed accepts in {elapsed:?}: the accept loop did not pause"
    );
    // A line when an episode starts (and one a minute while it lasts), never one per failure;
    // the connections queued behind the first may make a second, short episode.
    let lines = proxy.log.out_of_descriptors();
    assert!(
        (1..=4).contains(&lines),
        "{lines} log lines about running out of descriptors for {failed} failed accepts"
    );
    assert!(proxy.log.count("accepting connections again after") >= 1);
}

#[tokio::test]
async fn connections_over_the_ceiling_get_a_503_with_a_json_rpc_body_and_are_counted() {
    let proxy = Served::start(json!({}), &["--max-connections", "4"], None).await;
    let keep_alive = |host: SocketAddr| {
        format!(
            "GET /health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
            host.port()
        )
        .into_bytes()
    };
    // Four connections, each answered once and kept open.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        let answer = exchange(&mut stream, &keep_alive(proxy.addr)).await;
        assert_eq!(answer.status, 200);
        held.push(stream);
    }
    // Every further connection is answered 503 at once, with a JSON-RPC error, and closed.
    for _ in 0..20 {
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        let refused = read_response(&mut stream).await;
        assert_eq!(refused.status, 503, "{}", refused.head);
        assert!(
            refused.head.to_ascii_lowercase().contains("retry-after: 1"),
            "{}",
            refused.head
        );
        let error = refused.rpc_error();
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("at most 4 connections at once (--max-connections)"),
            "{error}"
        );
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
    }
    // The held connections still work, and say what was refused.
    let health = exchange(&mut held[0], &keep_alive(proxy.addr)).await.json();
    assert_eq!(
        health["connections"],
        json!({"open": 4, "max": 4, "refused": 20, "failedAccepts": 0})
    );
    // Logged when it started, not once per refusal.
    assert_eq!(proxy.log.count("connection limit of 4 reached"), 1);
    drop(held);
    // Below the ceiling again: served, and the episode's count logged.
    let health = proxy
        .health_until(None, |health| health["connections"]["open"] == 1)
        .await;
    assert_eq!(health["connections"]["refused"], 20);
    proxy
        .log
        .wait_for("below the connection limit again after refusing 20 connections")
        .await;
}

fn made_up_session_id(n: u32) -> String {
    format!(
        "{:032x}",
        u128::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
    )
}

#[tokio::test]
async fn made_up_session_ids_are_never_remembered_and_ended_sessions_leave_nothing() {
    let proxy = Served::start(
        json!({}),
        &[
            "--require-api-auth",
            "--auth-token",
            "token-one",
            "--auth-token",
            "token-two",
            "--max-sessions",
            "3",
            "--rate-limit-requests",
            "200",
            "--session-hibernate-after",
            "0",
        ],
        None,
    )
    .await;
    let real = proxy.session(Some("token-one"), json!({})).await;
    // 10,000 requests with a valid token and session ids nobody made: 404, and 429 once the
    // token's budget is spent.
    let statuses: Vec<u16> = futures::stream::iter(0..10_000u32)
        .map(|n| {
            let request = proxy
                .post(json!({"jsonrpc": "2.0", "id": n, "method": "tools/list"}))
                .header("mcp-session-id", made_up_session_id(n))
                .bearer_auth("token-two");
            async move { request.send().await.unwrap().status().as_u16() }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(
        statuses.iter().all(|status| [404, 429].contains(status)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&404) && statuses.contains(&429));
    let health = proxy.health(Some("token-one")).await;
    let kept = &health["kept"];
    assert_eq!(
        (
            &kept["sessions"],
            &kept["sessionWorkers"],
            &kept["sessionOwners"],
            &kept["requestIds"]
        ),
        (&json!(1), &json!(1), &json!(1), &json!(0)),
        "{health}"
    );
    // One window per token (the first one's may have expired on a slow machine).
    assert!(
        (1..=2).contains(&kept["rateLimitWindows"].as_u64().unwrap()),
        "{health}"
    );
    // The real session is untouched.
    let listed = proxy
        .post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .header("mcp-session-id", &real)
        .bearer_auth("token-one")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);

    // Evicted sessions take their owner with them, and so do deleted ones.
    let mut sessions = Vec::new();
    for _ in 0..5 {
        sessions.push(proxy.session(Some("token-one"), json!({})).await);
    }
    let health = proxy.health(Some("token-one")).await;
    assert_eq!(health["kept"]["sessions"], 3, "{health}");
    assert_eq!(health["kept"]["sessionOwners"], 3, "{health}");
    let deleted = reqwest::Client::new()
        .delete(&proxy.url)
        .header("mcp-session-id", sessions.last().unwrap())
        .bearer_auth("token-one")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let health = proxy
        .health_until(Some("token-one"), |health| {
            health["kept"]["sessionWorkers"] == 2
        })
        .await;
    assert_eq!(health["kept"]["sessions"], 2, "{health}");
    assert_eq!(health["kept"]["sessionOwners"], 2, "{health}");
}

#[tokio::test]
async fn sessions_without_a_token_never_evict_those_with_one() {
    let proxy = Served::start(
        json!({}),
        &[
            "--require-api-auth",
            "--auth-token",
            "the-token",
            "--max-sessions",
            "50",
        ],
        None,
    )
    .await;
    let list = |id: u64| json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"});
    let authenticated = proxy.session(Some("the-token"), json!({})).await;
    // A session made without a token and then used with one (the original's lazy discovery).
    let lazy = proxy.session(None, json!({})).await;
    let first_use = proxy
        .post(list(2))
        .header("mcp-session-id", &lazy)
        .bearer_auth("the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(first_use.status(), 200);
    // More sessions without a token than either pool holds.
    for _ in 0..150 {
        proxy.session(None, json!({})).await;
    }
    for (session, id) in [(&authenticated, 3), (&lazy, 4)] {
        let response = proxy
            .post(list(id))
            .header("mcp-session-id", session)
            .bearer_auth("the-token")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "a session with a token was evicted by sessions without one"
        );
    }
    let health = proxy.health(Some("the-token")).await;
    assert_eq!(health["anonymousSessions"], 100, "{health}");
    assert_eq!(health["maxAnonymousSessions"], 100, "{health}");
    assert_eq!(health["sessions"], 102, "{health}");
    assert_eq!(health["kept"]["sessionOwners"], 2, "{health}");
}

#[tokio::test]
async fn health_follows_the_host_and_origin_rules_and_shows_details_only_with_a_token() {
    let proxy = Served::start(
        json!({"demo": demo()}),
        &["--require-api-auth", "--auth-token", "the-token"],
        None,
    )
    .await;
    let port = proxy.addr.port();
    // A web page: a name it controls as Host (DNS rebinding), or its own Origin.
    let rebinding = raw(proxy.addr, &get_health(&format!("evil.example:{port}"), "")).await;
    assert_eq!(rebinding.status, 403);
    assert!(
        rebinding.rpc_error()["message"]
            .as_str()
            .unwrap()
            .contains("Host evil.example"),
        "{}",
        rebinding.json()
    );
    let page = raw(
        proxy.addr,
        &get_health(
            &format!("127.0.0.1:{port}"),
            "Origin: http://evil.example\r\n",
        ),
    )
    .await;
    assert_eq!(page.status, 403);
    page.rpc_error();
    // Probes (an IP address, localhost) without a token get the minimal answer.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "10.1.2.3:8081".to_owned(),
    ] {
        let probe = raw(proxy.addr, &get_health(&host, "")).await;
        assert_eq!(probe.status, 200, "{host}");
        assert_eq!(
            probe.json(),
            json!({"status": "ok", "transport": "streamable-http"}),
            "{host}"
        );
    }
    // With the token: the details.
    let health = proxy.health(Some("the-token")).await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["servers"][0]["name"], "demo", "{health}");
    assert!(health["sessions"].is_number(), "{health}");
    let wrong = raw(
        proxy.addr,
        &get_health(
            &format!("127.0.0.1:{port}"),
            "Authorization: Bearer not-the-token\r\n",
        ),
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.rpc_error()["code"], -32001);

    // Without auth, who may call /mcp may read the details; --allowed-host narrows /mcp to its
    // names while probes by address still pass on /health.
    let open = Served::start(json!({}), &["--allowed-host", "proxy.example"], None).await;
    let port = open.addr.port();
    let probe = raw(open.addr, &get_health(&format!("127.0.0.1:{port}"), "")).await;
    assert_eq!(probe.status, 200);
    assert!(probe.json()["sessions"].is_number(), "{}", probe.json());
    let foreign = raw(open.addr, &get_health("evil.example", "")).await;
    assert_eq!(foreign.status, 403);
    let by_address = raw(
        open.addr,
        &post_mcp(&format!("Host: 127.0.0.1:{port}\r\n"), INITIALIZE),
    )
    .await;
    assert_eq!(by_address.status, 403);
    by_address.rpc_error();
    let by_name = raw(open.addr, &post_mcp("Host: proxy.example\r\n", INITIALIZE)).await;
    assert_eq!(
        by_name.status,
        200,
        "{}",
        String::from_utf8_lossy(&by_name.body)
    );
}

/// The next message on `messages` that `wanted` picks (others are skipped).
async fn next_message(
    messages: &mut tokio::sync::mpsc::UnboundedReceiver<Value>,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let message = messages.recv().await.expect("the stream ended first");
            if wanted(&message) {
                return message;
            }
        }
    })
    .await;
    found.expect("the message never came")
}

#[tokio::test]
async fn a_request_id_already_in_flight_gets_an_error_and_the_first_keeps_its_answer() {
    let proxy = Served::start(json!({"demo": demo()}), &[], None).await;
    proxy
        .log
        .wait_for("connected server_info=pluggedin-demo-server")
        .await;
    let session = proxy.session(None, json!({"sampling": {}})).await;
    let call = |id: u64, tool: &str, arguments: Value| {
        proxy
            .post(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                         "params": {"name": tool, "arguments": arguments}}))
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-06-18")
    };
    // Request 7 waits inside the server for the client's sampling answer.
    let first = call(7, "demo__test_sampling", json!({"prompt": "first"}))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let mut first = sse_messages(first);
    let question = next_message(&mut first, |message| {
        message["method"] == "sampling/createMessage"
    })
    .await;
    // Another request 7 meanwhile: refused, never run, never given the first one's answer.
    let second = call(7, "demo__echo", json!({"message": "second"}))
        .send()
        .await
        .unwrap();
    let second = message_of(second).await;
    assert_eq!(second["id"], 7, "{second}");
    assert!(second.get("result").is_none(), "{second}");
    assert_eq!(second["error"]["code"], -32600, "{second}");
    assert!(
        second["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("request id 7 is already in flight in this session"),
        "{second}"
    );
    // The first gets its own answer.
    let answered = proxy
        .post(json!({"jsonrpc": "2.0", "id": question["id"], "result": {
            "role": "assistant", "model": "test",
            "content": {"type": "text", "text": "sampled for the first"}}}))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 202);
    let result = next_message(&mut first, |message| message["id"] == 7).await;
    let text = result["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("sampled for the first"), "{result}");
    // Answered, the id is free again: once its stream has ended on the proxy's side too, which
    // may come just after the client read the answer.
    proxy
        .health_until(None, |health| health["kept"]["requestIds"] == 0)
        .await;
    let third = message_of(
        call(7, "demo__echo", json!({"message": "third"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        third["result"]["content"][0]["text"], "Echo: third",
        "{third}"
    );
    let health = proxy
        .health_until(None, |health| health["kept"]["requestIds"] == 0)
        .await;
    assert_eq!(health["kept"]["sessions"], 1);
}

#[tokio::test]
async fn malformed_oversized_and_ambiguous_requests_are_refused_with_json_rpc_bodies() {
    let proxy = Served::start(json!({}), &["--max-body-bytes", "1000"], None).await;
    let host = format!("Host: 127.0.0.1:{}\r\n", proxy.addr.port());
    // More header fields than hyper parses: its own 431, with a body now.
    let many: String = (0..150).map(|n| format!("X-Filler-{n}: x\r\n")).collect();
    let too_many = raw(proxy.addr, &post_mcp(&format!("{host}{many}"), INITIALIZE)).await;
    assert_eq!(too_many.status, 431);
    assert_eq!(too_many.rpc_error()["code"], -32600);
    // A header line that is not one: hyper's 400, with a body.
    let malformed = raw(
        proxy.addr,
        format!("POST /mcp HTTP/1.1\r\n{host}this is not a header\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(malformed.status, 400);
    malformed.rpc_error();
    // A body announced over the limit is refused before it is sent, not after a read timeout.
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    let announced = exchange(
        &mut stream,
        format!(
            "POST /mcp HTTP/1.1\r\n{host}Content-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: 50000000\r\n\r\n{{"
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(announced.status, 413);
    assert!(
        announced.rpc_error()["message"]
            .as_str()
            .unwrap()
            .contains("over the limit of 1000 bytes")
    );
    // Two Host or two Origin headers: the second is not left unchecked.
    let hosts = raw(
        proxy.addr,
        &post_mcp(&format!("{host}Host: evil.example\r\n"), INITIALIZE),
    )
    .await;
    assert_eq!(hosts.status, 400);
    hosts.rpc_error();
    let origins = raw(
        proxy.addr,
        &post_mcp(
            &format!("{host}Origin: http://localhost:3000\r\nOrigin: http://evil.example\r\n"),
            INITIALIZE,
        ),
    )
    .await;
    assert_eq!(origins.status, 403);
    origins.rpc_error();
    // A tool name that is not a string is an invalid parameter, not an unknown method.
    let session = proxy.session(None, json!({})).await;
    // What clients send wrong is answered, not logged line by line: an `initialize` whose
    // version header and body differ, a resumption of a stream that never was.
    for _ in 0..20 {
        let mismatched = proxy
            .post(
                json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-03-26", "capabilities": {},
                "clientInfo": {"name": "raw", "version": "1"}}}),
            )
            .header("mcp-protocol-version", "2025-06-18")
            .send()
            .await
            .unwrap();
        assert_eq!(mismatched.status(), 400);
        let resumed = proxy
            .client
            .get(&proxy.url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &session)
            .header("last-event-id", "99/99")
            .send()
            .await
            .unwrap();
        let _ = resumed.bytes().await;
    }
    let named = proxy
        .post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                     "params": {"name": 5, "arguments": {}}}))
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    let named = message_of(named).await;
    assert_eq!(named["error"]["code"], -32602, "{named}");
    assert!(
        named["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid params for tools/call"),
        "{named}"
    );
    let log = proxy.log.text();
    assert!(
        !log.contains("rejecting initialize") && !log.contains("Resume failed"),
        "a line per client mistake:\n{log}"
    );
}
