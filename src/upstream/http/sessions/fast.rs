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
//! ([`Session::asks_nothing_during_calls`]), under an id the session's [`Requests`] lets it
//! claim (the same claim rmcp's path makes, so a reused id is refused on both). Everything else
//! goes to the worker.
//!
//! What the worker gives a request's stream, this gives too: the session is busy while the
//! call runs (no hibernation, no idle expiry), the client's `notifications/cancelled` (seen by
//! the worker's transport, `requests.rs`) cancels the call, and a client that loses a slow
//! call's stream resumes it with `Last-Event-ID` (`f<n>`, the call's stream number): the answer
//! waits for it, among the last [`super::requests`] keeps. A stream that ended without a result
//! is noted in the session's ended streams, like one of rmcp's.

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
use super::requests::Requests;
use super::{BoundedSessions, Phase};
use crate::router::{Caller, Router};
use crate::sync::lock;
use crate::upstream::fast_calls::{self, Answer};

/// The prefix of a fast call's event ids; rmcp's are digits.
const EVENT_ID_PREFIX: char = 'f';

/// One call the session layer runs, shared by its task and the responses that wait for it.
pub(crate) struct FastCall {
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
    pub(super) fn new(stream: u64) -> FastCall {
        FastCall {
            stream,
            ct: CancellationToken::new(),
            state: Mutex::default(),
            ended: Notify::new(),
        }
    }

    pub(super) fn stream(&self) -> u64 {
        self.stream
    }

    pub(super) fn cancel(&self) {
        self.ct.cancel();
    }

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
    id: RequestId,
    call: Arc<FastCall>,
    requests: Arc<Requests>,
    ended: Option<EndedStreams>,
    /// Holds the session busy while the response is open.
    _busy: Option<Busy>,
    took: bool,
}

impl Waiter {
    fn new(
        id: RequestId,
        call: Arc<FastCall>,
        requests: Arc<Requests>,
        ended: Option<EndedStreams>,
        busy: Option<Busy>,
    ) -> Waiter {
        lock(&call.state).waiters += 1;
        Waiter {
            id,
            call,
            requests,
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
        self.requests.forget_fast(&self.id, &self.call);
        let without_result = match &outcome {
            Outcome::Answer(answer) => answer.error,
            Outcome::Cancelled => true,
            Outcome::Taken => false,
        };
        if without_result && let Some(ended) = &self.ended {
            note_ended(ended, self.event_id());
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
            self.requests.keep_undelivered(&self.id);
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
        let (session, requests, ended) = {
            let entries = lock(&self.entries);
            let entry = entries.get(&id)?;
            if entry.phase != Phase::Live {
                return None;
            }
            let session = entry.linked.upgrade()?;
            (session, entry.requests.clone(), entry.ended.clone())
        };
        if !session.asks_nothing_during_calls() {
            return None;
        }
        let fast = requests.start_fast(&call.id)?;
        let caller = Caller {
            session: Some(session),
            request_id: Some(call.id.clone()),
            meta: call.meta,
            ct: fast.ct.clone(),
            principal: Some(crate::upstream::http_principal(headers)),
            park: None,
        };
        let waiter = Waiter::new(
            call.id.clone(),
            fast.clone(),
            requests.clone(),
            Some(ended),
            self.busy(&id),
        );
        let busy = self.busy(&id);
        let router = router.clone();
        let params = CallToolRequestParams::new(call.name);
        let arguments = call.arguments;
        let request_id = call.id;
        // A task of its own: a client that goes away does not cancel its call.
        tokio::spawn(async move {
            let _busy = busy;
            let outcome = router.call_tool_relayed(&caller, params, arguments).await;
            let cancelled = caller.ct.is_cancelled();
            requests.end_fast(&request_id, cancelled);
            let answer = (!cancelled).then(|| encode(Answer::new(request_id.clone(), outcome)));
            let kept = answer.is_some();
            if !fast.end(answer) {
                if kept {
                    requests.keep_undelivered(&request_id);
                } else {
                    requests.forget_fast(&request_id, &fast);
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
        let (requests, ended) = {
            let entries = lock(&self.entries);
            match entries.get(id) {
                Some(entry) => (entry.requests.clone(), entry.ended.clone()),
                None => return Some(None),
            }
        };
        Some(requests.fast_stream(stream).map(|(request_id, call)| {
            Waiter::new(request_id, call, requests, Some(ended), self.busy(id))
        }))
    }
}

/// The stream number in a fast call's event id (`f<n>`).
pub(super) fn stream_number(event_id: &str) -> Option<u64> {
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
