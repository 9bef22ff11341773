//! The catalog clients see: the current snapshot, replaced whole by each rebuild with the
//! built-in tools and prompt put first, and clients told what changed — sessions by list-changed
//! notifications, `subscriptions/listen` streams through their sinks
//! ([`CatalogState::install`]). Also the catalog cache: the servers' lists written to the store
//! as they change, and read back to find the server, not connected now, that should offer a
//! name ([`CatalogState::offered_by`]). What goes into a catalog is `source`'s business.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use rmcp::model::{ServerNotification, Tool};
use rmcp::service::SubscriptionSink;
use tokio_util::task::TaskTracker;

use super::session::Sessions;
use crate::builtin;
use crate::catalog::search::ToolIndex;
use crate::catalog::{Catalog, Item, ServerLists};
use crate::control::time::now_ms;
use crate::control::{CachedServer, ControlPlane};
use crate::downstream::Downstream;
use crate::sync::{lock, read, write};

/// The current catalog, the streams listening for its changes, and the catalog cache.
pub(super) struct CatalogState {
    current: RwLock<Arc<Catalog>>,
    /// Held for a whole catalog rebuild: two servers connecting at once must not race, or the
    /// slower rebuild (from older lists) would replace the newer catalog.
    rebuilding: Mutex<()>,
    /// Modern clients' `subscriptions/listen` streams, by a local id.
    listeners: Mutex<HashMap<u64, SubscriptionSink>>,
    next_listener: AtomicU64,
    /// The lists last written to the catalog cache, by server UUID; with the store's copies
    /// once a name had to be looked up there (`offered_by`).
    cached: Mutex<HashMap<String, Arc<ServerLists>>>,
    /// Set once the store's catalog cache has been read into `cached` (only when needed: it is
    /// off the start-up path).
    stored_lists: tokio::sync::OnceCell<()>,
    /// The search index of the catalog it was built for (held, so that no later catalog can be
    /// allocated at its address), built at the first search after a change.
    index: Mutex<Option<(Arc<Catalog>, Arc<ToolIndex>)>>,
    control: Arc<dyn ControlPlane>,
    tracker: TaskTracker,
}

impl CatalogState {
    pub(super) fn new(control: Arc<dyn ControlPlane>, tracker: TaskTracker) -> CatalogState {
        CatalogState {
            current: RwLock::default(),
            rebuilding: Mutex::default(),
            listeners: Mutex::default(),
            next_listener: AtomicU64::new(0),
            cached: Mutex::default(),
            stored_lists: tokio::sync::OnceCell::new(),
            index: Mutex::default(),
            control,
            tracker,
        }
    }

    /// The catalog clients see now.
    pub(super) fn get(&self) -> Arc<Catalog> {
        read(&self.current).clone()
    }

    /// The search index of `catalog`'s tools: built once per catalog, by the first search
    /// that needs it (searches meanwhile wait for it rather than build it twice).
    pub(super) fn index(&self, catalog: &Arc<Catalog>) -> Arc<ToolIndex> {
        let mut index = lock(&self.index);
        if let Some((indexed, built)) = index.as_ref()
            && Arc::ptr_eq(indexed, catalog)
        {
            return built.clone();
        }
        let built = Arc::new(ToolIndex::build(&catalog.tools));
        *index = Some((catalog.clone(), built.clone()));
        built
    }

