//! Tool calls with an event stream, for the console and scripts: `POST /api/v1/tools/call` with
//! `Accept: text/event-stream` runs the call in a client session of its own, in-process — an MCP
//! client that declares sampling and elicitation, connected to a `ProxyHandler` as any client
//! is — so the call takes the path a client's does (policy, activity log, timeouts, progress,
//! cancellation, the server's questions). What the session receives becomes server-sent events:
//! `call` (its id, first), `progress`, `log`, `elicitation` and `sampling` (a question, answered
//! with `POST /api/v1/calls/{call}/answers/{question}`), then `result` or `error`.
//! `DELETE /api/v1/calls/{call}`, or closing the stream, cancels the call (its session ends, and
//! with it the request, which the router cancels on the server). Log messages are the called
//! tool's server's: legacy logging belongs to a session, so calls on the same server meanwhile
//! share them. rmcp handles each notification in a task of its own, apart from responses: the
//! session's transport counts the progress and log notifications it receives ([`Counted`]), and a
//! result waits until those that came before it have become events. Bounded: at most
//! [`MAX_CALLS`] calls at once, [`MAX_QUESTIONS`] open questions a call, progress and logs
//! dropped (never the result) when the reader falls [`EVENT_BUFFER`] events behind.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use futures::future::BoxFuture;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientCapabilities, ClientConfig, ClientRequest,
    ElicitRequestParams, ElicitResult, ElicitationCapability, FormElicitationCapability,
    Implementation, ProgressNotificationParam, ProtocolVersion, SamplingCapability, ServerResult,
};
// Sampling and logging are deprecated by SEP-2577; legacy sessions (this one) use them.
#[allow(deprecated)]
use rmcp::model::{
    CreateMessageRequestParams, CreateMessageResult, LoggingLevel, LoggingMessageNotificationParam,
    SetLevelRequestParams,
};
use rmcp::model::{JsonRpcMessage, ServerNotification};
use rmcp::service::{
    NotificationContext, PeerRequestOptions, RequestContext, RunningService, ServiceExt,
};
use rmcp::transport::Transport;
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::{ClientHandler, ErrorData, RoleClient};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::router::Router;
use crate::sync::lock;
use crate::upstream::ProxyHandler;

/// The most streamed calls in flight at once.
pub(super) const MAX_CALLS: usize = 32;
/// The most questions one call has open (a server asks one thing at a time).
const MAX_QUESTIONS: usize = 8;
/// Events a reader may fall behind by before progress and logs are dropped.
const EVENT_BUFFER: usize = 256;
/// The in-process pipe between the call's client and its session.
const PIPE_BYTES: usize = 1 << 20;
/// The longest a result waits for the notifications before it to become events.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

/// Work running with an event stream — streamed calls, the playground's chats — by id: at most
/// `max` at once, and each removed and cancelled when its stream ends.
pub(super) struct Running {
    live: Mutex<HashMap<String, Arc<Live>>>,
    /// Starts each id: `call`, `chat`.
    prefix: &'static str,
    max: usize,
}

/// One streamed call (or playground chat): its cancellation and its open questions.
pub(super) struct Live {
    pub(super) cancel: CancellationToken,
    questions: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    next_question: AtomicU64,
}

impl Live {
    pub(super) fn new() -> Arc<Live> {
        Arc::new(Live {
            cancel: CancellationToken::new(),
            questions: Mutex::default(),
            next_question: AtomicU64::new(1),
        })
    }

    /// Gives the answer to an open question.
    pub(super) fn answer(&self, question: &str, answer: Value) -> Result<(), Missing> {
        let waiting = lock(&self.questions)
            .remove(question)
            .ok_or(Missing::Question)?;
        // The call may have ended meanwhile; the answer then has nobody to go to.
        let _ = waiting.send(answer);
        Ok(())
    }
}

/// Why an answer or a cancellation found nothing to act on.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Missing {
    Call,
    Question,
}

/// Removes the work from its table and cancels it, however its stream ends.
pub(super) struct Registered {
    running: Arc<Running>,
    id: String,
    cancel: CancellationToken,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.cancel.cancel();
        lock(&self.running.live).remove(&self.id);
    }
}

impl Running {
    pub(super) fn new(prefix: &'static str, max: usize) -> Running {
        Running {
            live: Mutex::default(),
            prefix,
            max,
        }
    }

