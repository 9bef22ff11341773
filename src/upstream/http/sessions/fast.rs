//! Calls the session layer runs itself. rmcp's service takes every request of a session through
//! the session's worker: a channel to the worker task, a channel to the service task, a task for
//! the request, the typed decode of its arguments and encode of its result, a channel back to
//! the worker and a stream to the HTTP response. A `tools/call` whose stream can carry nothing
//! but its answer needs none of it: the router runs it ([`Router::call_tool_relayed`], the one
//! path of every call) on a task of its own, and the answer goes to the response that waits for
//! it (`guard::fast` makes that response: a JSON body, or an SSE stream for a slow call).
//!
//! Taken here: a request of a live session whose client said `initialized`, that carries no
//! progress token, whose client cannot be asked anything during the call
//! ([`Session::asks_nothing_during_calls`]), under an id the session's
//! [`Requests`](super::requests::Requests) lets it claim (the same claim rmcp's path makes, so a reused id is refused on both). Everything else
//! goes to the worker.
//!
//! What the worker gives a request's stream, this gives too: the session is busy while the
//! call runs (no hibernation, no idle expiry), the client's `notifications/cancelled` (seen by
//! the worker's transport, `requests.rs`) cancels the call, and a client that loses a slow
//! call's stream resumes it with `Last-Event-ID` (`f<n>`, the call's stream number): the answer
//! waits for it, among the last [`UNDELIVERED_KEPT`]. A stream that ended without a result
//! is noted in the session's ended streams, like one of rmcp's.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use futures::Stream;
use rmcp::model::{CallToolRequestParams, RequestId, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::{ServerSseMessage, SessionId};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::activity::Busy;
use super::ended::{EndedStreams, note_ended};
use super::{BoundedSessions, Phase};
#[cfg(doc)]
use crate::router::Session;
use crate::router::{Caller, Router};
use crate::sync::lock;
use crate::upstream::fast_calls::{self, Answer};

/// The prefix of a fast call's event ids; rmcp's are digits.
const EVENT_ID_PREFIX: char = 'f';
/// Fast calls one session may have at once (running, or answered and kept); past it a request
/// goes to the worker, whose own ceiling refuses it.
const MAX_CALLS: usize = 1024;
/// Answers kept for clients that lost their call's stream. A client resumes within seconds
/// (the priming event says 3 s); past this many the oldest are given up.
const UNDELIVERED_KEPT: usize = 64;

/// A session's fast calls: from their start until their answer went out on a response (or
/// they were cancelled, or their answer was given up).
#[derive(Default)]
pub(super) struct FastCalls(Mutex<Calls>);

#[derive(Default)]
struct Calls {
    /// By stream number.
    calls: HashMap<u64, Arc<FastCall>>,
    /// Calls that ended while no response waited for them, oldest first.
    undelivered: VecDeque<u64>,
    /// The last call's stream number.
    streams: u64,
}

impl FastCalls {
    fn start(&self, id: RequestId) -> Arc<FastCall> {
        let mut calls = lock(&self.0);
        calls.streams += 1;
        let call = Arc::new(FastCall {
            id,
            stream: calls.streams,
            ct: CancellationToken::new(),
            state: Mutex::default(),
            ended: Notify::new(),
        });
        calls.calls.insert(call.stream, call.clone());
        call
    }

    fn get(&self, stream: u64) -> Option<Arc<FastCall>> {
        lock(&self.0).calls.get(&stream).cloned()
    }

    /// The call's answer went out, or there is none to give.
    fn forget(&self, stream: u64) {
        let mut calls = lock(&self.0);
        calls.calls.remove(&stream);
        calls.undelivered.retain(|kept| *kept != stream);
    }

    /// The call ended while no response waited for it: its answer is kept for a while.
    fn keep_undelivered(&self, stream: u64) {
        let mut calls = lock(&self.0);
        if calls.undelivered.contains(&stream) {
            return;
        }
        if calls.undelivered.len() >= UNDELIVERED_KEPT
            && let Some(oldest) = calls.undelivered.pop_front()
        {
            calls.calls.remove(&oldest);
        }
        calls.undelivered.push_back(stream);
    }

    /// Calls kept: running, or answered and not yet delivered.
    pub(super) fn len(&self) -> usize {
        lock(&self.0).calls.len()
    }
}

/// One call the session layer runs, shared by its task and the responses that wait for it.
pub(crate) struct FastCall {
    id: RequestId,
    /// The call's stream number in its session (its event id is `f<stream>`).
    stream: u64,
    ct: CancellationToken,
    state: Mutex<CallState>,
    ended: Notify,
}

#[derive(Default)]
struct CallState {
    /// `Some` once the call ended: its answer, or `None` when it was cancelled.
    outcome: Option<Option<Encoded>>,
    /// Responses waiting for the answer.
    waiters: usize,
    /// The answer went out on a response (or the end of a cancelled call did).
    taken: bool,
}

/// A call's answer, encoded once.
#[derive(Clone)]
pub(crate) struct Encoded {
    pub(crate) bytes: Bytes,
    /// A JSON-RPC error: its stream counts as ended without a result.
    pub(crate) error: bool,
}

/// What a response gets of the call it waited for.
pub(crate) enum Outcome {
    Answer(Encoded),
    /// Cancelled: no answer, ever.
    Cancelled,
    /// Another response took it.
    Taken,
}

impl FastCall {
    /// The call ended with `outcome`; whether a response was waiting for it.
    fn end(&self, outcome: Option<Encoded>) -> bool {
        let waited = {
            let mut state = lock(&self.state);
            state.outcome = Some(outcome);
            state.waiters > 0
        };
        self.ended.notify_waiters();
        waited
    }

    /// Waits until the call ended.
    async fn ended(&self) {
        loop {
            let notified = self.ended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if lock(&self.state).outcome.is_some() {
                return;
            }
            notified.await;
        }
    }
}

/// A response waiting for a fast call's answer. Dropped without taking it (the client went
/// away), it leaves the answer kept for a resumption.
pub(crate) struct Waiter {
    call: Arc<FastCall>,
    calls: Arc<FastCalls>,
    ended: EndedStreams,
    /// Holds the session busy while the response is open.
    _busy: Option<Busy>,
    took: bool,
}

impl Waiter {
    fn new(
        call: Arc<FastCall>,
        calls: Arc<FastCalls>,
        ended: EndedStreams,
        busy: Option<Busy>,
    ) -> Waiter {
        lock(&call.state).waiters += 1;
        Waiter {
            call,
            calls,
            ended,
            _busy: busy,
            took: false,
        }
    }

    /// The event id of the call's stream.
    pub(crate) fn event_id(&self) -> String {
        format!("{EVENT_ID_PREFIX}{}", self.call.stream)
    }

    /// Waits until the call ended, at most `wait` (`None`: as long as it takes); whether it did.
    pub(crate) async fn wait(&self, wait: Option<Duration>) -> bool {
        match wait {
            None => {
                self.call.ended().await;
                true
            }
            Some(wait) => tokio::time::timeout(wait, self.call.ended()).await.is_ok(),
        }
    }

    /// Takes the ended call's outcome (call [`Waiter::wait`] first): the call is forgotten, and a
    /// stream that ends without a result is noted as ended.
    pub(crate) fn take(&mut self) -> Outcome {
        let outcome = {
            let mut state = lock(&self.call.state);
            let outcome = match (&state.outcome, state.taken) {
                (None, _) | (Some(_), true) => Outcome::Taken,
                (Some(Some(answer)), false) => Outcome::Answer(answer.clone()),
                (Some(None), false) => Outcome::Cancelled,
            };
            state.taken |= !matches!(outcome, Outcome::Taken);
            outcome
        };
        self.took = true;
        self.calls.forget(self.call.stream);
        let without_result = match &outcome {
            Outcome::Answer(answer) => answer.error,
            Outcome::Cancelled => true,
            Outcome::Taken => false,
        };
        if without_result {
            note_ended(&self.ended, self.event_id());
        }
        outcome
    }

    /// The call's stream from here as SSE messages, for a client that resumes it: its answer,
    /// then the end (rmcp frames it and keeps it alive).
    pub(crate) fn into_stream(
        self,
    ) -> impl Stream<Item = ServerSseMessage> + Send + Sync + 'static {
        futures::stream::unfold(Some(self), |waiter| async move {
            let mut waiter = waiter?;
            waiter.wait(None).await;
            match waiter.take() {
                Outcome::Answer(answer) => {
                    let message =
                        serde_json::from_slice::<ServerJsonRpcMessage>(&answer.bytes).ok()?;
                    Some((ServerSseMessage::from_message(message), None))
                }
                Outcome::Cancelled | Outcome::Taken => None,
            }
        })
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let keep = {
            let mut state = lock(&self.call.state);
            state.waiters -= 1;
            !self.took && state.waiters == 0 && !state.taken
        };
        if keep {
            self.calls.keep_undelivered(self.call.stream);
        }
    }
}

