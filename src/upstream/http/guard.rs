//! The guard in front of the MCP endpoint. In order: the HTTP method (405), the header size (431),
//! the `Host` (400 for several, 403 for a foreign one) and the `Origin` (403 for several or a
//! foreign one) — DNS-rebinding protection, which `/health` shares ([`Guard::health_access`]) —,
//! the `MCP-Protocol-Version` header (400), the body size (413, from `Content-Length` before
//! anything is read) and JSON (400, `-32700`), bearer auth and the session's owner (401, 404), the resumption of a
//! request stream that ended (405, see [`BoundedSessions::stream_ended`]), the session a DELETE
//! names (404), rate limits (429, `limits.rs`). It reads a POST body once and hands the same bytes
//! on. Clients that accept only JSON get the final JSON-RPC message of the SSE stream as a JSON
//! body. Every refusal has a JSON-RPC body; a DELETE that ended a session gets the original's
//! `200 {"success":true,"message":"Session terminated"}` instead of rmcp's empty 202.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use rmcp::model::ProtocolVersion;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

use super::limits::{Key, Kind, RateLimits};
use super::sessions::{Binding, BoundedSessions, CREATOR, Creator};
use crate::cli::Cors;
use crate::secret::Secret;

/// The most header bytes a request may carry.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;
/// A request body must arrive within this time.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The JSON-RPC code of the original's auth failure.
const UNAUTHORIZED: i64 = -32001;

/// The client's address, put on every request by the accept loop.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientAddr(pub(crate) SocketAddr);

/// The guard's settings.
pub struct GuardConfig {
    pub require_auth: bool,
    /// Accepted bearer tokens (never logged).
    pub tokens: Vec<Secret>,
    /// Tool calls per minute per token (or client address); 0 is off.
    pub rate_limit_tools: u32,
    /// Other requests per minute per token (or client address); 0 is off.
    pub rate_limit_requests: u32,
    /// `None`: any origin; `Some(list)`: only these (`scheme://host[:port]`, port `*` for any).
    pub allowed_origins: Option<Vec<String>>,
    pub max_body_bytes: usize,
    /// Always answer a session's requests on an SSE stream (rmcp's way), never with the JSON
    /// body the guard makes of a quick answer (`prefer_json`).
    pub stream_answers: bool,
}

/// The SHA-256 of a bearer token.
pub(crate) type TokenHash = [u8; 32];

/// The `Host` headers accepted (DNS-rebinding protection).
pub(crate) struct Hosts {
    /// `None`: any (bound beyond loopback without `--allowed-host`).
    allowed: Option<Vec<Authority>>,
}

/// A host, lowercase and without brackets, and a port when one is given.
#[derive(Debug, PartialEq, Eq)]
struct Authority {
    host: String,
    port: Option<u16>,
}

impl Authority {
    fn parse(text: &str) -> Option<Authority> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let authority = axum::http::uri::Authority::try_from(text).ok()?;
        Some(Authority {
            host: authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase(),
            port: authority.port_u16(),
        })
    }
}

impl Hosts {
    /// `allowed` as `host` or `host:port` entries; none means any host. Entries that are not a
    /// host match nothing: a list of only such entries allows no host, never every host.
    pub(crate) fn new<S: AsRef<str>>(allowed: impl IntoIterator<Item = S>) -> Hosts {
        let mut given = false;
        let allowed: Vec<Authority> = allowed
            .into_iter()
            .inspect(|_| given = true)
            .filter_map(|entry| {
                let entry = entry.as_ref();
                Authority::parse(entry).or_else(|| {
                    // A bare IPv6 address (`::1`) is not an authority until bracketed.
                    Authority::parse(&format!("[{entry}]"))
                })
            })
            .collect();
        Hosts {
            allowed: given.then_some(allowed),
        }
    }

    fn allows(&self, host: &Authority) -> bool {
        let Some(allowed) = &self.allowed else {
            return true;
        };
        allowed.iter().any(|entry| {
            entry.host == host.host && entry.port.is_none_or(|port| Some(port) == host.port)
        })
    }

    /// For `/health`: also an IP address or `localhost`, as load balancers and container health
    /// checks send. A DNS-rebinding page can only send a name it controls.
    fn allows_probe(&self, host: &Authority) -> bool {
        self.allows(host) || host.host == "localhost" || host.host.parse::<IpAddr>().is_ok()
    }
}

