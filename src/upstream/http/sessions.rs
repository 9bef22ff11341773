//! HTTP sessions: rmcp's local session manager, with our ids (128 random bits from the OS CSPRNG),
//! a ceiling on how many live at once (the least recently used is evicted to make room), the
//! token that owns each, the counts `/health` reports, the requests in flight in each, and
//! hibernation.
//!
//! Idle expiry of a live session is rmcp's `keep_alive`; of a hibernated one, ours. Everything
//! kept per session lives in its entry, keyed by an id we made, so it goes with the session
//! (expired, evicted, deleted): nothing is ever kept for an id a client made up.
//!
//! **Two pools.** With `--require-api-auth`, a session made without a token (`initialize` needs
//! none, for the original's lazy discovery) is *anonymous*: anonymous sessions have a small pool
//! of their own (`--max-anonymous-sessions`) and evict only each other, so requests without a
//! token never push out a session that has one. A token's first use of an anonymous session binds
//! it to that token and moves it to the main pool (`--max-sessions`).
//!
//! **Requests in flight.** rmcp routes a session's answers by JSON-RPC id, so a second request
//! with the id of one still in flight would take the first one's answer and leave the first
//! unanswered. Each session keeps the ids of its requests in flight (at most
//! [`MAX_REQUESTS_IN_FLIGHT`]); a request reusing one is answered with an error and never reaches
//! the session. An id is free again once the session's handler has answered it (seen where the
//! answer leaves the handler, [`SessionTransport`]). A cancelled request gets no answer, and its
//! handler may still be finishing: its id stays taken among the last [`CANCELLED_KEPT`] cancelled.
//!
//! **Hibernation.** A live session costs about 60 KiB, nearly all of it rmcp's per-session
//! worker and service (tokio channels and task futures). A session idle for `--session-hibernate-after`
//! (no request in flight, no GET stream open) gives them up and keeps only what it needs to come
//! back: its `initialize` parameters, and a dormant copy of the router's [`Session`] (log level,
//! resource subscriptions; registered with the router, so its subscriptions still count). The next
//! request with its id wakes it through rmcp's own restore path (the `SessionStore` below): rmcp
//! replays `initialize` and `notifications/initialized` into a new service under the same id,
//! with a [`SessionRestoreMarker`](rmcp::transport::streamable_http_server::session::SessionRestoreMarker),
//! and the handler takes the dormant copy over ([`BoundedSessions::resumed`]) before the
//! client's request runs. The client sees the same session.
//!
//! The phases of an entry: `Live` → (idle) `Hibernating` (old worker told to stop; its end, which
//! rmcp reports through `close_session`, makes it) → `Hibernated` → (a request) `Waking` (a new
//! worker replaying the handshake) → (`notifications/initialized` replayed) `Live`.
//!
//! **Ended request streams.** Each session remembers the last event id of its request streams
//! that ended without a result (the request was cancelled, or answered with an error), so the
//! guard can tell a client that resumes one that there is nothing to resume
//! ([`BoundedSessions::stream_ended`]; ARCHITECTURE.md says why).

use std::collections::{HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use rmcp::RoleServer;
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ErrorData, InitializeRequestParams, JsonRpcMessage,
    RequestId, ServerJsonRpcMessage,
};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError, LocalSessionWorker, SessionConfig,
    create_local_session,
};
use rmcp::transport::streamable_http_server::session::{
    RestoreOutcome, ServerSseMessage, SessionId, SessionManager, SessionState, SessionStore,
    SessionStoreError,
};
use rmcp::transport::{Transport, WorkerTransport};
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

use super::guard::TokenHash;
use crate::router::{Router, Session};
use crate::sync::lock;

/// How long a request for a hibernating session waits for its old worker to finish.
const SETTLE_WAIT: Duration = Duration::from_secs(5);
/// Ended request streams a session remembers (the oldest are forgotten first). A client resumes
/// within seconds (rmcp's priming event says 3 s), so this only needs to cover the calls a client
/// cancels at once; about 50 bytes each.
const ENDED_STREAMS_KEPT: usize = 64;
/// Requests one session may have in flight at once. Beyond what a client does (an agent runs a
/// few tools at a time); about 50 bytes each.
pub(crate) const MAX_REQUESTS_IN_FLIGHT: usize = 1024;
/// Cancelled requests whose ids stay taken (see the module's documentation); about 50 bytes each.
const CANCELLED_KEPT: usize = 256;

