//! The JSON API behind the console's "Add server" and "Import" pages: `GET
//! /api/registry/search`, `GET /api/registry/show`, `POST /api/registry/add`, `POST /api/import`;
//! and the live view under `/api/v1/` (`api_v1`).
//! The work is `registry`'s and `import`'s, as for the commands; a page only shows it. Requests
//! pass stricter rules than `/mcp`'s: the `Host` allow-list (DNS rebinding); an `Origin` that is
//! the proxy's own or one `--allowed-origin` names; JSON for a change (CSRF); a bearer token with
//! `--require-api-auth`; no CORS; and none at all beyond loopback without auth. Errors are
//! `{"error": "…"}` with a 4xx/5xx status; missing values for an add are 422 with
//! `{"error", "missing": [{kind, name, …}]}`, so a page can ask for them and send the add again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::Router as AxumRouter;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api_v1::error;
use super::guard::Guard;
use crate::import::{self, Client, ImportOptions, Platform};
use crate::registry::install::{self, AddError, AddRequest, Target};
use crate::registry::{Registry, RegistryError};

/// The files the API works on (the proxy's own).
#[derive(Debug, Clone)]
pub struct ApiFiles {
    /// The config file (where a new one goes when the proxy found none).
    pub config: PathBuf,
    pub data_dir: Option<PathBuf>,
    /// The config's `registryUrl`, else the official registry.
    pub registry_url: String,
    /// How clients start this proxy, for an import with `replace`.
    pub proxy: import::replace::ProxyEntry,
    /// App mode: the servers come from the App, and these endpoints say so.
    pub app_mode: bool,
}

#[derive(Clone)]
struct ApiState {
    files: Arc<ApiFiles>,
    /// The live proxy, for `/api/v1/` (`api_v1`).
    router: Arc<crate::router::Router>,
    guard: Arc<Guard>,
    /// Accepted `Host` values (`None`: any).
    hosts: Option<Arc<Vec<String>>>,
    /// Served at all: on loopback, or with auth required.
    open: bool,
    /// The tool calls streamed to pages and scripts (`calls`).
    calls: Arc<super::calls::Running>,
    /// Documents being uploaded in chunks (`uploads`).
    uploads: Arc<super::uploads::Uploads>,
    /// The providers and the chats running (`playground`).
    playground: Arc<super::playground::Playground>,
}

/// The routes, protected like `/mcp`.
pub(super) fn routes<S: Clone + Send + Sync + 'static>(
    files: ApiFiles,
    router: Arc<crate::router::Router>,
    guard: Arc<Guard>,
    hosts: Option<Vec<String>>,
    open: bool,
    attachment: super::console::Attachment,
) -> AxumRouter<S> {
    let state = ApiState {
        router,
        guard: guard.clone(),
        hosts: hosts.map(Arc::new),
        open,
        calls: Arc::new(super::calls::Running::new("call", super::calls::MAX_CALLS)),
        uploads: Arc::new(super::uploads::Uploads::new(guard.max_body_bytes())),
        playground: Arc::new(super::playground::Playground::new(
            files.data_dir.as_deref(),
        )),
        files: Arc::new(files),
    };
    let body_limit = axum::extract::DefaultBodyLimit::max(guard.max_body_bytes());
    AxumRouter::new()
        .route("/api/registry/search", get(search))
        .route("/api/registry/show", get(show))
        .route("/api/registry/add", post(add))
        .route("/api/import", post(import_servers))
        .route("/api/v1/config", get(config))
        .merge(super::api_v1::routes())
        .merge(super::playground::routes())
        .merge(super::console::route(attachment))
        .layer(body_limit)
        .layer(axum::middleware::from_fn_with_state(state.clone(), protect))
        .merge(
            super::console::routes()
                .route(
                    "/api/v1/session",
                    get(session).post(sign_in).delete(sign_out),
                )
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    protect_page,
                )),
        )
        .with_state(state)
}

