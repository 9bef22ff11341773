//! The soak: the proxy over Streamable HTTP with auth on, under mixed valid and hostile traffic
//! for a long while. Valid clients open sessions, call tools and end sessions; hostile ones send
//! bogus session ids, token-less and wrong-token requests, malformed and oversized bodies, header
//! floods, duplicate request ids and half-sent requests that hold connections open; a downstream
//! server floods its stdout and stderr on request.
//!
//! `cargo bench --bench soak` runs 30 minutes (`-- --minutes=N` for another length, `-- --quick`
//! for 20 seconds, what CI runs to keep it working). Every interval it prints the proxy's resident
//! memory, open descriptors and log size; at the end, what became of every request. A valid request
//! that is not answered correctly makes the run fail; memory and descriptors are for a person to
//! read (flat is the goal) and judged by nobody here.

// A benchmark is a command-line report: stdout carries the tables, stderr the progress.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PROXY: &str = env!("CARGO_BIN_EXE_pluggedin-mcp-proxy");
const DEMO: &str = env!("CARGO_BIN_EXE_pluggedin-demo-server");
const TOKEN: &str = "soak-token-0123456789abcdef";
const PROTOCOL: &str = "2025-06-18";
/// Valid clients, each with a session of its own at a time.
const VALID_CLIENTS: usize = 4;
/// Calls a valid client makes in one session before it ends it and opens another.
const CALLS_PER_SESSION: u64 = 200;
/// Connections held open by half-sent requests at once.
const SLOW_CONNECTIONS: usize = 64;
/// How long any request may take before it counts as unanswered (the proxy's own timeouts are
/// shorter; this only keeps the soak from waiting forever).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("an HTTP client")
}

