//! Parked calls: a modern (2026-07-28) client calling a legacy server that asks for input.
//!
//! A legacy server asks for sampling, elicitation or roots by sending a request while it is
//! still inside `tools/call` (or `prompts/get`, `resources/read`), and it waits there for the
//! answer. A modern client takes no requests from servers: it expects an `InputRequiredResult`
//! and retries the same request with `inputResponses`. So the proxy lets the downstream call run
//! on, detached from the client's request, catches the server's questions on the way
//! ([`Question`]), answers the client with an `InputRequiredResult` whose `requestState` names
//! the parked call, and, when the retry comes, gives the server the client's answers and waits
//! for the final result (or the next questions).
//!
//! Parked calls live in a bounded table with a time to live. A `requestState` is 128 random bits
//! behind a fixed prefix, and it is bound to its owner (the bearer token over HTTP, the session
//! on stdio) and to the request it answers (method, server, name), so it cannot be used from
//! another caller or for another request. A call whose client never comes back is cancelled
//! downstream and its entry freed when its time is up.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rmcp::model::{
    ClientCapabilities, ClientRequest, ClientResult, ElicitResult, ErrorCode, ErrorData,
    InputRequest, InputRequiredResult, InputResponses, RequestMetaObject, ServerRequest,
    ServerResult,
};
// Sampling and roots are deprecated by SEP-2577; legacy servers use them.
#[allow(deprecated)]
use rmcp::model::{CreateMessageResult, ListRootsResult};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::error::{ParkedError, RouteError};
use crate::sync::lock;

/// How long a parked call waits for its client's retry unless configured otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);

/// The most calls parked at once; beyond it, a call that asks for input fails with a clear error.
pub const MAX_PARKED: usize = 4096;

/// What every `requestState` we hand out starts with, so a retry is told apart from a modern
/// server's own state (which passes through untouched).
const STATE_PREFIX: &str = "pluggedin-parked.";

/// A server's question caught on its way to a client that cannot be asked directly, with the
/// way back to the server.
pub struct Question {
    pub request: ServerRequest,
    pub reply: oneshot::Sender<Result<ClientResult, ErrorData>>,
}

/// Where a running call's questions go.
pub type Questions = mpsc::UnboundedSender<Question>;

/// What a retry must match: the request the state was handed out for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    method: String,
    server: String,
    name: String,
}

impl Fingerprint {
    /// The fingerprint of a request that can be parked (`tools/call`, `prompts/get`,
    /// `resources/read`), or `None` for any other request.
    pub fn of(server: &str, request: &ClientRequest) -> Option<Fingerprint> {
        let name = match request {
            ClientRequest::CallToolRequest(call) => call.params.name.to_string(),
            ClientRequest::GetPromptRequest(get) => get.params.name.clone(),
            ClientRequest::ReadResourceRequest(read) => read.params.uri.clone(),
            _ => return None,
        };
        Some(Fingerprint {
            method: request.method().to_owned(),
            server: server.to_owned(),
            name,
        })
    }
}

/// The fleet replica a `requestState` of ours names, if it names one.
pub fn replica_of_state(state: &str) -> Option<i64> {
    let named = state.strip_prefix(STATE_PREFIX)?.strip_prefix('r')?;
    named.split_once('.')?.0.parse().ok()
}

/// The `requestState` and `inputResponses` of a retry, when the state is one of ours.
pub fn retry_of(request: &ClientRequest) -> Option<(String, InputResponses)> {
    let (state, responses) = match request {
        ClientRequest::CallToolRequest(call) => {
            (&call.params.request_state, &call.params.input_responses)
        }
        ClientRequest::GetPromptRequest(get) => {
            (&get.params.request_state, &get.params.input_responses)
        }
        ClientRequest::ReadResourceRequest(read) => {
            (&read.params.request_state, &read.params.input_responses)
        }
        _ => return None,
    };
    let state = state
        .as_ref()
        .filter(|state| state.starts_with(STATE_PREFIX))?;
    Some((state.clone(), responses.clone().unwrap_or_default()))
}

