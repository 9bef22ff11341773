//! 2025-11-25 "core" tasks through the proxy: a legacy client speaking raw JSON-RPC (no SDK at
//! hand implements the client side of core tasks; the raw messages also show exactly what the
//! proxy sends), the real proxy binary, and server-everything (which implements core tasks:
//! `simulate-research-query`, `execution.taskSupport: "required"`) as two servers, so ids are
//! namespaced and lists merged across servers.

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout, Command};

use crate::support::*;

const RESEARCH: &str = "simulate-research-query";

/// A 2025-11-25 client on the proxy's stdio, keeping what arrives while it waits for an answer.
struct Legacy {
    _child: ProxyChild,
    stdin: ChildStdin,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
    seen: Vec<Value>,
    next_id: u64,
    log: Log,
    dir: tempfile::TempDir,
}

impl Legacy {
    /// The proxy with `servers`, once every server has connected.
    async fn start(servers: Value) -> Legacy {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("mcp.json");
        std::fs::write(&config, json!({ "mcpServers": servers }).to_string()).unwrap();
        let mut child = ProxyChild::spawn(
            Command::new(proxy_bin())
                .arg("--config")
                .arg(&config)
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .env("RUST_LOG", "info,pluggedin_mcp_proxy=debug")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        let log = Log::capture(child.stderr.take().unwrap());
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let client = Legacy {
            _child: child,
            stdin,
            stdout,
            seen: Vec::new(),
            next_id: 0,
            log,
            dir,
        };
        let count = servers.as_object().unwrap().len();
        let log = client.log.clone();
        let all = tokio::time::timeout(WAIT, async move {
            while log.text().matches("connected server_info=").count() < count {
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
        })
        .await;
        assert!(
            all.is_ok(),
            "servers did not connect:\n{}",
            client.log.text()
        );
        client
    }

    /// `stats` of the proxy's activity log, by the CLI on the same config and data dir.
    fn stats(&self) -> String {
        let output = std::process::Command::new(proxy_bin())
            .arg("--config")
            .arg(self.dir.path().join("mcp.json"))
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(["stats", "--since", "1h"])
            .env_remove("PLUGGEDIN_API_KEY")
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    async fn send(&mut self, message: Value) {
        let mut line = message.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn receive(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("nothing within the wait; log:\n{}", self.log.text()))
            .unwrap()
            .expect("stdout open");
        serde_json::from_str(&line).unwrap()
    }

    /// Sends a request and returns its whole answer (`result` or `error`).
    async fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = json!(self.next_id);
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
            .await;
        loop {
            let message = self.receive().await;
            if message.get("id") == Some(&id) && message.get("method").is_none() {
                return message;
            }
            self.seen.push(message);
        }
    }

    async fn result(&mut self, method: &str, params: Value) -> Value {
        let answer = self.request(method, params).await;
        answer
            .get("result")
            .cloned()
            .unwrap_or_else(|| panic!("{method} failed: {answer}"))
    }

    /// The first notification `method` that `check` accepts (earlier or yet to come).
    async fn notification(&mut self, method: &str, check: impl Fn(&Value) -> bool) -> Value {
        let wanted = |message: &Value| message["method"] == method && check(&message["params"]);
        if let Some(at) = self.seen.iter().position(wanted) {
            return self.seen.remove(at)["params"].clone();
        }
        loop {
            let message = self.receive().await;
            if wanted(&message) {
                return message["params"].clone();
            }
            self.seen.push(message);
        }
    }

    async fn initialize(&mut self, version: &str) -> Value {
        let result = self
            .result(
                "initialize",
                json!({ "protocolVersion": version, "capabilities": {},
                    "clientInfo": { "name": "core-tasks", "version": "1" } }),
            )
            .await;
        self.send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
            .await;
        result
    }

    /// Every tool on every page.
    async fn tools(&mut self) -> Vec<Value> {
        let mut tools = Vec::new();
        let mut cursor = None;
        loop {
            let params = match &cursor {
                Some(cursor) => json!({ "cursor": cursor }),
                None => json!({}),
            };
            let page = self.result("tools/list", params).await;
            tools.extend(page["tools"].as_array().unwrap().iter().cloned());
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(next) => cursor = Some(next.to_owned()),
                None => return tools,
            }
        }
    }

    /// A task-augmented call of `tool`: its `CreateTaskResult`'s task.
    async fn start_task(&mut self, tool: &str, topic: &str) -> Value {
        let created = self
            .result(
                "tools/call",
                json!({ "name": tool, "arguments": { "topic": topic }, "task": { "ttl": 60000 } }),
            )
            .await;
        created["task"].clone()
    }
}

impl Drop for Legacy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- proxy stderr ---\n{}", self.log.text());
        }
    }
}

