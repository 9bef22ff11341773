//! The HTTP client of the plugged.in App: bearer key, a timeout on every request, identical
//! concurrent GETs fetched once and shared, and errors sanitised to the original's fixed texts
//! (the key never appears in an error or a log).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use reqwest::{Method, StatusCode};
use serde_json::Value;

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

/// A failed App request, with the original's sanitised text first. The App's own `error` text is
/// kept for the tools that show it (a clipboard index conflict, say), never the key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    #[error("{} (plugged.in App: HTTP {status} from {method} {path})", status_text(*.status))]
    Status {
        status: u16,
        method: &'static str,
        path: String,
        /// The App's `error` field, when the body had one.
        detail: Option<String>,
    },
    #[error("Request timed out (plugged.in App: {method} {path})")]
    Timeout { method: &'static str, path: String },
    #[error("Network error occurred (plugged.in App: {method} {path}: {reason})")]
    Network {
        method: &'static str,
        path: String,
        reason: String,
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

    /// The App's own error text, when it sent one.
    pub fn detail(&self) -> Option<&str> {
        match self {
            AppError::Status { detail, .. } => detail.as_deref(),
            _ => None,
        }
    }

    /// Whether the App could not be reached at all (as opposed to answering with an error).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, AppError::Timeout { .. } | AppError::Network { .. })
            || self.status().is_some_and(|status| status >= 500)
    }
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
    key: ApiKey,
    timeout: Duration,
    /// GETs in flight by path and query, with an id so only the owner removes its entry.
    in_flight: Mutex<HashMap<String, (u64, Fetch)>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl AppClient {
    /// A client of the App at `base` (used as given, without a trailing slash), with `timeout`
    /// on every request.
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

    /// `GET path` (with its query), shared with identical GETs already in flight.
    pub async fn get(&self, path_and_query: &str) -> Result<Arc<Value>, AppError> {
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
                            .request(Method::GET, &target, None, None)
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
    /// empty body; a text body becomes a JSON string).
    pub async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
        timeout: Option<Duration>,
    ) -> Result<Value, AppError> {
        let method_name = method_name(&method);
        let path = path_only(path_and_query);
        let url = format!("{}{}", self.inner.base, path_and_query);
        let mut request = self
            .inner
            .http
            .request(method, &url)
            .bearer_auth(self.inner.key.expose())
            .header(reqwest::header::ACCEPT, "application/json, text/plain, */*")
            .timeout(
                timeout
                    .unwrap_or(self.inner.timeout)
                    .min(self.inner.timeout),
            );
        if let Some(body) = body {
            request = request.json(body);
        }
        let network = |error: reqwest::Error| {
            if error.is_timeout() {
                AppError::Timeout {
                    method: method_name,
                    path: path.clone(),
                }
            } else {
                AppError::Network {
                    method: method_name,
                    path: path.clone(),
                    reason: describe(&error),
                }
            }
        };
        let response = request.send().await.map_err(network)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(network)?;
        let parsed = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if !status.is_success() {
            let detail = parsed
                .get("error")
                .and_then(Value::as_str)
                .map(crate::control::activity::redact);
            tracing::debug!(status = status.as_u16(), path = %path, "App request failed");
            return Err(AppError::Status {
                status: status.as_u16(),
                method: method_name,
                path,
                detail,
            });
        }
        if status == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        Ok(parsed)
    }
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
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
        };
        let text = error.to_string();
        assert!(text.starts_with("Rate limit exceeded. Please try again later"));
        assert!(!text.contains("secret"));
        let error = AppError::Status {
            status: 401,
            method: "GET",
            path: "/api/tools".into(),
            detail: None,
        };
        assert!(error.to_string().starts_with("Authentication failed"));
    }
}
