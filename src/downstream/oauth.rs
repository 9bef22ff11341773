//! An OAuth 2.1 client for downstream HTTP servers, per the MCP authorization spec (2025-11-25):
//! protected-resource metadata discovery (RFC 9728: the `resource_metadata` of a 401's
//! `WWW-Authenticate`, else the path-based then root well-known URL), authorization-server
//! metadata (RFC 8414 and OpenID discovery, path-aware), the client (pre-registered, a client-ID
//! metadata document URL, or dynamic registration per RFC 7591), PKCE S256, the `resource`
//! parameter (RFC 8707), scope selection (the challenge's `scope`, else the resource's
//! `scopes_supported`, else none), step-up on 403 `insufficient_scope` (scopes accumulated, a
//! bounded number of attempts), the `iss` check of the authorization response (RFC 9207), the
//! token endpoint's client authentication (basic, post, none) and refresh.
//!
//! The OAuth requests (discovery, registration, tokens) go through a client built under the same
//! URL policy as the transport's. [`OAuthHttp`] wraps the transport's own client (the one that
//! reports URL-policy refusals for this connection attempt) for Streamable HTTP: it sends the
//! current access token, and on a 401 or 403 challenge authorizes and retries the request once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use futures::stream::BoxStream;
use reqwest::header::{HeaderName, HeaderValue, LOCATION};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sse_stream::Sse;
use url::Url;

use crate::config::OAuthConfig;
use crate::sync::lock;

/// Authorization attempts for one request before giving up (a server that keeps answering
/// `insufficient_scope` must not loop us).
const MAX_ATTEMPTS: usize = 2;

/// The JWT-bearer grant type (RFC 7523).
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// How often a server awaiting authorization looks for stored tokens.
const STORE_POLL: Duration = Duration::from_millis(500);

/// Refresh a token this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);

/// Why authorization failed.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("OAuth request to {url} failed: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("OAuth: {0}")]
    Protocol(String),
    #[error("server {server} needs an OAuth authorization by a user")]
    NeedsUser { server: String },
}

fn protocol(message: impl Into<String>) -> OAuthError {
    OAuthError::Protocol(message.into())
}

/// Tokens issued for the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Tokens {
    access: String,
    refresh: Option<String>,
    /// When the access token expires, in seconds since the Unix epoch.
    expires_at: Option<u64>,
    /// Scopes asked for (accumulated across step-ups).
    scopes: Vec<String>,
    /// A DPoP-bound token (RFC 9449): sent with the `DPoP` scheme and a proof.
    #[serde(default)]
    dpop: bool,
}

/// What discovery found, kept for refreshes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    token_endpoint: String,
    resource: String,
    client: Client,
}

/// What the token file holds.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    /// The server's URL, so that a file is never used for another server.
    url: String,
    tokens: Tokens,
    session: Session,
    /// The DPoP key (PKCS#8, base64) the tokens are bound to.
    #[serde(default)]
    dpop_key: Option<String>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Shows the user the URL to open.
pub type ShowUrl<'a> = dyn Fn(&Url) + Sync + 'a;

/// Where token files go: `<data dir>/oauth`, set once at start-up.
static STORE_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Keeps tokens in `<data_dir>/oauth` (one owner-only file per server) from now on.
pub fn set_store_dir(data_dir: &Path) {
    let _ = STORE_DIR.set(data_dir.join("oauth"));
}

/// The token file of a server: its name and URL hashed, so names need no escaping.
fn store_path(server: &str, url: &Url) -> Option<PathBuf> {
    let digest = Sha256::digest(format!("{server}\n{url}").as_bytes());
    let name: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    Some(STORE_DIR.get()?.join(format!("{name}.json")))
}

/// Writes `text` to `path` readable by the owner only, replacing it atomically, in a directory
/// only the owner can enter (the tokens of every server live there).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    crate::security::write_private(path, text.as_bytes())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Client {
    id: String,
    secret: Option<String>,
    /// `client_secret_basic`, `client_secret_post` or `none`.
    auth_method: String,
}

/// One server's OAuth client and its tokens.
#[derive(Debug)]
pub struct OAuth {
    server: String,
    url: Url,
    config: OAuthConfig,
    http: reqwest::Client,
    tokens: Mutex<Option<Tokens>>,
    session: Mutex<Option<Session>>,
    /// Serialises authorizations, so concurrent 401s run one flow.
    flow: tokio::sync::Mutex<()>,
    /// Set when authorizing needs a user (see [`OAuth::needs_user`]).
    needs_user: std::sync::atomic::AtomicBool,
    /// The DPoP key (PKCS#8), once an authorization server asked for DPoP.
    dpop_key: Mutex<Option<Vec<u8>>>,
    /// The authorization server's latest DPoP nonce.
    dpop_nonce: Mutex<Option<String>>,
    /// The resource server's latest DPoP nonce.
    resource_nonce: Mutex<Option<String>>,
}

/// The parameters of a `WWW-Authenticate: Bearer ...` challenge.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Challenge {
    pub resource_metadata: Option<String>,
    pub scope: Option<String>,
    pub error: Option<String>,
}

impl Challenge {
    /// Parses the auth-params of a Bearer challenge (`key="value", key=value`).
    pub fn parse(header: &str) -> Self {
        let mut challenge = Challenge::default();
        let rest = header.trim();
        // The scheme (`Bearer`, `DPoP`): a first word without `=`.
        let rest = match rest.split_once(' ') {
            Some((scheme, params)) if !scheme.contains('=') => params,
            _ => rest,
        };
        let mut chars = rest.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
                chars.next();
            }
            let key: String = chars
                .by_ref()
                .take_while(|c| *c != '=')
                .collect::<String>()
                .trim()
                .to_ascii_lowercase();
            if key.is_empty() {
                break;
            }
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.peek() {
                    if *c == ',' {
                        break;
                    }
                    value.push(*c);
                    chars.next();
                }
                value = value.trim().to_owned();
            }
            match key.as_str() {
                "resource_metadata" => challenge.resource_metadata = Some(value),
                "scope" => challenge.scope = Some(value),
                "error" => challenge.error = Some(value),
                _ => {}
            }
        }
        challenge
    }
}

