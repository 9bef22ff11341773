//! Serving clients over MCP Streamable HTTP: `POST/GET/DELETE /mcp` (and `POST /`, as the
//! original accepts), `GET /health`, `GET /health/ready` (`ready.rs`), `GET
//! /.well-known/mcp-config` (`well_known.rs`), the console's JSON API (`api.rs`: registry search,
//! show and add, import). rmcp's `StreamableHttpService` does the protocol; around it sits our
//! guard (`guard/`, a file per layer: method, Host and Origin, protocol version, body limit, JSON
//! parse, new sessions while draining, bearer auth with session binding, rate limits, JSON-only
//! clients), the rate limiter (`limits.rs`) and the sessions with their two pools (`sessions/`).
//! The accept loop is ours so that slow and idle clients time out, connections have a ceiling,
//! failed accepts back off (`connections.rs`), and shutdown drains: [`Drain`] (`drain.rs`) is the
//! drain's shared state, [`serve`] follows it.

mod api;
mod api_v1;
mod calls;
mod channel;
mod connections;
mod console;
mod drain;
mod fleet;
mod guard;
mod limits;
mod playground;
mod ready;
pub(crate) mod sessions;
mod uploads;
mod well_known;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router as AxumRouter;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{any_service, get};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cli::Cors;
use crate::control::{ControlPlane, RateLimited};
use crate::router::{FleetOwner, Router};
use crate::secret::Secret;
use crate::upstream::{ProxyHandler, scrape};
pub use api::ApiFiles;
pub use channel::{find_channel, relay, serve_channel, serve_standalone};
use connections::Connections;
pub use drain::Drain;
use fleet::{Fleet, Joined, Joining};
pub use guard::GuardConfig;
use guard::{Guard, HealthView, Hosts};
use ready::Readiness;
use sessions::{BoundedSessions, Membership};

/// A client must send its request headers within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// After the drain, requests still in flight get this long for their answers: the servers they
/// wait on are stopped, so each gets an error unless the server's own ending takes longer (a
/// stdio server gets 3 s to exit after its stdin closes, then 3 s after SIGTERM).
const ANSWER_GRACE: Duration = Duration::from_secs(10);
/// SSE streams carry a keep-alive comment this often, so idle proxies don't cut them.
pub(crate) const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);
/// A request's SSE stream tells the client to resume it after this long, should it be cut.
pub(crate) const SSE_RETRY: Duration = Duration::from_secs(3);

/// Everything the HTTP server is configured with.
pub struct HttpOptions {
    pub host: String,
    pub port: u16,
    pub stateless: bool,
    pub max_sessions: usize,
    /// With auth required: sessions made without a token, in a pool of their own.
    pub max_anonymous_sessions: usize,
    /// Open connections at most; `None`: half the open-file limit (see `connections`).
    pub max_connections: Option<usize>,
    pub session_ttl: Duration,
    /// An idle session gives up its worker after this long (`None`: never); see `sessions`.
    pub hibernate_after: Option<Duration>,
    pub allowed_hosts: Vec<String>,
    pub cors: Cors,
    pub guard: GuardConfig,
    /// The files the JSON API (`/api/…`) works on; without them it is not served.
    pub api: Option<ApiFiles>,
    /// `--session-key`: seals session ids across a fleet (a PostgreSQL store).
    pub session_key: Option<Secret>,
    /// `--replica-url`: where the other replicas reach this one.
    pub replica_url: Option<String>,
    /// The drain this server follows: whoever stops the process begins it (and may end it).
    pub drain: Drain,
    /// The longest a drain lasts (`--drain-secs`); it ends sooner once nothing is in flight.
    pub drain_period: Duration,
}

#[derive(Clone)]
struct AppState {
    router: Arc<Router>,
    sessions: Option<Arc<BoundedSessions>>,
    guard: Arc<Guard>,
    connections: Arc<Connections>,
    readiness: Arc<Readiness>,
    max_sessions: usize,
    max_anonymous_sessions: usize,
}

/// The HTTP application without a listener: the routes, the guard in front of rmcp's service,
/// `/health`. [`serve`] runs it on a socket; the fuzz target drives it request by request.
pub struct App {
    pub service: AxumRouter,
    guard: Arc<Guard>,
    connections: Arc<Connections>,
    /// Ends rmcp's sessions and streams (after requests in flight drained).
    mcp_cancel: CancellationToken,
    /// This replica's fleet, when the store is shared.
    fleet: Option<Arc<Fleet>>,
}

