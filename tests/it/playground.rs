//! The playground's API end to end: the real proxy binary and demo server, and the providers'
//! stand-ins (`llm_standin`), which speak each provider's API and refuse what it refuses. Each
//! provider runs a conversation of two turns in which the model calls two tools in sequence and
//! answers from their results; a catalog larger than OpenAI's limit is narrowed; a schema Gemini
//! cannot take is converted and the loss said; providers' errors arrive with their reasons; a
//! server's sampling request is answered by the chat's model and an elicitation by the person; a
//! chat stops mid-call and the next turn goes on from it; "use my documents" puts the passages
//! found before the conversation; keys saved are never given back nor logged.

use pluggedin_mcp_proxy::llm::ProviderKind;
use serde_json::{Value, json};

use crate::api_console::{
    Events, Live, demo_servers, eventually, forwarded_calls, open_upload, put_chunk, send,
    sleeps_cancelled,
};
use crate::llm_standin::{Failure, Standin};
use crate::support::*;

pub const PLAN: &str = "Add 2 and 3, then echo the sum.\nplan: demo__add {\"a\":2,\"b\":3} | \
                    demo__echo {\"message\":\"sum $1\"} | answer The sum is $1; the echo said $2.";
/// What the stand-in's model answers to [`PLAN`] once both tools have answered.
pub const ANSWER: &str = "The sum is 5; the echo said Echo: sum 5.";

/// The prefix of a provider's variables (`GEMINI` in `GEMINI_API_KEY`).
fn prefix(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Anthropic => "ANTHROPIC",
        ProviderKind::OpenAi => "OPENAI",
        ProviderKind::Gemini => "GEMINI",
        ProviderKind::Xai => "XAI",
        ProviderKind::Compatible => "OPENAI_COMPATIBLE",
    }
}

/// The variables pointing the proxy at the stand-in: every provider's base URL, and the key `key`
/// gives it (`Some(None)`: a wrong one; `None`: no key).
pub fn provider_env(
    standin: &Standin,
    key: impl Fn(ProviderKind) -> Option<Option<&'static str>>,
) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for kind in ProviderKind::ALL {
        env.push((format!("{}_BASE_URL", prefix(kind)), standin.base_url(kind)));
        match key(kind) {
            Some(Some(value)) => env.push((format!("{}_API_KEY", prefix(kind)), value.into())),
            Some(None) => env.push((
                format!("{}_API_KEY", prefix(kind)),
                "sk-proj-not-the-right-key-0000000000000000".into(),
            )),
            None => {}
        }
    }
    env
}

/// Every provider's right key.
pub fn right_keys(kind: ProviderKind) -> Option<Option<&'static str>> {
    Some(Some(Standin::key(kind)))
}

/// The proxy with `servers`, its providers the stand-in's.
async fn proxy_with(standin: &Standin, servers: Value, args: &[&str]) -> Live {
    let env = provider_env(standin, right_keys);
    let env: Vec<(&str, &str)> = env
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let live = Live::start_with(json!({ "mcpServers": servers }), args, &env).await;
    live.connected("demo").await;
    live
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": [{"type": "text", "text": text}]})
}

/// Starts a chat; its events, the `chat` one read.
async fn chat(live: &Live, body: Value) -> (Events, String) {
    let response = live
        .http
        .post(live.url("/api/v1/playground/chat"))
        .header("accept", "text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status != 200 {
        panic!(
            "chat: {status}: {}",
            response.text().await.unwrap_or_default()
        );
    }
    let mut events = Events::of(response);
    let started = events.expect("chat").await;
    let id = started["id"].as_str().unwrap().to_owned();
    (events, id)
}

/// A turn of one message to `kind`'s default model that must fail: its `error` event.
async fn failed_turn(live: &Live, kind: ProviderKind, text: &str) -> Value {
    let body =
        json!({"provider": kind.id(), "model": kind.default_model(), "messages": [user(text)]});
    let (mut events, _) = chat(live, body).await;
    let seen = turn(&mut events).await;
    last(&seen, "error").clone()
}

/// Every event up to the end of the turn (`done` or `error`, included).
async fn turn(events: &mut Events) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    while let Some((name, data)) = events.next().await {
        let last = name == "done" || name == "error";
        seen.push((name, data));
        if last {
            break;
        }
    }
    seen
}

fn named<'a>(events: &'a [(String, Value)], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|(got, _)| got == name)
        .map(|(_, data)| data)
        .collect()
}