pub(crate) struct Guard {
    config: GuardConfig,
    cors: Cors,
    hosts: Hosts,
    tokens: Vec<TokenHash>,
    pub(crate) limits: RateLimits,
    /// The sessions (none when stateless): which exist, which request streams ended.
    sessions: Option<Arc<BoundedSessions>>,
    in_flight: AtomicUsize,
    idle: Notify,
}

fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

fn rpc_error(status: StatusCode, id: Value, code: i64, message: impl Into<String>) -> Response {
    let body =
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}});
    (status, axum::Json(body)).into_response()
}

/// What the guard learned from a POST body.
struct Parsed {
    /// The first message's id (for error bodies).
    id: Value,
    methods: Vec<String>,
}

impl Guard {
    pub(crate) fn new(
        config: GuardConfig,
        cors: Cors,
        hosts: Hosts,
        sessions: Option<Arc<BoundedSessions>>,
    ) -> Guard {
        let tokens = config
            .tokens
            .iter()
            .map(|token| hash(token.expose()))
            .collect();
        let limits = RateLimits::new(config.rate_limit_tools, config.rate_limit_requests);
        Guard {
            config,
            cors,
            hosts,
            tokens,
            limits,
            sessions,
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
        }
    }

    pub(crate) fn requires_auth(&self) -> bool {
        self.config.require_auth
    }

    pub(crate) fn auth_summary(&self) -> String {
        if self.config.require_auth {
            format!("bearer auth required, {} token(s)", self.tokens.len())
        } else {
            "no auth".to_owned()
        }
    }

