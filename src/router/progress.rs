//! Progress: where a server's progress notifications go. A forwarded request that carries the
//! client's progress token is followed ([`Progress::follow`]): a route from the server and the
//! downstream token rmcp chose to the session and the client's own token, for as long as the
//! request runs. What a fast server reports before its route exists waits in a bounded table and
//! goes first. Notifications go out through the session's outbox, in order; sending the answer
//! after them is the forwarding's part ([`Following::flush`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rmcp::model::{ProgressNotificationParam, ProgressToken};
use tokio_util::task::TaskTracker;

use super::session::{Pending, Session};
use crate::sync::lock;

/// How long an answer waits for its progress notifications to reach the client first.
const PROGRESS_FLUSH_WAIT: Duration = Duration::from_secs(2);

/// Progress kept for a request not registered yet (a fast server can report before our
/// forwarding task has recorded the route), this long at most.
const EARLY_PROGRESS_TTL: Duration = Duration::from_secs(10);
/// A bound on the early progress kept, so a server reporting on requests nobody follows cannot
/// grow it.
const EARLY_PROGRESS_MAX: usize = 10_000;

/// The progress routes of the requests in flight, and what arrived before its route.
pub(super) struct Progress {
    table: Mutex<ProgressTable>,
    tracker: TaskTracker,
}

/// A followed request's route, removed when this is dropped (however the request ends).
pub(super) struct Following<'a> {
    progress: &'a Progress,
    key: (String, ProgressToken),
    pending: Arc<Pending>,
}

/// Where progress goes: routes by (server, downstream token), and what arrived before its route.
#[derive(Default)]
struct ProgressTable {
    routes: HashMap<(String, ProgressToken), ProgressRoute>,
    early: HashMap<(String, ProgressToken), (Instant, Vec<ProgressNotificationParam>)>,
}

/// Where a downstream progress token leads.
struct ProgressRoute {
    session: Weak<Session>,
    token: ProgressToken,
    /// Notifications queued for the client and not yet sent; the answer waits for them.
    pending: Arc<Pending>,
}

impl Progress {
    pub(super) fn new(tracker: TaskTracker) -> Progress {
        Progress {
            table: Mutex::default(),
            tracker,
        }
    }

    /// Sends `server`'s progress on `downstream` to `session` under the client's `token` while
    /// the returned value lives; whatever the server reported before this moment goes first.
    pub(super) fn follow(
        &self,
        server: &str,
        downstream: ProgressToken,
        session: &Arc<Session>,
        token: ProgressToken,
    ) -> Following<'_> {
        let key = (server.to_owned(), downstream);
        let pending = Arc::new(Pending::default());
        let route = ProgressRoute {
            session: Arc::downgrade(session),
            token,
            pending: pending.clone(),
        };
        let mut table = lock(&self.table);
        // Whatever the server reported before this moment goes first, in order.
        if let Some((first, early)) = table.early.remove(&key)
            && first.elapsed() < EARLY_PROGRESS_TTL
        {
            for params in early {
                self.deliver(&route, params);
            }
        }
        table.routes.insert(key.clone(), route);
        drop(table);
        Following {
            progress: self,
            key,
            pending,
        }
    }

    /// A server's progress notification: to its route's session, or kept a while for a route
    /// not registered yet.
    pub(super) fn arrived(&self, server: &str, params: ProgressNotificationParam) {
        let key = (server.to_owned(), params.progress_token.clone());
        let mut table = lock(&self.table);
        if let Some(route) = table.routes.get(&key) {
            self.deliver(route, params);
            return;
        }
        let now = Instant::now();
        // Forget what nobody claimed in time (a request without a client token, or a connection
        // that ended): every so often, and always when full.
        if table.early.len() >= EARLY_PROGRESS_MAX || table.early.len() % 64 == 63 {
            table
                .early
                .retain(|_, (first, _)| now.duration_since(*first) < EARLY_PROGRESS_TTL);
        }
        if table.early.len() >= EARLY_PROGRESS_MAX {
            tracing::debug!(server, "progress for no known request dropped");
            return;
        }
        table
            .early
            .entry(key)
            .or_insert_with(|| (now, Vec::new()))
            .1
            .push(params);
    }

    /// Queues one progress notification for the route's session, with the client's token. Called
    /// with the progress table locked, so notifications keep the order they arrived in.
    fn deliver(&self, route: &ProgressRoute, mut params: ProgressNotificationParam) {
        let Some(session) = route.session.upgrade() else {
            return;
        };
        params.progress_token = route.token.clone();
        session.queue_progress(params, &route.pending, &self.tracker);
    }
}

impl Following<'_> {
    /// Waits, for a while at most, until the progress queued so far has reached the client: the
    /// server sent its progress before its answer, and so does the client get them.
    pub(super) async fn flush(&self) {
        let _ = tokio::time::timeout(PROGRESS_FLUSH_WAIT, self.pending.flushed()).await;
    }
}

impl Drop for Following<'_> {
    fn drop(&mut self) {
        lock(&self.progress.table).routes.remove(&self.key);
    }
}
