//! Requests in flight, counted so that shutdown can drain them: a request counts from the guard
//! until its response body (an SSE stream, often) has been sent or dropped. `GET` streams live
//! as long as their session and do not count. [`InFlight::idle`] waits for the count to reach
//! zero, [`InFlight::drain`] the same within a grace period.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use tokio::sync::Notify;

use crate::wire::json_answers::is_sse;

/// The count of requests in flight, and a wake-up for when it reaches zero.
#[derive(Default)]
pub(super) struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

/// One request in flight: decrements the count when it drops, however the request ends.
pub(super) struct Held(Arc<InFlight>);

impl Drop for Held {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl InFlight {
    /// Counts one more request until the returned [`Held`] drops.
    pub(super) fn enter(self: &Arc<InFlight>) -> Held {
        self.count.fetch_add(1, Ordering::AcqRel);
        Held(self.clone())
    }

    /// How many requests are in flight now.
    pub(super) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Resolves once no request is in flight (at once if none is).
    pub(super) async fn idle(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            // Registered before the check, so a wake-up between the two is not lost.
            idle.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            idle.await;
        }
    }

    /// Waits until no request is in flight, or the grace period ends.
    pub(super) async fn drain(&self, grace: Duration) {
        let drained = tokio::time::timeout(grace, self.idle()).await;
        if drained.is_err() {
            tracing::warn!(
                requests = self.count.load(Ordering::Acquire),
                "grace period over with requests still in flight"
            );
        }
    }
}

/// A stream holds its request in flight until it ends; any other answer is complete, and the
/// request stops counting here.
pub(super) fn hold(response: Response, held: Option<Held>) -> Response {
    match held.filter(|_| is_sse(response.headers())) {
        Some(held) => response.map(|body| {
            Body::from_stream(futures::StreamExt::map(
                body.into_data_stream(),
                move |chunk| {
                    let _held = &held;
                    chunk
                },
            ))
        }),
        None => response,
    }
}