    /// Waits until no request is in flight, or the grace period ends.
    pub(crate) async fn drain(&self, grace: Duration) {
        let drained = tokio::time::timeout(grace, async {
            loop {
                let idle = self.idle.notified();
                tokio::pin!(idle);
                // Registered before the check, so a wake-up between the two is not lost.
                idle.as_mut().enable();
                if self.in_flight.load(Ordering::Acquire) == 0 {
                    return;
                }
                idle.await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                requests = self.in_flight.load(Ordering::Acquire),
                "grace period over with requests still in flight"
            );
        }
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let Some(allowed) = &self.config.allowed_origins else {
            return true;
        };
        let Ok(url) = url::Url::parse(origin) else {
            return false;
        };
        let port = url.port_or_known_default();
        allowed.iter().any(|entry| {
            if entry == "*" {
                return true;
            }
            let (base, any_port) = match entry.strip_suffix(":*") {
                Some(base) => (base, true),
                None => (entry.as_str(), false),
            };
            let Ok(allowed) = url::Url::parse(base) else {
                return false;
            };
            allowed.scheme() == url.scheme()
                && allowed.host_str() == url.host_str()
                && (any_port || allowed.port_or_known_default() == port)
        })
    }

    /// The `/mcp` rules for the JSON API (`api.rs`): an allowed `Origin` when there is one, and
    /// a known bearer token when auth is required.
    pub(crate) fn check_api(&self, headers: &HeaderMap) -> Result<(), (StatusCode, String)> {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !self.origin_allowed(origin) {
                return Err((
                    StatusCode::FORBIDDEN,
                    format!("origin {origin} is not allowed (see --allowed-origin)"),
                ));
            }
        }
        if self.config.require_auth {
            match self.token_of(headers) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err((
                        StatusCode::UNAUTHORIZED,
                        "a bearer token is required".into(),
                    ));
                }
                Err(why) => return Err((StatusCode::UNAUTHORIZED, why.to_owned())),
            }
        }
        Ok(())
    }

    /// The `Host` and `Origin` checks, on `/mcp` and on `/health` (`probe`: an IP address or
    /// `localhost` passes too). A request with several of either is refused: which one a
    /// server or a proxy in front of it believes is anyone's guess.
    fn check_host_and_origin(&self, headers: &HeaderMap, probe: bool) -> Result<(), Box<Response>> {
        let mut hosts = headers.get_all(header::HOST).iter();
        match (hosts.next(), hosts.next()) {
            (Some(_), Some(_)) => {
                return Err(Box::new(rpc_error(
                    StatusCode::BAD_REQUEST,
                    Value::Null,
                    -32600,
                    "several Host headers: a request carries exactly one",
                )));
            }
            (Some(host), None) => {
                let text = host.to_str().unwrap_or("");
                let allowed = Authority::parse(text).is_some_and(|host| {
                    if probe {
                        self.hosts.allows_probe(&host)
                    } else {
                        self.hosts.allows(&host)
                    }
                });
                if !allowed {
                    return Err(Box::new(rpc_error(
                        StatusCode::FORBIDDEN,
                        Value::Null,
                        -32600,
                        format!(
                            "Host {} is not allowed (see --allowed-host)",
                            String::from_utf8_lossy(host.as_bytes())
                        ),
                    )));
                }
            }
            (None, _) => {
                if self.hosts.allowed.is_some() {
                    return Err(Box::new(rpc_error(
                        StatusCode::BAD_REQUEST,
                        Value::Null,
                        -32600,
                        "missing Host header",
                    )));
                }
            }
        }
        let mut origins = headers.get_all(header::ORIGIN).iter();
        match (origins.next(), origins.next()) {
            (Some(_), Some(_)) => Err(Box::new(rpc_error(
                StatusCode::FORBIDDEN,
                Value::Null,
                -32600,
                "several Origin headers: a request carries one at most",
            ))),
            (Some(origin), None) => {
                let text = origin.to_str().unwrap_or("");
                if self.origin_allowed(text) {
                    Ok(())
                } else {
                    Err(Box::new(rpc_error(
                        StatusCode::FORBIDDEN,
                        Value::Null,
                        -32600,
                        format!(
                            "origin {} is not allowed (see --allowed-origin)",
                            String::from_utf8_lossy(origin.as_bytes())
                        ),
                    )))
                }
            }
            (None, _) => Ok(()),
        }
    }

    /// Who may see what of `/health`: the same `Host` and `Origin` rules as `/mcp` (IP addresses
    /// and `localhost` pass, for probes); with `--require-api-auth`, the details only with a
    /// valid token (a wrong one is 401), the minimal answer without one. Without auth, anyone
    /// who may call `/mcp` — which tells more — sees the details.
    pub(crate) fn health_access(&self, headers: &HeaderMap) -> Result<HealthView, Box<Response>> {
        self.check_host_and_origin(headers, true)?;
        if !self.config.require_auth {
            return Ok(HealthView::Details);
        }
        match self.token_of(headers) {
            Ok(Some(_)) => Ok(HealthView::Details),
            Ok(None) => Ok(HealthView::Minimal),
            Err(_) => Err(Box::new(unauthorized(Value::Null))),
        }
    }

    fn token_of(&self, headers: &HeaderMap) -> Result<Option<TokenHash>, &'static str> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Ok(None);
        };
        let value = value
            .to_str()
            .map_err(|_| "malformed Authorization header")?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or("the Authorization header must be `Bearer <token>`")?;
        let presented = hash(token);
        // Compare against every token, in constant time each, without stopping early.
        let known = self.tokens.iter().fold(false, |found, known| {
            found | bool::from(known.ct_eq(&presented))
        });
        if known {
            Ok(Some(presented))
        } else {
            Err("unknown token")
        }
    }
}

/// What `/health` shows a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HealthView {
    /// `{"status": "ok", "transport": …}`: what health checks read.
    Minimal,
    /// Servers, states, errors, sessions, counters.
    Details,
}

/// Decrements the in-flight count when a request ends, however it ends: it lives until the
/// response body (an SSE stream, often) has been sent or dropped.
struct InFlight(std::sync::Arc<Guard>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// A body the guard refuses: the JSON-RPC code, the id if one was read, and why.
#[derive(Debug)]
struct Refusal {
    code: i64,
    id: Value,
    message: String,
}

/// What the guard reads of one message: its `id` and `method`; everything else (the params) is
/// skipped without being built, since rmcp parses the body for real.
struct Head {
    id: Option<Value>,
    method: Option<Value>,
}

impl<'de> serde::Deserialize<'de> for Head {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Head, D::Error> {
        enum Key {
            Id,
            Method,
            Other,
        }
        impl<'de> serde::Deserialize<'de> for Key {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
                struct KeyVisitor;
                impl serde::de::Visitor<'_> for KeyVisitor {
                    type Value = Key;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a member name")
                    }
                    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Key, E> {
                        Ok(match key {
                            "id" => Key::Id,
                            "method" => Key::Method,
                            _ => Key::Other,
                        })
                    }
                }
                deserializer.deserialize_str(KeyVisitor)
            }
        }
        struct HeadVisitor;
        impl<'de> serde::de::Visitor<'de> for HeadVisitor {
            type Value = Head;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON-RPC message object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Head, A::Error> {
                let mut head = Head {
                    id: None,
                    method: None,
                };
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Id => head.id = Some(map.next_value()?),
                        Key::Method => head.method = Some(map.next_value()?),
                        Key::Other => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(head)
            }
        }
        deserializer.deserialize_map(HeadVisitor)
    }
}