/// An ES256-signed client assertion (RFC 7523 §2.2): `iss` and `sub` the client, `aud` the
/// authorization server's issuer, valid for a minute.
fn client_assertion(pem: &str, client_id: &str, audience: &str) -> Result<String, OAuthError> {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .map(str::trim)
        .collect();
    let der = STANDARD
        .decode(body)
        .map_err(|e| protocol(format!("the private key is not PEM: {e}")))?;
    let rng = ring::rand::SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
        .map_err(|e| protocol(format!("the private key is no PKCS#8 P-256 key: {e}")))?;
    let now = unix_now();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "iss": client_id, "sub": client_id, "aud": audience,
        "iat": now, "exp": now + 60, "jti": random_token(),
    });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{claims}");
    let signature = key
        .sign(&rng, signing_input.as_bytes())
        .map_err(|_| protocol("cannot sign the client assertion"))?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    ))
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `origin + /.well-known/<name> + path` (RFC 8414 §3.1 / RFC 9728 §3.1 path insertion).
fn well_known(base: &Url, name: &str, path: &str) -> Option<Url> {
    let path = path.trim_end_matches('/');
    base.join(&format!("/.well-known/{name}{path}")).ok()
}

/// Whether the resource a server's metadata names is the server we talk to: the same origin,
/// and the server's path at or under the resource's.
fn resource_matches(resource: &str, server: &Url) -> bool {
    let Ok(resource) = Url::parse(resource) else {
        return false;
    };
    if resource.origin() != server.origin() {
        return false;
    }
    let base = resource.path().trim_end_matches('/');
    let path = server.path().trim_end_matches('/');
    path == base || path.starts_with(&format!("{base}/"))
}

impl OAuth {
    /// A server's OAuth client, with the tokens stored for it (if any).
    pub fn new(server: &str, url: Url, config: OAuthConfig, http: reqwest::Client) -> Self {
        let oauth = OAuth {
            server: server.to_owned(),
            url,
            config,
            http,
            tokens: Mutex::new(None),
            session: Mutex::new(None),
            flow: tokio::sync::Mutex::new(()),
            needs_user: std::sync::atomic::AtomicBool::new(false),
            dpop_key: Mutex::new(None),
            dpop_nonce: Mutex::new(None),
            resource_nonce: Mutex::new(None),
        };
        oauth.load();
        oauth
    }

    /// Whether the last authorization stopped because it needs a user
    /// (`pluggedin-mcp-proxy auth <server>`).
    pub fn needs_user(&self) -> bool {
        self.needs_user.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Takes up the tokens stored for this server, if any (and if still for its URL).
    fn load(&self) {
        let Some(path) = store_path(&self.server, &self.url) else {
            return;
        };
        let Ok(text) = std::fs::read_to_string(&path) else {
            return;
        };
        match serde_json::from_str::<Stored>(&text) {
            Ok(stored) if stored.url == self.url.as_str() => {
                tracing::debug!(server = %self.server, "OAuth tokens loaded");
                *lock(&self.tokens) = Some(stored.tokens);
                *lock(&self.session) = Some(stored.session);
                *lock(&self.dpop_key) = stored.dpop_key.and_then(|key| STANDARD.decode(key).ok());
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(server = %self.server, file = %path.display(), "unreadable OAuth token file: {error}");
            }
        }
    }

    /// The challenge of a legacy SSE server: what its stream answers without a token.
    async fn probe_sse(&self, headers: &reqwest::header::HeaderMap) -> Option<Challenge> {
        let mut headers = headers.clone();
        headers.remove(reqwest::header::AUTHORIZATION);
        let response = self
            .http
            .get(self.url.clone())
            .headers(headers)
            .header("accept", "text/event-stream")
            .send()
            .await
            .ok()?;
        let header = response
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)?
            .to_str()
            .ok()?;
        header
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("bearer")
            .then(|| Challenge::parse(header))
    }

    /// Returns once new tokens are stored for this server (by `pluggedin-mcp-proxy auth`, in
    /// another process), having taken them up.
    pub async fn tokens_stored(&self) {
        let Some(path) = store_path(&self.server, &self.url) else {
            return std::future::pending().await;
        };
        let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let before = modified(&path);
        loop {
            tokio::time::sleep(STORE_POLL).await;
            let now = modified(&path);
            if now.is_some() && now != before {
                self.load();
                self.needs_user
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                return;
            }
        }
    }

    /// Writes the current tokens to the server's owner-only file.
    fn save(&self) {
        let Some(path) = store_path(&self.server, &self.url) else {
            return;
        };
        let (Some(tokens), Some(session)) =
            (lock(&self.tokens).clone(), lock(&self.session).clone())
        else {
            return;
        };
        let stored = Stored {
            url: self.url.to_string(),
            tokens,
            session,
            dpop_key: lock(&self.dpop_key)
                .as_ref()
                .map(|key| STANDARD.encode(key)),
        };
        let text = serde_json::to_string_pretty(&stored).unwrap_or_default();
        if let Err(error) = write_private(&path, &text) {
            tracing::warn!(server = %self.server, file = %path.display(), "OAuth tokens not saved: {error}");
        }
    }