/// One downstream call running detached from the client request that started it.
pub struct Call {
    server: String,
    outcome: oneshot::Receiver<Result<ServerResult, RouteError>>,
    questions: mpsc::UnboundedReceiver<Question>,
    /// Asked of the client and not answered yet, by the key the client was given.
    asked: BTreeMap<String, Question>,
    next_key: u64,
    /// Cancels the downstream call.
    cancel: CancellationToken,
}

/// The ends a detached call is started with: where its questions go, where its outcome goes,
/// and its cancellation (the detached caller's token).
pub struct Detached {
    pub questions: Questions,
    pub outcome: oneshot::Sender<Result<ServerResult, RouteError>>,
    pub cancel: CancellationToken,
}

impl Call {
    /// A call about to be started on `server`; start it with the returned ends.
    pub fn new(server: &str) -> (Call, Detached) {
        let (questions_tx, questions) = mpsc::unbounded_channel();
        let (outcome_tx, outcome) = oneshot::channel();
        let cancel = CancellationToken::new();
        let call = Call {
            server: server.to_owned(),
            outcome,
            questions,
            asked: BTreeMap::new(),
            next_key: 0,
            cancel: cancel.clone(),
        };
        let detached = Detached {
            questions: questions_tx,
            outcome: outcome_tx,
            cancel,
        };
        (call, detached)
    }

    /// Takes a question: answered at once when the client lacks the capability (roots: none;
    /// sampling and elicitation: an error naming it), else kept for the client.
    fn take(&mut self, question: Question, capabilities: &ClientCapabilities) {
        #[allow(deprecated)] // sampling and roots are SEP-2577-deprecated; legacy servers use them
        let (supported, what) = match &question.request {
            ServerRequest::CreateMessageRequest(_) => {
                (capabilities.sampling.is_some(), "sampling/createMessage")
            }
            ServerRequest::ElicitRequest(_) => {
                (capabilities.elicitation.is_some(), "elicitation/create")
            }
            ServerRequest::ListRootsRequest(_) => (capabilities.roots.is_some(), "roots/list"),
            _ => (false, "a custom request"),
        };
        if !supported {
            #[allow(deprecated)] // see the import
            let answer = match question.request {
                ServerRequest::ListRootsRequest(_) => {
                    Ok(ClientResult::ListRootsResult(ListRootsResult::default()))
                }
                _ => Err(ErrorData::new(
                    ErrorCode::METHOD_NOT_FOUND,
                    format!(
                        "the client does not support {what} (asked by server \"{}\")",
                        self.server
                    ),
                    None,
                )),
            };
            let _ = question.reply.send(answer);
            return;
        }
        self.next_key += 1;
        self.asked.insert(format!("q{}", self.next_key), question);
    }

    /// The questions still waiting for the client, as input requests.
    fn input_requests(&self) -> BTreeMap<String, InputRequest> {
        self.asked
            .iter()
            .filter_map(|(key, question)| {
                let request = match &question.request {
                    ServerRequest::CreateMessageRequest(request) => {
                        InputRequest::CreateMessage(request.clone())
                    }
                    ServerRequest::ElicitRequest(request) => {
                        InputRequest::Elicitation(request.clone())
                    }
                    ServerRequest::ListRootsRequest(request) => {
                        InputRequest::ListRoots(request.clone())
                    }
                    _ => return None,
                };
                Some((key.clone(), request))
            })
            .collect()
    }

