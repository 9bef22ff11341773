//! The supervisor: one task per server that connects, lists, waits for the connection to end, and
//! reconnects with capped exponential backoff. A slow or broken server only ever delays itself;
//! its state says why it is not connected.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::RoleClient;
use rmcp::model::{ServerNotification, SubscriptionFilter};
use rmcp::service::{Peer, QuitReason, ServiceError};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::connect::{ConnectError, Running, connect};
use super::handler::DownstreamHandler;
use super::{ChildLane, ServerLists};
use super::{Connection, Downstream, Events, ServerState};
use crate::config::Protocol;
use crate::sync::lock;

const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A connection that lived this long resets the backoff: it was a crash, not a crash loop.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// How long a closing connection may take to end its child before we move on.
const CLOSE_GRACE: Duration = Duration::from_secs(8);

/// Starts supervising `downstream` on `tracker`. Returns at once.
pub fn spawn(downstream: Arc<Downstream>, events: Arc<dyn Events>, tracker: &TaskTracker) {
    if downstream.config.disabled {
        return;
    }
    let span = tracing::info_span!("downstream", server = %downstream.name);
    tracker.spawn(supervise(downstream, events).instrument(span));
}

async fn supervise(downstream: Arc<Downstream>, events: Arc<dyn Events>) {
    if let Err(refusal) = downstream.config.check(&downstream.security) {
        // A config the policy refuses stays refused until the config (or the policy) changes.
        tracing::warn!(rule = refusal.rule, "server not started: {refusal}");
        downstream.set_state(ServerState::Refused {
            reason: refusal.to_string(),
            retry_in: None,
        });
        events.catalog_changed();
        downstream.cancel.cancelled().await;
        downstream.set_state(ServerState::Stopped);
        return;
    }
    let mut backoff = FIRST_BACKOFF;
    // An HTTP server's OAuth client lives as long as its supervision, so its tokens
    // outlast reconnections.
    // Only servers of the local file (registry entries included): the App hands its servers'
    // tokens over itself.
    let oauth = match &downstream.config.transport {
        crate::config::TransportConfig::StreamableHttp { url, .. }
        | crate::config::TransportConfig::Sse { url, .. }
            if downstream.config.origin != crate::config::Origin::App =>
        {
            // The URL policy's client when the local file opted into it (`--strict-urls`), so
            // discovery, registration and token requests are checked like the transport's.
            crate::security::net::http_client(
                downstream.security.url_rules(downstream.config.origin),
                crate::security::net::RefusalSlot::default(),
            )
            .ok()
            .map(|http| {
                Arc::new(super::oauth::OAuth::new(
                    &downstream.name,
                    url.clone(),
                    downstream.config.oauth.clone(),
                    http,
                ))
            })
        }
        _ => None,
    };
    loop {
        downstream.set_state(ServerState::Starting);
        let handler = DownstreamHandler {
            server: downstream.name.as_str().into(),
            downstream: Arc::downgrade(&downstream),
            events: events.clone(),
        };
        // `auto` probes once; reconnections speak the generation found, until one fails.
        let remembered = *lock(&downstream.detected);
        let protocol = match (downstream.config.protocol, remembered) {
            (Protocol::Auto, Some(found)) => {
                tracing::debug!(protocol = ?found, "speaking the generation detected before");
                found
            }
            (configured, _) => configured,
        };
        let attempt = tokio::select! {
            () = downstream.cancel.cancelled() => break,
            attempt = connect(
                &downstream.name,
                &downstream.config,
                protocol,
                &downstream.security,
                handler,
                oauth.as_ref(),
                &downstream.stderr,
            ) => attempt,
        };
        let refused = matches!(attempt, Err(ConnectError::Refused(_)));
        let reason = match attempt {
            Ok((running, lane)) => {
                if downstream.config.protocol == Protocol::Auto {
                    let modern = running
                        .peer()
                        .peer_info()
                        .is_some_and(|info| !info.protocol_version.has_initialize());
                    *lock(&downstream.detected) = Some(if modern {
                        Protocol::Modern
                    } else {
                        Protocol::Legacy
                    });
                }
                let started = Instant::now();
                let reason = serve(&downstream, &events, running, lane).await;
                if downstream.cancel.is_cancelled() {
                    break;
                }
                if reason == RESTARTED {
                    // Asked for: connect again at once, as from the start.
                    backoff = FIRST_BACKOFF;
                    events.catalog_changed();
                    continue;
                }
                if started.elapsed() >= STABLE_AFTER {
                    backoff = FIRST_BACKOFF;
                }
                reason
            }
            Err(error) => {
                downstream.set_restarting(false);
                // The server may have changed generation: probe again next time.
                lock(&downstream.detected).take();
                error.to_string()
            }
        };
        // Connection errors quote URLs and server output: no secrets in logs or states.
        let reason = crate::security::text::redact_bounded(&reason, 2000);
        if let Some(oauth) = oauth.as_ref().filter(|oauth| oauth.needs_user()) {
            // Retrying cannot help: wait for `pluggedin-mcp-proxy auth <server>` to store tokens.
            // (Short: `servers` shows it in a 60-character column.)
            let reason = format!("OAuth: run `pluggedin-mcp-proxy auth {}`", downstream.name);
            tracing::warn!("server not connected, awaiting OAuth authorization: {reason}");
            downstream.set_state(ServerState::Failed {
                reason,
                retry_in: None,
            });
            events.catalog_changed();
            tokio::select! {
                () = downstream.cancel.cancelled() => break,
                () = oauth.tokens_stored() => {}
            }
            backoff = FIRST_BACKOFF;
            continue;
        }
        tracing::warn!(
            retry_in_ms = backoff.as_millis() as u64,
            "server not connected: {reason}"
        );
        // Refused at connection time (a name resolving to a refused address, a redirect to
        // one): shown as refused, and checked again later, as DNS answers change.
        let state = if refused {
            ServerState::Refused {
                reason,
                retry_in: Some(backoff),
            }
        } else {
            ServerState::Failed {
                reason,
                retry_in: Some(backoff),
            }
        };
        downstream.set_state(state);
        events.catalog_changed();
        tokio::select! {
            () = downstream.cancel.cancelled() => break,
            () = tokio::time::sleep(backoff) => {}
            () = downstream.restart.notified() => {
                tracing::info!("restart asked for: connecting now");
                backoff = FIRST_BACKOFF;
                continue;
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    downstream.set_connection(None);
    downstream.set_lists(ServerLists::default());
    downstream.set_state(ServerState::Stopped);
    events.catalog_changed();
    tracing::info!("stopped");
}

/// Why a connection ended when a restart was asked for.
const RESTARTED: &str = "restarted, as asked";

/// Runs one live connection until it ends or the server is stopped; returns why it ended.
async fn serve(
    downstream: &Arc<Downstream>,
    events: &Arc<dyn Events>,
    running: Running,
    lane: Option<Arc<ChildLane>>,
) -> String {
    let peer = running.peer().clone();
    let info = peer.peer_info();
    // A modern server gets on every request what a legacy one got once in `initialize`.
    let request_meta = info
        .as_ref()
        .filter(|info| !info.protocol_version.has_initialize())
        .map(|info| {
            let ours = rmcp::ClientHandler::get_info(running.service());
            let mut meta = rmcp::model::RequestMetaObject::default();
            meta.set_protocol_version(info.protocol_version.clone());
            meta.set_client_info(ours.client_info);
            meta.set_client_capabilities(ours.capabilities);
            serde_json::value::to_raw_value(&meta)
        })
        .and_then(Result::ok);
    let connection = Connection {
        peer: peer.clone(),
        lane,
        request_meta,
        capabilities: info
            .as_ref()
            .map(|info| info.capabilities.clone())
            .unwrap_or_default(),
        instructions: info.as_ref().and_then(|info| info.instructions.clone()),
        protocol_version: info
            .as_ref()
            .map(|info| info.protocol_version.to_string())
            .unwrap_or_default(),
    };
    let server_info = info
        .as_ref()
        .and_then(|info| info.server_info.as_ref())
        .map(|server| format!("{} {}", server.name, server.version))
        .unwrap_or_default();
    let stop = running.cancellation_token();
    let ended = running.waiting();
    tokio::pin!(ended);

    let listed = tokio::select! {
        () = downstream.cancel.cancelled() => None,
        result = &mut ended => {
            downstream.set_restarting(false);
            return format!("connection closed during listing ({})", ended_by(&result));
        }
        lists = list_everything(&connection, downstream.config.timeout) => Some(lists),
    };
    let Some(lists) = listed else {
        stop.cancel();
        let _ = tokio::time::timeout(CLOSE_GRACE, ended).await;
        return "stopped".into();
    };
    let lists = match lists {
        Ok(lists) => lists,
        Err(error) => {
            downstream.set_restarting(false);
            stop.cancel();
            let _ = tokio::time::timeout(CLOSE_GRACE, ended).await;
            return format!("listing failed: {error}");
        }
    };
    let (tools, prompts, resources, templates) = (
        lists.tools.len(),
        lists.prompts.len(),
        lists.resources.len(),
        lists.templates.len(),
    );
    downstream.set_lists(lists);
    downstream.set_connection(Some(connection.clone()));
    // The catalog first: whoever waits for `Connected` must find the server's tools in it.
    events.catalog_changed();
    downstream.set_restarting(false);
    downstream.set_state(ServerState::Connected);
    tracing::info!(
        server_info = %server_info,
        protocol = %connection.protocol_version,
        tools = tools,
        prompts = prompts,
        resources = resources,
        templates = templates,
        "connected"
    );
    // A modern server reports list changes on a `subscriptions/listen` stream, not by notifying.
    let modern = connection.is_modern();
    let _follower = modern.then(|| {
        AbortOnDrop(tokio::spawn(
            follow_changes(downstream.clone(), events.clone(), connection.peer.clone())
                .in_current_span(),
        ))
    });

    let reason = tokio::select! {
        () = downstream.cancel.cancelled() => {
            stop.cancel();
            let _ = tokio::time::timeout(CLOSE_GRACE, &mut ended).await;
            "stopped".to_owned()
        }
        result = &mut ended => {
            // Calls wait for the restart that follows (see `Downstream::connected`).
            downstream.set_restarting(true);
            format!("connection closed ({})", ended_by(&result))
        }
        () = downstream.restart.notified() => {
            // Calls from now on wait for the new connection, not the closing one.
            downstream.set_connection(None);
            downstream.set_restarting(true);
            stop.cancel();
            let _ = tokio::time::timeout(CLOSE_GRACE, &mut ended).await;
            tracing::info!("restarting, as asked");
            RESTARTED.to_owned()
        }
    };
    downstream.set_connection(None);
    downstream.set_lists(ServerLists::default());
    reason
}

/// Why a connection's service loop ended, for its state and the log.
fn ended_by(result: &Result<QuitReason, tokio::task::JoinError>) -> String {
    match result {
        Ok(QuitReason::Closed) => "by the server".to_owned(),
        Ok(QuitReason::Cancelled) => "cancelled".to_owned(),
        Ok(QuitReason::JoinError(error)) | Err(error) => format!("its task failed: {error}"),
        Ok(_) => "for an unknown reason".to_owned(),
    }
}

/// Lists everything the server's capabilities announce.
pub(super) async fn list_everything(
    connection: &Connection,
    timeout: Duration,
) -> Result<ServerLists, ServiceError> {
    let peer = &connection.peer;
    let capabilities = &connection.capabilities;
    let list = async {
        let mut lists = ServerLists::default();
        if capabilities.tools.is_some() {
            lists.tools = peer.list_all_tools().await?;
        }
        if capabilities.prompts.is_some() {
            lists.prompts = peer.list_all_prompts().await?;
        }
        if capabilities.resources.is_some() {
            lists.resources = peer.list_all_resources().await?;
            // Some servers announce resources but not templates; that is not an error.
            lists.templates = peer.list_all_resource_templates().await.unwrap_or_default();
        }
        Ok(lists)
    };
    tokio::time::timeout(timeout, list)
        .await
        .map_err(|_| ServiceError::Timeout { timeout })?
}

/// Aborts a task when dropped: the follower ends with the connection it follows.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Listens for a modern server's list changes (re-listing it on each) and for updates of the
/// resources clients subscribed to. The stream is opened again whenever that set changes, since a
/// stream's filter is fixed when it opens.
async fn follow_changes(
    downstream: Arc<Downstream>,
    events: Arc<dyn Events>,
    peer: Peer<RoleClient>,
) {
    let mut watched = downstream.watched.subscribe();
    loop {
        let uris: Vec<String> = watched.borrow_and_update().iter().cloned().collect();

        let mut filter = SubscriptionFilter::default();
        filter.tools_list_changed = Some(true);
        filter.prompts_list_changed = Some(true);
        filter.resources_list_changed = Some(true);
        if !uris.is_empty() {
            filter.resource_subscriptions = Some(uris);
        }
        let mut subscription = match peer.listen(filter).await {
            Ok(subscription) => {
                // What the server acknowledged is what the stream follows.
                let acknowledged = subscription.acknowledged().resource_subscriptions.clone();
                let acknowledged = acknowledged.unwrap_or_default();
                tracing::debug!(
                    resources = acknowledged.len(),
                    "subscriptions/listen stream open"
                );
                downstream
                    .listening
                    .send_replace(acknowledged.into_iter().collect());
                subscription
            }
            // The connection is ending (the proxy stops, the server exits): nothing to follow.
            Err(ServiceError::TransportClosed) => return,
            Err(error) => {
                tracing::warn!(
                    "subscriptions/listen refused, list changes will not be seen: {error}"
                );
                return;
            }
        };
        loop {
            let next = tokio::select! {
                next = subscription.next() => next,
                changed = watched.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
            };
            match next {
                Ok(Some(
                    ServerNotification::ToolListChangedNotification(_)
                    | ServerNotification::PromptListChangedNotification(_)
                    | ServerNotification::ResourceListChangedNotification(_),
                )) => match downstream.relist().await {
                    Ok(()) => {
                        tracing::info!("list changed (subscriptions/listen), re-listed");
                        events.lists_changed(&downstream.name);
                    }
                    Err(error) => tracing::warn!("re-listing failed: {error}"),
                },
                Ok(Some(ServerNotification::ResourceUpdatedNotification(notification))) => {
                    tracing::debug!(uri = %notification.params.uri, "resource updated (subscriptions/listen)");
                    events.resource_updated(&downstream.name, notification.params);
                }
                Ok(Some(other)) => tracing::debug!("subscriptions/listen: {other:?}"),
                Ok(None) | Err(_) => return,
            }
        }
        let _ = subscription.cancel().await;
        tracing::debug!("resource subscriptions changed, listening again");
    }
}