/// Reads the `id` of the first message and every `method`, without building the messages; a body
/// that is not JSON or not JSON-RPC objects takes the checking path for its exact refusal.
fn parse_body(bytes: &[u8]) -> Result<Parsed, Refusal> {
    let batch = bytes
        .iter()
        .find(|byte| !byte.is_ascii_whitespace())
        .is_some_and(|byte| *byte == b'[');
    let heads = if batch {
        serde_json::from_slice::<Vec<Head>>(bytes)
    } else {
        serde_json::from_slice::<Head>(bytes).map(|head| vec![head])
    };
    let Ok(heads) = heads else {
        return parse_body_checked(bytes);
    };
    let id = heads
        .first()
        .and_then(|head| head.id.clone())
        .unwrap_or(Value::Null);
    let methods = heads
        .into_iter()
        .filter_map(|head| match head.method {
            Some(Value::String(method)) => Some(method),
            _ => None,
        })
        .collect();
    Ok(Parsed { id, methods })
}

fn parse_body_checked(bytes: &[u8]) -> Result<Parsed, Refusal> {
    let value: Value = serde_json::from_slice(bytes).map_err(|error| Refusal {
        code: -32700,
        id: Value::Null,
        message: format!("parse error: {error}"),
    })?;
    let messages: Vec<&Value> = match &value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let id = messages
        .first()
        .and_then(|message| message.get("id"))
        .cloned()
        .unwrap_or(Value::Null);
    let mut methods = Vec::new();
    for message in &messages {
        if !message.is_object() {
            return Err(Refusal {
                code: -32600,
                id,
                message: "invalid request: a JSON-RPC message must be a JSON object".into(),
            });
        }
        if let Some(method) = message.get("method").and_then(Value::as_str) {
            methods.push(method.to_owned());
        }
    }
    Ok(Parsed { id, methods })
}

/// Methods anyone may call without a token: the handshake and liveness.
fn needs_no_auth(method: &str) -> bool {
    matches!(
        method,
        "initialize" | "ping" | "server/discover" | "notifications/initialized"
    )
}

fn accepts_sse(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.to_ascii_lowercase().contains("text/event-stream"))
}