    /// Hands the client's answers to the questions they answer. An answer that is not a valid
    /// result for its question fails that question (the server sees the error); answers to
    /// unknown keys are ignored, and questions without an answer are asked again.
    fn answer(&mut self, responses: InputResponses) {
        for (key, value) in responses {
            let Some(question) = self.asked.remove(&key) else {
                continue;
            };
            #[allow(deprecated)] // see the import
            let parsed = match &question.request {
                ServerRequest::CreateMessageRequest(_) => {
                    serde_json::from_value::<CreateMessageResult>(value)
                        .map(|result| ClientResult::CreateMessageResult(Box::new(result)))
                }
                ServerRequest::ElicitRequest(_) => {
                    serde_json::from_value::<ElicitResult>(value).map(ClientResult::ElicitResult)
                }
                _ => serde_json::from_value::<ListRootsResult>(value)
                    .map(ClientResult::ListRootsResult),
            };
            let answer = parsed.map_err(|error| {
                ErrorData::invalid_params(
                    format!("the client's answer \"{key}\" is not a valid result: {error}"),
                    None,
                )
            });
            let _ = question.reply.send(answer);
        }
    }

    /// Runs the call until it ends or asks for input the client must give. `ct` is the current
    /// client request's cancellation: it cancels the downstream call too.
    async fn drive(mut self, ct: &CancellationToken, capabilities: &ClientCapabilities) -> Step {
        loop {
            if !self.asked.is_empty() {
                // Whatever else the server asked meanwhile goes out in the same round.
                while let Ok(question) = self.questions.try_recv() {
                    self.take(question, capabilities);
                }
                if !self.asked.is_empty() {
                    return Step::Ask(self);
                }
            }
            tokio::select! {
                biased;
                outcome = &mut self.outcome => {
                    return Step::Done(Box::new(outcome.unwrap_or_else(|_| Err(RouteError::Cancelled))));
                }
                Some(question) = self.questions.recv() => self.take(question, capabilities),
                () = ct.cancelled() => {
                    self.cancel.cancel();
                    return Step::Done(Box::new(Err(RouteError::Cancelled)));
                }
            }
        }
    }
}

enum Step {
    Done(Box<Result<ServerResult, RouteError>>),
    Ask(Call),
}

struct Entry {
    owner: String,
    fingerprint: Fingerprint,
    call: Call,
    /// Stops the entry's expiry timer when the call is resumed.
    disarm: CancellationToken,
}