    /// Held while a rebuild reads the servers' lists and installs what it built.
    pub(super) fn rebuilding(&self) -> MutexGuard<'_, ()> {
        lock(&self.rebuilding)
    }

    /// Puts the built-in tools and prompt first, replaces the catalog, and tells `sessions` and
    /// the listening streams what changed; `exposures_changed`: what decides which tools a
    /// session lists changed, so its tool list may have changed with the same catalog.
    pub(super) fn install(
        &self,
        mut catalog: Catalog,
        builtins: Vec<Tool>,
        sessions: &Sessions,
        exposures_changed: bool,
    ) {
        catalog.tools.splice(0..0, builtins);
        catalog.prompts.insert(0, builtin::capabilities::prompt());
        let catalog = Arc::new(catalog);
        let old = std::mem::replace(&mut *write(&self.current), catalog.clone());
        let tools_changed = exposures_changed || old.tools != catalog.tools;
        let prompts_changed = old.prompts != catalog.prompts;
        let resources_changed =
            old.resources != catalog.resources || old.templates != catalog.templates;
        if !(tools_changed || prompts_changed || resources_changed) {
            return;
        }
        for session in sessions.live() {
            let Some(peer) = session.live_peer().cloned() else {
                continue;
            };
            self.tracker.spawn(async move {
                if tools_changed {
                    let _ = peer.notify_tool_list_changed().await;
                }
                if prompts_changed {
                    let _ = peer.notify_prompt_list_changed().await;
                }
                if resources_changed {
                    let _ = peer.notify_resource_list_changed().await;
                }
            });
        }
        let mut changes = Vec::new();
        if tools_changed {
            changes.push(ServerNotification::ToolListChangedNotification(
                Default::default(),
            ));
        }
        if prompts_changed {
            changes.push(ServerNotification::PromptListChangedNotification(
                Default::default(),
            ));
        }
        if resources_changed {
            changes.push(ServerNotification::ResourceListChangedNotification(
                Default::default(),
            ));
        }
        self.notify_listeners(changes);
    }

    /// Sends notifications to every `subscriptions/listen` stream that asked for them (each
    /// sink drops what its filter did not accept).
    pub(super) fn notify_listeners(&self, notifications: Vec<ServerNotification>) {
        if notifications.is_empty() {
            return;
        }
        let sinks: Vec<SubscriptionSink> = lock(&self.listeners).values().cloned().collect();
        for sink in sinks {
            let notifications = notifications.clone();
            self.tracker.spawn(async move {
                for notification in notifications {
                    let _ = sink.send(notification).await;
                }
            });
        }
    }

    /// Adds a `subscriptions/listen` stream; its id ends it ([`CatalogState::unlisten`]).
    pub(super) fn listen(&self, sink: SubscriptionSink) -> u64 {
        let id = self.next_listener.fetch_add(1, Ordering::Relaxed);
        lock(&self.listeners).insert(id, sink);
        id
    }

    pub(super) fn unlisten(&self, id: u64) {
        lock(&self.listeners).remove(&id);
    }

    /// Writes the lists of connected servers that changed to the catalog cache, off the
    /// caller's path.
    pub(super) fn cache(&self, servers: &[Arc<Downstream>], lists: &[Arc<ServerLists>]) {
        let mut cached = lock(&self.cached);
        for (server, lists) in servers.iter().zip(lists) {
            if server.connection().is_none()
                || cached
                    .get(&server.uuid)
                    .is_some_and(|last| Arc::ptr_eq(last, lists))
            {
                continue;
            }
            cached.insert(server.uuid.clone(), lists.clone());
            let entry = CachedServer {
                uuid: server.uuid.clone(),
                name: server.name.clone(),
                lists: lists.to_json(),
                updated_at: now_ms(),
            };
            let control = self.control.clone();
            self.tracker.spawn(async move {
                if let Err(error) = control.cache_server(entry).await {
                    tracing::debug!("catalog cache not written: {error}");
                }
            });
        }
    }

    /// The first of `down` whose last known lists offer `item`: what the server listed when it
    /// was last connected, in this process or an earlier one (the store's copy is read the
    /// first time it is needed).
    pub(super) async fn offered_by(
        &self,
        down: Vec<Arc<Downstream>>,
        item: Item<'_>,
    ) -> Option<Arc<Downstream>> {
        self.stored_lists
            .get_or_init(|| async {
                let stored = match self.control.cached_servers().await {
                    Ok(stored) => stored,
                    Err(error) => {
                        tracing::debug!("catalog cache not read: {error}");
                        Vec::new()
                    }
                };
                let mut cached = lock(&self.cached);
                for server in stored {
                    if let Some(lists) = ServerLists::from_json(&server.lists) {
                        // What a server listed in this process is newer than the store's copy.
                        cached.entry(server.uuid).or_insert_with(|| Arc::new(lists));
                    }
                }
            })
            .await;
        let cached = lock(&self.cached);
        down.into_iter().find(|server| {
            cached
                .get(&server.uuid)
                .is_some_and(|lists| crate::catalog::offers(lists, item))
        })
    }
}
