//! Stand-ins for the language-model providers the playground talks to, served by one axum server
//! in the test process: Anthropic's Messages API, OpenAI's Chat Completions (also as xAI serves
//! it, and as an OpenAI-compatible local server such as Ollama serves it) and Google's Gemini
//! `generateContent`, each under its own prefix. Each speaks its provider's HTTP API as the
//! provider's reference documents it and as the provider answers in practice: its authentication
//! and its answer to a wrong or missing key; its limits on tools (how many, which names, which
//! schema keywords and shapes) and on the order of tool calls and results in a conversation, each
//! refused with the provider's own status, error type and message; its streaming format
//! (Anthropic's events, OpenAI's chunks with tool-call fragments, Gemini's server-sent responses),
//! cut so that a client must reassemble; its rate-limit, overload and context-length answers when
//! told to ([`Standin::fail_next`]). Behind all five sits one scripted model, computed from the
//! conversation it is sent (see [`Standin`]), so a test proves that tool results were carried
//! back. Every request is recorded.

#![allow(dead_code, reason = "each test uses a different part of the stand-in")]
#![allow(
    clippy::result_large_err,
    reason = "an error here is the response to send, once per request"
)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use pluggedin_mcp_proxy::llm::ProviderKind;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

/// The Anthropic key the stand-in accepts (`x-api-key`).
pub const KEY_ANTHROPIC: &str = concat!(
    "sk-ant-api03-PtYgjmUhBel31iEl2hpChYgCfrL1spNxnyVmihA_2O76UMFxFkM_R5Kjp1vRt-1fjORS_6ilI8i",
    "hN5KXSc7Tvo-_hBKqFAA"
);
/// The OpenAI project key the stand-in accepts (`Authorization: Bearer`).
pub const KEY_OPENAI: &str = concat!(
    "sk-proj-YY_kv5ZJr3J1TWDtkwtDDb-xHKas1VOqg6YYZYn9ZhyiA4uoRgnatmUdjAWtGSU8po-799Nksn",
    "T3BlbkFJRH9ucAUsdMlHUvTCQCyEZDz_TddJ8HyS5SUkCnD8zRA9a9SkpXz9w3QlY7Zkuvqdt7s8Stqcbn"
);
/// The Gemini key the stand-in accepts (`x-goog-api-key` or `?key=`).
pub const KEY_GEMINI: &str = "AIzaSyr3yBdGBLEPH1qhT61qtc4xatws8phP9nh";
/// The xAI key the stand-in accepts (`Authorization: Bearer`).
pub const KEY_XAI: &str =
    "xai-rcXgGCJbW56eCuNGMGmSrCGIZEG8pSH4487q7J58m1CiAhzCueQpBenQtYh5Xj8TPQxjq4i9DoV8gz4F";
/// What clients conventionally send to a local server; the stand-in, like Ollama, takes any key
/// or none.
pub const KEY_COMPATIBLE: &str = "ollama";

/// One request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub provider: ProviderKind,
    pub method: String,
    /// The whole path, prefix included: `/anthropic/v1/messages`.
    pub path: String,
    pub query: String,
    /// Lower-case names.
    pub headers: BTreeMap<String, String>,
    /// The JSON body; a body that is not JSON as a string; no body as null.
    pub body: Value,
}

/// A provider's answer to give instead of a generation, once ([`Standin::fail_next`]).
#[derive(Debug, Clone)]
pub enum Failure {
    /// The provider's 429, with its body and headers (`retry-after` where it sends one).
    RateLimit,
    /// The provider's "overloaded" (Anthropic 529, the others 503).
    Overloaded,
    /// The provider's refusal of a conversation longer than the model's context.
    ContextTooLong,
    /// This status and body, as given.
    Status(u16, Value),
}

#[derive(Default)]
struct Inner {
    requests: Mutex<Vec<Recorded>>,
    failures: Mutex<HashMap<ProviderKind, VecDeque<Failure>>>,
    /// Feeds every id the stand-in makes (messages, tool calls, request ids), so none repeats.
    counter: AtomicU64,
}

impl Inner {
    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn id(&self, len: usize) -> String {
        ident(self.next(), len)
    }

    fn take_failure(&self, kind: ProviderKind) -> Option<Failure> {
        self.failures
            .lock()
            .unwrap()
            .get_mut(&kind)
            .and_then(VecDeque::pop_front)
    }
}

/// The running stand-in; dropping it stops the server.
///
/// The scripted model behind every provider answers from the conversation alone:
/// - a system prompt containing `reply with the system prompt` is answered with that prompt;
/// - otherwise the first user text with a line starting `plan:` gives the plan: steps separated
///   by ` | `, each `TOOL JSON` (one call), `TOOL JSON & TOOL JSON` (two calls in one turn) or
///   `answer TEXT`. With k tool results in the conversation, the model takes the step that
///   follows the first k calls; after the last step it answers `Done.`. `$n` in a JSON string or
///   in TEXT stands for the text of the n-th tool result of the conversation. A step naming a
///   tool the request does not declare is answered `I do not have a tool named X.`;
/// - with no plan, the model answers `You said: ` and the last user text.
///
/// A text answer longer (in words) than the request's output-token limit is cut there, and the
/// provider says so (`max_tokens`, `length`, `MAX_TOKENS`).
pub struct Standin {
    inner: Arc<Inner>,
    pub addr: SocketAddr,
    stop: CancellationToken,
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Standin {
    pub async fn start() -> Standin {
        let inner = Arc::new(Inner::default());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        let serving = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(serving.cancelled_owned())
                .await;
        });
        Standin { inner, addr, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base URL to give the client for `kind`, as its default base URL is shaped
    /// (`https://api.openai.com/v1` → `{url}/openai/v1`).
    pub fn base_url(&self, kind: ProviderKind) -> String {
        let prefix = match kind {
            ProviderKind::Anthropic => "/anthropic",
            ProviderKind::OpenAi => "/openai/v1",
            ProviderKind::Xai => "/xai/v1",
            ProviderKind::Gemini => "/gemini",
            ProviderKind::Compatible => "/local/v1",
        };
        format!("{}{prefix}", self.url())
    }

    /// The key the stand-in accepts for `kind`.
    pub fn key(kind: ProviderKind) -> &'static str {
        match kind {
            ProviderKind::Anthropic => KEY_ANTHROPIC,
            ProviderKind::OpenAi => KEY_OPENAI,
            ProviderKind::Xai => KEY_XAI,
            ProviderKind::Gemini => KEY_GEMINI,
            ProviderKind::Compatible => KEY_COMPATIBLE,
        }
    }

    /// The model each provider's stand-in offers first (its list has others).
    pub fn model(kind: ProviderKind) -> &'static str {
        kind.default_model()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().unwrap().clone()
    }

    pub fn requests_to(&self, kind: ProviderKind) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|request| request.provider == kind)
            .collect()
    }

    /// The next generation request to `kind` (a message, a chat completion, a `generateContent`;
    /// not a model list) that passes the key check and has a JSON body gets `failure` instead of
    /// an answer, before anything else in it is checked. Calls queue: two calls fail the next two.
    pub fn fail_next(&self, kind: ProviderKind, failure: Failure) {
        self.inner
            .failures
            .lock()
            .unwrap()
            .entry(kind)
            .or_default()
            .push_back(failure);
    }
}

// ---------------------------------------------------------------------------------------------
// Routing and plumbing

struct Incoming {
    kind: ProviderKind,
    method: Method,
    /// The path after the provider's prefix: `/v1/messages`, `/chat/completions`.
    rest: String,
    query: String,
    headers: BTreeMap<String, String>,
    raw: Bytes,
    json: Option<Value>,
}

impl Incoming {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn query_param(&self, key: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }
}

fn route(path: &str) -> Option<(ProviderKind, &str)> {
    [
        ("/anthropic", ProviderKind::Anthropic),
        ("/openai/v1", ProviderKind::OpenAi),
        ("/xai/v1", ProviderKind::Xai),
        ("/gemini", ProviderKind::Gemini),
        ("/local/v1", ProviderKind::Compatible),
    ]
    .into_iter()
    .find_map(|(prefix, kind)| {
        let rest = path.strip_prefix(prefix)?;
        (rest.is_empty() || rest.starts_with('/')).then_some((kind, rest))
    })
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let Some((kind, rest)) = route(&path) else {
        return (StatusCode::NOT_FOUND, "no provider here").into_response();
    };
    let headers: BTreeMap<String, String> = headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        })
        .collect();
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let recorded_body = match &json {
        Some(value) => value.clone(),
        None if body.is_empty() => Value::Null,
        None => Value::String(String::from_utf8_lossy(&body).into_owned()),
    };
    let query = uri.query().unwrap_or("").to_owned();
    inner.requests.lock().unwrap().push(Recorded {
        provider: kind,
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        headers: headers.clone(),
        body: recorded_body,
    });
    let request = Incoming {
        kind,
        method,
        rest: rest.to_owned(),
        query,
        headers,
        raw: body,
        json,
    };
    match kind {
        ProviderKind::Anthropic => anthropic(&inner, &request),
        ProviderKind::Gemini => gemini(&inner, &request),
        ProviderKind::OpenAi | ProviderKind::Xai | ProviderKind::Compatible => {
            openai(&inner, &request)
        }
    }
}

