//! Sessions shared by a fleet (HTTP replicas on one PostgreSQL store). Each session lives on
//! one replica, its *home* — where every message of it is handled, as on a single proxy — and
//! has a row in the store (the client's `initialize` parameters, its owner, what it asked to
//! hear). Its id is sealed (`seal.rs`) and names the replica that made it. When a home is gone,
//! the replica a request lands on *adopts* the session: it takes the row over and wakes the
//! session through the same path as a hibernated one (rmcp replays the handshake). The rows
//! follow the sessions here: written at `initialize`, their interests when they change, their
//! last use once a sweep, deleted when the session ends. Which replica a request goes to is
//! `http::fleet`'s business.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rmcp::model::InitializeRequestParams;
use rmcp::transport::streamable_http_server::session::{SessionId, SessionManager};

use super::{BoundedSessions, Entry, Phase};
use crate::control::fleet::{FleetStore, SessionRecord};
use crate::router::{Interests, Session};
use crate::sync::lock;

pub(crate) use super::seal::Sealer;

/// This replica in its fleet, as the session layer needs it.
pub(crate) struct Membership {
    /// This replica's id in the store.
    pub(crate) me: i64,
    pub(crate) sealer: Sealer,
    pub(crate) store: Arc<dyn FleetStore>,
    /// Set when this replica leaves the fleet (shutting down after its drain): the sessions
    /// it still holds are the others' to adopt, so their rows stay when they close here.
    pub(crate) left: AtomicBool,
}

impl Membership {
    pub(crate) fn new(me: i64, sealer: Sealer, store: Arc<dyn FleetStore>) -> Membership {
        Membership {
            me,
            sealer,
            store,
            left: AtomicBool::new(false),
        }
    }

    fn has_left(&self) -> bool {
        self.left.load(Ordering::Acquire)
    }
}

impl BoundedSessions {
    /// Makes the sessions this replica's share of a fleet: sealed ids, rows in the store.
    pub(crate) fn with_fleet(mut self, membership: Arc<Membership>) -> BoundedSessions {
        self.fleet = Some(membership);
        self
    }

    /// The row of session `id`, now that its `initialize` parameters are known.
    pub(super) async fn save_row(&self, id: &SessionId, init: &InitializeRequestParams) {
        let Some(fleet) = &self.fleet else {
            return;
        };
        let (owner, anonymous, interests) = {
            let entries = lock(&self.entries);
            let Some(entry) = entries.get(id) else {
                return;
            };
            let interests = entry
                .dormant
                .as_ref()
                .map(|dormant| dormant.interests())
                .unwrap_or_default();
            (entry.owner, entry.anonymous, interests)
        };
        let record = SessionRecord {
            id: id.to_string(),
            home: Some(fleet.me),
            init: serde_json::to_string(init).unwrap_or_default(),
            owner,
            anonymous,
            state: serde_json::to_string(&interests).unwrap_or_default(),
        };
        if let Err(error) = fleet.store.save_session(&record).await {
            tracing::warn!(
                session = %id,
                "session not shared with the fleet (it works on this replica only): {error}"
            );
        }
    }

    /// Keeps what session `id`'s client asked to hear (after `logging/setLevel` or a
    /// subscription), so that a replica adopting it hears the same.
    pub(crate) async fn keep_interests(&self, id: &str, session: &Session) {
        if let Some(fleet) = &self.fleet {
            keep_interests(fleet, id, session).await;
        }
    }

    /// Keeps the token a session made without one was bound to, so that it stays that token's
    /// on whichever replica adopts it.
    pub(super) async fn keep_owner(&self, id: &SessionId, owner: &[u8; 32]) {
        let Some(fleet) = &self.fleet else {
            return;
        };
        if let Err(error) = fleet.store.bind_session(id, owner).await {
            tracing::warn!(
                session = %id,
                "session's token not kept in the store (bound on this replica only): {error}"
            );
        }
    }