tokio::task_local! {
    /// Who is creating a session: set by the guard around an `initialize`, read by
    /// [`BoundedSessions::create_session`], which rmcp calls within that request.
    pub(crate) static CREATOR: Creator;
}

/// Who creates a session.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Creator {
    /// The token of the request, if it had one.
    pub(crate) owner: Option<TokenHash>,
    /// Made without a token while tokens are required: the anonymous pool.
    pub(crate) anonymous: bool,
}

/// What [`BoundedSessions::bind`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Binding {
    /// The session belongs to this token (now, or already).
    Owner,
    /// It belongs to another token.
    Foreign,
    /// No such session: nothing is kept (rmcp answers 404).
    Unknown,
}

/// When idle sessions give up their worker, and the router their dormant copies register with.
pub(crate) struct Hibernation {
    pub(crate) after: Duration,
    pub(crate) router: Arc<Router>,
}

pub(crate) struct BoundedSessions {
    inner: LocalSessionManager,
    max: usize,
    max_anonymous: usize,
    ttl: Duration,
    hibernation: Option<Hibernation>,
    entries: Mutex<HashMap<SessionId, Entry>>,
    /// Wakes requests waiting for a hibernating session's old worker to finish.
    settled: Notify,
    /// The zero of [`Activity::last`].
    epoch: Instant,
    /// The source of [`Activity::order`].
    uses: AtomicU64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Live,
    Hibernating,
    Hibernated,
    Waking,
}

struct Entry {
    phase: Phase,
    activity: Arc<Activity>,
    /// The client's `initialize` parameters (from rmcp, through [`SessionStore::store`]); boxed,
    /// so that the map's slots stay small.
    init: Option<Box<InitializeRequestParams>>,
    /// The live handler's session, once the client said `notifications/initialized`.
    linked: Weak<Session>,
    /// While hibernating and waking: what the client asked for, registered with the router.
    dormant: Option<Arc<Session>>,
    /// The last event ids of request streams that ended without a result.
    ended: EndedStreams,
    /// The token that owns the session (with `--require-api-auth`).
    owner: Option<TokenHash>,
    /// In the anonymous pool (made without a token, not yet used with one).
    anonymous: bool,
    /// The ids of its requests in flight, shared with its worker's transport.
    requests: Arc<Requests>,
}

/// The ids of a session's requests in flight, and of its last cancelled ones.
#[derive(Default)]
pub(crate) struct Requests(Mutex<RequestIds>);

#[derive(Default)]
struct RequestIds {
    in_flight: HashSet<RequestId>,
    cancelled: VecDeque<RequestId>,
}

/// Why a request was not let into its session.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    InFlight,
    TooMany,
}

impl Requests {
    fn claim(&self, id: &RequestId) -> Result<(), Refused> {
        let mut ids = lock(&self.0);
        if ids.in_flight.contains(id) || ids.cancelled.contains(id) {
            return Err(Refused::InFlight);
        }
        if ids.in_flight.len() >= MAX_REQUESTS_IN_FLIGHT {
            return Err(Refused::TooMany);
        }
        ids.in_flight.insert(id.clone());
        Ok(())
    }

    fn release(&self, id: &RequestId) {
        lock(&self.0).in_flight.remove(id);
    }

    fn cancelled(&self, id: &RequestId) {
        let mut ids = lock(&self.0);
        if ids.in_flight.remove(id) {
            if ids.cancelled.len() >= CANCELLED_KEPT {
                ids.cancelled.pop_front();
            }
            ids.cancelled.push_back(id.clone());
        }
    }

    fn len(&self) -> usize {
        let ids = lock(&self.0);
        ids.in_flight.len() + ids.cancelled.len()
    }
}

