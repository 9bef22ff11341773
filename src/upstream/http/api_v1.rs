//! The JSON API's live view of the proxy, under `/api/v1/`: the servers as they run, the
//! catalog exactly as clients see it, and tool calls through the router (policy, activity log and
//! timeouts as for a client's call). Behind the same rules as the rest of the API (`api.rs`).
//! Errors are `{"error": "…"}` with the status that says what went wrong: 404 for a tool the
//! catalog does not serve, 400 for arguments that are not an object or that the server refused
//! as invalid, 503 for a server that is not connected, 504 for a timeout, 502 for any other error
//! of the server's; for the store's pages, 500 when the local store failed and 502 when the
//! plugged.in App did.

use std::sync::Arc;

use axum::Json;
use axum::Router as AxumRouter;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use rmcp::model::{
    CallToolRequestParams, GetPromptRequestParams, ReadResourceRequestParams, ServerResult,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::calls::{self, Missing, Running};
use super::uploads::{UploadError, Uploads};
use crate::control::ControlError;
use crate::downstream::ServerState;
use crate::router::{Caller, RouteError, Router};

/// The routes; `S` is the API's state, which gives the router.
pub(super) fn routes<S>() -> AxumRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Router>: axum::extract::FromRef<S>,
    Arc<Running>: axum::extract::FromRef<S>,
    Arc<Uploads>: axum::extract::FromRef<S>,
{
    AxumRouter::new()
        .route("/api/v1/servers", get(servers))
        .route("/api/v1/tools", get(tools))
        .route("/api/v1/prompts", get(prompts))
        .route("/api/v1/tools/call", post(call))
        .route("/api/v1/tools/disabled", get(disabled_tools))
        .route("/api/v1/tools/{name}/enable", post(enable_tool))
        .route("/api/v1/tools/{name}/disable", post(disable_tool))
        .route("/api/v1/calls/{call}", delete(cancel_call))
        .route("/api/v1/calls/{call}/answers/{question}", post(answer_call))
        .route("/api/v1/prompts/get", post(get_prompt))
        .route("/api/v1/resources", get(resources))
        .route("/api/v1/resources/read", post(read_resource))
        .route("/api/v1/servers/{name}/enable", post(enable))
        .route("/api/v1/servers/{name}/disable", post(disable))
        .route("/api/v1/servers/{name}/restart", post(restart))
        .route("/api/v1/servers/{name}/authorize", post(authorize))
        .route("/api/v1/notifications", get(notifications))
        .route(
            "/api/v1/notifications/{id}/done",
            post(complete_notification),
        )
        .route("/api/v1/notifications/{id}", delete(delete_notification))
        .route("/api/v1/notifications/test-email", post(test_email))
        .route("/api/v1/activity/stats", get(activity_stats))
        .route("/api/v1/activity/series", get(activity_series))
        .route("/api/v1/activity/export", get(activity_export))
        .route("/api/v1/metrics", get(metrics))
        .route("/api/v1/documents", get(documents))
        .route("/api/v1/documents/search", get(search_documents))
        .route("/api/v1/uploads", post(open_upload))
        .route("/api/v1/uploads/{id}", delete(drop_upload))
        .route("/api/v1/uploads/{id}/chunks", post(upload_chunk))
        .route("/api/v1/uploads/{id}/finish", post(finish_upload))
        .route(
            "/api/v1/documents/{id}",
            get(document).delete(delete_document),
        )
        .route("/api/v1/workspaces", get(workspaces).post(create_workspace))
        .route("/api/v1/workspaces/{name}", delete(delete_workspace))
        .route("/api/v1/workspaces/switch", post(switch_workspace))
}

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// A request's JSON body, or what is wrong with it: 400 (413 when over the body limit, 415
/// without the JSON media type).
/// Whether the request asks for an event stream (`Accept: text/event-stream`).
pub(super) fn accepts_events(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"))
}

pub(super) fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, Box<Response>> {
    body.map(|Json(body)| body)
        .map_err(|rejection| Box::new(error(rejection_status(&rejection), rejection.body_text())))
}

/// 413 for a body over the limit, 415 for one not sent as JSON, 400 for anything else wrong
/// with it (not JSON, not the expected shape).
fn rejection_status(rejection: &JsonRejection) -> StatusCode {
    match rejection.status() {
        status @ (StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE) => status,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// A control plane's failure: 400 for a request it refused, 502 when the plugged.in App failed,
/// 500 when the local store did.
fn control_error(failure: &ControlError) -> Response {
    let status = match failure {
        ControlError::Invalid(_) => StatusCode::BAD_REQUEST,
        ControlError::App(_) | ControlError::AppUnconfirmed { .. } => StatusCode::BAD_GATEWAY,
        ControlError::Open { .. } | ControlError::Store(_) | ControlError::Worker(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    error(status, failure.to_string())
}

/// Each configured server: how it is reached, its state (with the reason when it failed or was
/// refused), whether it is switched on and whether clients see it (it may be outside the
/// workspace), its tools as clients get them, its restarts, the protocol revision it speaks and
/// its last lines on stderr.
async fn servers(State(router): State<Arc<Router>>) -> Response {
    // Switched off (`servers disable`), as against outside the workspace: the settings this
    // proxy applies, kept in memory (no store read per poll of the page).
    let settings = router.settings();
    let catalog = router.catalog();
    let served = catalog.tools_per_server();
    let visible: Vec<String> = router
        .visible_servers()
        .iter()
        .map(|server| server.name.clone())
        .collect();
    let servers: Vec<Value> = router
        .servers()
        .iter()
        .map(|server| {
            let state = server.state();
            let (label, reason) = match &state {
                ServerState::Disabled => ("disabled", None),
                ServerState::Starting => ("starting", None),
                ServerState::Connected => ("connected", None),
                ServerState::Failed { reason, .. } => ("failed", Some(reason.as_str())),
                ServerState::Stopped => ("stopped", None),
                ServerState::Refused { reason, .. } => ("refused", Some(reason.as_str())),
            };
            json!({
                "name": server.name,
                "transport": server.config.transport.kind(),
                "state": label,
                "reason": reason,
                "description": state.to_string(),
                "served": visible.contains(&server.name),
                "enabled": !server.config.disabled
                    && !settings.disabled_servers.contains(&server.name),
                "tools": served.get(server.name.as_str()).copied().unwrap_or(0),
                "restarts": server.restarts(),
                "generation": server
                    .connection()
                    .map(|connection| connection.protocol_version.clone()),
                "stderr": server.stderr_tail(),
            })
        })
        .collect();
    Json(json!({ "servers": servers })).into_response()
}

#[derive(Deserialize)]
struct Search {
    /// Words that must all appear in a tool's name, title or description (any case).
    q: Option<String>,
}

/// Whether every word of `query` appears in one of `texts`.
fn matches(query: Option<&str>, texts: &[Option<&str>]) -> bool {
    let Some(query) = query else {
        return true;
    };
    let texts: Vec<String> = texts.iter().flatten().map(|t| t.to_lowercase()).collect();
    query
        .split_whitespace()
        .map(str::to_lowercase)
        .all(|word| texts.iter().any(|text| text.contains(&word)))
}

/// The items of `items` whose texts (name, title, description) hold every word of `search`.
fn searched<'a, T>(
    items: &'a [T],
    search: &Search,
    texts: impl Fn(&'a T) -> [Option<&'a str>; 3],
) -> Vec<&'a T> {
    let query = search.q.as_deref().filter(|q| !q.trim().is_empty());
    items
        .iter()
        .filter(|item| matches(query, &texts(item)))
        .collect()
}

/// The tools exactly as `tools/list` gives them to clients, all pages, with `?q=` to search.
async fn tools(State(router): State<Arc<Router>>, Query(search): Query<Search>) -> Response {
    let catalog = router.catalog();
    let found = searched(&catalog.tools, &search, |tool| {
        [
            Some(&*tool.name),
            tool.title.as_deref(),
            tool.description.as_deref(),
        ]
    });
    // As `tools/list` shows them: a 2025-11-25 tool's `execution` in its place.
    let mut answer = json!({ "tools": found });
    crate::wire::core_tasks::unstash_result(&mut answer);
    Json(answer).into_response()
}

/// The prompts as `prompts/list` gives them, with `?q=` to search.
async fn prompts(State(router): State<Arc<Router>>, Query(search): Query<Search>) -> Response {
    let catalog = router.catalog();
    let found = searched(&catalog.prompts, &search, |prompt| {
        [
            Some(prompt.name.as_str()),
            prompt.title.as_deref(),
            prompt.description.as_deref(),
        ]
    });
    Json(json!({ "prompts": found })).into_response()
}

#[derive(Deserialize)]
struct Call {
    name: String,
    #[serde(default)]
    arguments: Option<Value>,
}

/// Calls a tool as a client would (the `call` command's way): 200 with the tool's result — a
/// tool's own error included, `isError: true` — or the status of what stopped it.
/// With `Accept: text/event-stream`, a tool the catalog serves is called in a session of its own
/// and its progress, logs, questions and result come as events (`calls`).
async fn call(
    State(router): State<Arc<Router>>,
    State(streamed): State<Arc<Running>>,
    headers: HeaderMap,
    body: Result<Json<Call>, JsonRejection>,
) -> Response {
    let body = match json_body(body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let wants_events = accepts_events(&headers);
    let mut params = CallToolRequestParams::new(body.name);
    match body.arguments {
        None | Some(Value::Null) => {}
        Some(Value::Object(arguments)) => params = params.with_arguments(arguments),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "\"arguments\" must be a JSON object",
            );
        }
    }
    // A tool the catalog does not serve (yet) is answered as JSON: 404, or the call once its
    // server is up.
    let served = router
        .catalog()
        .tools
        .iter()
        .any(|tool| *tool.name == *params.name);
    if wants_events && served {
        return match calls::start(&streamed, router, params) {
            Some(events) => events.into_response(),
            None => error(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "{} streamed calls are in flight, the most at once; wait for one to end",
                    calls::MAX_CALLS
                ),
            ),
        };
    }
    // The call runs in a task of its own, cancelled when this request is dropped (its client
    // went away): the router then tells the server, as for a client's cancellation.
    let caller = Caller::detached();
    let gone = caller.ct.clone().drop_guard();
    let call = tokio::spawn(async move { router.call_tool(&caller, params).await });
    let outcome = call.await;
    gone.disarm();
    match outcome {
        Ok(Ok(ServerResult::CallToolResult(result))) => Json(result).into_response(),
        Ok(Ok(_)) => error(
            StatusCode::BAD_GATEWAY,
            "the server did not answer with a tool result",
        ),
        Ok(Err(failure)) => error(status_of(&failure), failure.to_string()),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the call's task failed"),
    }
}

/// Answers a streamed call's question (the body is the answer: an elicitation or sampling
/// result).
async fn answer_call(
    State(streamed): State<Arc<Running>>,
    Path((call, question)): Path<(String, String)>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let answer = match json_body(body) {
        Ok(answer) => answer,
        Err(refused) => return *refused,
    };
    match streamed.answer(&call, &question, answer) {
        Ok(()) => Json(json!({ "answered": question })).into_response(),
        Err(missing) => missing_call(&call, &question, &missing),
    }
}

/// Cancels a streamed call.
async fn cancel_call(State(streamed): State<Arc<Running>>, Path(call): Path<String>) -> Response {
    match streamed.cancel(&call) {
        Ok(()) => Json(json!({ "cancelled": call })).into_response(),
        Err(missing) => missing_call(&call, "", &missing),
    }
}

fn missing_call(call: &str, question: &str, missing: &Missing) -> Response {
    let message = match missing {
        Missing::Call => format!("no call {call:?} is in flight"),
        Missing::Question => format!("call {call:?} has no open question {question:?}"),
    };
    error(StatusCode::NOT_FOUND, message)
}

#[derive(Deserialize)]
struct PromptGet {
    name: String,
    #[serde(default)]
    arguments: Option<serde_json::Map<String, Value>>,
}

/// A prompt filled in with its arguments (text values), as `prompts/get` gives it.
async fn get_prompt(
    State(router): State<Arc<Router>>,
    body: Result<Json<PromptGet>, JsonRejection>,
) -> Response {
    let body = match json_body(body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let mut params = GetPromptRequestParams::new(body.name);
    if let Some(arguments) = body.arguments {
        params = params.with_arguments(arguments);
    }
    match router.get_prompt(&Caller::detached(), params).await {
        Ok(ServerResult::GetPromptResult(result)) => Json(result).into_response(),
        Ok(_) => error(
            StatusCode::BAD_GATEWAY,
            "the server did not answer with a prompt",
        ),
        Err(failure) => error(status_of(&failure), failure.to_string()),
    }
}

/// The resources and templates clients see (the servers', then in local mode the library's).
async fn resources(State(router): State<Arc<Router>>) -> Response {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        match router.list_resources(cursor.as_deref()).await {
            Ok((page, next)) => {
                all.extend(page);
                match next {
                    Some(next) if all.len() < MAX_RESOURCES => cursor = Some(next),
                    _ => break,
                }
            }
            Err(failure) => return error(status_of(&failure), failure.to_string()),
        }
    }
    all.truncate(MAX_RESOURCES);
    let templates = router.catalog().templates.clone();
    Json(json!({ "resources": all, "templates": templates })).into_response()
}

/// The most resources one answer lists.
const MAX_RESOURCES: usize = 1000;

#[derive(Deserialize)]
struct ResourceRead {
    uri: String,
}

/// A resource's contents, as `resources/read` gives them.
async fn read_resource(
    State(router): State<Arc<Router>>,
    body: Result<Json<ResourceRead>, JsonRejection>,
) -> Response {
    let body = match json_body(body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let params = ReadResourceRequestParams::new(body.uri);
    match router.read_resource(&Caller::detached(), params).await {
        Ok(ServerResult::ReadResourceResult(result)) => Json(result).into_response(),
        Ok(_) => error(
            StatusCode::BAD_GATEWAY,
            "the server did not answer with contents",
        ),
        Err(failure) => error(status_of(&failure), failure.to_string()),
    }
}

/// Switches a configured server on (`enabled`) or off, as `servers enable|disable` does: kept in
/// the store, applied here at once (and by other proxies on the same store when they poll it).
/// In App mode the App owns the servers: 409.
async fn set_enabled(router: &Router, name: &str, enabled: bool) -> Response {
    if router.app().is_some() {
        return error(
            StatusCode::CONFLICT,
            "App mode: the servers are the plugged.in App's; switch them there",
        );
    }
    if !router.servers().iter().any(|server| server.name == name) {
        return error(StatusCode::NOT_FOUND, format!("no server named {name:?}"));
    }
    if let Err(failure) = router
        .control_plane()
        .set_server_enabled(name, enabled)
        .await
    {
        return control_error(&failure);
    }
    router.reload_settings().await;
    Json(json!({ "name": name, "enabled": enabled })).into_response()
}

async fn enable(State(router): State<Arc<Router>>, Path(name): Path<String>) -> Response {
    set_enabled(&router, &name, true).await
}

async fn disable(State(router): State<Arc<Router>>, Path(name): Path<String>) -> Response {
    set_enabled(&router, &name, false).await
}

/// OAuth authorizations started from the console and not finished yet, at most
/// [`MAX_AUTHORIZATIONS`]; each ends after [`AUTHORIZATION_WAIT`] without the user's answer.
static AUTHORIZATIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
const MAX_AUTHORIZATIONS: usize = 4;
const AUTHORIZATION_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Starts the OAuth authorization of an HTTP server, as `pluggedin-mcp-proxy auth NAME` does:
/// the URL for the user to open; the flow goes on in the background, its loopback listener
/// takes the redirect, the tokens are stored and the server connects with them.
async fn authorize(State(router): State<Arc<Router>>, Path(name): Path<String>) -> Response {
    let Some(server) = router
        .servers()
        .into_iter()
        .find(|server| server.name == name)
    else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no server is named {name:?}"),
        );
    };
    let running = AUTHORIZATIONS.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    if running >= MAX_AUTHORIZATIONS {
        AUTHORIZATIONS.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            format!("{MAX_AUTHORIZATIONS} authorizations are waiting for their users already"),
        );
    }
    let (url_sender, url) = tokio::sync::oneshot::channel::<Result<String, String>>();
    let config = server.config.clone();
    let server_name = name.clone();
    tokio::spawn(async move {
        let sender = std::sync::Mutex::new(Some(url_sender));
        let show = |url: &url::Url| {
            if let Some(sender) = crate::sync::lock(&sender).take() {
                let _ = sender.send(Ok(url.to_string()));
            }
        };
        let flow = crate::downstream::oauth::authorize_server(&server_name, &config, &show);
        let outcome = match tokio::time::timeout(AUTHORIZATION_WAIT, flow).await {
            Ok(outcome) => outcome,
            Err(_) => Err("the user did not finish the authorization in time".to_owned()),
        };
        match (outcome, crate::sync::lock(&sender).take()) {
            (Err(why), Some(sender)) => {
                let _ = sender.send(Err(why));
            }
            (Err(why), None) => tracing::warn!(server = %server_name, "authorization: {why}"),
            (Ok(()), _) => tracing::info!(server = %server_name, "authorized from the console"),
        }
        AUTHORIZATIONS.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    });
    match url.await {
        Ok(Ok(url)) => Json(json!({ "name": name, "url": url })).into_response(),
        Ok(Err(why)) if why.contains("applies to") => error(StatusCode::BAD_REQUEST, why),
        Ok(Err(why)) => error(StatusCode::BAD_GATEWAY, why),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the authorization stopped",
        ),
    }
}

