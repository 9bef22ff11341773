//! What the servers send the router's way ([`Events`], called by `downstream`): list changes
//! rebuild the catalog; progress goes to `progress`; log messages to the sessions whose level
//! they pass (and to the one modern request in flight that asked); resource updates to the
//! subscribed sessions and listening streams; core-task status to the task's creator; and a
//! server's own requests (sampling, elicitation, roots) to the client they belong to
//! (`attribution`), parked with a modern client's call, or answered by `roots`.

use futures::future::BoxFuture;
use rmcp::RoleClient;
use rmcp::model::{
    ClientResult, ErrorData, ProgressNotificationParam, ResourceUpdatedNotificationParam,
    ServerNotification, ServerRequest,
};
// Logging is deprecated by SEP-2577; legacy clients and servers use it.
#[allow(deprecated)]
use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
use rmcp::service::{InboundStreamOrigin, RequestContext};

use super::attribution::Attribution;
use super::session::{ask_client, method_of};
use super::{Router, core_tasks, parked};
use crate::control::fleet::Heard;
use crate::downstream::Events;
use crate::sync::lock;

impl Events for Router {
    fn catalog_changed(&self) {
        self.rebuild_catalog();
    }

    fn lists_changed(&self, server: &str) {
        self.rebuild_catalog();
        self.peers.announce(server, Heard::ListChanged);
    }

    fn progress(&self, server: &str, params: ProgressNotificationParam) {
        self.progress.arrived(server, params);
    }

    // Logging is deprecated by SEP-2577; legacy clients and servers use it.
    #[allow(deprecated)]
    fn log(&self, server: &str, mut params: LoggingMessageNotificationParam) {
        params.logger = Some(match params.logger.take() {
            Some(logger) => format!("{server}/{logger}"),
            None => server.to_owned(),
        });
        for session in self.sessions.live() {
            if !level_passes(params.level, *lock(&session.log_level)) {
                continue;
            }
            if session.live_peer().is_none() {
                continue;
            }
            session.queue_log(params.clone(), &self.tracker);
        }
        // Modern callers have no session to broadcast to: a modern server's message goes to the
        // one modern request in flight on it that asked for logs (with several, nothing in the
        // message tells them apart, and it is not guessed).
        if let Some((session, level)) = self.in_flight.log_listener(server)
            && level_passes(params.level, Some(level))
            && let Some(session) = session.upgrade()
        {
            session.queue_log(params, &self.tracker);
        }
    }

    fn task_status(&self, server: &str, params: Option<serde_json::Value>) {
        core_tasks::status(self, server, params);
    }

    fn resource_updated(&self, server: &str, params: ResourceUpdatedNotificationParam) {
        self.announce_update(server, &params.uri);
        self.deliver_resource_updated(params);
    }

    fn server_request(
        &self,
        server: &str,
        request: ServerRequest,
        context: RequestContext<RoleClient>,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
        let router = self.this.upgrade();
        let origin = context.extensions.get::<InboundStreamOrigin>().cloned();
        let server = server.to_owned();
        Box::pin(async move {
            let method = method_of(&request);
            if matches!(request, ServerRequest::PingRequest(_)) {
                return Ok(ClientResult::empty(()));
            }
            let Some(router) = router else {
                return Err(ErrorData::internal_error(
                    "the proxy is shutting down",
                    None,
                ));
            };
            let roots = matches!(request, ServerRequest::ListRootsRequest(_));
            let attribution = router
                .in_flight
                .attribute(&server, origin.as_ref(), &router.sessions)
                .await;
            let (session, origin) = match attribution {
                Attribution::Session(session, origin) => (session, origin),
                Attribution::Parked(questions) => {
                    return parked::ask(&questions, request, context.ct).await;
                }
                // Whose roots to give is unknown: the server gets its configured ones.
                Attribution::Nobody | Attribution::Ambiguous(_) if roots => {
                    return router.roots.for_server(&server, None, context.ct).await;
                }
                Attribution::Nobody => {
                    return Err(ErrorData::internal_error(
                        format!(
                            "no client session to answer {method} from server \"{server}\": \
                             it came with no request of ours in flight"
                        ),
                        None,
                    ));
                }
                Attribution::Ambiguous(sessions) => {
                    tracing::warn!(
                        server,
                        method,
                        sessions,
                        "server-to-client request refused: cannot tell which client asked"
                    );
                    return Err(ErrorData::internal_error(
                        format!(
                            "{method} from server \"{server}\" refused: {sessions} client sessions \
                             have calls in flight on it and its transport cannot say which one \
                             this belongs to"
                        ),
                        None,
                    ));
                }
            };
            if roots {
                // Without a request of the session's in flight, it is not this session's call.
                let calling = origin.is_some().then_some((&session, origin));
                return router.roots.for_server(&server, calling, context.ct).await;
            }
            let asker = format!("server \"{server}\"");
            ask_client(&session, origin, &asker, request, context.ct).await
        })
    }
}

impl Router {
    /// Tells this replica's listening streams and the sessions subscribed to the resource.
    pub(super) fn deliver_resource_updated(&self, params: ResourceUpdatedNotificationParam) {
        self.catalog
            .notify_listeners(vec![ServerNotification::ResourceUpdatedNotification(
                rmcp::model::Notification::new(params.clone()),
            )]);
        for session in self.sessions.live() {
            if !lock(&session.subscriptions).contains(&params.uri) {
                continue;
            }
            let Some(peer) = session.live_peer().cloned() else {
                continue;
            };
            let params = params.clone();
            self.tracker.spawn(async move {
                let _ = peer.notify_resource_updated(params).await;
            });
        }
    }
}

/// Whether a message at `level` passes a session's threshold.
#[allow(deprecated)] // logging levels: see the import
fn level_passes(level: LoggingLevel, threshold: Option<LoggingLevel>) -> bool {
    threshold.is_none_or(|threshold| severity(level) >= severity(threshold))
}

#[allow(deprecated)] // logging levels: see the import
fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}