/// Host, Origin (same-origin, `Guard::check_api`) and bearer token; off beyond loopback
/// without auth.
async fn protect(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    if let Err(refused) = open_to(&state, request.headers()) {
        return *refused;
    }
    if let Err((status, message)) = state.guard.check_api(request.method(), request.headers()) {
        return error(status, message);
    }
    if let Err((message, retry_after)) = state
        .guard
        .check_api_rate(
            request.method(),
            request.uri().path(),
            request.headers(),
            request.extensions(),
        )
        .await
    {
        let mut refused = error(StatusCode::TOO_MANY_REQUESTS, message);
        refused
            .headers_mut()
            .insert(header::RETRY_AFTER, retry_after.into());
        return refused;
    }
    // What the App owns is changed there; the live view works in both modes.
    if state.files.app_mode && !request.uri().path().starts_with("/api/v1/") {
        return error(
            StatusCode::CONFLICT,
            "App mode: the servers come from the plugged.in App; add and import them there",
        );
    }
    next.run(request).await
}

/// Whether the console must sign in (`--require-api-auth`), and whether this browser has.
async fn session(State(state): State<ApiState>, headers: axum::http::HeaderMap) -> Response {
    let required = state.guard.requires_auth();
    let signed_in = !required || state.guard.signed_in(&headers);
    Json(json!({ "required": required, "signedIn": signed_in })).into_response()
}

#[derive(Deserialize)]
struct SignIn {
    token: String,
}

/// Signs the console in with an API token: a session cookie (HttpOnly, SameSite=Strict,
/// expiring), never the token itself.
async fn sign_in(
    State(state): State<ApiState>,
    body: Result<Json<SignIn>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let body = match super::api_v1::json_body(body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    if !state.guard.requires_auth() {
        return Json(json!({ "signedIn": true, "required": false })).into_response();
    }
    match state.guard.sign_in(&body.token) {
        Ok(id) => {
            let cookie = format!(
                "{}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
                super::guard::SIGN_IN_COOKIE,
                super::guard::SIGN_IN_TTL.as_secs()
            );
            (
                [(header::SET_COOKIE, cookie)],
                Json(json!({ "signedIn": true, "required": true })),
            )
                .into_response()
        }
        Err(why) => error(StatusCode::UNAUTHORIZED, why),
    }
}

/// Ends the console's sign-in and clears its cookie.
async fn sign_out(State(state): State<ApiState>, headers: axum::http::HeaderMap) -> Response {
    state.guard.sign_out(&headers);
    let cookie = format!(
        "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        super::guard::SIGN_IN_COOKIE
    );
    (
        [(header::SET_COOKIE, cookie)],
        Json(json!({ "signedIn": false, "required": state.guard.requires_auth() })),
    )
        .into_response()
}

/// What every secret becomes in the effective configuration.
const MASK: &str = "••••";

/// The effective configuration, as the console shows it: the mode, the files, and each server
/// as the proxy runs it, with every value of `env` and `headers` masked and secrets in command
/// lines and URLs redacted.
async fn config(State(state): State<ApiState>) -> Response {
    use crate::config::TransportConfig;
    let masked = |keys: Vec<&String>| -> serde_json::Map<String, Value> {
        keys.into_iter()
            .map(|key| (key.clone(), Value::String(MASK.to_owned())))
            .collect()
    };
    let servers: Vec<Value> = state
        .router
        .servers()
        .iter()
        .map(|server| {
            let config = &server.config;
            let (env, headers, cwd) = match &config.transport {
                TransportConfig::Stdio { env, cwd, .. } => (
                    masked(env.keys().collect()),
                    Default::default(),
                    cwd.clone(),
                ),
                TransportConfig::Sse { headers, .. }
                | TransportConfig::StreamableHttp { headers, .. } => {
                    (Default::default(), masked(headers.keys().collect()), None)
                }
                TransportConfig::StartedHttp(started) => (
                    masked(started.env.keys().collect()),
                    masked(started.headers.keys().collect()),
                    started.cwd.clone(),
                ),
            };
            json!({
                "name": server.name,
                "transport": config.transport.kind(),
                "target": crate::security::text::redact_bounded(&config.transport.target(), 2000),
                "env": env,
                "headers": headers,
                "cwd": cwd,
                "disabled": config.disabled,
                "timeoutMs": config.timeout.as_millis() as u64,
                "protocol": format!("{:?}", config.protocol).to_lowercase(),
                "tools": {"allow": config.tools.allow, "deny": config.tools.deny},
            })
        })
        .collect();
    Json(json!({
        "mode": if state.files.app_mode { "app" } else { "local" },
        "configFile": state.files.config,
        "dataDir": state.files.data_dir,
        "registryUrl": state.files.registry_url,
        "servers": servers,
    }))
    .into_response()
}

/// The console's files: the API's rules but the token (the page asks for it).
async fn protect_page(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    if let Err(refused) = open_to(&state, request.headers()) {
        return *refused;
    }
    if let Err((status, message)) = state.guard.check_page(request.method(), request.headers()) {
        return error(status, message);
    }
    next.run(request).await
}

/// Whether the console and its API are served at all (loopback, or auth required), and to this
/// `Host` (DNS rebinding).
fn open_to(state: &ApiState, headers: &axum::http::HeaderMap) -> Result<(), Box<Response>> {
    if !state.open {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "the console and its API are off: this proxy listens beyond loopback without \
             --require-api-auth",
        )));
    }
    if let Some(hosts) = &state.hosts {
        let host = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let name = host_name(host);
        if !hosts
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(name) || allowed == host)
        {
            return Err(Box::new(error(
                StatusCode::FORBIDDEN,
                format!("host {host:?} is not allowed (see --allowed-host)"),
            )));
        }
    }
    Ok(())
}