/// The tools switched off for every client (by the name clients called them), as this proxy
/// applies them.
async fn disabled_tools(State(router): State<Arc<Router>>) -> Response {
    Json(json!({ "disabled": router.settings().disabled_tools })).into_response()
}

/// Switches a tool clients see off, or a switched-off one on again, for every client.
async fn set_tool_enabled(router: &Router, name: &str, enabled: bool) -> Response {
    let name = crate::builtin::canonical(name).unwrap_or(name);
    let settings = match router.control_plane().settings().await {
        Ok(settings) => settings,
        Err(failure) => return control_error(&failure),
    };
    let known = if enabled {
        settings.disabled_tools.contains(name)
    } else {
        router
            .catalog()
            .tools
            .iter()
            .any(|tool| *tool.name == *name)
    };
    if !known {
        let why = if enabled {
            "is not switched off"
        } else {
            "is not in the catalog"
        };
        return error(StatusCode::NOT_FOUND, format!("tool {name:?} {why}"));
    }
    if let Err(failure) = router.control_plane().set_tool_enabled(name, enabled).await {
        return control_error(&failure);
    }
    router.reload_settings().await;
    Json(json!({ "name": name, "enabled": enabled })).into_response()
}

async fn enable_tool(State(router): State<Arc<Router>>, Path(name): Path<String>) -> Response {
    set_tool_enabled(&router, &name, true).await
}