impl BoundedSessions {
    /// Starts `message`, a request of session `id`, as a fast call when it is one (see the
    /// module's documentation): the response's [`Waiter`]. `None`: the request goes to the
    /// session's worker, untouched.
    pub(crate) fn start_fast_call(
        &self,
        router: &Arc<Router>,
        id: &str,
        headers: &HeaderMap,
        message: &[u8],
    ) -> Option<Waiter> {
        let call = fast_calls::parse(message)?;
        // A progress token asks for notifications on the call's stream; a revision's `_meta`
        // keys are rmcp's to check against the headers.
        if call.meta.get_progress_token().is_some()
            || call
                .meta
                .0
                .keys()
                .any(|key| key.starts_with("io.modelcontextprotocol/"))
        {
            return None;
        }
        let id = SessionId::from(id.to_owned());
        let (session, requests, calls, ended) = {
            let entries = lock(&self.entries);
            let entry = entries.get(&id)?;
            if entry.phase != Phase::Live {
                return None;
            }
            let session = entry.linked.upgrade()?;
            (
                session,
                entry.requests.clone(),
                entry.fast.clone(),
                entry.ended.clone(),
            )
        };
        if !session.asks_nothing_during_calls() || calls.len() >= MAX_CALLS {
            return None;
        }
        let fast = calls.start(call.id.clone());
        if !requests.claim_fast(&call.id, &fast.ct) {
            calls.forget(fast.stream);
            return None;
        }
        let caller = Caller {
            session: Some(session),
            request_id: Some(call.id),
            meta: call.meta,
            ct: fast.ct.clone(),
            principal: Some(crate::upstream::http_principal(headers)),
            park: None,
        };
        let waiter = Waiter::new(fast.clone(), calls.clone(), ended, self.busy(&id));
        let busy = self.busy(&id);
        let router = router.clone();
        let params = CallToolRequestParams::new(call.name);
        let arguments = call.arguments;
        // A task of its own: a client that goes away does not cancel its call.
        tokio::spawn(async move {
            let _busy = busy;
            let outcome = router.call_tool_relayed(&caller, params, arguments).await;
            let cancelled = caller.ct.is_cancelled();
            requests.end_fast(&fast.id, cancelled);
            let answer = (!cancelled).then(|| encode(Answer::new(fast.id.clone(), outcome)));
            let answered = answer.is_some();
            if !fast.end(answer) {
                if answered {
                    calls.keep_undelivered(fast.stream);
                } else {
                    calls.forget(fast.stream);
                }
            }
        });
        Some(waiter)
    }

