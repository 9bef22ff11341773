//! Client sessions as the router sees them: a [`Session`] (its peer, log level, resource
//! subscriptions, kept roots, and the outbox that sends its progress and log messages in
//! order), the registry of sessions to notify ([`Sessions`]), who is asking ([`Caller`]), and asking a client something
//! on a server's behalf ([`ask_client`]). Which session a server's request belongs to is
//! `attribution`'s business; which roots a server gets is `roots`'.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::{
    CancelledNotificationParam, ClientResult, ErrorCode, ErrorData, GetExtensions,
    ProgressNotificationParam, RequestId, RequestMetaObject, ServerNotification, ServerRequest,
};
// Logging and roots are deprecated by SEP-2577; legacy clients and servers use them.
#[allow(deprecated)]
use rmcp::model::{ListRootsResult, LoggingLevel, LoggingMessageNotificationParam};
use rmcp::service::{OriginatingRequestId, Peer, PeerRequestOptions, RequestContext, ServiceError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::parked::Questions;
use crate::sync::lock;

/// How long a client may take to answer a server's sampling or elicitation request.
const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// How the principal of an HTTP request begins: the digest of its bearer token follows
/// (`upstream::http_principal`).
pub const HTTP_PRINCIPAL_PREFIX: &str = "http:";

/// The most tools one session may activate; past it, activation is refused, and the session's
/// `tools/list` stays bounded whatever its client asks (or a session's row in the store says).
pub const MAX_ACTIVATED: usize = 100;

/// What a client asked to hear: its log level and the resources it subscribed to.
#[allow(deprecated)] // see the import
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interests {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<LoggingLevel>,
    #[serde(default)]
    pub subscriptions: Vec<String>,
    /// The tools `pluggedin_activate_tools` added to its `tools/list`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activated: Vec<String>,
}

/// One client session as the router sees it: where to send notifications and server-to-client
/// requests, and what the client asked for (log level, resource subscriptions).
#[derive(Default)]
pub struct Session {
    pub(super) peer: OnceLock<Peer<RoleServer>>,
    /// Progress and log messages for this session, sent one at a time by a task of its own, so
    /// they keep their order.
    outbox: OnceLock<tokio::sync::mpsc::UnboundedSender<Outgoing>>,
    /// Log messages on the outbox, not sent yet.
    logs: Arc<Pending>,
    initialized: AtomicBool,
    #[allow(deprecated)] // see the import
    pub(super) log_level: Mutex<Option<LoggingLevel>>,
    pub(super) subscriptions: Mutex<HashSet<String>>,
    /// The client's roots as the proxy knows them (`roots`).
    pub(super) roots: Mutex<KeptRoots>,
    /// One `roots/list` to the client at a time; a server asking meanwhile waits for its answer.
    pub(super) asking_roots: tokio::sync::Mutex<()>,
    /// The tools `pluggedin_activate_tools` added to this session's `tools/list` in search
    /// mode, by exposed name, in the order they were added (`exposure`).
    pub(super) activated: Mutex<Vec<String>>,
    /// Set when what the client asked to hear changed through a tool (an activation), for the
    /// layer that keeps it (a fleet's session row) to take.
    pub(super) interests_changed: AtomicBool,
    /// The session serves another replica of the fleet, which reaches a server of fleet scope
    /// through this one: the activity is that replica's to record.
    serves_replica: bool,
}

impl Session {
    /// A session through which the other replicas of a fleet reach the servers of fleet scope
    /// this replica runs.
    pub fn serving_replicas() -> Session {
        Session {
            serves_replica: true,
            ..Session::default()
        }
    }
}

/// A client's roots as it last answered, and how often it said they changed since the proxy
/// started asking (an answer to a question asked before the latest change is passed on to the
/// server that asked, but not kept).
#[derive(Default)]
pub(super) struct KeptRoots {
    #[allow(deprecated)] // see the import
    pub(super) roots: Option<Arc<ListRootsResult>>,
    pub(super) changes: u64,
}

/// A count of notifications queued on a session's outbox, and a way to wait for it to reach
/// zero.
#[derive(Default)]
pub(super) struct Pending {
    count: AtomicUsize,
    idle: tokio::sync::Notify,
}

/// A notification on its way to one session, in the order its server sent them, counted in its
/// [`Pending`] until sent.
enum Outgoing {
    Progress(ProgressNotificationParam, Arc<Pending>),
    #[allow(deprecated)] // see the import
    Log(LoggingMessageNotificationParam, Arc<Pending>),
}

/// Who is asking: the session, the request id and `_meta` of the client's request, and its
/// cancellation. The inspector commands call with no session.
pub struct Caller {
    pub session: Option<Arc<Session>>,
    pub request_id: Option<RequestId>,
    pub meta: RequestMetaObject,
    pub ct: CancellationToken,
    /// Who the caller is beyond one request, for binding parked calls to it: the bearer token
    /// over HTTP, the session on stdio (see `parked`).
    pub principal: Option<String>,
    /// Set on a parked call's own downstream request: where the server's questions go.
    pub park: Option<Questions>,
    /// What the HTTP request said that traces read (none over stdio, or with tracing off).
    pub http: Option<Box<HttpTrace>>,
}

/// The HTTP request's session id and the trace context its headers carry, for its server span.
#[derive(Clone, Debug, Default)]
pub struct HttpTrace {
    /// The session the request is in (`Mcp-Session-Id`).
    pub session_id: Option<Arc<str>>,
    /// The client's span, from `traceparent` (and `tracestate`).
    pub parent: Option<crate::traces::SpanContext>,
}

impl HttpTrace {
    /// What `headers` say, when tracing is on; `session`: the session's id when the caller
    /// knows it already (else the header is read).
    pub fn of(
        headers: &axum::http::HeaderMap,
        session: Option<&Arc<str>>,
    ) -> Option<Box<HttpTrace>> {
        use axum::http::HeaderName;
        static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
        static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
        static SESSION: HeaderName = HeaderName::from_static("mcp-session-id");
        if !crate::traces::enabled() {
            return None;
        }
        let text = |name: &HeaderName| headers.get(name).and_then(|value| value.to_str().ok());
        // `tracestate` is read only beside a `traceparent`: alone it means nothing.
        let parent = text(&TRACEPARENT).and_then(|traceparent| {
            crate::traces::SpanContext::parse(traceparent, text(&TRACESTATE))
        });
        Some(Box::new(HttpTrace {
            session_id: session.cloned().or_else(|| text(&SESSION).map(Arc::from)),
            parent,
        }))
    }
}

/// The sessions to keep informed of list changes, logs and resource updates.
#[derive(Default)]
pub(super) struct Sessions(Mutex<Vec<Weak<Session>>>);

impl Session {
    /// Records the session's peer (on `initialize`).
    pub fn attach(&self, peer: &Peer<RoleServer>) {
        let _ = self.peer.set(peer.clone());
    }

    /// The client said `notifications/initialized`: notifications may flow now.
    pub fn mark_initialized(&self) {
        self.initialized.store(true, Ordering::Release);
    }

    pub(super) fn live_peer(&self) -> Option<&Peer<RoleServer>> {
        self.peer
            .get()
            .filter(|peer| self.initialized.load(Ordering::Acquire) && !peer.is_transport_closed())
    }

    /// Whether nothing but its answer can reach the client during one of its calls that carries
    /// no progress token: the client takes no sampling or elicitation, and takes roots only if
    /// they are already kept (`roots` asks on the call's stream when they are not).
    pub fn asks_nothing_during_calls(&self) -> bool {
        let Some(info) = self.peer.get().and_then(|peer| peer.peer_info()) else {
            return false;
        };
        let capabilities = &info.capabilities;
        capabilities.sampling.is_none()
            && capabilities.elicitation.is_none()
            && (capabilities.roots.is_none() || lock(&self.roots).roots.is_some())
    }

    /// What the client asked for (log level, resource subscriptions) without a peer: a
    /// hibernating HTTP session keeps this, registered with the router, so its subscriptions
    /// still count (see `upstream::http::sessions`).
    pub fn dormant_copy(&self) -> Session {
        Session {
            log_level: Mutex::new(*lock(&self.log_level)),
            subscriptions: Mutex::new(lock(&self.subscriptions).clone()),
            activated: Mutex::new(lock(&self.activated).clone()),
            ..Session::default()
        }
    }

    /// What the client asked to hear, to be kept where another process can take the session
    /// over (a fleet's session row).
    pub fn interests(&self) -> Interests {
        let mut subscriptions: Vec<String> = lock(&self.subscriptions).iter().cloned().collect();
        subscriptions.sort();
        Interests {
            log_level: *lock(&self.log_level),
            subscriptions,
            activated: lock(&self.activated).clone(),
        }
    }

    /// Whether what the client asked to hear changed through a tool since last asked.
    pub fn take_interests_changed(&self) -> bool {
        self.interests_changed.swap(false, Ordering::Relaxed)
    }

    /// A dormant session that asked to hear `interests` (one taken over from another process).
    pub fn dormant_with(interests: Interests) -> Session {
        Session {
            log_level: Mutex::new(interests.log_level),
            subscriptions: Mutex::new(interests.subscriptions.into_iter().collect()),
            activated: Mutex::new(
                (interests.activated.into_iter())
                    .take(MAX_ACTIVATED)
                    .collect(),
            ),
            ..Session::default()
        }
    }

    /// The resources this session subscribed to.
    pub fn subscribed(&self) -> Vec<String> {
        lock(&self.subscriptions).iter().cloned().collect()
    }

    /// Takes over what a dormant copy remembers (a hibernated HTTP session waking up).
    pub fn resume_from(&self, dormant: &Session) {
        *lock(&self.log_level) = *lock(&dormant.log_level);
        lock(&self.subscriptions).extend(lock(&dormant.subscriptions).iter().cloned());
        let mut activated = lock(&self.activated);
        if activated.is_empty() {
            activated.clone_from(&lock(&dormant.activated));
        }
    }

    /// Tells this session's client that its tool list changed (a tool activated for it alone).
    pub(super) fn notify_tools_changed(&self, tracker: &TaskTracker) {
        let Some(peer) = self.live_peer().cloned() else {
            return;
        };
        tracker.spawn(async move {
            let _ = peer.notify_tool_list_changed().await;
        });
    }

    /// Sends a notification the typed model has no variant for to this session's client.
    pub(super) fn notify(&self, method: &str, params: serde_json::Value, tracker: &TaskTracker) {
        let Some(peer) = self.live_peer().cloned() else {
            return;
        };
        let notification = ServerNotification::CustomNotification(
            rmcp::model::CustomNotification::new(method, Some(params)),
        );
        tracker.spawn(async move {
            let _ = peer.send_notification(notification).await;
        });
    }

    /// Queues a progress notification on the session's outbox, counted in `pending` until it is
    /// sent.
    pub(super) fn queue_progress(
        &self,
        params: ProgressNotificationParam,
        pending: &Arc<Pending>,
        tracker: &TaskTracker,
    ) {
        self.queue(Outgoing::Progress(params, pending.clone()), tracker);
    }

    /// Queues a log message on the session's outbox, behind the progress and logs its servers
    /// sent before it, counted in the session's [`Session::logs`] until it is sent.
    #[allow(deprecated)] // see the import
    pub(super) fn queue_log(&self, params: LoggingMessageNotificationParam, tracker: &TaskTracker) {
        self.queue(Outgoing::Log(params, self.logs.clone()), tracker);
    }

    /// The log messages queued for this session and not sent yet: a call's answer waits for
    /// them, as its server sent them first.
    pub(super) fn logs(&self) -> &Arc<Pending> {
        &self.logs
    }

    /// The outbox's task starts with the first notification and ends with the session.
    #[allow(deprecated)] // logging: see the import
    fn queue(&self, outgoing: Outgoing, tracker: &TaskTracker) {
        let pending = match &outgoing {
            Outgoing::Progress(_, pending) | Outgoing::Log(_, pending) => pending.clone(),
        };
        let Some(peer) = self.peer.get() else {
            return;
        };
        let outbox = self.outbox.get_or_init(|| {
            let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<Outgoing>();
            let peer = peer.clone();
            // Ends when the session (the sender) is gone.
            tracker.spawn(async move {
                while let Some(outgoing) = receiver.recv().await {
                    let pending = match outgoing {
                        Outgoing::Progress(params, pending) => {
                            let _ = peer.notify_progress(params).await;
                            pending
                        }
                        Outgoing::Log(params, pending) => {
                            let _ = peer.notify_logging_message(params).await;
                            pending
                        }
                    };
                    pending.done();
                }
            });
            sender
        });
        pending.count.fetch_add(1, Ordering::AcqRel);
        if outbox.send(outgoing).is_err() {
            pending.done();
        }
    }
}

impl Pending {
    fn done(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Waits until every notification counted here has been sent.
    pub(super) async fn flushed(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }
}

impl Caller {
    pub fn from_context(session: &Arc<Session>, context: &RequestContext<RoleServer>) -> Caller {
        Caller {
            session: Some(session.clone()),
            request_id: Some(context.id.clone()),
            meta: context.meta.clone(),
            ct: context.ct.clone(),
            principal: None,
            park: None,
            http: None,
        }
    }

    /// The session itself, outside any request of its client (making an adopted session's
    /// subscriptions again).
    pub fn for_session(session: Arc<Session>) -> Caller {
        Caller {
            session: Some(session),
            ..Caller::detached()
        }
    }

    /// A caller with no client behind it (the `call` command).
    pub fn detached() -> Caller {
        Caller {
            session: None,
            request_id: None,
            meta: RequestMetaObject::default(),
            ct: CancellationToken::new(),
            principal: None,
            park: None,
            http: None,
        }
    }

    /// The digest of the caller's bearer token, the principal of an HTTP request; `None` on
    /// stdio (whose principal is its session) and for callers with no client.
    /// Whether the request comes from another replica of the fleet for a server of fleet scope
    /// (see [`Session::serving_replicas`]).
    pub(super) fn serves_replica(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|session| session.serves_replica)
    }

    pub(super) fn token(&self) -> Option<&str> {
        self.principal
            .as_deref()
            .filter(|principal| principal.starts_with(HTTP_PRINCIPAL_PREFIX))
    }

    /// Whether the caller speaks a protocol revision without `initialize` (2026-07-28 on).
    pub(super) fn is_modern(&self) -> bool {
        self.meta
            .protocol_version()
            .is_some_and(|version| !version.has_initialize())
    }

    /// The protocol revision the caller speaks, as a metrics label: a modern client's from its
    /// request's `_meta`, a legacy one's from its handshake.
    pub fn version_label(&self) -> &'static str {
        if let Some(version) = self.meta.protocol_version() {
            return crate::metrics::version_label(Some(version.as_str()));
        }
        self.session
            .as_ref()
            .and_then(|session| session.peer.get())
            .and_then(|peer| peer.peer_info())
            .map_or("", |info| {
                crate::metrics::version_label(Some(info.protocol_version.as_str()))
            })
    }

    /// Whom a parked call belongs to: the caller's principal, else its session.
    pub(super) fn owner(&self) -> String {
        match (&self.principal, &self.session) {
            (Some(principal), _) => principal.clone(),
            (None, Some(session)) => format!("session:{:p}", Arc::as_ptr(session)),
            (None, None) => "nobody".to_owned(),
        }
    }
}

