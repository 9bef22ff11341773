//! When each session was last used, and whether it is busy: requests and streams in flight hold
//! it busy ([`Busy`], dropped with their stream), every use stamps it. Eviction picks the least
//! recently used by [`Activity::order`]; hibernation and the expiry of hibernated sessions read
//! how long a session has been idle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use rmcp::transport::streamable_http_server::session::{ServerSseMessage, SessionId};

use super::BoundedSessions;
use crate::sync::lock;

/// Requests and streams in flight on a session, and when it was last used.
pub(super) struct Activity {
    pub(super) busy: AtomicUsize,
    /// Milliseconds since [`BoundedSessions::epoch`].
    last: AtomicU64,
    /// The order of last uses (for least-recently-used eviction).
    pub(super) order: AtomicU64,
}

/// Held by each response stream (and GET stream) of a session while it is open.
pub(super) struct Busy {
    activity: Arc<Activity>,
    epoch: Instant,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.activity
            .last
            .store(millis_since(self.epoch), Ordering::Relaxed);
        self.activity.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl BoundedSessions {
    /// The activity of a new session: used now, idle.
    pub(super) fn new_activity(&self) -> Arc<Activity> {
        Arc::new(Activity {
            busy: AtomicUsize::new(0),
            last: AtomicU64::new(millis_since(self.epoch)),
            order: AtomicU64::new(self.uses.fetch_add(1, Ordering::Relaxed)),
        })
    }

    pub(super) fn idle_for(&self, activity: &Activity) -> Duration {
        Duration::from_millis(
            millis_since(self.epoch).saturating_sub(activity.last.load(Ordering::Relaxed)),
        )
    }

    pub(super) fn stamp(&self, activity: &Activity) {
        activity
            .last
            .store(millis_since(self.epoch), Ordering::Relaxed);
        activity
            .order
            .store(self.uses.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
    }

    pub(super) fn touch(&self, id: &SessionId) -> Option<Arc<Activity>> {
        let entries = lock(&self.entries);
        let entry = entries.get(id)?;
        self.stamp(&entry.activity);
        Some(entry.activity.clone())
    }

    /// Marks a session busy until the returned guard drops.
    pub(super) fn busy(&self, id: &SessionId) -> Option<Busy> {
        let activity = self.touch(id)?;
        activity.busy.fetch_add(1, Ordering::AcqRel);
        Some(Busy {
            activity,
            epoch: self.epoch,
        })
    }
}

/// A session's stream, holding the session busy while it is open.
pub(super) fn held<S>(
    stream: S,
    busy: Option<Busy>,
) -> impl Stream<Item = ServerSseMessage> + Send + Sync + 'static
where
    S: Stream<Item = ServerSseMessage> + Send + Sync + 'static,
{
    stream.map(move |message| {
        let _held = &busy;
        message
    })
}
