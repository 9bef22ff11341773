//! The playground: a person chats with a language model that calls the proxy's tools, from the
//! console. `POST /api/v1/playground/chat` (`Accept: text/event-stream`) takes the whole
//! conversation in `llm`'s neutral shape and runs the model's turn: each step streams the
//! provider's answer (`text` events as tokens arrive), runs the tools it asked for in order, and
//! gives their results back, until the model answers without a tool, the step limit, or a stop
//! (`DELETE /api/v1/playground/chats/{id}`). The tools run in an in-process client session
//! (`calls::InProcess`), so they take a client's path: policy, activity log, timeouts, progress,
//! cancellation, and the servers' questions — elicitation asked of the person, sampling answered
//! by the person or, when the chat says so, by the chat's model. The last event, `done` (or
//! `error`), carries the conversation as it now stands, which the page sends with its next
//! message.
//!
//! What providers refuse is handled before sending: names mapped (`llm::names`), schemas
//! converted (`llm::schema`, what is lost reported in the `tools` event), and a choice larger
//! than the provider's limit narrowed to the tools most relevant to the person's message.
//! Keys (`llm::keys`) stay on this side: `GET /api/v1/playground` says only where each one comes
//! from. Bounded: [`MAX_CHATS`] chats at once, [`MAX_STEPS_LIMIT`] steps a turn, a tool result
//! given to the model cut at [`MAX_RESULT_TEXT`], a model's answer at [`MAX_ANSWER_TEXT`]
//! and [`MAX_CALLS_A_STEP`] tool calls.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router as AxumRouter;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use futures::StreamExt;
use futures::future::BoxFuture;
use rmcp::ErrorData;
use rmcp::model::CallToolRequestParams;
// Sampling is deprecated by SEP-2577; the legacy session the tools run in uses it.
#[allow(deprecated)]
use rmcp::model::{
    CreateMessageRequestParams, CreateMessageResult, Role as McpRole, SamplingMessage,
    SamplingMessageContentBlock,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::api_v1::error;
use super::calls::{
    ConsoleClient, InProcess, Live, Missing, Running, Sampler, event, event_stream, server_of,
};
use crate::llm::keys::{Keys, SaveError, base_url_variable};
use crate::llm::names::ToolNames;
use crate::llm::{
    self, Delta, Endpoint, ErrorKind, LlmError, Message, Part, ProviderKind, Request, Role, Stop,
    ToolSpec,
};
use crate::router::Router;

/// The most chats running at once.
pub(super) const MAX_CHATS: usize = 8;
/// Steps (model answers) in one turn unless the chat asks otherwise, and the most it may ask.
const DEFAULT_STEPS: u32 = 8;
const MAX_STEPS_LIMIT: u32 = 50;
/// Tokens a model answer may use unless the chat asks otherwise, and the most it may ask.
const DEFAULT_MAX_TOKENS: u32 = 4096;
const MAX_TOKENS_LIMIT: u32 = 64_000;
/// A tool result is given to the model cut at this many bytes.
const MAX_RESULT_TEXT: usize = 64 * 1024;
/// The longest text one model answer may bring, and the most tool calls.
const MAX_ANSWER_TEXT: usize = 1024 * 1024;
const MAX_CALLS_A_STEP: usize = 64;
/// Events a reader may fall behind by (text waits for it; progress and logs are dropped).
const EVENT_BUFFER: usize = 256;
/// Documents put before the conversation with "use my documents".
const DOCUMENTS_GIVEN: u32 = 5;
/// How long a provider may stay silent in the middle of an answer.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// The playground's state: where providers are, and the chats running.
pub(super) struct Playground {
    keys: Keys,
    http: reqwest::Client,
    chats: Arc<Running>,
}

impl Playground {
    pub(super) fn new(data_dir: Option<&std::path::Path>) -> Playground {
        // reqwest is built without a default TLS provider (see `lib::run`).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(READ_TIMEOUT)
            // A redirect would carry the key's header elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pluggedin-mcp-proxy/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Playground {
            keys: Keys::load(data_dir),
            http,
            chats: Arc::new(Running::new("chat", MAX_CHATS)),
        }
    }
}

