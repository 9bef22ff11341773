//! A transport wrapper that sees each message from a server in the order it arrived. rmcp hands
//! every notification to its own task, so two progress notifications — or the last one and the
//! answer — can overtake each other on the way to the client. Progress and log messages are
//! routed here instead, from the single receive loop, before rmcp sees the message (and before
//! the answer it precedes; log messages do not reach rmcp at all).
//! This steps around rmcp (see `wire`): if rmcp delivered a server's notifications in order, the
//! progress routing could move back into the handler.
//!
//! It also bounds a server's notifications: a token bucket (a burst of `rate`, refilled at `rate`
//! per second) lets normal traffic through and drops a flood here, before rmcp gives each message
//! a task of its own and before anything is queued for clients. Drops are counted and logged.
//!
//! And it keeps a slow server's handshake whole. With `protocol: auto`, rmcp probes with
//! `server/discover` and, when no answer comes within its fixed 10 s, sends `initialize` on the
//! same transport — but the probe's late answer then arrives first, and rmcp takes it for the
//! answer to `initialize` and fails the handshake ("conflict initialized response id"). A server
//! that always needs more than 10 s to start (a big runtime, `npx` fetching a package) would
//! never connect. The answer to a probe rmcp gave up on is dropped here ([`Probe`]); drop this
//! when rmcp ignores it itself.

use std::sync::Arc;

use tokio::time::{Duration, Instant};

use rmcp::RoleClient;
use rmcp::model::{ClientRequest, JsonRpcMessage, RequestId, ServerNotification};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;

use super::Events;

pub(super) struct Observed<T> {
    inner: T,
    server: Arc<str>,
    events: Arc<dyn Events>,
    bucket: Bucket,
    probe: Probe,
}

/// The handshake's `server/discover` probe while it is unanswered, and the one rmcp gave up on
/// (it sent `initialize` instead), whose answer must not reach it.
#[derive(Default)]
struct Probe {
    unanswered: Option<RequestId>,
    abandoned: Option<RequestId>,
}

impl Probe {
    fn sent(&mut self, message: &TxJsonRpcMessage<RoleClient>) {
        let JsonRpcMessage::Request(request) = message else {
            return;
        };
        match &request.request {
            ClientRequest::DiscoverRequest(_) => self.unanswered = Some(request.id.clone()),
            ClientRequest::InitializeRequest(_) => self.abandoned = self.unanswered.take(),
            _ => {}
        }
    }

    /// Whether `message` is the late answer to an abandoned probe.
    fn is_late_answer(&mut self, message: &RxJsonRpcMessage<RoleClient>) -> bool {
        let id = match message {
            JsonRpcMessage::Response(response) => &response.id,
            JsonRpcMessage::Error(error) => match &error.id {
                Some(id) => id,
                None => return false,
            },
            _ => return false,
        };
        if self.unanswered.as_ref() == Some(id) {
            self.unanswered = None;
        }
        if self.abandoned.as_ref() == Some(id) {
            self.abandoned = None;
            return true;
        }
        false
    }
}

impl<T> Observed<T> {
    /// `rate`: notifications per second (and burst) let through.
    pub(super) fn new(
        inner: T,
        server: Arc<str>,
        events: Arc<dyn Events>,
        rate: u32,
    ) -> Observed<T> {
        Observed {
            inner,
            server,
            events,
            bucket: Bucket::new(rate),
            probe: Probe::default(),
        }
    }
}

/// How often a flood's drop count is logged, at most.
const DROP_LOG_EVERY: Duration = Duration::from_secs(5);

/// A token bucket for one server's notifications.
struct Bucket {
    rate: f64,
    tokens: f64,
    refilled: Instant,
    dropped: u64,
    logged_dropped: u64,
    logged_at: Option<Instant>,
}

impl Bucket {
    fn new(rate: u32) -> Bucket {
        let rate = f64::from(rate.max(1));
        Bucket {
            rate,
            tokens: rate,
            refilled: Instant::now(),
            dropped: 0,
            logged_dropped: 0,
            logged_at: None,
        }
    }

    /// Whether one more notification may pass now.
    fn admit(&mut self, server: &str) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return true;
        }
        self.dropped += 1;
        if self
            .logged_at
            .is_none_or(|at| now.duration_since(at) >= DROP_LOG_EVERY)
        {
            tracing::warn!(
                server = %server,
                dropped = self.dropped - self.logged_dropped,
                dropped_total = self.dropped,
                limit_per_second = self.rate,
                "server floods notifications; dropping them (security.notificationsPerSecond)"
            );
            self.logged_dropped = self.dropped;
            self.logged_at = Some(now);
        }
        false
    }
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for Observed<T> {
    type Error = T::Error;

    /// The name rmcp puts in its transport errors, which reach `servers`, `/health` and clients:
    /// the inner transport's own name, never a Rust type path (rmcp's default).
    fn name() -> std::borrow::Cow<'static, str> {
        let inner = T::name();
        if inner.contains("::") {
            "streamable-http".into()
        } else {
            inner
        }
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.probe.sent(&item);
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        loop {
            let message = self.inner.receive().await?;
            if (self.probe.unanswered.is_some() || self.probe.abandoned.is_some())
                && self.probe.is_late_answer(&message)
            {
                tracing::debug!(
                    "dropped the late answer to a server/discover probe rmcp gave up on"
                );
                continue;
            }
            if let JsonRpcMessage::Notification(notification) = &message {
                if !self.bucket.admit(&self.server) {
                    continue;
                }
                match &notification.notification {
                    ServerNotification::ProgressNotification(progress) => {
                        self.events.progress(&self.server, progress.params.clone());
                    }
                    ServerNotification::LoggingMessageNotification(log) => {
                        self.events.log(&self.server, log.params.clone());
                        continue;
                    }
                    _ => {}
                }
            }
            return Some(message);
        }
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
