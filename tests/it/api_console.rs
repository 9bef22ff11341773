//! The console's API end to end, against the real binary and the demo server: tool calls streamed
//! as server-sent events (progress, logs, questions answered through the API, cancellation that
//! reaches the server), server restarts and their stderr, the activity series and export, chunked
//! uploads into the document library, the effective configuration with its secrets masked, the
//! test e-mail through a loopback SMTP server, tools switched off and on, the console's sign-in
//! cookie, and the console command attached to a stdio proxy or running on its own.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use crate::support::*;

/// An HTTP answer: status, headers and body as text.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {:?}", self.text))
    }

    /// A header's value ("" when absent).
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    /// Everything the answer carried, for checks that a secret is nowhere in it.
    pub fn everything(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())))
            .collect();
        format!("{}\n{}\n{}", self.status, headers.join("\n"), self.text)
    }
}

pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Reply {
        status,
        headers,
        text,
    }
}

/// Polls `probe` until it gives a value, within [`WAIT`]; its error is the last state seen,
/// printed when the wait runs out.
pub async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match probe().await {
            Ok(found) => return found,
            Err(last) => assert!(
                tokio::time::Instant::now() < deadline,
                "{what} did not happen within {WAIT:?}; last: {last}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The proxy in Streamable HTTP mode on a loopback port it picks, its config and data in a temp
/// dir; ended (SIGTERM, then waited for) when dropped, its log printed when a test fails.
pub struct Live {
    child: ProxyChild,
    pub log: Log,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

impl Drop for Live {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- proxy stderr ---\n{}", self.log.text());
        }
    }
}

/// The demo server as `demo` (its logger and serverInfo name).
pub fn demo_servers() -> Value {
    json!({"demo": demo_with(&["--name", "demo"])})
}

/// A proxy process with nothing from the environment that would change what a test sees.
pub fn proxy_command() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(proxy_bin());
    command
        .env_remove("PLUGGEDIN_API_KEY")
        .env_remove("PLUGGEDIN_AUTH_TOKEN")
        .env_remove("PLUGGEDIN_CONFIG")
        .env_remove("PLUGGEDIN_DATA_DIR")
        .env("RUST_LOG", "info,pluggedin_mcp_proxy=debug");
    for field in [
        "HOST", "PORT", "SECURITY", "FROM", "TO", "USERNAME", "PASSWORD",
    ] {
        command.env_remove(format!("PLUGGEDIN_SMTP_{field}"));
    }
    // The playground's providers: only what a test gives.
    for provider in [
        "ANTHROPIC",
        "OPENAI",
        "GEMINI",
        "GOOGLE",
        "XAI",
        "OPENAI_COMPATIBLE",
    ] {
        command
            .env_remove(format!("{provider}_API_KEY"))
            .env_remove(format!("{provider}_BASE_URL"));
    }
    command
}

impl Live {
    /// The proxy with the demo server.
    async fn demo() -> Live {
        Live::start(json!({"mcpServers": demo_servers()}), &[]).await
    }

    /// The proxy with `config` (the whole file) and `args`.
    async fn start(config: Value, args: &[&str]) -> Live {
        Live::start_with(config, args, &[]).await
    }