/// The routes; `S` is the API's state.
pub(super) fn routes<S>() -> AxumRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Router>: axum::extract::FromRef<S>,
    Arc<Playground>: axum::extract::FromRef<S>,
{
    AxumRouter::new()
        .route("/api/v1/playground", get(overview))
        .route("/api/v1/playground/providers/{id}", put(save_provider))
        .route("/api/v1/playground/providers/{id}/models", get(models))
        .route("/api/v1/playground/chat", post(chat))
        .route("/api/v1/playground/chats/{id}", axum::routing::delete(stop))
        .route(
            "/api/v1/playground/chats/{id}/answers/{question}",
            post(answer),
        )
}

fn provider_of(id: &str) -> Result<ProviderKind, Box<Response>> {
    ProviderKind::from_id(id).ok_or_else(|| {
        let known: Vec<&str> = ProviderKind::ALL.iter().map(|kind| kind.id()).collect();
        Box::new(error(
            StatusCode::NOT_FOUND,
            format!("no provider {id:?}; the providers are {}", known.join(", ")),
        ))
    })
}

/// One provider as the page shows it: never its key, only where the key comes from.
fn provider_row(keys: &Keys, kind: ProviderKind) -> Value {
    json!({
        "id": kind.id(),
        "title": kind.title(),
        "key": keys.key_source(kind),
        "keyVariables": kind.key_variables(),
        "needsKey": kind != ProviderKind::Compatible,
        "baseUrl": keys.base_url(kind),
        "baseUrlVariable": base_url_variable(kind),
        "baseUrlFrom": keys.base_url_source(kind),
        "defaultModel": kind.default_model(),
        "maxTools": kind.max_tools(),
        "ready": keys.endpoint(kind).is_ok(),
    })
}