#[tokio::main]
async fn main() -> Result<()> {
    // reqwest is built without a default TLS provider (as the proxy is).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|arg| arg == "--quick");
    let minutes: f64 = match args.iter().find_map(|arg| arg.strip_prefix("--minutes=")) {
        Some(minutes) => minutes.parse().context("--minutes takes a number")?,
        None => 30.0,
    };
    if let Some(unknown) = args.iter().find(|arg| {
        !matches!(arg.as_str(), "--quick" | "--bench") && !arg.starts_with("--minutes=")
    }) {
        bail!(
            "unknown argument {unknown:?} (usage: cargo bench --bench soak [-- --quick | --minutes=N])"
        );
    }
    let length = if quick {
        Duration::from_secs(20)
    } else {
        Duration::from_secs_f64(minutes * 60.0)
    };
    let interval = if quick {
        Duration::from_secs(5)
    } else {
        Duration::from_secs(60)
    };

    let dir = tempfile::tempdir()?;
    let proxy = Proxy::start(dir.path()).await?;
    eprintln!(
        "soak: proxy pid {} at {}, for {:?}",
        proxy.pid, proxy.url, length
    );
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut tasks = Vec::new();
    for client in 0..VALID_CLIENTS {
        tasks.push(tokio::spawn(valid_client(
            proxy.url.clone(),
            client,
            stop.clone(),
            tally.clone(),
        )));
    }
    tasks.push(tokio::spawn(flooding_client(
        proxy.url.clone(),
        stop.clone(),
        tally.clone(),
    )));
    tasks.push(tokio::spawn(hostile_http(
        proxy.url.clone(),
        stop.clone(),
        tally.clone(),
    )));
    tasks.push(tokio::spawn(hostile_raw(
        proxy.port,
        stop.clone(),
        tally.clone(),
    )));
    tasks.push(tokio::spawn(slow_connections(
        proxy.port,
        stop.clone(),
        tally.clone(),
    )));

    println!(
        "## Soak: {:.0} minutes of mixed valid and hostile traffic\n",
        length.as_secs_f64() / 60.0
    );
    println!("| minute | RSS (MiB) | open fds | log (KiB) | valid answered | hostile sent |");
    println!("|---|---|---|---|---|---|");
    let started = Instant::now();
    let mut samples = Vec::new();
    loop {
        let elapsed = started.elapsed();
        let sample = proxy.sample()?;
        println!(
            "| {:.1} | {:.1} | {} | {} | {} | {} |",
            elapsed.as_secs_f64() / 60.0,
            sample.rss_kib as f64 / 1024.0,
            sample.fds,
            sample.log_bytes / 1024,
            tally.valid_ok.load(Ordering::Relaxed),
            tally.hostile_total(),
        );
        samples.push(sample);
        if elapsed >= length {
            break;
        }
        tokio::time::sleep(interval.min(length - elapsed)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await??;
    }
    // Still serving at the end.
    let health = http_client()
        .get(format!("http://127.0.0.1:{}/health", proxy.port))
        .bearer_auth(TOKEN)
        .send()
        .await?;
    let health_status = health.status();
    let last = proxy.sample()?;
    proxy.stop().await;

    let ok = tally.valid_ok.load(Ordering::Relaxed);
    let failed = tally
        .valid_failed
        .lock()
        .map_err(|_| anyhow!("poisoned"))?
        .clone();
    println!(
        "\nValid requests answered correctly: {ok}; not: {}. `/health` at the end: {health_status}.",
        failed.len()
    );
    let first = samples.get(1).unwrap_or(&samples[0]);
    let peak_rss = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let peak_fds = samples.iter().map(|s| s.fds).max().unwrap_or(0);
    println!(
        "RSS {:.1} MiB after the first interval, {:.1} MiB at the end, {:.1} MiB at most; open \
         descriptors {} → {} (at most {}); log {} KiB.",
        first.rss_kib as f64 / 1024.0,
        last.rss_kib as f64 / 1024.0,
        peak_rss as f64 / 1024.0,
        first.fds,
        last.fds,
        peak_fds,
        last.log_bytes / 1024
    );
    println!("\n| hostile request | sent | answers |\n|---|---|---|");
    for (kind, statuses) in tally
        .hostile
        .lock()
        .map_err(|_| anyhow!("poisoned"))?
        .iter()
    {
        let sent: u64 = statuses.values().sum();
        let answers: Vec<String> = statuses
            .iter()
            .map(|(status, count)| format!("{status} ×{count}"))
            .collect();
        println!("| {kind} | {sent} | {} |", answers.join(", "));
    }
    if !failed.is_empty() {
        for failure in failed.iter().take(20) {
            eprintln!("valid request failed: {failure}");
        }
        bail!(
            "{} valid requests were not answered correctly",
            failed.len()
        );
    }
    if !health_status.is_success() {
        bail!("/health answered {health_status} at the end");
    }
    Ok(())
}

/// What became of the requests.
#[derive(Default)]
struct Tally {
    valid_ok: AtomicU64,
    valid_failed: Mutex<Vec<String>>,
    /// Per kind of hostile request: how often each answer (an HTTP status, or what happened).
    hostile: Mutex<BTreeMap<&'static str, BTreeMap<String, u64>>>,
}

impl Tally {
    fn valid(&self, outcome: Result<()>) {
        match outcome {
            Ok(()) => {
                self.valid_ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                if let Ok(mut failed) = self.valid_failed.lock()
                    && failed.len() < 1000
                {
                    failed.push(format!("{error:#}"));
                }
            }
        }
    }

    fn hostile(&self, kind: &'static str, answer: impl Into<String>) {
        if let Ok(mut hostile) = self.hostile.lock() {
            *hostile
                .entry(kind)
                .or_default()
                .entry(answer.into())
                .or_default() += 1;
        }
    }

    fn hostile_total(&self) -> u64 {
        self.hostile
            .lock()
            .map(|hostile| hostile.values().flat_map(|s| s.values()).sum())
            .unwrap_or(0)
    }
}

struct Sample {
    rss_kib: u64,
    fds: usize,
    log_bytes: u64,
}

struct Proxy {
    child: tokio::process::Child,
    pid: u32,
    port: u16,
    url: String,
    log: PathBuf,
}

impl Proxy {
    async fn start(dir: &Path) -> Result<Proxy> {
        let flood = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/flood_server.py");
        let config = dir.join("mcp.json");
        std::fs::write(
            &config,
            json!({"mcpServers": {
                "demo": {"command": DEMO},
                "flood": {"command": "python3", "args": [flood]},
            }})
            .to_string(),
        )?;
        let log = dir.join("proxy.log");
        // `SOAK_WRAPPER=heaptrack` (say) runs the proxy under a profiler; the figures stay the
        // proxy's own, and it is the proxy that gets SIGTERM at the end.
        let mut command = match std::env::var("SOAK_WRAPPER") {
            Ok(wrapper) if !wrapper.trim().is_empty() => {
                let mut command = tokio::process::Command::new(wrapper.trim());
                command.arg(PROXY);
                command
            }
            _ => tokio::process::Command::new(PROXY),
        };
        let child = command
            .args(["--transport", "streamable-http", "--port", "0"])
            .args(["--require-api-auth", "--auth-token", TOKEN])
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env_remove("PLUGGEDIN_API_KEY")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true)
            .spawn()
            .context("starting the proxy")?;
        let pid = child.id().context("the proxy's pid")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(port) = text
                .split("listening on http://")
                .nth(1)
                .and_then(|rest| rest.split('/').next())
                .and_then(|address| address.rsplit(':').next())
                .and_then(|port| port.parse::<u16>().ok())
            {
                break port;
            }
            if Instant::now() > deadline {
                bail!("the proxy did not start listening:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // Under a wrapper, the figures are the proxy's own: the wrapper's descendant that runs it.
        let pid = proxy_under(pid).context("the proxy under the wrapper")?;
        Ok(Proxy {
            child,
            pid,
            port,
            url: format!("http://127.0.0.1:{port}/mcp"),
            log,
        })
    }

    fn sample(&self) -> Result<Sample> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let rss_kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .context("VmRSS")?;
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.pid))?.count();
        let log_bytes = std::fs::metadata(&self.log)?.len();
        Ok(Sample {
            rss_kib,
            fds,
            log_bytes,
        })
    }

    async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// The process running the proxy binary: `pid` itself, or the first of its descendants that does