fn two_servers() -> Value {
    json!({ "alpha": everything_stdio(), "beta": everything_stdio() })
}

async fn started(servers: Value) -> Legacy {
    let mut client = Legacy::start(servers).await;
    client.initialize("2025-11-25").await;
    client
}

#[tokio::test]
async fn a_2025_11_25_client_sees_the_tasks_capability_and_each_tools_execution_on_stdio() {
    let mut client = Legacy::start(json!({ "alpha": everything_stdio() })).await;
    let initialized = client.initialize("2025-11-25").await;
    assert_eq!(
        initialized["capabilities"]["tasks"],
        json!({ "list": {}, "cancel": {}, "requests": { "tools": { "call": {} } } }),
        "{initialized}"
    );
    assert!(
        initialized["capabilities"].get("experimental").is_none(),
        "the stash does not leak: {initialized}"
    );
    let tools = client.tools().await;
    let research = tools
        .iter()
        .find(|tool| tool["name"] == format!("alpha__{RESEARCH}"))
        .expect("the research tool is listed");
    assert_eq!(research["execution"], json!({ "taskSupport": "required" }));
    assert!(research.get("_meta").is_none(), "{research}");
    let echo = tools
        .iter()
        .find(|tool| tool["name"] == "alpha__echo")
        .unwrap();
    assert_eq!(
        echo["execution"],
        json!({ "taskSupport": "forbidden" }),
        "{echo}"
    );
}

#[tokio::test]
async fn a_client_before_2025_11_25_is_not_offered_core_tasks() {
    let mut client = Legacy::start(json!({ "alpha": everything_stdio() })).await;
    let initialized = client.initialize("2025-06-18").await;
    assert!(
        initialized["capabilities"].get("tasks").is_none(),
        "{initialized}"
    );
    assert!(initialized["capabilities"].get("experimental").is_none());
}

