//! The HTTP client of the plugged.in App: bearer key, a timeout per kind of call ([`Call`]: what
//! the App does before it answers), one retry for reads whose connection failed, identical
//! concurrent GETs fetched once and shared, the headers the App's CSRF check wants on
//! state-changing requests, and errors with the original's fixed texts followed by the App's own
//! reason (the key never appears in an error or a log). A `2xx` answer of `{success: false}` is
//! a failure: several App handlers answer so when they could not do what was asked.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::sync::lock;

/// An App API key. `Debug` and `Display` print `***`: the key must not reach logs or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// The App's key format (and the original proxy's check): 32 to 256 characters of
    /// `A-Z a-z 0-9 - _ .`. Unlike the original, a key that fails is an error, not "no key".
    pub fn parse(text: &str) -> Result<ApiKey, String> {
        let text = text.trim();
        let length = text.chars().count();
        if !(32..=256).contains(&length) {
            return Err(format!(
                "not a plugged.in API key: it has {length} characters, a key has 32 to 256"
            ));
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            let shown = if bad.is_ascii_graphic() || bad == ' ' {
                format!("'{bad}'")
            } else {
                format!("U+{:04X}", u32::from(bad))
            };
            return Err(format!(
                "not a plugged.in API key: it contains {shown}; a key has only A-Z, a-z, 0-9, \
                 '-', '_' and '.'"
            ));
        }
        Ok(ApiKey(text.to_owned()))
    }

    /// The key itself, for the `Authorization` header and the HTTP bearer check.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// What a request asks of the App. It decides how long the request may take — what the App does
/// before it answers, as a multiple of the base timeout (`--app-timeout-secs`) — and whether it
/// may be sent again: only reads are, and only when no answer came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Lists, resolves and the built-in tools' lookups: the base timeout.
    Read,
    /// The built-in tools' small writes: the base timeout; never repeated.
    Write,
    /// `GET /api/mcp-servers`: the App refreshes each server's OAuth token (a request to the
    /// token's provider, one server after another) before it answers. Four times the base.
    ServerList,
    /// Work the App finishes before it answers: a custom notification (and its e-mail), starting
    /// discovery, a knowledge-base answer. Twice the base.
    Slow,
    /// Creating or updating a document: the App writes the file and, with the knowledge base
    /// on, indexes it before it answers. Four times the base; never repeated, since a request
    /// that timed out may have been done.
    Document,
    /// An activity report, off every call's path: a third of the base, at least a second.
    Report,
}

impl Call {
    /// The bound on one request of this kind, from the base timeout.
    pub fn timeout(self, base: Duration) -> Duration {
        match self {
            Call::Read | Call::Write => base,
            Call::Slow => base * 2,
            Call::ServerList | Call::Document => base * 4,
            Call::Report => (base / 3).max(Duration::from_secs(1)).min(base),
        }
    }
}

/// A read whose connection failed (or that a gateway answered 502–504) is sent once more after
/// this pause; the App never saw it, or cannot have acted on a GET.
const RETRY_AFTER: Duration = Duration::from_millis(250);
/// How much of the App's reason an error carries.
const REASON_CHARS: usize = 500;

/// A failed App request, with the original's sanitised text first and the App's own reason (its
/// `error`, with the fields its validation named) after it — never the key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    #[error("{}{} (plugged.in App: HTTP {status} from {method} {path})", status_text(*.status), reason_suffix(.detail))]
    Status {
        status: u16,
        method: &'static str,
        path: String,
        /// The App's reason, when the body gave one (redacted, bounded).
        detail: Option<String>,
        /// The App's machine-readable `code` (`CSRF_INVALID_ORIGIN`, say), when it sent one.
        code: Option<String>,
    },
    /// A `2xx` answer of `{success: false, error}`: the App could not do it and said why.
    #[error("{detail} (plugged.in App: {method} {path} answered success: false)")]
    Refused {
        method: &'static str,
        path: String,
        detail: String,
    },
    #[error("Request timed out (plugged.in App: {method} {path}, no answer within {seconds} s)")]
    Timeout {
        method: &'static str,
        path: String,
        seconds: u64,
    },
    #[error("Network error occurred (plugged.in App: {method} {path}: {reason})")]
    Network {
        method: &'static str,
        path: String,
        reason: String,
        /// Whether the request may have reached the App (the connection was made).
        sent: bool,
    },
    #[error("Invalid response (plugged.in App: {method} {path}: {reason})")]
    Invalid {
        method: &'static str,
        path: String,
        reason: String,
    },
}

