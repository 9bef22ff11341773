//! Relaying: a legacy client's `tools/call`, `prompts/get`, `resources/read` and
//! `completion/complete` to a legacy stdio server go on the server's lane, a call's arguments and
//! the server's results passed on as they were written, over stdio and over HTTP, with
//! everything else a call does kept: the legacy shape of a result, cancellation, the server's
//! timeout.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::*;

/// `tests/servers/verbatim_server.py`, recording every line it receives into `record`.
fn verbatim_server(record: &Path, timeout: Option<u64>) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/verbatim_server.py");
    let mut server = json!({"command": venv_python(), "args": [script, record]});
    if let Some(seconds) = timeout {
        server["timeout"] = json!(seconds);
    }
    server
}

/// The server's result for `verbatim`, as the script writes it.
const VERBATIM_RESULT: &str = r#"{ "content" : [ {"type":"text","text":"verbatim \u00e9"} ], "x-vendor": {"big": 123456789012345678901234567890, "f": 1.50} }"#;

/// The server's results for its prompt, its resource and completions, as the script writes them:
/// each request with a client's id, and the result it must get back untouched.
fn verbatim_requests() -> [(&'static str, Value, &'static str); 3] {
    [
        (
            "prompts/get",
            json!({"name": "verbatim__verbatim", "arguments": {"who": "you"}}),
            r#"{ "messages" : [ {"role":"user","content":{"type":"text","text":"prompt \u00e9"}} ], "x-vendor": 1.50 }"#,
        ),
        (
            "resources/read",
            json!({"uri": "verbatim://doc"}),
            r#"{ "contents" : [ {"uri":"verbatim://doc","text":"doc \u00e9"} ], "x-vendor": 123456789012345678901234567890 }"#,
        ),
        (
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "verbatim__verbatim"},
                   "argument": {"name": "who", "value": "y"}}),
            r#"{ "completion" : {"values":["a" , "b"],"total":2}, "x-vendor": 1.50 }"#,
        ),
    ]
}

struct Recorded(PathBuf);