async fn disable_tool(State(router): State<Arc<Router>>, Path(name): Path<String>) -> Response {
    set_tool_enabled(&router, &name, false).await
}

/// Closes a server's connection and connects again (a stdio server is a new process); a server
/// waiting to retry tries at once.
async fn restart(State(router): State<Arc<Router>>, Path(name): Path<String>) -> Response {
    let Some(server) = router
        .servers()
        .into_iter()
        .find(|server| server.name == name)
    else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no server is named {name:?}"),
        );
    };
    if matches!(server.state(), ServerState::Disabled | ServerState::Stopped) {
        return error(
            StatusCode::CONFLICT,
            format!(
                "server {name:?} is not running ({}); enable it instead",
                server.state()
            ),
        );
    }
    server.restart();
    Json(json!({ "name": name, "restarting": true })).into_response()
}

/// Sends a test e-mail through the configured SMTP server: the recipients, or 502 with the
/// server's reason (400 when none is set up).
async fn test_email(State(router): State<Arc<Router>>) -> Response {
    match router.builtins().send_test_email().await {
        Ok(to) => Json(json!({ "sent": true, "to": to })).into_response(),
        Err(why) if why.starts_with("no SMTP") => error(StatusCode::BAD_REQUEST, why),
        Err(why) => error(StatusCode::BAD_GATEWAY, why),
    }
}

