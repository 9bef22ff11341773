//! `/metrics`: the process's metrics ([`crate::metrics`]) with what the router keeps read when
//! scraped (each server's state, restarts and tools, parked calls, activity the queue dropped,
//! whether the App answers); the HTTP endpoint adds its sessions, connections and rate-limit
//! refusals (`http`). In stdio mode `--metrics-port` serves the page on loopback
//! ([`serve_loopback`]).

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use crate::downstream::ServerState;
use crate::metrics::{self, Exposition};
use crate::router::Router;

/// The page, in the format the scraper's `Accept` asks for; `elsewhere` adds the caller's own
/// numbers after the router's.
pub(crate) fn page(
    router: &Router,
    headers: &HeaderMap,
    elsewhere: impl FnOnce(&mut Exposition),
) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(metrics::wants_openmetrics);
    let text = metrics::global().render(openmetrics, |out| {
        router_gauges(router, out);
        elsewhere(out);
    });
    let content_type = if openmetrics {
        metrics::OPENMETRICS_FORMAT
    } else {
        metrics::TEXT_FORMAT
    };
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A server's state as a label value.
fn state_label(state: &ServerState) -> &'static str {
    match state {
        ServerState::Disabled => "disabled",
        ServerState::Starting => "starting",
        ServerState::Connected => "connected",
        ServerState::Failed { .. } => "failed",
        ServerState::Stopped => "stopped",
        ServerState::Refused { .. } => "refused",
    }
}

const STATES: [&str; 6] = [
    "disabled",
    "starting",
    "connected",
    "failed",
    "stopped",
    "refused",
];

/// What the router keeps, as gauges and counters.
fn router_gauges(router: &Router, out: &mut Exposition) {
    let servers = router.servers();
    let catalog = router.catalog();
    let served = catalog.tools_per_server();
    let states: Vec<(&str, &'static str)> = servers
        .iter()
        .map(|server| (server.name.as_str(), state_label(&server.state())))
        .collect();
    out.gauges(
        "pluggedin_proxy_server_state",
        "Each downstream server's state: 1 for the state it is in, 0 for the others.",
        states.iter().flat_map(|(server, current)| {
            STATES.iter().map(move |state| {
                let value = if state == current { 1.0 } else { 0.0 };
                (vec![("server", *server), ("state", *state)], value)
            })
        }),
    );
    out.counters(
        "pluggedin_proxy_server_restarts",
        "Times a downstream server's live connection ended and it was connected again \
         (counted since its configuration last changed).",
        servers
            .iter()
            .map(|server| (vec![("server", server.name.as_str())], server.restarts())),
    );
    out.gauges(
        "pluggedin_proxy_catalog_tools",
        "Tools each server contributes to the catalog clients see.",
        servers.iter().map(|server| {
            let tools = served.get(server.name.as_str()).copied().unwrap_or(0);
            (vec![("server", server.name.as_str())], tools as f64)
        }),
    );
    out.gauges(
        "pluggedin_proxy_catalog_items",
        "The catalog's size by kind, built-in tools included.",
        [
            ("tools", catalog.tools.len()),
            ("prompts", catalog.prompts.len()),
            ("resources", catalog.resources.len()),
            ("resource_templates", catalog.templates.len()),
        ]
        .map(|(kind, count)| (vec![("kind", kind)], count as f64)),
    );
    out.gauges(
        "pluggedin_proxy_parked_calls",
        "Calls of modern clients parked while a legacy server waits for their input.",
        [(vec![], router.parked().len() as f64)],
    );
    out.counter(
        "pluggedin_proxy_activity_dropped",
        "Activity log entries dropped because the recorder's queue was full.",
        &[],
        router.activity_dropped(),
    );
    if crate::traces::enabled() {
        out.counter(
            "pluggedin_proxy_spans_dropped",
            "Spans dropped because the exporter's queue was full (the collector is slow or away).",
            &[],
            crate::traces::dropped(),
        );
    }
    if let Some(app) = router.app() {
        let status = app.status();
        out.gauges(
            "pluggedin_proxy_app_reachable",
            "App mode: 1 when the last answer of every list the App serves was good.",
            [(vec![], if status.reachable { 1.0 } else { 0.0 })],
        );
    }
}

/// Serves `/metrics` on `127.0.0.1:port` until `cancel` (stdio mode, `--metrics-port`). Any
/// other path is 404; only GET is answered.
pub async fn serve_loopback(
    port: u16,
    router: Arc<Router>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|error| anyhow::anyhow!("--metrics-port {port}: {error}"))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "metrics at http://{address}/metrics");
    let service = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move |headers: HeaderMap| {
                let router = router.clone();
                async move { page(&router, &headers, |_| {}) }
            }),
        )
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "only /metrics is here\n") });
    tokio::spawn(async move {
        let served = axum::serve(listener, service)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::warn!("the metrics endpoint stopped: {error}");
        }
    });
    Ok(())
}