/// A session's worker transport, as its handler sees it: answers leaving the handler free their
/// request's id, and so does a client's cancellation (into the kept cancelled ids).
pub(crate) struct SessionTransport {
    inner: WorkerTransport<LocalSessionWorker>,
    requests: Arc<Requests>,
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
        let sent = self.inner.send(item);
        let requests = self.requests.clone();
        async move {
            // Freed once the worker has routed the answer to its stream: a request reusing the
            // id after that gets a stream of its own.
            let result = sent.await;
            if let Some(id) = answered {
                requests.release(&id);
            }
            result
        }
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

/// What `/health` says of the sessions and what is kept for them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SessionCounts {
    /// Every session, live or hibernated.
    pub(crate) sessions: usize,
    pub(crate) hibernated: usize,
    /// In the anonymous pool.
    pub(crate) anonymous: usize,
    /// Bound to a token.
    pub(crate) owned: usize,
    /// rmcp's live session workers.
    pub(crate) workers: usize,
    /// Request ids kept (in flight, and recently cancelled), over all sessions.
    pub(crate) request_ids: usize,
}

/// Last event ids of ended request streams, shared between a session's entry and its streams.
type EndedStreams = Arc<Mutex<VecDeque<String>>>;

/// Requests and streams in flight on a session, and when it was last used.
struct Activity {
    busy: AtomicUsize,
    /// Milliseconds since [`BoundedSessions::epoch`].
    last: AtomicU64,
    /// The order of last uses (for least-recently-used eviction).
    order: AtomicU64,
}

/// Held by each response stream (and GET stream) of a session while it is open.
struct Busy {
    activity: Arc<Activity>,
    epoch: Instant,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.activity
            .last
            .store(millis_since(self.epoch), Ordering::Relaxed);
        self.activity.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Slots a session map keeps however empty it gets.
const MIN_CAPACITY: usize = 64;

/// Gives back most of a map's table once it is mostly empty: a hash map keeps its largest
/// capacity otherwise, and 10,000 sessions that came and went would hold their slots for good.
fn shrink<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > MIN_CAPACITY && map.len() * 4 < map.capacity() {
        map.shrink_to((map.len() * 2).max(MIN_CAPACITY));
    }
}

impl BoundedSessions {
    /// At most `max` sessions in the main pool and `max_anonymous` in the anonymous one.
    pub(crate) fn new(
        max: usize,
        max_anonymous: usize,
        idle_ttl: Duration,
        hibernation: Option<Hibernation>,
    ) -> BoundedSessions {
        let mut inner = LocalSessionManager::default();
        let mut config = SessionConfig::default();
        config.keep_alive = Some(idle_ttl);
        inner.session_config = config;
        BoundedSessions {
            inner,
            max: max.max(1),
            max_anonymous: max_anonymous.max(1),
            ttl: idle_ttl,
            hibernation,
            entries: Mutex::default(),
            settled: Notify::new(),
            epoch: Instant::now(),
            uses: AtomicU64::new(0),
        }
    }