    /// Makes a DPoP key (ES256) unless there is one.
    fn ensure_dpop_key(&self) -> Result<(), OAuthError> {
        let mut key = lock(&self.dpop_key);
        if key.is_none() {
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &rng,
            )
            .map_err(|_| protocol("cannot make a DPoP key"))?;
            *key = Some(pkcs8.as_ref().to_vec());
        }
        Ok(())
    }

    /// A DPoP proof (RFC 9449 §4.2) for `method` on `url`, bound to `access` when given; `None`
    /// without a DPoP key.
    fn dpop_proof(
        &self,
        method: &str,
        url: &str,
        access: Option<&str>,
        nonce: Option<&str>,
    ) -> Option<String> {
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let pkcs8 = lock(&self.dpop_key).clone()?;
        let rng = ring::rand::SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng).ok()?;
        let public = key.public_key().as_ref();
        // Uncompressed point: 0x04 || x || y.
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&public[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&public[33..65]),
        });
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
        let mut htu = Url::parse(url).ok()?;
        htu.set_query(None);
        htu.set_fragment(None);
        let mut claims = serde_json::json!({
            "jti": random_token(), "htm": method, "htu": htu.as_str(), "iat": unix_now(),
        });
        if let Some(access) = access {
            claims["ath"] =
                Value::String(URL_SAFE_NO_PAD.encode(Sha256::digest(access.as_bytes())));
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = Value::String(nonce.to_owned());
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = key.sign(&rng, input.as_bytes()).ok()?;
        Some(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }

    /// How a request to `uri` carries the token: `Bearer` through rmcp's `auth_header`, or (a
    /// DPoP-bound token) the `DPoP` scheme and a fresh proof among the custom headers.
    async fn credentials(
        &self,
        method: &str,
        uri: &str,
        custom: &HashMap<HeaderName, HeaderValue>,
    ) -> (Option<String>, HashMap<HeaderName, HeaderValue>) {
        let mut custom = custom.clone();
        let Some(token) = self.access_token().await else {
            return (None, custom);
        };
        let dpop = lock(&self.tokens)
            .as_ref()
            .is_some_and(|tokens| tokens.dpop);
        if !dpop {
            return (Some(token), custom);
        }
        match (
            HeaderValue::from_str(&format!("DPoP {token}")),
            self.dpop_proof(
                method,
                uri,
                Some(&token),
                lock(&self.resource_nonce).clone().as_deref(),
            )
            .and_then(|proof| HeaderValue::from_str(&proof).ok()),
        ) {
            (Ok(authorization), Some(proof)) => {
                custom.insert(reqwest::header::AUTHORIZATION, authorization);
                custom.insert(HeaderName::from_static("dpop"), proof);
                (None, custom)
            }
            _ => (Some(token), custom),
        }
    }

    /// Learns the resource server's DPoP nonce: POSTs an empty JSON object (no JSON-RPC message,
    /// so nothing is acted on) with the request's credentials; whether a nonce came back.
    async fn fetch_resource_nonce(
        &self,
        uri: &str,
        custom: &HashMap<HeaderName, HeaderValue>,
    ) -> bool {
        // A fresh proof of its own: a proof is never sent twice.
        let (_, headers) = self.credentials("POST", uri, custom).await;
        let mut request = self
            .http
            .post(uri)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body("{}");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let Ok(response) = request.send().await else {
            return false;
        };
        let nonce = response
            .headers()
            .get("dpop-nonce")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let found = nonce.is_some();
        if found {
            *lock(&self.resource_nonce) = nonce;
        }
        found
    }

    /// The HTTP client its own requests go through (under the server's URL policy).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The access token to send, refreshed first when it has expired.
    pub async fn access_token(&self) -> Option<String> {
        let tokens = lock(&self.tokens).clone()?;
        let expired = tokens
            .expires_at
            .is_some_and(|at| unix_now() + EXPIRY_MARGIN.as_secs() >= at);
        if !expired {
            return Some(tokens.access);
        }
        let _flow = self.flow.lock().await;
        match self.refresh(&tokens).await {
            Ok(access) => Some(access),
            Err(error) => {
                tracing::warn!(server = %self.server, "token refresh failed: {error}");
                None
            }
        }
    }

    async fn refresh(&self, tokens: &Tokens) -> Result<String, OAuthError> {
        let refresh = tokens
            .refresh
            .clone()
            .ok_or_else(|| protocol("the access token expired and there is no refresh token"))?;
        let session = lock(&self.session)
            .clone()
            .ok_or_else(|| protocol("no authorization to refresh"))?;
        let mut form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh),
            ("resource", session.resource.clone()),
        ];
        let fresh = self
            .token_request(&session, &mut form, tokens.scopes.clone())
            .await?;
        let access = fresh.access.clone();
        *lock(&self.tokens) = Some(Tokens {
            refresh: fresh.refresh.or(tokens.refresh.clone()),
            ..fresh
        });
        self.save();
        tracing::info!(server = %self.server, "access token refreshed");
        Ok(access)
    }

    /// Runs the authorization flow for a challenge (a 401's or 403's `WWW-Authenticate`),
    /// headless or not at all (a user is needed: [`OAuth::needs_user`]).
    pub async fn authorize(&self, challenge: &Challenge) -> Result<(), OAuthError> {
        let _flow = self.flow.lock().await;
        let redirect_uri = self.redirect_uri(self.config.redirect_port);
        self.run_flow(challenge, &redirect_uri, None).await
    }

    /// Runs the authorization flow with a user: `listener` receives the redirect, `show` is
    /// given the URL the user opens.
    pub async fn authorize_interactive(
        &self,
        challenge: &Challenge,
        listener: tokio::net::TcpListener,
        show: &ShowUrl<'_>,
    ) -> Result<(), OAuthError> {
        let _flow = self.flow.lock().await;
        let port = listener
            .local_addr()
            .map_err(|e| protocol(format!("the redirect listener has no address: {e}")))?
            .port();
        let redirect_uri = self.redirect_uri(port);
        self.run_flow(challenge, &redirect_uri, Some((listener, show)))
            .await
    }

    async fn run_flow(
        &self,
        challenge: &Challenge,
        redirect_uri: &str,
        user: Option<(tokio::net::TcpListener, &ShowUrl<'_>)>,
    ) -> Result<(), OAuthError> {
        let redirect_uri = redirect_uri.to_owned();
        // Protected-resource metadata (RFC 9728).
        let mut candidates = Vec::new();
        if let Some(url) = &challenge.resource_metadata {
            candidates.push(Url::parse(url).map_err(|e| {
                protocol(format!("the challenge's resource_metadata is no URL: {e}"))
            })?);
        } else {
            if self.url.path() != "/" {
                candidates.extend(well_known(
                    &self.url,
                    "oauth-protected-resource",
                    self.url.path(),
                ));
            }
            candidates.extend(well_known(&self.url, "oauth-protected-resource", ""));
        }
        let (prm_url, prm) = self
            .first_json(&candidates)
            .await?
            .ok_or_else(|| protocol("the server publishes no protected-resource metadata"))?;
        let resource = prm["resource"]
            .as_str()
            .ok_or_else(|| protocol(format!("{prm_url} names no resource")))?
            .to_owned();
        if !resource_matches(&resource, &self.url) {
            return Err(protocol(format!(
                "the protected-resource metadata is for {resource}, not {}",
                self.url
            )));
        }
        let issuer = strings(&prm["authorization_servers"])
            .into_iter()
            .next()
            .ok_or_else(|| protocol("the resource names no authorization server"))?;
        let issuer_url = Url::parse(&issuer)
            .map_err(|e| protocol(format!("the authorization server is no URL: {e}")))?;
        // Authorization-server metadata (RFC 8414, OpenID Connect discovery).
        let path = issuer_url.path().trim_end_matches('/').to_owned();
        let mut candidates = Vec::new();
        if path.is_empty() {
            candidates.extend(well_known(&issuer_url, "oauth-authorization-server", ""));
            candidates.extend(well_known(&issuer_url, "openid-configuration", ""));
        } else {
            candidates.extend(well_known(&issuer_url, "oauth-authorization-server", &path));
            candidates.extend(well_known(&issuer_url, "openid-configuration", &path));
            candidates.extend(
                issuer_url
                    .join(&format!("{path}/.well-known/openid-configuration"))
                    .ok(),
            );
        }
        let (_, metadata) = self.first_json(&candidates).await?.ok_or_else(|| {
            protocol(format!(
                "the authorization server {issuer} publishes no metadata"
            ))
        })?;
        if metadata["issuer"].as_str() != Some(issuer.as_str()) {
            return Err(protocol(format!(
                "the authorization server's metadata names issuer {}, not {issuer}",
                metadata["issuer"]
            )));
        }
        let endpoint = |name: &str| -> Result<Url, OAuthError> {
            metadata[name]
                .as_str()
                .and_then(|url| Url::parse(url).ok())
                .ok_or_else(|| protocol(format!("the authorization server has no {name}")))
        };
        let authorization_endpoint = endpoint("authorization_endpoint")?;
        let token_endpoint = endpoint("token_endpoint")?;
        if strings(&metadata["dpop_signing_alg_values_supported"]).contains(&"ES256".to_owned()) {
            self.ensure_dpop_key()?;
        }
        let challenges = strings(&metadata["code_challenge_methods_supported"]);
        if !challenges.is_empty() && !challenges.iter().any(|m| m == "S256") {
            return Err(protocol(
                "the authorization server does not support PKCE S256",
            ));
        }
        let grants = strings(&metadata["grant_types_supported"]);
        if !grants.is_empty()
            && !grants.iter().any(|g| g == "authorization_code")
            && grants.iter().any(|g| g == "client_credentials")
        {
            return self
                .client_credentials(
                    &metadata,
                    &issuer,
                    token_endpoint,
                    resource,
                    challenge,
                    &prm,
                )
                .await;
        }
        if !grants.is_empty()
            && !grants.iter().any(|g| g == "authorization_code")
            && grants.iter().any(|g| g == JWT_BEARER)
        {
            return self
                .jwt_bearer(&issuer, token_endpoint, resource, challenge, &prm)
                .await;
        }
        if user.is_none() && !self.config.headless {
            // Without a user nothing more can happen: register nothing, ask for nothing.
            self.needs_user
                .store(true, std::sync::atomic::Ordering::Relaxed);
            return Err(OAuthError::NeedsUser {
                server: self.server.clone(),
            });
        }
        let client = self.client(&metadata, &redirect_uri).await?;
        // Scopes: the challenge's, else the resource's, else the configured ones; accumulated
        // across step-ups.
        let mut scopes: Vec<String> = match (&challenge.scope, prm.get("scopes_supported")) {
            (Some(scope), _) => scope.split_whitespace().map(str::to_owned).collect(),
            (None, Some(supported)) => strings(supported),
            (None, None) => self.config.scopes.clone().unwrap_or_default(),
        };
        if let Some(previous) = lock(&self.tokens).as_ref() {
            for scope in &previous.scopes {
                if !scopes.contains(scope) {
                    scopes.insert(0, scope.clone());
                }
            }
        }
        if strings(&metadata["scopes_supported"]).contains(&"offline_access".to_owned())
            && strings(&metadata["grant_types_supported"]).contains(&"refresh_token".to_owned())
            && !scopes.is_empty()
            && !scopes.iter().any(|s| s == "offline_access")
        {
            scopes.push("offline_access".into());
        }
        // The authorization request, with PKCE and the resource indicator.
        let verifier = random_token();
        let state = random_token();
        let mut authorize = authorization_endpoint.clone();
        {
            let mut query = authorize.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &client.id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("code_challenge", &pkce_challenge(&verifier))
                .append_pair("code_challenge_method", "S256")
                .append_pair("state", &state)
                .append_pair("resource", &resource);
            if !scopes.is_empty() {
                query.append_pair("scope", &scopes.join(" "));
            }
        }
        let callback = match user {
            Some((listener, show)) => {
                show(&authorize);
                receive_redirect(listener, &redirect_uri).await?
            }
            None => self.approve(&authorize).await?,
        };
        let params: HashMap<String, String> = callback.query_pairs().into_owned().collect();
        if let Some(error) = params.get("error") {
            return Err(protocol(format!("the authorization was refused: {error}")));
        }
        if params.get("state") != Some(&state) {
            return Err(protocol(
                "the authorization response's state does not match",
            ));
        }
        // RFC 9207: an `iss` present must be the issuer; advertised support makes it required.
        match params.get("iss") {
            Some(iss) if *iss != issuer => {
                return Err(protocol(format!(
                    "the authorization response comes from issuer {iss}, not {issuer}"
                )));
            }
            None if metadata["authorization_response_iss_parameter_supported"] == true => {
                return Err(protocol(
                    "the authorization response lacks the iss its server advertises",
                ));
            }
            _ => {}
        }
        let code = params
            .get("code")
            .ok_or_else(|| protocol("the authorization response has no code"))?;
        let session = Session {
            token_endpoint: token_endpoint.to_string(),
            resource: resource.clone(),
            client,
        };
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.clone()),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
            ("resource", resource),
        ];
        let tokens = self.token_request(&session, &mut form, scopes).await?;
        *lock(&self.session) = Some(session);
        *lock(&self.tokens) = Some(tokens);
        self.needs_user
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.save();
        tracing::info!(server = %self.server, "authorized");
        Ok(())
    }

    /// The client-credentials grant (no user: a machine client), authenticated with the
    /// configured secret or a signed assertion.
    async fn client_credentials(
        &self,
        metadata: &Value,
        issuer: &str,
        token_endpoint: Url,
        resource: String,
        challenge: &Challenge,
        prm: &Value,
    ) -> Result<(), OAuthError> {
        let id = self.config.client_id.clone().ok_or_else(|| {
            protocol(
                "the authorization server grants client credentials only; configure oauth.clientId",
            )
        })?;
        let methods = strings(&metadata["token_endpoint_auth_methods_supported"]);
        let auth_method = if self.config.private_key_pem.is_some() {
            "private_key_jwt"
        } else if self.config.client_secret.is_some()
            && !methods.is_empty()
            && !methods.iter().any(|m| m == "client_secret_basic")
            && methods.iter().any(|m| m == "client_secret_post")
        {
            "client_secret_post"
        } else if self.config.client_secret.is_some() {
            "client_secret_basic"
        } else {
            return Err(protocol(
                "client credentials need oauth.clientSecret or oauth.privateKeyFile",
            ));
        };
        let scopes: Vec<String> = match (&challenge.scope, prm.get("scopes_supported")) {
            (Some(scope), _) => scope.split_whitespace().map(str::to_owned).collect(),
            (None, Some(supported)) => strings(supported),
            (None, None) => self.config.scopes.clone().unwrap_or_default(),
        };
        let session = Session {
            token_endpoint: token_endpoint.to_string(),
            resource: resource.clone(),
            client: Client {
                id: id.clone(),
                secret: self
                    .config
                    .client_secret
                    .as_ref()
                    .map(|secret| secret.expose().to_owned()),
                auth_method: auth_method.to_owned(),
            },
        };
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("resource", resource),
        ];
        if !scopes.is_empty() {
            form.push(("scope", scopes.join(" ")));
        }
        if let Some(pem) = &self.config.private_key_pem {
            form.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ));
            form.push((
                "client_assertion",
                client_assertion(pem.expose(), &id, issuer)?,
            ));
        }
        let tokens = self.token_request(&session, &mut form, scopes).await?;
        *lock(&self.session) = Some(session);
        *lock(&self.tokens) = Some(tokens);
        self.save();
        tracing::info!(server = %self.server, "authorized (client credentials)");
        Ok(())
    }

    /// The JWT-bearer grant (RFC 7523) with the workload's identity token as the assertion.
    async fn jwt_bearer(
        &self,
        issuer: &str,
        token_endpoint: Url,
        resource: String,
        challenge: &Challenge,
        prm: &Value,
    ) -> Result<(), OAuthError> {
        let scopes: Vec<String> = match (&challenge.scope, prm.get("scopes_supported")) {
            (Some(scope), _) => scope.split_whitespace().map(str::to_owned).collect(),
            (None, Some(supported)) => strings(supported),
            (None, None) => self.config.scopes.clone().unwrap_or_default(),
        };
        let read =
            |file: &Option<PathBuf>, value: &Option<crate::secret::Secret>| match (file, value) {
                (Some(path), _) => std::fs::read_to_string(path)
                    .map(|text| Some(text.trim().to_owned()))
                    .map_err(|e| protocol(format!("cannot read {}: {e}", path.display()))),
                (None, value) => Ok(value.as_ref().map(|value| value.expose().to_owned())),
            };
        let assertion = match (
            read(&self.config.assertion_file, &self.config.assertion)?,
            &self.config.idp_token_endpoint,
            read(&self.config.id_token_file, &self.config.id_token)?,
        ) {
            (Some(assertion), _, _) => assertion,
            (None, Some(idp), Some(id_token)) => {
                self.identity_assertion(idp, &id_token, issuer, &resource, &scopes)
                    .await?
            }
            _ => {
                return Err(protocol(
                    "the authorization server grants JWT bearer only; configure oauth.assertionFile \
                     or an identity provider (oauth.idpTokenEndpoint, oauth.idTokenFile)",
                ));
            }
        };
        let session = Session {
            token_endpoint: token_endpoint.to_string(),
            resource: resource.clone(),
            client: Client {
                id: self.config.client_id.clone().unwrap_or_default(),
                secret: self
                    .config
                    .client_secret
                    .as_ref()
                    .map(|secret| secret.expose().to_owned()),
                auth_method: if self.config.client_secret.is_some() {
                    "client_secret_basic"
                } else {
                    "none"
                }
                .to_owned(),
            },
        };
        let mut form = vec![
            ("grant_type", JWT_BEARER.to_owned()),
            ("assertion", assertion),
            ("resource", resource),
        ];
        if !scopes.is_empty() {
            form.push(("scope", scopes.join(" ")));
        }
        let tokens = self.token_request(&session, &mut form, scopes).await?;
        *lock(&self.session) = Some(session);
        *lock(&self.tokens) = Some(tokens);
        self.save();
        tracing::info!(server = %self.server, "authorized (JWT bearer)");
        Ok(())
    }

    /// RFC 8693 token exchange at the identity provider: the ID token for an ID-JAG naming the
    /// authorization server and the resource (SEP-990).
    async fn identity_assertion(
        &self,
        idp_token_endpoint: &str,
        id_token: &str,
        issuer: &str,
        resource: &str,
        scopes: &[String],
    ) -> Result<String, OAuthError> {
        let mut form = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange".to_owned(),
            ),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:id-jag".to_owned(),
            ),
            ("subject_token", id_token.to_owned()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token".to_owned(),
            ),
            ("audience", issuer.to_owned()),
            ("resource", resource.to_owned()),
        ];
        if let Some(id) = &self.config.idp_client_id {
            form.push(("client_id", id.clone()));
        }
        if !scopes.is_empty() {
            form.push(("scope", scopes.join(" ")));
        }
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let url = idp_token_endpoint.to_owned();
        let response = self
            .http
            .post(idp_token_endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|source| OAuthError::Http {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        let answer: Value = response
            .json()
            .await
            .map_err(|source| OAuthError::Http { url, source })?;
        if !status.is_success() {
            return Err(protocol(format!(
                "the identity provider refused the token exchange ({status}): {answer}"
            )));
        }
        answer["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| protocol("the token exchange answer has no access_token"))
    }

    fn redirect_uri(&self, port: u16) -> String {
        format!(
            "http://127.0.0.1:{}/callback",
            if port == 0 { 8976 } else { port }
        )
    }

    /// The authorization step without a user (`headless`): the redirect the authorization
    /// endpoint answers with.
    async fn approve(&self, authorize: &Url) -> Result<Url, OAuthError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| OAuthError::Http {
                url: authorize.to_string(),
                source,
            })?;
        let response =
            http.get(authorize.clone())
                .send()
                .await
                .map_err(|source| OAuthError::Http {
                    url: authorize.to_string(),
                    source,
                })?;
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| {
                protocol(format!(
                    "the authorization endpoint answered {} without a redirect",
                    response.status()
                ))
            })?;
        authorize
            .join(location)
            .map_err(|e| protocol(format!("the authorization redirect is no URL: {e}")))
    }

    /// The client to authorize as: pre-registered, a metadata document URL, or registered now.
    async fn client(&self, metadata: &Value, redirect_uri: &str) -> Result<Client, OAuthError> {
        let methods = strings(&metadata["token_endpoint_auth_methods_supported"]);
        let pick = |secret: bool| -> String {
            let supported = |m: &str| methods.is_empty() || methods.iter().any(|x| x == m);
            if secret && supported("client_secret_basic") {
                "client_secret_basic"
            } else if secret && supported("client_secret_post") {
                "client_secret_post"
            } else {
                "none"
            }
            .to_owned()
        };
        if let Some(id) = &self.config.client_id {
            return Ok(Client {
                id: id.clone(),
                secret: self
                    .config
                    .client_secret
                    .as_ref()
                    .map(|secret| secret.expose().to_owned()),
                auth_method: pick(self.config.client_secret.is_some()),
            });
        }
        if metadata["client_id_metadata_document_supported"] == true
            && let Some(url) = &self.config.client_metadata_url
        {
            return Ok(Client {
                id: url.clone(),
                secret: None,
                auth_method: "none".into(),
            });
        }
        let registration = metadata["registration_endpoint"]
            .as_str()
            .and_then(|url| Url::parse(url).ok())
            .ok_or_else(|| {
                protocol(
                    "the authorization server offers no registration; configure oauth.clientId",
                )
            })?;
        let auth_method = if methods.is_empty() || methods.iter().any(|m| m == "none") {
            "none".to_owned()
        } else {
            pick(true)
        };
        let body = serde_json::json!({
            "client_name": "pluggedin-mcp-proxy",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": auth_method,
            "application_type": "native",
        });
        let response = self
            .http
            .post(registration.clone())
            .json(&body)
            .send()
            .await
            .map_err(|source| OAuthError::Http {
                url: registration.to_string(),
                source,
            })?;
        let status = response.status();
        let answer: Value = response.json().await.map_err(|source| OAuthError::Http {
            url: registration.to_string(),
            source,
        })?;
        if !status.is_success() {
            return Err(protocol(format!(
                "registration refused ({status}): {answer}"
            )));
        }
        let id = answer["client_id"]
            .as_str()
            .ok_or_else(|| protocol("the registration answer has no client_id"))?
            .to_owned();
        let secret = answer["client_secret"].as_str().map(str::to_owned);
        let auth_method = answer["token_endpoint_auth_method"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| pick(secret.is_some()));
        Ok(Client {
            id,
            secret,
            auth_method,
        })
    }

    /// A token endpoint request with the client's authentication; the issued tokens.
    async fn token_request(
        &self,
        session: &Session,
        form: &mut Vec<(&'static str, String)>,
        scopes: Vec<String>,
    ) -> Result<Tokens, OAuthError> {
        let client = &session.client;
        let mut request = self.http.post(session.token_endpoint.as_str());
        match (client.auth_method.as_str(), &client.secret) {
            ("client_secret_basic", Some(secret)) => {
                let encode = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let credentials =
                    STANDARD.encode(format!("{}:{}", encode(&client.id), encode(secret)));
                request = request.header("authorization", format!("Basic {credentials}"));
            }
            ("client_secret_post", Some(secret)) => {
                form.push(("client_id", client.id.clone()));
                form.push(("client_secret", secret.clone()));
            }
            ("private_key_jwt", _) => {}
            _ if client.id.is_empty() => {}
            _ => form.push(("client_id", client.id.clone())),
        }
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let url = session.token_endpoint.clone();
        let request = request
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body);
        let mut nonce_retried = false;
        let (status, answer, dpop) = loop {
            let mut attempt = request
                .try_clone()
                .ok_or_else(|| protocol("unclonable request"))?;
            let nonce = lock(&self.dpop_nonce).clone();
            let proof = self.dpop_proof("POST", &url, None, nonce.as_deref());
            if let Some(proof) = &proof {
                attempt = attempt.header("dpop", proof);
            }
            let response = attempt.send().await.map_err(|source| OAuthError::Http {
                url: url.clone(),
                source,
            })?;
            let status = response.status();
            let fresh_nonce = response
                .headers()
                .get("dpop-nonce")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let answer: Value = response.json().await.map_err(|source| OAuthError::Http {
                url: url.clone(),
                source,
            })?;
            if let Some(fresh) = fresh_nonce {
                *lock(&self.dpop_nonce) = Some(fresh);
            }
            // RFC 9449 §8: the server wants its nonce in the proof; once.
            if proof.is_some() && answer["error"] == "use_dpop_nonce" && !nonce_retried {
                nonce_retried = true;
                continue;
            }
            break (status, answer, proof.is_some());
        };
        if !status.is_success() {
            return Err(protocol(format!(
                "the token request was refused ({status}): {answer}"
            )));
        }
        let access = answer["access_token"]
            .as_str()
            .ok_or_else(|| protocol("the token answer has no access_token"))?
            .to_owned();
        Ok(Tokens {
            access,
            refresh: answer["refresh_token"].as_str().map(str::to_owned),
            expires_at: answer["expires_in"]
                .as_u64()
                .map(|seconds| unix_now() + seconds),
            scopes,
            dpop: dpop
                && answer["token_type"]
                    .as_str()
                    .is_some_and(|kind| kind.eq_ignore_ascii_case("dpop")),
        })
    }

    /// GETs each URL in turn; the first that answers a JSON object.
    async fn first_json(&self, urls: &[Url]) -> Result<Option<(Url, Value)>, OAuthError> {
        for url in urls {
            let response = match self
                .http
                .get(url.clone())
                .header("accept", "application/json")
                .send()
                .await
            {
                Ok(response) => response,
                Err(error) => {
                    tracing::debug!(%url, "metadata request failed: {error}");
                    continue;
                }
            };
            if !response.status().is_success() {
                continue;
            }
            if let Ok(value @ Value::Object(_)) = response.json::<Value>().await {
                return Ok(Some((url.clone(), value)));
            }
        }
        Ok(None)
    }
}