impl App {
    /// Builds the application; `loopback` says whether it is served on a loopback address
    /// (the default `Host` allow-list).
    pub fn new(router: Arc<Router>, options: HttpOptions, loopback: bool) -> App {
        App::build(router, options, loopback, None)
    }

    /// [`App::new`], as a replica of a fleet when `joined`.
    fn build(
        router: Arc<Router>,
        options: HttpOptions,
        loopback: bool,
        joined: Option<(Arc<Membership>, Joined)>,
    ) -> App {
        // Not a child of the shutdown token: sessions and streams end only after requests in
        // flight drained.
        let mcp_cancel = CancellationToken::new();
        let mut config = StreamableHttpServerConfig::default()
            .with_sse_keep_alive(Some(SSE_KEEP_ALIVE))
            .with_sse_retry(Some(SSE_RETRY))
            .with_json_response(options.stateless)
            .with_legacy_session_mode(!options.stateless)
            .with_cancellation_token(mcp_cancel.clone());
        // Host and Origin are checked by our guard, for `/health` too, with a JSON-RPC body and
        // without a log line per refusal (rmcp warns at each).
        config = config.disable_allowed_hosts();
        let hosts = if !options.allowed_hosts.is_empty() {
            Hosts::new(&options.allowed_hosts)
        } else if loopback {
            Hosts::new(["localhost", "127.0.0.1", "::1"])
        } else {
            // Bound to a public address on purpose: any Host, unless --allowed-host narrows it.
            Hosts::new(Vec::<String>::new())
        };
        config.max_request_body_bytes = options.guard.max_body_bytes;

        let sessions = (!options.stateless).then(|| {
            let hibernation = options.hibernate_after.map(|after| sessions::Hibernation {
                after,
                router: router.clone(),
            });
            let mut sessions = BoundedSessions::new(
                options.max_sessions,
                options.max_anonymous_sessions,
                options.session_ttl,
                hibernation,
            );
            if let Some((membership, _)) = &joined {
                sessions = sessions.with_fleet(membership.clone());
                // A modern client's retry finds its parked call by the replica its state names.
                router.parked().set_replica(membership.me);
            }
            let sessions = Arc::new(sessions);
            BoundedSessions::start(&sessions);
            sessions
        });
        let servers_key = joined
            .as_ref()
            .map(|(_, joined)| joined.servers_key.clone());
        let fleet = match (joined, &sessions) {
            (Some((membership, joined)), Some(sessions)) => {
                Some(Arc::new(joined.fleet(membership, sessions.clone())))
            }
            _ => None,
        };
        if let Some(sessions) = &sessions {
            // rmcp's restore path wakes hibernated sessions (see `sessions`).
            config.session_store = Some(sessions.clone());
        }
        let factory_router = router.clone();
        let factory_sessions = sessions.clone();
        let factory = move || {
            Ok(ProxyHandler::new(factory_router.clone())
                .with_http_sessions(factory_sessions.clone()))
        };
        let mcp = match &sessions {
            Some(sessions) => {
                any_service(StreamableHttpService::new(factory, sessions.clone(), config))
            }
            None => any_service(StreamableHttpService::new(
                factory,
                Arc::new(rmcp::transport::streamable_http_server::session::never::NeverSessionManager::default()),
                config,
            )),
        };

        let api_hosts = if !options.allowed_hosts.is_empty() {
            Some(options.allowed_hosts.clone())
        } else if loopback {
            Some(
                ["localhost", "127.0.0.1", "::1", "[::1]"]
                    .map(str::to_owned)
                    .to_vec(),
            )
        } else {
            None
        };
        let require_auth = options.guard.require_auth;
        let mut guard = Guard::new(options.guard, options.cors, hosts, sessions.clone())
            .with_fast_calls(router.clone())
            .with_drain(options.drain.clone());
        if let Some(fleet) = &fleet {
            guard = guard.with_fleet(fleet.clone());
        }
        let guard = Arc::new(guard);
        let connections = Connections::new(
            options
                .max_connections
                .unwrap_or_else(connections::default_max_connections),
        );
        let state = AppState {
            router: router.clone(),
            sessions: sessions.clone(),
            guard: guard.clone(),
            connections: connections.clone(),
            readiness: Arc::new(Readiness::new(router.clone(), options.drain.clone())),
            max_sessions: if options.stateless {
                0
            } else {
                options.max_sessions
            },
            max_anonymous_sessions: if options.stateless || !require_auth {
                0
            } else {
                options.max_anonymous_sessions
            },
        };
        // A browser's GET of `/` goes to the console (when it is served); `/mcp` never pays for
        // the look.
        let root = if options.api.is_some() {
            mcp.clone()
                .layer(axum::middleware::from_fn(console::browsers_to_console))
        } else {
            mcp.clone()
        };
        let service = AxumRouter::new()
            .route("/mcp", mcp)
            .route("/", root)
            .layer(axum::middleware::from_fn_with_state(
                guard.clone(),
                guard::check,
            ))
            .route("/health", get(health).fallback(get_only))
            .route("/health/ready", get(ready).fallback(get_only))
            .route("/metrics", get(metrics_page))
            .merge(well_known::routes())
            .merge(match options.api {
                Some(files) => api::routes(
                    files,
                    router.clone(),
                    guard.clone(),
                    api_hosts,
                    loopback || require_auth,
                    console::Attachment::Http,
                ),
                None => AxumRouter::new(),
            })
            .merge(match servers_key {
                Some(key) => fleet_servers(router.clone(), key, mcp_cancel.clone()),
                None => AxumRouter::new(),
            })
            .fallback(no_such_path)
            .with_state(state)
            .layer(axum::middleware::from_fn_with_state(
                guard.clone(),
                guard::cors,
            ));
        App {
            service,
            guard,
            connections,
            mcp_cancel,
            fleet,
        }
    }
}

