//! `GET /health/ready`: whether a load balancer should send this replica clients, beside the
//! cheap liveness of `/health`. Ready (200) when the store answers, the servers' first
//! connection attempts are over, and the replica is not draining; otherwise 503, the body
//! naming every cause. A server that failed never holds readiness (it is named in the body): a
//! server broken on every replica would otherwise take the whole fleet out of rotation.
//!
//! The store is asked through [`ControlPlane::ping`] — a round trip for PostgreSQL, nothing for
//! SQLite, which is ready once open, and nothing in App mode (the App is every replica's, and
//! its outage is served from the last good copies) — at most once a second, whatever the polling
//! rate, and one probe at a time: a probe slower than the answer's bound goes on in the
//! background and its answer serves the next polls. The servers count at start only: once their
//! first attempts were over (or `--startup-wait` ran out for them), servers added later by a
//! config edit or the App do not take a serving replica out of rotation, since replicas sharing
//! a config would all leave together.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::drain::Drain;
use super::guard::HealthView;
use crate::control::ControlPlane;
use crate::downstream::ServerState;
use crate::router::Router;

/// How long an answer from the store serves later polls: a load balancer polling every 100 ms
/// costs the database one query a second.
const STORE_ANSWER_FRESH: Duration = Duration::from_secs(1);
/// How long a readiness answer waits for the store. Under the 1 s a Kubernetes probe waits by
/// default, so the probe reads our 503 and its reason rather than timing out; a database slower
/// than this to answer `SELECT 1` is not one to send clients to.
const STORE_ANSWER_WAIT: Duration = Duration::from_millis(750);

/// What `/health/ready` reads: the router (servers, store), the drain, and what it keeps.
pub(super) struct Readiness {
    router: Arc<Router>,
    drain: Drain,
    store: Arc<StoreCheck>,
    /// Set once the servers' first connection attempts were over: from then on servers do not
    /// count (see the module's comment).
    started: AtomicBool,
}

/// The store's last answer and the probe under way, shared by every poll.
struct StoreCheck {
    control: Arc<dyn ControlPlane>,
    state: std::sync::Mutex<Probe>,
}

#[derive(Default)]
struct Probe {
    /// The last answer and when it came.
    last: Option<(Instant, StoreAnswer)>,
    /// The probe under way, if one is: its answer, once it comes.
    running: Option<watch::Receiver<Option<StoreAnswer>>>,
}

/// The store's answer: `Err` with what failed, redacted and bounded for a client.
type StoreAnswer = Result<(), String>;

impl Readiness {
    pub(super) fn new(router: Arc<Router>, drain: Drain) -> Readiness {
        let control = router.control_plane().clone();
        Readiness {
            router,
            drain,
            store: Arc::new(StoreCheck {
                control,
                state: std::sync::Mutex::default(),
            }),
            started: AtomicBool::new(false),
        }
    }

    /// The answer to `GET /health/ready`: 200 or 503, and a body that names every cause, with
    /// what it concerns (the store's error, the servers' names) for a request that may see
    /// `/health`'s details.
    pub(super) async fn answer(&self, view: HealthView) -> Response {
        let details = view == HealthView::Details;
        let mut causes = Vec::new();
        if let Err(error) = self.store.answer().await {
            let mut cause = json!({"cause": "store-unreachable"});
            if details {
                cause["message"] = format!("the store does not answer: {error}").into();
            }
            causes.push(cause);
        }
        let starting = self.starting();
        if !starting.is_empty() {
            let mut cause = json!({"cause": "servers-starting"});
            if details {
                cause["message"] = format!(
                    "still in their first connection attempt: {}",
                    starting.join(", ")
                )
                .into();
                cause["servers"] = starting.into();
            }
            causes.push(cause);
        }
        if self.drain.is_draining() {
            let mut cause = json!({"cause": "draining"});
            if details {
                cause["message"] =
                    "shutting down: existing sessions are served, new ones refused".into();
            }
            causes.push(cause);
        }
        let ready = causes.is_empty();
        let mut body = json!({
            "status": if ready { "ready" } else { "not ready" },
            "causes": causes,
        });
        if details {
            body["serversDown"] = self.servers_down().into();
        }
        let status = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (status, axum::Json(body)).into_response()
    }

    /// The servers whose first connection attempt still holds readiness: none once every first
    /// attempt was over.
    fn starting(&self) -> Vec<String> {
        if self.started.load(Ordering::Acquire) {
            return Vec::new();
        }
        let starting: Vec<String> = self
            .router
            .first_attempts()
            .iter()
            .map(|server| server.name.clone())
            .collect();
        if starting.is_empty() {
            self.started.store(true, Ordering::Release);
        }
        starting
    }

    /// The servers that failed or were refused, each with its state: named, never holding
    /// readiness.
    fn servers_down(&self) -> Vec<Value> {
        self.router
            .servers()
            .iter()
            .filter_map(|server| {
                let state = server.state();
                matches!(
                    state,
                    ServerState::Failed { .. } | ServerState::Refused { .. }
                )
                .then(|| json!({"name": server.name, "state": state.to_string()}))
            })
            .collect()
    }
}

impl StoreCheck {
    /// The store's answer: the last one while it is fresh, else the probe's (one probe at a
    /// time), within [`STORE_ANSWER_WAIT`].
    async fn answer(self: &Arc<Self>) -> StoreAnswer {
        let mut answer = {
            let mut probe = crate::sync::lock(&self.state);
            if let Some((at, answer)) = &probe.last
                && at.elapsed() < STORE_ANSWER_FRESH
            {
                return answer.clone();
            }
            match &probe.running {
                Some(running) => running.clone(),
                None => {
                    let (sender, receiver) = watch::channel(None);
                    probe.running = Some(receiver.clone());
                    self.spawn_probe(sender);
                    receiver
                }
            }
        };
        match tokio::time::timeout(STORE_ANSWER_WAIT, answer.wait_for(Option::is_some)).await {
            Ok(Ok(answered)) => answered.clone().expect("waited for an answer"),
            Ok(Err(_)) => Err("the store's check ended without an answer".to_owned()),
            Err(_) => Err(format!(
                "no answer within {} ms",
                STORE_ANSWER_WAIT.as_millis()
            )),
        }
    }

    /// Asks the store on a task of its own, which outlives a poll that stops waiting: a slow
    /// connection is made once and its answer kept, rather than begun and dropped at each poll.
    /// The store bounds the call itself.
    fn spawn_probe(self: &Arc<Self>, sender: watch::Sender<Option<StoreAnswer>>) {
        let check = self.clone();
        tokio::spawn(async move {
            let answer = check
                .control
                .ping()
                .await
                .map_err(|error| crate::security::text::for_client(&error.to_string()));
            {
                let mut probe = crate::sync::lock(&check.state);
                probe.last = Some((Instant::now(), answer.clone()));
                probe.running = None;
            }
            sender.send_replace(Some(answer));
        });
    }
}
