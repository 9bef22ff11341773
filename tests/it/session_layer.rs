//! The HTTP session layer's own calls: a session's `tools/call` is answered without rmcp's session
//! worker, and keeps everything a request's stream gives: the answer as JSON or on a stream, a
//! server's questions on that stream before it, resumption of a cut stream from where the client
//! was, cancellation, the refusal of a reused id, and the session kept alive while it is in use.

use serde_json::{Value, json};

use crate::support::*;

/// The proxy over Streamable HTTP with the demo server behind it, and an initialized session of a
/// client with `capabilities`.
struct Proxy {
    _child: ProxyChild,
    log: Log,
    url: String,
    session: String,
    _dir: tempfile::TempDir,
}

impl Proxy {
    async fn start(args: &[&str]) -> Proxy {
        Proxy::with_capabilities(args, json!({})).await
    }

    async fn with_capabilities(args: &[&str], capabilities: Value) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let (child, log, url) = spawn_http_proxy(&dir, json!({"demo": demo()}), args).await;
        log.wait_for("connected server_info=pluggedin-demo-server")
            .await;
        let session = initialized_session(&url, capabilities).await;
        Proxy {
            _child: child,
            log,
            url,
            session,
            _dir: dir,
        }
    }

    fn call(&self, id: u64, tool: &str, arguments: Value) -> reqwest::RequestBuilder {
        post_mcp(
            &self.url,
            Some(&self.session),
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                   "params": {"name": tool, "arguments": arguments}}),
        )
    }

    /// `GET` resuming the stream whose last event was `last_event_id`.
    async fn resume(&self, last_event_id: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(&self.url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &self.session)
            .header("mcp-protocol-version", "2025-11-25")
            .header("last-event-id", last_event_id)
            .send()
            .await
            .unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- proxy stderr ---\n{}", self.log.text());
        }
    }
}

/// Reads a response stream's first event (the priming event of a slow call's stream): its id.
async fn priming_id(response: &mut reqwest::Response) -> String {
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = response.chunk().await.unwrap().expect("the stream is open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("retry:"), "{text:?}");
    text.lines()
        .find_map(|line| line.strip_prefix("id:"))
        .map(|id| id.trim().to_owned())
        .unwrap_or_else(|| panic!("no id in {text:?}"))
}

/// The `result` text of an answer to call `id`.
fn answer_text(message: &Value, id: u64) -> String {
    assert_eq!(message["id"], id, "{message}");
    message["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {message}"))
        .to_owned()
}

