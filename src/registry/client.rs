//! Fetching from a registry. Every answer is kept in `<data dir>/registry-cache/` (one file per
//! URL, with its `ETag` and when it was fetched) and asked again with `If-None-Match`, so an
//! unchanged answer costs a 304. When the registry cannot be reached, `search` answers from
//! every server the cache holds that matches, and says how old that is; the other requests fail
//! with an error that says the registry was not reached.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::ServerResponse;

/// A registry request gets this long: the registry is a web service, and a command waits on it.
const TIMEOUT: Duration = Duration::from_secs(20);
/// The largest answer read from a registry.
const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach the registry at {url}: {cause}")]
    Unreachable { url: String, cause: String },
    #[error("the registry at {base} has no server named \"{name}\"{}", version.as_ref().map(|v| format!(" at version {v}")).unwrap_or_default())]
    NotFound {
        base: String,
        name: String,
        version: Option<String>,
    },
    #[error("the registry answered {status} for {url}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("the registry's answer for {url} is not what its API describes: {cause}")]
    BadAnswer { url: String, cause: String },
    #[error("{0}")]
    Setup(String),
}

/// One page of search results.
#[derive(Debug, Clone, Serialize)]
pub struct SearchPage {
    pub servers: Vec<ServerResponse>,
    #[serde(rename = "nextCursor", skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Set when the registry could not be reached: the results come from the cache, as of
    /// this time (ms since the epoch) at the oldest, and this is why.
    #[serde(rename = "fromCache", skip_serializing_if = "Option::is_none")]
    pub from_cache: Option<CacheNote>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CacheNote {
    #[serde(rename = "fetchedAt")]
    pub fetched_at: i64,
    pub reason: String,
}

/// A registry to ask.
pub struct Registry {
    pub base: url::Url,
    http: reqwest::Client,
    cache: Option<PathBuf>,
}

#[derive(Serialize, Deserialize)]
struct Cached {
    url: String,
    etag: Option<String>,
    #[serde(rename = "fetchedAt")]
    fetched_at: i64,
    body: Value,
}

impl Registry {
    /// A registry at `base` (`http(s)://host[/prefix]`), its answers cached under `data_dir`.
    pub fn new(base: &str, data_dir: Option<&std::path::Path>) -> Result<Registry, RegistryError> {
        let mut url = url::Url::parse(base.trim())
            .map_err(|error| RegistryError::Setup(format!("registry URL {base:?}: {error}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(RegistryError::Setup(format!(
                "registry URL {base:?}: only http and https"
            )));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        // reqwest is built without a default TLS provider (see `lib::run`); installing it twice
        // is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("pluggedin-mcp-proxy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                RegistryError::Setup(format!("cannot build the HTTP client: {error}"))
            })?;
        Ok(Registry {
            base: url,
            http,
            cache: data_dir.map(|dir| dir.join("registry-cache")),
        })
    }

    /// The base URL as the config records it (without a trailing slash).
    pub fn base_text(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> url::Url {
        let mut url = self.base.clone();
        {
            let mut path = url.path_segments_mut().expect("http URLs have paths");
            path.pop_if_empty();
            path.push("v0.1");
            for segment in segments {
                // Pushed segments are percent-encoded, `/` included (`io.github.x%2Fy`).
                path.push(segment);
            }
        }
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in query {
                pairs.append_pair(key, value);
            }
        }
        url
    }

    fn cache_file(&self, url: &url::Url) -> Option<PathBuf> {
        let digest: String = Sha256::digest(url.as_str().as_bytes())
            .iter()
            .take(16)
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Some(self.cache.as_ref()?.join(format!("{digest}.json")))
    }

    fn cached(&self, url: &url::Url) -> Option<Cached> {
        let bytes = std::fs::read(self.cache_file(url)?).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn keep(&self, cached: &Cached) {
        let Some(file) = self.cache_file(
            &url::Url::parse(&cached.url)
                .ok()
                .unwrap_or_else(|| self.base.clone()),
        ) else {
            return;
        };
        if let Some(dir) = file.parent()
            && std::fs::create_dir_all(dir).is_err()
        {
            return;
        }
        if let Ok(bytes) = serde_json::to_vec(cached) {
            // A cache that cannot be written costs a refetch, nothing more.
            let _ = crate::config::edit::write_atomically(&file, &bytes);
        }
    }

    /// GETs a JSON answer, through the cache.
    async fn get(&self, url: url::Url) -> Result<Value, RegistryError> {
        let cached = self.cached(&url);
        let mut request = self
            .http
            .get(url.clone())
            .header("Accept", "application/json");
        if let Some(etag) = cached.as_ref().and_then(|cached| cached.etag.as_deref()) {
            request = request.header("If-None-Match", etag);
        }
        let shown = crate::config::display_url(&url);
        let response = request
            .send()
            .await
            .map_err(|error| RegistryError::Unreachable {
                url: shown.clone(),
                cause: error_chain(&error),
            })?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_MODIFIED
            && let Some(mut cached) = cached
        {
            cached.fetched_at = crate::control::time::now_ms();
            self.keep(&cached);
            return Ok(cached.body);
        }
        let etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let bytes = read_bounded(response)
            .await
            .map_err(|cause| RegistryError::Unreachable {
                url: shown.clone(),
                cause,
            })?;
        if !status.is_success() {
            let message = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|body| {
                    body.get("error")
                        .or_else(|| body.get("detail"))
                        .or_else(|| body.get("title"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
            return Err(RegistryError::Status {
                url: shown,
                status: status.as_u16(),
                message: crate::security::text::redact_bounded(&message, 300),
            });
        }
        let body: Value =
            serde_json::from_slice(&bytes).map_err(|error| RegistryError::BadAnswer {
                url: shown,
                cause: error.to_string(),
            })?;
        self.keep(&Cached {
            url: url.to_string(),
            etag,
            fetched_at: crate::control::time::now_ms(),
            body: body.clone(),
        });
        Ok(body)
    }

    /// Servers whose name or description contains `query`, their latest versions, a page at a
    /// time.
    pub async fn search(
        &self,
        query: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<SearchPage, RegistryError> {
        let limit = limit.clamp(1, 100).to_string();
        let mut params = vec![("version", "latest"), ("limit", limit.as_str())];
        if !query.is_empty() {
            params.push(("search", query));
        }
        if let Some(cursor) = cursor {
            params.push(("cursor", cursor));
        }
        let url = self.url(&["servers"], &params);
        match self.get(url.clone()).await {
            Ok(body) => page(&url, body),
            Err(RegistryError::Unreachable { url: shown, cause }) => self
                .search_cache(query)
                .ok_or(RegistryError::Unreachable {
                    url: shown.clone(),
                    cause: format!("{cause} (and no answer of it is cached)"),
                })
                .map(|(servers, fetched_at)| SearchPage {
                    servers,
                    next_cursor: None,
                    from_cache: Some(CacheNote {
                        fetched_at,
                        reason: format!("cannot reach the registry at {shown}: {cause}"),
                    }),
                }),
            Err(other) => Err(other),
        }
    }

    /// Every cached server of this registry whose name or description contains `query`, the
    /// latest seen of each, and the time of the oldest answer used.
    fn search_cache(&self, query: &str) -> Option<(Vec<ServerResponse>, i64)> {
        let dir = self.cache.as_ref()?;
        let needle = query.to_lowercase();
        let mut found: std::collections::BTreeMap<String, (ServerResponse, i64)> =
            std::collections::BTreeMap::new();
        let mut oldest = i64::MAX;
        let base = self.base.as_str();
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let Ok(bytes) = std::fs::read(entry.path()) else {
                continue;
            };
            let Ok(cached) = serde_json::from_slice::<Cached>(&bytes) else {
                continue;
            };
            if !cached.url.starts_with(base) {
                continue;
            }
            let answers: Vec<Value> = match cached.body.get("servers") {
                Some(Value::Array(servers)) => servers.clone(),
                _ if cached.body.get("server").is_some() => vec![cached.body.clone()],
                _ => Vec::new(),
            };
            for answer in answers {
                let Ok(server) = serde_json::from_value::<ServerResponse>(answer) else {
                    continue;
                };
                let matches = needle.is_empty()
                    || server.server.name.to_lowercase().contains(&needle)
                    || server.server.description.to_lowercase().contains(&needle);
                if !matches {
                    continue;
                }
                oldest = oldest.min(cached.fetched_at);
                let newer = found.get(&server.server.name).is_none_or(|(known, at)| {
                    *at < cached.fetched_at
                        || version_newer(&server.server.version, &known.server.version)
                });
                if newer {
                    found.insert(server.server.name.clone(), (server, cached.fetched_at));
                }
            }
        }
        if found.is_empty() {
            return None;
        }
        Some((
            found.into_values().map(|(server, _)| server).collect(),
            oldest,
        ))
    }

    /// One version of a server (`None`: the latest).
    pub async fn show(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<ServerResponse, RegistryError> {
        let url = self.url(
            &["servers", name, "versions", version.unwrap_or("latest")],
            &[],
        );
        let body = match self.get(url.clone()).await {
            Err(RegistryError::Status { status: 404, .. }) => {
                return Err(RegistryError::NotFound {
                    base: self.base_text(),
                    name: name.to_owned(),
                    version: version.map(str::to_owned),
                });
            }
            other => other?,
        };
        serde_json::from_value(body).map_err(|error| RegistryError::BadAnswer {
            url: crate::config::display_url(&url),
            cause: error.to_string(),
        })
    }
}

/// An error and its causes, `: `-separated (reqwest's own text leaves the cause out).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn page(url: &url::Url, body: Value) -> Result<SearchPage, RegistryError> {
    #[derive(Deserialize)]
    struct List {
        servers: Vec<ServerResponse>,
        #[serde(default)]
        metadata: Option<Metadata>,
    }
    #[derive(Deserialize)]
    struct Metadata {
        #[serde(rename = "nextCursor", default)]
        next_cursor: Option<String>,
    }
    let list: List = serde_json::from_value(body).map_err(|error| RegistryError::BadAnswer {
        url: crate::config::display_url(url),
        cause: error.to_string(),
    })?;
    Ok(SearchPage {
        servers: list.servers,
        next_cursor: list
            .metadata
            .and_then(|metadata| metadata.next_cursor)
            .filter(|cursor| !cursor.is_empty()),
        from_cache: None,
    })
}

async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| error.to_string())? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_ANSWER_BYTES {
            return Err(format!(
                "the answer is larger than {MAX_ANSWER_BYTES} bytes"
            ));
        }
    }
    Ok(bytes)
}