/// The providers, the tools a model may be given (the catalog as clients see it) and the limits.
async fn overview(
    State(playground): State<Arc<Playground>>,
    State(router): State<Arc<Router>>,
) -> Response {
    let providers: Vec<Value> = ProviderKind::ALL
        .into_iter()
        .map(|kind| provider_row(&playground.keys, kind))
        .collect();
    let catalog = router.catalog();
    let tools: Vec<Value> = catalog
        .tools
        .iter()
        .map(|tool| {
            json!({
                "name": tool.name,
                "server": catalog.resolve_tool(&tool.name).ok().map(|route| route.server),
                "description": tool.description,
            })
        })
        .collect();
    Json(json!({
        "providers": providers,
        "tools": tools,
        "maxSteps": DEFAULT_STEPS,
        "maxStepsLimit": MAX_STEPS_LIMIT,
        "documents": true,
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProviderSettings {
    key: Option<String>,
    base_url: Option<String>,
}

/// Saves a provider's key and/or base URL; the answer is the provider's row, without the key.
async fn save_provider(
    State(playground): State<Arc<Playground>>,
    Path(id): Path<String>,
    body: Result<Json<ProviderSettings>, JsonRejection>,
) -> Response {
    let kind = match provider_of(&id) {
        Ok(kind) => kind,
        Err(refused) => return *refused,
    };
    let body = match super::api_v1::json_body(body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    match playground
        .keys
        .save(kind, body.key.as_deref(), body.base_url.as_deref())
    {
        Ok(()) => Json(provider_row(&playground.keys, kind)).into_response(),
        Err(SaveError::Invalid(why)) => error(StatusCode::BAD_REQUEST, why),
        Err(failure @ SaveError::Nowhere) => {
            error(StatusCode::SERVICE_UNAVAILABLE, failure.to_string())
        }
        Err(failure @ SaveError::Write { .. }) => {
            tracing::warn!(%failure, "a provider's settings were not saved");
            error(StatusCode::INTERNAL_SERVER_ERROR, failure.to_string())
        }
    }
}

/// The HTTP status that stands for a provider's failure.
fn status_of(failure: &LlmError) -> StatusCode {
    match failure.kind {
        ErrorKind::Auth => StatusCode::UNAUTHORIZED,
        ErrorKind::RateLimit => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::ContextLength | ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unavailable => StatusCode::BAD_GATEWAY,
    }
}

fn provider_error(kind: ProviderKind, failure: &LlmError) -> Value {
    json!({
        "status": status_of(failure).as_u16(),
        "error": format!("{}: {failure}", kind.title()),
        "provider": failure,
    })
}

/// The models the provider lists.
async fn models(State(playground): State<Arc<Playground>>, Path(id): Path<String>) -> Response {
    let kind = match provider_of(&id) {
        Ok(kind) => kind,
        Err(refused) => return *refused,
    };
    // Not set up: the page's to fix, 400.
    let endpoint = match playground.keys.endpoint(kind) {
        Ok(endpoint) => endpoint,
        Err(failure) => {
            let body = provider_error(kind, &failure);
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    };
    match llm::models(&playground.http, &endpoint).await {
        Ok(models) => Json(json!({ "models": models })).into_response(),
        // The provider's refusal is not the proxy's: 502, the provider's status in the body (a
        // 401 here would read as the proxy asking the page to sign in).
        Err(failure) => {
            let body = provider_error(kind, &failure);
            (StatusCode::BAD_GATEWAY, Json(body)).into_response()
        }
    }
}

/// Who answers a server's sampling request during a chat.
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum SamplingBy {
    /// The person, with a question event.
    #[default]
    Person,
    /// The chat's model.
    Model,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChatRequest {
    provider: String,
    model: String,
    #[serde(default)]
    system: Option<String>,
    messages: Vec<Message>,
    /// The tools the model may use, by qualified name (`None`: every tool served).
    #[serde(default)]
    tools: Option<Vec<String>>,
    /// Put the documents most relevant to the person's message before the conversation.
    #[serde(default)]
    documents: bool,
    #[serde(default)]
    max_steps: Option<u32>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    sampling: SamplingBy,
}

/// A chat, checked and ready to run.
struct Chat {
    kind: ProviderKind,
    endpoint: Endpoint,
    model: String,
    system: Option<String>,
    messages: Vec<Message>,
    tools: Option<Vec<String>>,
    documents: bool,
    max_steps: u32,
    max_tokens: u32,
    sampling: SamplingBy,
}

/// The person's last words: the text of the last message (a user message).
fn last_user_text(messages: &[Message]) -> Option<String> {
    let last = messages
        .last()
        .filter(|message| message.role == Role::User)?;
    let text: Vec<&str> = last
        .content
        .iter()
        .filter_map(|part| match part {
            Part::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let text = text.join("\n");
    (!text.trim().is_empty()).then_some(text)
}

impl Chat {
    fn check(playground: &Playground, request: ChatRequest) -> Result<Chat, Box<Response>> {
        let kind = provider_of(&request.provider)?;
        let model = request.model.trim().to_owned();
        if model.is_empty() || model.len() > 256 || model.chars().any(char::is_control) {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "\"model\" is the model's id: 1 to 256 characters",
            )));
        }
        if last_user_text(&request.messages).is_none() {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "\"messages\" must end with the person's message (role \"user\", with text)",
            )));
        }
        let max_steps = request.max_steps.unwrap_or(DEFAULT_STEPS);
        if !(1..=MAX_STEPS_LIMIT).contains(&max_steps) {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                format!("\"maxSteps\" is 1 to {MAX_STEPS_LIMIT}"),
            )));
        }
        let max_tokens = request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
        if !(1..=MAX_TOKENS_LIMIT).contains(&max_tokens) {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                format!("\"maxTokens\" is 1 to {MAX_TOKENS_LIMIT}"),
            )));
        }
        let endpoint = playground.keys.endpoint(kind).map_err(|failure| {
            let body = provider_error(kind, &failure);
            Box::new((StatusCode::BAD_REQUEST, Json(body)).into_response())
        })?;
        Ok(Chat {
            kind,
            endpoint,
            model,
            system: request.system.filter(|system| !system.trim().is_empty()),
            messages: request.messages,
            tools: request.tools,
            documents: request.documents,
            max_steps,
            max_tokens,
            sampling: request.sampling,
        })
    }
}

/// Starts a chat's turn; its events stream back.
async fn chat(
    State(playground): State<Arc<Playground>>,
    State(router): State<Arc<Router>>,
    headers: HeaderMap,
    body: Result<Json<ChatRequest>, JsonRejection>,
) -> Response {
    if !super::api_v1::accepts_events(&headers) {
        return error(
            StatusCode::NOT_ACCEPTABLE,
            "a chat answers with events: send Accept: text/event-stream",
        );
    }
    let request = match super::api_v1::json_body(body) {
        Ok(request) => request,
        Err(refused) => return *refused,
    };
    let chat = match Chat::check(&playground, request) {
        Ok(chat) => chat,
        Err(refused) => return *refused,
    };
    let Some((id, live, registered)) = playground.chats.register() else {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            format!("{MAX_CHATS} chats are running, the most at once; wait for one to end"),
        );
    };
    let (events, receiver) = mpsc::channel::<Event>(EVENT_BUFFER);
    let _ = events.try_send(event("chat", &json!({ "id": id })));
    let http = playground.http.clone();
    tokio::spawn(async move {
        let mut turn = Turn {
            router,
            http,
            chat,
            live,
            events,
            session: None,
        };
        turn.run().await;
        if let Some(session) = turn.session.take() {
            session.0.close();
        }
    });
    event_stream(receiver, registered).into_response()
}

