//! A stand-in plugged.in App: an axum server that speaks the App's HTTP API as the App's route
//! handlers do (`VeriTeknik/pluggedin-app`, `app/api/**/route.ts`) — bearer-key auth with the
//! App's 401 bodies (`/api/resources` has its own), `{tools}` and bare-array lists, `/api/tools`
//! starting the App's discovery for servers without tools (5-minute throttle, `message` and
//! `X-Discovery-Status`), resolve endpoints with their 404 bodies, the CSRF check that
//! `PATCH /api/documents/{id}` runs before auth, UUID checks on notification ids, memory sessions
//! that end once (then `200 {success: false}`), the memory answers' real field names, zod-style
//! `400 {error, details}` bodies — records every request (method, path, query, body, auth and the
//! headers the App looks at), and can be told to fail an endpoint (any status and body), hold its
//! answers until released, or go away and come back on the same port. The real App cannot run
//! here; this one is as close as its handlers allow.

#![allow(dead_code, reason = "each test uses a different part of the stand-in")]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The key the stand-in accepts (the App's `pg_in_` keys are 32+ characters).
pub const KEY: &str = "pg_in_0123456789abcdef0123456789abcdef";

/// One request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Value,
    pub authorization: Option<String>,
    pub origin: Option<String>,
    pub referer: Option<String>,
    pub requested_with: Option<String>,
    pub content_type: Option<String>,
}

#[derive(Default)]
struct Lists {
    servers: Value,
    tools: Value,
    prompts: Value,
    resources: Value,
    templates: Value,
    /// Prompt name / resource URI → owning server UUID.
    prompt_owners: HashMap<String, String>,
    resource_owners: HashMap<String, String>,
}

struct Held {
    /// Requests that reached the hold and are waiting.
    waiting: usize,
    release: Arc<Notify>,
}

#[derive(Default)]
struct Stub {
    /// The App's own origin (its `NEXTAUTH_URL`), which its CSRF check allows.
    origin: Mutex<String>,
    lists: Mutex<Lists>,
    /// Memory sessions (`memorySessionId`) that were ended.
    ended_sessions: Mutex<std::collections::HashSet<String>>,
    /// Server UUID → when `GET /api/tools` last started the App's discovery of it.
    discovery_attempts: Mutex<HashMap<String, std::time::Instant>>,
    /// How many discoveries `GET /api/tools` started.
    discoveries: std::sync::atomic::AtomicUsize,
    requests: Mutex<Vec<Recorded>>,
    /// "METHOD /path" (or "/path" for any method) → the status and body to answer instead.
    failures: Mutex<HashMap<String, (u16, Value)>>,
    /// "METHOD /path" → answers held until released.
    holds: Mutex<HashMap<String, Held>>,
    /// "METHOD /path" → the body to answer instead of the default.
    answers: Mutex<HashMap<String, (u16, Value)>>,
}

/// The running stand-in. Dropping it stops it.
pub struct AppStub {
    stub: Arc<Stub>,
    pub addr: SocketAddr,
    stop: Mutex<Option<CancellationToken>>,
    /// While away: the port, bound but not listening (connections are refused, and no other
    /// process can take it before the stand-in comes back).
    away: Mutex<Option<tokio::net::TcpSocket>>,
}

impl Drop for AppStub {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.lock().unwrap().take() {
            stop.cancel();
        }
    }
}

