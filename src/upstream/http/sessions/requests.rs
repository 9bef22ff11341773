//! The request ids in flight in each session. rmcp routes a session's answers by JSON-RPC id, so
//! a second request with the id of one still in flight would take the first one's answer and
//! leave the first unanswered: a request reusing an id (or past [`MAX_REQUESTS_IN_FLIGHT`]) is
//! answered with an error and never reaches the session. An id is free again once the handler has
//! answered it, seen where the answer leaves it ([`SessionTransport`]); a cancelled request's id
//! stays taken among the last [`CANCELLED_KEPT`] cancelled, since its handler may still be finishing.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use rmcp::RoleServer;
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ErrorData, JsonRpcMessage, RequestId,
    ServerJsonRpcMessage,
};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::LocalSessionWorker;
use rmcp::transport::streamable_http_server::session::{ServerSseMessage, SessionId};
use rmcp::transport::{Transport, WorkerTransport};

use futures::future::Either;
use rmcp::model::{GetExtensions, ProgressToken, ServerNotification};
use rmcp::service::OriginatingRequestId;
use tokio_util::sync::CancellationToken;

use super::BoundedSessions;
use super::diverted::Diverted;
use crate::sync::lock;

/// Requests one session may have in flight at once. Beyond what a client does (an agent runs a
/// few tools at a time); about 50 bytes each.
const MAX_REQUESTS_IN_FLIGHT: usize = 1024;
/// Cancelled requests whose ids stay taken (see the module's documentation); about 50 bytes each.
const CANCELLED_KEPT: usize = 256;

/// The ids of a session's requests in flight, and of its last cancelled ones.
#[derive(Default)]
pub(crate) struct Requests(Mutex<RequestIds>);

#[derive(Default)]
struct RequestIds {
    in_flight: HashSet<RequestId>,
    cancelled: VecDeque<RequestId>,
    /// The calls in flight that the session layer runs itself (`fast.rs`): a client's
    /// `notifications/cancelled` reaches them through the worker's transport, and what the
    /// service sends for them is diverted to their own streams.
    fast: HashMap<RequestId, FastRoute>,
}

/// Where a fast call's messages go, and how it is cancelled.
struct FastRoute {
    ct: CancellationToken,
    /// The client's progress token for the call.
    token: Option<ProgressToken>,
    diverted: Arc<Diverted>,
    /// The ids of the questions sent on its stream (for their cancellation), the last few.
    asked: VecDeque<RequestId>,
}

/// Questions per fast call whose cancellation is followed; a server asks one thing at a time.
const ASKED_KEPT: usize = 16;

/// Why a request was not let into its session.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    InFlight,
    TooMany,
}

/// A request's id, taken in its session's [`Requests`] until the request is answered.
pub(super) struct Claim {
    requests: Arc<Requests>,
    id: RequestId,
}

/// A session's worker transport, as its handler sees it: answers leaving the handler free their
/// request's id, and so does a client's cancellation (into the kept cancelled ids).
pub(crate) struct SessionTransport {
    inner: WorkerTransport<LocalSessionWorker>,
    requests: Arc<Requests>,
}

impl Requests {
    fn claim(&self, id: &RequestId) -> Result<(), Refused> {
        lock(&self.0).claim(id)
    }

    /// Claims `id` for a call the session layer runs itself, cancelled by `ct`, whose messages
    /// (progress under `token`, questions that name it as their origin) go to `diverted`;
    /// `false` (the request goes to the session's worker, which refuses it the same way) when
    /// the id is taken or too many are in flight.
    pub(super) fn claim_fast(
        &self,
        id: &RequestId,
        ct: &CancellationToken,
        token: Option<ProgressToken>,
        diverted: &Arc<Diverted>,
    ) -> bool {
        let mut ids = lock(&self.0);
        if ids.claim(id).is_err() {
            return false;
        }
        let route = FastRoute {
            ct: ct.clone(),
            token,
            diverted: diverted.clone(),
            asked: VecDeque::new(),
        };
        ids.fast.insert(id.clone(), route);
        true
    }