impl AppError {
    /// The HTTP status, when the App answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            AppError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The App's own reason, when it gave one.
    pub fn detail(&self) -> Option<&str> {
        match self {
            AppError::Status { detail, .. } => detail.as_deref(),
            AppError::Refused { detail, .. } => Some(detail),
            _ => None,
        }
    }

    /// The App's machine-readable error code, when it sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            AppError::Status { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// Whether the App could not be reached at all (as opposed to answering with an error).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, AppError::Timeout { .. } | AppError::Network { .. })
            || self.status().is_some_and(|status| status >= 500)
    }

    /// Whether the App may have done what was asked although no answer came: the request went
    /// out and then timed out or lost its connection.
    pub fn maybe_done(&self) -> bool {
        match self {
            AppError::Timeout { .. } => true,
            AppError::Network { sent, .. } => *sent,
            _ => false,
        }
    }

    /// Whether a read that failed so is worth sending once more: no answer came because the
    /// connection failed, or a gateway in front of the App answered for it.
    fn worth_retrying(&self) -> bool {
        match self {
            AppError::Network { sent, .. } => !sent,
            AppError::Status { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }
}

fn reason_suffix(detail: &Option<String>) -> String {
    detail
        .as_deref()
        .map(|detail| format!(": {detail}"))
        .unwrap_or_default()
}

/// The original's fixed texts per status (`src/error-handler.ts`).
fn status_text(status: u16) -> &'static str {
    match status {
        400 => "Invalid request parameters",
        401 => "Authentication failed",
        403 => "Access denied",
        404 => "Resource not found",
        429 => "Rate limit exceeded. Please try again later",
        500 | 502 | 503 | 504 => "Service temporarily unavailable",
        _ => "An unexpected error occurred",
    }
}

type Fetch = Shared<BoxFuture<'static, Result<Arc<Value>, AppError>>>;

/// The App client. Cheap to clone.
#[derive(Clone)]
pub struct AppClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: String,
    /// The App's origin (`scheme://host[:port]`), sent as `Origin` with state-changing requests.
    origin: String,
    key: ApiKey,
    /// The base timeout; each [`Call`] is a multiple of it.
    timeout: Duration,
    /// GETs in flight by path and query, with an id so only the owner removes its entry.
    in_flight: Mutex<HashMap<String, (u64, Fetch)>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl AppClient {
    /// A client of the App at `base` (used as given, without a trailing slash), with `timeout`
    /// as the base of every request's bound (see [`Call`]).
    pub fn new(base: &url::Url, key: ApiKey, timeout: Duration) -> Result<AppClient, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("pluggedin-mcp-proxy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| format!("cannot build the HTTP client: {error}"))?;
        Ok(AppClient {
            inner: Arc::new(Inner {
                http,
                base: base.as_str().trim_end_matches('/').to_owned(),
                origin: base.origin().ascii_serialization(),
                key,
                timeout,
                in_flight: Mutex::default(),
                next_id: Default::default(),
            }),
        })
    }

    /// The base URL as used.
    pub fn base(&self) -> &str {
        &self.inner.base
    }

    /// The base timeout.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// `GET path` (with its query), shared with identical GETs already in flight.
    pub async fn get(&self, path_and_query: &str, call: Call) -> Result<Arc<Value>, AppError> {
        let (id, fetch, owner) = {
            let mut in_flight = lock(&self.inner.in_flight);
            match in_flight.get(path_and_query) {
                Some((id, fetch)) => {
                    tracing::debug!(path = %path_only(path_and_query), "joining an App GET in flight");
                    (*id, fetch.clone(), false)
                }
                None => {
                    let id = self
                        .inner
                        .next_id
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let client = self.clone();
                    let target = path_and_query.to_owned();
                    let fetch = async move {
                        client
                            .request(Method::GET, &target, None, call)
                            .await
                            .map(Arc::new)
                    }
                    .boxed()
                    .shared();
                    in_flight.insert(path_and_query.to_owned(), (id, fetch.clone()));
                    (id, fetch, true)
                }
            }
        };
        // The owner takes the entry out when it is done — or dropped (a caller that gave up, or
        // a sibling request of a joined group failed): a finished fetch is never served again.
        let _cleanup = owner.then(|| InFlightEntry {
            client: self,
            key: path_and_query,
            id,
        });
        fetch.await
    }

    /// A request with a JSON body (or none), answered with the parsed JSON body (`null` for an
    /// empty body; a text body becomes a JSON string). A GET is sent once more when its
    /// connection failed or a gateway answered 502–504; nothing else is ever repeated.
    pub async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
        call: Call,
    ) -> Result<Value, AppError> {
        let first = self.send(method.clone(), path_and_query, body, call).await;
        match first {
            Err(error) if method == Method::GET && error.worth_retrying() => {
                tracing::debug!(path = %path_only(path_and_query), "App read failed ({error}); once more");
                tokio::time::sleep(RETRY_AFTER).await;
                self.send(method, path_and_query, body, call).await
            }
            other => other,
        }
    }

    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
        call: Call,
    ) -> Result<Value, AppError> {
        let method_name = method_name(&method);
        let path = path_only(path_and_query);
        let url = format!("{}{}", self.inner.base, path_and_query);
        let timeout = call.timeout(self.inner.timeout);
        let state_changing = method != Method::GET;
        let mut request = self
            .inner
            .http
            .request(method, &url)
            .bearer_auth(self.inner.key.expose())
            .header(reqwest::header::ACCEPT, "application/json, text/plain, */*")
            .timeout(timeout);
        if state_changing {
            // The App's CSRF check (`lib/csrf-protection.ts`, on `PATCH /api/documents/{id}`
            // before it even looks at the key) wants the App's own origin and, with a JSON body,
            // `X-Requested-With`. The origin is the base URL's: what the App knows itself as.
            request = request
                .header(reqwest::header::ORIGIN, &self.inner.origin)
                .header("x-requested-with", "XMLHttpRequest");
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let failed = |error: reqwest::Error, sent: bool| {
            if error.is_timeout() {
                AppError::Timeout {
                    method: method_name,
                    path: path.clone(),
                    seconds: timeout.as_secs(),
                }
            } else {
                AppError::Network {
                    method: method_name,
                    path: path.clone(),
                    reason: describe(&error),
                    sent: sent && !error.is_connect(),
                }
            }
        };
        let response = request.send().await.map_err(|error| failed(error, true))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| failed(error, true))?;
        let parsed = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if !status.is_success() {
            tracing::debug!(status = status.as_u16(), path = %path, "App request failed");
            return Err(AppError::Status {
                status: status.as_u16(),
                method: method_name,
                path,
                detail: self.reason_of(&parsed),
                code: parsed
                    .get("code")
                    .and_then(Value::as_str)
                    .map(|code| code.chars().take(64).collect()),
            });
        }
        if parsed.get("success") == Some(&Value::Bool(false)) {
            tracing::debug!(path = %path, "App answered success: false");
            return Err(AppError::Refused {
                method: method_name,
                path,
                detail: self
                    .reason_of(&parsed)
                    .unwrap_or_else(|| "the App did not say why".to_owned()),
            });
        }
        if status == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        Ok(parsed)
    }

    /// The App's reason in an error body, redacted and bounded, without the key.
    fn reason_of(&self, body: &Value) -> Option<String> {
        let reason = reason(body)?;
        let scrubbed = reason.replace(self.inner.key.expose(), "***");
        Some(crate::security::text::redact_bounded(
            &scrubbed,
            REASON_CHARS,
        ))
    }
}