/// Stops a chat: the model's answer and any tool call in flight end, and `done` says
/// `cancelled`.
async fn stop(State(playground): State<Arc<Playground>>, Path(id): Path<String>) -> Response {
    match playground.chats.cancel(&id) {
        Ok(()) => Json(json!({ "stopped": id })).into_response(),
        Err(_) => error(StatusCode::NOT_FOUND, format!("no chat {id:?} is running")),
    }
}

/// Answers a server's question asked during a chat.
async fn answer(
    State(playground): State<Arc<Playground>>,
    Path((id, question)): Path<(String, String)>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let answer = match super::api_v1::json_body(body) {
        Ok(answer) => answer,
        Err(refused) => return *refused,
    };
    match playground.chats.answer(&id, &question, answer) {
        Ok(()) => Json(json!({ "answered": question })).into_response(),
        Err(Missing::Call) => error(StatusCode::NOT_FOUND, format!("no chat {id:?} is running")),
        Err(Missing::Question) => error(
            StatusCode::NOT_FOUND,
            format!("chat {id:?} has no open question {question:?}"),
        ),
    }
}

/// Why a turn ended early.
enum Ended {
    Cancelled,
    Failed(Value),
}

/// One turn of a chat: steps until the model answers without a tool.
struct Turn {
    router: Arc<Router>,
    http: reqwest::Client,
    chat: Chat,
    live: Arc<Live>,
    events: mpsc::Sender<Event>,
    /// Opened at the first tool call.
    session: Option<(InProcess, ConsoleClient)>,
}

/// The tools offered for one turn, in the provider's terms.
struct Offered {
    specs: Vec<ToolSpec>,
    names: ToolNames,
}

impl Turn {
    async fn send(&self, name: &'static str, data: &Value) {
        let _ = self.events.send(event(name, data)).await;
    }

    async fn run(&mut self) {
        let ending = match self.steps().await {
            Ok((stop, steps)) => json!({
                "stop": stop,
                "steps": steps,
                "messages": self.chat.messages,
            }),
            Err(Ended::Cancelled) => json!({
                "stop": "cancelled",
                "messages": self.chat.messages,
            }),
            Err(Ended::Failed(mut failure)) => {
                failure["messages"] = json!(self.chat.messages);
                self.send("error", &failure).await;
                return;
            }
        };
        self.send("done", &ending).await;
    }