/// The route through which the other replicas reach the servers of fleet scope this one runs
/// (`fleet::servers`): sessions of rmcp's own in this process, made only by replicas holding
/// the fleet's key, so neither the guard (the clients' rules) nor the fleet's shared sessions
/// are in the way.
fn fleet_servers(
    router: Arc<Router>,
    key: Arc<fleet::servers::ServersKey>,
    cancel: CancellationToken,
) -> AxumRouter<AppState> {
    let config = StreamableHttpServerConfig::default()
        .with_sse_keep_alive(Some(SSE_KEEP_ALIVE))
        .with_sse_retry(Some(SSE_RETRY))
        .with_legacy_session_mode(true)
        .with_cancellation_token(cancel)
        .disable_allowed_hosts();
    let factory = move || Ok(fleet::servers::ServerView::new(router.clone()));
    let service = StreamableHttpService::new(
        factory,
        Arc::new(
            rmcp::transport::streamable_http_server::session::local::LocalSessionManager::default(),
        ),
        config,
    );
    let route = format!("{}/{{name}}/mcp", crate::router::FLEET_SERVERS_ROUTE);
    AxumRouter::new().route(
        &route,
        any_service(service).layer(axum::middleware::from_fn_with_state(
            key,
            fleet::servers::check,
        )),
    )
}

/// Registers this replica in the fleet of the shared store it runs on.
async fn join_fleet(
    store: Arc<dyn crate::control::fleet::FleetStore>,
    options: &HttpOptions,
    local: SocketAddr,
) -> anyhow::Result<(Arc<Membership>, Joined)> {
    let url = match &options.replica_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None if local.ip().is_unspecified() => anyhow::bail!(
            "listening on {local} with a shared store (--database-url): set --replica-url \
             (PLUGGEDIN_REPLICA_URL) to the address the other replicas reach this one at"
        ),
        None => format!("http://{local}"),
    };
    let joining = Joining {
        store,
        session_key: options
            .session_key
            .as_ref()
            .map(|key| key.expose().to_owned()),
        url,
        session_ttl: options.session_ttl,
    };
    joining
        .join()
        .await
        .map_err(|error| anyhow::anyhow!("cannot join the fleet on the shared store: {error}"))
}