/// The guard middleware on `/mcp` and `/`.
pub(crate) async fn check(
    State(guard): State<std::sync::Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    if !matches!(method, Method::POST | Method::GET | Method::DELETE) {
        let mut response = rpc_error(
            StatusCode::METHOD_NOT_ALLOWED,
            Value::Null,
            -32600,
            format!("method {method} is not allowed here; use POST, GET or DELETE"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
        return response;
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return rpc_error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Value::Null,
            -32600,
            format!("request headers over the limit of {MAX_HEADER_BYTES} bytes"),
        );
    }
    if let Err(refused) = guard.check_host_and_origin(request.headers(), false) {
        return *refused;
    }
    let unknown_version = request
        .headers()
        .get("mcp-protocol-version")
        .map(|value| value.to_str().unwrap_or("").to_owned())
        .filter(|version| {
            !ProtocolVersion::KNOWN_VERSIONS
                .iter()
                .any(|known| known.as_str() == version)
        });

    let (mut parts, body) = request.into_parts();
    // A body announced over the limit is refused before a byte of it is read.
    let announced = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if announced.is_some_and(|length| length > guard.config.max_body_bytes as u64) {
        return body_too_large(guard.config.max_body_bytes);
    }
    let (bytes, parsed) = if method == Method::POST {
        let limited = http_body_util::Limited::new(body, guard.config.max_body_bytes);
        let collected = match tokio::time::timeout(BODY_READ_TIMEOUT, limited.collect()).await {
            Err(_) => {
                return rpc_error(
                    StatusCode::REQUEST_TIMEOUT,
                    Value::Null,
                    -32600,
                    format!(
                        "the request body did not arrive within {}s",
                        BODY_READ_TIMEOUT.as_secs()
                    ),
                );
            }
            Ok(Err(error)) => {
                let too_large = error
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some();
                return if too_large {
                    body_too_large(guard.config.max_body_bytes)
                } else {
                    rpc_error(
                        StatusCode::BAD_REQUEST,
                        Value::Null,
                        -32600,
                        format!("cannot read the body: {error}"),
                    )
                };
            }
            Ok(Ok(collected)) => collected.to_bytes(),
        };
        let parsed = match parse_body(&collected) {
            Ok(parsed) => parsed,
            Err(refusal) => {
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    refusal.id,
                    refusal.code,
                    refusal.message,
                );
            }
        };
        (collected, Some(parsed))
    } else {
        (Bytes::new(), None)
    };
    let id = parsed.as_ref().map_or(Value::Null, |p| p.id.clone());
    if let Some(version) = unknown_version {
        // The error of the 2026-07-28 revision (-32022, with the versions we speak), on the
        // request's id.
        let requested: ProtocolVersion = match serde_json::from_value(Value::String(version)) {
            Ok(requested) => requested,
            Err(error) => {
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    id,
                    -32600,
                    format!("bad MCP-Protocol-Version: {error}"),
                );
            }
        };
        let error = rmcp::ErrorData::unsupported_protocol_version(
            requested,
            ProtocolVersion::KNOWN_VERSIONS,
        );
        let body = json!({"jsonrpc": "2.0", "id": id, "error": error});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    let methods: Vec<String> = parsed.map(|p| p.methods).unwrap_or_default();

    // Auth, and the session's owner.
    let token = match guard.token_of(&parts.headers) {
        Ok(token) => token,
        Err(reason) if guard.config.require_auth => {
            tracing::debug!("request refused: {reason}");
            return unauthorized(id);
        }
        Err(_) => None,
    };
    let session = parts
        .headers
        .get("mcp-session-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    if guard.config.require_auth {
        let exempt = method == Method::POST
            && !methods.is_empty()
            && methods.iter().all(|m| needs_no_auth(m));
        if token.is_none() && !exempt {
            return unauthorized(id);
        }
        // Another token's session is not there for this one (nothing is changed yet; the
        // binding of an unowned session waits until the request passed the rate limit).
        if let (Some(session), Some(token), Some(sessions)) = (&session, &token, &guard.sessions)
            && sessions.owned_by_another(session, token)
        {
            return rpc_error(StatusCode::NOT_FOUND, id, -32001, "Session not found");
        }
    }

    if let (Some(sessions), Some(session)) = (&guard.sessions, &session) {
        // A resumption of a request's stream that has ended: nothing will ever come on it, and
        // an empty 200 would have the TypeScript SDK ask again every few seconds (see
        // `BoundedSessions::stream_ended`). 405 is what the SDKs take for "no stream here".
        if method == Method::GET
            && let Some(last_event_id) = parts
                .headers
                .get("last-event-id")
                .and_then(|value| value.to_str().ok())
            && sessions.stream_ended(session, last_event_id)
        {
            tracing::debug!(
                session = %session,
                last_event_id,
                "resumption of a request stream that ended refused"
            );
            let mut response = rpc_error(
                StatusCode::METHOD_NOT_ALLOWED,
                Value::Null,
                -32600,
                format!(
                    "the stream of event {last_event_id} has ended (its request was answered or \
                     cancelled): there is nothing to resume"
                ),
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        // rmcp ends an unknown session without a word (202); the client should learn it was
        // not there, as for any other request.
        if method == Method::DELETE && !sessions.knows(session) {
            return rpc_error(
                StatusCode::NOT_FOUND,
                Value::Null,
                -32001,
                "Session not found",
            );
        }
    }

    // Rate limits: per token, or per client address without one.
    let tool_call = methods.iter().any(|m| m == "tools/call");
    let counted =
        method == Method::POST && methods.iter().any(|m| !m.starts_with("notifications/"));
    if counted {
        let key = match (&token, parts.extensions.get::<ClientAddr>()) {
            (Some(token), _) => Key::Token(*token),
            (None, Some(addr)) => Key::address(addr.0.ip()),
            (None, None) => Key::address(Ipv4Addr::UNSPECIFIED.into()),
        };
        let kind = if tool_call {
            Kind::ToolCalls
        } else {
            Kind::Requests
        };
        if let Err(refusal) = guard.limits.check(key, kind) {
            let body = json!({"jsonrpc": "2.0", "id": id, "error": {
                "code": -32000,
                "message": refusal.message(),
                "data": {
                    "limit": refusal.limit,
                    "per": "minute",
                    "counts": if tool_call { "toolCalls" } else { "requests" },
                    "retryAfterSeconds": refusal.retry_after_secs(),
                },
            }});
            let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(refusal.retry_after_secs()),
            );
            return response;
        }
    }

    // A session used with a token for the first time becomes that token's. Only a session that
    // exists is bound: an id a client made up is not remembered.
    if guard.config.require_auth
        && let (Some(session), Some(token), Some(sessions)) = (&session, &token, &guard.sessions)
        && sessions.bind(session, token).await == Binding::Foreign
    {
        return rpc_error(StatusCode::NOT_FOUND, id, -32001, "Session not found");
    }

    // JSON-only clients: rmcp answers stateful requests on SSE; we unwrap the final message.
    let json_only = method == Method::POST && !accepts_sse(&parts.headers);
    // Clients that take both get a quick answer as JSON (see `prefer_json`).
    let json_welcome = method == Method::POST
        && !json_only
        && !guard.config.stream_answers
        && accepts_json(&parts.headers);
    if method == Method::POST {
        parts.headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
    }

    // GET streams live as long as the session; only requests count as in flight.
    let in_flight = (method != Method::GET).then(|| {
        guard.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(guard.clone())
    });
    // 2025-11-25 core tasks take the handler's raw path (`router::core_tasks`).
    let bytes = crate::wire::core_tasks::rename_post(&mut parts.headers, bytes);
    // Who creates the session, should this request create one (an `initialize`).
    let creator = Creator {
        owner: token,
        anonymous: guard.config.require_auth && token.is_none(),
    };
    let mut response = CREATOR
        .scope(
            creator,
            next.run(Request::from_parts(parts, Body::from(bytes))),
        )
        .await;
    if crate::wire::core_tasks::answers_need_unstash(&methods) {
        response = crate::wire::core_tasks::unstash_response(response).await;
    }
    if json_welcome && response.status() == StatusCode::OK && is_sse(response.headers()) {
        response = prefer_json(response).await;
    }
    // A stream holds the request in flight until it ends; any other answer is complete.
    let in_flight = in_flight.filter(|_| is_sse(response.headers()));
    let response = match in_flight {
        Some(in_flight) => response.map(|body| {
            Body::from_stream(futures::StreamExt::map(
                body.into_data_stream(),
                move |chunk| {
                    let _held = &in_flight;
                    chunk
                },
            ))
        }),
        None => response,
    };

    if method == Method::DELETE && response.status() == StatusCode::ACCEPTED {
        return (
            StatusCode::OK,
            axum::Json(json!({"success": true, "message": "Session terminated"})),
        )
            .into_response();
    }
    if json_only && is_sse(response.headers()) {
        return sse_to_json(response).await;
    }
    if response.status().is_client_error() && !is_json(response.headers()) {
        return as_json_rpc_error(response, id).await;
    }
    response
}

fn is_sse(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"))
}

fn accepts_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| {
            let value = value.to_ascii_lowercase();
            value.contains("application/json") || value.contains("*/*")
        })
}