    async fn steps(&mut self) -> Result<(&'static str, u32), Ended> {
        let asked = last_user_text(&self.chat.messages).unwrap_or_default();
        let offered = self.offer(&asked).await;
        let system = self.system(&asked).await;
        for step in 1..=self.chat.max_steps {
            let request = Request {
                model: self.chat.model.clone(),
                system: system.clone(),
                messages: to_provider(&self.chat.messages, &offered.names),
                tools: offered.specs.clone(),
                max_tokens: self.chat.max_tokens,
            };
            let (text, calls, stop) = self.answer(&request).await?;
            let mut content = Vec::new();
            if !text.is_empty() {
                content.push(Part::Text { text });
            }
            let calls: Vec<(String, String, Value)> = calls
                .into_iter()
                .map(|(id, name, arguments)| {
                    let qualified = offered.names.qualified(&name).map_or(name, str::to_owned);
                    (id, qualified, arguments)
                })
                .collect();
            for (id, name, arguments) in &calls {
                content.push(Part::ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: arguments.clone(),
                });
            }
            if !content.is_empty() {
                self.chat.messages.push(Message {
                    role: Role::Assistant,
                    content,
                });
            }
            if calls.is_empty() {
                return Ok((stop_name(stop), step));
            }
            let mut results = Vec::new();
            let mut stopped = false;
            for (id, name, arguments) in calls {
                // Every call is answered, stopped ones too: providers refuse a conversation with
                // a call left unanswered, and the next turn goes on from this one.
                if stopped {
                    results.push(stopped_call(id, name));
                    continue;
                }
                let provider_name = offered.names.provider_name(&name);
                let offered_here = offered
                    .specs
                    .iter()
                    .any(|spec| Some(spec.name.as_str()) == provider_name);
                match self.run_tool(&id, &name, arguments, offered_here).await {
                    Ok(result) => results.push(result),
                    Err(_) => {
                        stopped = true;
                        results.push(stopped_call(id, name));
                    }
                }
            }
            self.chat.messages.push(Message {
                role: Role::User,
                content: results,
            });
            if stopped {
                return Err(Ended::Cancelled);
            }
        }
        Ok(("step_limit", self.chat.max_steps))
    }

    /// The tools for this turn: the chosen ones the catalog serves, narrowed to the provider's
    /// limit by relevance to the person's message, named and shaped as the provider takes them.
    async fn offer(&self, asked: &str) -> Offered {
        let catalog = self.router.catalog();
        let chosen: Option<HashSet<&str>> = self
            .chat
            .tools
            .as_ref()
            .map(|names| names.iter().map(String::as_str).collect());
        let mut tools: Vec<&rmcp::model::Tool> = catalog
            .tools
            .iter()
            .filter(|tool| {
                chosen
                    .as_ref()
                    .is_none_or(|chosen| chosen.contains(&*tool.name))
            })
            .collect();
        let mut omitted = Vec::new();
        let mut reason = None;
        if let Some(limit) = self.chat.kind.max_tools()
            && tools.len() > limit
        {
            let words = words_of(asked);
            let mut scored: Vec<(usize, usize)> = tools
                .iter()
                .enumerate()
                .map(|(at, tool)| (relevance(tool, &words), at))
                .collect();
            // Most relevant first; the catalog's order among equals.
            scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let kept: HashSet<usize> = scored.iter().take(limit).map(|(_, at)| *at).collect();
            let mut narrowed = Vec::new();
            for (at, tool) in tools.into_iter().enumerate() {
                if kept.contains(&at) {
                    narrowed.push(tool);
                } else {
                    omitted.push(tool.name.to_string());
                }
            }
            tools = narrowed;
            reason = Some(format!(
                "{} accepts at most {limit} tools: the {limit} most relevant to your message \
                 were offered",
                self.chat.kind.title()
            ));
        }
        // Names in the conversation keep theirs, though no longer offered.
        let mut all_names: Vec<String> = tools.iter().map(|tool| tool.name.to_string()).collect();
        let mut seen: HashSet<String> = all_names.iter().cloned().collect();
        for message in &self.chat.messages {
            for part in &message.content {
                if let Part::ToolCall { name, .. } | Part::ToolResult { name, .. } = part
                    && seen.insert(name.clone())
                {
                    all_names.push(name.clone());
                }
            }
        }
        let names = ToolNames::new(
            self.chat.kind.name_rule(),
            all_names.iter().map(String::as_str),
        );
        let mut lost = Vec::new();
        let mut renamed = serde_json::Map::new();
        let specs: Vec<ToolSpec> = tools
            .iter()
            .map(|tool| {
                let schema = Value::Object((*tool.input_schema).clone());
                let converted = llm::schema::for_provider(self.chat.kind, &schema);
                if !converted.lost.is_empty() {
                    lost.push(json!({"tool": tool.name, "lost": converted.lost}));
                }
                let name = names
                    .provider_name(&tool.name)
                    .unwrap_or(&tool.name)
                    .to_owned();
                if name != *tool.name {
                    renamed.insert(tool.name.to_string(), json!(name));
                }
                ToolSpec {
                    name,
                    description: tool.description.as_deref().unwrap_or_default().to_owned(),
                    input_schema: converted.schema,
                }
            })
            .collect();
        let offered: Vec<&str> = tools.iter().map(|tool| &*tool.name).collect();
        self.send(
            "tools",
            &json!({
                "offered": offered,
                "omitted": omitted,
                "reason": reason,
                "lost": lost,
                "renamed": renamed,
            }),
        )
        .await;
        Offered { specs, names }
    }

    /// The system prompt, with the documents most relevant to the person's message when the
    /// chat asks for them.
    async fn system(&self, asked: &str) -> Option<String> {
        if !self.chat.documents {
            return self.chat.system.clone();
        }
        let search = crate::control::DocumentSearch {
            query: asked.to_owned(),
            filter: crate::control::DocumentFilter::default(),
            limit: DOCUMENTS_GIVEN,
        };
        let hits = match self.router.control_plane().search_documents(search).await {
            Ok(hits) => hits,
            Err(failure) => {
                self.send(
                    "notice",
                    &json!({"message": format!("the documents were not searched: {failure}")}),
                )
                .await;
                return self.chat.system.clone();
            }
        };
        let sources: Vec<Value> = hits
            .iter()
            .map(|hit| json!({"title": hit.document.title, "uuid": hit.document.id}))
            .collect();
        self.send("documents", &json!({ "sources": sources })).await;
        if hits.is_empty() {
            return self.chat.system.clone();
        }
        let mut system = self.chat.system.clone().unwrap_or_default();
        if !system.is_empty() {
            system.push_str("\n\n");
        }
        system.push_str(
            "Passages from the user's documents that may help (cite them by title when used):",
        );
        for hit in &hits {
            system.push_str(&format!("\n\n[{}]\n{}", hit.document.title, hit.passage));
        }
        Some(system)
    }

    /// One model answer, streamed: its text (sent as it comes), its tool calls (provider names)
    /// and why it stopped.
    async fn answer(
        &self,
        request: &Request,
    ) -> Result<(String, Vec<(String, String, Value)>, Stop), Ended> {
        let cancel = self.live.cancel.clone();
        let failed = |failure: LlmError| Ended::Failed(provider_error(self.chat.kind, &failure));
        let mut deltas = tokio::select! {
            deltas = llm::stream(&self.http, &self.chat.endpoint, request) => {
                deltas.map_err(failed)?
            }
            () = cancel.cancelled() => return Err(Ended::Cancelled),
        };
        let mut text = String::new();
        let mut calls = Vec::new();
        let mut stop = Stop::EndTurn;
        loop {
            let next = tokio::select! {
                next = deltas.next() => next,
                () = cancel.cancelled() => return Err(Ended::Cancelled),
            };
            match next {
                None => break,
                Some(Err(failure)) => return Err(failed(failure)),
                Some(Ok(Delta::Text(piece))) => {
                    if text.len() + piece.len() > MAX_ANSWER_TEXT {
                        return Err(failed(LlmError {
                            kind: ErrorKind::Unavailable,
                            status: None,
                            message: format!(
                                "the answer went past {} MiB of text; it was cut off",
                                MAX_ANSWER_TEXT >> 20
                            ),
                        }));
                    }
                    self.send("text", &json!({ "text": piece })).await;
                    text.push_str(&piece);
                }
                Some(Ok(Delta::ToolCall {
                    id,
                    name,
                    arguments,
                })) => {
                    if calls.len() == MAX_CALLS_A_STEP {
                        return Err(failed(LlmError {
                            kind: ErrorKind::Unavailable,
                            status: None,
                            message: format!(
                                "the answer asked for more than {MAX_CALLS_A_STEP} tool calls \
                                 at once"
                            ),
                        }));
                    }
                    calls.push((id, name, arguments));
                }
                Some(Ok(Delta::Done { stop: why, usage })) => {
                    stop = why;
                    if let Some(usage) = usage {
                        self.send("usage", &json!(usage)).await;
                    }
                    break;
                }
            }
        }
        Ok((text, calls, stop))
    }

    /// Runs one tool call through the session and gives its result as a part for the model.
    async fn run_tool(
        &mut self,
        id: &str,
        name: &str,
        arguments: Value,
        offered: bool,
    ) -> Result<Part, Ended> {
        self.send(
            "tool_call",
            &json!({"id": id, "name": name, "arguments": arguments}),
        )
        .await;
        let started = Instant::now();
        let outcome = if !offered {
            Err(format!("no tool named {name:?} was offered"))
        } else if !arguments.is_object() {
            Err(format!("the arguments for {name} must be a JSON object"))
        } else {
            match self.call(id, name, arguments).await {
                Ok(result) => Ok(result),
                Err(failure) if failure["status"] == 499 => return Err(Ended::Cancelled),
                Err(failure) => Err(failure["error"].as_str().unwrap_or("failed").to_owned()),
            }
        };
        let duration = started.elapsed().as_millis() as u64;
        let (content, is_error) = match &outcome {
            Ok(result) => result_text(result),
            Err(why) => (why.clone(), true),
        };
        let mut shown = json!({
            "id": id,
            "name": name,
            "isError": is_error,
            "durationMs": duration,
        });
        match outcome {
            Ok(result) => shown["result"] = result,
            Err(why) => shown["error"] = json!(why),
        }
        self.send("tool_result", &shown).await;
        Ok(Part::ToolResult {
            id: id.to_owned(),
            name: name.to_owned(),
            content,
            is_error,
        })
    }

    async fn call(&mut self, id: &str, name: &str, arguments: Value) -> Result<Value, Value> {
        if self.session.is_none() {
            let sampler: Option<Arc<dyn Sampler>> = match self.chat.sampling {
                SamplingBy::Person => None,
                SamplingBy::Model => Some(Arc::new(ModelSampler {
                    http: self.http.clone(),
                    endpoint: self.chat.endpoint.clone(),
                    model: self.chat.model.clone(),
                    events: self.events.clone(),
                    next: AtomicU64::new(1),
                })),
            };
            let handler = ConsoleClient::new(self.live.clone(), self.events.clone(), sampler);
            let session =
                InProcess::open(self.router.clone(), handler.clone(), &self.live.cancel).await?;
            self.session = Some((session, handler));
        }
        let Some((session, handler)) = &self.session else {
            return Err(json!({"status": 500, "error": "no session"}));
        };
        handler.set_current(Some(id.to_owned()), server_of(&self.router, name));
        let mut params = CallToolRequestParams::new(name.to_owned());
        if let Value::Object(arguments) = arguments {
            params = params.with_arguments(arguments);
        }
        session.call(params, &self.live.cancel).await
    }
}

