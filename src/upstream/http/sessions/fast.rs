//! Calls the session layer runs itself. rmcp's service takes every request of a session through
//! the session's worker: a channel to the worker task, a channel to the service task, a task for
//! the request, the typed decode of its arguments and encode of its result, a channel back to
//! the worker and a stream to the HTTP response. The requests the proxy passes on need none of
//! it: the router runs a `tools/call` ([`Router::call_tool_relayed`], the one path of every call,
//! its arguments raw), a `prompts/get`, `resources/read` or `completion/complete` (their small
//! params typed; `fast_calls::Job`, shared with the stdio server) on a task of its own, a
//! server's result relayed unparsed where it went on a lane, and the answer goes to the response
//! that waits for it (`guard::fast` makes that response: a JSON body, or an SSE stream when
//! something comes first or the request is slow).
//!
//! Taken here: such a request of a live session whose client said `initialized`, under an id the
//! session's [`Requests`](super::requests::Requests) lets it claim (the same claim rmcp's path
//! makes, so a reused id is refused on both). What the stream carries before the answer — the
//! server's questions that name the call as their origin, the progress the client asked for —
//! the router sends through the session's peer as always, and the worker's transport diverts it
//! to the call (`diverted.rs`). A client that takes no SSE gets only calls that can have nothing
//! before the answer (no progress token, a client that can be asked nothing:
//! [`Session::asks_nothing_during_calls`]). Everything else goes to the worker.
//!
//! What the worker gives a request's stream, this gives too: the session is busy while the
//! call runs (no hibernation, no idle expiry), the client's `notifications/cancelled` (seen by
//! the worker's transport) cancels the call, and a client that loses the stream resumes it with
//! `Last-Event-ID` (`f<n>` for the priming event, `f<n>/<k>` for the k-th message): what it had
//! not seen, then the answer, which waits for it among the last [`UNDELIVERED_KEPT`]. Once the
//! answer went out (or the call was cancelled), resuming the stream gets 405, like an ended one
//! of rmcp's.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use futures::Stream;
use rmcp::model::{ErrorData, RequestId, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::{ServerSseMessage, SessionId};
use tokio_util::sync::CancellationToken;

use super::activity::Busy;
use super::diverted::Diverted;
use super::{BoundedSessions, Phase};
#[cfg(doc)]
use crate::router::Session;
use crate::router::{Caller, HttpTrace, Router};
use crate::sync::lock;
use crate::upstream::fast_calls::{Answer, Job};

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
            diverted: Arc::default(),
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

    /// Call `stream` ended with no response waiting for it: an answer is kept for a resumption,
    /// a cancelled call (no answer) is forgotten.
    fn left_alone(&self, stream: u64, answered: bool) {
        if answered {
            self.keep_undelivered(stream);
        } else {
            self.forget(stream);
        }
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
    /// What its stream carries before the answer; its wake-up also says the call ended.
    diverted: Arc<Diverted>,
}

#[derive(Default)]
struct CallState {
    /// `Some` once the call ended: its answer, encoded once, or `None` when it was cancelled.
    outcome: Option<Option<Bytes>>,
    /// Responses waiting for the answer.
    waiters: usize,
    /// The answer went out on a response (or the end of a cancelled call did).
    taken: bool,
}

/// What comes next on a fast call's stream.
pub(crate) enum Next {
    /// A message before the answer (a question, progress), with its number.
    Message(u64, Arc<ServerJsonRpcMessage>),
    /// The call ended: its outcome is to be taken.
    Ended,
    /// Nothing within the wait.
    Nothing,
}

/// What a response gets of the call it waited for.
pub(crate) enum Outcome {
    /// The answer, one JSON-RPC message.
    Answer(Bytes),
    /// Cancelled: no answer, ever.
    Cancelled,
    /// Another response took it.
    Taken,
}

impl FastCall {
    /// The call ended with `outcome`; whether a response was waiting for it.
    fn end(&self, outcome: Option<Bytes>) -> bool {
        let waited = {
            let mut state = lock(&self.state);
            state.outcome = Some(outcome);
            state.waiters > 0
        };
        self.diverted.wake();
        waited
    }

    /// What comes after message number `after`: a message, else the end, else a wait for
    /// either. Messages come before the end: the router sends a call's progress before its
    /// answer.
    async fn next(&self, after: u64) -> Next {
        loop {
            let notified = self.diverted.changed().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some((number, message)) = self.diverted.next_after(after) {
                return Next::Message(number, message);
            }
            if lock(&self.state).outcome.is_some() {
                return Next::Ended;
            }
            notified.await;
        }
    }
}

/// A response waiting for a fast call's messages and answer. Dropped without taking the answer
/// (the client went away), it leaves the call kept for a resumption.
pub(crate) struct Waiter {
    call: Arc<FastCall>,
    calls: Arc<FastCalls>,
    /// The number of the last message this response sent.
    sent: u64,
    /// Holds the session busy while the response is open.
    _busy: Option<Busy>,
    took: bool,
}

impl Waiter {
    fn new(call: Arc<FastCall>, calls: Arc<FastCalls>, sent: u64, busy: Option<Busy>) -> Waiter {
        lock(&call.state).waiters += 1;
        Waiter {
            call,
            calls,
            sent,
            _busy: busy,
            took: false,
        }
    }

    /// The id of the call's stream's priming event: `f<n>`.
    pub(crate) fn priming_id(&self) -> String {
        format!("{EVENT_ID_PREFIX}{}", self.call.stream)
    }

    /// The event id of the call's stream after the messages sent so far (`f<n>`, then
    /// `f<n>/<message>`).
    pub(crate) fn event_id(&self) -> String {
        match self.sent {
            0 => self.priming_id(),
            sent => format!("{}/{sent}", self.priming_id()),
        }
    }

    /// What comes next, waiting at most `wait` (`None`: as long as it takes). A message is
    /// counted as sent.
    pub(crate) async fn next(&mut self, wait: Option<Duration>) -> Next {
        let next = match wait {
            None => self.call.next(self.sent).await,
            Some(wait) => tokio::time::timeout(wait, self.call.next(self.sent))
                .await
                .unwrap_or(Next::Nothing),
        };
        if let Next::Message(number, _) = &next {
            self.sent = *number;
        }
        next
    }

    /// Takes the ended call's outcome (once [`Waiter::next`] said it ended): the call is
    /// forgotten, so resuming its stream finds nothing (405).
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
        outcome
    }

    /// The call's stream from here as SSE messages, for a client that resumes it: the messages
    /// it had not seen, then the answer, then the end (rmcp frames it and keeps it alive).
    pub(crate) fn into_stream(
        self,
    ) -> impl Stream<Item = ServerSseMessage> + Send + Sync + 'static {
        futures::stream::unfold(Some(self), |waiter| async move {
            let mut waiter = waiter?;
            match waiter.next(None).await {
                Next::Message(_, message) => {
                    let event = ServerSseMessage::new(waiter.event_id(), (*message).clone());
                    Some((event, Some(waiter)))
                }
                Next::Ended => match waiter.take() {
                    Outcome::Answer(answer) => {
                        // rmcp frames a typed message: the answer is read back (a resumption,
                        // rare). Should rmcp's types refuse it, the client still gets an answer.
                        let message = serde_json::from_slice::<ServerJsonRpcMessage>(&answer)
                            .unwrap_or_else(|error| {
                                let why = format!("the answer cannot be resumed: {error}");
                                ServerJsonRpcMessage::error(
                                    ErrorData::internal_error(why, None),
                                    Some(waiter.call.id.clone()),
                                )
                            });
                        Some((ServerSseMessage::from_message(message), None))
                    }
                    Outcome::Cancelled | Outcome::Taken => None,
                },
                Next::Nothing => None,
            }
        })
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        // The last response gone before the answer went out: an ended call is settled here, a
        // running one by its task when it ends (it sees no one waiting).
        let ended = {
            let mut state = lock(&self.call.state);
            state.waiters -= 1;
            if self.took || state.waiters > 0 || state.taken {
                None
            } else {
                state.outcome.as_ref().map(Option::is_some)
            }
        };
        if let Some(answered) = ended {
            self.calls.left_alone(self.call.stream, answered);
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
        streams: bool,
    ) -> Option<Waiter> {
        let (request_id, job, meta) = Job::parse(message)?;
        // A revision's `_meta` keys are rmcp's to check against the headers.
        if meta
            .0
            .keys()
            .any(|key| key.starts_with("io.modelcontextprotocol/"))
        {
            return None;
        }
        let token = meta.get_progress_token();
        let id = SessionId::from(id.to_owned());
        let (session, requests, calls) = {
            let entries = lock(&self.entries);
            let entry = entries.get(&id)?;
            if entry.phase != Phase::Live {
                return None;
            }
            let session = entry.linked.upgrade()?;
            (session, entry.requests.clone(), entry.fast.clone())
        };
        // A client that takes no stream gets the answer alone: only a call that can have
        // nothing else before it.
        if !streams && (token.is_some() || !session.asks_nothing_during_calls()) {
            return None;
        }
        if calls.len() >= MAX_CALLS {
            return None;
        }
        let fast = calls.start(request_id.clone());
        if !requests.claim_fast(&request_id, &fast.ct, token, &fast.diverted) {
            calls.forget(fast.stream);
            return None;
        }
        let caller = Caller {
            session: Some(session),
            request_id: Some(request_id),
            meta,
            ct: fast.ct.clone(),
            principal: Some(crate::upstream::http_principal(headers)),
            park: None,
            http: HttpTrace::of(headers, Some(&id)),
        };
        let waiter = Waiter::new(fast.clone(), calls.clone(), 0, self.busy(&id));
        let busy = self.busy(&id);
        let router = router.clone();
        let fleet = self.fleet.clone();
        // A task of its own: a client that goes away does not cancel its call.
        tokio::spawn(async move {
            let _busy = busy;
            let outcome = job.run(&router, &caller).await;
            // A tool activated for the session: kept where a replica adopting it reads it.
            if let (Some(fleet), Some(session)) = (&fleet, &caller.session)
                && session.take_interests_changed()
            {
                super::shared::keep_interests(fleet, &id, session).await;
            }
            let cancelled = caller.ct.is_cancelled();
            requests.end_fast(&fast.id, cancelled);
            let answer =
                (!cancelled).then(|| encode(&fast.id, Answer::new(fast.id.clone(), outcome)));
            let answered = answer.is_some();
            if !fast.end(answer) {
                calls.left_alone(fast.stream, answered);
            }
        });
        Some(waiter)
    }

    /// A client resumes the stream of a fast call of session `id` after `last_event_id`: a
    /// waiter for the rest of it, when the call is still known; `None` when the id is not a fast
    /// call's.
    pub(crate) fn resume_fast_call(
        &self,
        id: &SessionId,
        last_event_id: &str,
    ) -> Option<Option<Waiter>> {
        let (stream, sent) = event_position(last_event_id)?;
        let Some(calls) = lock(&self.entries).get(id).map(|entry| entry.fast.clone()) else {
            return Some(None);
        };
        Some(
            calls
                .get(stream)
                .map(|call| Waiter::new(call, calls, sent, self.busy(id))),
        )
    }

    /// Whether `last_event_id` names a fast call's stream of session `id` that is no longer
    /// known (its answer went out, or it was cancelled or given up): nothing to resume, ever.
    pub(crate) fn fast_stream_gone(&self, id: &str, last_event_id: &str) -> bool {
        let Some((stream, _)) = event_position(last_event_id) else {
            return false;
        };
        lock(&self.entries)
            .get(&SessionId::from(id.to_owned()))
            .is_some_and(|entry| entry.fast.get(stream).is_none())
    }
}