    /// Starts hibernating idle sessions and expiring hibernated ones (when hibernation is on), on
    /// a task that ends with the last reference to `sessions`.
    pub(crate) fn start(sessions: &Arc<BoundedSessions>) {
        let Some(hibernation) = &sessions.hibernation else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let period =
            (hibernation.after / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
        let weak = Arc::downgrade(sessions);
        runtime.spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(sessions) = weak.upgrade() else {
                    return;
                };
                sessions.sweep().await;
            }
        });
    }

    /// The sessions and what is kept for them.
    pub(crate) async fn counts(&self) -> SessionCounts {
        let mut counts = {
            let entries = lock(&self.entries);
            let mut counts = SessionCounts {
                sessions: entries.len(),
                ..SessionCounts::default()
            };
            for entry in entries.values() {
                counts.hibernated += usize::from(matches!(
                    entry.phase,
                    Phase::Hibernating | Phase::Hibernated
                ));
                counts.anonymous += usize::from(entry.anonymous);
                counts.owned += usize::from(entry.owner.is_some());
                counts.request_ids += entry.requests.len();
            }
            counts
        };
        counts.workers = self.inner.sessions.read().await.len();
        counts
    }

    /// Binds session `id` to `token` if it has no owner yet (moving it out of the anonymous
    /// pool), or says whose it is. An unknown id is not remembered.
    pub(crate) async fn bind(&self, id: &str, token: &TokenHash) -> Binding {
        let id = SessionId::from(id.to_owned());
        let moved = {
            let mut entries = lock(&self.entries);
            let Some(entry) = entries.get_mut(&id) else {
                return Binding::Unknown;
            };
            match &entry.owner {
                Some(owner) if bool::from(owner.ct_eq(token)) => return Binding::Owner,
                Some(_) => return Binding::Foreign,
                None => {
                    entry.owner = Some(*token);
                    std::mem::replace(&mut entry.anonymous, false)
                }
            }
        };
        if moved {
            self.make_room(false, Some(&id)).await;
        }
        Binding::Owner
    }

    /// Whether session `id` belongs to a token other than `token` (no change made).
    pub(crate) fn owned_by_another(&self, id: &str, token: &TokenHash) -> bool {
        lock(&self.entries)
            .get(&SessionId::from(id.to_owned()))
            .and_then(|entry| entry.owner.as_ref())
            .is_some_and(|owner| !bool::from(owner.ct_eq(token)))
    }

    fn idle_for(&self, activity: &Activity) -> Duration {
        Duration::from_millis(
            millis_since(self.epoch).saturating_sub(activity.last.load(Ordering::Relaxed)),
        )
    }

    fn stamp(&self, activity: &Activity) {
        activity
            .last
            .store(millis_since(self.epoch), Ordering::Relaxed);
        activity
            .order
            .store(self.uses.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
    }

    fn touch(&self, id: &SessionId) -> Option<Arc<Activity>> {
        let entries = lock(&self.entries);
        let entry = entries.get(id)?;
        self.stamp(&entry.activity);
        Some(entry.activity.clone())
    }

    /// Marks a session busy until the returned guard drops.
    fn busy(&self, id: &SessionId) -> Option<Busy> {
        let activity = self.touch(id)?;
        activity.busy.fetch_add(1, Ordering::AcqRel);
        Some(Busy {
            activity,
            epoch: self.epoch,
        })
    }

    /// Whether the session exists (live or hibernated).
    pub(crate) fn knows(&self, id: &str) -> bool {
        lock(&self.entries).contains_key(&SessionId::from(id.to_owned()))
    }

    /// Whether `last_event_id` is the last event of a request stream of session `id` that
    /// ended without a result: resuming it would bring nothing, ever. rmcp answers such a
    /// resumption with an empty 200 stream (or replays the stream's priming event), which a
    /// client takes for a cut connection and resumes again: the TypeScript SDK every 3 s.
    pub(crate) fn stream_ended(&self, id: &str, last_event_id: &str) -> bool {
        let ended = match lock(&self.entries).get(&SessionId::from(id.to_owned())) {
            Some(entry) => entry.ended.clone(),
            None => return false,
        };
        lock(&ended).iter().any(|ended| ended == last_event_id)
    }

    fn ended_streams(&self, id: &SessionId) -> Option<EndedStreams> {
        lock(&self.entries).get(id).map(|entry| entry.ended.clone())
    }

    /// The handler of session `id` says which router session it is (on `initialized`).
    pub(crate) fn link(&self, id: &str, session: &Arc<Session>) {
        if let Some(entry) = lock(&self.entries).get_mut(&SessionId::from(id.to_owned())) {
            entry.linked = Arc::downgrade(session);
        }
    }

    /// A hibernated session wakes: its new handler takes over what the dormant copy remembers.
    pub(crate) fn resumed(&self, id: &SessionId, session: &Arc<Session>) {
        let mut entries = lock(&self.entries);
        if let Some(entry) = entries.get_mut(id) {
            if let Some(dormant) = entry.dormant.take() {
                session.resume_from(&dormant);
            }
            entry.linked = Arc::downgrade(session);
        }
    }

    /// Hibernates sessions idle long enough; forgets hibernated sessions idle past the TTL.
    async fn sweep(&self) {
        let Some(hibernation) = &self.hibernation else {
            return;
        };
        let mut to_stop = Vec::new();
        let expired: Vec<Entry> = {
            let mut entries = lock(&self.entries);
            let ttl = self.ttl;
            let expired_ids: Vec<SessionId> = entries
                .iter()
                .filter(|(_, entry)| {
                    entry.phase == Phase::Hibernated && self.idle_for(&entry.activity) >= ttl
                })
                .map(|(id, _)| id.clone())
                .collect();
            let expired = expired_ids
                .iter()
                .filter_map(|id| entries.remove(id))
                .collect();
            shrink(&mut entries);
            for (id, entry) in entries.iter_mut() {
                if entry.phase != Phase::Live
                    || entry.init.is_none()
                    || entry.activity.busy.load(Ordering::Acquire) != 0
                    || self.idle_for(&entry.activity) < hibernation.after
                {
                    continue;
                }
                let Some(session) = entry.linked.upgrade() else {
                    continue;
                };
                let dormant = Arc::new(session.dormant_copy());
                hibernation.router.register_session(&dormant);
                entry.dormant = Some(dormant);
                // The old worker's requests end with it; the next worker starts afresh.
                entry.requests = Arc::default();
                entry.linked = Weak::new();
                entry.phase = Phase::Hibernating;
                to_stop.push(id.clone());
            }
            expired
        };
        for _ in &expired {
            tracing::debug!("a hibernated session expired");
        }
        drop(expired);
        for id in to_stop {
            tracing::debug!(session = %id, "session idle: hibernating");
            let handle = {
                let mut workers = self.inner.sessions.write().await;
                let handle = workers.remove(&id);
                shrink(&mut workers);
                handle
            };
            let stopped = match handle {
                Some(handle) => handle.close().await.is_ok(),
                None => false,
            };
            if !stopped {
                // No worker left to report its end: hibernated already.
                self.settle(&id);
            }
        }
    }

    /// A hibernating session's old worker is gone.
    fn settle(&self, id: &SessionId) {
        if let Some(entry) = lock(&self.entries).get_mut(id)
            && entry.phase == Phase::Hibernating
        {
            entry.phase = Phase::Hibernated;
        }
        self.settled.notify_waiters();
    }

    /// Makes room for one more session in a pool (the anonymous one, or the main one): evicts
    /// that pool's least recently used sessions beyond its ceiling, never `keep`'s.
    async fn make_room(&self, anonymous: bool, keep: Option<&SessionId>) {
        let max = if anonymous {
            self.max_anonymous
        } else {
            self.max
        };
        let victims = {
            let entries = lock(&self.entries);
            let pool = || {
                entries
                    .iter()
                    .filter(|(id, entry)| entry.anonymous == anonymous && keep != Some(*id))
            };
            let excess = (pool().count() + 1).saturating_sub(max);
            if excess == 0 {
                Vec::new()
            } else {
                let mut by_age: Vec<_> = pool()
                    .map(|(id, entry)| (entry.activity.order.load(Ordering::Relaxed), id.clone()))
                    .collect();
                by_age.sort();
                by_age
                    .into_iter()
                    .take(excess)
                    .map(|(_, id)| id)
                    .collect::<Vec<_>>()
            }
        };
        for id in victims {
            // One line per eviction would be one per `initialize` from anyone: debug.
            tracing::debug!(session = %id, max, anonymous, "session limit reached, evicting the least recently used session");
            lock(&self.entries).remove(&id);
            let _ = self.inner.close_session(&id).await;
        }
        shrink(&mut lock(&self.entries));
        self.shrink_workers().await;
    }

    /// Shrinks rmcp's map of session workers once mostly empty (see [`shrink`]).
    async fn shrink_workers(&self) {
        shrink(&mut *self.inner.sessions.write().await);
    }

    fn new_entry(&self, creator: Creator) -> Entry {
        Entry {
            phase: Phase::Live,
            activity: Arc::new(Activity {
                busy: AtomicUsize::new(0),
                last: AtomicU64::new(millis_since(self.epoch)),
                order: AtomicU64::new(self.uses.fetch_add(1, Ordering::Relaxed)),
            }),
            init: None,
            linked: Weak::new(),
            dormant: None,
            ended: EndedStreams::default(),
            owner: creator.owner,
            anonymous: creator.anonymous,
            requests: Arc::default(),
        }
    }

    fn requests(&self, id: &SessionId) -> Option<Arc<Requests>> {
        lock(&self.entries)
            .get(id)
            .map(|entry| entry.requests.clone())
    }

    /// A new worker for session `id`: its transport, sharing the entry's request ids.
    fn transport(&self, id: &SessionId, worker: LocalSessionWorker) -> SessionTransport {
        SessionTransport {
            inner: WorkerTransport::spawn(worker),
            requests: self.requests(id).unwrap_or_default(),
        }
    }
}