/// Binds and serves until the drain of `options.drain` is over (see `follow_drain`), then
/// closes: requests still in flight get their answers (errors, their servers stopped), streams
/// and sessions end, connections close.
pub async fn serve(router: Arc<Router>, options: HttpOptions) -> anyhow::Result<()> {
    let address = format!("{}:{}", options.host, options.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .map_err(|error| anyhow::anyhow!("cannot listen on {address}: {error}"))?;
    let local = listener.local_addr()?;
    let host = options.host.clone();
    let stateless = options.stateless;
    let drain = options.drain.clone();
    let drain_period = options.drain_period;
    let control = router.control_plane().clone();
    let joined = match control.fleet().filter(|_| !stateless) {
        Some(store) => {
            let joined = join_fleet(store.clone(), &options, local).await?;
            router.join_fleet(joined.0.me, store, joined.1.credential());
            Some(joined)
        }
        None => None,
    };
    let App {
        service: app,
        guard,
        connections,
        mcp_cancel,
        fleet,
    } = App::build(router.clone(), options, local.ip().is_loopback(), joined);
    let heartbeat_stop = CancellationToken::new();
    let heartbeat = fleet
        .as_ref()
        .map(|fleet| Fleet::start(fleet, heartbeat_stop.clone(), drain.clone()));
    // A fleet's rate limits are shared through the store (`limits.rs`).
    let sharing = match (control.fleet(), &fleet) {
        (Some(store), Some(fleet)) if guard.limits.any() => {
            let guard = guard.clone();
            let stop = heartbeat_stop.clone();
            let fleet = fleet.clone();
            Some(tokio::spawn(async move {
                let replicas = move || fleet.replicas();
                limits::share_with_fleet(&guard.limits, store, replicas, stop).await;
            }))
        }
        _ => None,
    };

    startup_line(local, &host, stateless, &guard);
    let summaries_stop = CancellationToken::new();
    let summaries = tokio::spawn(summarise_refusals(
        guard.clone(),
        control.clone(),
        summaries_stop.clone(),
    ));
    let drained = tokio::spawn(follow_drain(drain.clone(), drain_period, guard.clone()));

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    // The header timeout also bounds an idle keep-alive connection: hyper starts it whenever it
    // waits for a request head.
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(guard::MAX_HEADER_BYTES.max(8192));
    let mut accepts = connections::AcceptLog::new(connections.clone());
    // Connections are accepted while the drain lasts: existing sessions' requests come on new
    // connections too.
    let over = drain.over();
    tokio::pin!(over);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut over => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, accepting again fails again at once: pause.
                    let pause = accepts.failed(&error);
                    tokio::select! {
                        () = &mut over => break,
                        () = tokio::time::sleep(pause) => {}
                    }
                    continue;
                }
            },
        };
        accepts.accepted();
        let Some(slot) = connections.open() else {
            // Over the ceiling: a fixed answer, written without waiting, and the socket closed.
            accepts.refused();
            let _ = stream.try_write(&connections.refusal());
            drop(stream);
            continue;
        };
        accepts.admitted();
        // Without TCP_NODELAY, an SSE answer (headers, then the event as a second small write)
        // waits for the client's delayed ACK: about 40 ms per call on Linux.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(client = %peer, "cannot set TCP_NODELAY: {error}");
        }
        let service = tower::ServiceExt::map_request(
            app.clone(),
            move |request: hyper::Request<hyper::body::Incoming>| {
                let mut request = request.map(axum::body::Body::new);
                request.extensions_mut().insert(guard::ClientAddr(peer));
                request
            },
        );
        let connection = http.serve_connection(
            TokioIo::new(connections::Refusals::new(stream)),
            TowerToHyperService::new(service),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(error) = connection.await {
                tracing::trace!(client = %peer, "connection ended: {error}");
            }
        });
    }

    // Stop accepting (done); then what the drain left in flight gets an answer, never silence:
    // its servers are stopped, so each request waiting on one ends with an error saying so.
    drop(listener);
    let _ = drained.await;
    if guard.in_flight() > 0 {
        router.stop_servers();
        guard.drain(ANSWER_GRACE).await;
    }
    // Out of the fleet once nothing is in flight: its sessions are the others' to adopt.
    heartbeat_stop.cancel();
    if let Some(heartbeat) = heartbeat {
        let _ = heartbeat.await;
    }
    if let Some(sharing) = sharing {
        let _ = sharing.await;
    }
    // The last period's refusals reach the log and the store before the process ends.
    summaries_stop.cancel();
    if summaries.await.is_ok() {
        record_refusals(&guard, control.as_ref()).await;
    }
    mcp_cancel.cancel();
    if tokio::time::timeout(Duration::from_secs(2), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("some connections were still open at exit");
    }
    Ok(())
}

/// Follows the drain once it has begun: ends it as soon as no request is in flight, or when the
/// drain period is over (a second signal ends it sooner), and says so with how many requests
/// were still in flight. Readiness and the guard read the drain's state themselves.
async fn follow_drain(drain: Drain, period: Duration, guard: Arc<Guard>) {
    drain.begun().await;
    let began = tokio::time::Instant::now();
    let why = tokio::select! {
        () = guard.idle() => "nothing left in flight",
        () = tokio::time::sleep(period) => "the drain period is over",
        () = drain.over() => "cut short",
    };
    drain.end();
    tracing::info!(
        in_flight = guard.in_flight(),
        elapsed_ms = began.elapsed().as_millis() as u64,
        "drain over ({why}); shutting down"
    );
}

