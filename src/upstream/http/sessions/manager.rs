//! rmcp's `SessionManager` for [`BoundedSessions`]: each call rmcp makes, mapped onto our entries
//! and delegated to rmcp's `LocalSessionManager` for the protocol. Creation makes room in the
//! creator's pool and takes our id; requests claim their id before reaching the session; streams
//! hold their session busy and note how they ended; a hibernated session is restored through
//! rmcp's own restore path.

use futures::future::Either;
use futures::{Stream, StreamExt};
use rmcp::model::{ClientJsonRpcMessage, ClientNotification, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManagerError, create_local_session,
};
use rmcp::transport::streamable_http_server::session::{
    RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
};

use super::activity::held;
use super::ended::watched;
use super::pools::CREATOR;
use super::requests::SessionTransport;
use super::{BoundedSessions, Phase, closed, shrink};
use crate::sync::lock;

impl SessionManager for BoundedSessions {
    type Error = LocalSessionManagerError;
    type Transport = SessionTransport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let creator = CREATOR.try_with(|creator| *creator).unwrap_or_default();
        self.make_room(creator.anonymous, None).await;
        let id = self.new_id();
        let (handle, worker) = create_local_session(id.clone(), self.inner.session_config.clone());
        self.inner.sessions.write().await.insert(id.clone(), handle);
        lock(&self.entries).insert(id.clone(), self.new_entry(creator));
        crate::metrics::global()
            .sessions_opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
                    closed(1);
                }
                None => {}
            }
        }
        self.forget_rows(vec![id.to_string()]).await;
        let closed = self.inner.close_session(id).await;
        self.shrink_workers().await;
        closed
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        // A request reusing an id in flight never reaches the session (`requests.rs`).
        let claim = match self.claim(id, &message) {
            Ok(claim) => claim,
            Err(answer) => {
                return Ok(Either::Left(futures::stream::once(std::future::ready(
                    answer,
                ))));
            }
        };
        let busy = self.busy(id);
        let ended = self.ended_streams(id);
        let stream = match self.inner.create_stream(id, message).await {
            Ok(stream) => stream,
            Err(error) => {
                if let Some(claim) = claim {
                    claim.release();
                }
                return Err(error);
            }
        };
        Ok(Either::Right(held(watched(stream, ended), busy)))
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
        // A fast call's stream (`fast.rs`): its answer, when it is still known.
        if let Some(waiter) = self.resume_fast_call(id, &last_event_id) {
            let stream = futures::stream::iter(waiter).flat_map(super::Waiter::into_stream);
            return Ok(Either::Left(stream));
        }
        let busy = self.busy(id);
        // rmcp's local event ids are `<index>` on the GET stream and `<index>/<http request id>`
        // on a request's stream; only a request's stream is over when it ends.
        let ended = last_event_id
            .contains('/')
            .then(|| self.ended_streams(id))
            .flatten();
        let stream = self.inner.resume(id, last_event_id).await?;
        Ok(Either::Right(held(watched(stream, ended), busy)))
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        Ok(self.restore(id).await)
    }
}
