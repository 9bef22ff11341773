//! HTTP sessions: rmcp's local session manager with our ids (128 random bits from the OS CSPRNG),
//! a ceiling on how many live at once in each of two pools (`pools.rs`), and everything kept per
//! session in its [`Entry`], keyed by an id we made, so it goes with the session (expired,
//! evicted, deleted): nothing is ever kept for an id a client made up. Idle expiry is ours
//! (`hibernation.rs`), by each session's last use. The rest is one
//! file each: rmcp's `SessionManager` calls (`manager.rs`), request ids in flight and the wrapped
//! worker transport (`requests.rs`), ended request streams (`ended.rs`), last use (`activity.rs`).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rmcp::model::InitializeRequestParams;
use rmcp::transport::streamable_http_server::session::SessionId;
use rmcp::transport::streamable_http_server::session::local::{LocalSessionManager, SessionConfig};
use tokio::sync::Notify;

use crate::router::Session;
use crate::sync::lock;
use activity::Activity;
use ended::EndedStreams;
use fast::FastCalls;
use requests::Requests;

mod activity;
mod diverted;
mod ended;
mod fast;
mod hibernation;
mod manager;
mod pools;
mod requests;
mod seal;
mod shared;

pub(crate) use fast::{Next, Outcome, Waiter};
pub(crate) use hibernation::Hibernation;
pub(crate) use pools::{Binding, CREATOR, Creator, TokenHash};
pub(crate) use shared::{Membership, Sealer};

/// Slots a session map keeps however empty it gets.
const MIN_CAPACITY: usize = 64;

pub(crate) struct BoundedSessions {
    inner: LocalSessionManager,
    max: usize,
    max_anonymous: usize,
    ttl: Duration,
    hibernation: Option<Hibernation>,
    entries: Mutex<HashMap<SessionId, Entry>>,
    /// Wakes requests waiting for a hibernating session's old worker to finish.
    settled: Notify,
    /// The zero of [`Activity`]'s last use.
    epoch: Instant,
    /// The source of [`Activity::order`].
    uses: AtomicU64,
    /// This replica's fleet, when it is one of several on a shared store (`shared.rs`).
    fleet: Option<Arc<Membership>>,
}

/// `n` sessions ended (deleted, expired, evicted), for the metrics.
fn closed(n: usize) {
    crate::metrics::global()
        .sessions_closed
        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
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
    /// Request ids kept (in flight, recently cancelled, and fast calls' answers not yet
    /// delivered), over all sessions.
    pub(crate) request_ids: usize,
}

/// The phases of an entry: `Live` → (idle) `Hibernating` (old worker told to stop; its end, which
/// rmcp reports through `close_session`, makes it) → `Hibernated` → (a request) `Waking` (a new
/// worker replaying the handshake) → (`notifications/initialized` replayed) `Live`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Live,
    Hibernating,
    Hibernated,
    Waking,
}

/// Everything kept for one session.
struct Entry {
    phase: Phase,
    activity: Arc<Activity>,
    /// The client's `initialize` parameters (from rmcp, through the `SessionStore`); boxed, so
    /// that the map's slots stay small.
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
    /// The calls the session layer runs itself (`fast.rs`).
    fast: Arc<FastCalls>,
    /// Taken over from a replica that is gone, not woken yet (`shared.rs`).
    adopted: bool,
    /// [`Activity::order`] when its row's last use was last written (`shared.rs`).
    shared_use: u64,
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
        // Idle expiry is ours (`hibernation.rs`): rmcp's counts only what reaches the worker.
        config.keep_alive = None;
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
            fleet: None,
        }
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
                counts.request_ids += entry.requests.len() + entry.fast.len();
            }
            counts
        };
        counts.workers = self.inner.sessions.read().await.len();
        counts
    }

    /// Whether the session exists (live or hibernated).
    pub(crate) fn knows(&self, id: &str) -> bool {
        lock(&self.entries).contains_key(&SessionId::from(id.to_owned()))
    }

    fn new_entry(&self, creator: Creator) -> Entry {
        Entry {
            phase: Phase::Live,
            activity: self.new_activity(),
            init: None,
            linked: Weak::new(),
            dormant: None,
            ended: EndedStreams::default(),
            owner: creator.owner,
            anonymous: creator.anonymous,
            requests: Arc::default(),
            fast: Arc::default(),
            adopted: false,
            shared_use: 0,
        }
    }

    /// A new session id: sealed, naming this replica, in a fleet.
    fn new_id(&self) -> SessionId {
        match &self.fleet {
            Some(fleet) => fleet.sealer.seal(fleet.me).into(),
            None => new_session_id(),
        }
    }

    /// Shrinks rmcp's map of session workers once mostly empty (see [`shrink`]).
    async fn shrink_workers(&self) {
        shrink(&mut *self.inner.sessions.write().await);
    }
}

/// Gives back most of a map's table once it is mostly empty: a hash map keeps its largest
/// capacity otherwise, and 10,000 sessions that came and went would hold their slots for good.
fn shrink<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > MIN_CAPACITY && map.len() * 4 < map.capacity() {
        map.shrink_to((map.len() * 2).max(MIN_CAPACITY));
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
}