#[tokio::test]
async fn calls_are_answered_as_json_or_on_a_stream_and_a_cut_stream_resumes_with_its_answer() {
    let proxy = Proxy::start(&[]).await;

    // A quick call: its answer, as a JSON body or as the one message of its stream.
    let quick = proxy
        .call(2, "demo__echo", json!({"message": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(quick.status(), 200);
    assert_eq!(answer_text(&message_of(quick).await, 2), "Echo: hi");

    // A client that takes JSON only gets JSON, however long the call takes.
    let json_only = reqwest::Client::new()
        .post(&proxy.url)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", &proxy.session)
        .json(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                      "params": {"name": "demo__sleep", "arguments": {"ms": 300}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_only.status(), 200);
    assert_eq!(
        json_only.headers()["content-type"],
        "application/json",
        "{:?}",
        json_only.headers()
    );
    let answer: Value = json_only.json().await.unwrap();
    assert_eq!(answer_text(&answer, 3), "slept 300ms");

    // A call longer than the JSON wait (100 ms) is answered on a stream primed with an event id;
    // the client loses it, resumes it with that id, and gets the answer, whether the call ended
    // while it was away or not.
    let mut slow = proxy
        .call(4, "demo__sleep", json!({"ms": 1500}))
        .send()
        .await
        .unwrap();
    assert_eq!(slow.status(), 200);
    assert!(
        slow.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let last_event_id = priming_id(&mut slow).await;
    drop(slow);
    let resumed = proxy.resume(&last_event_id).await;
    assert_eq!(resumed.status(), 200);
    let mut messages = sse_messages(resumed);
    let answer = tokio::time::timeout(WAIT, messages.recv())
        .await
        .expect("the answer comes")
        .expect("a message");
    assert_eq!(answer_text(&answer, 4), "slept 1500ms");

    // Delivered: there is nothing left to resume.
    let again = proxy.resume(&last_event_id).await;
    assert_eq!(again.status(), 405, "{}", again.text().await.unwrap());
}

#[tokio::test]
async fn a_cancelled_calls_stream_ends_without_an_answer_and_its_id_stays_taken() {
    let proxy = Proxy::start(&[]).await;
    let mut slow = proxy
        .call(7, "demo__sleep", json!({"ms": 600000}))
        .send()
        .await
        .unwrap();
    let last_event_id = priming_id(&mut slow).await;

    // Another request under the same id meanwhile is refused, and never run.
    let second = proxy
        .call(7, "demo__echo", json!({"message": "second"}))
        .send()
        .await
        .unwrap();
    assert_rpc_error(
        &message_of(second).await,
        -32600,
        "request id 7 is already in flight in this session",
    );

    // The client cancels: the server hears of it, the stream ends with no answer on it.
    let cancelled = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                           "params": {"requestId": 7, "reason": "changed my mind"}});
    let response = post_mcp(&proxy.url, Some(&proxy.session), cancelled)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let rest = tokio::time::timeout(WAIT, slow.text())
        .await
        .expect("the stream ends")
        .unwrap();
    assert!(!rest.contains("\"result\""), "{rest:?}");
    proxy.log.wait_for("sleep cancelled by the client").await;

    // Resuming it: nothing there, ever (405, not an empty stream to poll again).
    let resumed = proxy.resume(&last_event_id).await;
    assert_eq!(resumed.status(), 405);

    // A cancelled id stays taken for a while (its handler may still answer).
    let reused = proxy
        .call(7, "demo__echo", json!({"message": "again"}))
        .send()
        .await
        .unwrap();
    assert_rpc_error(&message_of(reused).await, -32600, "already in flight");
    // Other ids are served.
    let other = proxy
        .call(8, "demo__echo", json!({"message": "other"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer_text(&message_of(other).await, 8), "Echo: other");
}

#[tokio::test]
async fn a_session_in_use_outlives_its_idle_ttl_and_expires_once_left_alone() {
    let proxy = Proxy::start(&["--session-ttl", "1"]).await;
    // A call that lasts past the TTL: the session is in use all along.
    let long = proxy
        .call(2, "demo__sleep", json!({"ms": 2500}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer_text(&message_of(long).await, 2),
        "slept 2500ms",
        "the session lived through its call"
    );
    // And is still there for the next one.
    let next = proxy
        .call(3, "demo__echo", json!({"message": "still here"}))
        .send()
        .await
        .unwrap();
    assert_eq!(next.status(), 200);
    assert_eq!(answer_text(&message_of(next).await, 3), "Echo: still here");

    // Left alone, it ends: its id is unknown from then on.
    proxy.log.wait_for("session idle past its TTL").await;
    let gone = proxy
        .call(4, "demo__echo", json!({"message": "?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn a_servers_question_comes_on_the_calls_stream_and_a_resumed_stream_goes_on_after_it() {
    let proxy = Proxy::with_capabilities(&[], json!({"sampling": {}})).await;
    let mut call = proxy
        .call(2, "demo__test_sampling", json!({"prompt": "still there?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(call.status(), 200);
    // The priming event, then the server's question with an event id of its own.
    let mut text = String::new();
    let question = loop {
        let found = text
            .split("\n\n")
            .filter(|event| event.contains("sampling/createMessage"))
            .find_map(|event| {
                let id = event.lines().find_map(|line| line.strip_prefix("id:"))?;
                let data = event.lines().find_map(|line| line.strip_prefix("data:"))?;
                Some((
                    id.trim().to_owned(),
                    serde_json::from_str::<Value>(data.trim()).ok()?,
                ))
            });
        if let Some(found) = found {
            break found;
        }
        let chunk = tokio::time::timeout(WAIT, call.chunk())
            .await
            .expect("the question comes")
            .unwrap()
            .expect("the stream is open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    };
    let (seen, question) = question;
    assert!(text.contains("retry:"), "{text:?}");
    // The client goes away after the question, answers it, and resumes from what it saw: the
    // rest is the answer alone, not the question again.
    drop(call);
    let reply = json!({"jsonrpc": "2.0", "id": question["id"], "result": {
        "role": "assistant", "content": {"type": "text", "text": "yes, here"},
        "model": "test-model"}});
    let replied = post_mcp(&proxy.url, Some(&proxy.session), reply)
        .send()
        .await
        .unwrap();
    assert_eq!(replied.status(), 202);
    let resumed = proxy.resume(&seen).await;
    assert_eq!(resumed.status(), 200);
    let mut messages = sse_messages(resumed);
    let next = tokio::time::timeout(WAIT, messages.recv())
        .await
        .expect("the answer comes")
        .expect("a message");
    assert!(answer_text(&next, 2).contains("yes, here"), "{next}");
}

#[tokio::test]
async fn prompts_resources_and_completions_are_answered_like_calls() {
    let proxy = Proxy::start(&[]).await;
    let request = |id: u64, method: &str, params: Value| {
        post_mcp(
            &proxy.url,
            Some(&proxy.session),
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        )
        .send()
    };
    let prompt = message_of(
        request(
            2,
            "prompts/get",
            json!({"name": "demo__test_prompt_with_arguments",
                   "arguments": {"arg1": "one", "arg2": "two"}}),
        )
        .await
        .unwrap(),
    )
    .await;
    let text = prompt["result"]["messages"].to_string();
    assert!(text.contains("one") && text.contains("two"), "{prompt}");
    assert!(prompt["result"].get("resultType").is_none(), "{prompt}");

    let read = message_of(
        request(
            3,
            "resources/read",
            json!({"uri": "test://template/42/data"}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert!(
        read["result"]["contents"].to_string().contains("42"),
        "{read}"
    );

    let completion = message_of(
        request(
            4,
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "demo__test_prompt_with_arguments"},
                   "argument": {"name": "arg1", "value": ""}}),
        )
        .await
        .unwrap(),
    )
    .await;
    let values = completion["result"]["completion"]["values"]
        .as_array()
        .unwrap_or_else(|| panic!("{completion}"));
    assert!(!values.is_empty(), "{completion}");

    // What the router refuses is refused with its reason, under the request's id.
    let unknown = message_of(
        request(5, "resources/read", json!({"uri": "test://nowhere"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(unknown["id"], 5, "{unknown}");
    assert!(
        unknown["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("test://nowhere")),
        "{unknown}"
    );
}