#[derive(Deserialize)]
struct NotificationQuery {
    #[serde(default, rename = "unreadOnly")]
    unread_only: bool,
    limit: Option<u32>,
}

/// The most notifications one answer lists.
const MAX_NOTIFICATIONS: u32 = 500;

/// Notifications, newest first (`?unreadOnly=true`, `?limit=`, at most 500).
async fn notifications(
    State(router): State<Arc<Router>>,
    Query(query): Query<NotificationQuery>,
) -> Response {
    let limit = query.limit.unwrap_or(100).min(MAX_NOTIFICATIONS);
    match router
        .control_plane()
        .list_notifications(query.unread_only, Some(limit))
        .await
    {
        Ok(list) => {
            let list: Vec<Value> = list
                .iter()
                .map(|n| {
                    json!({
                        "id": n.id,
                        "type": n.kind,
                        "title": n.title,
                        "message": n.message,
                        "severity": n.severity.as_str(),
                        "link": n.link,
                        "read": n.read,
                        "completed": n.completed,
                        "createdAt": n.created_at,
                        "expiresAt": n.expires_at,
                    })
                })
                .collect();
            Json(json!({ "notifications": list })).into_response()
        }
        Err(failure) => control_error(&failure),
    }
}

/// The answer to a change of one notification: 404 when there is none by that id.
fn changed(outcome: crate::control::Result<bool>, id: &str) -> Response {
    match outcome {
        Ok(true) => Json(json!({ "id": id })).into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, format!("no notification {id:?}")),
        Err(failure) => control_error(&failure),
    }
}