/// A new session id: 128 bits from the OS CSPRNG, as 32 hex digits.
fn new_session_id() -> SessionId {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // The OS CSPRNG is unavailable only on a broken system; a v4 UUID still comes from it via
        // another path, so fall back to that rather than fail the request.
        bytes = uuid::Uuid::new_v4().into_bytes();
    }
    bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<String>()
        .into()
}

/// A session's stream, holding the session busy while it is open.
fn held<S>(
    stream: S,
    busy: Option<Busy>,
) -> impl Stream<Item = ServerSseMessage> + Send + Sync + 'static
where
    S: Stream<Item = ServerSseMessage> + Send + Sync + 'static,
{
    stream.map(move |message| {
        let _held = &busy;
        message
    })
}

/// A request's stream that notes, when it ends without a result, its last event id in its
/// session's [`EndedStreams`].
struct Watched<S> {
    inner: Pin<Box<S>>,
    last_event_id: Option<String>,
    answered: bool,
    ended: Option<EndedStreams>,
}

fn watched<S>(stream: S, ended: Option<EndedStreams>) -> Watched<S>
where
    S: Stream<Item = ServerSseMessage> + Send + Sync + 'static,
{
    Watched {
        inner: Box::pin(stream),
        last_event_id: None,
        answered: false,
        ended,
    }
}