/// Where a fast call's event id (`f<n>` or `f<n>/<message>`) is: the stream number, and the
/// number of the last message sent (0 for the priming event).
fn event_position(event_id: &str) -> Option<(u64, u64)> {
    let rest = event_id.strip_prefix(EVENT_ID_PREFIX)?;
    match rest.split_once('/') {
        None => Some((rest.parse().ok()?, 0)),
        Some((stream, sent)) => Some((stream.parse().ok()?, sent.parse().ok()?)),
    }
}

/// The answer to call `id`, encoded once, for a JSON body or an SSE event.
fn encode(id: &RequestId, answer: Answer) -> Bytes {
    let mut bytes = Vec::with_capacity(256);
    if let Err(error) = answer.encode(&mut bytes) {
        // A result made of JSON values always encodes; should one not, the client still gets
        // an answer to its call.
        bytes.clear();
        let message = format!("the answer could not be encoded: {error}");
        let failed =
            ServerJsonRpcMessage::error(ErrorData::internal_error(message, None), Some(id.clone()));
        let _ = serde_json::to_writer(&mut bytes, &failed);
    }
    bytes.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_left_alone_is_kept_once_it_has_an_answer_and_forgotten_when_it_has_none() {
        let calls = Arc::new(FastCalls::default());
        let kept = |calls: &FastCalls| lock(&calls.0).undelivered.clone();

        // The client goes away while the call runs: nothing is kept for it yet.
        let running = calls.start(RequestId::Number(1));
        drop(Waiter::new(running.clone(), calls.clone(), 0, None));
        assert!(kept(&calls).is_empty());
        assert!(calls.get(running.stream).is_some(), "still resumable");
        // It ends with no one waiting: its answer is kept for a resumption.
        assert!(!running.end(Some(Bytes::from_static(b"{}"))));
        calls.left_alone(running.stream, true);
        assert_eq!(kept(&calls), [running.stream]);

        // It ends while a response waits, and the response goes before taking it: kept once.
        let answered = calls.start(RequestId::Number(2));
        let waiter = Waiter::new(answered.clone(), calls.clone(), 0, None);
        assert!(answered.end(Some(Bytes::from_static(b"{}"))));
        drop(waiter);
        drop(Waiter::new(answered.clone(), calls.clone(), 0, None));
        assert_eq!(kept(&calls), [running.stream, answered.stream]);

        // Cancelled, with the response gone: nothing to resume, ever.
        let cancelled = calls.start(RequestId::Number(3));
        let waiter = Waiter::new(cancelled.clone(), calls.clone(), 0, None);
        assert!(cancelled.end(None));
        drop(waiter);
        assert!(calls.get(cancelled.stream).is_none());
        assert_eq!(calls.len(), 2);
    }
}