async fn complete_notification(
    State(router): State<Arc<Router>>,
    Path(id): Path<String>,
) -> Response {
    changed(router.control_plane().complete_notification(&id).await, &id)
}

async fn delete_notification(
    State(router): State<Arc<Router>>,
    Path(id): Path<String>,
) -> Response {
    changed(router.control_plane().delete_notification(&id).await, &id)
}

#[derive(Deserialize)]
struct StatsQuery {
    /// Milliseconds since the epoch; the last 24 hours when absent.
    since: Option<i64>,
}

/// Calls, errors, p50 and p95 per server and item since `since` (the `stats` command's figures).
async fn activity_stats(
    State(router): State<Arc<Router>>,
    Query(query): Query<StatsQuery>,
) -> Response {
    let since = query
        .since
        .unwrap_or_else(|| crate::control::time::now_ms() - 24 * 60 * 60 * 1000);
    match router.control_plane().activity_stats(since).await {
        Ok(stats) => {
            let stats: Vec<Value> = stats
                .iter()
                .map(|row| {
                    json!({
                        "server": row.server_name,
                        "item": row.item,
                        "calls": row.calls,
                        "errors": row.errors,
                        "p50Ms": row.p50_ms,
                        "p95Ms": row.p95_ms,
                    })
                })
                .collect();
            Json(json!({ "since": since, "stats": stats })).into_response()
        }
        Err(failure) => control_error(&failure),
    }
}

/// The metrics as `/metrics` shows them (the router's; an HTTP endpoint's own sessions and
/// connections are on `/metrics`), under the API's rules: the console's live figures.
async fn metrics(State(router): State<Arc<Router>>, headers: HeaderMap) -> Response {
    crate::upstream::scrape::page(&router, &headers, |_| {})
}

#[derive(Deserialize)]
struct SeriesQuery {
    /// Where the range starts: milliseconds since the epoch, or how long ago (`90m`, `24h`,
    /// `7d`); the last 24 hours when absent.
    since: Option<String>,
    /// Where it ends, the same way; now when absent.
    until: Option<String>,
    /// How many parts the range is cut into (60 when absent, 240 at most).
    buckets: Option<u32>,
    server: Option<String>,
    /// One tool (or prompt, or resource) of `server`, by its name on that server.
    tool: Option<String>,
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// A point in time: milliseconds since the epoch, or a duration back from `now` (`30m`, `6h`,
/// `7d`).
fn point_in_time(text: &str, now: i64) -> Result<i64, Box<Response>> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let unit = match text.chars().last() {
        Some('m') => 60_000,
        Some('h') => 3_600_000,
        Some('d') => DAY_MS,
        _ => 0,
    };
    text.get(..text.len().saturating_sub(1))
        .and_then(|number| number.parse::<i64>().ok())
        .filter(|number| unit > 0 && (0..=3650).contains(&(number * unit / DAY_MS)))
        .map(|number| now - number * unit)
        .ok_or_else(|| {
            Box::new(error(
                StatusCode::BAD_REQUEST,
                format!(
                    "{text:?} is not a time: milliseconds since the epoch, or how long ago \
                     (30m, 24h, 7d)"
                ),
            ))
        })
}

/// The range a query names: `since` (24 hours ago by default) to `until` (now by default).
fn range_of(since: Option<&str>, until: Option<&str>) -> Result<(i64, i64), Box<Response>> {
    let now = crate::control::time::now_ms();
    let since = since.map_or(Ok(now - DAY_MS), |text| point_in_time(text, now))?;
    let until = until.map_or(Ok(now), |text| point_in_time(text, now))?;
    if until <= since {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "the range ends before it starts (until <= since)",
        )));
    }
    Ok((since, until))
}

fn figures_json(figures: &crate::control::Figures) -> Value {
    json!({
        "calls": figures.calls,
        "errors": figures.errors,
        "p50Ms": figures.p50_ms,
        "p95Ms": figures.p95_ms,
    })
}

fn entry_json(entry: &crate::control::ActivityEntry) -> Value {
    json!({
        "at": entry.at,
        "action": entry.action,
        "server": entry.server_name,
        "item": entry.item,
        "durationMs": entry.duration_ms,
        "ok": entry.success,
        "error": entry.error,
    })
}