/// What an App error body says: its `error` (else `message`), with the fields its validation
/// named — zod's `flatten()` (`{fieldErrors, formErrors}`), a list of `{path, message}`, or text.
fn reason(body: &Value) -> Option<String> {
    let error = ["error", "message"]
        .iter()
        .find_map(|key| body.get(*key).and_then(Value::as_str))
        .map(str::trim)
        .filter(|error| !error.is_empty())?;
    let details = body.get("details").and_then(details_text);
    Some(match details {
        Some(details) if details != error => format!("{error} ({details})"),
        _ => error.to_owned(),
    })
}

fn details_text(details: &Value) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    match details {
        Value::String(text) => parts.push(text.trim().to_owned()),
        Value::Object(map) => {
            if let Some(fields) = map.get("fieldErrors").and_then(Value::as_object) {
                for (field, messages) in fields {
                    let messages: Vec<&str> = messages
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    if !messages.is_empty() {
                        parts.push(format!("{field}: {}", messages.join("; ")));
                    }
                }
            }
            parts.extend(
                map.get("formErrors")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned),
            );
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::String(text) => parts.push(text.clone()),
                    Value::Object(issue) => {
                        let Some(message) = issue.get("message").and_then(Value::as_str) else {
                            continue;
                        };
                        let path = match issue.get("path") {
                            Some(Value::String(path)) => path.clone(),
                            Some(Value::Array(path)) => path
                                .iter()
                                .map(|part| match part {
                                    Value::String(text) => text.clone(),
                                    other => other.to_string(),
                                })
                                .collect::<Vec<_>>()
                                .join("."),
                            _ => String::new(),
                        };
                        parts.push(if path.is_empty() {
                            message.to_owned()
                        } else {
                            format!("{path}: {message}")
                        });
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    parts.retain(|part| !part.is_empty());
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Removes its in-flight GET from the map when dropped, unless a newer one took its place.
struct InFlightEntry<'a> {
    client: &'a AppClient,
    key: &'a str,
    id: u64,
}

impl Drop for InFlightEntry<'_> {
    fn drop(&mut self) {
        let mut in_flight = lock(&self.client.inner.in_flight);
        if in_flight
            .get(self.key)
            .is_some_and(|(current, _)| *current == self.id)
        {
            in_flight.remove(self.key);
        }
    }
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        _ => "request",
    }
}