/// Whether version `a` is newer than `b`: numeric parts compared as numbers, a pre-release
/// (`-…`) older than its release; otherwise as text.
pub fn version_newer(a: &str, b: &str) -> bool {
    fn parts(version: &str) -> (Vec<u64>, Option<&str>) {
        let version = version.trim_start_matches('v');
        let (main, pre) = match version.split_once('-') {
            Some((main, pre)) => (main, Some(pre)),
            None => (version.split('+').next().unwrap_or(version), None),
        };
        let numbers = main
            .split('.')
            .map(|part| part.split('+').next().unwrap_or(part).parse().unwrap_or(0))
            .collect();
        (numbers, pre)
    }
    let ((a_numbers, a_pre), (b_numbers, b_pre)) = (parts(a), parts(b));
    match a_numbers.cmp(&b_numbers) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => match (a_pre, b_pre) {
            (None, Some(_)) => true,
            (Some(a), Some(b)) => a > b,
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_their_numbers() {
        assert!(version_newer("1.10.0", "1.9.3"));
        assert!(version_newer("2026.8.31", "2025.12.1"));
        assert!(version_newer("1.0.0", "1.0.0-beta"));
        assert!(!version_newer("1.0.0", "1.0.0"));
        assert!(!version_newer("0.9", "1.0"));
    }

    #[test]
    fn server_names_are_one_encoded_path_segment() {
        let registry = Registry::new("https://r.example.com/base", None).unwrap();
        let url = registry.url(&["servers", "io.github.x/y", "versions", "1.0.0+b"], &[]);
        assert_eq!(
            url.as_str(),
            "https://r.example.com/base/v0.1/servers/io.github.x%2Fy/versions/1.0.0+b"
        );
        assert!(Registry::new("ftp://x", None).is_err());
    }
}