    /// A client resumes the stream of a fast call of session `id` with `last_event_id`: a waiter
    /// for its answer, when the call is still known; `None` when the id is not a fast call's.
    pub(crate) fn resume_fast_call(
        &self,
        id: &SessionId,
        last_event_id: &str,
    ) -> Option<Option<Waiter>> {
        let stream = stream_number(last_event_id)?;
        let (calls, ended) = {
            let entries = lock(&self.entries);
            match entries.get(id) {
                Some(entry) => (entry.fast.clone(), entry.ended.clone()),
                None => return Some(None),
            }
        };
        Some(
            calls
                .get(stream)
                .map(|call| Waiter::new(call, calls, ended, self.busy(id))),
        )
    }

    /// Whether `last_event_id` names a fast call's stream of session `id` that is no longer
    /// known (its answer went out, or it was cancelled or given up): nothing to resume, ever.
    pub(crate) fn fast_stream_gone(&self, id: &str, last_event_id: &str) -> bool {
        let Some(stream) = stream_number(last_event_id) else {
            return false;
        };
        lock(&self.entries)
            .get(&SessionId::from(id.to_owned()))
            .is_some_and(|entry| entry.fast.get(stream).is_none())
    }
}

/// The stream number in a fast call's event id (`f<n>`).
fn stream_number(event_id: &str) -> Option<u64> {
    event_id.strip_prefix(EVENT_ID_PREFIX)?.parse().ok()
}

/// An answer encoded once, for a JSON body or an SSE event.
fn encode(answer: Answer) -> Encoded {
    let mut bytes = Vec::with_capacity(256);
    if answer.encode(&mut bytes).is_err() {
        bytes.clear();
        bytes.extend_from_slice(
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"the answer could not be encoded"}}"#,
        );
        return Encoded {
            bytes: bytes.into(),
            error: true,
        };
    }
    Encoded {
        error: answer.is_error(),
        bytes: bytes.into(),
    }
}