/// (a wrapper such as heaptrack runs the proxy as its child).
fn proxy_under(pid: u32) -> Option<u32> {
    let binary = std::fs::canonicalize(PROXY).ok()?;
    let mut queue = std::collections::VecDeque::from([pid]);
    while let Some(pid) = queue.pop_front() {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        if exe.as_deref() == Some(binary.as_path()) {
            return Some(pid);
        }
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            queue.extend(
                children
                    .split_whitespace()
                    .filter_map(|child| child.parse::<u32>().ok()),
            );
        }
    }
    None
}

/// One JSON-RPC request on a session; the answer (result or error), JSON or SSE.
async fn post(
    client: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    body: &Value,
) -> Result<(reqwest::StatusCode, Option<String>, Option<Value>)> {
    let mut request = client
        .post(url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .json(body);
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", PROTOCOL);
    }
    let response = request.send().await?;
    let status = response.status();
    let id = response
        .headers()
        .get("mcp-session-id")
        .and_then(|id| id.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await?;
    let message = serde_json::from_str::<Value>(&text).ok().or_else(|| {
        text.lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
            .find(|message| message.get("result").is_some() || message.get("error").is_some())
    });
    Ok((status, id, message))
}

async fn open_session(client: &reqwest::Client, url: &str) -> Result<String> {
    let (_, id, answer) = post(
        client,
        url,
        None,
        &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": PROTOCOL, "capabilities": {},
            "clientInfo": {"name": "soak", "version": "1"}}}),
    )
    .await?;
    let session = id.context("initialize answered without a session id")?;
    if answer.is_none_or(|answer| answer.get("result").is_none()) {
        bail!("initialize was not answered");
    }
    post(
        client,
        url,
        Some(&session),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await?;
    Ok(session)
}

/// A well-behaved client: sessions of calls, each answer checked.
async fn valid_client(
    url: String,
    client_no: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Result<()> {
    let client = http_client();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let session = match open_session(&client, &url).await {
            Ok(session) => session,
            Err(error) => {
                tally.valid(Err(error.context("opening a session")));
                continue;
            }
        };
        tally.valid(Ok(()));
        for _ in 0..CALLS_PER_SESSION {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            n += 1;
            let message = format!("client {client_no} call {n}");
            let outcome = post(
                &client,
                &url,
                Some(&session),
                &json!({"jsonrpc": "2.0", "id": n, "method": "tools/call",
                        "params": {"name": "demo__echo", "arguments": {"message": message}}}),
            )
            .await
            .and_then(|(status, _, answer)| {
                let text = answer
                    .as_ref()
                    .and_then(|answer| answer["result"]["content"][0]["text"].as_str());
                if text == Some(format!("Echo: {message}").as_str()) {
                    Ok(())
                } else {
                    Err(anyhow!("call {n}: {status} {answer:?}"))
                }
            });
            tally.valid(outcome);
        }
        let ended = client
            .delete(&url)
            .bearer_auth(TOKEN)
            .header("mcp-session-id", &session)
            .send()
            .await
            .map_err(anyhow::Error::from)
            .and_then(|response| {
                if response.status().is_success() {
                    Ok(())
                } else {
                    Err(anyhow!("DELETE answered {}", response.status()))
                }
            });
        tally.valid(ended);
    }
    Ok(())
}