    /// The proxy with `config`, `args` and environment variables `env`.
    pub async fn start_with(config: Value, args: &[&str], env: &[(&str, &str)]) -> Live {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcp.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let mut child = ProxyChild::spawn(
            proxy_command()
                .args(["--transport", "streamable-http", "--port", "0"])
                .args(["--rate-limit-tools", "0", "--rate-limit-requests", "0"])
                .args(args)
                .envs(env.iter().copied())
                .arg("--config")
                .arg(&path)
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        );
        let log = Log::capture(child.stderr.take().unwrap());
        let url = listening_url(&log).await;
        let port = url::Url::parse(&url).unwrap().port().unwrap();
        Live {
            child,
            log,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let reply = send(self.http.get(self.url(path))).await;
        (reply.status, reply.json())
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let reply = send(self.http.post(self.url(path)).json(&body)).await;
        (reply.status, reply.json())
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let reply = send(self.http.delete(self.url(path))).await;
        (reply.status, reply.json())
    }

    async fn call(&self, tool: &str, arguments: Value) -> (u16, Value) {
        self.post(
            "/api/v1/tools/call",
            json!({"name": tool, "arguments": arguments}),
        )
        .await
    }

    /// A tool's first text, from a call that must succeed.
    async fn call_text(&self, tool: &str, arguments: Value) -> String {
        let (status, result) = self.call(tool, arguments).await;
        assert_eq!(status, 200, "{tool}: {result}");
        result["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("{tool} gave no text: {result}"))
            .to_owned()
    }

    /// A server's row of `GET /api/v1/servers`.
    pub async fn server(&self, name: &str) -> Value {
        server_row(&self.http, &self.base, name).await
    }

    /// A server's row once it is connected.
    pub async fn connected(&self, name: &str) -> Value {
        connected_row(&self.http, &self.base, name).await
    }

    /// A streamed call of `tool`: the answer must be an event stream.
    async fn stream(&self, tool: &str, arguments: Value) -> Events {
        stream_call(&self.http, &self.base, tool, arguments).await
    }

    /// The names `GET /api/v1/tools` lists.
    async fn tool_names(&self) -> Vec<String> {
        let (status, tools) = self.get("/api/v1/tools").await;
        assert_eq!(status, 200, "{tools}");
        tools["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tool| tool["name"].as_str().unwrap().to_owned())
            .collect()
    }
}

async fn server_row(http: &reqwest::Client, base: &str, name: &str) -> Value {
    let reply = send(http.get(format!("{base}/api/v1/servers"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let servers = reply.json();
    servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|server| server["name"] == name)
        .unwrap_or_else(|| panic!("no server {name}: {servers}"))
        .clone()
}

async fn connected_row(http: &reqwest::Client, base: &str, name: &str) -> Value {
    eventually(&format!("{name} connecting"), async || {
        let row = server_row(http, base, name).await;
        if row["state"] == "connected" {
            Ok(row)
        } else {
            Err(row.to_string())
        }
    })
    .await
}

async fn stream_call(http: &reqwest::Client, base: &str, tool: &str, arguments: Value) -> Events {
    let response = http
        .post(format!("{base}/api/v1/tools/call"))
        .header("accept", "text/event-stream")
        .json(&json!({"name": tool, "arguments": arguments}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if status != 200 || !media.starts_with("text/event-stream") {
        let text = response.text().await.unwrap_or_default();
        panic!("{tool}: {status} {media}: {text}");
    }
    Events::of(response)
}

/// A streamed call's server-sent events, read as they come; dropping it closes the stream.
pub struct Events {
    body: BoxStream<'static, reqwest::Result<Vec<u8>>>,
    pending: String,
}

impl Events {
    /// The events of an answer that is an event stream.
    pub fn of(response: reqwest::Response) -> Events {
        Events {
            body: response
                .bytes_stream()
                .map(|chunk| chunk.map(|bytes| bytes.to_vec()))
                .boxed(),
            pending: String::new(),
        }
    }

    /// The next event (its name and JSON data), or `None` once the stream has ended; fails
    /// after [`WAIT`] without one.
    pub async fn next(&mut self) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                let mut name = "message".to_owned();
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push(value.strip_prefix(' ').unwrap_or(value));
                    }
                }
                // A keep-alive comment carries no data.
                if data.is_empty() {
                    continue;
                }
                let data = data.join("\n");
                let value = serde_json::from_str(&data)
                    .unwrap_or_else(|error| panic!("event {name}: not JSON ({error}): {data}"));
                return Some((name, value));
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => panic!("no event within {WAIT:?}; unread: {:?}", self.pending),
                Ok(None) => {
                    assert!(
                        self.pending.trim().is_empty(),
                        "the stream ended inside an event: {:?}",
                        self.pending
                    );
                    return None;
                }
                Ok(Some(Err(error))) => panic!("the event stream failed: {error}"),
                Ok(Some(Ok(chunk))) => self.pending.push_str(&String::from_utf8_lossy(&chunk)),
            }
        }
    }

    /// The next event, which must be `name`; its data.
    pub async fn expect(&mut self, name: &str) -> Value {
        match self.next().await {
            Some((got, data)) if got == name => data,
            other => panic!("expected a {name} event, got {other:?}"),
        }
    }

    /// The events up to the first `name` (left out), and that one's data.
    pub async fn until(&mut self, name: &str) -> (Vec<(String, Value)>, Value) {
        let mut before = Vec::new();
        loop {
            match self.next().await {
                Some((got, data)) if got == name => return (before, data),
                Some(event) => before.push(event),
                None => panic!("the stream ended without a {name} event; before: {before:?}"),
            }
        }
    }

    /// Asserts that the stream ends with no further event.
    pub async fn ends(&mut self) {
        if let Some(event) = self.next().await {
            panic!("an event after the last: {event:?}");
        }
    }
}

/// How many of a server's stderr lines (`GET /api/v1/servers`) contain `needle`.
fn stderr_lines_with(row: &Value, needle: &str) -> usize {
    row["stderr"]
        .as_array()
        .unwrap_or_else(|| panic!("no stderr array: {row}"))
        .iter()
        .filter(|line| line.as_str().unwrap().contains(needle))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_call_sends_its_progress_and_logs_as_events_then_its_result() {
    let live = Live::demo().await;
    live.connected("demo").await;

    let mut events = live
        .stream("demo__test_tool_with_progress", json!({}))
        .await;
    let call = events.expect("call").await;
    assert!(call["id"].as_str().unwrap().starts_with("call-"), "{call}");
    let (before, result) = events.until("result").await;
    let steps: Vec<(f64, f64, String)> = before
        .iter()
        .map(|(name, data)| {
            assert_eq!(name, "progress", "{data}");
            (
                data["progress"].as_f64().unwrap(),
                data["total"].as_f64().unwrap(),
                data["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(f64, f64, String)> = [0.0, 50.0, 100.0]
        .into_iter()
        .map(|step| (step, 100.0, format!("Completed step {step} of 100")))
        .collect();
    assert_eq!(steps, expected);
    // The tool answers with the progress token it was given: the session asked for progress.
    let token = result["content"][0]["text"].as_str().unwrap();
    assert_ne!(token, "no progress token", "{result}");
    assert_ne!(result["isError"], true, "{result}");
    events.ends().await;

    let mut events = live.stream("demo__test_tool_with_logging", json!({})).await;
    events.expect("call").await;
    let (before, result) = events.until("result").await;
    let logs: Vec<&Value> = before
        .iter()
        .map(|(name, data)| {
            assert_eq!(name, "log", "{data}");
            data
        })
        .collect();
    let said: Vec<&str> = logs
        .iter()
        .map(|log| log["data"].as_str().unwrap())
        .collect();
    // In the order the server sent them (that the last comes before the result too is
    // `every_log_a_server_sends_before_its_result_comes_before_it`).
    let sent = [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ];
    assert!(said.len() >= 2 && sent.starts_with(&said), "{said:?}");
    for log in &logs {
        assert_eq!(log["level"], "info", "{log}");
        // The server's name, then the logger it named.
        assert_eq!(log["logger"], "demo/demo", "{log}");
    }
    assert_eq!(
        result["content"][0]["text"],
        "Tool with logging executed successfully"
    );
    events.ends().await;

    // A tool the catalog does not serve is a plain JSON 404, even to an event-stream reader.
    let reply = send(
        live.http
            .post(live.url("/api/v1/tools/call"))
            .header("accept", "text/event-stream")
            .json(&json!({"name": "demo__nope", "arguments": {}})),
    )
    .await;
    assert_eq!(reply.status, 404, "{}", reply.text);
    assert!(
        reply.header("content-type").starts_with("application/json"),
        "{}",
        reply.header("content-type")
    );
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("demo__nope"),
        "{}",
        reply.text
    );
    let reply = send(
        live.http
            .post(live.url("/api/v1/tools/call"))
            .header("accept", "text/event-stream")
            .json(&json!({"name": "demo__echo", "arguments": "hello"})),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("arguments")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_calls_questions_are_answered_through_the_api() {
    let live = Live::demo().await;
    live.connected("demo").await;

    let mut events = live
        .stream("demo__test_elicitation", json!({"message": "Who are you?"}))
        .await;
    let call = events.expect("call").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let question = events.expect("elicitation").await;
    assert_eq!(question["message"], "Who are you?", "{question}");
    assert_eq!(question["mode"], "form", "{question}");
    assert_eq!(
        question["requestedSchema"]["required"],
        json!(["username", "email"]),
        "{question}"
    );
    let id = question["id"].as_str().unwrap().to_owned();
    let answer = json!({"action": "accept",
                        "content": {"username": "ada", "email": "ada@example.com"}});
    let (status, missing) = live
        .post(
            &format!("/api/v1/calls/call-0/answers/{id}"),
            answer.clone(),
        )
        .await;
    assert_eq!(status, 404, "{missing}");
    let (status, missing) = live
        .post(
            &format!("/api/v1/calls/{call}/answers/q999"),
            answer.clone(),
        )
        .await;
    assert_eq!(status, 404, "{missing}");
    assert!(
        missing["error"].as_str().unwrap().contains("q999"),
        "{missing}"
    );
    let (status, answered) = live
        .post(
            &format!("/api/v1/calls/{call}/answers/{id}"),
            answer.clone(),
        )
        .await;
    assert_eq!(status, 200, "{answered}");
    let result = events.expect("result").await;
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("User response: action=accept"), "{text}");
    assert!(
        text.contains("\"username\":\"ada\"") && text.contains("ada@example.com"),
        "{text}"
    );
    events.ends().await;
    // Once answered, and once the call is over, there is nothing left to answer.
    let (status, gone) = live
        .post(&format!("/api/v1/calls/{call}/answers/{id}"), answer)
        .await;
    assert_eq!(status, 404, "{gone}");

    let mut events = live
        .stream("demo__test_sampling", json!({"prompt": "Name a colour"}))
        .await;
    let call = events.expect("call").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let question = events.expect("sampling").await;
    assert_eq!(question["maxTokens"], 100, "{question}");
    assert_eq!(question["messages"][0]["role"], "user", "{question}");
    assert_eq!(
        question["messages"][0]["content"]["text"], "Name a colour",
        "{question}"
    );
    let id = question["id"].as_str().unwrap();
    let (status, answered) = live
        .post(
            &format!("/api/v1/calls/{call}/answers/{id}"),
            json!({"role": "assistant", "content": {"type": "text", "text": "Vermilion"},
                   "model": "m", "stopReason": "endTurn"}),
        )
        .await;
    assert_eq!(status, 200, "{answered}");
    let result = events.expect("result").await;
    assert_eq!(
        result["content"][0]["text"], "LLM response: Vermilion",
        "{result}"
    );
    events.ends().await;
}

/// How many tool calls the proxy has forwarded to the demo server, by its log.
pub fn forwarded_calls(log: &Log) -> usize {
    log.text()
        .matches("forwarding server=\"demo\" method=\"tools/call\"")
        .count()
}

/// A streamed `demo__sleep` of ten minutes once the proxy has forwarded it to the server; the
/// events after `call`, and the call's id.
async fn sleeping(live: &Live) -> (Events, String) {
    let before = forwarded_calls(&live.log);
    let mut events = live.stream("demo__sleep", json!({"ms": 600_000})).await;
    let call = events.expect("call").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("the call forwarded", async || {
        match forwarded_calls(&live.log) - before {
            0 => Err("not yet".to_owned()),
            _ => Ok(()),
        }
    })
    .await;
    (events, call)
}

/// Waits until the demo server has said `count` times on stderr that a sleep was cancelled.
pub async fn sleeps_cancelled(live: &Live, count: usize) {
    eventually("the server's sleep cancelled", async || {
        let row = live.server("demo").await;
        if stderr_lines_with(&row, "sleep cancelled by the client") == count {
            Ok(())
        } else {
            Err(row.to_string())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_streamed_call_or_closing_its_stream_cancels_it_on_the_server() {
    let live = Live::demo().await;
    let before = live.connected("demo").await;
    assert_eq!(
        stderr_lines_with(&before, "sleep cancelled by the client"),
        0,
        "{before}"
    );

    let (mut events, call) = sleeping(&live).await;
    let (status, answer) = live.delete(&format!("/api/v1/calls/{call}")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["cancelled"], call.as_str());
    let error = events.expect("error").await;
    assert_eq!(error, json!({"status": 499, "error": "cancelled"}));
    events.ends().await;
    // The server itself stopped sleeping: it says so on stderr, which the proxy shows.
    sleeps_cancelled(&live, 1).await;
    let (status, gone) = live.delete(&format!("/api/v1/calls/{call}")).await;
    assert_eq!(status, 404, "{gone}");
    let (status, gone) = live
        .post(
            &format!("/api/v1/calls/{call}/answers/q1"),
            json!({"action": "cancel"}),
        )
        .await;
    assert_eq!(status, 404, "{gone}");

    // Closing the stream is a cancellation too.
    let (events, call) = sleeping(&live).await;
    drop(events);
    sleeps_cancelled(&live, 2).await;
    eventually("the closed call forgotten", async || {
        let (status, answer) = live.delete(&format!("/api/v1/calls/{call}")).await;
        if status == 404 {
            Ok(())
        } else {
            Err(format!("{status} {answer}"))
        }
    })
    .await;
    // The server is free again: a call after them is answered at once.
    assert_eq!(
        live.call_text("demo__sleep", json!({"ms": 1})).await,
        "slept 1ms"
    );
}

/// A call cancelled at once, while its session is still starting, is cancelled on the server
/// too: a sleep shorter than any drain of the session never runs to its end, whatever order the
/// request and the cancellation took.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cancelled_as_soon_as_it_starts_is_cancelled_on_the_server() {
    let live = Live::demo().await;
    live.connected("demo").await;
    for _ in 0..20 {
        let mut events = live.stream("demo__sleep", json!({"ms": 3_000})).await;
        let call = events.expect("call").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, answer) = live.delete(&format!("/api/v1/calls/{call}")).await;
        assert_eq!(status, 200, "{answer}");
        let error = events.expect("error").await;
        assert_eq!(error["status"], 499, "{error}");
        events.ends().await;
    }
    // Every sleep that reached the server was cancelled there before its three seconds were
    // up: the server's stderr, copied into the proxy's log, says so for each.
    eventually(
        "every sleep the server started cancelled there",
        async || {
            let text = live.log.text();
            let started = text.matches("sleep started").count();
            let cancelled = text.matches("sleep cancelled by the client").count();
            if cancelled == started {
                Ok(())
            } else {
                Err(format!("{cancelled} of {started} cancelled"))
            }
        },
    )
    .await;
}

/// A plain call whose HTTP client goes away is cancelled on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_call_whose_client_goes_away_is_cancelled_on_the_server() {
    let live = Live::demo().await;
    live.connected("demo").await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/tools/call", live.base);
    let call = tokio::spawn(async move {
        http.post(url)
            .json(&json!({"name": "demo__sleep", "arguments": {"ms": 600_000}}))
            .send()
            .await
    });
    eventually("the sleep started on the server", async || {
        match live.log.text().contains("sleep started") {
            true => Ok(()),
            false => Err("not yet".to_owned()),
        }
    })
    .await;
    // The client goes away: its connection closes with the request unanswered.
    call.abort();
    let _ = call.await;
    eventually("the sleep cancelled on the server", async || {
        match live.log.text().contains("sleep cancelled by the client") {
            true => Ok(()),
            false => Err("not yet".to_owned()),
        }
    })
    .await;
}

/// A streamed call's log messages are its server's: another server's, logged by a call running
/// meanwhile, stay in that call's stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_call_carries_only_its_servers_logs() {
    let servers = json!({
        "demo": demo_with(&["--name", "demo"]),
        "other": demo_with(&["--name", "other"]),
    });
    let live = Live::start(json!({"mcpServers": servers}), &[]).await;
    live.connected("demo").await;
    live.connected("other").await;
    let (mut waiting, call) = sleeping(&live).await;
    let mut logging = live
        .stream("other__test_tool_with_logging", json!({}))
        .await;
    logging.expect("call").await;
    let (logs, _) = logging.until("result").await;
    assert!(logs.len() >= 2, "{logs:?}");
    logging.ends().await;
    let (status, answer) = live.delete(&format!("/api/v1/calls/{call}")).await;
    assert_eq!(status, 200, "{answer}");
    let (before, error) = waiting.until("error").await;
    assert_eq!(error["status"], 499, "{error}");
    assert!(
        before.is_empty(),
        "the sleeping call's stream carried another call's events: {before:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_reconnects_as_a_new_process_and_its_stderr_is_shown() {
    let config = json!({"mcpServers": {
        "demo": demo_with(&["--name", "demo"]),
        "resting": {"command": demo_bin(), "disabled": true},
    }});
    let live = Live::start(config, &[]).await;
    let row = live.connected("demo").await;
    let restarts = row["restarts"].as_u64().unwrap();
    assert!(
        row["generation"]
            .as_str()
            .is_some_and(|generation| !generation.is_empty()),
        "{row}"
    );
    assert_eq!(stderr_lines_with(&row, "stdin closed, exiting"), 0, "{row}");
    let old_pid: u32 = live
        .call_text("demo__pid", json!({}))
        .await
        .parse()
        .unwrap();

    let (status, unknown) = live.post("/api/v1/servers/nope/restart", json!({})).await;
    assert_eq!(status, 404, "{unknown}");
    let (status, resting) = live
        .post("/api/v1/servers/resting/restart", json!({}))
        .await;
    assert_eq!(status, 409, "{resting}");
    assert!(
        resting["error"].as_str().unwrap().contains("resting"),
        "{resting}"
    );
    assert_eq!(live.server("resting").await["state"], "disabled");

    let (status, answer) = live.post("/api/v1/servers/demo/restart", json!({})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"name": "demo", "restarting": true}));
    // The old process saw its stdin close and ended; its last words are in the tail.
    wait_gone(&[old_pid]).await;
    let row = eventually("the restart counted, the server connected", async || {
        let row = live.server("demo").await;
        if row["restarts"].as_u64() == Some(restarts + 1)
            && row["state"] == "connected"
            && stderr_lines_with(&row, "stdin closed, exiting") == 1
        {
            Ok(row)
        } else {
            Err(row.to_string())
        }
    })
    .await;
    assert!(row["generation"].is_string(), "{row}");
    let new_pid: u32 = live
        .call_text("demo__pid", json!({}))
        .await
        .parse()
        .unwrap();
    assert_ne!(new_pid, old_pid);
    assert!(alive(new_pid));
}

/// Once the server list counts a restart, a call waits for the new connection: it is never sent
/// on the one being closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_once_a_restart_is_counted_waits_for_the_new_connection() {
    let live = Live::demo().await;
    live.connected("demo").await;
    for attempt in 0..10 {
        let restarts = live.server("demo").await["restarts"].as_u64().unwrap();
        let (status, answer) = live.post("/api/v1/servers/demo/restart", json!({})).await;
        assert_eq!(status, 200, "{answer}");
        eventually("the restart counted", async || {
            let row = live.server("demo").await;
            match row["restarts"].as_u64() {
                Some(count) if count > restarts => Ok(()),
                _ => Err(row.to_string()),
            }
        })
        .await;
        let (status, result) = live.call("demo__pid", json!({})).await;
        assert_eq!(status, 200, "attempt {attempt}: {result}");
        live.connected("demo").await;
    }
}

/// A restart asked for while a server is still starting is done (a new process serves it) or
/// refused; never answered `restarting` and dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_a_server_starts_is_not_dropped() {
    let config = json!({"mcpServers": {
        "slow": demo_with(&["--name", "slow", "--start-delay-ms", "4000"]),
    }});
    let live = Live::start(config, &[]).await;
    let proxy = live.child.id().unwrap();
    let first = eventually("the server started", async || match children(proxy)[..] {
        [server] => Ok(server),
        ref other => Err(format!("{other:?}")),
    })
    .await;
    let row = live.server("slow").await;
    assert_eq!(row["state"], "starting", "{row}");
    let (status, answer) = live.post("/api/v1/servers/slow/restart", json!({})).await;
    live.connected("slow").await;
    let serving: u32 = live
        .call_text("slow__pid", json!({}))
        .await
        .parse()
        .unwrap();
    match status {
        200 => assert_ne!(
            serving, first,
            "answered {answer} but the first process still serves"
        ),
        _ => assert_eq!(status, 409, "{answer}"),
    }
}

/// The figures of a `GET /api/v1/activity/series` answer: calls and errors summed over its
/// buckets.
fn bucket_sums(series: &Value) -> (u64, u64) {
    let buckets = series["buckets"].as_array().unwrap();
    let sum = |key: &str| {
        buckets
            .iter()
            .map(|bucket| bucket[key].as_u64().unwrap())
            .sum()
    };
    (sum("calls"), sum("errors"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_series_and_export_count_every_call() {
    // A server whose name a spreadsheet would run as a formula.
    let config = json!({"mcpServers": {
        "demo": demo_with(&["--name", "demo"]),
        "=SUM(A1)": demo_with(&["--name", "formula"]),
    }});
    let live = Live::start(config, &[]).await;
    live.connected("demo").await;
    live.connected("=SUM(A1)").await;
    for word in ["one", "two", "three"] {
        live.call_text("demo__echo", json!({"message": word})).await;
    }
    assert_eq!(
        live.call_text("demo__add", json!({"a": 1, "b": 2})).await,
        "3"
    );
    let (status, failed) = live.call("demo__test_error_handling", json!({})).await;
    assert_eq!(status, 200, "{failed}");
    assert_eq!(failed["isError"], true, "{failed}");
    let formula_echo = live
        .tool_names()
        .await
        .into_iter()
        .find(|name| name.ends_with("__echo") && name != "demo__echo")
        .unwrap();
    live.call_text(&formula_echo, json!({"message": "cell"}))
        .await;

    // The writer is asynchronous: wait until all six calls are in.
    let series = eventually("the calls recorded", async || {
        let (status, series) = live.get("/api/v1/activity/series?since=1h&buckets=6").await;
        assert_eq!(status, 200, "{series}");
        match bucket_sums(&series) {
            (6, _) => Ok(series),
            _ => Err(series.to_string()),
        }
    })
    .await;
    let buckets = series["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 6, "{series}");
    let (since, until) = (
        series["since"].as_i64().unwrap(),
        series["until"].as_i64().unwrap(),
    );
    assert_eq!(until - since, 3_600_000, "{series}");
    let bucket_ms = series["bucketMs"].as_i64().unwrap();
    assert_eq!(bucket_ms, 600_000, "{series}");
    for (index, bucket) in buckets.iter().enumerate() {
        let start = bucket["start"].as_i64().unwrap();
        assert_eq!(start, since + index as i64 * bucket_ms, "{series}");
        assert_eq!(bucket["end"].as_i64().unwrap(), start + bucket_ms);
        assert!(bucket["p95Ms"].as_i64().unwrap() >= bucket["p50Ms"].as_i64().unwrap());
    }
    // Just made: every call is in the last bucket.
    assert_eq!(buckets[5]["calls"], 6, "{series}");
    assert_eq!(bucket_sums(&series), (6, 1), "{series}");
    let servers = series["servers"].as_array().unwrap();
    let calls_of = |name: &str| {
        servers.iter().find(|row| row["server"] == name).map(|row| {
            (
                row["calls"].as_u64().unwrap(),
                row["errors"].as_u64().unwrap(),
            )
        })
    };
    assert_eq!(calls_of("demo"), Some((5, 1)), "{series}");
    assert_eq!(calls_of("=SUM(A1)"), Some((1, 0)), "{series}");
    let tool = |name: &str| {
        series["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["server"] == "demo" && row["tool"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} row: {series}"))
    };
    assert_eq!(tool("echo")["calls"], 3);
    assert_eq!(tool("echo")["errors"], 0);
    assert_eq!(tool("add")["calls"], 1);
    assert_eq!(tool("test_error_handling")["errors"], 1);
    let failing = series["failing"].as_array().unwrap();
    assert_eq!(failing.len(), 1, "{series}");
    assert_eq!(failing[0]["item"], "test_error_handling");
    assert_eq!(failing[0]["ok"], false);
    assert!(
        failing[0]["error"]
            .as_str()
            .unwrap()
            .contains("intentionally returns an error"),
        "{series}"
    );
    assert_eq!(series["slowest"].as_array().unwrap().len(), 6, "{series}");

    // Filtered by server, then by one of its tools.
    let (_, demo) = live
        .get("/api/v1/activity/series?since=1h&buckets=6&server=demo")
        .await;
    assert_eq!(bucket_sums(&demo), (5, 1), "{demo}");
    let (_, echo) = live
        .get("/api/v1/activity/series?since=1h&buckets=6&server=demo&tool=echo")
        .await;
    assert_eq!(bucket_sums(&echo), (3, 0), "{echo}");
    assert_eq!(echo["tools"].as_array().unwrap().len(), 1, "{echo}");

    let (status, bad) = live
        .get("/api/v1/activity/series?since=yesterday&buckets=6")
        .await;
    assert_eq!(status, 400, "{bad}");
    assert!(
        bad["error"].as_str().unwrap().contains("\"yesterday\""),
        "{bad}"
    );
    let (status, backwards) = live.get("/api/v1/activity/series?since=1h&until=2h").await;
    assert_eq!(status, 400, "{backwards}");
    assert!(
        backwards["error"].as_str().unwrap().contains("until"),
        "{backwards}"
    );

    let csv = send(
        live.http
            .get(live.url("/api/v1/activity/export?since=1h&format=csv")),
    )
    .await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert!(
        csv.header("content-type").starts_with("text/csv"),
        "{}",
        csv.header("content-type")
    );
    let disposition = csv.header("content-disposition");
    assert!(
        disposition.starts_with("attachment;") && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(
        lines[0], "at,action,server,item,duration_ms,ok,error",
        "{}",
        csv.text
    );
    assert_eq!(lines.len(), 1 + 6, "{}", csv.text);
    let rows_of = |item: &str| {
        lines[1..]
            .iter()
            .filter(|line| line.split(',').nth(3) == Some(item))
            .count()
    };
    assert_eq!(rows_of("echo"), 4, "{}", csv.text);
    assert_eq!(rows_of("add"), 1, "{}", csv.text);
    let failed_row = lines
        .iter()
        .find(|line| line.contains("test_error_handling"))
        .unwrap();
    assert!(
        failed_row.contains(",false,This tool intentionally returns an error"),
        "{failed_row}"
    );
    // The formula is a quoted text in the file, never a formula.
    assert!(
        lines.iter().any(|line| line.contains(",'=SUM(A1),echo,")),
        "{}",
        csv.text
    );
    assert!(!csv.text.contains(",=SUM"), "{}", csv.text);

    let (status, exported) = live
        .get("/api/v1/activity/export?since=1h&format=json")
        .await;
    assert_eq!(status, 200, "{exported}");
    let rows = exported["activity"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "{exported}");
    assert_eq!(
        rows.iter().filter(|row| row["ok"] == false).count(),
        1,
        "{exported}"
    );
    let (status, xml) = live
        .get("/api/v1/activity/export?since=1h&format=xml")
        .await;
    assert_eq!(status, 400, "{xml}");
    assert!(xml["error"].as_str().unwrap().contains("xml"), "{xml}");
}

fn base64_of(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Opens an upload; its id and chunk size.
pub async fn open_upload(live: &Live, name: &str, size: usize) -> (String, usize) {
    let (status, opened) = live
        .post("/api/v1/uploads", json!({"name": name, "size": size}))
        .await;
    assert_eq!(status, 201, "{opened}");
    (
        opened["id"].as_str().unwrap().to_owned(),
        opened["chunkBytes"].as_u64().unwrap() as usize,
    )
}

pub async fn put_chunk(live: &Live, id: &str, offset: usize, bytes: &[u8]) -> (u16, Value) {
    live.post(
        &format!("/api/v1/uploads/{id}/chunks"),
        json!({"offset": offset, "data": base64_of(bytes)}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_uploaded_in_chunks_is_searchable_and_uploads_are_bounded() {
    let live = Live::demo().await;
    let text = "# Zebra crossings\n\nThe zebra stripes tell drivers to stop for walkers.\n";
    let bytes = text.as_bytes();
    let (id, chunk_bytes) = open_upload(&live, "notes/zebra.md", bytes.len()).await;
    assert!(chunk_bytes >= 1024, "{chunk_bytes}");
    let half = bytes.len() / 2;
    let (status, received) = put_chunk(&live, &id, 0, &bytes[..half]).await;
    assert_eq!(status, 200, "{received}");
    assert_eq!(received["received"], half);
    // Sent again (or out of order), a chunk is refused with where the file stands.
    let (status, refused) = put_chunk(&live, &id, 0, &bytes[..half]).await;
    assert_eq!(status, 400, "{refused}");
    let why = refused["error"].as_str().unwrap();
    assert!(
        why.contains("starts at byte 0") && why.contains(&format!("{half} bytes were received")),
        "{why}"
    );
    let (status, early) = live
        .post(&format!("/api/v1/uploads/{id}/finish"), json!({}))
        .await;
    assert_eq!(status, 400, "{early}");
    assert!(
        early["error"]
            .as_str()
            .unwrap()
            .contains(&format!("{half} of the {} bytes", bytes.len())),
        "{early}"
    );
    let (status, received) = put_chunk(&live, &id, half, &bytes[half..]).await;
    assert_eq!(status, 200, "{received}");
    assert_eq!(received["received"], bytes.len());
    let (status, document) = live
        .post(
            &format!("/api/v1/uploads/{id}/finish"),
            json!({"tags": ["animals", "roads"]}),
        )
        .await;
    assert_eq!(status, 201, "{document}");
    assert_eq!(document["title"], "Zebra crossings", "{document}");
    assert_eq!(document["format"], "md", "{document}");
    assert_eq!(document["tags"], json!(["animals", "roads"]), "{document}");
    let document_id = document["id"].as_str().unwrap();
    // Finished: the upload is gone.
    let (status, _) = live
        .post(&format!("/api/v1/uploads/{id}/finish"), json!({}))
        .await;
    assert_eq!(status, 404);

    let (status, found) = live.get("/api/v1/documents/search?q=stripes").await;
    assert_eq!(status, 200, "{found}");
    let hits = found["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1, "{found}");
    assert_eq!(hits[0]["document"]["id"], document_id, "{found}");
    assert!(
        hits[0]["snippet"].as_str().unwrap().contains("**stripes**"),
        "{found}"
    );
    let (_, stored) = live.get(&format!("/api/v1/documents/{document_id}")).await;
    assert_eq!(stored["content"], text, "{stored}");

    // Over the document limit (10 MiB) when declared.
    let (status, large) = live
        .post(
            "/api/v1/uploads",
            json!({"name": "big.md", "size": 10 * 1024 * 1024 + 1}),
        )
        .await;
    assert_eq!(status, 413, "{large}");
    assert!(
        large["error"].as_str().unwrap().contains("10485761"),
        "{large}"
    );

    // Bytes that are no text.
    let blob = [0u8, 159, 146, 150, 0, 1, 2, 3];
    let (id, _) = open_upload(&live, "blob.md", blob.len()).await;
    let (status, _) = put_chunk(&live, &id, 0, &blob).await;
    assert_eq!(status, 200);
    let (status, binary) = live
        .post(&format!("/api/v1/uploads/{id}/finish"), json!({}))
        .await;
    assert_eq!(status, 422, "{binary}");
    assert!(
        binary["error"]
            .as_str()
            .unwrap()
            .starts_with("not added: it looks binary"),
        "{binary}"
    );

    let unknown = "0123456789abcdef0123456789abcdef";
    let (status, _) = put_chunk(&live, unknown, 0, b"x").await;
    assert_eq!(status, 404);
    let (status, _) = live
        .post(&format!("/api/v1/uploads/{unknown}/finish"), json!({}))
        .await;
    assert_eq!(status, 404);
    let (status, _) = live.delete(&format!("/api/v1/uploads/{unknown}")).await;
    assert_eq!(status, 404);

    // Sixteen open at once, no more; dropping one makes room.
    let mut open = Vec::new();
    for index in 0..16 {
        open.push(open_upload(&live, &format!("{index}.md"), 10).await.0);
    }
    let (status, too_many) = live
        .post("/api/v1/uploads", json!({"name": "17.md", "size": 10}))
        .await;
    assert_eq!(status, 429, "{too_many}");
    let (status, dropped) = live.delete(&format!("/api/v1/uploads/{}", open[0])).await;
    assert_eq!(status, 200, "{dropped}");
    open_upload(&live, "17.md", 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_fit_under_a_small_body_limit() {
    let live = Live::start(
        json!({"mcpServers": demo_servers()}),
        &["--max-body-bytes", "4096"],
    )
    .await;
    let mut text = String::from("# Tide tables\n\n");
    while text.len() < 3 * 2000 {
        text.push_str("The harbour tide rises twice a day and the moon pulls it.\n");
    }
    let bytes = text.as_bytes();
    let (id, chunk_bytes) = open_upload(&live, "tides.md", bytes.len()).await;
    assert!(chunk_bytes < 4096, "{chunk_bytes}");
    assert!(chunk_bytes >= 1024, "{chunk_bytes}");
    let mut offset = 0;
    let mut chunks = 0;
    for chunk in bytes.chunks(chunk_bytes) {
        let body = json!({"offset": offset, "data": base64_of(chunk)}).to_string();
        assert!(body.len() <= 4096, "{}", body.len());
        let (status, received) = put_chunk(&live, &id, offset, chunk).await;
        assert_eq!(status, 200, "{received}");
        offset += chunk.len();
        assert_eq!(received["received"], offset);
        chunks += 1;
    }
    assert!(chunks >= 2, "{chunks}");
    let (status, document) = live
        .post(&format!("/api/v1/uploads/{id}/finish"), json!({}))
        .await;
    assert_eq!(status, 201, "{document}");
    assert_eq!(document["title"], "Tide tables");
}

/// A JSON body over `--max-body-bytes` is refused as too large (413), as on `/mcp`, whatever
/// endpoint of the API it was sent to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_body_over_the_limit_is_refused_as_too_large() {
    let live = Live::start(
        json!({"mcpServers": demo_servers()}),
        &["--max-body-bytes", "4096"],
    )
    .await;
    let (id, chunk_bytes) = open_upload(&live, "more.md", 8000).await;
    // Over the body limit, but not over what a chunk may carry once decoded.
    let chunk = vec![b'a'; chunk_bytes];
    let body = json!({"offset": 0, "data": base64_of(&chunk), "padding": "x".repeat(1000)});
    assert!(body.to_string().len() > 4096);
    // `/mcp` refuses such a body so.
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": body});
    let reply = send(post_mcp(&live.url("/mcp"), None, ping)).await;
    assert_eq!(reply.status, 413, "{}", reply.text);
    let reply = send(
        live.http
            .post(live.url(&format!("/api/v1/uploads/{id}/chunks")))
            .json(&body),
    )
    .await;
    assert_eq!(reply.status, 413, "{}", reply.text);
    let (status, untouched) = put_chunk(&live, &id, 0, b"abc").await;
    assert_eq!(status, 200, "{untouched}");
    assert_eq!(untouched["received"], 3);
    let reply = send(
        live.http
            .post(live.url("/api/v1/tools/call"))
            .json(&json!({"name": "demo__echo", "arguments": {"message": "y".repeat(5000)}})),
    )
    .await;
    assert_eq!(reply.status, 413, "{}", reply.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_effective_configuration_masks_every_secret() {
    // An HTTP server that wants the header's token: connecting proves the proxy holds it.
    let remote = Background::start(
        demo_bin(),
        &["--http", "0", "--require-token", "tok-123"],
        &[],
        "listening on",
    )
    .await;
    let url = listening_url(&remote.log).await;
    let config = json!({"mcpServers": {
        "keyed": {"command": demo_bin(), "args": ["--name", "keyed"],
                  "env": {"API_KEY": "s3cr3t-value"}},
        "remote": {"url": url, "headers": {"Authorization": "Bearer tok-123"}},
    }});
    let live = Live::start(config, &[]).await;
    live.connected("keyed").await;
    live.connected("remote").await;
    let reply = send(live.http.get(live.url("/api/v1/config"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let config = reply.json();
    assert_eq!(config["mode"], "local", "{config}");
    assert_eq!(
        config["configFile"].as_str().map(PathBuf::from),
        Some(live.dir.path().join("mcp.json")),
        "{config}"
    );
    assert_eq!(
        config["dataDir"].as_str().map(PathBuf::from),
        Some(live.dir.path().join("data")),
        "{config}"
    );
    let server = |name: &str| {
        config["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|server| server["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name}: {config}"))
    };
    let keyed = server("keyed");
    assert_eq!(keyed["transport"], "stdio", "{keyed}");
    assert!(
        keyed["target"].as_str().unwrap().contains(demo_bin()),
        "{keyed}"
    );
    assert_eq!(keyed["env"], json!({"API_KEY": "••••"}), "{keyed}");
    let remote_row = server("remote");
    assert_eq!(remote_row["target"], url.as_str(), "{remote_row}");
    assert_eq!(
        remote_row["headers"],
        json!({"Authorization": "••••"}),
        "{remote_row}"
    );
    for secret in ["s3cr3t-value", "tok-123"] {
        assert!(!reply.everything().contains(secret), "{}", reply.text);
        assert!(!live.log.text().contains(secret), "{}", live.log.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_email_needs_smtp_and_reaches_a_loopback_smtp_server() {
    let live = Live::demo().await;
    let (status, refused) = live
        .post("/api/v1/notifications/test-email", json!({}))
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("SMTP"),
        "{refused}"
    );
    drop(live);

    let maildir = tempfile::tempdir().unwrap();
    let script = clients_dir().join("smtp_sink.py");
    let smtp = Background::start(
        venv_python().to_str().unwrap(),
        &[script.to_str().unwrap(), maildir.path().to_str().unwrap()],
        &[],
        "listening on smtp://",
    )
    .await;
    let port = url::Url::parse(&listening_url(&smtp.log).await)
        .unwrap()
        .port()
        .unwrap();
    let config = json!({
        "mcpServers": demo_servers(),
        "smtp": {"host": "127.0.0.1", "port": port, "security": "none",
                 "from": "proxy@example.com", "to": ["ops@example.com", "dev@example.com"]},
    });
    let live = Live::start(config, &[]).await;
    let (status, sent) = live
        .post("/api/v1/notifications/test-email", json!({}))
        .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(
        sent,
        json!({"sent": true, "to": ["ops@example.com", "dev@example.com"]})
    );
    let mail = eventually("the message delivered", async || {
        std::fs::read_to_string(maildir.path().join("1.eml")).map_err(|error| error.to_string())
    })
    .await;
    assert!(mail.contains("Subject: Test e-mail - Plugged.in"), "{mail}");
    assert!(
        mail.contains("X-Envelope-To: ops@example.com,dev@example.com"),
        "{mail}"
    );
    assert!(mail.contains("From: proxy@example.com"), "{mail}");
    assert!(!maildir.path().join("2.eml").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_switched_off_leaves_the_catalog_until_switched_on() {
    let live = Live::demo().await;
    let (_, attached) = live.get("/api/v1/console").await;
    assert_eq!(attached["attached"], "http", "{attached}");
    live.connected("demo").await;
    let names = live.tool_names().await;
    assert!(names.iter().any(|name| name == "demo__echo"), "{names:?}");

    let (status, off) = live
        .post("/api/v1/tools/demo__echo/disable", json!({}))
        .await;
    assert_eq!(status, 200, "{off}");
    eventually("demo__echo leaving the catalog", async || {
        let names = live.tool_names().await;
        if names.iter().any(|name| name == "demo__echo") {
            Err(format!("{names:?}"))
        } else {
            Ok(())
        }
    })
    .await;
    assert!(
        live.tool_names()
            .await
            .iter()
            .any(|name| name == "demo__add")
    );
    let (status, disabled) = live.get("/api/v1/tools/disabled").await;
    assert_eq!(status, 200, "{disabled}");
    assert_eq!(disabled["disabled"], json!(["demo__echo"]), "{disabled}");
    let (status, gone) = live.call("demo__echo", json!({"message": "x"})).await;
    assert_eq!(status, 404, "{gone}");

    let (status, unknown) = live
        .post("/api/v1/tools/demo__nope/disable", json!({}))
        .await;
    assert_eq!(status, 404, "{unknown}");
    let (status, not_off) = live.post("/api/v1/tools/demo__add/enable", json!({})).await;
    assert_eq!(status, 404, "{not_off}");

    let (status, on) = live
        .post("/api/v1/tools/demo__echo/enable", json!({}))
        .await;
    assert_eq!(status, 200, "{on}");
    eventually("demo__echo back in the catalog", async || {
        let names = live.tool_names().await;
        if names.iter().any(|name| name == "demo__echo") {
            Ok(())
        } else {
            Err(format!("{names:?}"))
        }
    })
    .await;
    let (_, disabled) = live.get("/api/v1/tools/disabled").await;
    assert_eq!(disabled["disabled"], json!([]), "{disabled}");
    assert_eq!(
        live.call_text("demo__echo", json!({"message": "back"}))
            .await,
        "Echo: back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_with_a_token_for_a_cookie_that_never_opens_mcp() {
    const TOKEN: &str = "console-token-5b1f0e7a";
    let live = Live::start(
        json!({"mcpServers": demo_servers()}),
        &["--require-api-auth", "--auth-token", TOKEN],
    )
    .await;
    let http = &live.http;
    let mut seen: Vec<String> = Vec::new();
    let mut keep = |reply: Reply| {
        seen.push(reply.everything());
        reply
    };

    let reply = keep(send(http.get(live.url("/api/v1/session"))).await);
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json(), json!({"required": true, "signedIn": false}));
    let reply = keep(send(http.get(live.url("/api/v1/servers"))).await);
    assert_eq!(reply.status, 401, "{}", reply.text);

    let sign_in = |token: &str| {
        http.post(live.url("/api/v1/session"))
            .json(&json!({"token": token}))
    };
    let reply = keep(send(sign_in("wrong")).await);
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(reply.header("set-cookie"), "");
    let reply = keep(send(sign_in(TOKEN).header("origin", "https://evil.example")).await);
    assert_eq!(reply.status, 403, "{}", reply.text);
    assert_eq!(reply.header("set-cookie"), "");

    let reply = keep(send(sign_in(TOKEN)).await);
    assert_eq!(reply.status, 200, "{}", reply.text);
    let set_cookie = reply.header("set-cookie").to_owned();
    let (pair, attributes) = set_cookie.split_once("; ").unwrap();
    assert_eq!(
        attributes, "HttpOnly; SameSite=Strict; Path=/; Max-Age=43200",
        "{set_cookie}"
    );
    let value = pair.strip_prefix("pluggedin_console=").unwrap();
    assert!(
        value.len() >= 32 && value.chars().all(|c| c.is_ascii_hexdigit()),
        "{set_cookie}"
    );
    let cookie = pair.to_owned();

    let reply = keep(
        send(
            http.get(live.url("/api/v1/session"))
                .header("cookie", &cookie),
        )
        .await,
    );
    assert_eq!(reply.json(), json!({"required": true, "signedIn": true}));
    let reply = keep(
        send(
            http.get(live.url("/api/v1/servers"))
                .header("cookie", &cookie),
        )
        .await,
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["servers"][0]["name"], "demo", "{}", reply.text);

    // `/mcp` takes the bearer token only: a session opened with it, used with the cookie alone.
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}});
    let bearer = format!("Bearer {TOKEN}");
    let response = post_mcp(&live.url("/mcp"), None, initialize)
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = response.text().await;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let reply = send(
        post_mcp(&live.url("/mcp"), Some(&session), initialized).header("authorization", &bearer),
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let reply = keep(
        send(post_mcp(&live.url("/mcp"), Some(&session), list.clone()).header("cookie", &cookie))
            .await,
    );
    assert_eq!(reply.status, 401, "{}", reply.text);
    let reply = keep(
        send(post_mcp(&live.url("/mcp"), Some(&session), list).header("authorization", &bearer))
            .await,
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(reply.text.contains("demo__echo"), "{}", reply.text);

    // Signing out ends the cookie's session on the proxy, not only in the browser.
    let reply = keep(
        send(
            http.delete(live.url("/api/v1/session"))
                .header("cookie", &cookie),
        )
        .await,
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply
            .header("set-cookie")
            .starts_with("pluggedin_console=;"),
        "{}",
        reply.header("set-cookie")
    );
    assert!(reply.header("set-cookie").contains("Max-Age=0"));
    let reply = keep(
        send(
            http.get(live.url("/api/v1/servers"))
                .header("cookie", &cookie),
        )
        .await,
    );
    assert_eq!(reply.status, 401, "{}", reply.text);
    let reply = keep(
        send(
            http.get(live.url("/api/v1/session"))
                .header("cookie", &cookie),
        )
        .await,
    );
    assert_eq!(reply.json()["signedIn"], false);

    // The console's files load without a token (the page asks for it); its API does not.
    let reply = keep(send(http.get(live.url("/console/"))).await);
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(reply.header("content-type").starts_with("text/html"));
    assert!(
        reply
            .header("content-security-policy")
            .contains("default-src 'self'"),
        "{:?}",
        reply.headers
    );
    let reply = keep(send(http.get(live.url("/api/v1/config"))).await);
    assert_eq!(reply.status, 401, "{}", reply.text);

    for text in &seen {
        assert!(!text.contains(TOKEN), "the token came back: {text}");
    }
    assert!(!live.log.text().contains(TOKEN), "{}", live.log.text());
}

/// The console command's first line on stdout: `console: URL (showing)`; the base URL and what
/// it shows.
async fn console_address(
    stdout: tokio::process::ChildStdout,
    log: &Log,
) -> (
    String,
    String,
    tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
) {
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("the console printed no address:\n{}", log.text()))
        .unwrap()
        .unwrap_or_else(|| panic!("the console ended:\n{}", log.text()));
    let rest = line
        .strip_prefix("console: ")
        .unwrap_or_else(|| panic!("{line:?}"));
    let (url, showing) = rest.split_once(' ').unwrap();
    let base = url
        .strip_suffix("/console/")
        .unwrap_or_else(|| panic!("{line:?}"));
    assert!(base.starts_with("http://127.0.0.1:"), "{line:?}");
    let showing = showing
        .strip_prefix('(')
        .and_then(|showing| showing.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{line:?}"));
    (base.to_owned(), showing.to_owned(), lines)
}

/// Starts the console command with `args` on the data dir `dir`; the process and its log.
fn start_console(args: &[&str], dir: &Path) -> (ProxyChild, Log) {
    let mut console = ProxyChild::spawn(
        proxy_command()
            .arg("console")
            .args(["--port", "0"])
            .args(args)
            .arg("--data-dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let log = Log::capture(console.stderr.take().unwrap());
    (console, log)
}

/// Ends the console command with SIGTERM: it must exit by itself, successfully.
async fn terminate(console: &mut ProxyChild, log: &Log) {
    let pid = console.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = tokio::time::timeout(WAIT, console.wait())
        .await
        .unwrap_or_else(|_| panic!("the console ignored SIGTERM:\n{}", log.text()))
        .unwrap();
    assert!(status.success(), "{status}:\n{}", log.text());
}

/// A client for the console command's port.
fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// The parent of a process, from `/proc/PID/stat`.
fn parent_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = stat.rsplit_once(')').unwrap().1;
    after_name
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_command_attaches_to_the_running_stdio_proxy() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcp.json");
    std::fs::write(&config, json!({"mcpServers": demo_servers()}).to_string()).unwrap();
    let data = dir.path().join("data");
    let mut stdio = ProxyChild::spawn(
        proxy_command()
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let stdio_pid = stdio.id().unwrap();
    // Held open: the proxy serves its client until stdin ends.
    let stdin = stdio.stdin.take().unwrap();
    let mut stdout = stdio.stdout.take().unwrap();
    let stdio_log = Log::capture(stdio.stderr.take().unwrap());
    let socket = data.join("consoles").join(format!("{stdio_pid}.sock"));
    eventually("the control channel's socket", async || {
        std::fs::metadata(&socket)
            .map(|_| ())
            .map_err(|error| format!("{error}:\n{}", stdio_log.text()))
    })
    .await;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&socket), 0o600);
    assert_eq!(mode(&data.join("consoles")), 0o700);

    let (mut console, console_log) = start_console(&[], &data);
    let (base, showing, _lines) =
        console_address(console.stdout.take().unwrap(), &console_log).await;
    assert_eq!(
        showing,
        format!("attached to the proxy of process {stdio_pid}")
    );
    let http = http_client();
    let reply = send(http.get(format!("{base}/api/v1/console"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let attached = reply.json();
    assert_eq!(attached["attached"], "stdio", "{attached}");
    assert_eq!(attached["pid"], stdio_pid, "{attached}");

    connected_row(&http, &base, "demo").await;
    let call = |tool: &str, arguments: Value| {
        send(
            http.post(format!("{base}/api/v1/tools/call"))
                .json(&json!({"name": tool, "arguments": arguments})),
        )
    };
    let reply = call("demo__add", json!({"a": 2, "b": 3})).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json()["structuredContent"]["sum"],
        5,
        "{}",
        reply.text
    );
    // The server that answered is the stdio proxy's own child.
    let reply = call("demo__pid", json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let server_pid: u32 = reply.json()["content"][0]["text"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(parent_of(server_pid), stdio_pid);
    // Streamed calls pass through the relay as well.
    let mut events = stream_call(&http, &base, "demo__test_tool_with_progress", json!({})).await;
    events.expect("call").await;
    let (before, result) = events.until("result").await;
    assert_eq!(before.len(), 3, "{before:?}");
    assert_ne!(result["content"][0]["text"], "no progress token");
    events.ends().await;
    // And the calls are in the stdio proxy's activity.
    eventually("the console's calls recorded", async || {
        let reply = send(http.get(format!(
            "{base}/api/v1/activity/series?since=1h&buckets=6&server=demo"
        )))
        .await;
        match bucket_sums(&reply.json()) {
            (3, 0) => Ok(()),
            _ => Err(reply.text),
        }
    })
    .await;

    // The client said nothing: the stdio proxy wrote nothing on its stdout. Its stdin closed,
    // it ends.
    drop(stdin);
    let mut written = Vec::new();
    tokio::time::timeout(
        WAIT,
        tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut written),
    )
    .await
    .expect("the stdio proxy closes its stdout")
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&written), "");
    let status = tokio::time::timeout(WAIT, stdio.wait())
        .await
        .expect("the stdio proxy ends at stdin EOF")
        .unwrap();
    assert!(status.success(), "{status}:\n{}", stdio_log.text());
    wait_gone(&[server_pid]).await;

    terminate(&mut console, &console_log).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_proxy_running_the_console_command_runs_its_own_connections() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        repo.join("target/debug/pluggedin-demo-server").is_file(),
        "the example runs the demo server that `cargo build` puts in target/debug"
    );
    let dir = tempfile::tempdir().unwrap();
    // A socket left by a proxy that is gone: nobody answers on it.
    let consoles = dir.path().join("consoles");
    std::fs::create_dir_all(&consoles).unwrap();
    let stale = consoles.join("4194000.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());

    let example = repo.join("examples/mcp.json");
    let (mut console, log) = start_console(&["--config", example.to_str().unwrap()], dir.path());
    let console_pid = console.id().unwrap();
    let (base, showing, _lines) = console_address(console.stdout.take().unwrap(), &log).await;
    assert_eq!(showing, "its own connections: no proxy is running");
    assert!(!stale.exists(), "the stale socket is cleared");
    let http = http_client();
    let reply = send(http.get(format!("{base}/api/v1/console"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["attached"], "standalone", "{}", reply.text);

    connected_row(&http, &base, "demo").await;
    connected_row(&http, &base, "calculator").await;
    let reply = send(
        http.post(format!("{base}/api/v1/tools/call"))
            .json(&json!({"name": "calculator__add", "arguments": {"a": 20, "b": 22}})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json()["structuredContent"]["sum"],
        42,
        "{}",
        reply.text
    );
    // Its servers are its own children.
    let servers = children(console_pid);
    assert_eq!(servers.len(), 2, "{servers:?}");

    // No MCP endpoint here.
    let reply = send(post_mcp(
        &format!("{base}/mcp"),
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    ))
    .await;
    assert_eq!(reply.status, 404, "{}", reply.text);
    assert!(
        reply.json()["error"].as_str().unwrap().contains("/mcp"),
        "{}",
        reply.text
    );

    terminate(&mut console, &log).await;
    wait_gone(&servers).await;
}