    /// Where `message`, on its way from the service to the client, goes instead of the worker:
    /// the stream of the fast call it belongs to, if any.
    fn diverted(&self, message: &TxJsonRpcMessage<RoleServer>) -> Option<Arc<Diverted>> {
        let mut ids = lock(&self.0);
        if ids.fast.is_empty() {
            return None;
        }
        match message {
            JsonRpcMessage::Request(request) => {
                let origin = request.request.extensions().get::<OriginatingRequestId>()?;
                let route = ids.fast.get_mut(&origin.0)?;
                if route.asked.len() >= ASKED_KEPT {
                    route.asked.pop_front();
                }
                route.asked.push_back(request.id.clone());
                Some(route.diverted.clone())
            }
            JsonRpcMessage::Notification(notification) => match &notification.notification {
                ServerNotification::ProgressNotification(progress) => ids
                    .fast
                    .values()
                    .find(|route| route.token.as_ref() == Some(&progress.params.progress_token))
                    .map(|route| route.diverted.clone()),
                ServerNotification::CancelledNotification(cancelled) => {
                    let asked = cancelled.params.request_id.as_ref()?;
                    ids.fast
                        .values()
                        .find(|route| route.asked.contains(asked))
                        .map(|route| route.diverted.clone())
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// Fast call `id` ended: its id is free again, unless it was cancelled (the cancellation
    /// moved it among the cancelled ids, see the module's documentation).
    pub(super) fn end_fast(&self, id: &RequestId, cancelled: bool) {
        if !cancelled {
            let mut ids = lock(&self.0);
            ids.fast.remove(id);
            ids.in_flight.remove(id);
        }
    }

    fn release(&self, id: &RequestId) {
        lock(&self.0).in_flight.remove(id);
    }

    fn cancelled(&self, id: &RequestId) {
        let mut ids = lock(&self.0);
        if let Some(route) = ids.fast.remove(id) {
            route.ct.cancel();
        }
        if ids.in_flight.remove(id) {
            if ids.cancelled.len() >= CANCELLED_KEPT {
                ids.cancelled.pop_front();
            }
            ids.cancelled.push_back(id.clone());
        }
    }

    /// The ids kept: in flight, and recently cancelled.
    pub(super) fn len(&self) -> usize {
        let ids = lock(&self.0);
        ids.in_flight.len() + ids.cancelled.len()
    }
}

impl RequestIds {
    fn claim(&mut self, id: &RequestId) -> Result<(), Refused> {
        if self.in_flight.contains(id) || self.cancelled.contains(id) {
            return Err(Refused::InFlight);
        }
        if self.in_flight.len() >= MAX_REQUESTS_IN_FLIGHT {
            return Err(Refused::TooMany);
        }
        self.in_flight.insert(id.clone());
        Ok(())
    }
}

impl Claim {
    /// Frees the id of a request that never reached the session.
    pub(super) fn release(self) {
        self.requests.release(&self.id);
    }
}

impl BoundedSessions {
    /// Takes the id of a request (other messages take none) in session `id`; a request whose id
    /// is taken gets its answer here instead, and never reaches the session.
    pub(super) fn claim(
        &self,
        id: &SessionId,
        message: &ClientJsonRpcMessage,
    ) -> Result<Option<Claim>, ServerSseMessage> {
        let ClientJsonRpcMessage::Request(request) = message else {
            return Ok(None);
        };
        let Some(requests) = self.requests(id) else {
            return Ok(None);
        };
        let request_id = request.id.clone();
        if let Err(why) = requests.claim(&request_id) {
            tracing::debug!(session = %id, request = %request_id, ?why, "request refused before reaching the session");
            return Err(refusal(request_id, &why));
        }
        Ok(Some(Claim {
            requests,
            id: request_id,
        }))
    }

    fn requests(&self, id: &SessionId) -> Option<Arc<Requests>> {
        lock(&self.entries)
            .get(id)
            .map(|entry| entry.requests.clone())
    }

    /// A new worker for session `id`: its transport, sharing the entry's request ids.
    pub(super) fn transport(&self, id: &SessionId, worker: LocalSessionWorker) -> SessionTransport {
        SessionTransport {
            inner: WorkerTransport::spawn(worker),
            requests: self.requests(id).unwrap_or_default(),
        }
    }
}

/// A session's answer to a request it was not given (its id in flight, or too many in flight).
fn refusal(id: RequestId, why: &Refused) -> ServerSseMessage {
    let message = match why {
        Refused::InFlight => format!(
            "request id {} is already in flight in this session; an id must not be reused",
            serde_json::to_string(&id).unwrap_or_default()
        ),
        Refused::TooMany => format!(
            "this session already has {MAX_REQUESTS_IN_FLIGHT} requests in flight; wait for \
             answers before sending more"
        ),
    };
    ServerSseMessage::from_message(ServerJsonRpcMessage::error(
        ErrorData::invalid_request(message, None),
        Some(id),
    ))
}

impl Transport<RoleServer> for SessionTransport {
    type Error = <WorkerTransport<LocalSessionWorker> as Transport<RoleServer>>::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let answered = match &item {
            JsonRpcMessage::Response(response) => Some(response.id.clone()),
            JsonRpcMessage::Error(error) => error.id.clone(),
            _ => None,
        };
        // A fast call's messages go to its own stream (`diverted.rs`), not the worker's.
        if let Some(diverted) = self.requests.diverted(&item) {
            diverted.push(item);
            return Either::Left(std::future::ready(Ok(())));
        }
        let sent = self.inner.send(item);
        let requests = self.requests.clone();
        Either::Right(async move {
            // Freed once the worker has routed the answer to its stream: a request reusing the
            // id after that gets a stream of its own.
            let result = sent.await;
            if let Some(id) = answered {
                requests.release(&id);
            }
            result
        })
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<RoleServer>>> + Send {
        let requests = self.requests.clone();
        let received = self.inner.receive();
        async move {
            let message = received.await;
            if let Some(JsonRpcMessage::Notification(notification)) = &message
                && let ClientNotification::CancelledNotification(cancelled) =
                    &notification.notification
                && let Some(id) = &cancelled.params.request_id
            {
                requests.cancelled(id);
            }
            message
        }
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_id_is_taken_until_answered_and_a_cancelled_one_for_a_while() {
        let requests = Requests::default();
        let seven = RequestId::Number(7);
        assert_eq!(requests.claim(&seven), Ok(()));
        assert_eq!(requests.claim(&seven), Err(Refused::InFlight));
        // The same digits as a string are another id.
        assert_eq!(requests.claim(&RequestId::String("7".into())), Ok(()));
        requests.release(&seven);
        assert_eq!(requests.claim(&seven), Ok(()));
        requests.cancelled(&seven);
        assert_eq!(requests.claim(&seven), Err(Refused::InFlight));
        for n in 0..CANCELLED_KEPT {
            let id = RequestId::Number(1000 + n as i64);
            requests.claim(&id).unwrap();
            requests.cancelled(&id);
        }
        assert_eq!(requests.claim(&seven), Ok(()));
        assert_eq!(requests.len(), 2 + CANCELLED_KEPT);
        for n in 0..MAX_REQUESTS_IN_FLIGHT {
            let _ = requests.claim(&RequestId::Number(10_000 + n as i64));
        }
        assert_eq!(
            requests.claim(&RequestId::Number(-1)),
            Err(Refused::TooMany)
        );
    }
}
