//! Hibernation. A live session costs about 60 KiB, nearly all of it rmcp's per-session worker and
//! service; one idle for `--session-hibernate-after` (no request in flight, no GET stream open)
//! gives them up and keeps only its `initialize` parameters and a dormant copy of the router's
//! [`Session`] (registered with the router, so its subscriptions still count). The next request
//! with its id wakes it through rmcp's own restore path: rmcp loads the parameters from our
//! [`SessionStore`], replays the handshake into a new worker under the same id, and the handler
//! takes the dormant copy over ([`BoundedSessions::resumed`]) before the client's request runs.
//! The same sweep ends sessions idle past `--session-ttl`, live or hibernated.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use rmcp::transport::streamable_http_server::session::local::create_local_session;
use rmcp::transport::streamable_http_server::session::{
    RestoreOutcome, SessionId, SessionManager, SessionState, SessionStore, SessionStoreError,
};

use super::requests::SessionTransport;
use super::{BoundedSessions, Entry, Phase, closed, shrink};
use crate::router::{Router, Session};
use crate::sync::lock;

/// How long a request for a hibernating session waits for its old worker to finish.
const SETTLE_WAIT: Duration = Duration::from_secs(5);

/// When idle sessions give up their worker, and the router their dormant copies register with.
pub(crate) struct Hibernation {
    pub(crate) after: Duration,
    pub(crate) router: Arc<Router>,
}

