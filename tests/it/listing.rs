//! `tools/list` over stdio answered from pages encoded once per catalog: byte for byte
//! the service's answer, page after page, and a new answer after every catalog change. The
//! service's own answer is what a request with `_meta` gets (the shortcut leaves those to it).

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout, Command};

use crate::support::*;

/// What the proxy logs for a `tools/list` answered from the cache (at debug level).
const FROM_CACHE: &str = "tools/list answered from the encoded page";

struct Raw {
    _child: ProxyChild,
    stdin: ChildStdin,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
    dir: tempfile::TempDir,
    next_id: u64,
}

impl Raw {
    async fn start(servers: Value, args: &[&str]) -> Raw {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("mcp.json");
        std::fs::write(&config, json!({ "mcpServers": servers }).to_string()).unwrap();
        let log = std::fs::File::create(dir.path().join("proxy.log")).unwrap();
        let mut child = ProxyChild::spawn(
            Command::new(proxy_bin())
                .arg("--config")
                .arg(&config)
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .args(args)
                .env("RUST_LOG", "info,pluggedin_mcp_proxy=debug")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(log),
        );
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut raw = Raw {
            _child: child,
            stdin,
            stdout,
            dir,
            next_id: 100,
        };
        raw.send(r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#).await;
        let answer = raw.answer_line(&json!(0)).await;
        assert!(answer.contains("PluggedinMCP"), "{answer}");
        raw.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
        raw
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap()
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        let output = std::process::Command::new(proxy_bin())
            .arg("--config")
            .arg(self.dir.path().join("mcp.json"))
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(args)
            .env_remove("PLUGGEDIN_API_KEY")
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    }

    async fn send(&mut self, line: &str) {
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The raw line answering request `id`, skipping notifications.
    async fn answer_line(&mut self, id: &Value) -> String {
        loop {
            let line = tokio::time::timeout(WAIT, self.stdout.next_line())
                .await
                .expect("an answer within the wait")
                .unwrap()
                .expect("stdout open");
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout carried a non-JSON line {line:?}: {e}"));
            if message.get("id") == Some(id) && message.get("method").is_none() {
                return line;
            }
        }
    }

    /// The raw answer to one `tools/list` with request id `id`; `meta` adds a `_meta` (which
    /// leaves the request to the service).
    async fn list_line(&mut self, id: &Value, cursor: Option<&str>, meta: bool) -> String {
        let mut params = serde_json::Map::new();
        if let Some(cursor) = cursor {
            params.insert("cursor".into(), json!(cursor));
        }
        if meta {
            params.insert("_meta".into(), json!({"progressToken": "listing"}));
        }
        let request = json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params});
        self.send(&request.to_string()).await;
        self.answer_line(id).await
    }

    /// Every page, cached path and service path side by side: (cached lines, service lines).
    async fn all_pages(&mut self) -> (Vec<String>, Vec<String>) {
        let (mut cached, mut served) = (Vec::new(), Vec::new());
        let mut cursor: Option<String> = None;
        loop {
            self.next_id += 1;
            // String ids and integer ids alike.
            let id = if self.next_id.is_multiple_of(2) {
                json!(self.next_id)
            } else {
                json!(format!("list-{}", self.next_id))
            };
            let fast = self.list_line(&id, cursor.as_deref(), false).await;
            let slow = self.list_line(&id, cursor.as_deref(), true).await;
            let page: Value = serde_json::from_str(&fast).unwrap();
            cursor = page["result"]["nextCursor"].as_str().map(str::to_owned);
            cached.push(fast);
            served.push(slow);
            if cursor.is_none() {
                return (cached, served);
            }
        }
    }

    /// Lists until `check` holds for the names (servers connect, settings are polled) and the
    /// cached pages equal the service's byte for byte. A server connecting between the two
    /// reads of a page changes the catalog in between, so a difference is retried until the
    /// deadline, where it fails the test.
    async fn names_until(&mut self, check: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (cached, served) = self.all_pages().await;
            let names = names_of(&cached);
            if cached == served && check(&names) {
                return names;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the list never matched (or the cached pages never equalled the service's):\n\
                 cached {cached:?}\nserved {served:?}\n{}",
                self.log()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// The tools' names over a list's pages.
fn names_of(pages: &[String]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|line| {
            let page: Value = serde_json::from_str(line).unwrap();
            page["result"]["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|tool| tool["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn cached_tool_pages_are_the_services_answers_byte_for_byte() {
    let mut raw = Raw::start(
        json!({"demo": demo_with(&["--extra-tools", "25"]), "time": time_stdio()}),
        &["--page-size", "7"],
    )
    .await;
    let names = raw
        .names_until(|names| {
            names.iter().any(|name| name == "demo__tool_24")
                && names.iter().any(|name| name.starts_with("time__"))
        })
        .await;
    // Several pages, each compared byte for byte inside `names`; and they really came from
    // the cache.
    assert!(names.len() > 40, "{names:?}");
    let pages = names.len().div_ceil(7);
    assert!(
        raw.log().matches(FROM_CACHE).count() >= pages,
        "{}",
        raw.log()
    );

    // A cursor we never hand out (not a page start) and an invalid one go to the service, which
    // answers as it always did.
    let odd = raw.list_line(&json!("odd"), Some("3"), false).await;
    let odd_served = raw.list_line(&json!("odd"), Some("3"), true).await;
    assert_eq!(odd, odd_served);
    let odd: Value = serde_json::from_str(&odd).unwrap();
    assert_eq!(odd["result"]["tools"][0]["name"], json!(names[3]), "{odd}");
    let bad = raw.list_line(&json!("bad"), Some("bogus"), false).await;
    let bad: Value = serde_json::from_str(&bad).unwrap();
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    assert!(
        bad["error"]["message"].as_str().unwrap().contains("bogus"),
        "{bad}"
    );
}

#[tokio::test]
async fn a_catalog_change_shows_in_the_next_cached_list() {
    let mut raw = Raw::start(json!({"demo": demo()}), &["--page-size", "5"]).await;
    let before = raw
        .names_until(|names| names.iter().any(|name| name == "demo__echo"))
        .await;
    assert!(
        !before
            .iter()
            .any(|name| name.ends_with("test_dynamic_tool_extra"))
    );

    // The server adds a tool and says its list changed: the next list has it.
    raw.send(r#"{"jsonrpc":"2.0","id":"add","method":"tools/call","params":{"name":"demo__test_dynamic_tool","arguments":{}}}"#).await;
    let added = raw.answer_line(&json!("add")).await;
    assert!(added.contains("Added tool"), "{added}");
    raw.names_until(|names| {
        names
            .iter()
            .any(|name| name == "demo__test_dynamic_tool_extra")
    })
    .await;

    // A tool disabled by the operator (settings, not the server) leaves the cached list too.
    let said = raw.cli_ok(&["tools", "disable", "demo__echo"]);
    assert_eq!(said.trim(), "tool demo__echo disabled");
    let after = raw
        .names_until(|names| !names.iter().any(|name| name == "demo__echo"))
        .await;
    assert!(
        after
            .iter()
            .any(|name| name == "demo__test_dynamic_tool_extra")
    );
}
