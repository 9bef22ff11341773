//! Roots: which directories a server gets when it sends `roots/list`. Over stdio the one
//! client's roots are every server's roots: they are asked once the client initialized, kept,
//! asked again on its `notifications/roots/list_changed`, and each time the servers that asked
//! for roots are told `notifications/roots/list_changed`. Over HTTP several sessions share one
//! server connection, so a server gets a session's roots only while it asks during that
//! session's call (kept per session, asked on the call's stream when not known yet); whenever
//! nothing says whose roots to give, a server gets its configured `roots` (an empty list without
//! them). A modern client's call to a legacy server is the parked path's business (`parked`).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use rmcp::model::{ClientResult, ErrorData, RequestId, ServerRequest};
// Roots are deprecated by SEP-2577; legacy clients and servers use them.
#[allow(deprecated)]
use rmcp::model::{ListRootsResult, Root};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::fleet::Fleet;
use super::session::{Session, ask_client};
use crate::sync::lock;

/// Whose roots the servers get outside calls, and which servers asked for roots.
pub(super) struct Roots {
    /// The stdio client, whose roots are every server's roots.
    owner: OnceLock<Weak<Session>>,
    /// Servers that asked for roots: told when the stdio client's roots are known or change.
    askers: Mutex<BTreeSet<String>>,
    fleet: Arc<Fleet>,
    tracker: TaskTracker,
}

impl Roots {
    pub(super) fn new(fleet: Arc<Fleet>, tracker: TaskTracker) -> Roots {
        Roots {
            owner: OnceLock::new(),
            askers: Mutex::default(),
            fleet,
            tracker,
        }
    }

    /// Makes `session` the client whose roots are the servers' roots: the one stdio client.
    pub(super) fn set_owner(&self, session: &Arc<Session>) {
        let _ = self.owner.set(Arc::downgrade(session));
    }

    fn is_owner(&self, session: &Session) -> bool {
        self.owner
            .get()
            .is_some_and(|owner| std::ptr::eq(owner.as_ptr(), session))
    }

    /// The client of `session` initialized, or said its roots changed. The stdio client (with
    /// the `roots` capability) is asked at once, and the servers that asked for roots are told
    /// when it has answered; an HTTP session's roots are forgotten, to be asked again when a
    /// server next asks during one of its calls. `cancel` ends the question (shutdown).
    pub(super) fn refresh(self: &Arc<Self>, session: &Arc<Session>, cancel: CancellationToken) {
        {
            let mut kept = lock(&session.roots);
            kept.changes += 1;
            if !self.is_owner(session) {
                kept.roots = None;
                return;
            }
        }
        if !supports_roots(session) {
            return;
        }
        let roots = self.clone();
        let session = session.clone();
        self.tracker.spawn(async move {
            let asked = roots.ask(&session, None, "the proxy", true, cancel).await;
            if let Err(error) = asked {
                tracing::debug!("the client's roots/list failed: {}", error.message);
            }
        });
    }

    /// A server's `roots/list` (legacy servers; modern ones ask through `InputRequiredResult`).
    /// `calling` is the session whose call the question came with and that call's request id;
    /// `None` when nothing ties it to one session's call.
    pub(super) async fn for_server(
        &self,
        server: &str,
        calling: Option<(&Arc<Session>, Option<RequestId>)>,
        cancel: CancellationToken,
    ) -> Result<ClientResult, ErrorData> {
        // Noted before the roots are read, so a change kept after this read still reaches it.
        lock(&self.askers).insert(server.to_owned());
        let roots = match calling {
            Some((session, request)) => self.of_session(server, session, request, cancel).await?,
            None => self.outside_calls(server),
        };
        Ok(ClientResult::ListRootsResult(roots))
    }

    /// The roots of `session`, for a server asking during its call `request`: kept ones, else the
    /// client is asked on that call's stream (a question already on its way is waited for); a
    /// client without the `roots` capability leaves the server its configured roots.
    #[allow(deprecated)] // see the import
    pub(super) async fn of_session(
        &self,
        server: &str,
        session: &Arc<Session>,
        request: Option<RequestId>,
        cancel: CancellationToken,
    ) -> Result<ListRootsResult, ErrorData> {
        if !supports_roots(session) {
            return Ok(self.configured(server));
        }
        if let Some(kept) = lock(&session.roots).roots.clone() {
            tracing::debug!(
                server,
                "roots/list answered with the calling client's roots"
            );
            return Ok(ListRootsResult::clone(&kept));
        }
        let asker = format!("server \"{server}\"");
        self.ask(session, request, &asker, false, cancel).await
    }