/// The answer given to the model for a call the person stopped.
fn stopped_call(id: String, name: String) -> Part {
    Part::ToolResult {
        id,
        name,
        content: "The call was stopped by the user before it finished.".to_owned(),
        is_error: true,
    }
}

fn stop_name(stop: Stop) -> &'static str {
    match stop {
        Stop::EndTurn | Stop::ToolUse | Stop::Other => "end_turn",
        Stop::MaxTokens => "max_tokens",
        Stop::Refused => "refused",
    }
}

/// The conversation with tool names as the provider was given them.
fn to_provider(messages: &[Message], names: &ToolNames) -> Vec<Message> {
    let rename = |name: &String| {
        names
            .provider_name(name)
            .map_or_else(|| name.clone(), str::to_owned)
    };
    messages
        .iter()
        .map(|message| Message {
            role: message.role,
            content: message
                .content
                .iter()
                .map(|part| match part {
                    Part::ToolCall {
                        id,
                        name,
                        arguments,
                    } => Part::ToolCall {
                        id: id.clone(),
                        name: rename(name),
                        arguments: arguments.clone(),
                    },
                    Part::ToolResult {
                        id,
                        name,
                        content,
                        is_error,
                    } => Part::ToolResult {
                        id: id.clone(),
                        name: rename(name),
                        content: content.clone(),
                        is_error: *is_error,
                    },
                    text => text.clone(),
                })
                .collect(),
        })
        .collect()
}

