//! An OAuth 2.1 client for downstream HTTP servers, per the MCP authorization spec (2025-11-25).
//! [`OAuth`] holds one server's client, tokens and DPoP key, and runs the authorization flow:
//! discovery, then a grant without a user where the authorization server offers only those, else
//! the authorization code with PKCE (headless, or with a user through [`authorize_server`]). Its
//! own requests go through a client built under the same URL policy as the transport's, and
//! [`OAuthHttp`] (Streamable HTTP) and `connect_sse` (legacy SSE) put the token on the transport's
//! requests, authorizing on a 401 or 403 challenge.

mod authorization_code;
mod challenge;
mod discovery;
mod dpop;
mod grants;
mod http;
mod interactive;
mod redirect;
mod registration;
mod sse;
mod store;

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::config::OAuthConfig;
use crate::sync::lock;

pub use challenge::Challenge;
pub use http::OAuthHttp;
pub use interactive::authorize_server;
pub(super) use sse::connect_sse;
pub use store::set_store_dir;

use authorization_code::require_pkce_s256;
use grants::{GrantWithoutUser, grant_without_user};
use redirect::redirect_uri;
use registration::Client;

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

/// Shows the user the URL to open.
pub type ShowUrl<'a> = dyn Fn(&Url) + Sync + 'a;

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

impl Tokens {
    /// Whether the access token has expired, or will within [`EXPIRY_MARGIN`].
    fn expired(&self) -> bool {
        self.expires_at
            .is_some_and(|at| unix_now() + EXPIRY_MARGIN.as_secs() >= at)
    }
}

/// What discovery found, kept for refreshes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    token_endpoint: String,
    resource: String,
    client: Client,
}

/// A protocol error saying `message`.
fn protocol(message: impl Into<String>) -> OAuthError {
    OAuthError::Protocol(message.into())
}

/// Seconds since the Unix epoch (0 for a clock before it).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// 32 random bytes, base64url: PKCE verifiers, `state` values, JWT ids.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The strings of a JSON array (a metadata list); none for anything else.
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

    /// The HTTP client its own requests go through (under the server's URL policy).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The access token to send, refreshed first when it has expired.
    pub async fn access_token(&self) -> Option<String> {
        let tokens = lock(&self.tokens).clone()?;
        if !tokens.expired() {
            return Some(tokens.access);
        }
        let _flow = self.flow.lock().await;
        // Another request may have refreshed meanwhile: an authorization server that rotates
        // refresh tokens refuses the one read before the wait.
        let tokens = lock(&self.tokens).clone()?;
        if !tokens.expired() {
            return Some(tokens.access);
        }
        match self.refresh(&tokens).await {
            Ok(access) => Some(access),
            Err(error) => {
                tracing::warn!(server = %self.server, "token refresh failed: {error}");
                None
            }
        }
    }

    /// Runs the authorization flow for a challenge (a 401's or 403's `WWW-Authenticate`),
    /// headless or not at all (a user is needed: [`OAuth::needs_user`]).
    pub async fn authorize(&self, challenge: &Challenge) -> Result<(), OAuthError> {
        let _flow = self.flow.lock().await;
        let redirect_uri = redirect_uri(self.config.redirect_port);
        self.run_flow(challenge, &redirect_uri, None).await
    }

    /// The flow: discovery, a DPoP key where the authorization server offers DPoP, then a grant
    /// without a user where it offers only those, else the authorization code grant (with
    /// `user`, or headless, or not at all: [`OAuth::needs_user`]).
    async fn run_flow(
        &self,
        challenge: &Challenge,
        redirect_uri: &str,
        user: Option<(tokio::net::TcpListener, &ShowUrl<'_>)>,
    ) -> Result<(), OAuthError> {
        let found = self.discover(challenge).await?;
        if strings(&found.metadata["dpop_signing_alg_values_supported"])
            .contains(&"ES256".to_owned())
        {
            self.ensure_dpop_key()?;
        }
        require_pkce_s256(&found.metadata)?;
        match grant_without_user(&found.metadata) {
            Some(GrantWithoutUser::ClientCredentials) => {
                return self.client_credentials(&found, challenge).await;
            }
            Some(GrantWithoutUser::JwtBearer) => return self.jwt_bearer(&found, challenge).await,
            None => {}
        }
        if user.is_none() && !self.config.headless {
            // Without a user nothing more can happen: register nothing, ask for nothing.
            self.needs_user
                .store(true, std::sync::atomic::Ordering::Relaxed);
            return Err(OAuthError::NeedsUser {
                server: self.server.clone(),
            });
        }
        self.authorization_code(&found, challenge, redirect_uri, user)
            .await
    }

    /// The scopes to ask for: the challenge's, else the resource's `scopes_supported`, else the
    /// configured ones.
    fn requested_scopes(&self, challenge: &Challenge, resource_metadata: &Value) -> Vec<String> {
        match (&challenge.scope, resource_metadata.get("scopes_supported")) {
            (Some(scope), _) => scope.split_whitespace().map(str::to_owned).collect(),
            (None, Some(supported)) => strings(supported),
            (None, None) => self.config.scopes.clone().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Form;
    use axum::response::{IntoResponse, Response};
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn requests_waiting_on_one_refresh_use_its_tokens_where_refresh_tokens_rotate() {
        // An authorization server that takes only the refresh token it issued last.
        let latest = Arc::new(Mutex::new("refresh-1".to_owned()));
        let grants = Arc::new(AtomicUsize::new(0));
        let (issued, counted) = (latest.clone(), grants.clone());
        let token = move |Form(form): Form<std::collections::HashMap<String, String>>| {
            let (issued, counted) = (issued.clone(), counted.clone());
            async move {
                let mut latest = lock(&issued);
                if form.get("refresh_token") != Some(&*latest) {
                    let refused = json!({"error": "invalid_grant"});
                    return (axum::http::StatusCode::BAD_REQUEST, axum::Json(refused))
                        .into_response();
                }
                let n = counted.fetch_add(1, Ordering::SeqCst) + 2;
                *latest = format!("refresh-{n}");
                let fresh = json!({"access_token": format!("access-{n}"), "token_type": "Bearer",
                                   "expires_in": 3600, "refresh_token": *latest});
                Response::from(axum::Json(fresh).into_response())
            }
        };
        let app = axum::Router::new().route("/token", axum::routing::post(token));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });

        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = Url::parse("http://127.0.0.1:1/mcp").unwrap();
        let oauth = OAuth::new("s", url, OAuthConfig::default(), reqwest::Client::new());
        *lock(&oauth.tokens) = Some(Tokens {
            access: "access-1".into(),
            refresh: Some("refresh-1".into()),
            expires_at: Some(0),
            scopes: Vec::new(),
            dpop: false,
        });
        *lock(&oauth.session) = Some(Session {
            token_endpoint: format!("{base}/token"),
            resource: "http://127.0.0.1:1/mcp".into(),
            client: Client {
                id: "client".into(),
                secret: None,
                auth_method: "none".into(),
            },
        });
        let (first, second) = tokio::join!(oauth.access_token(), oauth.access_token());
        assert_eq!(first.as_deref(), Some("access-2"));
        assert_eq!(second.as_deref(), Some("access-2"));
        assert_eq!(grants.load(Ordering::SeqCst), 1, "one refresh for both");
    }
}