#[tokio::test]
async fn a_task_runs_through_the_proxy_get_status_notification_and_result() {
    let mut client = started(two_servers()).await;
    let task = client
        .start_task(&format!("beta__{RESEARCH}"), "proxies")
        .await;
    let id = task["taskId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("beta__"), "{task}");
    // The server decides the ttl (it may override the one asked for); it must reach the client.
    assert!(task["ttl"].is_u64(), "{task}");
    assert!(task.get("createdAt").is_some() && task.get("lastUpdatedAt").is_some());

    let got = client.result("tasks/get", json!({ "taskId": id })).await;
    assert_eq!(got["taskId"], id.as_str(), "{got}");
    assert!(
        got.get("ttl").is_some() && got.get("pollInterval").is_some(),
        "{got}"
    );
    assert!(
        ["working", "completed"].contains(&got["status"].as_str().unwrap()),
        "{got}"
    );

    // tasks/result blocks until the research is done, and is the tool's own result.
    let result = client.result("tasks/result", json!({ "taskId": id })).await;
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("# Research Report: proxies"), "{result}");
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        id.as_str(),
        "{result}"
    );

    // The server's status notifications reach this session under the proxy's id: the first
    // ("working", which the server may send before its answer to the call has passed the proxy)
    // and the last.
    let working = client
        .notification("notifications/tasks/status", |params| {
            params["status"] == "working"
        })
        .await;
    assert_eq!(working["taskId"], id.as_str(), "{working}");
    let status = client
        .notification("notifications/tasks/status", |params| {
            params["status"] == "completed"
        })
        .await;
    assert_eq!(status["taskId"], id.as_str(), "{status}");

    let done = client.result("tasks/get", json!({ "taskId": id })).await;
    assert_eq!(done["status"], "completed", "{done}");

    // The call is in the activity log, under the server and the tool's own name (the writer is
    // off the call path, so the row appears shortly after).
    let row = tokio::time::timeout(WAIT, async {
        loop {
            let stats = client.stats();
            if let Some(row) = stats
                .lines()
                .find(|line| line.contains("beta") && line.contains(RESEARCH))
            {
                return row.to_owned();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the task-augmented call is in the activity log");
    let words: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(words[..3], ["beta", RESEARCH, "1"], "{row}");
}

#[tokio::test]
async fn tasks_list_merges_servers_page_by_page_and_cancel_reaches_the_owner() {
    let mut client = started(two_servers()).await;
    // Eleven on alpha: server-everything lists ten a page, so alpha alone takes two pages.
    let mut alpha = Vec::new();
    for n in 0..11 {
        let task = client
            .start_task(&format!("alpha__{RESEARCH}"), &format!("topic {n}"))
            .await;
        alpha.push(task["taskId"].clone());
    }
    // An ambiguous query waits for the client's clarification (asked through tasks/result,
    // which this test never calls): a task that stays unfinished until cancelled.
    let beta = client
        .result(
            "tools/call",
            json!({ "name": format!("beta__{RESEARCH}"),
                "arguments": { "topic": "python", "ambiguous": true }, "task": { "ttl": 60000 } }),
        )
        .await["task"]["taskId"]
        .clone();

    let ids = |page: &Value| -> Vec<Value> {
        page["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|task| task["taskId"].clone())
            .collect()
    };
    let cursor = |page: &Value| page["nextCursor"].as_str().map(str::to_owned);
    // The cursor says which server the next page comes from, and where in its list.
    let first = client.result("tasks/list", json!({})).await;
    assert_eq!(ids(&first), alpha[..10], "{first}");
    let next = cursor(&first).expect("a second page");
    assert!(next.starts_with("alpha__"), "{next}");
    let second = client.result("tasks/list", json!({ "cursor": next })).await;
    assert_eq!(ids(&second), alpha[10..], "{second}");
    assert_eq!(cursor(&second).as_deref(), Some("beta__"), "{second}");
    let third = client
        .result("tasks/list", json!({ "cursor": "beta__" }))
        .await;
    assert_eq!(ids(&third), vec![beta.clone()], "{third}");
    assert!(cursor(&third).is_none(), "{third}");

    let cancelled = client
        .result("tasks/cancel", json!({ "taskId": beta }))
        .await;
    assert_eq!(cancelled["taskId"], beta, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    let after = client.result("tasks/get", json!({ "taskId": beta })).await;
    assert_eq!(after["status"], "cancelled", "{after}");
    // The other server's tasks are untouched.
    let other = client
        .result("tasks/get", json!({ "taskId": alpha[0] }))
        .await;
    assert_ne!(other["status"], "cancelled", "{other}");
}

#[tokio::test]
async fn unknown_task_ids_cursors_and_task_calls_to_tools_that_forbid_them_are_refused() {
    let mut client = started(json!({ "alpha": everything_stdio(), "demo": demo() })).await;
    for method in ["tasks/get", "tasks/result", "tasks/cancel"] {
        for id in ["nobody__t1", "no-separator"] {
            let answer = client.request(method, json!({ "taskId": id })).await;
            assert_eq!(answer["error"]["code"], -32602, "{method} {id}: {answer}");
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains(id), "{message}");
        }
    }
    let answer = client
        .request("tasks/list", json!({ "cursor": "nobody__x" }))
        .await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");

    // echo's execution.taskSupport is "forbidden".
    let answer = client
        .request(
            "tools/call",
            json!({ "name": "alpha__echo", "arguments": { "message": "hi" },
                "task": { "ttl": 1000 } }),
        )
        .await;
    assert_eq!(answer["error"]["code"], -32601, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("alpha__echo") && message.contains("forbidden"),
        "{message}"
    );
    // The demo server announces no tasks at all.
    let answer = client
        .request(
            "tools/call",
            json!({ "name": "demo__echo", "arguments": { "message": "hi" },
                "task": { "ttl": 1000 } }),
        )
        .await;
    assert_eq!(answer["error"]["code"], -32601, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("demo__echo"), "{message}");
    // The same tool called plainly still works.
    let plain = client
        .result(
            "tools/call",
            json!({ "name": "alpha__echo", "arguments": { "message": "hi" } }),
        )
        .await;
    assert_eq!(plain["content"][0]["text"], "Echo: hi", "{plain}");
}

/// The proxy over Streamable HTTP.
struct HttpProxy {
    _child: ProxyChild,
    url: String,
    log: Log,
    _dir: tempfile::TempDir,
}

impl HttpProxy {
    async fn start(servers: Value) -> HttpProxy {
        let dir = tempfile::tempdir().unwrap();
        let (child, log, url) = spawn_http_proxy(&dir, servers, &[]).await;
        log.wait_for("connected server_info=").await;
        HttpProxy {
            _child: child,
            url,
            log,
            _dir: dir,
        }
    }

    /// A raw 2025-11-25 session sending `token` (who the caller is), and its `initialize` result.
    async fn session(&self, token: &str) -> (HttpLegacy, Value) {
        let mut client = HttpLegacy {
            url: self.url.clone(),
            token: token.to_owned(),
            session: String::new(),
            log: self.log.clone(),
            next_id: 0,
        };
        let response = client
            .post(
                json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": { "name": "core-tasks", "version": "1" } } }),
            )
            .send()
            .await
            .unwrap();
        client.session = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let initialized = message_of(response).await;
        client
            .post(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
            .send()
            .await
            .unwrap();
        (client, initialized["result"].clone())
    }
}

impl Drop for HttpProxy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- proxy stderr ---\n{}", self.log.text());
        }
    }
}

/// A raw 2025-11-25 session over HTTP.
struct HttpLegacy {
    url: String,
    token: String,
    session: String,
    log: Log,
    next_id: u64,
}

impl HttpLegacy {
    fn post(&self, body: Value) -> reqwest::RequestBuilder {
        let mut request = reqwest::Client::new()
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .bearer_auth(&self.token)
            .json(&body);
        if !self.session.is_empty() {
            request = request
                .header("mcp-session-id", &self.session)
                .header("mcp-protocol-version", "2025-11-25");
        }
        request
    }

    /// The session's GET stream (server-to-client messages outside any request).
    async fn listen(&self) -> reqwest::Response {
        let response = reqwest::Client::new()
            .get(&self.url)
            .header("accept", "text/event-stream")
            .bearer_auth(&self.token)
            .header("mcp-session-id", &self.session)
            .header("mcp-protocol-version", "2025-11-25")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response
    }

    async fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let body =
            json!({ "jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params });
        message_of(self.post(body).send().await.unwrap()).await
    }

    async fn result(&mut self, method: &str, params: Value) -> Value {
        let answer = self.request(method, params).await;
        answer
            .get("result")
            .cloned()
            .unwrap_or_else(|| panic!("{method} failed: {answer}\n{}", self.log.text()))
    }
}

/// The first message on an SSE stream that `check` accepts.
async fn message_on(stream: &mut reqwest::Response, check: impl Fn(&Value) -> bool) -> Value {
    let mut text = String::new();
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let chunk = stream
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            text.push_str(&String::from_utf8_lossy(&chunk));
            let found = text
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
                .find(|message| check(message));
            if let Some(message) = found {
                return message;
            }
        }
    })
    .await;
    found.expect("the message arrives on the stream")
}

