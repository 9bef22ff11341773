//! The drain: what a replica behind a load balancer does between the signal to stop and the
//! end of serving. [`Drain`] is the shared state — serving, draining, over — that the parts of
//! the HTTP server read: readiness answers 503 from the start of the drain, the guard refuses new
//! sessions, the accept loop ends when it is over. Who begins and ends it (the signals, the drain
//! period, nothing left in flight) is `lib::serve_http`'s and `serve`'s business; this file only
//! keeps the state and lets others wait for it.

use tokio::sync::watch;

/// Where a replica is in its drain; it only moves forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Serving,
    Draining,
    Over,
}

/// The drain's state, shared: cheap to clone, every clone the same drain.
#[derive(Clone, Debug)]
pub struct Drain(watch::Sender<Phase>);

impl Default for Drain {
    fn default() -> Drain {
        Drain::new()
    }
}

impl Drain {
    /// A drain not begun: the replica serves.
    pub fn new() -> Drain {
        Drain(watch::Sender::new(Phase::Serving))
    }

    /// Begins the drain; `false` when it had begun already.
    pub fn begin(&self) -> bool {
        self.0.send_if_modified(|phase| {
            let serving = *phase == Phase::Serving;
            if serving {
                *phase = Phase::Draining;
            }
            serving
        })
    }

    /// Ends the drain (beginning it first if need be): serving stops.
    pub fn end(&self) {
        self.0.send_if_modified(|phase| {
            let was_over = *phase == Phase::Over;
            *phase = Phase::Over;
            !was_over
        });
    }

    /// Whether the drain has begun (and perhaps ended): the replica takes no new sessions and is
    /// not ready.
    pub fn is_draining(&self) -> bool {
        *self.0.borrow() >= Phase::Draining
    }

    /// Whether the drain is over: serving stops.
    pub fn is_over(&self) -> bool {
        *self.0.borrow() == Phase::Over
    }

    /// Resolves once the drain has begun (at once if it has).
    pub async fn begun(&self) {
        self.reached(Phase::Draining).await;
    }

    /// Resolves once the drain is over (at once if it is).
    pub async fn over(&self) {
        self.reached(Phase::Over).await;
    }

    async fn reached(&self, phase: Phase) {
        let mut phases = self.0.subscribe();
        // The sender lives in `self`, so the channel stays open while this waits.
        let _ = phases.wait_for(|now| *now >= phase).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_drain_moves_forward_only_and_wakes_whoever_waits() {
        let drain = Drain::new();
        assert!(!drain.is_draining() && !drain.is_over());
        let waiter = tokio::spawn({
            let drain = drain.clone();
            async move {
                drain.begun().await;
                drain.over().await;
            }
        });
        assert!(drain.begin());
        assert!(!drain.begin(), "begun once");
        assert!(drain.is_draining() && !drain.is_over());
        drain.end();
        assert!(drain.is_over() && drain.is_draining());
        assert!(!drain.begin(), "an ended drain does not begin again");
        waiter.await.unwrap();
        // Waiting for what already happened returns at once.
        drain.begun().await;
        drain.over().await;
    }

    #[tokio::test]
    async fn ending_a_drain_never_begun_ends_it() {
        let drain = Drain::new();
        drain.end();
        assert!(drain.is_draining() && drain.is_over());
    }
}