/// A tool result as the model reads it: its text parts; other content named; structured content
/// as JSON when there is no text. Cut at [`MAX_RESULT_TEXT`].
fn result_text(result: &Value) -> (String, bool) {
    let is_error = result["isError"].as_bool().unwrap_or(false);
    let mut pieces: Vec<String> = Vec::new();
    for block in result["content"].as_array().into_iter().flatten() {
        let piece = match block["type"].as_str() {
            Some("text") => block["text"].as_str().unwrap_or_default().to_owned(),
            Some(kind @ ("image" | "audio")) => format!(
                "[{kind}: {}]",
                block["mimeType"].as_str().unwrap_or("unknown type")
            ),
            Some("resource") => match block["resource"]["text"].as_str() {
                Some(text) => text.to_owned(),
                None => format!(
                    "[resource: {}]",
                    block["resource"]["uri"].as_str().unwrap_or_default()
                ),
            },
            Some("resource_link") => {
                format!("[link: {}]", block["uri"].as_str().unwrap_or_default())
            }
            _ => continue,
        };
        pieces.push(piece);
    }
    let mut text = pieces.join("\n");
    if text.is_empty()
        && let Some(structured) = result.get("structuredContent")
    {
        text = structured.to_string();
    }
    if text.len() > MAX_RESULT_TEXT {
        let mut cut = MAX_RESULT_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n… (cut)");
    }
    (text, is_error)
}

/// Lower-case words of two letters or more.
fn words_of(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| word.len() > 1)
        .map(str::to_lowercase)
        .collect()
}