impl AppStub {
    pub async fn start() -> AppStub {
        let stub = Arc::new(Stub::default());
        {
            let mut lists = stub.lists.lock().unwrap();
            lists.servers = json!([]);
            lists.tools = json!([]);
            lists.prompts = json!([]);
            lists.resources = json!([]);
            lists.templates = json!([]);
        }
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)));
        let addr = listener.local_addr().unwrap();
        *stub.origin.lock().unwrap() = format!("http://{addr}");
        let app = AppStub {
            stub,
            addr,
            stop: Mutex::new(None),
            away: Mutex::new(None),
        };
        app.serve(listener);
        app
    }

    /// The base URL to give the proxy.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let stop = CancellationToken::new();
        *self.stop.lock().unwrap() = Some(stop.clone());
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(self.stub.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
    }

    /// Goes away: the port stops answering (connections refused).
    pub async fn go_away(&self) {
        *self.away.lock().unwrap() = Some(socket(self.addr));
        if let Some(stop) = self.stop.lock().unwrap().take() {
            stop.cancel();
        }
        // Wait until the port refuses connections.
        let gone = tokio::time::timeout(crate::support::WAIT, async {
            while tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
        })
        .await;
        assert!(gone.is_ok(), "the stand-in App did not go away");
    }

    /// Comes back on the same port.
    pub fn come_back(&self) {
        let away = self.away.lock().unwrap().take();
        let listener = away.expect("the stand-in went away").listen(1024).unwrap();
        self.serve(listener);
    }

    pub fn set_servers(&self, servers: Value) {
        self.stub.lists.lock().unwrap().servers = servers;
    }

    /// The App's `/api/tools?prefix_tools=true` list (names already prefixed).
    pub fn set_tools(&self, tools: Value) {
        self.stub.lists.lock().unwrap().tools = tools;
    }

    pub fn set_prompts(&self, prompts: Value, owner: &str) {
        let mut lists = self.stub.lists.lock().unwrap();
        for prompt in prompts.as_array().unwrap() {
            lists.prompt_owners.insert(
                prompt["name"].as_str().unwrap().to_owned(),
                owner.to_owned(),
            );
        }
        lists.prompts = prompts;
    }

    pub fn set_resources(&self, resources: Value, templates: Value, owner: &str) {
        let mut lists = self.stub.lists.lock().unwrap();
        for resource in resources.as_array().unwrap() {
            lists.resource_owners.insert(
                resource["uri"].as_str().unwrap().to_owned(),
                owner.to_owned(),
            );
        }
        lists.resources = resources;
        lists.templates = templates;
    }

    /// Makes the App's resolver say `uri` belongs to server `owner`.
    pub fn own_resource(&self, uri: &str, owner: &str) {
        self.stub
            .lists
            .lock()
            .unwrap()
            .resource_owners
            .insert(uri.to_owned(), owner.to_owned());
    }

    /// Answers `route` ("METHOD /path" or "/path") with `status` and `body` until cleared.
    pub fn fail(&self, route: &str, status: u16, body: Value) {
        self.stub
            .failures
            .lock()
            .unwrap()
            .insert(route.to_owned(), (status, body));
    }

    pub fn clear_failures(&self) {
        self.stub.failures.lock().unwrap().clear();
    }

    /// Answers `route` ("METHOD /path") with this status and body instead of the default.
    pub fn answer(&self, route: &str, status: u16, body: Value) {
        self.stub
            .answers
            .lock()
            .unwrap()
            .insert(route.to_owned(), (status, body));
    }

    /// Holds answers to `route` ("METHOD /path") until [`AppStub::release`].
    pub fn hold(&self, route: &str) {
        self.stub.holds.lock().unwrap().insert(
            route.to_owned(),
            Held {
                waiting: 0,
                release: Arc::new(Notify::new()),
            },
        );
    }

    /// How many requests are waiting at the hold on `route`.
    pub fn held(&self, route: &str) -> usize {
        self.stub
            .holds
            .lock()
            .unwrap()
            .get(route)
            .map_or(0, |held| held.waiting)
    }

    /// Lets every held answer of `route` go, and holds no more.
    pub fn release(&self, route: &str) {
        if let Some(held) = self.stub.holds.lock().unwrap().remove(route) {
            held.release.notify_waiters();
        }
    }

    /// How many discoveries `GET /api/tools` started at the App (servers without tools, at most
    /// once per server in five minutes, as the App throttles them).
    pub fn discoveries(&self) -> usize {
        self.stub
            .discoveries
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.stub.requests.lock().unwrap().clone()
    }

    /// The requests to `path` with `method`.
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|request| request.method == method && request.path == path)
            .collect()
    }

    /// Waits until a request to `path` with `method` arrived; returns the latest.
    pub async fn wait_request(&self, method: &str, path: &str) -> Recorded {
        self.wait_requests(method, path, 1).await.pop().unwrap()
    }

    /// Waits until `count` requests to `path` with `method` arrived.
    pub async fn wait_requests(&self, method: &str, path: &str, count: usize) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + crate::support::WAIT;
        loop {
            let found = self.requests_to(method, path);
            if found.len() >= count {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {count} {method} {path} requests within the wait; got: {:#?}",
                self.requests()
                    .iter()
                    .map(|r| format!("{} {}", r.method, r.path))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

fn bind(addr: SocketAddr) -> tokio::net::TcpListener {
    socket(addr).listen(1024).unwrap()
}

/// A socket bound to `addr`, not listening yet; with `SO_REUSEPORT`, so that the port can be held
/// by a second socket of this process while the first still listens (see [`AppStub::go_away`]).
fn socket(addr: SocketAddr) -> tokio::net::TcpSocket {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.set_reuseport(true).unwrap();
    socket.bind(addr).unwrap();
    socket
}

fn reply(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

fn query_value(query: &str, key: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

async fn handle(
    State(stub): State<Arc<Stub>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or("").to_owned();
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or(Value::String(String::from_utf8_lossy(&body).into()))
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let authorization = header("authorization");
    let recorded = Recorded {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        body: body.clone(),
        authorization: authorization.clone(),
        origin: header("origin"),
        referer: header("referer"),
        requested_with: header("x-requested-with"),
        content_type: header("content-type"),
    };
    stub.requests.lock().unwrap().push(recorded.clone());
    let route = format!("{method} {path}");
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();

    // `PATCH /api/documents/{id}` runs `validateCSRF` (lib/csrf-protection.ts) before it looks
    // at the key.
    if method == Method::PATCH
        && matches!(segments.as_slice(), ["api", "documents", _])
        && let Some(refusal) = csrf_refusal(&stub.origin.lock().unwrap(), &recorded)
    {
        return refusal;
    }

    // `/api/resources` checks the key itself, with texts of its own.
    if path == "/api/resources" && authorization.as_deref() != Some(&*format!("Bearer {KEY}")) {
        let error = if authorization
            .as_deref()
            .is_some_and(|value| value.starts_with("Bearer "))
        {
            "Unauthorized: Invalid API key."
        } else {
            "Unauthorized: Missing or invalid API key."
        };
        return reply(401, json!({ "error": error }));
    }
    // The App's `authenticateApiKey` answers.
    match authorization.as_deref() {
        None => {
            return reply(
                401,
                json!({"error": "Authorization header with Bearer token is required"}),
            );
        }
        Some(value) if value != format!("Bearer {KEY}") => {
            return reply(401, json!({"error": "Invalid API key"}));
        }
        Some(_) => {}
    }
    let failure = {
        let failures = stub.failures.lock().unwrap();
        failures
            .get(&route)
            .or_else(|| failures.get(&path))
            .cloned()
    };
    if let Some((status, body)) = failure {
        return reply(status, body);
    }
    let release = {
        let mut holds = stub.holds.lock().unwrap();
        holds.get_mut(&route).map(|held| {
            held.waiting += 1;
            held.release.clone()
        })
    };
    if let Some(release) = release {
        release.notified().await;
    }
    if let Some((status, body)) = stub.answers.lock().unwrap().get(&route).cloned() {
        return reply(status, body);
    }
    let lists = stub.lists.lock().unwrap();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["api", "mcp-servers"]) => reply(200, lists.servers.clone()),
        ("GET", ["api", "tools"]) => {
            // The App starts discovering every active server without tools (at most once per
            // server in five minutes) and says so.
            let mut discovering = Vec::new();
            {
                let mut attempts = stub.discovery_attempts.lock().unwrap();
                for server in lists.servers.as_array().unwrap() {
                    let uuid = server["uuid"].as_str().unwrap_or_default().to_owned();
                    let has_tools = lists
                        .tools
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|tool| tool["_serverUuid"] == json!(uuid));
                    let recent = attempts
                        .get(&uuid)
                        .is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(300));
                    if !has_tools && !recent {
                        attempts.insert(uuid.clone(), std::time::Instant::now());
                        stub.discoveries
                            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        discovering
                            .push(server["name"].as_str().map_or(uuid.clone(), str::to_owned));
                    }
                }
            }
            let prefixed = query_value(&query, "prefix_tools").as_deref() == Some("true");
            let tools: Vec<Value> = lists
                .tools
                .as_array()
                .unwrap()
                .iter()
                .map(|tool| {
                    let mut tool = tool.clone();
                    if !prefixed {
                        let name = tool["name"].as_str().unwrap();
                        let bare = name.split_once("__").map_or(name, |(_, rest)| rest);
                        tool["name"] = json!(bare);
                    }
                    tool
                })
                .collect();
            if discovering.is_empty() {
                return reply(200, json!({ "tools": tools }));
            }
            let mut response = reply(
                200,
                json!({"tools": tools, "message": format!(
                    "Discovery initiated for servers: {}. Full tool list may be available shortly.",
                    discovering.join(", ")
                )}),
            );
            response
                .headers_mut()
                .insert("x-discovery-status", "pending".parse().unwrap());
            response
        }
        ("GET", ["api", "prompts"]) => reply(200, lists.prompts.clone()),
        ("GET", ["api", "resources"]) => reply(200, lists.resources.clone()),
        ("GET", ["api", "resource-templates"]) => reply(200, lists.templates.clone()),
        ("GET", ["api", "resolve", "prompt"]) => {
            let Some(name) = query_value(&query, "name") else {
                return reply(400, json!({"error": "Prompt name is required"}));
            };
            owner_reply(lists.prompt_owners.get(&name), &lists.servers, || {
                format!("Prompt not found or not associated with an active server: {name}")
            })
        }
        ("GET", ["api", "resolve", "resource"]) => {
            let Some(uri) = query_value(&query, "uri") else {
                return reply(400, json!({"error": "URI query parameter is required"}));
            };
            owner_reply(lists.resource_owners.get(&uri), &lists.servers, || {
                format!("Resource URI not found or not associated with the active profile: {uri}")
            })
        }
        ("POST", ["api", "notifications", "mcp-activity"]) => reply(200, json!({"success": true})),
        ("POST", ["api", "notifications", "custom"]) => reply(
            200,
            json!({"success": true, "message": if body["sendEmail"] == json!(true) {
                "Notification created and email sent"
            } else {
                "Notification created successfully"
            }}),
        ),
        ("GET", ["api", "notifications"]) => reply(
            200,
            json!({"success": true, "notifications": [{
                "id": NOTIFICATION_ID, "profile_uuid": "p", "type": "CUSTOM",
                "title": "Build finished", "message": "All green", "read": false,
                "link": "https://plugged.in/notifications", "severity": "SUCCESS", "completed": false,
                "metadata": {}, "created_at": "2026-01-02T03:04:05.000Z", "expires_at": null
            }]}),
        ),
        // The completed route checks ids with the `uuid` package's `validate` (version and
        // variant too), the delete route with a plain pattern; both answer 400 before looking.
        ("PATCH", ["api", "notifications", id, "completed"]) => {
            if !uuid::Uuid::parse_str(id).is_ok_and(|parsed| {
                (1..=8).contains(&parsed.get_version_num())
                    && matches!(parsed.get_variant(), uuid::Variant::RFC4122)
            }) || id.len() != 36
            {
                return reply(400, json!({"error": NOTIFICATION_ID_FORMAT}));
            }
            if *id != NOTIFICATION_ID {
                return reply(
                    404,
                    json!({"error": "Notification not found or not accessible"}),
                );
            }
            reply(
                200,
                json!({"success": true, "message": "Notification completed status toggled"}),
            )
        }
        ("DELETE", ["api", "notifications", id]) => {
            if id.len() != 36 || uuid::Uuid::parse_str(id).is_err() {
                return reply(400, json!({"error": NOTIFICATION_ID_FORMAT}));
            }
            if *id != NOTIFICATION_ID {
                return reply(
                    404,
                    json!({"error": "Notification not found or not accessible"}),
                );
            }
            reply(
                200,
                json!({"success": true, "message": "Notification deleted successfully"}),
            )
        }
        ("POST", ["api", "clipboard"]) => reply(
            200,
            json!({"success": true, "entry": entry(&body, body.get("idx").cloned())}),
        ),
        ("POST", ["api", "clipboard", "push"]) => reply(
            200,
            json!({"success": true, "entry": entry(&body, Some(json!(3)))}),
        ),
        ("POST", ["api", "clipboard", "pop"]) => reply(
            200,
            json!({"success": true, "entry": entry(&json!({"value": "popped", "contentType": "text/plain"}), Some(json!(3)))}),
        ),
        ("GET", ["api", "clipboard"]) => {
            if let Some(name) = query_value(&query, "name") {
                // The entry the App has under any name is text/plain; a contentType filter is
                // part of the lookup.
                let wrong_type = query_value(&query, "contentType")
                    .is_some_and(|content_type| content_type != "text/plain");
                if name == "missing" || wrong_type {
                    return reply(404, json!({"error": "Clipboard entry not found"}));
                }
                return reply(
                    200,
                    json!({"entry": entry(&json!({"name": name, "value": "stored"}), None)}),
                );
            }
            reply(
                200,
                json!({"entries": [entry(&json!({"name": "k", "value": "stored"}), None)], "total": 1,
                       "limit": query_value(&query, "limit").and_then(|l| l.parse::<u64>().ok()).unwrap_or(50),
                       "offset": 0}),
            )
        }
        ("DELETE", ["api", "clipboard"]) => reply(200, json!({"success": true, "deleted": 1})),
        ("POST", ["api", "memory", "sessions"]) => reply(
            201,
            json!({"success": true, "data": {"uuid": MEMORY_SESSION_UUID, "memorySessionId": MEMORY_SESSION_ID}}),
        ),
        // `PATCH /api/memory/sessions/[id]`: 404 for a session the key does not own, else
        // `endSession`'s result as it is — `200 {success: false}` once it has ended.
        ("PATCH", ["api", "memory", "sessions", id]) => {
            if *id != MEMORY_SESSION_ID && *id != MEMORY_SESSION_UUID {
                return reply(404, json!({"success": false, "error": "Session not found"}));
            }
            if !stub
                .ended_sessions
                .lock()
                .unwrap()
                .insert(MEMORY_SESSION_ID.to_owned())
            {
                return reply(
                    200,
                    json!({"success": false, "error": "Session not found or already ended"}),
                );
            }
            reply(
                200,
                json!({"success": true, "data": {"uuid": MEMORY_SESSION_UUID}}),
            )
        }
        ("POST", ["api", "memory", "sessions", id, "observations"]) => {
            if uuid::Uuid::parse_str(id).is_err() || id.len() != 36 {
                return reply(
                    400,
                    json!({"success": false, "error": "Invalid session ID format"}),
                );
            }
            if *id != MEMORY_SESSION_UUID {
                return reply(404, json!({"success": false, "error": "Session not found"}));
            }
            if stub
                .ended_sessions
                .lock()
                .unwrap()
                .contains(MEMORY_SESSION_ID)
            {
                return reply(
                    400,
                    json!({"success": false, "error": "Session is not active"}),
                );
            }
            let content = body["content"].as_str().unwrap_or_default();
            if content.is_empty() || content.chars().count() > 10_000 {
                let message = if content.is_empty() {
                    "String must contain at least 1 character(s)"
                } else {
                    "String must contain at most 10000 character(s)"
                };
                return reply(
                    400,
                    json!({"success": false, "error": "Invalid request body",
                           "details": {"formErrors": [], "fieldErrors": {"content": [message]}}}),
                );
            }
            reply(
                201,
                json!({"success": true, "data": {"uuid": "0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f70"}}),
            )
        }
        // `searchMemories` / `getMemoryDetails`: layer 1 carries `content`, `similarity` and
        // `decayStage`; layer 3 the full row with `currentDecayStage` and the scores.
        ("POST", ["api", "memory", "search"]) => reply(
            200,
            json!({"success": true, "data": [{"uuid": "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d", "ringType": "longterm",
                   "content": "Prefers dark mode", "similarity": 0.82, "decayStage": "compressed", "tokenCount": 4,
                   "tags": ["ui"], "createdAt": "2026-01-02T03:04:05.000Z",
                   "lastAccessedAt": "2026-01-05T03:04:05.000Z"}]}),
        ),
        ("POST", ["api", "memory", "search", "details"]) => reply(
            200,
            json!({"success": true, "data": [{"uuid": "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
                   "profileUuid": "p", "ringType": "longterm",
                   "contentFull": "The user prefers dark mode in every editor.",
                   "contentSummary": "Prefers dark mode", "currentDecayStage": "compressed",
                   "currentTokenCount": 9, "accessCount": 2, "relevanceScore": 0.73,
                   "successScore": 0.9, "reinforcementCount": 4, "isShock": false,
                   "tags": ["ui"], "metadata": {}, "createdAt": "2026-01-02T03:04:05.000Z",
                   "updatedAt": "2026-01-04T03:04:05.000Z"}]}),
        ),
        ("POST", ["api", "documents", "ai"]) => reply(
            201,
            json!({"success": true, "documentId": "7c6d5e4f-3a2b-4c1d-9e8f-7a6b5c4d3e2f",
                   "message": "Document successfully created", "url": "/library/7c6d5e4f-3a2b-4c1d-9e8f-7a6b5c4d3e2f"}),
        ),
        ("GET", ["api", "documents"]) => {
            // The one document is private; `visibility` filters (default `all`).
            let shown = query_value(&query, "visibility")
                .is_none_or(|visibility| visibility == "all" || visibility == "private");
            let documents: Vec<Value> = shown.then(document).into_iter().collect();
            let total = documents.len();
            reply(
                200,
                json!({"documents": documents, "total": total, "limit": 20, "offset": 0}),
            )
        }
        ("POST", ["api", "documents", "search"]) => {
            let mut hit = document();
            hit["snippet"] = json!("…the **release** notes…");
            hit["relevanceScore"] = json!(0.875);
            reply(
                200,
                json!({"results": [hit], "total": 1, "limit": 10, "offset": 0, "hasMore": false}),
            )
        }
        ("GET", ["api", "documents", id]) => {
            if *id != "7c6d5e4f-3a2b-4c1d-9e8f-7a6b5c4d3e2f" {
                return reply(404, json!({"error": "Document not found"}));
            }
            let mut document = document();
            if query_value(&query, "includeContent").as_deref() == Some("true") {
                document["content"] = json!("# Release notes\nAll green.");
            }
            reply(200, document)
        }
        ("PATCH", ["api", "documents", id]) => {
            if *id != "7c6d5e4f-3a2b-4c1d-9e8f-7a6b5c4d3e2f" {
                return reply(404, json!({"error": "Document not found or access denied"}));
            }
            reply(
                200,
                json!({"success": true, "documentId": id, "version": 2, "fileWritten": true,
                       "message": "Document updated successfully"}),
            )
        }
        ("POST", ["api", "rag", "query"]) => reply(
            200,
            json!({"answer": "The release is green.", "sources": ["Release notes"],
                   "documentIds": ["7c6d5e4f-3a2b-4c1d-9e8f-7a6b5c4d3e2f"]}),
        ),
        ("POST", ["api", "discover", target]) => {
            if *target != "all" && uuid::Uuid::parse_str(target).is_err() {
                return reply(400, json!({"error": "Invalid discovery target"}));
            }
            reply(
                200,
                json!({"message": "Discovery process initiated for all active servers. Results will be available shortly."}),
            )
        }
        _ => reply(404, json!({"error": "Not found"})),
    }
}

/// The notification the stand-in lists, and the memory session it starts.
pub const NOTIFICATION_ID: &str = "3f8a1c2e-4b5d-4e6f-8a9b-0c1d2e3f4a5b";
pub const MEMORY_SESSION_UUID: &str = "9b2f6d1e-0a4c-4e8b-9f3a-2c5d7e9f1a3b";
pub const MEMORY_SESSION_ID: &str = "ms_V1StGXR8_Z5jdHi6B-myT";
const NOTIFICATION_ID_FORMAT: &str =
    "Invalid notification ID format. Please use the UUID from the notification list.";

/// The App's CSRF check (`validateCSRF`): a state-changing request needs an `Origin` (else a
/// `Referer`) of the App's own origin or plugged.in's, and a JSON one `X-Requested-With`.
fn csrf_refusal(own_origin: &str, request: &Recorded) -> Option<Response> {
    let allowed = |origin: &str| {
        origin == own_origin
            || [
                "plugged.in",
                "www.plugged.in",
                "rc1.plugged.in",
                "api.plugged.in",
            ]
            .iter()
            .any(|domain| {
                origin == format!("https://{domain}") || origin == format!("http://{domain}")
            })
    };
    let origin_ok = match (&request.origin, &request.referer) {
        (Some(origin), _) => allowed(origin),
        (None, Some(referer)) => {
            url::Url::parse(referer).is_ok_and(|url| allowed(&url.origin().ascii_serialization()))
        }
        (None, None) => false,
    };
    if !origin_ok {
        return Some(reply(
            403,
            json!({"error": "Invalid request origin", "code": "CSRF_INVALID_ORIGIN"}),
        ));
    }
    let json_body = request
        .content_type
        .as_deref()
        .is_some_and(|content_type| content_type.contains("application/json"));
    if json_body && request.requested_with.is_none() {
        return Some(reply(
            403,
            json!({"error": "Missing required header for JSON requests", "code": "CSRF_MISSING_HEADER"}),
        ));
    }
    None
}

/// `/api/resolve/*`: the owner's partial config, or the App's 404.
fn owner_reply(owner: Option<&String>, servers: &Value, missing: impl Fn() -> String) -> Response {
    let Some(owner) = owner else {
        return reply(404, json!({"error": missing()}));
    };
    let server = servers
        .as_array()
        .unwrap()
        .iter()
        .find(|server| server["uuid"] == json!(owner))
        .cloned()
        .unwrap_or_else(|| json!({"uuid": owner}));
    reply(
        200,
        json!({"uuid": server["uuid"], "name": server["name"], "type": server["type"],
               "command": server["command"], "args": server["args"], "env": server["env"], "url": server["url"]}),
    )
}

fn entry(body: &Value, idx: Option<Value>) -> Value {
    let value = body["value"].as_str().unwrap_or("").to_owned();
    json!({
        "uuid": "e1d2c3b4-a5f6-4e7d-8c9b-0a1b2c3d4e5f",
        "name": body.get("name").cloned().unwrap_or(Value::Null),
        "idx": idx.unwrap_or(Value::Null),
        "value": value,
        "contentType": body.get("contentType").cloned().unwrap_or(json!("text/plain")),
        "encoding": body.get("encoding").cloned().unwrap_or(json!("utf-8")),
        "sizeBytes": value.len(),
        "visibility": "private",
        "createdByTool": body.get("createdByTool").cloned().unwrap_or(Value::Null),
        "createdByModel": null,
        "source": "mcp",
        "createdAt": "2026-01-02T03:04:05.000Z",
        "updatedAt": "2026-01-02T03:04:05.000Z",
        "expiresAt": "2026-01-03T03:04:05.000Z",
    })
}

fn document() -> Value {
    json!({
        "id": "7c6d5e4f-3a2b-4c1d-9e8f-7a6b5c4d3e2f", "title": "Release notes", "description": "What shipped",
        "fileName": "release-notes.md", "fileSize": 26, "mimeType": "text/markdown", "tags": ["release"],
        "source": "ai_generated", "visibility": "private", "version": 1,
        "createdAt": "2026-01-02T03:04:05.000Z", "updatedAt": "2026-01-02T03:04:05.000Z",
        "aiMetadata": {"model": {"name": "claude", "provider": "anthropic"}}, "modelAttributions": []
    })
}