/// `pluggedin-mcp-proxy auth <server>`: asks the server for its challenge, runs the
/// authorization with a loopback redirect listener (`show` gets the URL to open) and stores the
/// tokens, which a running proxy then takes up.
pub async fn authorize_server(
    name: &str,
    config: &crate::config::ServerConfig,
    show: &ShowUrl<'_>,
) -> Result<(), String> {
    let (url, headers, sse) = match &config.transport {
        crate::config::TransportConfig::StreamableHttp { url, headers } => (url, headers, false),
        crate::config::TransportConfig::Sse { url, headers } => (url, headers, true),
        crate::config::TransportConfig::Stdio { .. } => {
            return Err(format!(
                "server \"{name}\" is a stdio server; OAuth applies to HTTP servers"
            ));
        }
    };
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    // The challenge: what the server answers a request without a token.
    let mut probe = if sse {
        http.get(url.clone()).header("accept", "text/event-stream")
    } else {
        http.post(url.clone())
        .header("accept", "application/json, text/event-stream")
        .json(&serde_json::json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "pluggedin-mcp-proxy", "version": env!("CARGO_PKG_VERSION")}}
        }))
    };
    for (key, value) in headers {
        if !key.eq_ignore_ascii_case("authorization") {
            probe = probe.header(key, value.expose());
        }
    }
    let response = probe
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let challenge = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|value| value.to_str().ok())
        .map(Challenge::parse)
        .unwrap_or_default();
    let oauth = OAuth::new(name, url.clone(), config.oauth.clone(), http);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.oauth.redirect_port))
        .await
        .map_err(|e| format!("cannot listen for the redirect: {e}"))?;
    oauth
        .authorize_interactive(&challenge, listener, show)
        .await
        .map_err(|e| e.to_string())
}