    /// Deletes the rows of sessions that ended here (not once this replica left the fleet:
    /// its sessions close then only to be adopted elsewhere).
    pub(super) async fn forget_rows(&self, ids: Vec<String>) {
        let Some(fleet) = &self.fleet else {
            return;
        };
        if ids.is_empty() || fleet.has_left() {
            return;
        }
        if let Err(error) = fleet.store.delete_sessions(fleet.me, &ids).await {
            tracing::warn!(
                sessions = ids.len(),
                "ended sessions' rows not deleted: {error}"
            );
        }
    }

    /// Marks in the store the sessions used since the last sweep (their fleet-wide expiry counts
    /// from their last use): one statement per sweep, not a write per request. Sessions the
    /// store says another replica adopted — this one could not be reached for a moment, and a
    /// request meant for it was served elsewhere — are stale copies here: dropped (their rows
    /// kept), so that their next requests go to the adopter, and no two replicas serve one
    /// session for longer than a sweep.
    pub(super) async fn touch_rows(&self) {
        let Some(fleet) = &self.fleet else {
            return;
        };
        let used: Vec<String> = {
            let mut entries = lock(&self.entries);
            entries
                .iter_mut()
                .filter_map(|(id, entry)| {
                    let order = entry.activity.order.load(Ordering::Relaxed);
                    (order != entry.shared_use).then(|| {
                        entry.shared_use = order;
                        id.to_string()
                    })
                })
                .collect()
        };
        if used.is_empty() || fleet.has_left() {
            return;
        }
        let moved = match fleet.store.touch_sessions(fleet.me, &used).await {
            Ok(moved) => moved,
            Err(error) => {
                tracing::debug!(sessions = used.len(), "session use not recorded: {error}");
                return;
            }
        };
        let mut dropped = false;
        for id in moved {
            let id = SessionId::from(id);
            if lock(&self.entries).remove(&id).is_none() {
                continue;
            }
            super::closed(1);
            tracing::info!(
                session = %id,
                "session adopted by another replica while this one could not be reached: \
                 its copy here dropped"
            );
            let _ = self.inner.close_session(&id).await;
            dropped = true;
        }
        if dropped {
            super::shrink(&mut lock(&self.entries));
            self.shrink_workers().await;
        }
    }

    /// Takes over a session whose home is gone, from its row: kept as hibernated, so that the
    /// request that found it wakes it (rmcp replays its `initialize`). `false` when the row
    /// cannot be read back into a session.
    pub(crate) fn adopt(&self, record: SessionRecord) -> bool {
        let Ok(init) = serde_json::from_str::<InitializeRequestParams>(&record.init) else {
            tracing::warn!(session = %record.id, "a shared session's row is unreadable: not adopted");
            return false;
        };
        let interests: Interests = serde_json::from_str(&record.state).unwrap_or_default();
        let id = SessionId::from(record.id);
        let mut entry = self.new_entry(super::Creator {
            owner: record.owner,
            anonymous: record.anonymous,
        });
        entry.phase = Phase::Hibernated;
        entry.init = Some(Box::new(init));
        entry.dormant = Some(Arc::new(Session::dormant_with(interests)));
        entry.adopted = true;
        let mut entries = lock(&self.entries);
        if entries.contains_key(&id) {
            return true;
        }
        entries.insert(id, entry);
        crate::metrics::global()
            .sessions_adopted
            .fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Whether session `id` was adopted and has not woken yet: its subscriptions must be made
    /// again downstream, where this replica's connections are.
    pub(super) fn take_adopted(entry: &mut Entry) -> bool {
        std::mem::take(&mut entry.adopted)
    }
}

/// Keeps what session `id`'s client asked to hear in its row, where a replica adopting it reads
/// it.
pub(super) async fn keep_interests(fleet: &Membership, id: &str, session: &Session) {
    let state = serde_json::to_string(&session.interests()).unwrap_or_default();
    if let Err(error) = fleet.store.set_session_state(fleet.me, id, &state).await {
        tracing::warn!(session = %id, "session interests not kept in the store: {error}");
    }
}
