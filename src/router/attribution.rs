//! Attribution: which client session a server-to-client request (sampling, elicitation, roots)
//! belongs to. Every forwarded request with a session is registered while it is in flight
//! ([`InFlight::register`]). A server's request is attributed exactly when the downstream
//! transport says which of our requests it came with, else to the one session with calls on
//! that server, and refused rather than guessed when several have ([`InFlight::attribute`]).
//! Asking the client is left to `session`, answering roots to `roots`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rmcp::model::RequestId;
// Logging is deprecated by SEP-2577; legacy clients and servers use it.
#[allow(deprecated)]
use rmcp::model::LoggingLevel;
use rmcp::service::InboundStreamOrigin;

use super::parked::Questions;
use super::session::{Session, Sessions};
use crate::sync::lock;

/// How long a server-to-client request waits for the call that caused it to be registered (the
/// server may ask before our forwarding task has recorded its call).
const ATTRIBUTION_WAIT: Duration = Duration::from_millis(200);

/// The forwarded requests in flight, for finding the session a server-to-client request
/// belongs to.
#[derive(Default)]
pub(super) struct InFlight {
    calls: Mutex<BTreeMap<u64, Forwarded>>,
    next: AtomicU64,
    /// Signalled whenever a call is registered: an attribution waiting for its call looks again.
    registered: tokio::sync::Notify,
}

/// A forwarded request in flight.
pub(super) struct Forwarded {
    pub(super) server: String,
    pub(super) session: Weak<Session>,
    pub(super) request_id: RequestId,
    /// The id the request has on the downstream connection.
    pub(super) downstream_id: RequestId,
    /// A parked call's request (modern client): its questions go here, not to the session.
    pub(super) park: Option<Questions>,
    /// The log level a modern caller asked a modern server for on this request.
    #[allow(deprecated)] // see the import
    pub(super) logs_for_modern_caller: Option<LoggingLevel>,
}

/// A registered call, removed from the table when this is dropped (however the request ends).
pub(super) struct Registered<'a> {
    in_flight: &'a InFlight,
    key: u64,
}

/// Which client session a server-to-client request belongs to.
pub(super) enum Attribution {
    Session(Arc<Session>, Option<RequestId>),
    /// The request came with a modern client's call: the question is parked with it.
    Parked(Questions),
    /// No session has a request in flight on the server, and there is not exactly one session.
    Nobody,
    /// Several sessions have requests in flight on a server whose transport cannot say which one
    /// asked (stdio, legacy SSE): guessing could hand one client's question to another.
    Ambiguous(usize),
}