/// Opens a legacy HTTP+SSE connection with OAuth: the stored token goes along; when the server
/// answers 401 (or 403), its challenge is fetched, the client authorizes and connects again once.
/// (Messages are POSTed with the token of the connection; when it expires, the failed POST ends
/// the connection and the reconnection refreshes it.)
pub(super) async fn connect_sse(
    oauth: &OAuth,
    client: reqwest::Client,
    url: Url,
    headers: reqwest::header::HeaderMap,
    timeout: Duration,
    max_event_bytes: usize,
) -> Result<super::sse::SseClientTransport, super::sse::SseTransportError> {
    let with_token = |token: Option<String>| {
        let mut headers = headers.clone();
        if let Some(value) =
            token.and_then(|token| HeaderValue::from_str(&format!("Bearer {token}")).ok())
        {
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        headers
    };
    let token = oauth.access_token().await;
    let first = super::sse::SseClientTransport::connect(
        client.clone(),
        url.clone(),
        with_token(token),
        timeout,
        max_event_bytes,
    )
    .await;
    let Err(super::sse::SseTransportError::Status { status, .. }) = &first else {
        return first;
    };
    if *status != reqwest::StatusCode::UNAUTHORIZED && *status != reqwest::StatusCode::FORBIDDEN {
        return first;
    }
    let Some(challenge) = oauth.probe_sse(&headers).await else {
        return first;
    };
    if let Err(error) = oauth.authorize(&challenge).await {
        tracing::warn!(server = %oauth.server, "{error}");
        return first;
    }
    let token = oauth.access_token().await;
    super::sse::SseClientTransport::connect(
        client.clone(),
        url,
        with_token(token),
        timeout,
        max_event_bytes,
    )
    .await
}

/// How long the interactive authorization waits for the browser's redirect.
const USER_WAIT: Duration = Duration::from_secs(300);

/// Waits for the authorization server's redirect on the loopback listener; the URL it carried.
async fn receive_redirect(
    listener: tokio::net::TcpListener,
    redirect_uri: &str,
) -> Result<Url, OAuthError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let base = Url::parse(redirect_uri).map_err(|e| protocol(e.to_string()))?;
    let wait = async {
        loop {
            let (mut stream, _) = listener
                .accept()
                .await
                .map_err(|e| protocol(format!("the redirect listener failed: {e}")))?;
            let mut buffer = vec![0u8; 8192];
            let mut read = 0;
            while read < buffer.len() {
                match stream.read(&mut buffer[read..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
                if buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buffer[..read]);
            let target = head
                .lines()
                .next()
                .and_then(|line| line.strip_prefix("GET "))
                .and_then(|rest| rest.split(' ').next())
                .unwrap_or("");
            let Ok(url) = base.join(target) else {
                continue;
            };
            if url.path() != base.path() {
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
                continue;
            }
            let body = "Authorization received; you can close this window.";
            let _ = stream
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
            return Ok(url);
        }
    };
    tokio::time::timeout(USER_WAIT, wait)
        .await
        .map_err(|_| protocol(format!("no authorization within {}s", USER_WAIT.as_secs())))?
}

/// The Streamable HTTP transport's client with OAuth: sends the access token, and authorizes and
/// retries once on a 401 or 403 challenge.
#[derive(Clone)]
pub struct OAuthHttp {
    pub inner: reqwest::Client,
    pub oauth: Arc<OAuth>,
}

type HttpError = StreamableHttpError<reqwest::Error>;

impl OAuthHttp {
    /// The challenge to answer, if `error` is one.
    fn challenge(error: &HttpError) -> Option<Challenge> {
        match error {
            StreamableHttpError::AuthRequired(error) => {
                Some(Challenge::parse(&error.www_authenticate_header))
            }
            StreamableHttpError::InsufficientScope(error) => {
                Some(Challenge::parse(&error.www_authenticate_header))
            }
            _ => None,
        }
    }

    /// Authorizes for `challenge`; the new token, or (authorization failed, logged) `None`.
    async fn answer(&self, challenge: &Challenge) -> Option<String> {
        match self.oauth.authorize(challenge).await {
            Ok(()) => self.oauth.access_token().await,
            Err(error) => {
                tracing::warn!(server = %self.oauth.server, "{error}");
                None
            }
        }
    }

    /// Sends a request with the server's credentials (`send` gets the `auth_header` and custom
    /// headers to use) and, when the server challenges, answers and sends it again: on
    /// `use_dpop_nonce` (RFC 9449 §9) after learning the nonce — rmcp keeps only a 401's
    /// WWW-Authenticate, so a probe whose body no server would act on asks for the `DPoP-Nonce`
    /// header — otherwise after authorizing. When that fails, the server's own answer (401/403)
    /// stands.
    async fn authorized<T, F>(
        &self,
        method: &str,
        uri: &str,
        custom_headers: &HashMap<HeaderName, HeaderValue>,
        mut send: impl FnMut(Option<String>, HashMap<HeaderName, HeaderValue>) -> F,
    ) -> Result<T, HttpError>
    where
        F: Future<Output = Result<T, HttpError>>,
    {
        let mut attempts = 0;
        loop {
            let (token, headers) = self.oauth.credentials(method, uri, custom_headers).await;
            let result = send(token, headers).await;
            let Some(challenge) = result.as_ref().err().and_then(Self::challenge) else {
                return result;
            };
            if attempts >= MAX_ATTEMPTS {
                return result;
            }
            attempts += 1;
            let answered = if challenge.error.as_deref() == Some("use_dpop_nonce") {
                self.oauth.fetch_resource_nonce(uri, custom_headers).await
            } else {
                self.answer(&challenge).await.is_some()
            };
            if !answered {
                return result;
            }
        }
    }
}

impl StreamableHttpClient for OAuthHttp {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            StreamableHttpResponseLimits::default(),
        )
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        self.authorized("POST", &uri, &custom_headers, |token, headers| {
            self.inner.post_message_with_response_limits(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                token,
                headers,
                limits,
            )
        })
        .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), HttpError> {
        let (token, headers) = self
            .oauth
            .credentials("DELETE", &uri, &custom_headers)
            .await;
        self.inner
            .delete_session(uri, session_id, token, headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, HttpError> {
        self.get_stream_with_max_sse_event_size(
            uri,
            session_id,
            last_event_id,
            auth_header,
            custom_headers,
            usize::MAX,
        )
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, HttpError> {
        self.authorized("GET", &uri, &custom_headers, |token, headers| {
            self.inner.get_stream_with_max_sse_event_size(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                token,
                headers,
                max_sse_event_size,
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges() {
        let challenge = Challenge::parse(
            r#"Bearer error="insufficient_scope", scope="a b", resource_metadata="https://x/.well-known/oauth-protected-resource/mcp""#,
        );
        assert_eq!(challenge.error.as_deref(), Some("insufficient_scope"));
        assert_eq!(challenge.scope.as_deref(), Some("a b"));
        assert_eq!(
            challenge.resource_metadata.as_deref(),
            Some("https://x/.well-known/oauth-protected-resource/mcp")
        );
        let bare = Challenge::parse("Bearer realm=x, scope=read");
        assert_eq!(bare.scope.as_deref(), Some("read"));
    }

    #[test]
    fn pkce_s256_matches_rfc7636_example() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn client_assertions_are_signed_es256_jwts() {
        use ring::signature::{
            ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
            UnparsedPublicKey,
        };
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(pkcs8.as_ref())
        );
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let jwt = client_assertion(&pem, "me", "https://as.example").unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "me");
        assert_eq!(claims["sub"], "me");
        assert_eq!(claims["aud"], "https://as.example");
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key.public_key().as_ref())
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("the signature verifies with the key's public half");
        assert!(client_assertion("not a key", "me", "x").is_err());
    }

    #[test]
    fn dpop_proofs_carry_the_key_method_url_and_token_hash() {
        use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
        let _ = rustls::crypto::ring::default_provider().install_default();
        let oauth = OAuth::new(
            "s",
            Url::parse("http://127.0.0.1:1/mcp").unwrap(),
            OAuthConfig::default(),
            reqwest::Client::new(),
        );
        assert!(oauth.dpop_proof("POST", "http://x/t", None, None).is_none());
        oauth.ensure_dpop_key().unwrap();
        let proof = oauth
            .dpop_proof("POST", "http://x/mcp?q=1", Some("tok"), Some("n1"))
            .unwrap();
        let parts: Vec<&str> = proof.split('.').collect();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], "http://x/mcp");
        assert_eq!(claims["nonce"], "n1");
        assert_eq!(
            claims["ath"],
            URL_SAFE_NO_PAD.encode(Sha256::digest(b"tok")).as_str()
        );
        let mut point = vec![4u8];
        point.extend(
            URL_SAFE_NO_PAD
                .decode(header["jwk"]["x"].as_str().unwrap())
                .unwrap(),
        );
        point.extend(
            URL_SAFE_NO_PAD
                .decode(header["jwk"]["y"].as_str().unwrap())
                .unwrap(),
        );
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .verify(
                format!("{}.{}", parts[0], parts[1]).as_bytes(),
                &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
            )
            .expect("the proof verifies with its own jwk");
        assert_eq!(
            Challenge::parse(r#"DPoP error="use_dpop_nonce", algs="ES256""#)
                .error
                .as_deref(),
            Some("use_dpop_nonce")
        );
    }

    #[test]
    fn resource_must_be_the_server() {
        let server = Url::parse("http://localhost:3000/mcp").unwrap();
        assert!(resource_matches("http://localhost:3000/mcp", &server));
        assert!(resource_matches("http://localhost:3000", &server));
        assert!(!resource_matches("https://evil.example.com/mcp", &server));
        assert!(!resource_matches("http://localhost:3000/other", &server));
    }
}
