//! `tools/list` answered from pages encoded once per catalog. A page of 1,000 tools is
//! about 350 KB of JSON; encoding it for every request (and copying the tools into rmcp's result
//! first) was most of the proxy's time for a big catalog. [`ToolPages`] keeps each page's encoded
//! `result` for the current catalog — a catalog is immutable and replaced whole on any change, so
//! a page is keyed by the catalog it was cut from and a change starts the cache over.
//!
//! [`Shortcut`] is the stdio transport's side: it follows the session's handshake and answers a
//! `tools/list` from the cache only where the service would give the very same bytes — a session
//! that initialized with a protocol before 2026-07-28 (the legacy shape: no `resultType`, no cache
//! hints, non-object output schemas dropped), a request without `_meta`, a cursor we hand out.
//! Everything else goes to the service.
//!
//! It steps around rmcp (see `wire`): if rmcp's service could send a result encoded beforehand,
//! the cache could hand it the bytes and the shortcut could go.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rmcp::RoleServer;
use rmcp::model::{ClientNotification, ClientRequest, JsonRpcMessage, RequestId, ServerResult};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};

use crate::catalog::Catalog;
use crate::config::ToolExposure;
use crate::metrics;
use crate::router::Router;
use crate::sync::lock;
use crate::traces::Span;

/// The encoded `tools/list` results of the current catalog, as a legacy session gets them.
pub struct ToolPages {
    router: Arc<Router>,
    cached: Mutex<Option<Pages>>,
}

struct Pages {
    /// Held, so that no later catalog can be allocated at its address while its pages are kept.
    catalog: Arc<Catalog>,
    /// By the index of the page's first tool: at most one entry per page of the catalog.
    encoded: HashMap<usize, Arc<[u8]>>,
}

impl ToolPages {
    pub fn new(router: Arc<Router>) -> ToolPages {
        ToolPages {
            router,
            cached: Mutex::new(None),
        }
    }

    /// The encoded `result` of `tools/list` at `cursor` for a session on a protocol before
    /// 2026-07-28, byte for byte what rmcp's service would send. `None` for a cursor we do not
    /// hand out (only page starts are cached, so the cache holds at most the catalog once); the
    /// service answers those, with its error where the cursor is invalid.
    pub fn legacy_result(&self, cursor: Option<&str>) -> Option<Arc<[u8]>> {
        // The pages are the catalog's, what `all` mode lists; a stdio session (no token) in
        // search mode lists its own tools, answered by the service.
        if self.router.tool_exposure(None) != ToolExposure::All {
            return None;
        }
        let page_size = self.router.page_size();
        let start = match cursor {
            None => 0,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|start| start.is_multiple_of(page_size) && start.to_string() == text)?,
        };
        if start == 0 {
            self.router.tools_listed();
        }
        let catalog = self.router.catalog();
        if let Some(pages) = lock(&self.cached).as_ref()
            && Arc::ptr_eq(&pages.catalog, &catalog)
            && let Some(page) = pages.encoded.get(&start)
        {
            return Some(page.clone());
        }
        let (tools, next) = self.router.list_tools_of(&catalog, cursor).ok()?;
        let mut result = ServerResult::ListToolsResult(super::tools_result(tools, next));
        // What rmcp's `ServerHandler` does to a result for a peer before 2026-07-28.
        result.strip_result_type_for_legacy_peer();
        result.strip_non_object_output_for_legacy_peer();
        let encoded: Arc<[u8]> = if crate::wire::core_tasks::needs_unstash(&result) {
            // Tools' 2025-11-25 `execution`, stashed in `_meta`, back in place.
            let mut value = serde_json::to_value(&result).ok()?;
            crate::wire::core_tasks::unstash_result(&mut value);
            serde_json::to_vec(&value).ok()?.into()
        } else {
            serde_json::to_vec(&result).ok()?.into()
        };
        let mut cached = lock(&self.cached);
        let pages = match cached.take() {
            Some(pages) if Arc::ptr_eq(&pages.catalog, &catalog) => pages,
            // Another catalog's pages (older, or newer than ours): ours replace them.
            _ => Pages {
                catalog,
                encoded: HashMap::new(),
            },
        };
        let pages = cached.insert(pages);
        pages.encoded.insert(start, encoded.clone());
        Some(encoded)
    }
}