/// How many of the person's words a tool's name and description share (the name counting
/// double).
fn relevance(tool: &rmcp::model::Tool, words: &HashSet<String>) -> usize {
    let name = words_of(&tool.name);
    let description = words_of(tool.description.as_deref().unwrap_or_default());
    words
        .iter()
        .map(|word| 2 * usize::from(name.contains(word)) + usize::from(description.contains(word)))
        .sum()
}

/// Answers a server's sampling request with the chat's model, and says so in the chat.
struct ModelSampler {
    http: reqwest::Client,
    endpoint: Endpoint,
    model: String,
    events: mpsc::Sender<Event>,
    next: AtomicU64,
}

#[allow(deprecated)] // sampling: see the import
impl Sampler for ModelSampler {
    fn sample(
        &self,
        params: CreateMessageRequestParams,
        call: Option<String>,
    ) -> BoxFuture<'static, Result<CreateMessageResult, ErrorData>> {
        let http = self.http.clone();
        let endpoint = self.endpoint.clone();
        let model = self.model.clone();
        let events = self.events.clone();
        let id = format!("s{}", self.next.fetch_add(1, Ordering::Relaxed));
        Box::pin(async move {
            let messages = params
                .messages
                .iter()
                .map(|message| Message {
                    role: match message.role {
                        McpRole::Assistant => Role::Assistant,
                        _ => Role::User,
                    },
                    content: message
                        .content
                        .iter()
                        .map(|block| match block {
                            SamplingMessageContentBlock::Text(text) => Part::Text {
                                text: text.text.clone(),
                            },
                            _ => Part::Text {
                                text: "[content the playground does not pass on]".into(),
                            },
                        })
                        .collect(),
                })
                .collect();
            let request = Request {
                model: model.clone(),
                system: params.system_prompt.clone(),
                messages,
                tools: Vec::new(),
                max_tokens: params.max_tokens.clamp(1, MAX_TOKENS_LIMIT),
            };
            let refused = |failure: LlmError| {
                ErrorData::internal_error(format!("the playground's model failed: {failure}"), None)
            };
            let mut deltas = llm::stream(&http, &endpoint, &request)
                .await
                .map_err(refused)?;
            let mut text = String::new();
            let mut stop = Stop::EndTurn;
            while let Some(delta) = deltas.next().await {
                match delta.map_err(refused)? {
                    Delta::Text(piece) => text.push_str(&piece),
                    Delta::Done { stop: why, .. } => {
                        stop = why;
                        break;
                    }
                    Delta::ToolCall { .. } => {}
                }
            }
            let _ = events
                .send(event(
                    "sampled",
                    &json!({"id": id, "call": call, "model": model, "text": text}),
                ))
                .await;
            let reason = match stop {
                Stop::MaxTokens => CreateMessageResult::STOP_REASON_END_MAX_TOKEN,
                _ => CreateMessageResult::STOP_REASON_END_TURN,
            };
            let message =
                SamplingMessage::new(McpRole::Assistant, SamplingMessageContentBlock::text(text));
            Ok(CreateMessageResult::new(message, model).with_stop_reason(reason))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_result_is_given_to_the_model_as_text_and_cut_when_long() {
        let result = json!({
            "content": [
                {"type": "text", "text": "five"},
                {"type": "image", "mimeType": "image/png", "data": "AAAA"},
                {"type": "resource_link", "uri": "file:///a", "name": "a"},
            ],
            "isError": true,
        });
        assert_eq!(
            result_text(&result),
            (
                "five\n[image: image/png]\n[link: file:///a]".to_owned(),
                true
            )
        );
        let structured = json!({"content": [], "structuredContent": {"sum": 5}});
        assert_eq!(result_text(&structured), ("{\"sum\":5}".to_owned(), false));
        let long = json!({"content": [{"type": "text", "text": "é".repeat(MAX_RESULT_TEXT)}]});
        let (text, _) = result_text(&long);
        assert!(text.len() <= MAX_RESULT_TEXT + 16 && text.ends_with("(cut)"));
    }

    #[test]
    fn the_most_relevant_tools_are_those_sharing_the_persons_words() {
        let tool = |name: &str, description: &str| {
            rmcp::model::Tool::new(
                name.to_owned(),
                description.to_owned(),
                Arc::new(serde_json::Map::new()),
            )
        };
        let words = words_of("What's the weather in Paris tomorrow?");
        let weather = tool("weather__forecast", "The weather forecast for a city");
        let files = tool("files__read", "Reads a file");
        assert!(relevance(&weather, &words) > relevance(&files, &words));
        assert_eq!(relevance(&files, &words), 0);
    }
}
