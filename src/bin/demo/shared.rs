//! What every session of the process shares ([`Shared`]): the initialize result, the catalog
//! switches, the dynamic tool and prompt toggles, the watched resource's version and the
//! conformance fixtures' state. It also owns broadcasting: `list_changed` and
//! `resources/updated` go to every `initialize`-era session directly and to every open
//! 2026-07-28 `subscriptions/listen` stream.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use pluggedin_mcp_proxy::sync::lock;
use rmcp::{
    ErrorData as McpError, Peer, RoleServer,
    model::*,
    service::{SubscriptionContext, SubscriptionSink},
};
use serde_json::Value;
use tracing::debug;

use crate::{cli::Cli, conformance};

/// State shared by every session of the process (one per stdio/SSE connection, one per
/// Streamable HTTP session or stateless request).
pub(crate) struct Shared {
    pub(crate) info: ServerConfig,
    pub(crate) name: String,
    pub(crate) extra_tools: usize,
    pub(crate) hostile: bool,
    /// `--watch-roots`: every `roots/list` answer and `list_changed` received, in order.
    pub(crate) watched_roots: Option<Mutex<Vec<Value>>>,
    /// `--counter`: what `count` has counted.
    pub(crate) counter: Option<std::sync::atomic::AtomicU64>,
    /// `--notify-caller-only`: list changes go to the session that made them, not to all.
    pub(crate) notify_caller_only: bool,
    pub(crate) dynamic_tool_enabled: AtomicBool,
    pub(crate) dynamic_prompt_enabled: AtomicBool,
    /// The conformance suite's MRTR and tasks fixtures.
    pub(crate) fixtures: conformance::Fixtures,
    pub(crate) watched_version: AtomicU64,
    next_id: AtomicU64,
    /// Sessions that used `initialize`; they get notifications pushed directly.
    legacy_peers: Mutex<HashMap<u64, LegacyPeer>>,
    /// Open 2026-07-28 `subscriptions/listen` streams.
    listeners: Mutex<HashMap<u64, SubscriptionSink>>,
}

struct LegacyPeer {
    peer: Peer<RoleServer>,
    subscriptions: HashSet<String>,
}

impl Shared {
    // `logging` is SEP-2577-deprecated, but this fixture must still advertise it.
    #[allow(deprecated)]
    pub(crate) fn new(cli: &Cli) -> Self {
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_resources_subscribe()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_tasks()
            .build();
        let mut info = InitializeResult::new(capabilities).with_server_info(Implementation::new(
            cli.name.clone(),
            env!("CARGO_PKG_VERSION"),
        ));
        if let Some(instructions) = &cli.instructions {
            info = info.with_instructions(instructions.clone());
        }
        Self {
            info,
            name: cli.name.clone(),
            extra_tools: cli.extra_tools,
            hostile: cli.hostile,
            watched_roots: cli.watch_roots.then(Mutex::default),
            counter: cli.counter.then(Default::default),
            notify_caller_only: cli.notify_caller_only,
            dynamic_tool_enabled: AtomicBool::new(false),
            dynamic_prompt_enabled: AtomicBool::new(false),
            fixtures: conformance::Fixtures::new(),
            watched_version: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            legacy_peers: Mutex::new(HashMap::new()),
            listeners: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Records a session's peer for pushed notifications, optionally with a subscription.
    pub(crate) fn register_legacy_peer(
        &self,
        session_id: u64,
        peer: &Peer<RoleServer>,
        subscribe: Option<String>,
    ) {
        let mut peers = lock(&self.legacy_peers);
        let entry = peers.entry(session_id).or_insert_with(|| LegacyPeer {
            peer: peer.clone(),
            subscriptions: HashSet::new(),
        });
        entry.subscriptions.extend(subscribe);
    }

    /// Ends a session's subscription to `uri`.
    pub(crate) fn unsubscribe(&self, session_id: u64, uri: &str) {
        if let Some(entry) = lock(&self.legacy_peers).get_mut(&session_id) {
            entry.subscriptions.remove(uri);
        }
    }

    /// Serves one `subscriptions/listen` stream: its sink gets every broadcast until the
    /// request ends.
    pub(crate) async fn listen(
        self: &Arc<Self>,
        context: SubscriptionContext,
    ) -> Result<(), McpError> {
        let id = self.next_id();
        lock(&self.listeners).insert(id, context.sink().clone());
        let _guard = ListenerGuard {
            shared: self.clone(),
            id,
        };
        context.cancelled().await;
        Ok(())
    }

    /// Live legacy peers matching `filter`; closed sessions are pruned on the way.
    fn live_legacy_peers(&self, filter: impl Fn(&LegacyPeer) -> bool) -> Vec<Peer<RoleServer>> {
        let mut peers = lock(&self.legacy_peers);
        peers.retain(|_, entry| !entry.peer.is_transport_closed());
        peers
            .values()
            .filter(|entry| filter(entry))
            .map(|entry| entry.peer.clone())
            .collect()
    }

    fn listeners(&self) -> Vec<SubscriptionSink> {
        lock(&self.listeners).values().cloned().collect()
    }

    pub(crate) async fn broadcast_tool_list_changed(&self) {
        for peer in self.live_legacy_peers(|_| true) {
            if let Err(error) = peer.notify_tool_list_changed().await {
                debug!(%error, "tools/list_changed not delivered");
            }
        }
        for sink in self.listeners() {
            if let Err(error) = sink.notify_tool_list_changed().await {
                debug!(%error, "tools/list_changed not delivered to listener");
            }
        }
    }

    pub(crate) async fn broadcast_prompt_list_changed(&self) {
        for peer in self.live_legacy_peers(|_| true) {
            if let Err(error) = peer.notify_prompt_list_changed().await {
                debug!(%error, "prompts/list_changed not delivered");
            }
        }
        for sink in self.listeners() {
            if let Err(error) = sink.notify_prompt_list_changed().await {
                debug!(%error, "prompts/list_changed not delivered to listener");
            }
        }
    }

    pub(crate) async fn broadcast_resource_updated(&self, uri: &str) {
        for peer in self.live_legacy_peers(|entry| entry.subscriptions.contains(uri)) {
            let param = ResourceUpdatedNotificationParam::new(uri);
            if let Err(error) = peer.notify_resource_updated(param).await {
                debug!(%error, "resources/updated not delivered");
            }
        }
        for sink in self.listeners() {
            if let Err(error) = sink.notify_resource_updated(uri).await {
                debug!(%error, "resources/updated not delivered to listener");
            }
        }
    }
}

/// Removes a `subscriptions/listen` sink from [`Shared`] when the listen request ends.
struct ListenerGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        lock(&self.shared.listeners).remove(&self.id);
    }
}