/// A valid client of a server that floods its stdout and stderr on every call.
async fn flooding_client(url: String, stop: Arc<AtomicBool>, tally: Arc<Tally>) -> Result<()> {
    let client = http_client();
    let session = loop {
        match open_session(&client, &url).await {
            Ok(session) => break session,
            Err(error) => tally.valid(Err(error)),
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
    };
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let outcome = post(
            &client,
            &url,
            Some(&session),
            &json!({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {
                "name": "flood__flood",
                "arguments": {"lines": 20_000, "stderr_lines": 2_000, "stderr_width": 200}}}),
        )
        .await
        .and_then(|(status, _, answer)| {
            let text = answer
                .as_ref()
                .and_then(|answer| answer["result"]["content"][0]["text"].as_str());
            if text == Some("flooded") {
                Ok(())
            } else {
                Err(anyhow!("flood call {n}: {status} {answer:?}"))
            }
        });
        tally.valid(outcome);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// Hostile requests a normal HTTP client can send.
async fn hostile_http(url: String, stop: Arc<AtomicBool>, tally: Arc<Tally>) -> Result<()> {
    let client = http_client();
    let mut n = 0u64;
    let session = open_session(&client, &url).await.ok();
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let call = json!({"jsonrpc": "2.0", "id": n, "method": "tools/call",
                          "params": {"name": "demo__echo", "arguments": {"message": "x"}}});
        let answer = |result: reqwest::Result<reqwest::Response>| match result {
            Ok(response) => response.status().as_u16().to_string(),
            Err(error) if error.is_connect() => "connection refused".to_owned(),
            Err(error) if error.is_timeout() => "no answer within 60 s".to_owned(),
            Err(_) => "connection error".to_owned(),
        };
        // A session id nobody was given.
        let bogus = format!("{:032x}", rand_u128(n));
        let result = client
            .post(&url)
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", bogus)
            .json(&call)
            .send()
            .await;
        tally.hostile("unknown session id", answer(result));
        // No token, a wrong token.
        let result = client
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": n, "method": "initialize", "params": {
                "protocolVersion": PROTOCOL, "capabilities": {},
                "clientInfo": {"name": "anonymous", "version": "1"}}}),
            )
            .send()
            .await;
        tally.hostile("token-less initialize", answer(result));
        let result = client
            .post(&url)
            .bearer_auth("not-the-token")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .json(&call)
            .send()
            .await;
        tally.hostile("wrong token", answer(result));
        // A foreign Origin, and /health from a web page.
        let result = client
            .post(&url)
            .bearer_auth(TOKEN)
            .header("origin", "https://evil.example")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .json(&call)
            .send()
            .await;
        tally.hostile("foreign Origin", answer(result));
        let result = client
            .get(url.replace("/mcp", "/health"))
            .header("origin", "https://evil.example")
            .send()
            .await;
        tally.hostile("/health from a foreign Origin", answer(result));
        // Malformed bodies.
        for (kind, body) in [
            ("invalid JSON", b"{this is not json".to_vec()),
            (
                "invalid UTF-8",
                b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\xfe\"}".to_vec(),
            ),
            (
                "a batch",
                b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]".to_vec(),
            ),
            (
                "a tool name that is a number",
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":42}}"#.to_vec(),
            ),
        ] {
            let mut request = client
                .post(&url)
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(body);
            if let Some(session) = &session {
                request = request
                    .header("mcp-session-id", session)
                    .header("mcp-protocol-version", PROTOCOL);
            }
            tally.hostile(kind, answer(request.send().await));
        }
        // The same request id twice at once in one session.
        if let Some(session) = &session {
            let twice = json!({"jsonrpc": "2.0", "id": "same", "method": "tools/call",
                               "params": {"name": "demo__sleep", "arguments": {"ms": 50}}});
            let (first, second) = tokio::join!(
                post(&client, &url, Some(session), &twice),
                post(&client, &url, Some(session), &twice)
            );
            for result in [first, second] {
                let outcome = match result {
                    Ok((status, _, Some(answer))) if answer.get("error").is_some() => {
                        format!("{status} error {}", answer["error"]["code"])
                    }
                    Ok((status, _, Some(_))) => format!("{status} result"),
                    Ok((status, _, None)) => format!("{status} no answer"),
                    Err(error) => match error.downcast_ref::<reqwest::Error>() {
                        Some(error) if error.is_timeout() => "no answer within 60 s".to_owned(),
                        _ => "connection error".to_owned(),
                    },
                };
                tally.hostile("duplicate request id", outcome);
            }
        }
    }
    Ok(())
}