/// The activity page's figures over a range: per time bucket (calls, errors, p50 and p95),
/// per server, per item (the busiest 100), the slowest and the latest failed requests.
async fn activity_series(
    State(router): State<Arc<Router>>,
    Query(query): Query<SeriesQuery>,
) -> Response {
    let (since, until) = match range_of(query.since.as_deref(), query.until.as_deref()) {
        Ok(range) => range,
        Err(refused) => return *refused,
    };
    let asked = crate::control::ActivityQuery {
        since,
        until,
        buckets: query.buckets.unwrap_or(60),
        server: query.server.filter(|server| !server.is_empty()),
        item: query.tool.filter(|tool| !tool.is_empty()),
    };
    match router.control_plane().activity_report(asked).await {
        Ok(report) => {
            let buckets: Vec<Value> = report
                .buckets
                .iter()
                .map(|(start, figures)| {
                    let mut bucket = figures_json(figures);
                    bucket["start"] = json!(start);
                    bucket["end"] = json!(start + report.bucket_ms);
                    bucket
                })
                .collect();
            let servers: Vec<Value> = report
                .servers
                .iter()
                .map(|(server, figures)| {
                    let mut row = figures_json(figures);
                    row["server"] = json!(server);
                    row
                })
                .collect();
            let tools: Vec<Value> = report
                .items
                .iter()
                .map(|((server, item), figures)| {
                    let mut row = figures_json(figures);
                    row["server"] = json!(server);
                    row["tool"] = json!(item);
                    row
                })
                .collect();
            Json(json!({
                "since": since,
                "until": until,
                "bucketMs": report.bucket_ms,
                "buckets": buckets,
                "servers": servers,
                "tools": tools,
                "slowest": report.slowest.iter().map(entry_json).collect::<Vec<_>>(),
                "failing": report.failing.iter().map(entry_json).collect::<Vec<_>>(),
            }))
            .into_response()
        }
        Err(failure) => control_error(&failure),
    }
}

#[derive(Deserialize)]
struct ExportQuery {
    since: Option<String>,
    until: Option<String>,
    /// `csv` or `json` (the default).
    format: Option<String>,
    /// The most rows (10,000 when absent, 100,000 at most).
    limit: Option<u32>,
}

/// The most rows one export gives.
const MAX_EXPORT: u32 = 100_000;