#[tokio::test]
async fn core_tasks_work_for_a_2025_11_25_client_over_http_and_stay_with_their_caller() {
    let proxy = HttpProxy::start(json!({ "alpha": everything_stdio() })).await;
    let (mut client, initialized) = proxy.session("token-one").await;
    // Listening before the task exists, so no status notification can come before.
    let mut stream = client.listen().await;
    assert_eq!(
        initialized["capabilities"]["tasks"],
        json!({ "list": {}, "cancel": {}, "requests": { "tools": { "call": {} } } }),
        "{initialized}"
    );
    let tools = client.result("tools/list", json!({})).await;
    let research = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|tool| tool["name"] == format!("alpha__{RESEARCH}"))
        .cloned()
        .expect("the research tool is listed");
    assert_eq!(research["execution"], json!({ "taskSupport": "required" }));

    let created = client
        .result(
            "tools/call",
            json!({ "name": format!("alpha__{RESEARCH}"), "arguments": { "topic": "http" },
                "task": { "ttl": 60000 } }),
        )
        .await;
    let id = created["task"]["taskId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("alpha__"), "{created}");
    let got = client.result("tasks/get", json!({ "taskId": id })).await;
    assert_eq!(got["taskId"], id.as_str(), "{got}");
    assert!(got.get("ttl").is_some(), "{got}");
    let listed = client.result("tasks/list", json!({})).await;
    assert_eq!(listed["tasks"][0]["taskId"], id.as_str(), "{listed}");
    // A client that sends the standard `Mcp-Method` header with a legacy request too.
    let with_header = client
        .post(json!({ "jsonrpc": "2.0", "id": 99, "method": "tasks/get",
            "params": { "taskId": id } }))
        .header("mcp-method", "tasks/get")
        .send()
        .await
        .unwrap();
    let with_header = message_of(with_header).await;
    assert_eq!(
        with_header["result"]["taskId"],
        id.as_str(),
        "{with_header}"
    );
    let result = client.result("tasks/result", json!({ "taskId": id })).await;
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("# Research Report: http"), "{result}");
    // The server's status notification reaches this session's stream under the proxy's id.
    let status = message_on(&mut stream, |message| {
        message["method"] == "notifications/tasks/status"
            && message["params"]["status"] == "completed"
    })
    .await;
    assert_eq!(status["params"]["taskId"], id.as_str(), "{status}");
    let unknown = client
        .request("tasks/get", json!({ "taskId": "nobody__1" }))
        .await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");

    // Another caller (another token) neither lists nor reaches the first one's task.
    let (mut other, _) = proxy.session("token-two").await;
    let listed = other.result("tasks/list", json!({})).await;
    assert_eq!(listed["tasks"], json!([]), "{listed}");
    for method in ["tasks/get", "tasks/result", "tasks/cancel"] {
        let foreign = other.request(method, json!({ "taskId": id })).await;
        assert_eq!(foreign["error"]["code"], -32602, "{method}: {foreign}");
    }
    // A new session of the same caller still does.
    let (mut again, _) = proxy.session("token-one").await;
    let got = again.result("tasks/get", json!({ "taskId": id })).await;
    assert_eq!(got["status"], "completed", "{got}");
}