/// Every rate-limit window (a minute), until shutdown: logs and records what the rate limit
/// refused in it, if anything.
async fn summarise_refusals(
    guard: Arc<Guard>,
    control: Arc<dyn ControlPlane>,
    shutdown: CancellationToken,
) {
    let mut ticks =
        tokio::time::interval_at(tokio::time::Instant::now() + limits::WINDOW, limits::WINDOW);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => record_refusals(&guard, control.as_ref()).await,
        }
    }
}

/// Ends a rate-limit period: its summary goes to the log (by the limiter) and to the store, for
/// `stats`.
async fn record_refusals(guard: &Guard, control: &dyn ControlPlane) {
    let refused = guard.limits.summarise();
    if refused.tool_calls + refused.requests == 0 {
        return;
    }
    let entry = RateLimited {
        at: crate::control::time::now_ms(),
        tool_calls: refused.tool_calls,
        requests: refused.requests,
    };
    if let Err(error) = control.record_rate_limited(entry).await {
        tracing::warn!("rate-limit refusals not recorded: {error}");
    }
}

#[allow(
    clippy::print_stderr,
    reason = "the one start-up line the user asked for, whatever the log level, and its warning"
)]
fn startup_line(local: SocketAddr, host: &str, stateless: bool, guard: &Guard) {
    let mode = if stateless {
        "stateless"
    } else {
        "stateful sessions"
    };
    let shown_host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let url = format!("http://{shown_host}:{}/mcp", local.port());
    if crate::telemetry::json() {
        if !local.ip().is_loopback() && !guard.requires_auth() {
            tracing::warn!(
                host = %shown_host,
                "listening beyond loopback without --require-api-auth: anyone who can reach the \
                 port can call every tool, write tools included, and read the documents and \
                 memory; the console and its API (/console/, /api/) stay off"
            );
        }
        let auth = guard.auth_summary();
        tracing::info!(
            %url,
            mode,
            %auth,
            "pluggedin-mcp-proxy listening on {url} ({mode}, {auth})"
        );
        return;
    }
    let mut text = String::new();
    if !local.ip().is_loopback() && !guard.requires_auth() {
        text.push_str(&format!(
            "warning: listening beyond loopback ({shown_host}) without --require-api-auth: anyone \
             who can reach port {} can call every tool, write tools included, and read the \
             documents and memory; the console and its API (/console/, /api/) stay off\n",
            local.port()
        ));
    }
    text.push_str(&format!(
        "pluggedin-mcp-proxy listening on {url} ({mode}, {})\n",
        guard.auth_summary()
    ));
    // One write, the warning first: it is never separated from the line it qualifies, and
    // whoever waits for the listening line has seen it.
    eprint!("{text}");
}

/// Every refusal has a JSON-RPC body, a path we do not serve too.
async fn no_such_path(uri: axum::http::Uri) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600,
        "message": format!("no such path: {}; the MCP endpoint is /mcp", uri.path())}});
    (axum::http::StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

/// `/health` and `/health/ready` answer GET (and HEAD) only.
async fn get_only(uri: axum::http::Uri) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600,
        "message": format!("{} answers GET only", uri.path())}});
    let mut response =
        (axum::http::StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response();
    response.headers_mut().insert(
        axum::http::header::ALLOW,
        axum::http::HeaderValue::from_static("GET"),
    );
    response
}

/// `GET /metrics`: the process's metrics with this endpoint's sessions, connections and
/// rate-limit refusals.
async fn metrics_page(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Err(refused) = state.guard.metrics_access(&headers) {
        return *refused;
    }
    let counts = match &state.sessions {
        Some(sessions) => sessions.counts().await,
        None => sessions::SessionCounts::default(),
    };
    let connections = state.connections.counts();
    let refused = state.guard.limits.refused_total();
    scrape::page(&state.router, &headers, |out| {
        let live = counts.sessions.saturating_sub(counts.hibernated);
        out.gauges(
            "pluggedin_proxy_sessions",
            "Client sessions kept, live (a worker of their own) or hibernated.",
            [("live", live), ("hibernated", counts.hibernated)]
                .map(|(state, count)| (vec![("state", state)], count as f64)),
        );
        out.gauges(
            "pluggedin_proxy_connections_open",
            "HTTP connections open.",
            [(vec![], connections.open as f64)],
        );
        out.counter(
            "pluggedin_proxy_connections_refused",
            "HTTP connections refused at the ceiling (--max-connections).",
            &[],
            connections.refused,
        );
        out.counters(
            "pluggedin_proxy_rate_limited",
            "Requests refused by a rate limit, by limit.",
            [
                (vec![("limit", "tool_calls")], refused.tool_calls),
                (vec![("limit", "requests")], refused.requests),
            ],
        );
    })
}