impl Recorded {
    /// Waits until the server has received a line with every one of `needles`; returns it.
    async fn line_with(&self, needles: &[&str]) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let text = std::fs::read_to_string(&self.0).unwrap_or_default();
            if let Some(line) = text
                .lines()
                .find(|line| needles.iter().all(|needle| line.contains(needle)))
            {
                return line.to_owned();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the server never received {needles:?}; it received:\n{text}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

async fn start(timeout: Option<u64>) -> (RawStdio, Recorded, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("received.jsonl");
    let mut raw =
        RawStdio::start_with(json!({"verbatim": verbatim_server(&record, timeout)})).await;
    raw.initialize().await;
    (raw, Recorded(record), dir)
}

#[tokio::test]
async fn arguments_and_result_pass_through_byte_for_byte() {
    let (mut raw, record, _dir) = start(None).await;
    let arguments = r#"{"big": 123456789012345678901234567890, "f": 1.50, "s": "\u00e9"}"#;
    raw.send(&format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"verbatim__verbatim","arguments":{arguments}}}}}"#
    ))
    .await;
    let line = raw.answer_line(json!(7)).await;
    assert_eq!(
        line,
        format!(r#"{{"jsonrpc":"2.0","id":7,"result":{VERBATIM_RESULT}}}"#),
        "the result as the server wrote it"
    );
    // The server got the arguments as the client wrote them, under the tool's own name.
    let request = record.line_with(&["\"tools/call\""]).await;
    assert!(
        request.contains(&format!(r#""arguments":{arguments}"#)),
        "{request}"
    );
    assert!(request.contains(r#""name":"verbatim""#), "{request}");
}

#[tokio::test]
async fn prompts_resources_and_completions_come_back_byte_for_byte_over_stdio() {
    let (mut raw, record, _dir) = start(None).await;
    for (n, (method, params, result)) in verbatim_requests().into_iter().enumerate() {
        let id = 100 + n as u64;
        raw.send(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
        )
        .await;
        let line = raw.answer_line(json!(id)).await;
        assert_eq!(
            line,
            format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#),
            "{method}: the result as the server wrote it"
        );
    }
    // The server got the prompt's own name, in the request and in the completion's reference.
    let get = record.line_with(&["\"prompts/get\""]).await;
    assert!(get.contains(r#""name":"verbatim""#), "{get}");
    let complete = record.line_with(&["\"completion/complete\""]).await;
    assert!(complete.contains(r#""name":"verbatim""#), "{complete}");
}

#[tokio::test]
async fn calls_prompts_resources_and_completions_come_back_byte_for_byte_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("received.jsonl");
    let servers = json!({"verbatim": verbatim_server(&record, None)});
    let (_child, log, url) = spawn_http_proxy(&dir, servers, &[]).await;
    log.wait_for("connected server_info=verbatim").await;
    let session = initialized_session(&url, json!({})).await;
    let call = (
        "tools/call",
        json!({"name": "verbatim__verbatim", "arguments": {}}),
        VERBATIM_RESULT,
    );
    for (n, (method, params, result)) in
        std::iter::once(call).chain(verbatim_requests()).enumerate()
    {
        let id = 200 + n as u64;
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = post_mcp(&url, Some(&session), request)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{method}");
        assert_eq!(
            answer_text_of(response).await,
            format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#),
            "{method}: the result as the server wrote it"
        );
    }
}

/// The text of the one answer in a response: its JSON body, or the data of the stream's last
/// event (a slow machine may answer on a stream).
async fn answer_text_of(response: reqwest::Response) -> String {
    let json = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json");
    let body = response.text().await.unwrap();
    if json {
        return body;
    }
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim_start)
        .rfind(|data| data.contains("\"result\"") || data.contains("\"error\""))
        .unwrap_or_else(|| panic!("no answer on the stream: {body}"))
        .to_owned()
}

#[tokio::test]
async fn a_result_in_the_modern_shape_reaches_a_legacy_client_in_the_legacy_shape() {
    let (mut raw, _record, _dir) = start(None).await;
    raw.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"verbatim__modern_shape","arguments":{}}}"#).await;
    let answer = raw.answer(json!(1)).await;
    let result = &answer["result"];
    assert!(result.get("resultType").is_none(), "{answer}");
    assert!(result.get("structuredContent").is_none(), "{answer}");
    assert_eq!(result["content"][0]["text"], r#"["a","b"]"#, "{answer}");
}

#[tokio::test]
async fn a_cancelled_call_reaches_the_server_and_gets_no_answer() {
    let (mut raw, record, _dir) = start(None).await;
    raw.send(r#"{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"verbatim__hang","arguments":{}}}"#).await;
    let request = record.line_with(&["\"tools/call\"", "\"hang\""]).await;
    let sent: Value = serde_json::from_str(&request).unwrap();
    let downstream_id = sent["id"].as_str().expect("a string id").to_owned();
    raw.send(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"c1","reason":"changed my mind"}}"#).await;
    record
        .line_with(&[
            "notifications/cancelled",
            &format!(r#""requestId":"{downstream_id}""#),
        ])
        .await;
    // The proxy goes on serving, and the cancelled call was never answered.
    raw.send(r#"{"jsonrpc":"2.0","id":"p","method":"ping"}"#)
        .await;
    loop {
        let message = raw.receive().await;
        assert_ne!(
            message["id"], "c1",
            "a cancelled call was answered: {message}"
        );
        if message["id"] == "p" {
            break;
        }
    }
}

#[tokio::test]
async fn a_call_past_the_servers_timeout_fails_and_is_cancelled_downstream() {
    let (mut raw, record, _dir) = start(Some(1)).await;
    raw.send(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"verbatim__hang","arguments":{}}}"#).await;
    let answer = raw.answer(json!(3)).await;
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("verbatim") && message.contains("timed out after 1s"),
        "{answer}"
    );
    let request = record.line_with(&["\"tools/call\"", "\"hang\""]).await;
    let sent: Value = serde_json::from_str(&request).unwrap();
    let downstream_id = sent["id"].as_str().expect("a string id").to_owned();
    record
        .line_with(&[
            "notifications/cancelled",
            &format!(r#""requestId":"{downstream_id}""#),
            "request timeout",
        ])
        .await;
}

#[tokio::test]
async fn a_server_that_stops_reading_times_out_calls_and_the_others_keep_serving() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("received.jsonl");
    let mut raw = RawStdio::start_with(json!({
        "verbatim": verbatim_server(&record, Some(1)),
        "demo": demo(),
    }))
    .await;
    raw.initialize().await;
    raw.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"verbatim__deaf","arguments":{}}}"#).await;
    Recorded(record)
        .line_with(&["\"tools/call\"", "\"deaf\""])
        .await;
    // A call larger than the pipe holds: its line cannot be written, and the call still ends
    // within the server's timeout.
    let big = "x".repeat(256 * 1024);
    raw.send(&format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"verbatim__verbatim","arguments":{{"pad":"{big}"}}}}}}"#
    ))
    .await;
    for id in [1, 2] {
        let answer = raw.answer(json!(id)).await;
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("timed out after 1s"), "{id}: {answer}");
    }
    raw.send(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"demo__echo","arguments":{"message":"still here"}}}"#).await;
    let answer = raw.answer(json!(3)).await;
    assert_eq!(
        answer["result"]["content"][0]["text"], "Echo: still here",
        "{answer}"
    );
}