#[tokio::test]
async fn core_tasks_reach_servers_over_legacy_sse_and_streamable_http() {
    let (_sse, sse_base) = everything_over("sse").await;
    let (_http, http_base) = everything_over("streamableHttp").await;
    let mut client = started(json!({
        "sse": { "url": format!("{sse_base}/sse") },
        "http": { "url": format!("{http_base}/mcp"), "type": "streamable-http" },
    }))
    .await;
    let tools = client.tools().await;
    for server in ["sse", "http"] {
        let research = tools
            .iter()
            .find(|tool| tool["name"] == format!("{server}__{RESEARCH}"))
            .unwrap_or_else(|| panic!("{server}'s research tool is listed: {tools:?}"));
        assert_eq!(research["execution"], json!({ "taskSupport": "required" }));
    }
    for server in ["sse", "http"] {
        let task = client
            .start_task(&format!("{server}__{RESEARCH}"), server)
            .await;
        let id = task["taskId"].as_str().unwrap().to_owned();
        assert!(id.starts_with(&format!("{server}__")), "{task}");
        let got = client.result("tasks/get", json!({ "taskId": id })).await;
        assert!(
            got.get("ttl").is_some() && got["taskId"] == id.as_str(),
            "{got}"
        );
        let result = client.result("tasks/result", json!({ "taskId": id })).await;
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(
            text.contains(&format!("# Research Report: {server}")),
            "{result}"
        );
        let status = client
            .notification("notifications/tasks/status", |params| {
                params["taskId"] == id.as_str() && params["status"] == "completed"
            })
            .await;
        assert_eq!(status["taskId"], id.as_str());
    }
    let listed = client.result("tasks/list", json!({})).await;
    assert_eq!(listed["tasks"].as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test]
async fn the_tools_command_shows_each_tools_execution() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcp.json");
    std::fs::write(
        &config,
        json!({ "mcpServers": { "alpha": everything_stdio() } }).to_string(),
    )
    .unwrap();
    let output = Command::new(proxy_bin())
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["tools", "--json"])
        .env_remove("PLUGGEDIN_API_KEY")
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let tools: Value = serde_json::from_slice(&output.stdout).unwrap();
    let research = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|tool| tool["name"] == format!("alpha__{RESEARCH}"))
        .expect("listed");
    assert_eq!(research["execution"], json!({ "taskSupport": "required" }));
    assert!(research.get("_meta").is_none(), "{research}");
}