impl<S> Stream for Watched<S>
where
    S: Stream<Item = ServerSseMessage>,
{
    type Item = ServerSseMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let polled = this.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(message)) => {
                if let Some(id) = &message.event_id {
                    this.last_event_id = Some(id.clone());
                }
                if matches!(
                    message.message.as_deref(),
                    Some(ServerJsonRpcMessage::Response(_))
                ) {
                    this.answered = true;
                }
            }
            Poll::Ready(None) => {
                if let Some(ended) = this.ended.take()
                    && !this.answered
                    && let Some(id) = this.last_event_id.take()
                {
                    let mut ended = lock(&ended);
                    if ended.len() >= ENDED_STREAMS_KEPT {
                        ended.pop_front();
                    }
                    ended.push_back(id);
                }
            }
            Poll::Pending => {}
        }
        polled
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

impl SessionManager for BoundedSessions {
    type Error = LocalSessionManagerError;
    type Transport = SessionTransport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let creator = CREATOR.try_with(|creator| *creator).unwrap_or_default();
        self.make_room(creator.anonymous, None).await;
        let id = new_session_id();
        let (handle, worker) = create_local_session(id.clone(), self.inner.session_config.clone());
        self.inner.sessions.write().await.insert(id.clone(), handle);
        lock(&self.entries).insert(id.clone(), self.new_entry(creator));
        let transport = self.transport(&id, worker);
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.touch(id);
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        // Touched, so that it is not hibernated between this check and the request's stream.
        let entries = lock(&self.entries);
        Ok(match entries.get(id) {
            Some(entry) if entry.phase == Phase::Live => {
                self.stamp(&entry.activity);
                true
            }
            // Hibernated (or on its way): rmcp asks the store and wakes it.
            _ => false,
        })
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        {
            let mut entries = lock(&self.entries);
            match entries.get(id).map(|entry| entry.phase) {
                // The old worker of a hibernating session ended (rmcp reports it here).
                Some(Phase::Hibernating) => {
                    drop(entries);
                    self.settle(id);
                    return Ok(());
                }
                // A DELETE of a hibernated session: rmcp removes it from the store next.
                Some(Phase::Hibernated) => return Ok(()),
                Some(Phase::Live | Phase::Waking) => {
                    entries.remove(id);
                    shrink(&mut entries);
                }
                None => {}
            }
        }
        let closed = self.inner.close_session(id).await;
        self.shrink_workers().await;
        closed
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        // A request reusing an id in flight never reaches the session (see the module's doc).
        let claimed = match &message {
            ClientJsonRpcMessage::Request(request) => self
                .requests(id)
                .map(|requests| (requests, request.id.clone())),
            _ => None,
        };
        if let Some((requests, request_id)) = &claimed
            && let Err(why) = requests.claim(request_id)
        {
            tracing::debug!(session = %id, request = %request_id, ?why, "request refused before reaching the session");
            let answer = refusal(request_id.clone(), &why);
            return Ok(futures::future::Either::Left(futures::stream::once(
                std::future::ready(answer),
            )));
        }
        let busy = self.busy(id);
        let ended = self.ended_streams(id);
        let stream = match self.inner.create_stream(id, message).await {
            Ok(stream) => stream,
            Err(error) => {
                if let Some((requests, request_id)) = &claimed {
                    requests.release(request_id);
                }
                return Err(error);
            }
        };
        Ok(futures::future::Either::Right(held(
            watched(stream, ended),
            busy,
        )))
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        let initialized = matches!(
            &message,
            ClientJsonRpcMessage::Notification(notification)
                if matches!(notification.notification, ClientNotification::InitializedNotification(_))
        );
        self.touch(id);
        self.inner.accept_message(id, message).await?;
        if initialized
            && let Some(entry) = lock(&self.entries).get_mut(id)
            && entry.phase == Phase::Waking
        {
            // The replayed handshake is queued ahead of anything else: requests may flow.
            entry.phase = Phase::Live;
        }
        Ok(())
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let busy = self.busy(id);
        let stream = self.inner.create_standalone_stream(id).await?;
        Ok(held(stream, busy))
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let busy = self.busy(id);
        // rmcp's local event ids are `<index>` on the GET stream and `<index>/<http request id>`
        // on a request's stream; only a request's stream is over when it ends.
        let ended = last_event_id
            .contains('/')
            .then(|| self.ended_streams(id))
            .flatten();
        let stream = self.inner.resume(id, last_event_id).await?;
        Ok(held(watched(stream, ended), busy))
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        {
            let mut entries = lock(&self.entries);
            match entries.get_mut(&id) {
                Some(entry) if entry.phase == Phase::Hibernated => {
                    entry.phase = Phase::Waking;
                    self.stamp(&entry.activity);
                }
                Some(entry) if matches!(entry.phase, Phase::Live | Phase::Waking) => {
                    return Ok(RestoreOutcome::AlreadyPresent);
                }
                _ => return Ok(RestoreOutcome::NotSupported),
            }
        }
        tracing::debug!(session = %id, "hibernated session: waking");
        let (handle, worker) = create_local_session(id.clone(), self.inner.session_config.clone());
        self.inner.sessions.write().await.insert(id.clone(), handle);
        Ok(RestoreOutcome::Restored(self.transport(&id, worker)))
    }
}