/// The path without its query (queries carry user data; errors name the endpoint only).
fn path_only(path_and_query: &str) -> String {
    path_and_query
        .split('?')
        .next()
        .unwrap_or(path_and_query)
        .to_owned()
}

/// A network error's cause without the URL (reqwest's own text repeats it).
fn describe(error: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    let mut last = None;
    while let Some(cause) = source {
        last = Some(cause.to_string());
        source = cause.source();
    }
    last.unwrap_or_else(|| {
        if error.is_connect() {
            "connection failed".to_owned()
        } else {
            "request failed".to_owned()
        }
    })
}

/// `text` percent-encoded for a query value.
pub(super) fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_follow_the_app_format_and_never_print() {
        let key = ApiKey::parse(&"pg_in_".repeat(6)).unwrap();
        assert_eq!(format!("{key}"), "***");
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        assert!(ApiKey::parse("short").unwrap_err().contains("5 characters"));
        let spaced = format!("{} x", "a".repeat(40));
        assert!(ApiKey::parse(&spaced).unwrap_err().contains("' '"));
        assert!(ApiKey::parse(&"a.b-c_d".repeat(5)).is_ok());
    }

    #[test]
    fn errors_carry_the_original_texts_without_the_query() {
        let error = AppError::Status {
            status: 429,
            method: "GET",
            path: path_only("/api/resolve/resource?uri=secret"),
            detail: None,
            code: None,
        };
        let text = error.to_string();
        assert!(text.starts_with("Rate limit exceeded. Please try again later"));
        assert!(!text.contains("secret"));
        let error = AppError::Status {
            status: 401,
            method: "GET",
            path: "/api/tools".into(),
            detail: Some("No active profile found for this API key".into()),
            code: None,
        };
        assert!(
            error
                .to_string()
                .starts_with("Authentication failed: No active profile found for this API key (")
        );
    }

    #[test]
    fn the_apps_reason_names_the_fields_its_validation_refused() {
        let flattened = json!({"success": false, "error": "Invalid request body",
            "details": {"formErrors": [], "fieldErrors": {"content": ["String must contain at most 10000 character(s)"]}}});
        assert_eq!(
            reason(&flattened).unwrap(),
            "Invalid request body (content: String must contain at most 10000 character(s))"
        );
        let issues = json!({"error": "Invalid request data",
            "details": [{"path": "metadata.model.name", "message": "Required"}]});
        assert_eq!(
            reason(&issues).unwrap(),
            "Invalid request data (metadata.model.name: Required)"
        );
        let zod = json!({"error": "Invalid parameters",
            "details": [{"path": ["limit"], "message": "Number must be less than or equal to 1000"}]});
        assert_eq!(
            reason(&zod).unwrap(),
            "Invalid parameters (limit: Number must be less than or equal to 1000)"
        );
        assert_eq!(
            reason(&json!({"error": "Failed", "details": "db down"})).unwrap(),
            "Failed (db down)"
        );
        assert_eq!(reason(&json!("<html>Bad Gateway</html>")), None);
    }

    #[test]
    fn each_kind_of_call_has_its_own_bound() {
        let base = Duration::from_secs(15);
        assert_eq!(Call::Read.timeout(base), base);
        assert_eq!(Call::Write.timeout(base), base);
        assert_eq!(Call::Slow.timeout(base), Duration::from_secs(30));
        assert_eq!(Call::ServerList.timeout(base), Duration::from_secs(60));
        assert_eq!(Call::Document.timeout(base), Duration::from_secs(60));
        assert_eq!(Call::Report.timeout(base), Duration::from_secs(5));
        assert_eq!(
            Call::Report.timeout(Duration::from_millis(500)),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn only_what_never_reached_the_app_may_have_been_done_or_be_retried() {
        let network = |sent| AppError::Network {
            method: "POST",
            path: "/api/documents/ai".into(),
            reason: "connection reset".into(),
            sent,
        };
        assert!(network(true).maybe_done() && !network(true).worth_retrying());
        assert!(!network(false).maybe_done() && network(false).worth_retrying());
        let timeout = AppError::Timeout {
            method: "POST",
            path: "/api/documents/ai".into(),
            seconds: 60,
        };
        assert!(timeout.maybe_done() && !timeout.worth_retrying());
    }
}