    /// Registers new work: its id, its state, and the guard that ends it (held by its event
    /// stream); `None` when `max` are running.
    pub(super) fn register(self: &Arc<Running>) -> Option<(String, Arc<Live>, Registered)> {
        let live = Live::new();
        // Random: with several tokens, one caller cannot guess another's work to answer or
        // cancel it.
        let id = format!("{}-{}", self.prefix, uuid::Uuid::new_v4().simple());
        {
            let mut table = lock(&self.live);
            if table.len() >= self.max {
                return None;
            }
            table.insert(id.clone(), live.clone());
        }
        let registered = Registered {
            running: self.clone(),
            id: id.clone(),
            cancel: live.cancel.clone(),
        };
        Some((id, live, registered))
    }

    /// Gives the answer to an open question of the work `id`.
    pub(super) fn answer(&self, id: &str, question: &str, answer: Value) -> Result<(), Missing> {
        let live = lock(&self.live).get(id).cloned().ok_or(Missing::Call)?;
        live.answer(question, answer)
    }

    /// Cancels the work `id`.
    pub(super) fn cancel(&self, id: &str) -> Result<(), Missing> {
        let live = lock(&self.live).get(id).cloned().ok_or(Missing::Call)?;
        live.cancel.cancel();
        Ok(())
    }
}

/// Starts `params` as a streamed call; `None` when [`MAX_CALLS`] are in flight.
pub(super) fn start(
    calls: &Arc<Running>,
    router: Arc<Router>,
    params: CallToolRequestParams,
) -> Option<Sse<impl Stream<Item = Result<Event, Infallible>> + use<>>> {
    let (id, live, registered) = calls.register()?;
    let (events, receiver) = mpsc::channel::<Event>(EVENT_BUFFER);
    let _ = events.try_send(event("call", &json!({ "id": id })));
    tokio::spawn(run(router, params, live, events));
    Some(event_stream(receiver, registered))
}