/// rmcp's session store, kept in memory: the `initialize` parameters of every session, handed
/// back only for a hibernated one (so a closed or expired session stays unknown: 404).
impl SessionStore for BoundedSessions {
    fn load<'a, 'b, 'f>(
        &'a self,
        session_id: &'b str,
    ) -> Pin<Box<dyn Future<Output = Result<Option<SessionState>, SessionStoreError>> + Send + 'f>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            let id = SessionId::from(session_id.to_owned());
            let deadline = tokio::time::Instant::now() + SETTLE_WAIT;
            loop {
                let settled = self.settled.notified();
                tokio::pin!(settled);
                // Registered before the check, so a wake-up between the two is not lost.
                settled.as_mut().enable();
                {
                    let entries = lock(&self.entries);
                    match entries.get(&id) {
                        Some(entry) if entry.phase == Phase::Hibernated => {
                            return Ok(entry.init.clone().map(|init| SessionState::new(*init)));
                        }
                        Some(entry) if entry.phase == Phase::Hibernating => {}
                        _ => return Ok(None),
                    }
                }
                if tokio::time::timeout_at(deadline, settled).await.is_err() {
                    return Err("the session is still hibernating".into());
                }
            }
        })
    }

    fn store<'a, 'b, 'c, 'f>(
        &'a self,
        session_id: &'b str,
        state: &'c SessionState,
    ) -> Pin<Box<dyn Future<Output = Result<(), SessionStoreError>> + Send + 'f>>
    where
        'a: 'f,
        'b: 'f,
        'c: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            let id = SessionId::from(session_id.to_owned());
            if let Some(entry) = lock(&self.entries).get_mut(&id) {
                entry.init = Some(Box::new(state.initialize_params.clone()));
            }
            Ok(())
        })
    }

    fn delete<'a, 'b, 'f>(
        &'a self,
        session_id: &'b str,
    ) -> Pin<Box<dyn Future<Output = Result<(), SessionStoreError>> + Send + 'f>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            let id = SessionId::from(session_id.to_owned());
            // Only a hibernated entry is left after rmcp's `close_session` (see there).
            let removed = {
                let mut entries = lock(&self.entries);
                match entries.get(&id).map(|entry| entry.phase) {
                    Some(Phase::Hibernated | Phase::Hibernating) => {
                        let removed = entries.remove(&id);
                        shrink(&mut entries);
                        removed
                    }
                    _ => None,
                }
            };
            drop(removed);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_carry_128_random_bits() {
        let a = new_session_id();
        let b = new_session_id();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn the_least_recently_used_session_is_evicted_at_the_limit() {
        let sessions = BoundedSessions::new(2, 2, Duration::from_secs(60), None);
        let (first, _t1) = sessions.create_session().await.unwrap();
        let (second, _t2) = sessions.create_session().await.unwrap();
        sessions.touch(&first);
        let (third, _t3) = sessions.create_session().await.unwrap();
        assert_eq!(sessions.counts().await.sessions, 2);
        assert!(sessions.has_session(&first).await.unwrap());
        assert!(!sessions.has_session(&second).await.unwrap());
        assert!(sessions.has_session(&third).await.unwrap());
    }

    #[tokio::test]
    async fn anonymous_sessions_evict_only_each_other_and_a_token_moves_one_out() {
        let sessions = BoundedSessions::new(2, 2, Duration::from_secs(60), None);
        let with_token = Creator {
            owner: Some([1; 32]),
            anonymous: false,
        };
        let without = Creator {
            owner: None,
            anonymous: true,
        };
        let (owned, _owned) = CREATOR
            .scope(with_token, sessions.create_session())
            .await
            .unwrap();
        let mut anonymous = Vec::new();
        for _ in 0..5 {
            anonymous.push(
                CREATOR
                    .scope(without, sessions.create_session())
                    .await
                    .unwrap(),
            );
        }
        let counts = sessions.counts().await;
        assert_eq!((counts.sessions, counts.anonymous, counts.owned), (3, 2, 1));
        assert!(sessions.has_session(&owned).await.unwrap());
        // A token's first use binds the session and moves it to the main pool.
        let (lazy, _) = anonymous.last().unwrap();
        assert_eq!(sessions.bind(lazy, &[2; 32]).await, Binding::Owner);
        assert_eq!(sessions.bind(lazy, &[2; 32]).await, Binding::Owner);
        assert_eq!(sessions.bind(lazy, &[3; 32]).await, Binding::Foreign);
        assert!(sessions.owned_by_another(lazy, &[3; 32]));
        // An unknown id is not remembered.
        assert_eq!(sessions.bind("made-up", &[2; 32]).await, Binding::Unknown);
        let counts = sessions.counts().await;
        assert_eq!((counts.sessions, counts.anonymous, counts.owned), (3, 1, 2));
    }

    #[test]
    fn a_mostly_empty_map_gives_its_table_back() {
        let mut map: HashMap<u32, [u8; 64]> = (0..10_000).map(|n| (n, [0; 64])).collect();
        let full = map.capacity();
        for n in 3..10_000 {
            map.remove(&n);
            shrink(&mut map);
        }
        assert_eq!(map.len(), 3);
        assert!(
            map.capacity() <= 2 * MIN_CAPACITY,
            "{} of {full}",
            map.capacity()
        );
    }

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