impl InFlight {
    /// Registers a call for as long as the returned value lives.
    pub(super) fn register(&self, call: Forwarded) -> Registered<'_> {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        lock(&self.calls).insert(key, call);
        self.registered.notify_waiters();
        Registered {
            in_flight: self,
            key,
        }
    }

    /// The session a server-to-client request from `server` belongs to. Exact when the
    /// downstream transport tells which of our requests it came with (Streamable HTTP); else the
    /// one session with requests in flight on that server; else, with no request in flight, the
    /// only session there is. Finding nobody, it waits (up to [`ATTRIBUTION_WAIT`]) for calls
    /// being registered, and looks again.
    pub(super) async fn attribute(
        &self,
        server: &str,
        origin: Option<&InboundStreamOrigin>,
        sessions: &Sessions,
    ) -> Attribution {
        let deadline = tokio::time::Instant::now() + ATTRIBUTION_WAIT;
        loop {
            let registered = self.registered.notified();
            tokio::pin!(registered);
            registered.as_mut().enable();
            let found = self.attribute_now(server, origin, sessions);
            if !matches!(found, Attribution::Nobody) {
                return found;
            }
            if tokio::time::timeout_at(deadline, registered).await.is_err() {
                return self.attribute_now(server, origin, sessions);
            }
        }
    }

    fn attribute_now(
        &self,
        server: &str,
        origin: Option<&InboundStreamOrigin>,
        sessions: &Sessions,
    ) -> Attribution {
        let calls = lock(&self.calls);
        if let Some(InboundStreamOrigin::OutboundRequest(downstream_id)) = origin {
            let call = calls
                .values()
                .find(|call| call.server == server && call.downstream_id == *downstream_id);
            if let Some(park) = call.and_then(|call| call.park.clone()) {
                return Attribution::Parked(park);
            }
            return call
                .and_then(|call| Some((call.session.upgrade()?, call.request_id.clone())))
                .map_or(Attribution::Nobody, |(session, id)| {
                    Attribution::Session(session, Some(id))
                });
        }
        // A parked call's question can be told apart only if it is the one call on the server.
        let mut on_server = calls.values().filter(|call| call.server == server);
        if let Some(first) = on_server.next()
            && (first.park.is_some() || on_server.clone().any(|call| call.park.is_some()))
        {
            let others = on_server.count();
            return match (&first.park, others) {
                (Some(park), 0) => Attribution::Parked(park.clone()),
                _ => Attribution::Ambiguous(others + 1),
            };
        }
        let mut found: Vec<(Arc<Session>, RequestId)> = Vec::new();
        for call in calls.values().filter(|call| call.server == server) {
            let Some(session) = call.session.upgrade() else {
                continue;
            };
            match found
                .iter_mut()
                .find(|(known, _)| Arc::ptr_eq(known, &session))
            {
                // Keep the session's latest request: its stream is the freshest.
                Some(entry) => entry.1 = call.request_id.clone(),
                None => found.push((session, call.request_id.clone())),
            }
        }
        drop(calls);
        match found.len() {
            1 => {
                let (session, id) = found.remove(0);
                Attribution::Session(session, Some(id))
            }
            0 => {
                let mut live: Vec<_> = sessions
                    .live()
                    .into_iter()
                    .filter(|session| session.live_peer().is_some())
                    .collect();
                if live.len() == 1 {
                    Attribution::Session(live.remove(0), None)
                } else {
                    Attribution::Nobody
                }
            }
            several => Attribution::Ambiguous(several),
        }
    }

    /// The session of the one modern request in flight on `server` that asked for logs, with
    /// the level it asked for. With several, nothing in a log message tells them apart, and it
    /// is not guessed.
    #[allow(deprecated)] // see the import
    pub(super) fn log_listener(&self, server: &str) -> Option<(Weak<Session>, LoggingLevel)> {
        let wanting: Vec<(Weak<Session>, LoggingLevel)> = lock(&self.calls)
            .values()
            .filter(|call| call.server == server)
            .filter_map(|call| Some((call.session.clone(), call.logs_for_modern_caller?)))
            .collect();
        match <[_; 1]>::try_from(wanting) {
            Ok([one]) => Some(one),
            Err(_) => None,
        }
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        lock(&self.in_flight.calls).remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::NumberOrString;

    use super::*;

    fn forwarded(session: &Arc<Session>, downstream_id: i64) -> Forwarded {
        Forwarded {
            server: "demo".to_owned(),
            session: Arc::downgrade(session),
            request_id: NumberOrString::Number(1),
            downstream_id: NumberOrString::Number(downstream_id),
            park: None,
            logs_for_modern_caller: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_comes_before_its_call_is_registered_is_attributed_when_it_is() {
        let in_flight = Arc::new(InFlight::default());
        let sessions = Arc::new(Sessions::default());
        let session = Arc::new(Session::default());
        let origin = InboundStreamOrigin::OutboundRequest(NumberOrString::Number(7));
        let started = tokio::time::Instant::now();
        let asking = tokio::spawn({
            let (in_flight, sessions) = (in_flight.clone(), sessions.clone());
            async move { in_flight.attribute("demo", Some(&origin), &sessions).await }
        });
        // The attribution runs (one thread) and waits for a registration.
        tokio::task::yield_now().await;
        let _registered = in_flight.register(forwarded(&session, 7));
        match asking.await.unwrap() {
            Attribution::Session(found, Some(NumberOrString::Number(1))) => {
                assert!(Arc::ptr_eq(&found, &session));
            }
            _ => panic!("expected the session of the registered call"),
        }
        // Woken by the registration, not by the end of its wait (time is paused: it moves only
        // when every task waits for a timer).
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_no_call_of_ours_explains_is_attributed_to_nobody_after_the_wait() {
        let in_flight = InFlight::default();
        let session = Arc::new(Session::default());
        // A call on the same server, but another downstream request than the one that asked.
        let _registered = in_flight.register(forwarded(&session, 8));
        let origin = InboundStreamOrigin::OutboundRequest(NumberOrString::Number(7));
        let started = tokio::time::Instant::now();
        let found = in_flight
            .attribute("demo", Some(&origin), &Sessions::default())
            .await;
        assert!(matches!(found, Attribution::Nobody));
        assert_eq!(started.elapsed(), ATTRIBUTION_WAIT);
    }
}