impl BoundedSessions {
    /// Starts expiring idle sessions and, when hibernation is on, hibernating them, on a task that
    /// ends with the last reference to `sessions`. Expiry is ours, not rmcp's worker's
    /// `keep_alive`: a session whose calls the session layer runs itself (`fast.rs`) sends its
    /// worker nothing, yet is in use.
    pub(crate) fn start(sessions: &Arc<BoundedSessions>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let shortest = match &sessions.hibernation {
            Some(hibernation) => hibernation.after.min(sessions.ttl),
            None => sessions.ttl,
        };
        let period = (shortest / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
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

    /// The handler of session `id` says which router session it is (on `initialized`).
    pub(crate) fn link(&self, id: &str, session: &Arc<Session>) {
        if let Some(entry) = lock(&self.entries).get_mut(&SessionId::from(id.to_owned())) {
            entry.linked = Arc::downgrade(session);
        }
    }

    /// A hibernated session wakes: its new handler takes over what the dormant copy remembers.
    /// `true` when the session was adopted from a replica that is gone (`shared.rs`): its
    /// subscriptions are this replica's to make downstream.
    pub(crate) fn resumed(&self, id: &SessionId, session: &Arc<Session>) -> bool {
        let mut entries = lock(&self.entries);
        let Some(entry) = entries.get_mut(id) else {
            return false;
        };
        if let Some(dormant) = entry.dormant.take() {
            session.resume_from(&dormant);
        }
        entry.linked = Arc::downgrade(session);
        BoundedSessions::take_adopted(entry)
    }

    /// Ends live sessions idle past the TTL, forgets hibernated ones idle past it, and hibernates
    /// sessions idle long enough (when hibernation is on).
    async fn sweep(&self) {
        let (expired, ended, to_stop) = {
            let mut entries = lock(&self.entries);
            let expired = self.take_expired(&mut entries);
            let ended = self.take_idle_live(&mut entries);
            shrink(&mut entries);
            let to_stop = match &self.hibernation {
                Some(hibernation) => self.begin_hibernating(&mut entries, hibernation),
                None => Vec::new(),
            };
            (expired, ended, to_stop)
        };
        closed(expired.len() + ended.len());
        for _ in &expired {
            tracing::debug!("a hibernated session expired");
        }
        let gone = expired.iter().map(|(id, _)| id.to_string());
        let gone: Vec<String> = gone.chain(ended.iter().map(ToString::to_string)).collect();
        drop(expired);
        self.forget_rows(gone).await;
        self.touch_rows().await;
        for id in ended {
            tracing::debug!(session = %id, "session idle past its TTL: ended");
            let _ = SessionManager::close_session(&self.inner, &id).await;
        }
        for id in to_stop {
            tracing::debug!(session = %id, "session idle: hibernating");
            self.stop_worker(&id).await;
        }
    }

    /// Takes out the live sessions idle past the TTL (none in use); says whose workers to end.
    fn take_idle_live(&self, entries: &mut HashMap<SessionId, Entry>) -> Vec<SessionId> {
        let idle: Vec<SessionId> = entries
            .iter()
            .filter(|(_, entry)| {
                matches!(entry.phase, Phase::Live | Phase::Waking)
                    && entry.activity.busy.load(Ordering::Acquire) == 0
                    && self.idle_for(&entry.activity) >= self.ttl
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &idle {
            entries.remove(id);
        }
        idle
    }

    /// Takes out the hibernated sessions idle past the TTL.
    fn take_expired(&self, entries: &mut HashMap<SessionId, Entry>) -> Vec<(SessionId, Entry)> {
        let expired_ids: Vec<SessionId> = entries
            .iter()
            .filter(|(_, entry)| {
                entry.phase == Phase::Hibernated && self.idle_for(&entry.activity) >= self.ttl
            })
            .map(|(id, _)| id.clone())
            .collect();
        expired_ids
            .into_iter()
            .filter_map(|id| entries.remove(&id).map(|entry| (id, entry)))
            .collect()
    }

    /// Turns the live sessions idle long enough to `Hibernating` (a dormant copy of their router
    /// session registered, their request ids dropped); says whose workers to stop.
    fn begin_hibernating(
        &self,
        entries: &mut HashMap<SessionId, Entry>,
        hibernation: &Hibernation,
    ) -> Vec<SessionId> {
        let mut to_stop = Vec::new();
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
        to_stop
    }

    /// Tells a hibernating session's worker to stop; its end (rmcp's `close_session`) settles it.
    async fn stop_worker(&self, id: &SessionId) {
        let handle = {
            let mut workers = self.inner.sessions.write().await;
            let handle = workers.remove(id);
            shrink(&mut workers);
            handle
        };
        let stopped = match handle {
            Some(handle) => handle.close().await.is_ok(),
            None => false,
        };
        if !stopped {
            // No worker left to report its end: hibernated already.
            self.settle(id);
        }
    }

    /// A hibernating session's old worker is gone.
    pub(super) fn settle(&self, id: &SessionId) {
        if let Some(entry) = lock(&self.entries).get_mut(id)
            && entry.phase == Phase::Hibernating
        {
            entry.phase = Phase::Hibernated;
        }
        self.settled.notify_waiters();
    }

    /// rmcp's restore path for session `id`: a hibernated session gets a new worker and starts
    /// `Waking` (until its replayed `notifications/initialized`); a live one is there already.
    pub(super) async fn restore(&self, id: SessionId) -> RestoreOutcome<SessionTransport> {
        {
            let mut entries = lock(&self.entries);
            match entries.get_mut(&id) {
                Some(entry) if entry.phase == Phase::Hibernated => {
                    entry.phase = Phase::Waking;
                    self.stamp(&entry.activity);
                }
                Some(entry) if matches!(entry.phase, Phase::Live | Phase::Waking) => {
                    return RestoreOutcome::AlreadyPresent;
                }
                _ => return RestoreOutcome::NotSupported,
            }
        }
        tracing::debug!(session = %id, "hibernated session: waking");
        let (handle, worker) = create_local_session(id.clone(), self.inner.session_config.clone());
        self.inner.sessions.write().await.insert(id.clone(), handle);
        RestoreOutcome::Restored(self.transport(&id, worker))
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
            self.save_row(&id, &state.initialize_params).await;
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
                        closed(1);
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
