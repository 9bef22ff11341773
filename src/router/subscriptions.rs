//! What a client asks to hear: resource subscriptions (`resources/subscribe`, forwarded to the
//! resource's owner, or watched on a modern server's listen stream; the owner is told to stop
//! once no session wants the URI), a modern client's `subscriptions/listen` stream, and the log
//! level (`logging/setLevel`). Delivering what the servers send is `events`' business.

use std::sync::Arc;

use rmcp::model::{
    ClientRequest, Request, RequestMetaObject, SubscribeRequestParams, UnsubscribeRequestParams,
};
// Logging is deprecated by SEP-2577; legacy clients and servers use it.
#[allow(deprecated)]
use rmcp::model::{LoggingLevel, SetLevelRequestParams};
use rmcp::service::SubscriptionContext;
use tokio_util::sync::CancellationToken;

use super::Router;
use super::error::RouteError;
use super::session::{Caller, Session};
use super::source::Owner;
use crate::sync::lock;

impl Router {
    /// `resources/subscribe`: forwarded to the owner; updates reach every subscribed session.
    pub async fn subscribe(
        &self,
        caller: &Caller,
        params: SubscribeRequestParams,
    ) -> Result<(), RouteError> {
        let server = self.resource_owner(&params.uri).await?;
        let downstream = self.fleet.server(&server)?;
        let supports = downstream.connection().is_some_and(|c| {
            c.capabilities
                .resources
                .as_ref()
                .is_some_and(|r| r.subscribe == Some(true))
        });
        if !supports {
            return Err(RouteError::Unsupported {
                server,
                what: "resource subscriptions",
            });
        }
        let uri = params.uri.clone();
        if downstream.is_modern() {
            // A modern server has no resources/subscribe: its listen stream carries the URI.
            downstream
                .watch_resource(&uri)
                .await
                .map_err(|message| RouteError::Transport {
                    server: server.clone(),
                    method: "subscriptions/listen".into(),
                    message,
                })?;
        } else {
            self.forward(
                &server,
                ClientRequest::SubscribeRequest(Request::new(params)),
                caller,
            )
            .await?;
        }
        if let Some(session) = &caller.session {
            lock(&session.subscriptions).insert(uri);
        }
        Ok(())
    }

    /// `resources/unsubscribe`: the owner is told once no session wants the URI any more.
    pub async fn unsubscribe(
        &self,
        caller: &Caller,
        params: UnsubscribeRequestParams,
    ) -> Result<(), RouteError> {
        if let Some(session) = &caller.session {
            lock(&session.subscriptions).remove(&params.uri);
        }
        let still_wanted = self
            .sessions
            .live()
            .iter()
            .any(|session| lock(&session.subscriptions).contains(&params.uri));
        if still_wanted {
            return Ok(());
        }
        let server = self.resource_owner(&params.uri).await?;
        let downstream = self.fleet.server(&server)?;
        if downstream.is_modern() {
            downstream.unwatch_resource(&params.uri);
            return Ok(());
        }
        self.forward(
            &server,
            ClientRequest::UnsubscribeRequest(Request::new(params)),
            caller,
        )
        .await
        .map(drop)
    }

    /// The server that serves `uri`: the catalog's owner, or in App mode the App resolver's.
    async fn resource_owner(&self, uri: &str) -> Result<String, RouteError> {
        match self.source().resource_owner(uri).await {
            Owner::App(owner) => {
                let uuid =
                    owner.map_err(|error| RouteError::App(format!("resource {uri}: {error}")))?;
                self.fleet
                    .by_uuid(&uuid)
                    .map(|server| server.name.clone())
                    .ok_or_else(|| RouteError::UnknownResource(uri.to_owned()))
            }
            Owner::Catalog | Owner::Library => self
                .catalog()
                .resolve_resource(uri)
                .map(str::to_owned)
                .ok_or_else(|| RouteError::UnknownResource(uri.to_owned())),
        }
    }

    /// Serves one `subscriptions/listen` stream until the client ends it: list changes from
    /// every server, and updates of the resources it named (subscribed downstream meanwhile).
    pub async fn listen(&self, context: SubscriptionContext) {
        let id = self.catalog.listen(context.sink().clone());
        // A session of its own holds the downstream resource subscriptions while the stream lives.
        let holder = Arc::new(Session::default());
        let caller = Caller {
            session: Some(holder.clone()),
            request_id: None,
            meta: RequestMetaObject::default(),
            ct: CancellationToken::new(),
            principal: None,
            park: None,
            http: None,
        };
        let uris = context
            .accepted()
            .resource_subscriptions
            .clone()
            .unwrap_or_default();
        if !uris.is_empty() {
            self.sessions.register(&holder);
        }
        for uri in &uris {
            if let Err(error) = self
                .subscribe(&caller, SubscribeRequestParams::new(uri.clone()))
                .await
            {
                tracing::debug!(uri, "subscription not taken downstream: {error}");
            }
        }
        context.cancelled().await;
        self.catalog.unlisten(id);
        for uri in uris {
            let _ = self
                .unsubscribe(&caller, UnsubscribeRequestParams::new(uri))
                .await;
        }
    }

    /// `logging/setLevel`: remembered for the session and passed to servers that log.
    #[allow(deprecated)] // see the import
    pub async fn set_level(&self, caller: &Caller, level: LoggingLevel) {
        if let Some(session) = &caller.session {
            *lock(&session.log_level) = Some(level);
        }
        for server in self.servers() {
            let Some(connection) = server.connection() else {
                continue;
            };
            // A modern server takes the level per request instead (see `forward_once`).
            if connection.capabilities.logging.is_none() || connection.is_modern() {
                continue;
            }
            let params = SetLevelRequestParams::new(level);
            if let Err(error) = connection
                .peer
                .send_request(ClientRequest::SetLevelRequest(Request::new(params)))
                .await
            {
                tracing::debug!(server = %server.name, "logging/setLevel not forwarded: {error}");
            }
        }
    }
}