/// The requests of a range as a file to download: CSV or JSON, oldest first.
async fn activity_export(
    State(router): State<Arc<Router>>,
    Query(query): Query<ExportQuery>,
) -> Response {
    let (since, until) = match range_of(query.since.as_deref(), query.until.as_deref()) {
        Ok(range) => range,
        Err(refused) => return *refused,
    };
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("format {other:?}: csv or json"),
            );
        }
    };
    let limit = query.limit.unwrap_or(10_000).min(MAX_EXPORT);
    let entries = match router
        .control_plane()
        .activity_entries(since, until, limit)
        .await
    {
        Ok(entries) => entries,
        Err(failure) => return control_error(&failure),
    };
    let (body, media, extension) = if csv {
        let mut text = String::from("at,action,server,item,duration_ms,ok,error\n");
        for entry in &entries {
            let fields = [
                entry.at.to_string(),
                entry.action.clone(),
                entry.server_name.clone(),
                entry.item.clone(),
                entry.duration_ms.to_string(),
                entry.success.to_string(),
                entry.error.clone().unwrap_or_default(),
            ];
            let row: Vec<String> = fields.iter().map(|field| csv_field(field)).collect();
            text.push_str(&row.join(","));
            text.push('\n');
        }
        (text, "text/csv; charset=utf-8", "csv")
    } else {
        let rows: Vec<Value> = entries.iter().map(entry_json).collect();
        (
            json!({ "since": since, "until": until, "activity": rows }).to_string(),
            "application/json",
            "json",
        )
    };
    let disposition = format!("attachment; filename=\"activity-{since}-{until}.{extension}\"");
    (
        [
            (header::CONTENT_TYPE, media.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break; a leading
/// `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet does not run it as a formula.
fn csv_field(field: &str) -> String {
    let field = if field.starts_with(['=', '+', '-', '@']) {
        format!("'{field}")
    } else {
        field.to_owned()
    };
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DocumentQuery {
    q: Option<String>,
    source: Option<String>,
    model_name: Option<String>,
    model_provider: Option<String>,
    /// Comma-separated: every one must be on the document.
    tags: Option<String>,
    category: Option<String>,
    visibility: Option<String>,
    created_from: Option<i64>,
    created_to: Option<i64>,
    /// `date_desc` (default), `date_asc`, `title` or `size`.
    sort: Option<String>,
    limit: Option<u32>,
    offset: Option<u64>,
}

/// The most documents (or hits) one answer carries.
const MAX_DOCUMENTS: u32 = 200;

impl DocumentQuery {
    fn filter(&self) -> crate::control::DocumentFilter {
        crate::control::DocumentFilter {
            source: self.source.clone(),
            model_name: self.model_name.clone(),
            model_provider: self.model_provider.clone(),
            tags: self
                .tags
                .iter()
                .flat_map(|tags| tags.split(','))
                .map(str::trim)
                .filter(|tag| !tag.is_empty())
                .map(str::to_owned)
                .collect(),
            category: self.category.clone(),
            visibility: self.visibility.clone(),
            created_from: self.created_from,
            created_to: self.created_to,
        }
    }

    fn limit(&self) -> u32 {
        self.limit.unwrap_or(50).clamp(1, MAX_DOCUMENTS)
    }
}

/// A document's description, without its content unless `content`.
fn document_json(document: &crate::control::Document, content: bool) -> Value {
    let mut value = json!({
        "id": document.id,
        "title": document.title,
        "description": document.description,
        "format": document.format,
        "tags": document.tags,
        "category": document.category,
        "source": document.source,
        "visibility": document.visibility,
        "model": document.model,
        "fileName": document.file_name,
        "sizeBytes": document.size_bytes,
        "version": document.version,
        "createdAt": document.created_at,
        "updatedAt": document.updated_at,
        "updatedBy": document.updated_by,
    });
    if content {
        value["content"] = json!(document.content);
    }
    value
}

fn upload_error(failure: &UploadError) -> Response {
    let status = match failure {
        UploadError::Unknown(_) => StatusCode::NOT_FOUND,
        UploadError::TooMany => StatusCode::TOO_MANY_REQUESTS,
        UploadError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        UploadError::Invalid(_) => StatusCode::BAD_REQUEST,
    };
    error(status, failure.to_string())
}

#[derive(Deserialize)]
struct UploadOpen {
    /// The file's name, with the folders it was in (`notes/plan.md`).
    name: String,
    size: usize,
}

/// Opens an upload: its id, and how many bytes a chunk may carry.
async fn open_upload(
    State(uploads): State<Arc<Uploads>>,
    body: Result<Json<UploadOpen>, JsonRejection>,
) -> Response {
    let body = match json_body(body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    match uploads.open(&body.name, body.size) {
        Ok(id) => (
            StatusCode::CREATED,
            Json(json!({ "id": id, "chunkBytes": uploads.chunk_bytes })),
        )
            .into_response(),
        Err(failure) => upload_error(&failure),
    }
}

#[derive(Deserialize)]
struct UploadChunk {
    offset: usize,
    /// The chunk's bytes, base64.
    data: String,
}

async fn upload_chunk(
    State(uploads): State<Arc<Uploads>>,
    Path(id): Path<String>,
    body: Result<Json<UploadChunk>, JsonRejection>,
) -> Response {
    let body = match json_body(body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    match uploads.chunk(&id, body.offset, &body.data) {
        Ok(received) => Json(json!({ "received": received })).into_response(),
        Err(failure) => upload_error(&failure),
    }
}

#[derive(Deserialize, Default)]
struct UploadFinish {
    #[serde(default)]
    tags: Vec<String>,
    description: Option<String>,
}

/// The uploaded file into the library, as `docs add` reads a file: 201 with the document, 200
/// with the one already holding the same content, 422 for a file that is no document.
async fn finish_upload(
    State(router): State<Arc<Router>>,
    State(uploads): State<Arc<Uploads>>,
    Path(id): Path<String>,
    body: Result<Json<UploadFinish>, JsonRejection>,
) -> Response {
    let body = match json_body(body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let (name, bytes) = match uploads.take(&id) {
        Ok(file) => file,
        Err(failure) => return upload_error(&failure),
    };
    let read = tokio::task::spawn_blocking(move || crate::ingest::from_bytes(&name, bytes)).await;
    let mut document = match read {
        Ok(Ok(document)) => document,
        Ok(Err(why)) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("not added: {why}"),
            );
        }
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "reading the file failed"),
    };
    document.tags = body.tags;
    document.description = body.description;
    match router.control_plane().create_document(document).await {
        Ok(crate::control::DocumentCreate::Created(document)) => {
            (StatusCode::CREATED, Json(document_json(&document, false))).into_response()
        }
        Ok(crate::control::DocumentCreate::Duplicate(document)) => {
            let mut answer = document_json(&document, false);
            answer["duplicate"] = json!(true);
            Json(answer).into_response()
        }
        Err(failure) => control_error(&failure),
    }
}

async fn drop_upload(State(uploads): State<Arc<Uploads>>, Path(id): Path<String>) -> Response {
    match uploads.drop_upload(&id) {
        Ok(()) => Json(json!({ "dropped": id })).into_response(),
        Err(failure) => upload_error(&failure),
    }
}

/// The library, a page at a time, with every filter of `pluggedin_list_documents`.
async fn documents(
    State(router): State<Arc<Router>>,
    Query(query): Query<DocumentQuery>,
) -> Response {
    use crate::control::DocumentSort;
    let sort = match query.sort.as_deref() {
        None | Some("date_desc") => DocumentSort::DateDesc,
        Some("date_asc") => DocumentSort::DateAsc,
        Some("title") => DocumentSort::Title,
        Some("size") => DocumentSort::Size,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("sort {other:?}: one of date_desc, date_asc, title, size"),
            );
        }
    };
    let list = crate::control::DocumentList {
        filter: query.filter(),
        search: query.q.clone().filter(|q| !q.trim().is_empty()),
        sort,
        limit: query.limit(),
        offset: query.offset.unwrap_or(0),
    };
    match router.control_plane().list_documents(list).await {
        Ok((found, total)) => {
            let found: Vec<Value> = found.iter().map(|d| document_json(d, false)).collect();
            Json(json!({ "documents": found, "total": total })).into_response()
        }
        Err(failure) => control_error(&failure),
    }
}

/// A ranked full-text search: each hit's document, its best passage with the matched words
/// wrapped in `**`, and its relevance (the best hit's is 1).
async fn search_documents(
    State(router): State<Arc<Router>>,
    Query(query): Query<DocumentQuery>,
) -> Response {
    let Some(text) = query.q.clone().filter(|q| !q.trim().is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "q= is the search's words");
    };
    let search = crate::control::DocumentSearch {
        query: text,
        filter: query.filter(),
        limit: query.limit(),
    };
    match router.control_plane().search_documents(search).await {
        Ok(hits) => {
            let hits: Vec<Value> = hits
                .iter()
                .map(|hit| {
                    json!({
                        "document": document_json(&hit.document, false),
                        "snippet": hit.snippet,
                        "relevance": hit.relevance,
                    })
                })
                .collect();
            Json(json!({ "hits": hits })).into_response()
        }
        Err(failure) => control_error(&failure),
    }
}

/// One document with its content and its versions (who wrote each, and why).
async fn document(State(router): State<Arc<Router>>, Path(id): Path<String>) -> Response {
    match router.control_plane().get_document(&id, true, true).await {
        Ok(Some((document, versions))) => {
            let versions: Vec<Value> = versions
                .iter()
                .map(|version| {
                    json!({
                        "version": version.version,
                        "createdAt": version.created_at,
                        "createdBy": version.created_by,
                        "changeSummary": version.change_summary,
                        "updateReason": version.update_reason,
                    })
                })
                .collect();
            let mut answer = document_json(&document, true);
            answer["versions"] = json!(versions);
            Json(answer).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no document {id:?}")),
        Err(failure) => control_error(&failure),
    }
}

async fn delete_document(State(router): State<Arc<Router>>, Path(id): Path<String>) -> Response {
    match router.control_plane().delete_document(&id).await {
        Ok(true) => Json(json!({ "id": id })).into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, format!("no document {id:?}")),
        Err(failure) => control_error(&failure),
    }
}

/// The workspaces, which servers each holds, and the active one (`null`: every server).
async fn workspaces(State(router): State<Arc<Router>>) -> Response {
    let control = router.control_plane();
    match (control.workspaces().await, control.active_workspace().await) {
        (Ok(list), Ok(active)) => {
            let list: Vec<Value> = list
                .iter()
                .map(|w| json!({ "name": w.name, "servers": w.servers }))
                .collect();
            Json(json!({ "active": active, "workspaces": list })).into_response()
        }
        (Err(failure), _) | (_, Err(failure)) => control_error(&failure),
    }
}

#[derive(Deserialize)]
struct NewWorkspace {
    name: String,
    servers: Vec<String>,
}

/// A new workspace of configured servers: 201, 409 when the name is taken, 400 for a server
/// that is not configured.
async fn create_workspace(
    State(router): State<Arc<Router>>,
    body: Result<Json<NewWorkspace>, JsonRejection>,
) -> Response {
    let body = match json_body(body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let name = body.name.trim();
    if name.is_empty() || name == "all" {
        return error(
            StatusCode::BAD_REQUEST,
            "a workspace needs a name (\"all\" means every server)",
        );
    }
    let configured = router.servers();
    if let Some(unknown) = body
        .servers
        .iter()
        .find(|server| !configured.iter().any(|known| &known.name == *server))
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!("no server named {unknown:?}"),
        );
    }
    let workspace = crate::control::Workspace {
        name: name.to_owned(),
        servers: body.servers.into_iter().collect(),
        tool_exposure: None,
    };
    match router.control_plane().create_workspace(workspace).await {
        Ok(true) => (StatusCode::CREATED, Json(json!({ "name": name }))).into_response(),
        Ok(false) => error(
            StatusCode::CONFLICT,
            format!("a workspace named {name:?} exists"),
        ),
        Err(failure) => control_error(&failure),
    }
}