/// The table of parked calls.
pub struct ParkedCalls {
    ttl_ms: AtomicU64,
    /// This process's replica id in a fleet: its states name it, so that a retry landing on
    /// another replica is passed here.
    replica: std::sync::OnceLock<i64>,
    entries: Mutex<HashMap<String, Entry>>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl ParkedCalls {
    pub fn new(tracker: TaskTracker, shutdown: CancellationToken) -> ParkedCalls {
        ParkedCalls {
            ttl_ms: AtomicU64::new(DEFAULT_TTL.as_millis() as u64),
            replica: std::sync::OnceLock::new(),
            entries: Mutex::default(),
            tracker,
            shutdown,
        }
    }

    /// Names this process's replica of a fleet in every state handed out from now on.
    pub fn set_replica(&self, replica: i64) {
        let _ = self.replica.set(replica);
    }

    /// How long a parked call waits for its client's retry.
    pub fn set_ttl(&self, ttl: Duration) {
        self.ttl_ms
            .store(ttl.as_millis().max(1) as u64, Ordering::Relaxed);
    }

    fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms.load(Ordering::Relaxed))
    }

    /// How many calls are parked now.
    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    /// Whether no call is parked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs a freshly started call for its first client request: its result, or an
    /// `InputRequiredResult` naming it once the server asks for input. `client` is the request's
    /// `_meta` (what the client can answer), `ct` its cancellation.
    pub async fn run(
        self: &std::sync::Arc<Self>,
        call: Call,
        owner: String,
        fingerprint: Fingerprint,
        client: &RequestMetaObject,
        ct: &CancellationToken,
    ) -> Result<ServerResult, RouteError> {
        let capabilities = client.client_capabilities().unwrap_or_default();
        match call.drive(ct, &capabilities).await {
            Step::Done(outcome) => *outcome,
            Step::Ask(call) => self.park(call, owner, fingerprint),
        }
    }

    /// Resumes the parked call `state` with a retry's answers.
    pub async fn resume(
        self: &std::sync::Arc<Self>,
        state: &str,
        responses: InputResponses,
        owner: String,
        fingerprint: Fingerprint,
        client: &RequestMetaObject,
        ct: &CancellationToken,
    ) -> Result<ServerResult, RouteError> {
        let entry = {
            let mut entries = lock(&self.entries);
            match entries.remove(state) {
                Some(entry) if entry.owner == owner && entry.fingerprint == fingerprint => entry,
                Some(entry) => {
                    // Not this caller's (or not this request's): leave it for its owner.
                    tracing::warn!(
                        method = %fingerprint.method,
                        "a retry named a parked call of another caller or request; refused"
                    );
                    entries.insert(state.to_owned(), entry);
                    return Err(self.unknown(state));
                }
                None => return Err(self.unknown(state)),
            }
        };
        entry.disarm.cancel();
        let mut call = entry.call;
        call.answer(responses);
        let capabilities = client.client_capabilities().unwrap_or_default();
        match call.drive(ct, &capabilities).await {
            Step::Done(outcome) => *outcome,
            Step::Ask(call) => self.park(call, owner, fingerprint),
        }
    }

    fn unknown(&self, state: &str) -> RouteError {
        ParkedError::Unknown(state.to_owned(), self.ttl().as_secs()).into()
    }

    /// Parks a call that asks for input and answers with the `InputRequiredResult` naming it.
    fn park(
        self: &std::sync::Arc<Self>,
        call: Call,
        owner: String,
        fingerprint: Fingerprint,
    ) -> Result<ServerResult, RouteError> {
        let input = call.input_requests();
        let server = call.server.clone();
        let state = new_state(self.replica.get().copied());
        let disarm = CancellationToken::new();
        {
            let mut entries = lock(&self.entries);
            if entries.len() >= MAX_PARKED {
                drop(entries);
                call.cancel.cancel();
                tracing::warn!(
                    server,
                    "a call asking for input was refused: the parked-call table is full"
                );
                return Err(ParkedError::Full(server, MAX_PARKED).into());
            }
            entries.insert(
                state.clone(),
                Entry {
                    owner,
                    fingerprint,
                    call,
                    disarm: disarm.clone(),
                },
            );
        }
        tracing::debug!(
            server,
            questions = input.len(),
            "call parked until the client answers"
        );
        let ttl = self.ttl();
        let this = std::sync::Arc::downgrade(self);
        let shutdown = self.shutdown.clone();
        let expiring = state.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                () = disarm.cancelled() => {}
                () = shutdown.cancelled() => {
                    if let Some(this) = this.upgrade() {
                        this.expire(&expiring, "the proxy is shutting down");
                    }
                }
                () = tokio::time::sleep(ttl) => {
                    if let Some(this) = this.upgrade() {
                        this.expire(&expiring, "its client did not retry in time");
                    }
                }
            }
        });
        Ok(ServerResult::InputRequiredResult(InputRequiredResult::new(
            Some(input),
            Some(state),
        )))
    }

    /// Frees a parked call and cancels it downstream; its questions fail.
    fn expire(&self, state: &str, why: &str) {
        let Some(entry) = lock(&self.entries).remove(state) else {
            return;
        };
        let Entry {
            fingerprint, call, ..
        } = entry;
        tracing::info!(
            server = %fingerprint.server,
            method = %fingerprint.method,
            name = %fingerprint.name,
            "parked call expired ({why}); cancelled downstream"
        );
        call.cancel.cancel();
        for (_, question) in call.asked {
            let _ = question.reply.send(Err(ErrorData::internal_error(
                format!("the client never answered: {why}"),
                None,
            )));
        }
    }
}

/// Sends a server's question to the running call it belongs to and waits for the client's
/// answer (given on the retry), or for the server to give up (`cancel`).
pub async fn ask(
    questions: &Questions,
    request: ServerRequest,
    cancel: CancellationToken,
) -> Result<ClientResult, ErrorData> {
    let (reply, answer) = oneshot::channel();
    questions
        .send(Question { request, reply })
        .map_err(|_| ErrorData::internal_error("the call that asked has ended", None))?;
    tokio::select! {
        answer = answer => answer.unwrap_or_else(|_| {
            Err(ErrorData::internal_error("the call that asked has ended", None))
        }),
        () = cancel.cancelled() => Err(ErrorData::internal_error("cancelled", None)),
    }
}

