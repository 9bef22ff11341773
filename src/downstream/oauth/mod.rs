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
mod registration;
mod sse;
mod store;

use std::collections::HashMap;
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

use authorization_code::pkce_challenge;
use discovery::{resource_matches, well_known};
use grants::JWT_BEARER;
use interactive::receive_redirect;
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

/// What discovery found, kept for refreshes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    token_endpoint: String,
    resource: String,
    client: Client,
}

fn protocol(message: impl Into<String>) -> OAuthError {
    OAuthError::Protocol(message.into())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source");
    URL_SAFE_NO_PAD.encode(bytes)
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

    /// Runs the authorization flow for a challenge (a 401's or 403's `WWW-Authenticate`),
    /// headless or not at all (a user is needed: [`OAuth::needs_user`]).
    pub async fn authorize(&self, challenge: &Challenge) -> Result<(), OAuthError> {
        let _flow = self.flow.lock().await;
        let redirect_uri = self.redirect_uri(self.config.redirect_port);
        self.run_flow(challenge, &redirect_uri, None).await
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
}