/// The events `receiver` gets, as a response's stream; the work ends when the stream does.
pub(super) fn event_stream(
    receiver: mpsc::Receiver<Event>,
    registered: Registered,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures::stream::unfold(
        (receiver, registered),
        |(mut receiver, registered)| async move {
            let event = receiver.recv().await?;
            Some((Ok(event), (receiver, registered)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

pub(super) fn event(name: &'static str, data: &Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

/// Runs the call in its own session and sends what happens as events; the result (or the
/// error) last.
async fn run(
    router: Arc<Router>,
    params: CallToolRequestParams,
    live: Arc<Live>,
    events: mpsc::Sender<Event>,
) {
    let cancel = live.cancel.clone();
    let last = match call(router, params, live, events.clone()).await {
        Ok(result) => event("result", &result),
        // Whatever the ending session made of the call, it was cancelled.
        Err(_) if cancel.is_cancelled() => {
            event("error", &json!({"status": 499, "error": "cancelled"}))
        }
        Err(failure) => event("error", &failure),
    };
    let _ = events.send(last).await;
}

async fn call(
    router: Arc<Router>,
    params: CallToolRequestParams,
    live: Arc<Live>,
    events: mpsc::Sender<Event>,
) -> Result<Value, Value> {
    // Log messages name their server (`<server>/<logger>`): the called tool's are shown.
    let server = server_of(&router, &params.name);
    let handler = ConsoleClient::new(live.clone(), events, None);
    handler.set_current(None, server);
    let session = InProcess::open(router, handler, &live.cancel).await?;
    let outcome = session.call(params, &live.cancel).await;
    // The outcome goes out now; the session closes behind it.
    session.close();
    outcome
}

/// The server a tool name routes to (`None`: a built-in tool, or not served).
pub(super) fn server_of(router: &Router, tool: &str) -> Option<String> {
    router
        .catalog()
        .resolve_tool(tool)
        .ok()
        .map(|route| route.server)
}

fn failed(status: u16, message: String) -> Value {
    json!({"status": status, "error": message})
}

/// A client session of our own, in-process, connected to a `ProxyHandler` as any client is.
pub(super) struct InProcess {
    client: RunningService<RoleClient, ConsoleClient>,
    server: tokio::task::JoinHandle<()>,
}

impl InProcess {
    /// Opens the session; `cancel` ends it (and with it every request in flight).
    pub(super) async fn open(
        router: Arc<Router>,
        handler: ConsoleClient,
        cancel: &CancellationToken,
    ) -> Result<InProcess, Value> {
        let (client_end, server_end) = tokio::io::duplex(PIPE_BYTES);
        let session = ProxyHandler::new(router);
        // Cancelling ends the session at once: the request's own cancellation then reaches the
        // server, whatever the order in which the pipe carried the request and a notification.
        let session_cancel = cancel.child_token();
        let server = tokio::spawn(async move {
            if let Ok(running) = session.serve_with_ct(server_end, session_cancel).await {
                let _ = running.waiting().await;
            }
        });
        let (read, write) = tokio::io::split(client_end);
        let transport = Counted {
            inner: AsyncRwTransport::new_client(read, write),
            notes: handler.notes.clone(),
        };
        let client = tokio::select! {
            client = handler.serve(transport) => client.map_err(|error| {
                failed(500, format!("the call's session did not start: {error}"))
            })?,
            () = cancel.cancelled() => return Err(failed(499, "cancelled".into())),
        };
        // Logs at every level reach the console; the session's own stream is all that gets
        // them.
        #[allow(deprecated)]
        let _ = client
            .peer()
            .set_level(SetLevelRequestParams::new(LoggingLevel::Debug))
            .await;
        Ok(InProcess { client, server })
    }

    /// Calls a tool: its result as JSON, or `{status, error}` saying what stopped it.
    pub(super) async fn call(
        &self,
        params: CallToolRequestParams,
        cancel: &CancellationToken,
    ) -> Result<Value, Value> {
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let sent = self
            .client
            .peer()
            .send_cancellable_request(request, PeerRequestOptions::no_options())
            .await;
        let outcome = match sent {
            Err(error) => Err(failed(500, format!("the call was not sent: {error}"))),
            Ok(handle) => tokio::select! {
                () = cancel.cancelled() => Err(failed(499, "cancelled".into())),
                answer = handle.await_response() => answer.map_err(|error| failed_call(&error)),
            },
        };
        let outcome = outcome?;
        // The progress and logs the server sent before its answer go out before it.
        self.client.service().notes.settled().await;
        match outcome {
            ServerResult::CallToolResult(result) => {
                let mut result = serde_json::to_value(result).unwrap_or_default();
                crate::wire::core_tasks::unstash_result(&mut result);
                Ok(result)
            }
            _ => Err(failed(
                502,
                "the server did not answer with a tool result".into(),
            )),
        }
    }

    /// Ends the session, in the background.
    pub(super) fn close(self) {
        let InProcess { client, server } = self;
        tokio::spawn(async move {
            let _ = client.cancel().await;
            let _ = server.await;
        });
    }
}

/// The HTTP status that says what stopped a call, and its message.
fn failed_call(error: &rmcp::service::ServiceError) -> Value {
    use rmcp::model::ErrorCode;
    let (status, message) = match error {
        rmcp::service::ServiceError::McpError(data) => {
            let status = match data.code {
                ErrorCode::INVALID_PARAMS => 400,
                ErrorCode::METHOD_NOT_FOUND => 404,
                _ if data.message.contains("timed out") => 504,
                _ if data.message.contains("not connected") => 503,
                _ => 502,
            };
            (status, data.message.to_string())
        }
        other => (502, other.to_string()),
    };
    json!({"status": status, "error": message})
}

/// Answers a server's sampling request otherwise than by asking the person (the playground's
/// model).
#[allow(deprecated)] // sampling: see the import
pub(super) trait Sampler: Send + Sync {
    /// Answers `params`, asked during the tool call `call` (see [`ConsoleClient::set_current`]).
    fn sample(
        &self,
        params: CreateMessageRequestParams,
        call: Option<String>,
    ) -> BoxFuture<'static, Result<CreateMessageResult, ErrorData>>;
}

/// The call the session is running now, which its events are about.
#[derive(Default)]
struct Current {
    /// Put in progress and log events as `call` (`None`: one call a session, no need).
    call: Option<String>,
    /// The called tool's server, whose log messages are the call's (`None`: a built-in tool,
    /// all are shown).
    server: Option<String>,
}

/// The session's client: declares sampling and elicitation, and turns what the session sends
/// into events.
#[derive(Clone)]
pub(super) struct ConsoleClient {
    live: Arc<Live>,
    events: mpsc::Sender<Event>,
    current: Arc<Mutex<Current>>,
    sampler: Option<Arc<dyn Sampler>>,
    notes: Arc<Notes>,
}

/// Progress and log notifications: how many the transport received, how many became events (or
/// were left out).
#[derive(Default)]
struct Notes {
    received: AtomicU64,
    handled: AtomicU64,
    changed: tokio::sync::Notify,
}

impl Notes {
    fn handled(&self) {
        self.handled.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    /// Waits (at most [`SETTLE`]) until every notification received so far is handled.
    async fn settled(&self) {
        let received = self.received.load(Ordering::Acquire);
        let _ = tokio::time::timeout(SETTLE, async {
            loop {
                let changed = self.changed.notified();
                if self.handled.load(Ordering::Acquire) >= received {
                    return;
                }
                changed.await;
            }
        })
        .await;
    }
}

/// The client's end of the pipe, counting the progress and log notifications it receives
/// before rmcp hands each to a task of its own.
struct Counted<T> {
    inner: T,
    notes: Arc<Notes>,
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for Counted<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: rmcp::service::TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<rmcp::service::RxJsonRpcMessage<RoleClient>> {
        let message = self.inner.receive().await?;
        if let JsonRpcMessage::Notification(note) = &message
            && matches!(
                note.notification,
                ServerNotification::ProgressNotification(_)
                    | ServerNotification::LoggingMessageNotification(_)
            )
        {
            self.notes.received.fetch_add(1, Ordering::AcqRel);
        }
        Some(message)
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}

impl ConsoleClient {
    pub(super) fn new(
        live: Arc<Live>,
        events: mpsc::Sender<Event>,
        sampler: Option<Arc<dyn Sampler>>,
    ) -> ConsoleClient {
        ConsoleClient {
            live,
            events,
            current: Arc::default(),
            sampler,
            notes: Arc::default(),
        }
    }

    /// Says which call (and server) the events that follow are about.
    pub(super) fn set_current(&self, call: Option<String>, server: Option<String>) {
        *lock(&self.current) = Current { call, server };
    }

    fn label(&self, data: &mut Value) {
        if let Some(call) = &lock(&self.current).call {
            data["call"] = Value::String(call.clone());
        }
    }

    /// Sends a question as an event and waits for its answer (or the call's end).
    async fn ask(&self, kind: &'static str, mut question: Value) -> Result<Value, ErrorData> {
        let id = format!(
            "q{}",
            self.live.next_question.fetch_add(1, Ordering::Relaxed)
        );
        let (sender, answer) = oneshot::channel();
        {
            let mut open = lock(&self.live.questions);
            if open.len() >= MAX_QUESTIONS {
                return Err(ErrorData::internal_error(
                    "too many questions open on this call",
                    None,
                ));
            }
            open.insert(id.clone(), sender);
        }
        question["id"] = Value::String(id.clone());
        self.label(&mut question);
        if self.events.send(event(kind, &question)).await.is_err() {
            lock(&self.live.questions).remove(&id);
            return Err(ErrorData::internal_error("nobody reads this call", None));
        }
        tokio::select! {
            answer = answer => answer.map_err(|_| {
                ErrorData::internal_error("the question was not answered", None)
            }),
            () = self.live.cancel.cancelled() => {
                lock(&self.live.questions).remove(&id);
                Err(ErrorData::internal_error("cancelled in the console", None))
            }
        }
    }

    /// An event that may be dropped when the reader is behind.
    fn tell(&self, kind: &'static str, data: &Value) {
        let _ = self.events.try_send(event(kind, data));
    }
}

fn invalid_answer(what: &str, error: &serde_json::Error) -> ErrorData {
    ErrorData::invalid_params(format!("the console's answer is not {what}: {error}"), None)
}

#[allow(deprecated)] // sampling and logging: see the import
impl ClientHandler for ConsoleClient {
    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        capabilities.sampling = Some(SamplingCapability::default());
        capabilities.elicitation =
            Some(ElicitationCapability::new().with_form(FormElicitationCapability::new()));
        let implementation = Implementation::new("pluggedin-console", env!("CARGO_PKG_VERSION"));
        let mut config = ClientConfig::new(capabilities, implementation);
        config.protocol_version = ProtocolVersion::V_2025_11_25;
        config
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let question = serde_json::to_value(&params).unwrap_or_default();
        let answer = self.ask("elicitation", question).await?;
        serde_json::from_value(answer)
            .map_err(|error| invalid_answer("an elicitation result", &error))
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        if let Some(sampler) = &self.sampler {
            let call = lock(&self.current).call.clone();
            return sampler.sample(params, call).await;
        }
        let question = serde_json::to_value(&params).unwrap_or_default();
        let answer = self.ask("sampling", question).await?;
        serde_json::from_value(answer).map_err(|error| invalid_answer("a sampling result", &error))
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let mut data = json!({ "progress": params.progress });
        if let Some(total) = params.total {
            data["total"] = json!(total);
        }
        if let Some(message) = params.message {
            data["message"] = json!(message);
        }
        self.label(&mut data);
        self.tell("progress", &data);
        self.notes.handled();
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        // Legacy logging belongs to a session, not a request: calls running on the same server
        // meanwhile share its messages; other servers' are left out.
        let server = lock(&self.current).server.clone();
        if let Some(server) = &server {
            let logger = params.logger.as_deref().unwrap_or_default();
            let ours = logger
                .strip_prefix(server.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
            if !ours {
                self.notes.handled();
                return;
            }
        }
        let mut data = serde_json::to_value(&params).unwrap_or_default();
        self.label(&mut data);
        self.tell("log", &data);
        self.notes.handled();
    }
}