/// How long the guard waits for a session's answer to come as the first message of its stream.
const JSON_ANSWER_WAIT: Duration = Duration::from_millis(100);

/// What the start of an SSE body holds.
enum FirstMessage {
    /// No message yet (only priming events or comments so far).
    NotYet,
    /// The first message is a JSON-RPC response or error: these bytes.
    Answer(std::ops::Range<usize>),
    /// The first message is a notification or a request: the stream must stay a stream.
    Other,
}

/// Finds the first message (an event with data) in the complete events at the start of `text`.
fn first_message(text: &[u8]) -> FirstMessage {
    let mut start = 0;
    while let Some(end) = find(&text[start..], b"\n\n").map(|at| start + at) {
        let mut data: Option<std::ops::Range<usize>> = None;
        let mut line_start = start;
        for line in text[start..end].split(|byte| *byte == b'\n') {
            let line_range = line_start..line_start + line.len();
            line_start += line.len() + 1;
            let Some(rest) = line.strip_prefix(b"data:") else {
                continue;
            };
            if data.is_some() {
                // A message over several data lines: rare (rmcp writes one line); keep it a stream.
                return FirstMessage::Other;
            }
            let skip = usize::from(rest.first() == Some(&b' '));
            data = Some(line_range.end - rest.len() + skip..line_range.end);
        }
        if let Some(data) = data.filter(|data| !data.is_empty()) {
            return match serde_json::from_slice::<Head>(&text[data.clone()]) {
                Ok(head) if head.method.is_none() => FirstMessage::Answer(data),
                _ => FirstMessage::Other,
            };
        }
        start = end + 2;
    }
    FirstMessage::NotYet
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// rmcp answers every request of a session on an SSE stream of its own (headers, a priming
/// event, then the messages). When the first message is the answer and it comes within
/// [`JSON_ANSWER_WAIT`], no other message can follow it on that stream (rmcp closes a request's
/// stream with its answer), so the client gets the answer as a JSON body: one write instead of
/// a stream. A progress notification or a server request first, or a slow answer, leaves the
/// stream as it is (what was read of it goes first).
async fn prefer_json(response: Response) -> Response {
    let (mut parts, mut body) = response.into_parts();
    let mut seen: Vec<u8> = Vec::new();
    let deadline = tokio::time::Instant::now() + JSON_ANSWER_WAIT;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(_)) | None) | Err(_) => break,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen.extend_from_slice(&data);
        match first_message(&seen) {
            FirstMessage::NotYet => {}
            FirstMessage::Other => break,
            FirstMessage::Answer(range) => {
                parts.headers.remove(header::CONTENT_LENGTH);
                parts.headers.remove(header::CACHE_CONTROL);
                parts.headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                let answer = Bytes::copy_from_slice(&seen[range]);
                return Response::from_parts(parts, Body::from(answer));
            }
        }
    }
    let read = futures::stream::once(async move { Ok::<_, axum::Error>(Bytes::from(seen)) });
    let rest = body.into_data_stream();
    Response::from_parts(
        parts,
        Body::from_stream(futures::StreamExt::chain(read, rest)),
    )
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"))
}