impl Sessions {
    /// Keeps `session` informed of list changes, logs and resource updates.
    pub(super) fn register(&self, session: &Arc<Session>) {
        let mut sessions = lock(&self.0);
        sessions.retain(|weak| weak.strong_count() > 0);
        sessions.push(Arc::downgrade(session));
    }

    /// The registered sessions still alive; ended ones are forgotten on the way.
    pub(super) fn live(&self) -> Vec<Arc<Session>> {
        let mut sessions = lock(&self.0);
        sessions.retain(|weak| weak.strong_count() > 0);
        sessions.iter().filter_map(Weak::upgrade).collect()
    }
}

/// The method of a server's request to a client, for logs and errors (rmcp's `ServerRequest`
/// has no `method()`, unlike `ClientRequest`).
pub fn method_of(request: &ServerRequest) -> &'static str {
    match request {
        ServerRequest::CreateMessageRequest(_) => "sampling/createMessage",
        ServerRequest::ElicitRequest(_) => "elicitation/create",
        ServerRequest::ListRootsRequest(_) => "roots/list",
        ServerRequest::PingRequest(_) => "ping",
        _ => "a custom request",
    }
}

/// Asks a client session something on a server's behalf (sampling, elicitation, roots), on the
/// stream of the client request `origin` when there is one. `asker` says who asks, for messages
/// (`server "x"`). `cancel` ends the question early.
pub(super) async fn ask_client(
    session: &Session,
    origin: Option<RequestId>,
    asker: &str,
    mut request: ServerRequest,
    cancel: CancellationToken,
) -> Result<ClientResult, ErrorData> {
    let method = method_of(&request);
    let Some(peer) = session.peer.get().cloned() else {
        return Err(ErrorData::internal_error(
            "the client session is not ready",
            None,
        ));
    };
    let capabilities = peer
        .peer_info()
        .map(|info| info.capabilities.clone())
        .unwrap_or_default();
    let supported = match &request {
        ServerRequest::CreateMessageRequest(_) => capabilities.sampling.is_some(),
        ServerRequest::ElicitRequest(_) => capabilities.elicitation.is_some(),
        ServerRequest::ListRootsRequest(_) => capabilities.roots.is_some(),
        _ => true,
    };
    // Roots are asked only of clients that have the capability (`roots`).
    if !supported {
        return Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!("the client does not support {method} (asked by {asker})"),
            None,
        ));
    }
    // Deliver it on the stream of the client request that caused it (rmcp takes the
    // association from this marker; the downstream's task-local id would be wrong).
    if let Some(origin) = origin {
        request
            .extensions_mut()
            .insert(OriginatingRequestId(origin));
    }
    let asker = asker.to_owned();
    // A fresh task: rmcp's task-local request id of the downstream's request must not leak into
    // the upstream request.
    let ask = tokio::spawn(async move {
        let handle = peer
            .send_request_with_option(
                request,
                PeerRequestOptions::with_timeout(CLIENT_REQUEST_TIMEOUT),
            )
            .await
            .map_err(|error| {
                ErrorData::internal_error(format!("cannot ask the client: {error}"), None)
            })?;
        let id = handle.id.clone();
        let upstream = handle.peer.clone();
        tokio::select! {
            answer = handle.await_response() => answer.map_err(|error| match error {
                ServiceError::McpError(data) => data,
                other => ErrorData::internal_error(format!("the client did not answer {method}: {other}"), None),
            }),
            () = cancel.cancelled() => {
                let params = CancelledNotificationParam::new(
                    Some(id),
                    Some(format!("{asker} cancelled its request")),
                );
                let _ = upstream.notify_cancelled(params).await;
                Err(ErrorData::internal_error("cancelled", None))
            }
        }
    });
    ask.await.map_err(|error| {
        ErrorData::internal_error(format!("asking the client failed: {error}"), None)
    })?
}