fn reply(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

fn with_headers(mut response: Response, headers: &[(&str, String)]) -> Response {
    for (name, value) in headers {
        response.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    response
}

/// A streamed body, one write per chunk (the task yields between them, so they tend to reach
/// the client as separate reads; a client must not count on either).
fn stream(content_type: &str, chunks: Vec<String>, headers: &[(&str, String)]) -> Response {
    let body = futures::stream::unfold(chunks.into_iter(), |mut chunks| async move {
        let chunk = chunks.next()?;
        tokio::task::yield_now().await;
        Some((Ok::<_, Infallible>(Bytes::from(chunk)), chunks))
    });
    let mut response = Response::new(Body::from_stream(body));
    let mut all = vec![
        ("content-type", content_type.to_owned()),
        ("cache-control", "no-cache".to_owned()),
    ];
    all.extend(headers.iter().map(|(name, value)| (*name, value.clone())));
    response = with_headers(response, &all);
    response
}

/// A deterministic id of `len` characters from `[A-Za-z0-9]`.
fn ident(seed: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x2545_F491_4F6C_DD1D;
    (0..len)
        .map(|_| {
            x ^= x >> 33;
            x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
            x ^= x >> 29;
            char::from(ALPHABET[(x % 62) as usize])
        })
        .collect()
}

/// A fixed clock for `created` fields.
const CREATED: u64 = 1_767_225_600;

// ---------------------------------------------------------------------------------------------
// The models each provider lists

struct Model {
    id: &'static str,
    alias: Option<&'static str>,
    name: &'static str,
    /// Takes part in a conversation (an embedding model does not).
    chat: bool,
}

const fn model(id: &'static str, alias: Option<&'static str>, name: &'static str) -> Model {
    Model {
        id,
        alias,
        name,
        chat: true,
    }
}

const ANTHROPIC_MODELS: &[Model] = &[
    model(
        "claude-sonnet-4-5-20250929",
        Some("claude-sonnet-4-5"),
        "Claude Sonnet 4.5",
    ),
    model(
        "claude-haiku-4-5-20251001",
        Some("claude-haiku-4-5"),
        "Claude Haiku 4.5",
    ),
    model(
        "claude-opus-4-1-20250805",
        Some("claude-opus-4-1"),
        "Claude Opus 4.1",
    ),
];

const OPENAI_MODELS: &[Model] = &[
    model("gpt-4.1-2025-04-14", Some("gpt-4.1"), "GPT-4.1"),
    model(
        "gpt-4.1-mini-2025-04-14",
        Some("gpt-4.1-mini"),
        "GPT-4.1 mini",
    ),
    model("gpt-4o-2024-08-06", Some("gpt-4o"), "GPT-4o"),
    model("gpt-5-2025-08-07", Some("gpt-5"), "GPT-5"),
    Model {
        id: "text-embedding-3-small",
        alias: None,
        name: "text-embedding-3-small",
        chat: false,
    },
];

const XAI_MODELS: &[Model] = &[
    model("grok-4-0709", Some("grok-4"), "Grok 4"),
    model("grok-3", None, "Grok 3"),
    model("grok-3-mini", None, "Grok 3 Mini"),
    model("grok-code-fast-1", None, "Grok Code Fast 1"),
];

const GEMINI_MODELS: &[Model] = &[
    model("gemini-2.5-flash", None, "Gemini 2.5 Flash"),
    model("gemini-2.5-pro", None, "Gemini 2.5 Pro"),
    model("gemini-2.5-flash-lite", None, "Gemini 2.5 Flash-Lite"),
    model("gemini-3-pro-preview", None, "Gemini 3 Pro Preview"),
    model("gemini-3-flash-preview", None, "Gemini 3 Flash Preview"),
    Model {
        id: "gemini-embedding-001",
        alias: None,
        name: "Gemini Embedding 001",
        chat: false,
    },
];

/// Ollama names a model without a tag as its `latest`.
const LOCAL_MODELS: &[Model] = &[
    model("llama3.2:latest", Some("llama3.2"), "llama3.2:latest"),
    model("qwen3:8b", None, "qwen3:8b"),
];

fn models(kind: ProviderKind) -> &'static [Model] {
    match kind {
        ProviderKind::Anthropic => ANTHROPIC_MODELS,
        ProviderKind::OpenAi => OPENAI_MODELS,
        ProviderKind::Xai => XAI_MODELS,
        ProviderKind::Gemini => GEMINI_MODELS,
        ProviderKind::Compatible => LOCAL_MODELS,
    }
}

fn find_model(kind: ProviderKind, requested: &str) -> Option<&'static Model> {
    models(kind)
        .iter()
        .find(|model| model.id == requested || model.alias == Some(requested))
}

// ---------------------------------------------------------------------------------------------
// The scripted model

enum Event {
    User(String),
    Call { name: String, arguments: Value },
    Result(String),
}

/// A conversation as the model reads it, whatever the provider.
#[derive(Default)]
struct Conversation {
    system: Option<String>,
    events: Vec<Event>,
    /// The tools the request declares, by the names the provider was given.
    tools: Vec<String>,
    max_tokens: Option<u64>,
    input_tokens: u64,
}

enum Answer {
    Text { text: String, cut: bool },
    Calls(Vec<(String, Value)>),
}

impl Answer {
    fn output_tokens(&self) -> u64 {
        match self {
            Answer::Text { text, .. } => words(text),
            Answer::Calls(calls) => calls
                .iter()
                .map(|(_, arguments)| 12 + arguments.to_string().len() as u64 / 4)
                .sum(),
        }
    }
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count().max(1) as u64
}

fn input_tokens(raw: &[u8]) -> u64 {
    raw.len() as u64 / 4 + 3
}

fn think(conversation: &Conversation) -> Answer {
    let text = match plan_step(conversation) {
        Step::Text(text) => text,
        Step::Calls(calls) => return Answer::Calls(calls),
    };
    match conversation.max_tokens {
        Some(limit) if words(&text) > limit => {
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            let cut: Vec<&str> = text.split_whitespace().take(limit).collect();
            Answer::Text {
                text: cut.join(" "),
                cut: true,
            }
        }
        _ => Answer::Text { text, cut: false },
    }
}

enum Step {
    Text(String),
    Calls(Vec<(String, Value)>),
}