    /// What a server gets when no call ties its question to a session: the stdio client's roots
    /// once known, else the server's configured roots.
    #[allow(deprecated)] // see the import
    fn outside_calls(&self, server: &str) -> ListRootsResult {
        let owner = self.owner.get().and_then(Weak::upgrade);
        if let Some(kept) = owner.and_then(|owner| lock(&owner.roots).roots.clone()) {
            tracing::debug!(server, "roots/list answered with the client's roots");
            return ListRootsResult::clone(&kept);
        }
        self.configured(server)
    }

    /// The server's configured roots (an empty list without them).
    #[allow(deprecated)] // see the import
    fn configured(&self, server: &str) -> ListRootsResult {
        let roots: Vec<Root> = self
            .fleet
            .server(server)
            .map(|downstream| {
                downstream
                    .config
                    .roots
                    .iter()
                    .map(|root| {
                        let mut entry = Root::new(root.uri.clone());
                        entry.name = root.name.clone();
                        entry
                    })
                    .collect()
            })
            .unwrap_or_default();
        if roots.is_empty() {
            tracing::debug!(
                server,
                "roots/list answered with an empty list (none configured)"
            );
        } else {
            tracing::debug!(
                server,
                roots = roots.len(),
                "roots/list answered with the configured roots"
            );
        }
        ListRootsResult::new(roots)
    }

    /// Asks the client of `session` for its roots (one question at a time per session) and keeps
    /// the answer. Without `fresh`, roots kept by the time the question's turn comes are answered
    /// instead. When the stdio client's roots were kept, the servers that asked are told.
    #[allow(deprecated)] // see the import
    async fn ask(
        &self,
        session: &Arc<Session>,
        origin: Option<RequestId>,
        asker: &str,
        fresh: bool,
        cancel: CancellationToken,
    ) -> Result<ListRootsResult, ErrorData> {
        let _turn = tokio::select! {
            turn = session.asking_roots.lock() => turn,
            () = cancel.cancelled() => {
                return Err(ErrorData::internal_error("cancelled", None));
            }
        };
        let changes = {
            let kept = lock(&session.roots);
            if !fresh && let Some(roots) = &kept.roots {
                return Ok(ListRootsResult::clone(roots));
            }
            kept.changes
        };
        let request = ServerRequest::ListRootsRequest(Default::default());
        let answer = ask_client(session, origin, asker, request, cancel).await?;
        let ClientResult::ListRootsResult(roots) = answer else {
            return Err(ErrorData::internal_error(
                "the client answered roots/list with an unexpected result",
                None,
            ));
        };
        {
            let mut kept = lock(&session.roots);
            if kept.changes == changes {
                kept.roots = Some(Arc::new(roots.clone()));
            }
        }
        if self.is_owner(session) {
            tracing::info!(roots = roots.roots.len(), "the client's roots are known");
            self.notify_askers();
        }
        Ok(roots)
    }

    /// Sends `notifications/roots/list_changed` to every connected server that asked for roots.
    fn notify_askers(&self) {
        let askers: Vec<String> = lock(&self.askers).iter().cloned().collect();
        for name in askers {
            let Some(connection) = self
                .fleet
                .server(&name)
                .ok()
                .and_then(|downstream| downstream.connection())
            else {
                continue;
            };
            // A modern server asks within each call (`InputRequiredResult`); it has no such
            // notification to take.
            if connection.is_modern() {
                continue;
            }
            let peer = connection.peer.clone();
            self.tracker.spawn(async move {
                if let Err(error) = peer.notify_roots_list_changed().await {
                    tracing::debug!(server = %name, "roots/list_changed not delivered: {error}");
                }
            });
        }
    }
}

/// Whether the client of `session` announced the `roots` capability (a modern client, which
/// never initializes, has announced nothing here).
fn supports_roots(session: &Session) -> bool {
    session
        .peer
        .get()
        .and_then(|peer| peer.peer_info())
        .is_some_and(|info| info.capabilities.roots.is_some())
}