/// Deletes a workspace (if it was active, every server is served again).
async fn delete_workspace(State(router): State<Arc<Router>>, Path(name): Path<String>) -> Response {
    match router.control_plane().delete_workspace(&name).await {
        Ok(true) => {
            router.reload_settings().await;
            Json(json!({ "name": name })).into_response()
        }
        Ok(false) => error(StatusCode::NOT_FOUND, format!("no workspace {name:?}")),
        Err(failure) => control_error(&failure),
    }
}

#[derive(Deserialize)]
struct Switch {
    /// `null` leaves every workspace: all servers.
    name: Option<String>,
}

/// Switches the active workspace, as `workspace use` does: kept in the store, applied here at
/// once and by every proxy on the same store when it next polls.
async fn switch_workspace(
    State(router): State<Arc<Router>>,
    body: Result<Json<Switch>, JsonRejection>,
) -> Response {
    let body = match json_body(body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    match router
        .control_plane()
        .switch_workspace(body.name.as_deref())
        .await
    {
        Ok(true) => {
            router.reload_settings().await;
            Json(json!({ "active": body.name })).into_response()
        }
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            format!("no workspace {:?}", body.name.unwrap_or_default()),
        ),
        Err(failure) => control_error(&failure),
    }
}

/// The HTTP status that says why a call did not reach a result.
fn status_of(failure: &RouteError) -> StatusCode {
    match failure {
        RouteError::Resolve(_) | RouteError::NotServed { .. } | RouteError::UnknownResource(_) => {
            StatusCode::NOT_FOUND
        }
        RouteError::InvalidArguments(_) | RouteError::Cursor(_) => StatusCode::BAD_REQUEST,
        RouteError::NotConnected { .. } | RouteError::Unavailable(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        RouteError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        RouteError::Cancelled => StatusCode::REQUEST_TIMEOUT,
        // The server's word: arguments it refused are the caller's to fix.
        RouteError::Downstream(error) if error.code == rmcp::model::ErrorCode::INVALID_PARAMS => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::BAD_GATEWAY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_of_a_search_must_appear_somewhere() {
        let texts = [Some("demo__echo"), None, Some("Echoes the message back")];
        assert!(matches(None, &texts));
        assert!(matches(Some("ECHO message"), &texts));
        assert!(!matches(Some("echo weather"), &texts));
    }
}