fn plan_step(conversation: &Conversation) -> Step {
    if let Some(system) = &conversation.system
        && system.contains("reply with the system prompt")
    {
        return Step::Text(system.clone());
    }
    let results: Vec<&str> = conversation
        .events
        .iter()
        .filter_map(|event| match event {
            Event::Result(text) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let plan = conversation.events.iter().find_map(|event| match event {
        Event::User(text) => text
            .lines()
            .find_map(|line| line.trim_start().strip_prefix("plan:")),
        _ => None,
    });
    let Some(plan) = plan else {
        let last = conversation
            .events
            .iter()
            .rev()
            .find_map(|event| match event {
                Event::User(text) => Some(text.as_str()),
                _ => None,
            })
            .unwrap_or("");
        return Step::Text(format!("You said: {last}"));
    };
    let mut done = 0;
    for step in plan
        .split(" | ")
        .map(str::trim)
        .filter(|step| !step.is_empty())
    {
        if step == "answer" {
            return Step::Text(String::new());
        }
        if let Some(text) = step.strip_prefix("answer ") {
            return Step::Text(substitute(text, &results));
        }
        let parts: Vec<&str> = step.split(" & ").map(str::trim).collect();
        if done + parts.len() <= results.len() {
            done += parts.len();
            continue;
        }
        let mut calls = Vec::new();
        for part in parts {
            let (name, arguments) = part
                .split_once(char::is_whitespace)
                .map_or((part, "{}"), |(name, rest)| (name, rest.trim()));
            let Ok(mut arguments) = serde_json::from_str::<Value>(arguments) else {
                return Step::Text(format!("I cannot read the step {part:?} of the plan."));
            };
            if !conversation.tools.iter().any(|tool| tool == name) {
                return Step::Text(format!("I do not have a tool named {name}."));
            }
            substitute_json(&mut arguments, &results);
            calls.push((name.to_owned(), arguments));
        }
        return Step::Calls(calls);
    }
    Step::Text("Done.".to_owned())
}

/// `$n` → the text of the n-th tool result (1-based); anything else is kept.
fn substitute(text: &str, results: &[&str]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let index: Option<usize> = after[..digits].parse().ok();
        match index
            .and_then(|n| n.checked_sub(1))
            .and_then(|n| results.get(n))
        {
            Some(result) => {
                out.push_str(result);
                rest = &after[digits..];
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn substitute_json(value: &mut Value, results: &[&str]) {
    match value {
        Value::String(text) => *text = substitute(text, results),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| substitute_json(item, results)),
        Value::Object(fields) => fields
            .values_mut()
            .for_each(|item| substitute_json(item, results)),
        _ => {}
    }
}

/// Text cut into pieces of a word or two (at least two pieces for two characters or more).
fn text_pieces(text: &str) -> Vec<String> {
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    let mut pieces: Vec<String> = words.chunks(2).map(|chunk| chunk.concat()).collect();
    if pieces.len() < 2 {
        pieces = halves(text);
    }
    pieces
}

/// JSON text cut every few characters (at least two pieces).
fn json_pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let pieces: Vec<String> = chars
        .chunks(7)
        .map(|chunk| chunk.iter().collect())
        .collect();
    if pieces.len() < 2 {
        halves(text)
    } else {
        pieces
    }
}

fn halves(text: &str) -> Vec<String> {
    let middle = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(text.len(), |(at, _)| at);
    let (first, second) = text.split_at(middle);
    [first, second]
        .into_iter()
        .filter(|piece| !piece.is_empty())
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Anthropic: Messages API

fn anthropic_error(inner: &Inner, status: u16, kind: &str, message: impl Into<String>) -> Response {
    let request_id = format!("req_011C{}", inner.id(20));
    with_headers(
        reply(
            status,
            json!({"type": "error", "error": {"type": kind, "message": message.into()},
                   "request_id": request_id}),
        ),
        &[("request-id", request_id)],
    )
}

fn anthropic_invalid(inner: &Inner, message: impl Into<String>) -> Response {
    anthropic_error(inner, 400, "invalid_request_error", message)
}

fn anthropic(inner: &Inner, request: &Incoming) -> Response {
    match request.header("x-api-key") {
        None => {
            return anthropic_error(
                inner,
                401,
                "authentication_error",
                "x-api-key header is required",
            );
        }
        Some(key) if key != KEY_ANTHROPIC => {
            return anthropic_error(inner, 401, "authentication_error", "invalid x-api-key");
        }
        Some(_) => {}
    }
    match request.header("anthropic-version") {
        None => return anthropic_invalid(inner, "anthropic-version: header is required"),
        Some(version) if !matches!(version, "2023-06-01" | "2023-01-01") => {
            return anthropic_invalid(
                inner,
                format!("anthropic-version: {version:?} is not a valid version"),
            );
        }
        Some(_) => {}
    }
    let listed = |model: &Model| {
        json!({"type": "model", "id": model.id, "display_name": model.name,
               "created_at": "2025-09-29T00:00:00Z"})
    };
    match (request.method.as_str(), request.rest.as_str()) {
        ("GET", "/v1/models") => {
            let data: Vec<Value> = ANTHROPIC_MODELS.iter().map(listed).collect();
            reply(
                200,
                json!({"data": data, "has_more": false,
                       "first_id": ANTHROPIC_MODELS[0].id,
                       "last_id": ANTHROPIC_MODELS[ANTHROPIC_MODELS.len() - 1].id}),
            )
        }
        ("GET", path) if path.starts_with("/v1/models/") => {
            let id = &path["/v1/models/".len()..];
            match find_model(ProviderKind::Anthropic, id) {
                Some(model) => reply(200, listed(model)),
                None => anthropic_error(inner, 404, "not_found_error", format!("model: {id}")),
            }
        }
        ("POST", "/v1/messages") => match anthropic_messages(inner, request) {
            Ok(response) | Err(response) => response,
        },
        _ => anthropic_error(inner, 404, "not_found_error", "Not Found"),
    }
}

fn anthropic_messages(inner: &Inner, request: &Incoming) -> Result<Response, Response> {
    let Some(Value::Object(body)) = &request.json else {
        return Err(anthropic_invalid(
            inner,
            "There was an error parsing the body of your request: it is not a JSON object.",
        ));
    };
    if let Some(failure) = inner.take_failure(ProviderKind::Anthropic) {
        return Err(anthropic_failure(inner, failure));
    }
    let required = |field: &str| {
        if body.contains_key(field) {
            Ok(())
        } else {
            Err(anthropic_invalid(inner, format!("{field}: Field required")))
        }
    };
    required("max_tokens")?;
    required("messages")?;
    required("model")?;
    let max_tokens = body["max_tokens"]
        .as_u64()
        .ok_or_else(|| anthropic_invalid(inner, "max_tokens: Input should be a valid integer"))?;
    let Some(messages) = body["messages"].as_array() else {
        return Err(anthropic_invalid(
            inner,
            "messages: Input should be a valid list",
        ));
    };
    for (index, message) in messages.iter().enumerate() {
        let role = message["role"].as_str().unwrap_or("");
        if role != "user" && role != "assistant" {
            return Err(anthropic_invalid(
                inner,
                format!("messages.{index}.role: Input should be 'user' or 'assistant'"),
            ));
        }
    }
    let mut tools = Vec::new();
    for (index, tool) in body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if tool.get("type").is_some_and(|kind| kind != "custom") {
            // A server tool (web search, code execution): not the stand-in's business.
            continue;
        }
        let at = format!("tools.{index}.custom");
        let name = tool["name"].as_str().unwrap_or("");
        if !plain_name(name, 64) {
            return Err(anthropic_invalid(
                inner,
                format!("{at}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"),
            ));
        }
        let Some(schema) = tool.get("input_schema") else {
            return Err(anthropic_invalid(
                inner,
                format!("{at}.input_schema: Field required"),
            ));
        };
        if schema["type"] != "object" {
            return Err(anthropic_invalid(
                inner,
                format!("{at}.input_schema.type: Input should be 'object'"),
            ));
        }
        let keys_ok = schema
            .get("properties")
            .and_then(Value::as_object)
            .is_none_or(|properties| {
                properties.keys().all(|key| {
                    (1..=64).contains(&key.len())
                        && key
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
                })
            });
        if !keys_ok {
            return Err(anthropic_invalid(
                inner,
                format!(
                    "{at}.input_schema.properties: Property keys should match pattern \
                     '^[a-zA-Z0-9_.-]{{1,64}}$'"
                ),
            ));
        }
        tools.push(name.to_owned());
    }
    if tools.iter().collect::<HashSet<_>>().len() < tools.len() {
        return Err(anthropic_invalid(
            inner,
            "tools: Tool names must be unique.",
        ));
    }
    let requested = body["model"].as_str().unwrap_or("");
    let model = find_model(ProviderKind::Anthropic, requested).ok_or_else(|| {
        anthropic_error(inner, 404, "not_found_error", format!("model: {requested}"))
    })?;
    anthropic_conversation_rules(inner, messages)?;

    let mut conversation = Conversation {
        system: match &body.get("system") {
            Some(Value::String(text)) => Some(text.clone()),
            Some(Value::Array(blocks)) => Some(block_texts(blocks)),
            _ => None,
        },
        tools,
        max_tokens: Some(max_tokens),
        input_tokens: input_tokens(&request.raw),
        ..Conversation::default()
    };
    for message in messages {
        let user = message["role"] == "user";
        match &message["content"] {
            Value::String(text) if user => conversation.events.push(Event::User(text.clone())),
            Value::Array(blocks) => {
                for block in blocks {
                    match block["type"].as_str() {
                        Some("text") if user => conversation
                            .events
                            .push(Event::User(block["text"].as_str().unwrap_or("").to_owned())),
                        Some("tool_result") => {
                            let text = match &block["content"] {
                                Value::String(text) => text.clone(),
                                Value::Array(blocks) => block_texts(blocks),
                                _ => String::new(),
                            };
                            conversation.events.push(Event::Result(text));
                        }
                        Some("tool_use") => conversation.events.push(Event::Call {
                            name: block["name"].as_str().unwrap_or("").to_owned(),
                            arguments: block["input"].clone(),
                        }),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let answer = think(&conversation);
    let streamed = body.get("stream") == Some(&Value::Bool(true));
    Ok(anthropic_answer(
        inner,
        model.id,
        &conversation,
        &answer,
        streamed,
    ))
}

fn block_texts(blocks: &[Value]) -> String {
    blocks
        .iter()
        .filter(|block| block["type"] == "text")
        .filter_map(|block| block["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `^[a-zA-Z0-9_-]{1,max}$`.
fn plain_name(name: &str, max: usize) -> bool {
    (1..=max).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What Anthropic checks of the conversation's shape: a first user message, no empty content,
/// every `tool_use` answered by `tool_result` blocks at the start of the very next message, no
/// `tool_result` without its `tool_use` in the message before.
fn anthropic_conversation_rules(inner: &Inner, messages: &[Value]) -> Result<(), Response> {
    if messages
        .first()
        .is_some_and(|first| first["role"] != "user")
    {
        return Err(anthropic_invalid(
            inner,
            "messages: first message must use the \"user\" role",
        ));
    }
    let blocks = |message: &Value| -> Vec<Value> {
        match &message["content"] {
            Value::String(text) if text.is_empty() => Vec::new(),
            Value::String(text) => vec![json!({"type": "text", "text": text})],
            Value::Array(blocks) => blocks.clone(),
            _ => Vec::new(),
        }
    };
    let last = messages.len().saturating_sub(1);
    for (index, message) in messages.iter().enumerate() {
        let content = blocks(message);
        let final_assistant = index == last && message["role"] == "assistant";
        if content.is_empty() && !final_assistant {
            return Err(anthropic_invalid(
                inner,
                format!(
                    "messages.{index}: all messages must have non-empty content except for the \
                     optional final assistant message"
                ),
            ));
        }
        for block in &content {
            if block["type"] == "text" {
                let text = block["text"].as_str().unwrap_or("");
                if text.is_empty() && !(final_assistant && content.len() == 1) {
                    return Err(anthropic_invalid(
                        inner,
                        "messages: text content blocks must be non-empty",
                    ));
                }
                if !text.is_empty() && text.trim().is_empty() {
                    return Err(anthropic_invalid(
                        inner,
                        "messages: text content blocks must contain non-whitespace text",
                    ));
                }
            }
        }
        // Results must answer a tool_use of the message just before.
        let previous_uses: Vec<Value> = match index.checked_sub(1) {
            Some(previous) if messages[previous]["role"] == "assistant" => {
                blocks(&messages[previous])
                    .into_iter()
                    .filter(|block| block["type"] == "tool_use")
                    .map(|block| block["id"].clone())
                    .collect()
            }
            _ => Vec::new(),
        };
        for (at, block) in content.iter().enumerate() {
            if block["type"] == "tool_result" && !previous_uses.contains(&block["tool_use_id"]) {
                let id = block["tool_use_id"].as_str().unwrap_or("");
                return Err(anthropic_invalid(
                    inner,
                    format!(
                        "messages.{index}.content.{at}: unexpected `tool_use_id` found in \
                         `tool_result` blocks: {id}. Each `tool_result` block must have a \
                         corresponding `tool_use` block in the previous message."
                    ),
                ));
            }
        }
        // Every tool_use needs its result in the leading tool_result blocks of the next one.
        if message["role"] == "assistant" {
            let uses: Vec<&str> = content
                .iter()
                .filter(|block| block["type"] == "tool_use")
                .filter_map(|block| block["id"].as_str())
                .collect();
            if uses.is_empty() {
                continue;
            }
            let answered: Vec<String> = messages
                .get(index + 1)
                .filter(|next| next["role"] == "user")
                .map(|next| {
                    blocks(next)
                        .iter()
                        .take_while(|block| block["type"] == "tool_result")
                        .filter_map(|block| block["tool_use_id"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let missing: Vec<&str> = uses
                .into_iter()
                .filter(|id| !answered.iter().any(|answered| answered == id))
                .collect();
            if !missing.is_empty() {
                return Err(anthropic_invalid(
                    inner,
                    format!(
                        "messages.{index}: `tool_use` ids were found without `tool_result` \
                         blocks immediately after: {}. Each `tool_use` block must have a \
                         corresponding `tool_result` block in the next message.",
                        missing.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn anthropic_failure(inner: &Inner, failure: Failure) -> Response {
    match failure {
        Failure::RateLimit => with_headers(
            anthropic_error(
                inner,
                429,
                "rate_limit_error",
                "This request would exceed the rate limit for your organization \
                 (6f1c2a9e-3b7d-4e58-9a0c-5d2e8f4b1a73) of 30,000 input tokens per minute. For \
                 details, refer to: https://docs.anthropic.com/en/api/rate-limits. You can see \
                 the response headers for current usage. Please reduce the prompt length or the \
                 maximum tokens requested, or try again later. You may also contact sales at \
                 https://www.anthropic.com/contact-sales to discuss your options for a rate \
                 limit increase.",
            ),
            &[
                ("retry-after", "12".to_owned()),
                ("x-should-retry", "true".to_owned()),
                ("anthropic-ratelimit-input-tokens-limit", "30000".to_owned()),
                ("anthropic-ratelimit-input-tokens-remaining", "0".to_owned()),
                (
                    "anthropic-ratelimit-input-tokens-reset",
                    "2026-01-01T00:00:12Z".to_owned(),
                ),
            ],
        ),
        Failure::Overloaded => with_headers(
            anthropic_error(inner, 529, "overloaded_error", "Overloaded"),
            &[("x-should-retry", "true".to_owned())],
        ),
        Failure::ContextTooLong => {
            anthropic_invalid(inner, "prompt is too long: 208310 tokens > 200000 maximum")
        }
        Failure::Status(status, body) => reply(status, body),
    }
}

fn anthropic_answer(
    inner: &Inner,
    model: &str,
    conversation: &Conversation,
    answer: &Answer,
    streamed: bool,
) -> Response {
    let id = format!("msg_01{}", inner.id(22));
    let input = conversation.input_tokens;
    let output = answer.output_tokens();
    let (stop, content): (&str, Vec<Value>) = match answer {
        Answer::Text { text, cut } => (
            if *cut { "max_tokens" } else { "end_turn" },
            vec![json!({"type": "text", "text": text})],
        ),
        Answer::Calls(calls) => (
            "tool_use",
            calls
                .iter()
                .map(|(name, arguments)| {
                    json!({"type": "tool_use", "id": format!("toolu_01{}", inner.id(22)),
                           "name": name, "input": arguments})
                })
                .collect(),
        ),
    };
    let request_id = format!("req_011C{}", inner.id(20));
    let headers = [("request-id", request_id)];
    if !streamed {
        let usage = json!({"input_tokens": input, "cache_creation_input_tokens": 0,
                           "cache_read_input_tokens": 0, "output_tokens": output});
        return with_headers(
            reply(
                200,
                json!({"id": id, "type": "message", "role": "assistant", "model": model,
                       "content": content, "stop_reason": stop, "stop_sequence": null,
                       "usage": usage}),
            ),
            &headers,
        );
    }
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut events = vec![event(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 1}}}),
    )];
    for (index, block) in content.iter().enumerate() {
        let (start, deltas): (Value, Vec<Value>) = if block["type"] == "text" {
            let text = block["text"].as_str().unwrap_or("");
            (
                json!({"type": "text", "text": ""}),
                text_pieces(text)
                    .into_iter()
                    .map(|piece| json!({"type": "text_delta", "text": piece}))
                    .collect(),
            )
        } else {
            let mut deltas = vec![json!({"type": "input_json_delta", "partial_json": ""})];
            deltas.extend(
                json_pieces(&block["input"].to_string())
                    .into_iter()
                    .map(|piece| json!({"type": "input_json_delta", "partial_json": piece})),
            );
            (
                json!({"type": "tool_use", "id": block["id"], "name": block["name"],
                       "input": {}}),
                deltas,
            )
        };
        events.push(event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        if index == 0 {
            events.push(event("ping", json!({"type": "ping"})));
        }
        for delta in deltas {
            events.push(event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": delta}),
            ));
        }
        events.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
    }
    events.push(event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
               "usage": {"output_tokens": output}}),
    ));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    stream("text/event-stream; charset=utf-8", events, &headers)
}

// ---------------------------------------------------------------------------------------------
// OpenAI Chat Completions, as OpenAI, xAI and an OpenAI-compatible local server serve it

/// One refusal, in the shape of the provider that gives it: OpenAI's `{error: {message, type,
/// param, code}}` (a local server's too), xAI's `{code, error}` with the gRPC status text.
struct Refusal {
    status: u16,
    message: String,
    kind: &'static str,
    param: Option<String>,
    code: Option<&'static str>,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
            kind: "invalid_request_error",
            param: None,
            code: None,
        }
    }

    fn param(mut self, param: impl Into<String>) -> Refusal {
        self.param = Some(param.into());
        self
    }

    fn code(mut self, code: &'static str) -> Refusal {
        self.code = Some(code);
        self
    }

    fn kind(mut self, kind: &'static str) -> Refusal {
        self.kind = kind;
        self
    }

    fn to(self, provider: ProviderKind) -> Response {
        match provider {
            ProviderKind::Xai => {
                let code = match self.status {
                    401 => "The request does not have valid authentication credentials",
                    403 => "The caller does not have permission to execute the specified operation",
                    404 => "Some requested entity was not found",
                    429 => "Some resource has been exhausted",
                    503 => "The service is currently unavailable",
                    _ => "Client specified an invalid argument",
                };
                reply(self.status, json!({"code": code, "error": self.message}))
            }
            _ => reply(
                self.status,
                json!({"error": {"message": self.message, "type": self.kind,
                                 "param": self.param, "code": self.code}}),
            ),
        }
    }
}

/// OpenAI's way of showing a wrong key: its first 8 and last 4 characters (a short one whole).
fn mask_openai(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 12 {
        return key.to_owned();
    }
    let head: String = chars[..8].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 12))
}

/// xAI's: the first 2 and last 2 characters.
fn mask_xai(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 4 {
        return "***".to_owned();
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}***{tail}")
}

fn openai(inner: &Inner, request: &Incoming) -> Response {
    match openai_route(inner, request) {
        Ok(response) => response,
        Err(refusal) => refusal.to(request.kind),
    }
}

fn openai_route(inner: &Inner, request: &Incoming) -> Result<Response, Refusal> {
    let kind = request.kind;
    let presented = request.header("authorization").map(|value| {
        value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .unwrap_or(value)
            .trim()
    });
    match (kind, presented) {
        (ProviderKind::OpenAi, None) => {
            return Err(Refusal::new(
                401,
                "You didn't provide an API key. You need to provide your API key in an \
                 Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), \
                 or as the password field (with blank username) if you're accessing the API \
                 from your browser and are prompted for a username and password. You can \
                 obtain an API key from https://platform.openai.com/account/api-keys.",
            ));
        }
        (ProviderKind::OpenAi, Some(key)) if key != KEY_OPENAI => {
            return Err(Refusal::new(
                401,
                format!(
                    "Incorrect API key provided: {}. You can find your API key at \
                     https://platform.openai.com/account/api-keys.",
                    mask_openai(key)
                ),
            )
            .code("invalid_api_key"));
        }
        (ProviderKind::Xai, None) => {
            return Err(Refusal::new(
                401,
                "No credentials presented. [WKE=unauthenticated:no-credentials]",
            ));
        }
        (ProviderKind::Xai, Some(key)) if key != KEY_XAI => {
            return Err(Refusal::new(
                400,
                format!(
                    "Incorrect API key provided: {}. You can obtain an API key from \
                     https://console.x.ai.",
                    mask_xai(key)
                ),
            ));
        }
        _ => {}
    }
    let listed = |id: &str| {
        let owner = match kind {
            ProviderKind::OpenAi => "system",
            ProviderKind::Xai => "xai",
            _ => "library",
        };
        json!({"id": id, "object": "model", "created": CREATED, "owned_by": owner})
    };
    match (request.method.as_str(), request.rest.as_str()) {
        ("GET", "/models") => {
            let mut data = Vec::new();
            for model in models(kind) {
                data.push(listed(model.id));
                // OpenAI lists an alias as a model of its own; Ollama and xAI list tags.
                if let (ProviderKind::OpenAi, Some(alias)) = (kind, model.alias) {
                    data.push(listed(alias));
                }
            }
            Ok(reply(200, json!({"object": "list", "data": data})))
        }
        ("GET", path) if path.starts_with("/models/") => {
            let id = &path["/models/".len()..];
            find_model(kind, id)
                .map(|_| reply(200, listed(id)))
                .ok_or_else(|| unknown_model(kind, id))
        }
        ("POST", "/chat/completions") => chat_completions(inner, request),
        (method, path) => Err(Refusal::new(
            404,
            format!("Invalid URL ({method} /v1{path})"),
        )),
    }
}

fn unknown_model(kind: ProviderKind, model: &str) -> Refusal {
    match kind {
        ProviderKind::OpenAi => Refusal::new(
            404,
            format!("The model `{model}` does not exist or you do not have access to it."),
        )
        .code("model_not_found"),
        ProviderKind::Xai => Refusal::new(
            404,
            format!(
                "The model {model} does not exist or your team does not have access to it. \
                 Please ensure you're using the correct API key. If you believe this is an \
                 error, contact support@x.ai."
            ),
        ),
        _ => Refusal::new(
            404,
            format!("model \"{model}\" not found, try pulling it first"),
        )
        .kind("api_error"),
    }
}

fn not_json(kind: ProviderKind, request: &Incoming) -> Refusal {
    match kind {
        ProviderKind::OpenAi => Refusal::new(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you \
             aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, \
             but what was sent was not valid JSON. If you have trouble figuring out how to fix \
             this, please contact us through our help center at help.openai.com.)",
        ),
        ProviderKind::Xai => Refusal::new(
            400,
            "Failed to parse the request body as JSON: expected value at line 1 column 1",
        ),
        _ => {
            let first = request.raw.first().map_or(' ', |&b| char::from(b));
            Refusal::new(
                400,
                format!("invalid character '{first}' looking for beginning of value"),
            )
        }
    }
}

fn openai_failure(kind: ProviderKind, model: &str, failure: Failure) -> Response {
    let (refusal, headers): (Refusal, Vec<(&str, String)>) = match (kind, failure) {
        (_, Failure::Status(status, body)) => return reply(status, body),
        (ProviderKind::Xai, Failure::RateLimit) => (
            Refusal::new(
                429,
                "Your team has exceeded its requests per minute rate limit for this model. \
                 Please slow down and try again later.",
            ),
            vec![("retry-after", "2".to_owned())],
        ),
        (_, Failure::RateLimit) => (
            Refusal::new(
                429,
                format!(
                    "Rate limit reached for {model} in organization org-4rV8bQm2Lx7TnZ1cKw9Hs3Ye \
                     on tokens per min (TPM): Limit 30000, Used 29512, Requested 1056. Please \
                     try again in 1.136s. Visit https://platform.openai.com/account/rate-limits \
                     to learn more."
                ),
            )
            .kind("tokens")
            .code("rate_limit_exceeded"),
            vec![
                ("retry-after", "2".to_owned()),
                ("x-ratelimit-limit-requests", "500".to_owned()),
                ("x-ratelimit-limit-tokens", "30000".to_owned()),
                ("x-ratelimit-remaining-requests", "499".to_owned()),
                ("x-ratelimit-remaining-tokens", "488".to_owned()),
                ("x-ratelimit-reset-requests", "120ms".to_owned()),
                ("x-ratelimit-reset-tokens", "1.136s".to_owned()),
            ],
        ),
        (ProviderKind::Compatible, Failure::Overloaded) => (
            Refusal::new(
                503,
                "server busy, please try again.  maximum pending requests exceeded",
            )
            .kind("api_error"),
            Vec::new(),
        ),
        (_, Failure::Overloaded) => (
            Refusal::new(
                503,
                "That model is currently overloaded with other requests. You can retry your \
                 request, or contact us through our help center at help.openai.com if the error \
                 persists. (Please include the request ID 7d1f0c6b2e9a4f3d8c5b1a0e9f8d7c6b in \
                 your message.)",
            )
            .kind("server_error"),
            Vec::new(),
        ),
        (ProviderKind::Xai, Failure::ContextTooLong) => (
            Refusal::new(
                400,
                "This model's maximum prompt length is 256000 but the request contains 261904 \
                 tokens.",
            ),
            Vec::new(),
        ),
        (_, Failure::ContextTooLong) => (
            Refusal::new(
                400,
                "This model's maximum context length is 128000 tokens. However, your messages \
                 resulted in 130043 tokens. Please reduce the length of the messages.",
            )
            .param("messages")
            .code("context_length_exceeded"),
            Vec::new(),
        ),
    };
    with_headers(refusal.to(kind), &headers)
}

fn chat_completions(inner: &Inner, request: &Incoming) -> Result<Response, Refusal> {
    let kind = request.kind;
    let Some(Value::Object(body)) = &request.json else {
        return Err(not_json(kind, request));
    };
    let requested = body.get("model").and_then(Value::as_str);
    if let Some(failure) = inner.take_failure(kind) {
        return Ok(openai_failure(kind, requested.unwrap_or(""), failure));
    }
    let Some(requested) = requested else {
        return Err(match kind {
            ProviderKind::OpenAi => Refusal::new(400, "you must provide a model parameter"),
            ProviderKind::Xai => Refusal::new(
                422,
                "Failed to deserialize the JSON body into the target type: missing field `model`",
            ),
            _ => Refusal::new(400, "model is required"),
        });
    };
    let messages = match body.get("messages") {
        Some(Value::Array(messages)) if !messages.is_empty() => messages,
        Some(Value::Array(_)) => {
            return Err(Refusal::new(
                400,
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but \
                 got an empty array instead.",
            )
            .param("messages")
            .code("empty_array"));
        }
        _ => {
            return Err(Refusal::new(400, "Missing required parameter: 'messages'.")
                .param("messages")
                .code("missing_required_parameter"));
        }
    };
    for (index, message) in messages.iter().enumerate() {
        let role = message["role"].as_str().unwrap_or("");
        let known = [
            "system",
            "developer",
            "user",
            "assistant",
            "tool",
            "function",
        ];
        if !known.contains(&role) {
            return Err(Refusal::new(
                400,
                format!(
                    "Invalid value: '{role}'. Supported values are: 'system', 'assistant', \
                     'user', 'function', 'tool', and 'developer'."
                ),
            )
            .param(format!("messages[{index}].role"))
            .code("invalid_value"));
        }
    }
    let tools = openai_tools(kind, body.get("tools"))?;
    if kind != ProviderKind::Compatible {
        tool_message_order(messages)?;
    }
    let model = find_model(kind, requested).ok_or_else(|| unknown_model(kind, requested))?;
    // OpenAI's reasoning models take `max_completion_tokens` only.
    let reasoning = model.id.starts_with("gpt-5")
        || (model.id.starts_with('o') && model.id[1..].starts_with(|c: char| c.is_ascii_digit()));
    if kind == ProviderKind::OpenAi && reasoning && body.contains_key("max_tokens") {
        return Err(Refusal::new(
            400,
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use \
             'max_completion_tokens' instead.",
        )
        .param("max_tokens")
        .code("unsupported_parameter"));
    }
    if !model.chat {
        return Err(Refusal::new(
            404,
            "This is not a chat model and thus not supported in the v1/chat/completions \
             endpoint. Did you mean to use v1/completions?",
        )
        .param("model"));
    }

    let mut conversation = Conversation {
        tools,
        max_tokens: body
            .get("max_completion_tokens")
            .or_else(|| body.get("max_tokens"))
            .and_then(Value::as_u64),
        input_tokens: input_tokens(&request.raw),
        ..Conversation::default()
    };
    let content_text = |content: &Value| match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter(|part| part["type"] == "text")
            .filter_map(|part| part["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    };
    let mut system = Vec::new();
    for message in messages {
        match message["role"].as_str().unwrap_or("") {
            "system" | "developer" => system.push(content_text(&message["content"])),
            "user" => conversation
                .events
                .push(Event::User(content_text(&message["content"]))),
            "tool" => conversation
                .events
                .push(Event::Result(content_text(&message["content"]))),
            "assistant" => {
                for call in message["tool_calls"].as_array().into_iter().flatten() {
                    let arguments = call["function"]["arguments"].as_str().unwrap_or("{}");
                    conversation.events.push(Event::Call {
                        name: call["function"]["name"].as_str().unwrap_or("").to_owned(),
                        arguments: serde_json::from_str(arguments).unwrap_or(Value::Null),
                    });
                }
            }
            _ => {}
        }
    }
    if !system.is_empty() {
        conversation.system = Some(system.join("\n"));
    }
    let answer = think(&conversation);
    let streamed = body.get("stream") == Some(&Value::Bool(true));
    let usage_chunk = body
        .get("stream_options")
        .is_some_and(|options| options["include_usage"] == true);
    Ok(openai_answer(
        inner,
        kind,
        model.id,
        &conversation,
        &answer,
        streamed,
        usage_chunk,
    ))
}

/// The tools a chat completion declares, checked as the provider checks them; their names.
fn openai_tools(kind: ProviderKind, tools: Option<&Value>) -> Result<Vec<String>, Refusal> {
    let tools = match tools {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(tools)) => tools,
        Some(_) => {
            return Err(
                Refusal::new(400, "Invalid type for 'tools': expected an array.")
                    .param("tools")
                    .code("invalid_type"),
            );
        }
    };
    match kind {
        ProviderKind::OpenAi if tools.len() > 128 => {
            return Err(Refusal::new(
                400,
                format!(
                    "Invalid 'tools': array too long. Expected an array with maximum length 128, \
                     but got an array with length {} instead.",
                    tools.len()
                ),
            )
            .param("tools")
            .code("array_above_max_length"));
        }
        ProviderKind::Xai if tools.len() > 200 => {
            return Err(Refusal::new(
                400,
                format!(
                    "A maximum of 200 tools can be provided, but the request has {}.",
                    tools.len()
                ),
            ));
        }
        _ => {}
    }
    let mut names = Vec::new();
    for (index, tool) in tools.iter().enumerate() {
        let function = &tool["function"];
        let name = function["name"].as_str().unwrap_or("");
        if kind == ProviderKind::OpenAi {
            for (present, field) in [
                (tool.get("type").is_some(), format!("tools[{index}].type")),
                (function.is_object(), format!("tools[{index}].function")),
                (
                    function.get("name").is_some(),
                    format!("tools[{index}].function.name"),
                ),
            ] {
                if !present {
                    return Err(Refusal::new(
                        400,
                        format!("Missing required parameter: '{field}'."),
                    )
                    .param(field)
                    .code("missing_required_parameter"));
                }
            }
        }
        if kind != ProviderKind::Compatible {
            let at = format!("tools[{index}].function.name");
            if name.len() > 64 {
                return Err(Refusal::new(
                    400,
                    format!(
                        "Invalid '{at}': string too long. Expected a string with maximum length \
                         64, but got a string with length {} instead.",
                        name.len()
                    ),
                )
                .param(at)
                .code("string_above_max_length"));
            }
            if !plain_name(name, 64) {
                return Err(Refusal::new(
                    400,
                    format!(
                        "Invalid '{at}': string does not match pattern. Expected a string that \
                         matches the pattern '^[a-zA-Z0-9_-]+$'."
                    ),
                )
                .param(at)
                .code("invalid_value"));
            }
            if let Some(parameters) = function.get("parameters") {
                let invalid = |why: String| {
                    Refusal::new(400, format!("Invalid schema for function '{name}': {why}"))
                        .param(format!("tools[{index}].function.parameters"))
                        .code("invalid_function_parameters")
                };
                let Some(schema) = parameters.as_object() else {
                    return Err(invalid(format!(
                        "{parameters} is not of type 'object', 'boolean'."
                    )));
                };
                match schema.get("type") {
                    Some(Value::String(ty)) if ty == "object" => {}
                    other => {
                        let got = other.map_or("null".to_owned(), Value::to_string);
                        return Err(invalid(format!(
                            "schema must be a JSON Schema of 'type: \"object\"', got 'type: {got}'."
                        )));
                    }
                }
                if kind == ProviderKind::OpenAi && !schema.contains_key("properties") {
                    return Err(invalid(
                        "In context=(), object schema missing properties.".to_owned(),
                    ));
                }
            }
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// An assistant message with `tool_calls` must be followed by `tool` messages answering each
/// call before any other message; a `tool` message must answer a call of that assistant message.
fn tool_message_order(messages: &[Value]) -> Result<(), Refusal> {
    struct Block {
        at: usize,
        ids: Vec<String>,
        answered: HashSet<String>,
    }
    let unanswered = |block: &Block, at: usize| -> Result<(), Refusal> {
        let missing: Vec<&str> = block
            .ids
            .iter()
            .filter(|id| !block.answered.contains(*id))
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(Refusal::new(
            400,
            format!(
                "An assistant message with 'tool_calls' must be followed by tool messages \
                 responding to each 'tool_call_id'. The following tool_call_ids did not have \
                 response messages: {}",
                missing.join(", ")
            ),
        )
        .param(format!("messages.[{at}].role")))
    };
    let mut block: Option<Block> = None;
    for (index, message) in messages.iter().enumerate() {
        if message["role"] == "tool" {
            let Some(open) = block.as_mut() else {
                return Err(Refusal::new(
                    400,
                    "Invalid parameter: messages with role 'tool' must be a response to a \
                     preceeding message with 'tool_calls'.",
                )
                .param(format!("messages.[{index}].role")));
            };
            let id = message["tool_call_id"].as_str().unwrap_or("");
            if !open.ids.iter().any(|known| known == id) {
                return Err(Refusal::new(
                    400,
                    format!(
                        "Invalid parameter: 'tool_call_id' of '{id}' not found in 'tool_calls' of \
                         previous message."
                    ),
                )
                .param(format!("messages.[{index}].tool_call_id")));
            }
            open.answered.insert(id.to_owned());
            continue;
        }
        if let Some(open) = block.take() {
            unanswered(&open, index)?;
        }
        let ids: Vec<String> = message["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|call| call["id"].as_str().map(str::to_owned))
            .collect();
        if message["role"] == "assistant" && !ids.is_empty() {
            block = Some(Block {
                at: index,
                ids,
                answered: HashSet::new(),
            });
        }
    }
    if let Some(open) = block {
        unanswered(&open, open.at)?;
    }
    Ok(())
}

fn openai_answer(
    inner: &Inner,
    kind: ProviderKind,
    model: &str,
    conversation: &Conversation,
    answer: &Answer,
    streamed: bool,
    usage_chunk: bool,
) -> Response {
    let id = format!("chatcmpl-{}", inner.id(29));
    let created = CREATED + inner.next();
    let fingerprint = match kind {
        ProviderKind::Compatible => "fp_ollama",
        _ => "fp_3f58d112f7",
    };
    let input = conversation.input_tokens;
    let output = answer.output_tokens();
    let usage = json!({
        "prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0}});
    let calls: Vec<(String, &str, String)> = match answer {
        Answer::Calls(calls) => calls
            .iter()
            .map(|(name, arguments)| {
                (
                    format!("call_{}", inner.id(24)),
                    name.as_str(),
                    arguments.to_string(),
                )
            })
            .collect(),
        Answer::Text { .. } => Vec::new(),
    };
    let finish = match answer {
        Answer::Calls(_) => "tool_calls",
        Answer::Text { cut: true, .. } => "length",
        Answer::Text { .. } => "stop",
    };
    if !streamed {
        let message = match answer {
            Answer::Text { text, .. } => {
                json!({"role": "assistant", "content": text, "refusal": null, "annotations": []})
            }
            Answer::Calls(_) => {
                let tool_calls: Vec<Value> = calls
                    .iter()
                    .map(|(id, name, arguments)| {
                        json!({"id": id, "type": "function",
                               "function": {"name": name, "arguments": arguments}})
                    })
                    .collect();
                json!({"role": "assistant", "content": null, "tool_calls": tool_calls,
                       "refusal": null, "annotations": []})
            }
        };
        return reply(
            200,
            json!({"id": id, "object": "chat.completion", "created": created, "model": model,
                   "choices": [{"index": 0, "message": message, "logprobs": null,
                                "finish_reason": finish}],
                   "usage": usage, "service_tier": "default",
                   "system_fingerprint": fingerprint}),
        );
    }
    let chunk = |delta: Value, finish: Option<&str>| {
        let mut chunk = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "service_tier": "default", "system_fingerprint": fingerprint,
            "choices": [{"index": 0, "delta": delta, "logprobs": null,
                         "finish_reason": finish}]});
        if usage_chunk {
            chunk["usage"] = Value::Null;
        }
        format!("data: {chunk}\n\n")
    };
    let mut chunks = Vec::new();
    match answer {
        Answer::Text { text, .. } => {
            chunks.push(chunk(
                json!({"role": "assistant", "content": "", "refusal": null}),
                None,
            ));
            for piece in text_pieces(text) {
                chunks.push(chunk(json!({"content": piece}), None));
            }
        }
        Answer::Calls(_) => {
            for (index, (call_id, name, arguments)) in calls.iter().enumerate() {
                let mut first = json!({"tool_calls": [{"index": index, "id": call_id,
                    "type": "function", "function": {"name": name, "arguments": ""}}]});
                if index == 0 {
                    first["role"] = json!("assistant");
                    first["content"] = Value::Null;
                    first["refusal"] = Value::Null;
                }
                if kind == ProviderKind::Xai {
                    // xAI sends each call whole, in one chunk.
                    first["tool_calls"][0]["function"]["arguments"] = json!(arguments);
                    chunks.push(chunk(first, None));
                    continue;
                }
                chunks.push(chunk(first, None));
                for piece in json_pieces(arguments) {
                    chunks.push(chunk(
                        json!({"tool_calls": [{"index": index,
                                               "function": {"arguments": piece}}]}),
                        None,
                    ));
                }
            }
        }
    }
    chunks.push(chunk(json!({}), Some(finish)));
    if usage_chunk {
        let last = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "service_tier": "default", "system_fingerprint": fingerprint, "choices": [],
            "usage": usage});
        chunks.push(format!("data: {last}\n\n"));
    }
    chunks.push("data: [DONE]\n\n".to_owned());
    stream("text/event-stream; charset=utf-8", chunks, &[])
}

// ---------------------------------------------------------------------------------------------
// Gemini: generateContent and streamGenerateContent (v1beta)

fn google_error(
    status: u16,
    name: &str,
    message: impl Into<String>,
    details: Vec<Value>,
) -> Response {
    let mut error = json!({"code": status, "message": message.into(), "status": name});
    if !details.is_empty() {
        error["details"] = Value::Array(details);
    }
    reply(status, json!({ "error": error }))
}

fn invalid_argument(message: impl Into<String>) -> Response {
    google_error(400, "INVALID_ARGUMENT", message, Vec::new())
}

fn gemini(inner: &Inner, request: &Incoming) -> Response {
    let key = request
        .header("x-goog-api-key")
        .map(str::to_owned)
        .or_else(|| request.query_param("key"));
    match key.as_deref() {
        None => {
            return google_error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established \
                 identity). Please use API Key or other form of API consumer identity to call \
                 this API.",
                Vec::new(),
            );
        }
        Some(key) if key != KEY_GEMINI => {
            let message = "API key not valid. Please pass a valid API key.";
            return google_error(
                400,
                "INVALID_ARGUMENT",
                message,
                vec![
                    json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                           "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                           "metadata": {"service": "generativelanguage.googleapis.com"}}),
                    json!({"@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                           "locale": "en-US", "message": message}),
                ],
            );
        }
        Some(_) => {}
    }
    let listed = |model: &Model| {
        let methods: Vec<&str> = if model.chat {
            vec![
                "generateContent",
                "countTokens",
                "createCachedContent",
                "batchGenerateContent",
            ]
        } else {
            vec!["embedContent", "countTextTokens", "countTokens"]
        };
        json!({"name": format!("models/{}", model.id), "version": "001",
               "displayName": model.name, "description": model.name,
               "inputTokenLimit": if model.chat { 1_048_576 } else { 2048 },
               "outputTokenLimit": if model.chat { 65_536 } else { 1 },
               "supportedGenerationMethods": methods})
    };
    let not_found = |model: &str, method: &str| {
        google_error(
            404,
            "NOT_FOUND",
            format!(
                "models/{model} is not found for API version v1beta, or is not supported for \
                 {method}. Call ListModels to see the list of available models and their \
                 supported methods."
            ),
            Vec::new(),
        )
    };
    let rest = request.rest.as_str();
    match (request.method.as_str(), rest) {
        ("GET", "/v1beta/models") => {
            let data: Vec<Value> = GEMINI_MODELS.iter().map(listed).collect();
            reply(200, json!({ "models": data }))
        }
        ("GET", path) if path.starts_with("/v1beta/models/") => {
            let id = &path["/v1beta/models/".len()..];
            match find_model(ProviderKind::Gemini, id) {
                Some(model) => reply(200, listed(model)),
                None => not_found(id, "get"),
            }
        }
        ("POST", path) if path.starts_with("/v1beta/models/") => {
            let Some((id, method)) = path["/v1beta/models/".len()..].split_once(':') else {
                return google_error(404, "NOT_FOUND", "Not Found", Vec::new());
            };
            let mode = match (method, request.query_param("alt").as_deref()) {
                ("generateContent", _) => GeminiMode::Unary,
                ("streamGenerateContent", Some("sse")) => GeminiMode::Sse,
                ("streamGenerateContent", _) => GeminiMode::JsonArray,
                _ => return google_error(404, "NOT_FOUND", "Not Found", Vec::new()),
            };
            let Some(model) = find_model(ProviderKind::Gemini, id).filter(|model| model.chat)
            else {
                return not_found(id, method);
            };
            match generate_content(inner, request, model.id, mode) {
                Ok(response) | Err(response) => response,
            }
        }
        _ => google_error(404, "NOT_FOUND", "Not Found", Vec::new()),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum GeminiMode {
    Unary,
    Sse,
    /// `streamGenerateContent` without `alt=sse`: one JSON array, written as it grows.
    JsonArray,
}

fn generate_content(
    inner: &Inner,
    request: &Incoming,
    model: &str,
    mode: GeminiMode,
) -> Result<Response, Response> {
    let ordered: Json = match serde_json::from_slice(&request.raw) {
        Ok(ordered) => ordered,
        Err(error) => {
            return Err(invalid_argument(format!(
                "Invalid JSON payload received. Unexpected token.\n{error}"
            )));
        }
    };
    let Some(Value::Object(body)) = &request.json else {
        return Err(invalid_argument(
            "Invalid JSON payload received. Expected an object.",
        ));
    };
    if let Some(failure) = inner.take_failure(ProviderKind::Gemini) {
        return Err(gemini_failure(failure));
    }
    let mut proto = ProtoCheck::default();
    proto.request(&ordered);
    if !proto.violations.is_empty() {
        let message: Vec<&str> = proto
            .violations
            .iter()
            .map(|(_, description)| description.as_str())
            .collect();
        let violations: Vec<Value> = proto
            .violations
            .iter()
            .map(|(field, description)| json!({"field": field, "description": description}))
            .collect();
        return Err(google_error(
            400,
            "INVALID_ARGUMENT",
            message.join("\n"),
            vec![json!({"@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": violations})],
        ));
    }

    let tools = gemini_declarations(body)?;
    let contents = field(body, "contents", "contents")
        .and_then(Value::as_array)
        .filter(|contents| !contents.is_empty())
        .ok_or_else(|| {
            invalid_argument("* GenerateContentRequest.contents: contents is not specified\n")
        })?;
    gemini_turn_rules(contents)?;
    if model.starts_with("gemini-3") {
        thought_signatures(contents)?;
    }

    let mut conversation = Conversation {
        tools,
        input_tokens: input_tokens(&request.raw),
        max_tokens: field(body, "generationConfig", "generation_config")
            .and_then(|config| field_of(config, "maxOutputTokens", "max_output_tokens"))
            .and_then(Value::as_u64),
        system: field(body, "systemInstruction", "system_instruction")
            .and_then(|instruction| instruction["parts"].as_array())
            .map(|parts| part_texts(parts)),
        ..Conversation::default()
    };
    for content in contents {
        for part in content["parts"].as_array().into_iter().flatten() {
            if let Some(text) = part["text"].as_str()
                && content["role"] != "model"
            {
                conversation.events.push(Event::User(text.to_owned()));
            }
            if let Some(call) = field_of(part, "functionCall", "function_call") {
                conversation.events.push(Event::Call {
                    name: call["name"].as_str().unwrap_or("").to_owned(),
                    arguments: call["args"].clone(),
                });
            }
            if let Some(response) = field_of(part, "functionResponse", "function_response") {
                conversation
                    .events
                    .push(Event::Result(function_response_text(&response["response"])));
            }
        }
    }
    let answer = think(&conversation);
    Ok(gemini_answer(inner, model, &conversation, &answer, mode))
}

fn field<'a>(object: &'a Map<String, Value>, camel: &str, snake: &str) -> Option<&'a Value> {
    object.get(camel).or_else(|| object.get(snake))
}

fn field_of<'a>(value: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    value
        .as_object()
        .and_then(|object| field(object, camel, snake))
}

fn part_texts(parts: &[Value]) -> String {
    parts
        .iter()
        .filter_map(|part| part["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A tool result's text: `result`, else `error`, else the first string in the response.
fn function_response_text(response: &Value) -> String {
    for key in ["result", "error"] {
        match response.get(key) {
            Some(Value::String(text)) => return text.clone(),
            Some(other) if !other.is_null() => return other.to_string(),
            _ => {}
        }
    }
    response
        .as_object()
        .and_then(|fields| fields.values().find_map(Value::as_str))
        .map_or_else(|| response.to_string(), str::to_owned)
}

/// The names of the declared functions, each checked as Gemini checks a declaration.
fn gemini_declarations(body: &Map<String, Value>) -> Result<Vec<String>, Response> {
    let mut names = Vec::new();
    let mut schema_errors = Vec::new();
    for (t, tool) in field(body, "tools", "tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let declarations = field_of(tool, "functionDeclarations", "function_declarations");
        for (d, declaration) in declarations
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("tools[{t}].function_declarations[{d}]");
            let name = declaration["name"].as_str().unwrap_or("");
            if !gemini_name(name) {
                return Err(invalid_argument(format!(
                    "The GenerateContentRequest proto is invalid:\n  * {at}.name: [FIELD_INVALID] \
                     Invalid function name. Must start with a letter or an underscore. Must be \
                     a-z, A-Z, 0-9, or contain underscores (_), dots (.), colons (:), or dashes \
                     (-), with a maximum length of 64."
                )));
            }
            if let Some(parameters) = declaration.get("parameters") {
                schema_shape(
                    parameters,
                    &format!("GenerateContentRequest.{at}.parameters"),
                    &mut schema_errors,
                );
            }
            names.push(name.to_owned());
        }
    }
    if !schema_errors.is_empty() {
        let message: String = schema_errors
            .iter()
            .map(|error| format!("* {error}\n"))
            .collect();
        return Err(invalid_argument(message));
    }
    Ok(names)
}

/// Starts with a letter or `_`; letters, digits, `_`, `.`, `:`, `-`; at most 64.
fn gemini_name(name: &str) -> bool {
    name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}

/// Gemini's checks of a schema's shape: an OBJECT has properties; only an OBJECT has them.
fn schema_shape(schema: &Value, at: &str, errors: &mut Vec<String>) {
    let is_object = schema["type"]
        .as_str()
        .is_some_and(|kind| kind.eq_ignore_ascii_case("object"));
    let properties = schema.get("properties").and_then(Value::as_object);
    if is_object && properties.is_none_or(Map::is_empty) {
        errors.push(format!(
            "{at}.properties: should be non-empty for OBJECT type"
        ));
    }
    if !is_object && schema.get("type").is_some() {
        for key in ["properties", "required"] {
            if schema.get(key).is_some() {
                errors.push(format!("{at}.{key}: only allowed for OBJECT type"));
            }
        }
    }
    for (name, property) in properties.into_iter().flatten() {
        schema_shape(property, &format!("{at}.properties[{name}]"), errors);
    }
    if let Some(items) = schema.get("items") {
        schema_shape(items, &format!("{at}.items"), errors);
    }
    for (index, variant) in field_of(schema, "anyOf", "any_of")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        schema_shape(variant, &format!("{at}.any_of[{index}]"), errors);
    }
}

/// Roles `user` and `model` only; a turn of function calls follows a user turn or a turn of
/// function responses; a turn of function responses follows the turn of calls it answers, one
/// response part for each call part.
fn gemini_turn_rules(contents: &[Value]) -> Result<(), Response> {
    let role = |content: &Value| content["role"].as_str().unwrap_or("user").to_owned();
    let count = |content: &Value, camel: &str, snake: &str| {
        content["parts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|part| field_of(part, camel, snake).is_some())
            .count()
    };
    if contents
        .iter()
        .any(|content| !matches!(role(content).as_str(), "user" | "model"))
    {
        return Err(invalid_argument("Please use a valid role: user, model."));
    }
    for (index, content) in contents.iter().enumerate() {
        let calls = count(content, "functionCall", "function_call");
        let responses = count(content, "functionResponse", "function_response");
        let previous = index.checked_sub(1).map(|previous| &contents[previous]);
        if role(content) == "model" && calls > 0 && previous.is_some_and(|p| role(p) == "model") {
            return Err(invalid_argument(
                "Please ensure that function call turn comes immediately after a user turn or \
                 after a function response turn.",
            ));
        }
        if responses > 0 {
            let previous_calls = previous
                .filter(|p| role(p) == "model")
                .map_or(0, |p| count(p, "functionCall", "function_call"));
            if previous_calls == 0 {
                return Err(invalid_argument(
                    "Please ensure that function response turn comes immediately after a \
                     function call turn.",
                ));
            }
        }
        if role(content) == "model"
            && calls > 0
            && let Some(next) = contents.get(index + 1)
            && count(next, "functionResponse", "function_response") != calls
        {
            return Err(invalid_argument(
                "Please ensure that the number of function response parts is equal to the \
                 number of function call parts of the function call turn.",
            ));
        }
    }
    Ok(())
}

/// Gemini 3: in the current turn (since the last user text), the first function call part of
/// each model step carries the thought signature the model gave it.
fn thought_signatures(contents: &[Value]) -> Result<(), Response> {
    let parts = |content: &Value| content["parts"].as_array().cloned().unwrap_or_default();
    let start = contents
        .iter()
        .rposition(|content| {
            content["role"] != "model"
                && parts(content).iter().any(|part| part.get("text").is_some())
        })
        .unwrap_or(0);
    for (index, content) in contents.iter().enumerate().skip(start) {
        if content["role"] != "model" {
            continue;
        }
        let parts = parts(content);
        let Some(first_call) = parts
            .iter()
            .find(|part| field_of(part, "functionCall", "function_call").is_some())
        else {
            continue;
        };
        if field_of(first_call, "thoughtSignature", "thought_signature").is_none() {
            let name = field_of(first_call, "functionCall", "function_call")
                .and_then(|call| call["name"].as_str())
                .unwrap_or("");
            return Err(invalid_argument(format!(
                "Function call is missing a thought_signature in functionCall parts. This is \
                 required for tools to work correctly, and missing thought_signature may lead to \
                 degraded model performance. Additional data, function call `default_api:{name}` \
                 , position {}. Please refer to \
                 https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
                index + 1
            )));
        }
    }
    Ok(())
}

fn gemini_failure(failure: Failure) -> Response {
    match failure {
        Failure::RateLimit => google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details. For \
             more information on this error, head to: \
             https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, \
             head to: https://ai.dev/rate-limit. ",
            vec![
                json!({"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                    "quotaMetric":
                        "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                    "quotaValue": "10"}]}),
                json!({"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]}),
                json!({"@type": "type.googleapis.com/google.rpc.RetryInfo",
                       "retryDelay": "36s"}),
            ],
        ),
        Failure::Overloaded => google_error(
            503,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
            Vec::new(),
        ),
        Failure::ContextTooLong => invalid_argument(
            "The input token count (1258848) exceeds the maximum number of tokens allowed \
             (1048576).",
        ),
        Failure::Status(status, body) => reply(status, body),
    }
}

fn gemini_answer(
    inner: &Inner,
    model: &str,
    conversation: &Conversation,
    answer: &Answer,
    mode: GeminiMode,
) -> Response {
    let response_id = inner.id(22);
    let input = conversation.input_tokens;
    let output = answer.output_tokens();
    let signed = model.starts_with("gemini-3");
    let finish = match answer {
        Answer::Text { cut: true, .. } => "MAX_TOKENS",
        _ => "STOP",
    };
    let parts: Vec<Value> = match answer {
        Answer::Text { text, .. } => vec![json!({ "text": text })],
        Answer::Calls(calls) => calls
            .iter()
            .enumerate()
            .map(|(index, (name, arguments))| {
                let mut call = json!({"name": name, "args": arguments});
                if signed {
                    // Gemini 3 gives every call an id, and the first its thought signature.
                    call["id"] = json!(inner.id(8).to_lowercase());
                }
                let mut part = json!({ "functionCall": call });
                if signed && index == 0 {
                    part["thoughtSignature"] = json!(format!("CiQB{}", inner.id(40)));
                }
                part
            })
            .collect(),
    };
    let response = |parts: Vec<Value>, last: bool| {
        let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
        let mut usage = json!({"promptTokenCount": input, "totalTokenCount": input,
                               "promptTokensDetails": [{"modality": "TEXT",
                                                        "tokenCount": input}]});
        if last {
            candidate["finishReason"] = json!(finish);
            usage["candidatesTokenCount"] = json!(output);
            usage["totalTokenCount"] = json!(input + output);
        }
        json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": model,
               "responseId": response_id})
    };
    if mode == GeminiMode::Unary {
        return reply(200, response(parts, true));
    }
    // Text comes a few words at a time; calls one part at a time.
    let pieces: Vec<Vec<Value>> = match answer {
        Answer::Text { text, .. } => text_pieces(text)
            .into_iter()
            .map(|piece| vec![json!({ "text": piece })])
            .collect(),
        Answer::Calls(_) => parts.into_iter().map(|part| vec![part]).collect(),
    };
    let pieces = if pieces.is_empty() {
        vec![vec![json!({ "text": "" })]]
    } else {
        pieces
    };
    let count = pieces.len();
    let responses: Vec<Value> = pieces
        .into_iter()
        .enumerate()
        .map(|(index, parts)| response(parts, index + 1 == count))
        .collect();
    match mode {
        GeminiMode::Sse => {
            let chunks = responses
                .iter()
                .map(|response| format!("data: {response}\r\n\r\n"))
                .collect();
            stream("text/event-stream", chunks, &[])
        }
        _ => {
            let mut chunks: Vec<String> = responses
                .iter()
                .enumerate()
                .map(|(index, response)| {
                    format!("{}{response}", if index == 0 { "[" } else { ",\r\n" })
                })
                .collect();
            chunks.push("]".to_owned());
            stream("application/json; charset=UTF-8", chunks, &[])
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Gemini's JSON-to-proto parse: the fields each message has, the values each enum takes

/// JSON with its objects' keys in the order the text gives them (Gemini numbers map entries so:
/// `properties[2].value`).
enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(value) => write!(f, "{value}"),
            Json::Number(number) => f.write_str(number),
            Json::String(text) => write!(f, "{}", Value::String(text.clone())),
            Json::Array(items) => {
                f.write_str("[")?;
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Json::Object(_) => f.write_str("{...}"),
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        struct JsonVisitor;
        impl<'de> Visitor<'de> for JsonVisitor {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_none<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, value: bool) -> Result<Json, E> {
                Ok(Json::Bool(value))
            }
            fn visit_i64<E>(self, number: i64) -> Result<Json, E> {
                Ok(Json::Number(number.to_string()))
            }
            fn visit_u64<E>(self, number: u64) -> Result<Json, E> {
                Ok(Json::Number(number.to_string()))
            }
            fn visit_f64<E>(self, number: f64) -> Result<Json, E> {
                Ok(Json::Number(number.to_string()))
            }
            fn visit_str<E>(self, text: &str) -> Result<Json, E> {
                Ok(Json::String(text.to_owned()))
            }
            fn visit_string<E>(self, text: String) -> Result<Json, E> {
                Ok(Json::String(text))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut fields = Vec::new();
                while let Some((key, value)) = map.next_entry()? {
                    fields.push((key, value));
                }
                Ok(Json::Object(fields))
            }
        }
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// A message's fields, each as `(lowerCamelCase, snake_case)`: proto JSON takes either.
type Fields = &'static [(&'static str, &'static str)];

const REQUEST_FIELDS: Fields = &[
    ("model", "model"),
    ("contents", "contents"),
    ("tools", "tools"),
    ("toolConfig", "tool_config"),
    ("safetySettings", "safety_settings"),
    ("systemInstruction", "system_instruction"),
    ("generationConfig", "generation_config"),
    ("cachedContent", "cached_content"),
];
const CONTENT_FIELDS: Fields = &[("parts", "parts"), ("role", "role")];
const PART_FIELDS: Fields = &[
    ("text", "text"),
    ("inlineData", "inline_data"),
    ("functionCall", "function_call"),
    ("functionResponse", "function_response"),
    ("fileData", "file_data"),
    ("executableCode", "executable_code"),
    ("codeExecutionResult", "code_execution_result"),
    ("thought", "thought"),
    ("thoughtSignature", "thought_signature"),
    ("videoMetadata", "video_metadata"),
    ("partMetadata", "part_metadata"),
];
const FUNCTION_CALL_FIELDS: Fields = &[("id", "id"), ("name", "name"), ("args", "args")];
const FUNCTION_RESPONSE_FIELDS: Fields = &[
    ("id", "id"),
    ("name", "name"),
    ("response", "response"),
    ("parts", "parts"),
    ("willContinue", "will_continue"),
    ("scheduling", "scheduling"),
];
const TOOL_FIELDS: Fields = &[
    ("functionDeclarations", "function_declarations"),
    ("googleSearchRetrieval", "google_search_retrieval"),
    ("codeExecution", "code_execution"),
    ("googleSearch", "google_search"),
    ("urlContext", "url_context"),
    ("computerUse", "computer_use"),
    ("fileSearch", "file_search"),
    ("googleMaps", "google_maps"),
];
const DECLARATION_FIELDS: Fields = &[
    ("name", "name"),
    ("description", "description"),
    ("behavior", "behavior"),
    ("parameters", "parameters"),
    ("parametersJsonSchema", "parameters_json_schema"),
    ("response", "response"),
    ("responseJsonSchema", "response_json_schema"),
];
/// Gemini's `Schema`, the subset of OpenAPI 3.0 it takes: nothing else (no
/// `additionalProperties`, `$ref`, `$defs`, `$schema`, `const`, `oneOf`, `allOf`,
/// `exclusiveMinimum`, ...).
const SCHEMA_FIELDS: Fields = &[
    ("type", "type"),
    ("format", "format"),
    ("title", "title"),
    ("description", "description"),
    ("nullable", "nullable"),
    ("enum", "enum"),
    ("maxItems", "max_items"),
    ("minItems", "min_items"),
    ("properties", "properties"),
    ("required", "required"),
    ("minProperties", "min_properties"),
    ("maxProperties", "max_properties"),
    ("minLength", "min_length"),
    ("maxLength", "max_length"),
    ("pattern", "pattern"),
    ("example", "example"),
    ("anyOf", "any_of"),
    ("propertyOrdering", "property_ordering"),
    ("default", "default"),
    ("items", "items"),
    ("minimum", "minimum"),
    ("maximum", "maximum"),
];
const TYPES: &[&str] = &[
    "TYPE_UNSPECIFIED",
    "STRING",
    "NUMBER",
    "INTEGER",
    "BOOLEAN",
    "ARRAY",
    "OBJECT",
    "NULL",
];

/// The fields Gemini's JSON parse refuses, as `(field, description)`, in the order it finds them.
#[derive(Default)]
struct ProtoCheck {
    violations: Vec<(String, String)>,
}

impl ProtoCheck {
    /// Checks `object`'s field names; gives the known fields by their snake_case names.
    fn fields<'a>(
        &mut self,
        object: &'a Json,
        known: Fields,
        at: &str,
    ) -> Vec<(&'static str, &'a Json)> {
        let Json::Object(entries) = object else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for (name, value) in entries {
            match known
                .iter()
                .find(|(camel, snake)| name == camel || name == snake)
            {
                Some((_, snake)) => found.push((*snake, value)),
                None => {
                    let description = if at.is_empty() {
                        format!(
                            "Invalid JSON payload received. Unknown name {name:?}: Cannot find \
                             field."
                        )
                    } else {
                        format!(
                            "Invalid JSON payload received. Unknown name {name:?} at '{at}': \
                             Cannot find field."
                        )
                    };
                    self.violations.push((at.to_owned(), description));
                }
            }
        }
        found
    }

    fn request(&mut self, request: &Json) {
        for (name, value) in self.fields(request, REQUEST_FIELDS, "") {
            match name {
                "contents" => each(value, |index, content| {
                    self.content(content, &format!("contents[{index}]"));
                }),
                "system_instruction" => self.content(value, "system_instruction"),
                "tools" => each(value, |index, tool| {
                    self.tool(tool, &format!("tools[{index}]"));
                }),
                _ => {}
            }
        }
    }

    fn content(&mut self, content: &Json, at: &str) {
        for (name, value) in self.fields(content, CONTENT_FIELDS, at) {
            if name == "parts" {
                each(value, |index, part| {
                    self.part(part, &format!("{at}.parts[{index}]"));
                });
            }
        }
    }

    fn part(&mut self, part: &Json, at: &str) {
        for (name, value) in self.fields(part, PART_FIELDS, at) {
            match name {
                "function_call" => {
                    let at = format!("{at}.function_call");
                    for (name, value) in self.fields(value, FUNCTION_CALL_FIELDS, &at) {
                        if name == "args" {
                            self.struct_value(value, &format!("{at}.args"));
                        }
                    }
                }
                "function_response" => {
                    let at = format!("{at}.function_response");
                    for (name, value) in self.fields(value, FUNCTION_RESPONSE_FIELDS, &at) {
                        if name == "response" {
                            self.struct_value(value, &format!("{at}.response"));
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// A `google.protobuf.Struct`: a JSON object, nothing else.
    fn struct_value(&mut self, value: &Json, at: &str) {
        if !matches!(value, Json::Object(_)) {
            self.violations.push((
                at.to_owned(),
                format!(
                    "Invalid value at '{at}' (type.googleapis.com/google.protobuf.Struct), {value}"
                ),
            ));
        }
    }

    fn tool(&mut self, tool: &Json, at: &str) {
        for (name, value) in self.fields(tool, TOOL_FIELDS, at) {
            if name == "function_declarations" {
                each(value, |index, declaration| {
                    let at = format!("{at}.function_declarations[{index}]");
                    for (name, value) in self.fields(declaration, DECLARATION_FIELDS, &at) {
                        if name == "parameters" || name == "response" {
                            self.schema(value, &format!("{at}.{name}"));
                        }
                    }
                });
            }
        }
    }

    fn schema(&mut self, schema: &Json, at: &str) {
        for (name, value) in self.fields(schema, SCHEMA_FIELDS, at) {
            match (name, value) {
                ("type", Json::String(kind))
                    if !TYPES.iter().any(|known| known.eq_ignore_ascii_case(kind)) =>
                {
                    self.violations.push((
                        format!("{at}.type"),
                        format!(
                            "Invalid value at '{at}.type' \
                             (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), \
                             {value}"
                        ),
                    ));
                }
                ("type", Json::Array(_)) => self.violations.push((
                    at.to_owned(),
                    format!(
                        "Invalid JSON payload received. Unknown name \"type\" at '{at}': Proto \
                         field is not repeating, cannot start list."
                    ),
                )),
                ("properties", Json::Object(entries)) => {
                    for (index, (_, property)) in entries.iter().enumerate() {
                        self.schema(property, &format!("{at}.properties[{index}].value"));
                    }
                }
                ("items", items) => self.schema(items, &format!("{at}.items")),
                ("any_of", variants) => each(variants, |index, variant| {
                    self.schema(variant, &format!("{at}.any_of[{index}]"));
                }),
                _ => {}
            }
        }
    }
}

fn each(value: &Json, mut visit: impl FnMut(usize, &Json)) {
    if let Json::Array(items) = value {
        for (index, item) in items.iter().enumerate() {
            visit(index, item);
        }
    }
}