/// Where a stdio session's handshake is, as far as answering from the cache goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Handshake {
    /// Nothing yet (a `ping` or `server/discover` leaves it here).
    Start,
    /// `initialize` received, not answered yet.
    Initializing,
    /// Answered with a protocol before 2026-07-28; waiting for `notifications/initialized`.
    Answered,
    /// Initialized on a legacy protocol: `tools/list` may be answered from the cache.
    Ready,
    /// Anything else (a modern session, a second `initialize`, a failed one): never.
    Off,
}

/// The stdio transport's shortcut for `tools/list` (see the module's documentation).
pub struct Shortcut {
    pages: OnceLock<Arc<ToolPages>>,
    handshake: Mutex<Handshake>,
    /// The protocol version the handshake agreed, as a metrics label.
    version: OnceLock<&'static str>,
}

impl Default for Shortcut {
    fn default() -> Self {
        Shortcut {
            pages: OnceLock::new(),
            handshake: Mutex::new(Handshake::Start),
            version: OnceLock::new(),
        }
    }
}

impl Shortcut {
    /// Whether the session initialized on a protocol before 2026-07-28 (and so answers in the
    /// legacy shape).
    pub fn is_ready(&self) -> bool {
        *lock(&self.handshake) == Handshake::Ready
    }

    /// Answers `tools/list` from `pages` from now on, where the answer is the service's.
    pub fn enable(&self, pages: Arc<ToolPages>) {
        let _ = self.pages.set(pages);
    }

    /// For a message from the client: the request's id and the encoded `result` to answer it
    /// with, or `None` to hand it to the service. Follows the handshake either way.
    pub fn answer(&self, message: &RxJsonRpcMessage<RoleServer>) -> Option<(RequestId, Arc<[u8]>)> {
        let mut handshake = lock(&self.handshake);
        match message {
            JsonRpcMessage::Request(request) => match (&request.request, *handshake) {
                (ClientRequest::ListToolsRequest(list), Handshake::Ready) => {
                    let params = list.params.as_ref();
                    let no_meta = params
                        .and_then(|params| params.meta.as_ref())
                        .is_none_or(|meta| meta.is_empty());
                    if !no_meta {
                        return None;
                    }
                    drop(handshake);
                    let started = std::time::Instant::now();
                    let mut span = Span::server(("tools/list", None), None);
                    let version = self.version.get().copied().unwrap_or("");
                    if span.is_recording() {
                        span.set("mcp.method.name", "tools/list");
                        span.set("jsonrpc.request.id", &request.id.to_string());
                        span.set("mcp.protocol.version", version);
                        span.set("network.transport", "pipe");
                    }
                    let cursor = params.and_then(|params| params.cursor.as_deref());
                    let result = self.pages.get()?.legacy_result(cursor)?;
                    tracing::debug!(cursor, "tools/list answered from the encoded page");
                    metrics::global().server_operation(
                        "tools/list",
                        None,
                        metrics::Outcome::Ok,
                        version,
                        started.elapsed(),
                    );
                    Some((request.id.clone(), result))
                }
                (ClientRequest::InitializeRequest(_), Handshake::Start) => {
                    *handshake = Handshake::Initializing;
                    None
                }
                (ClientRequest::PingRequest(_) | ClientRequest::DiscoverRequest(_), _) => None,
                // A second `initialize`, or a session that began without one.
                (ClientRequest::InitializeRequest(_), _) | (_, Handshake::Start) => {
                    *handshake = Handshake::Off;
                    None
                }
                _ => None,
            },
            JsonRpcMessage::Notification(notification)
                if matches!(
                    notification.notification,
                    ClientNotification::InitializedNotification(_)
                ) && *handshake == Handshake::Answered =>
            {
                *handshake = Handshake::Ready;
                None
            }
            _ => None,
        }
    }