fn last<'a>(events: &'a [(String, Value)], name: &str) -> &'a Value {
    named(events, name)
        .last()
        .copied()
        .unwrap_or_else(|| panic!("no {name} event in {events:#?}"))
}

/// The text the model streamed in a turn.
fn streamed_text(events: &[(String, Value)]) -> String {
    named(events, "text")
        .iter()
        .map(|data| data["text"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn each_provider_calls_two_tools_in_sequence_and_answers_from_their_results() {
    let standin = Standin::start().await;
    let live = proxy_with(&standin, demo_servers(), &[]).await;
    for kind in ProviderKind::ALL {
        let tools = json!(["demo__add", "demo__echo", "demo__sleep"]);
        let (mut events, _) = chat(
            &live,
            json!({
                "provider": kind.id(),
                "model": kind.default_model(),
                "messages": [user(PLAN)],
                "tools": tools,
            }),
        )
        .await;
        let first = turn(&mut events).await;
        let done = last(&first, "done");
        assert_eq!(done["stop"], "end_turn", "{kind:?}: {first:#?}");
        let calls: Vec<&str> = named(&first, "tool_call")
            .iter()
            .map(|call| call["name"].as_str().unwrap())
            .collect();
        assert_eq!(calls, ["demo__add", "demo__echo"], "{kind:?}");
        let results = named(&first, "tool_result");
        assert_eq!(
            results[0]["result"]["structuredContent"]["sum"], 5,
            "{kind:?}"
        );
        assert_eq!(
            named(&first, "tool_call")[1]["arguments"]["message"],
            "sum 5"
        );
        let answer = ANSWER;
        assert_eq!(streamed_text(&first), answer, "{kind:?}");
        // The conversation: the person, the model's two calls and their results, the answer.
        let messages = done["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 6, "{kind:?}: {messages:#?}");
        assert_eq!(messages[5]["content"][0]["text"], answer);

        // The second turn carries the first one's calls and results to the provider (which
        // refuses a call left unanswered), and the model answers from them again.
        let mut next = messages.clone();
        next.push(user("Thank you. What was it again?"));
        let (mut events, _) = chat(
            &live,
            json!({
                "provider": kind.id(),
                "model": kind.default_model(),
                "messages": next,
                "tools": tools,
            }),
        )
        .await;
        let second = turn(&mut events).await;
        assert_eq!(
            last(&second, "done")["stop"],
            "end_turn",
            "{kind:?}: {second:#?}"
        );
        assert!(named(&second, "tool_call").is_empty(), "{kind:?}");
        assert_eq!(streamed_text(&second), answer, "{kind:?}");
    }
    // Every provider was spoken to in its own API, with its own key.
    for kind in ProviderKind::ALL {
        let requests = standin.requests_to(kind);
        // Three answers in the first turn (two calls, then the text), one in the second.
        assert_eq!(requests.len(), 4, "{kind:?}");
    }
}

#[tokio::test]
async fn a_catalog_larger_than_openais_limit_is_narrowed_to_the_tools_most_relevant() {
    let standin = Standin::start().await;
    let servers = json!({"demo": demo_with(&["--name", "demo", "--extra-tools", "150"])});
    let live = proxy_with(&standin, servers, &[]).await;
    let (status, overview) = live.get("/api/v1/playground").await;
    assert_eq!(status, 200, "{overview}");
    let catalog = overview["tools"].as_array().unwrap().len();
    assert!(catalog > 128, "{catalog} tools");
    let (mut events, _) = chat(
        &live,
        json!({
            "provider": "openai",
            "model": "gpt-4.1",
            "messages": [user(
                "Please add 2 and 3.\nplan: demo__add {\"a\":2,\"b\":3} | answer $1"
            )],
        }),
    )
    .await;
    let seen = turn(&mut events).await;
    let tools = last(&seen, "tools");
    let offered = tools["offered"].as_array().unwrap();
    assert_eq!(offered.len(), 128, "{tools}");
    assert_eq!(tools["omitted"].as_array().unwrap().len(), catalog - 128);
    assert!(offered.contains(&json!("demo__add")), "{tools}");
    assert!(tools["reason"].as_str().unwrap().contains("128"), "{tools}");
    assert_eq!(last(&seen, "done")["stop"], "end_turn", "{seen:#?}");
    assert_eq!(streamed_text(&seen), "5");
    let sent = standin.requests_to(ProviderKind::OpenAi);
    assert_eq!(sent[0].body["tools"].as_array().unwrap().len(), 128);
}

#[tokio::test]
async fn a_schema_gemini_cannot_take_is_converted_and_what_is_lost_is_said() {
    let standin = Standin::start().await;
    let live = proxy_with(&standin, demo_servers(), &[]).await;
    let (status, tools) = live.get("/api/v1/tools?q=json_schema_2020_12_tool").await;
    assert_eq!(status, 200);
    let schema = &tools["tools"][0]["inputSchema"];
    assert!(schema.to_string().contains("$defs"), "{schema}");
    let (mut events, _) = chat(
        &live,
        json!({
            "provider": "gemini",
            "model": "gemini-2.5-flash",
            "messages": [user("plan: demo__add {\"a\":1,\"b\":1} | answer $1")],
            "tools": ["demo__json_schema_2020_12_tool", "demo__add"],
        }),
    )
    .await;
    let seen = turn(&mut events).await;
    let tools = last(&seen, "tools");
    let lost = tools["lost"].as_array().unwrap();
    assert_eq!(lost.len(), 1, "{tools}");
    assert_eq!(lost[0]["tool"], "demo__json_schema_2020_12_tool");
    assert!(!lost[0]["lost"].as_array().unwrap().is_empty(), "{tools}");
    assert_eq!(last(&seen, "done")["stop"], "end_turn", "{seen:#?}");
    assert_eq!(streamed_text(&seen), "2");
    let sent = &standin.requests_to(ProviderKind::Gemini)[0].body;
    let declared = sent.to_string();
    assert!(
        !declared.contains("$defs") && !declared.contains("$ref"),
        "{declared}"
    );
}

#[tokio::test]
async fn a_providers_error_reaches_the_chat_with_the_providers_reason() {
    let standin = Standin::start().await;
    let env = provider_env(&standin, |kind| match kind {
        ProviderKind::OpenAi => Some(None),
        _ => right_keys(kind),
    });
    let env: Vec<(&str, &str)> = env
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let live = Live::start_with(json!({ "mcpServers": demo_servers() }), &[], &env).await;
    live.connected("demo").await;

    let failure = failed_turn(&live, ProviderKind::OpenAi, "hello").await;
    assert_eq!(failure["provider"]["kind"], "auth", "{failure}");
    assert_eq!(failure["provider"]["status"], 401, "{failure}");
    let reason = failure["provider"]["message"].as_str().unwrap();
    assert!(reason.contains("Incorrect API key provided"), "{failure}");
    assert!(
        failure["error"].as_str().unwrap().starts_with("OpenAI"),
        "{failure}"
    );
    assert!(
        !failure.to_string().contains("not-the-right-key"),
        "{failure}"
    );

    standin.fail_next(ProviderKind::Anthropic, Failure::RateLimit);
    let failure = failed_turn(&live, ProviderKind::Anthropic, "hi").await;
    assert_eq!(failure["provider"]["kind"], "rate_limit", "{failure}");
    assert_eq!(failure["status"], 429, "{failure}");
    // The conversation comes back whole, for the page to try again.
    assert_eq!(
        failure["messages"].as_array().unwrap().len(),
        1,
        "{failure}"
    );

    // A conversation too long for the model, in Gemini's words.
    standin.fail_next(ProviderKind::Gemini, Failure::ContextTooLong);
    let failure = failed_turn(&live, ProviderKind::Gemini, "hi").await;
    assert_eq!(failure["provider"]["kind"], "context_length", "{failure}");
    assert_eq!(failure["provider"]["status"], 400, "{failure}");
    let reason = failure["provider"]["message"].as_str().unwrap();
    assert!(reason.contains("token"), "{failure}");

    // A provider unknown is refused before anything is sent, naming those there are.
    let refused = send(
        live.http
            .post(live.url("/api/v1/playground/chat"))
            .header("accept", "text/event-stream")
            .json(&json!({"provider": "nobody", "model": "m", "messages": [user("hi")]})),
    )
    .await;
    assert_eq!(refused.status, 404, "{}", refused.text);
    assert!(
        refused.text.contains("anthropic, openai"),
        "{}",
        refused.text
    );
}

#[tokio::test]
async fn a_servers_sampling_request_is_answered_by_the_chats_model() {
    let standin = Standin::start().await;
    let live = proxy_with(&standin, demo_servers(), &[]).await;
    let (mut events, _) = chat(
        &live,
        json!({
            "provider": "anthropic",
            "model": "claude-sonnet-4-5",
            "messages": [user(
                "plan: demo__test_sampling {\"prompt\":\"What is MCP?\"} | answer It said: $1"
            )],
            "tools": ["demo__test_sampling"],
            "sampling": "model",
        }),
    )
    .await;
    let seen = turn(&mut events).await;
    let sampled = last(&seen, "sampled");
    assert_eq!(sampled["text"], "You said: What is MCP?", "{seen:#?}");
    let result = last(&seen, "tool_result");
    assert!(
        result["result"]
            .to_string()
            .contains("You said: What is MCP?"),
        "{result}"
    );
    assert_eq!(last(&seen, "done")["stop"], "end_turn");
    assert!(streamed_text(&seen).starts_with("It said: "), "{seen:#?}");
    // The model was asked twice for the chat and once for the server, in between.
    assert_eq!(standin.requests_to(ProviderKind::Anthropic).len(), 3);
}

#[tokio::test]
async fn an_elicitation_during_a_chat_is_answered_by_the_person() {
    let standin = Standin::start().await;
    let live = proxy_with(&standin, demo_servers(), &[]).await;
    let (mut events, id) = chat(
        &live,
        json!({
            "provider": "openai",
            "model": "gpt-4.1",
            "messages": [user(
                "plan: demo__test_elicitation {\"message\":\"Your name?\"} | answer Got: $1"
            )],
            "tools": ["demo__test_elicitation"],
        }),
    )
    .await;
    let (_, question) = events.until("elicitation").await;
    assert_eq!(question["message"], "Your name?", "{question}");
    let asked = question["id"].as_str().unwrap();
    let (status, answered) = live
        .post(
            &format!("/api/v1/playground/chats/{id}/answers/{asked}"),
            json!({"action": "accept", "content": {"name": "Ada"}}),
        )
        .await;
    assert_eq!(status, 200, "{answered}");
    let seen = turn(&mut events).await;
    assert!(streamed_text(&seen).contains("Ada"), "{seen:#?}");
}

#[tokio::test]
async fn a_stopped_chat_cancels_its_tool_call_and_keeps_the_conversation() {
    let standin = Standin::start().await;
    let live = proxy_with(&standin, demo_servers(), &[]).await;
    let (mut events, id) = chat(
        &live,
        json!({
            "provider": "xai",
            "model": "grok-4",
            "messages": [user("plan: demo__sleep {\"ms\":60000} | answer slept")],
            "tools": ["demo__sleep"],
        }),
    )
    .await;
    let before = forwarded_calls(&live.log);
    events.until("tool_call").await;
    eventually("the call forwarded", async || {
        match forwarded_calls(&live.log) - before {
            0 => Err("not yet".to_owned()),
            _ => Ok(()),
        }
    })
    .await;
    let (status, stopped) = live.delete(&format!("/api/v1/playground/chats/{id}")).await;
    assert_eq!(status, 200, "{stopped}");
    let seen = turn(&mut events).await;
    let done = last(&seen, "done");
    assert_eq!(done["stop"], "cancelled", "{seen:#?}");
    // The call stopped is answered as stopped, so that the conversation can go on.
    let messages = done["messages"].as_array().unwrap().clone();
    assert_eq!(messages.len(), 3, "{done}");
    assert_eq!(messages[2]["content"][0]["isError"], true, "{done}");
    sleeps_cancelled(&live, 1).await;
    let (status, _) = live.delete(&format!("/api/v1/playground/chats/{id}")).await;
    assert_eq!(status, 404);
    // The next turn goes on from there: the provider, which refuses a call left unanswered,
    // takes it.
    let mut next = messages;
    next.push(user("Never mind."));
    let (mut events, _) = chat(
        &live,
        json!({"provider": "xai", "model": "grok-4", "messages": next, "tools": ["demo__sleep"]}),
    )
    .await;
    let seen = turn(&mut events).await;
    assert_eq!(last(&seen, "done")["stop"], "end_turn", "{seen:#?}");
    assert_eq!(streamed_text(&seen), "slept");
}

#[tokio::test]
async fn the_step_limit_ends_a_turn_that_would_go_on() {
    let standin = Standin::start().await;
    let live = proxy_with(&standin, demo_servers(), &[]).await;
    let (mut events, _) = chat(
        &live,
        json!({
            "provider": "compatible",
            "model": "llama3.2",
            "messages": [user(PLAN)],
            "tools": ["demo__add", "demo__echo"],
            "maxSteps": 1,
        }),
    )
    .await;
    let seen = turn(&mut events).await;
    let done = last(&seen, "done");
    assert_eq!(done["stop"], "step_limit", "{seen:#?}");
    assert_eq!(named(&seen, "tool_call").len(), 1);
    // The call made is answered in the conversation, so the next turn can go on from it.
    let messages = done["messages"].as_array().unwrap();
    assert_eq!(
        messages.last().unwrap()["content"][0]["type"],
        "tool_result"
    );
}

#[tokio::test]
async fn a_key_saved_is_never_given_back_nor_logged() {
    let standin = Standin::start().await;
    let live = proxy_with(&standin, demo_servers(), &[]).await;
    // Saved over the environment's: the chat uses the saved one.
    let saved = Standin::key(ProviderKind::Gemini);
    let reply = send(
        live.http
            .put(live.url("/api/v1/playground/providers/gemini"))
            .json(&json!({"key": saved})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["key"]["from"], "saved", "{}", reply.text);
    assert!(!reply.everything().contains(saved));
    let overview = send(live.http.get(live.url("/api/v1/playground"))).await;
    assert!(!overview.everything().contains(saved));
    for kind in ProviderKind::ALL {
        assert!(
            !overview.everything().contains(Standin::key(kind)),
            "{kind:?}"
        );
    }
    let file = live.dir.path().join("data/playground/providers.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (mut events, _) = chat(
        &live,
        json!({"provider": "gemini", "model": "gemini-2.5-flash", "messages": [user("hi")]}),
    )
    .await;
    let seen = turn(&mut events).await;
    assert_eq!(streamed_text(&seen), "You said: hi", "{seen:#?}");
    let request = &standin.requests_to(ProviderKind::Gemini)[0];
    assert_eq!(
        request.headers.get("x-goog-api-key").map(String::as_str),
        Some(saved)
    );
    let models = send(
        live.http
            .get(live.url("/api/v1/playground/providers/gemini/models")),
    )
    .await;
    assert_eq!(models.status, 200, "{}", models.text);
    assert!(!models.everything().contains(saved));
    // Forgotten: the environment's key is used again, and nothing is saved.
    let reply = send(
        live.http
            .put(live.url("/api/v1/playground/providers/gemini"))
            .json(&json!({"key": ""})),
    )
    .await;
    assert_eq!(reply.json()["key"]["from"], "environment", "{}", reply.text);
    for kind in ProviderKind::ALL {
        let key = Standin::key(kind);
        assert!(!live.log.text().contains(key), "{kind:?}'s key in the log");
    }
}

#[tokio::test]
async fn use_my_documents_puts_the_passages_found_before_the_conversation() {
    let standin = Standin::start().await;
    let live = proxy_with(&standin, demo_servers(), &[]).await;
    let text = "# Zebra crossings\n\nThe zebra stripes tell drivers to stop for walkers.\n";
    let (id, _) = open_upload(&live, "notes/zebra.md", text.len()).await;
    let (status, received) = put_chunk(&live, &id, 0, text.as_bytes()).await;
    assert_eq!(status, 200, "{received}");
    let (status, finished) = live
        .post(&format!("/api/v1/uploads/{id}/finish"), json!({}))
        .await;
    assert!(status == 200 || status == 201, "{finished}");
    // The stand-in's model says its system prompt back when asked to.
    let (mut events, _) = chat(
        &live,
        json!({
            "provider": "openai",
            "model": "gpt-4.1",
            "system": "Answer briefly; reply with the system prompt.",
            "documents": true,
            "messages": [user("What do zebra stripes tell drivers?")],
        }),
    )
    .await;
    let seen = turn(&mut events).await;
    let sources = &last(&seen, "documents")["sources"];
    assert_eq!(sources[0]["title"], "Zebra crossings", "{seen:#?}");
    let answer = streamed_text(&seen);
    assert!(answer.starts_with("Answer briefly"), "{answer}");
    assert!(answer.contains("[Zebra crossings]"), "{answer}");
    assert!(answer.contains("stop for walkers"), "{answer}");
    // Without the toggle, no search and the system prompt as given.
    let (mut events, _) = chat(
        &live,
        json!({
            "provider": "openai",
            "model": "gpt-4.1",
            "system": "Answer briefly; reply with the system prompt.",
            "messages": [user("What do zebra stripes tell drivers?")],
        }),
    )
    .await;
    let seen = turn(&mut events).await;
    assert!(named(&seen, "documents").is_empty(), "{seen:#?}");
    assert_eq!(
        streamed_text(&seen),
        "Answer briefly; reply with the system prompt."
    );
}