/// Hostile requests only a raw socket can send: a lying `Content-Length`, a header flood, a huge
/// header, two `Host` headers.
async fn hostile_raw(port: u16, stop: Arc<AtomicBool>, tally: Arc<Tally>) -> Result<()> {
    let many_headers: String = (0..200).map(|i| format!("X-Filler-{i}: {i}\r\n")).collect();
    let huge = "a".repeat(70_000);
    let requests: [(&'static str, String); 4] = [
        (
            "Content-Length of 1 GB",
            format!(
                "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{{"
            ),
        ),
        (
            "200 headers",
            format!(
                "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n{many_headers}Content-Length: 2\r\n\r\n{{}}"
            ),
        ),
        (
            "a 70 KB header",
            format!(
                "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: {huge}\r\nContent-Length: 2\r\n\r\n{{}}"
            ),
        ),
        (
            "two Host headers",
            "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n".to_owned(),
        ),
    ];
    while !stop.load(Ordering::Relaxed) {
        for (kind, request) in &requests {
            let outcome = raw_exchange(port, request.as_bytes()).await;
            tally.hostile(kind, outcome);
        }
    }
    Ok(())
}

/// Sends `request` on a fresh connection; the status of the answer, or what happened instead.
async fn raw_exchange(port: u16, request: &[u8]) -> String {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let _ = stream.write_all(request).await;
        let mut answer = vec![0u8; 512];
        let read = stream.read(&mut answer).await?;
        let head = String::from_utf8_lossy(&answer[..read]);
        Ok::<_, std::io::Error>(
            head.split_whitespace()
                .nth(1)
                .unwrap_or("closed without an answer")
                .to_owned(),
        )
    };
    match tokio::time::timeout(Duration::from_secs(40), exchange).await {
        Ok(Ok(status)) => status,
        Ok(Err(error)) => format!("{:?}", error.kind()),
        Err(_) => "no answer within 40 s".to_owned(),
    }
}

/// Connections that send half a request and wait (slowloris), kept at [`SLOW_CONNECTIONS`].
async fn slow_connections(port: u16, stop: Arc<AtomicBool>, tally: Arc<Tally>) -> Result<()> {
    let mut held = tokio::task::JoinSet::new();
    while !stop.load(Ordering::Relaxed) {
        while held.len() < SLOW_CONNECTIONS {
            let stop = stop.clone();
            held.spawn(async move {
                let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                    return "connection refused".to_owned();
                };
                let _ = stream.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n").await;
                let mut buffer = [0u8; 512];
                let ended = async {
                    match stream.read(&mut buffer).await {
                        Ok(0) => "closed by the proxy".to_owned(),
                        Ok(read) => String::from_utf8_lossy(&buffer[..read])
                            .split_whitespace()
                            .nth(1)
                            .unwrap_or("?")
                            .to_owned(),
                        Err(error) => format!("{:?}", error.kind()),
                    }
                };
                tokio::select! {
                    outcome = ended => outcome,
                    () = async { while !stop.load(Ordering::Relaxed) { tokio::time::sleep(Duration::from_millis(200)).await; } } => "still held at the end".to_owned(),
                }
            });
        }
        if let Some(Ok(outcome)) = held.join_next().await {
            tally.hostile("half-sent request held open", outcome);
        }
    }
    while let Some(outcome) = held.join_next().await {
        if let Ok(outcome) = outcome {
            tally.hostile("half-sent request held open", outcome);
        }
    }
    Ok(())
}

/// A cheap, well-spread number for bogus ids (not for secrets).
fn rand_u128(seed: u64) -> u128 {
    let mut x = u128::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835) | 1;
    x ^= x >> 67;
    x.wrapping_mul(0xD6E8_FEB8_6659_FD93_2545_F491_4F6C_DD1D)
}