    /// Follows the handshake in a message to the client.
    pub fn sent(&self, message: &TxJsonRpcMessage<RoleServer>) {
        let mut handshake = lock(&self.handshake);
        if *handshake != Handshake::Initializing {
            return;
        }
        *handshake = match message {
            JsonRpcMessage::Response(response) => match &response.result {
                ServerResult::InitializeResult(result)
                    if result.protocol_version.has_initialize() =>
                {
                    let version = result.protocol_version.as_str();
                    let _ = self.version.set(metrics::version_label(Some(version)));
                    Handshake::Answered
                }
                _ => Handshake::Off,
            },
            JsonRpcMessage::Error(_) => Handshake::Off,
            // Notifications and requests to the client during the handshake change nothing.
            _ => Handshake::Initializing,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(shortcut: &Shortcut, line: &str) {
        let message: RxJsonRpcMessage<RoleServer> = serde_json::from_str(line).unwrap();
        assert!(shortcut.answer(&message).is_none());
    }

    fn initialize_answered(shortcut: &Shortcut, version: &str) {
        let line = format!(
            r#"{{"jsonrpc":"2.0","id":0,"result":{{"protocolVersion":"{version}","capabilities":{{}},"serverInfo":{{"name":"p","version":"1"}}}}}}"#
        );
        let message: TxJsonRpcMessage<RoleServer> = serde_json::from_str(&line).unwrap();
        assert!(matches!(
            &message,
            JsonRpcMessage::Response(response)
                if matches!(response.result, ServerResult::InitializeResult(_))
        ));
        shortcut.sent(&message);
    }

    fn state(shortcut: &Shortcut) -> Handshake {
        *lock(&shortcut.handshake)
    }

    const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#;
    const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    const LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

    #[test]
    fn a_legacy_session_is_ready_after_initialized() {
        let shortcut = Shortcut::default();
        incoming(&shortcut, r#"{"jsonrpc":"2.0","id":"p","method":"ping"}"#);
        assert_eq!(state(&shortcut), Handshake::Start);
        incoming(&shortcut, INITIALIZE);
        assert_eq!(state(&shortcut), Handshake::Initializing);
        initialize_answered(&shortcut, "2025-06-18");
        assert_eq!(state(&shortcut), Handshake::Answered);
        // Before `initialized`, the service answers.
        incoming(&shortcut, LIST);
        incoming(&shortcut, INITIALIZED);
        assert_eq!(state(&shortcut), Handshake::Ready);
        // Ready, but no pages to answer from: still the service.
        incoming(&shortcut, LIST);
        // A second `initialize` turns the shortcut off for good.
        incoming(&shortcut, INITIALIZE);
        assert_eq!(state(&shortcut), Handshake::Off);
    }

    #[test]
    fn modern_sessions_are_never_answered_from_the_cache() {
        // A session that starts without `initialize` (2026-07-28 inline lifecycle).
        let shortcut = Shortcut::default();
        incoming(&shortcut, LIST);
        assert_eq!(state(&shortcut), Handshake::Off);
        incoming(&shortcut, INITIALIZE);
        initialize_answered(&shortcut, "2025-06-18");
        incoming(&shortcut, INITIALIZED);
        assert_eq!(state(&shortcut), Handshake::Off);

        // A session initialized on 2026-07-28 gets cache hints and `resultType`: not ours.
        let shortcut = Shortcut::default();
        incoming(&shortcut, INITIALIZE);
        initialize_answered(&shortcut, "2026-07-28");
        incoming(&shortcut, INITIALIZED);
        assert_eq!(state(&shortcut), Handshake::Off);
    }
}