/// A new `requestState`: the prefix, in a fleet `r<replica>.`, and 128 random bits in hex.
fn new_state(replica: Option<i64>) -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // Only a broken system lacks the OS CSPRNG; a v4 UUID comes from it by another path.
        bytes = uuid::Uuid::new_v4().into_bytes();
    }
    let mut state = String::with_capacity(STATE_PREFIX.len() + 32 + 22);
    state.push_str(STATE_PREFIX);
    if let Some(replica) = replica {
        state.push_str(&format!("r{replica}."));
    }
    for byte in bytes {
        state.push_str(&format!("{byte:02x}"));
    }
    state
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, deprecated)]

    use std::sync::Arc;

    use rmcp::model::{
        CallToolRequestParams, CallToolResult, ClientCapabilities, ContentBlock,
        CreateMessageRequest, CreateMessageRequestParams, ElicitRequest, Request, SamplingMessage,
    };
    use serde_json::json;

    use super::*;

    fn elicitation() -> ServerRequest {
        let params = serde_json::from_value(json!({
            "mode": "form", "message": "name?",
            "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}}
        }))
        .unwrap();
        ServerRequest::ElicitRequest(ElicitRequest::new(params))
    }

    fn sampling() -> ServerRequest {
        ServerRequest::CreateMessageRequest(CreateMessageRequest::new(
            CreateMessageRequestParams::new(vec![SamplingMessage::user_text("hi")], 10),
        ))
    }

    /// The `_meta` of a client that can answer sampling and elicitation (no roots).
    fn client() -> RequestMetaObject {
        let mut meta = RequestMetaObject::default();
        let mut capabilities = ClientCapabilities::default();
        capabilities.sampling = Some(Default::default());
        capabilities.elicitation = Some(Default::default());
        meta.set_client_capabilities(capabilities);
        meta
    }

    fn input(result: ServerResult) -> (String, String, InputRequest) {
        let ServerResult::InputRequiredResult(input) = result else {
            panic!("expected input_required, got {result:?}")
        };
        let (key, request) = input.input_requests.unwrap().into_iter().next().unwrap();
        (input.request_state.unwrap(), key, request)
    }

    #[tokio::test]
    async fn a_call_that_asks_twice_is_parked_twice_then_completes() {
        let table = Arc::new(ParkedCalls::new(
            TaskTracker::new(),
            CancellationToken::new(),
        ));
        let (call, ends) = Call::new("legacy");
        // The server: asks for a name, then for a sample, then answers with both.
        let server = tokio::spawn(async move {
            let name = ask(&ends.questions, elicitation(), CancellationToken::new()).await;
            // Roots without the capability are answered at once (an empty list), not parked.
            let roots = ask(
                &ends.questions,
                ServerRequest::ListRootsRequest(Default::default()),
                CancellationToken::new(),
            )
            .await;
            let sample = ask(&ends.questions, sampling(), CancellationToken::new()).await;
            let text = format!(
                "{:?} | {:?} | {:?}",
                name.unwrap(),
                roots.unwrap(),
                sample.unwrap()
            );
            let _ = ends
                .outcome
                .send(Ok(ServerResult::CallToolResult(CallToolResult::success(
                    vec![ContentBlock::text(text)],
                ))));
        });
        let request = ClientRequest::CallToolRequest(Request::new(CallToolRequestParams::new("t")));
        let fingerprint = Fingerprint::of("legacy", &request).unwrap();
        let (client, ct) = (client(), CancellationToken::new());
        let owner = || "me".to_owned();

        let first = table
            .run(call, owner(), fingerprint.clone(), &client, &ct)
            .await
            .unwrap();
        let (state1, key1, request1) = input(first);
        assert!(
            matches!(request1, InputRequest::Elicitation(_)),
            "{request1:?}"
        );
        assert_eq!(table.len(), 1);
        let name = json!({"action": "accept", "content": {"name": "Ada"}});
        let second = table
            .resume(
                &state1,
                InputResponses::from([(key1, name)]),
                owner(),
                fingerprint.clone(),
                &client,
                &ct,
            )
            .await
            .unwrap();
        let (state2, key2, request2) = input(second);
        assert_ne!(state1, state2, "every round gets a state of its own");
        assert!(
            matches!(request2, InputRequest::CreateMessage(_)),
            "{request2:?}"
        );

        // The first state is spent.
        let spent = table
            .resume(
                &state1,
                InputResponses::new(),
                owner(),
                fingerprint.clone(),
                &client,
                &ct,
            )
            .await
            .unwrap_err();
        assert!(
            spent.to_string().contains("names no parked call"),
            "{spent}"
        );

        let sample = json!({"role": "assistant", "content": {"type": "text", "text": "hello"}, "model": "m"});
        let done = table
            .resume(
                &state2,
                InputResponses::from([(key2, sample)]),
                owner(),
                fingerprint,
                &client,
                &ct,
            )
            .await
            .unwrap();
        let ServerResult::CallToolResult(done) = done else {
            panic!("expected the final result")
        };
        let text = format!("{done:?}");
        assert!(
            text.contains("Ada") && text.contains("hello") && text.contains("ListRootsResult"),
            "{text}"
        );
        assert!(table.is_empty());
        server.await.unwrap();
    }

    #[tokio::test]
    async fn an_invalid_answer_fails_its_question_and_an_unanswered_one_is_asked_again() {
        let table = Arc::new(ParkedCalls::new(
            TaskTracker::new(),
            CancellationToken::new(),
        ));
        let (call, ends) = Call::new("legacy");
        let server = tokio::spawn(async move {
            let first = ask(&ends.questions, sampling(), CancellationToken::new()).await;
            let _ = ends
                .outcome
                .send(Ok(ServerResult::CallToolResult(CallToolResult::success(
                    vec![ContentBlock::text(format!("{first:?}"))],
                ))));
        });
        let request = ClientRequest::CallToolRequest(Request::new(CallToolRequestParams::new("t")));
        let fingerprint = Fingerprint::of("legacy", &request).unwrap();
        let (client, ct) = (client(), CancellationToken::new());
        let (state, key, _) = input(
            table
                .run(call, "me".into(), fingerprint.clone(), &client, &ct)
                .await
                .unwrap(),
        );
        // No answer: the same question comes back under a new state.
        let again = table
            .resume(
                &state,
                InputResponses::new(),
                "me".into(),
                fingerprint.clone(),
                &client,
                &ct,
            )
            .await
            .unwrap();
        let (state, again_key, _) = input(again);
        assert_eq!(key, again_key);
        // Not a sampling result: the server's question fails with a clear error, and it decides.
        let done = table
            .resume(
                &state,
                InputResponses::from([(key, json!({"nonsense": true}))]),
                "me".into(),
                fingerprint,
                &client,
                &ct,
            )
            .await
            .unwrap();
        let text = format!("{done:?}");
        assert!(text.contains("is not a valid result"), "{text}");
        server.await.unwrap();
    }

    #[test]
    fn states_are_ours_and_distinct() {
        let (a, b) = (new_state(None), new_state(None));
        assert!(a.starts_with(STATE_PREFIX) && a.len() == STATE_PREFIX.len() + 32);
        assert_ne!(a, b);
        assert_eq!(replica_of_state(&a), None);
    }

    #[test]
    fn a_fleet_replicas_states_name_it() {
        let state = new_state(Some(42));
        assert!(state.starts_with("pluggedin-parked.r42."), "{state}");
        assert_eq!(replica_of_state(&state), Some(42));
        for other in [
            "pluggedin-parked.rx.00",
            "pluggedin-parked.r7",
            "their-own-state.r7.0",
        ] {
            assert_eq!(replica_of_state(other), None, "{other}");
        }
    }
}
