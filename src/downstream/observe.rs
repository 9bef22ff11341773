//! A transport wrapper that sees each message from a server in the order it arrived. rmcp hands
//! every notification to its own task, so two progress notifications — or the last one and the
//! answer — can overtake each other on the way to the client. Progress is routed here instead,
//! from the single receive loop, before rmcp sees the message (and before the answer it precedes).

use std::sync::Arc;

use rmcp::RoleClient;
use rmcp::model::{JsonRpcMessage, ServerNotification};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;

use super::Events;

pub(super) struct Observed<T> {
    inner: T,
    server: Arc<str>,
    events: Arc<dyn Events>,
}

impl<T> Observed<T> {
    pub(super) fn new(inner: T, server: Arc<str>, events: Arc<dyn Events>) -> Observed<T> {
        Observed {
            inner,
            server,
            events,
        }
    }
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for Observed<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        let message = self.inner.receive().await?;
        if let JsonRpcMessage::Notification(notification) = &message
            && let ServerNotification::ProgressNotification(progress) = &notification.notification
        {
            self.events.progress(&self.server, progress.params.clone());
        }
        Some(message)
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
