//! HTTP sessions: rmcp's local session manager, with our ids (128 random bits from the OS CSPRNG),
//! a ceiling on how many live at once (the least recently used is evicted to make room), and the
//! count `/health` reports. Idle expiry is rmcp's `keep_alive`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::WorkerTransport;
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError, LocalSessionWorker, SessionConfig,
    create_local_session,
};
use rmcp::transport::streamable_http_server::session::{
    ServerSseMessage, SessionId, SessionManager,
};

pub(crate) struct BoundedSessions {
    inner: LocalSessionManager,
    max: usize,
    /// Last use of each session, for least-recently-used eviction.
    last_used: Mutex<HashMap<SessionId, Instant>>,
}

impl BoundedSessions {
    pub(crate) fn new(max: usize, idle_ttl: Duration) -> BoundedSessions {
        let mut inner = LocalSessionManager::default();
        let mut config = SessionConfig::default();
        config.keep_alive = Some(idle_ttl);
        inner.session_config = config;
        BoundedSessions {
            inner,
            max: max.max(1),
            last_used: Mutex::default(),
        }
    }

    /// Live sessions.
    pub(crate) async fn count(&self) -> usize {
        self.inner.sessions.read().await.len()
    }

    fn touch(&self, id: &SessionId) {
        self.last_used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.clone(), Instant::now());
    }

    /// Makes room for one more session: forgets expired ones, then evicts the least recently used.
    async fn make_room(&self) {
        let live: Vec<SessionId> = self.inner.sessions.read().await.keys().cloned().collect();
        let victims = {
            let mut last_used = self
                .last_used
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            last_used.retain(|id, _| live.contains(id));
            let excess = (live.len() + 1).saturating_sub(self.max);
            let mut by_age: Vec<_> = last_used.iter().map(|(id, at)| (*at, id.clone())).collect();
            by_age.sort();
            by_age
                .into_iter()
                .take(excess)
                .map(|(_, id)| id)
                .collect::<Vec<_>>()
        };
        for id in victims {
            tracing::info!(session = %id, max = self.max, "session limit reached, evicting the least recently used session");
            let _ = self.close_session(&id).await;
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

impl SessionManager for BoundedSessions {
    type Error = LocalSessionManagerError;
    type Transport = WorkerTransport<LocalSessionWorker>;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        self.make_room().await;
        let id = new_session_id();
        let (handle, worker) = create_local_session(id.clone(), self.inner.session_config.clone());
        self.inner.sessions.write().await.insert(id.clone(), handle);
        self.touch(&id);
        Ok((id, WorkerTransport::spawn(worker)))
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
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.last_used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        self.inner.create_stream(id, message).await
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.touch(id);
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        self.inner.resume(id, last_event_id).await
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
        let sessions = BoundedSessions::new(2, Duration::from_secs(60));
        let (first, _t1) = sessions.create_session().await.unwrap();
        let (second, _t2) = sessions.create_session().await.unwrap();
        sessions.touch(&first);
        let (third, _t3) = sessions.create_session().await.unwrap();
        assert_eq!(sessions.count().await, 2);
        assert!(sessions.has_session(&first).await.unwrap());
        assert!(!sessions.has_session(&second).await.unwrap());
        assert!(sessions.has_session(&third).await.unwrap());
    }
}