/// `/health`'s `rateLimits`: the limits, this replica's refusals, and in a fleet (where the
/// budgets are the fleet's) how its shares of the counts went.
fn rate_limits_health(
    tool_calls: u32,
    requests: u32,
    refused: limits::Refused,
    shares: Option<limits::Shares>,
) -> serde_json::Value {
    let mut health = json!({
        "toolCallsPerMinute": tool_calls,
        "requestsPerMinute": requests,
        "scope": if shares.is_some() { "fleet" } else { "replica" },
        "refusedToolCalls": refused.tool_calls,
        "refusedRequests": refused.requests,
    });
    if let Some(shares) = shares {
        health["shares"] = json!(shares.done);
        health["failedShares"] = json!(shares.failed);
        health["replicas"] = json!(shares.replicas);
    }
    health
}

/// `GET /health/ready`: readiness for load balancers (`ready.rs`), under `/health`'s rules: the
/// same `Host` and `Origin` checks, never rate-limited, no session; the causes' details only for
/// a request that may see `/health`'s.
async fn ready(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    match state.guard.health_access(&headers) {
        Ok(view) => state.readiness.answer(view).await,
        Err(refused) => *refused,
    }
}

async fn health(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let view = match state.guard.health_access(&headers) {
        Ok(view) => view,
        Err(refused) => return *refused,
    };
    if view == HealthView::Minimal {
        // What the original's health checks read; nothing about servers or sessions.
        return axum::Json(json!({"status": "ok", "transport": "streamable-http"})).into_response();
    }
    let counts = match &state.sessions {
        Some(sessions) => sessions.counts().await,
        None => sessions::SessionCounts::default(),
    };
    let catalog = state.router.catalog();
    let served = catalog.tools_per_server();
    let servers: Vec<_> = state
        .router
        .servers()
        .iter()
        .map(|server| {
            let mut entry = json!({
                "name": server.name,
                "transport": server.config.transport.kind(),
                "state": server.state().to_string(),
                // What clients get from it, after the config's filter and the disabled tools.
                "tools": served.get(server.name.as_str()).copied().unwrap_or(0),
            });
            if server.config.scope == crate::config::Scope::Fleet {
                entry["scope"] = json!("fleet");
                // In a fleet, which replica runs it (null while the replicas settle it).
                entry["owner"] = match state.router.fleet_owner(&server.name) {
                    Some(FleetOwner::Here { replica }) => json!({"replica": replica, "here": true}),
                    Some(FleetOwner::There { replica, url }) => {
                        json!({"replica": replica, "url": url, "here": false})
                    }
                    None => Value::Null,
                };
            }
            entry
        })
        .collect();
    let (tool_calls, requests) = state.guard.limits.limits();
    let refused = state.guard.limits.refused_total();
    let shares = state.guard.limits.shares();
    let connections = state.connections.counts();
    axum::Json(json!({
        "status": "ok",
        "transport": "streamable-http",
        "sessions": counts.sessions,
        "hibernatedSessions": counts.hibernated,
        "maxSessions": state.max_sessions,
        "anonymousSessions": counts.anonymous,
        "maxAnonymousSessions": state.max_anonymous_sessions,
        "connections": {
            "open": connections.open,
            "max": connections.max,
            "refused": connections.refused,
            "failedAccepts": connections.failed_accepts,
        },
        // Everything kept per client-chosen key, each bounded (see SECURITY.md).
        "kept": {
            "sessions": counts.sessions,
            "sessionWorkers": counts.workers,
            "sessionOwners": counts.owned,
            "requestIds": counts.request_ids,
            "rateLimitWindows": state.guard.limits.windows(),
        },
        "rateLimits": rate_limits_health(tool_calls, requests, refused, shares),
        "servers": servers,
        "controlPlane": match state.router.app() {
            Some(app) => app.status().to_json(),
            None => json!({"mode": "local"}),
        },
    }))
    .into_response()
}