/// The host name of a `Host` header (without its port; IPv6 brackets kept).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split(']')
            .next()
            .map_or(host, |name| &host[..name.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

fn registry_of(state: &ApiState, url: Option<&str>) -> Result<Registry, RegistryError> {
    Registry::new(
        url.unwrap_or(&state.files.registry_url),
        state.files.data_dir.as_deref(),
    )
}

fn registry_error(failure: &RegistryError) -> Response {
    let status = match failure {
        RegistryError::NotFound { .. } => StatusCode::NOT_FOUND,
        RegistryError::Setup(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::BAD_GATEWAY,
    };
    error(status, failure.to_string())
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
    limit: Option<u32>,
    cursor: Option<String>,
    #[serde(rename = "registryUrl")]
    registry_url: Option<String>,
}

async fn search(State(state): State<ApiState>, Query(query): Query<SearchQuery>) -> Response {
    let registry = match registry_of(&state, query.registry_url.as_deref()) {
        Ok(registry) => registry,
        Err(failure) => return registry_error(&failure),
    };
    match registry
        .search(&query.q, query.limit.unwrap_or(20), query.cursor.as_deref())
        .await
    {
        Ok(page) => Json(page).into_response(),
        Err(failure) => registry_error(&failure),
    }
}

#[derive(Deserialize)]
struct ShowQuery {
    name: String,
    version: Option<String>,
    #[serde(rename = "registryUrl")]
    registry_url: Option<String>,
}

async fn show(State(state): State<ApiState>, Query(query): Query<ShowQuery>) -> Response {
    let registry = match registry_of(&state, query.registry_url.as_deref()) {
        Ok(registry) => registry,
        Err(failure) => return registry_error(&failure),
    };
    match registry.show(&query.name, query.version.as_deref()).await {
        Ok(server) => Json(server).into_response(),
        Err(failure) => registry_error(&failure),
    }
}

#[derive(Deserialize)]
struct AddBody {
    name: String,
    version: Option<String>,
    #[serde(rename = "as")]
    as_name: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Argument and variable values; a list for an argument that repeats.
    #[serde(default)]
    args: BTreeMap<String, Value>,
    package: Option<String>,
    #[serde(rename = "registryUrl")]
    registry_url: Option<String>,
}

async fn add(
    State(state): State<ApiState>,
    body: Result<Json<AddBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let body = match super::api_v1::json_body(body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let registry = match registry_of(&state, body.registry_url.as_deref()) {
        Ok(registry) => registry,
        Err(failure) => return registry_error(&failure),
    };
    let mut args = BTreeMap::new();
    for (key, value) in body.args {
        let values = match value {
            Value::String(text) => vec![text],
            Value::Array(items) => items
                .into_iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect(),
            other => vec![other.to_string()],
        };
        args.insert(key, values);
    }
    let request = AddRequest {
        env: body.env,
        headers: body.headers,
        args,
        package: body.package,
        written: false,
    };
    let target = Target {
        config: &state.files.config,
        data_dir: state.files.data_dir.as_deref(),
    };
    match install::add(
        &registry,
        &target,
        &body.name,
        body.version.as_deref(),
        body.as_name.as_deref(),
        &request,
    )
    .await
    {
        Ok(added) => (StatusCode::CREATED, Json(added)).into_response(),
        Err(AddError::Missing(missing)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "required values are missing", "missing": missing})),
        )
            .into_response(),
        Err(AddError::Registry(failure)) => registry_error(&failure),
        Err(AddError::Refused(message)) => error(StatusCode::FORBIDDEN, message),
        Err(AddError::Invalid(message)) => error(StatusCode::BAD_REQUEST, message),
    }
}

#[derive(Deserialize)]
struct ImportBody {
    /// Client names; all when absent.
    clients: Option<Vec<String>>,
    project: Option<PathBuf>,
    #[serde(default, rename = "dryRun")]
    dry_run: bool,
    #[serde(default)]
    replace: bool,
    #[serde(default)]
    inputs: BTreeMap<String, String>,
}

async fn import_servers(
    State(state): State<ApiState>,
    body: Result<Json<ImportBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let body = match super::api_v1::json_body(body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let clients = match body.clients {
        None => Client::ALL.to_vec(),
        Some(names) => {
            let mut clients = Vec::new();
            for name in names {
                match Client::parse(&name) {
                    Some(client) => clients.push(client),
                    None => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            format!("unknown client \"{name}\""),
                        );
                    }
                }
            }
            clients
        }
    };
    let project = match body.project {
        Some(project) if project.is_absolute() => project,
        Some(project) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("project {} must be an absolute path", project.display()),
            );
        }
        None => std::env::current_dir().unwrap_or_default(),
    };
    let options = ImportOptions {
        clients,
        project,
        dry_run: body.dry_run,
        replace: body.replace,
        inputs: body.inputs,
        config_path: state.files.config.clone(),
        data_dir: state.files.data_dir.clone(),
        proxy: state.files.proxy.clone(),
    };
    // Files are read and written: off the async workers.
    let outcome = tokio::task::spawn_blocking(move || {
        // Nobody to ask: a value only a client knew comes in `inputs`, or the server is
        // reported as skipped with the input it needs.
        import::run(&options, &Platform::current(), &mut |_, _| None)
    })
    .await;
    match outcome {
        Ok(Ok(report)) => Json(report).into_response(),
        Ok(Err(message)) => error(StatusCode::BAD_REQUEST, message),
        Err(failure) => error(StatusCode::INTERNAL_SERVER_ERROR, failure.to_string()),
    }
}

impl axum::extract::FromRef<ApiState> for Arc<super::uploads::Uploads> {
    fn from_ref(state: &ApiState) -> Self {
        state.uploads.clone()
    }
}

impl axum::extract::FromRef<ApiState> for Arc<super::playground::Playground> {
    fn from_ref(state: &ApiState) -> Self {
        state.playground.clone()
    }
}

impl axum::extract::FromRef<ApiState> for Arc<super::calls::Running> {
    fn from_ref(state: &ApiState) -> Self {
        state.calls.clone()
    }
}

impl axum::extract::FromRef<ApiState> for Arc<crate::router::Router> {
    fn from_ref(state: &ApiState) -> Self {
        state.router.clone()
    }
}