/// rmcp answers some refusals (unknown session, bad Accept) in plain text; clients get a JSON-RPC
/// error body with the same status and text.
async fn as_json_rpc_error(response: Response, id: Value) -> Response {
    let (parts, body) = response.into_parts();
    let text = match body.collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes())
            .trim()
            .to_owned(),
        Err(_) => String::new(),
    };
    let text = if text.is_empty() {
        parts
            .status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_owned()
    } else {
        text
    };
    // -32001 for an unknown session, as the official SDKs answer it.
    let code = if parts.status == StatusCode::NOT_FOUND {
        -32001
    } else {
        -32600
    };
    let mut refused = rpc_error(parts.status, id, code, text);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            refused.headers_mut().insert(name.clone(), value.clone());
        }
    }
    refused
}

fn body_too_large(max: usize) -> Response {
    rpc_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        Value::Null,
        -32600,
        format!("request body over the limit of {max} bytes"),
    )
}

fn unauthorized(id: Value) -> Response {
    let mut response = rpc_error(
        StatusCode::UNAUTHORIZED,
        id,
        UNAUTHORIZED,
        "Unauthorized: Invalid or missing API key",
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Reads an SSE response to its end and answers with its last JSON-RPC response as JSON.
async fn sse_to_json(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return rpc_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                Value::Null,
                -32603,
                format!("response stream failed: {error}"),
            );
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut last = None;
    let mut data = String::new();
    for line in text.lines().chain(std::iter::once("")) {
        if let Some(rest) = line.strip_prefix("data:") {
            data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
        } else if line.is_empty() && !data.is_empty() {
            if let Ok(message) = serde_json::from_str::<Value>(&data)
                && (message.get("result").is_some() || message.get("error").is_some())
            {
                last = Some(message);
            }
            data.clear();
        }
    }
    let Some(message) = last else {
        return rpc_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            Value::Null,
            -32603,
            "no response on the stream",
        );
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (parts, Body::from(message.to_string())).into_response()
}

/// The CORS middleware on every route: the original's permissive headers, `OPTIONS` answered.
pub(crate) async fn cors(
    State(guard): State<std::sync::Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    if guard.cors == Cors::Off {
        return next.run(request).await;
    }
    let mut response = if request.method() == Method::OPTIONS {
        (StatusCode::OK, "OK").into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "Content-Type, Authorization, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name",
        ),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Mcp-Session-Id, Mcp-Protocol-Version"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(origins: Option<Vec<&str>>) -> Guard {
        Guard::new(
            GuardConfig {
                require_auth: true,
                tokens: vec!["secret-token".into()],
                rate_limit_tools: 2,
                rate_limit_requests: 0,
                allowed_origins: origins.map(|o| o.into_iter().map(str::to_owned).collect()),
                max_body_bytes: 1024,
                stream_answers: false,
            },
            Cors::Permissive,
            Hosts::new(["localhost"]),
            None,
        )
    }

    #[test]
    fn origins_match_scheme_host_and_port() {
        let guard = guard(Some(vec!["http://localhost:*", "https://app.example.com"]));
        assert!(guard.origin_allowed("http://localhost:3000"));
        assert!(guard.origin_allowed("https://app.example.com"));
        assert!(!guard.origin_allowed("https://app.example.com:8443"));
        assert!(!guard.origin_allowed("http://evil.example"));
        assert!(!guard.origin_allowed("not a url"));
        assert!(
            super::Guard::new(
                GuardConfig {
                    allowed_origins: None,
                    ..guard_config()
                },
                Cors::Off,
                Hosts::new(Vec::<String>::new()),
                None
            )
            .origin_allowed("http://anything.example")
        );
    }

    fn guard_config() -> GuardConfig {
        GuardConfig {
            require_auth: false,
            tokens: Vec::new(),
            rate_limit_tools: 0,
            rate_limit_requests: 0,
            allowed_origins: None,
            max_body_bytes: 1024,
            stream_answers: false,
        }
    }

    #[test]
    fn hosts_match_name_and_port_and_probes_may_use_an_address() {
        let host = |text: &str| Authority::parse(text).unwrap();
        let hosts = Hosts::new(["localhost", "127.0.0.1", "::1", "proxy.example:8443"]);
        assert!(hosts.allows(&host("localhost:12006")));
        assert!(hosts.allows(&host("LOCALHOST")));
        assert!(hosts.allows(&host("[::1]:12006")));
        assert!(hosts.allows(&host("proxy.example:8443")));
        assert!(!hosts.allows(&host("proxy.example:80")));
        assert!(!hosts.allows(&host("evil.example")));
        assert!(!hosts.allows(&host("10.0.0.5:8081")));
        assert!(hosts.allows_probe(&host("10.0.0.5:8081")));
        assert!(hosts.allows_probe(&host("[fd00::5]")));
        assert!(!hosts.allows_probe(&host("evil.example:12006")));
        assert!(Hosts::new(Vec::<String>::new()).allows(&host("anything.example")));
        assert!(!Hosts::new(["not a host"]).allows(&host("anything.example")));
    }

    #[test]
    fn tokens_are_checked() {
        let guard = guard(None);
        let mut headers = HeaderMap::new();
        assert_eq!(guard.token_of(&headers), Ok(None));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer secret-token"),
        );
        assert!(matches!(guard.token_of(&headers), Ok(Some(_))));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer wrong"),
        );
        assert!(guard.token_of(&headers).is_err());
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(guard.token_of(&headers).is_err());
    }

    #[test]
    fn bodies_must_be_json_rpc_objects() {
        assert!(parse_body(b"{nope").is_err());
        assert!(parse_body(b"[1]").is_err());
        let parsed = parse_body(br#"{"jsonrpc":"2.0","id":3,"method":"tools/call"}"#).unwrap();
        assert_eq!(
            (parsed.id, parsed.methods),
            (json!(3), vec!["tools/call".to_owned()])
        );
    }
}
