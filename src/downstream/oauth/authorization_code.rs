//! The authorization code grant with PKCE S256 (the grant a user approves): the authorization
//! request with the `resource` indicator (RFC 8707) and the scopes, the redirect it comes back with
//! (taken from the authorization endpoint's answer when headless, from the loopback listener with
//! a user), the checks of that response (`state`, and `iss` per RFC 9207), and the code's exchange.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::LOCATION;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use super::discovery::Discovered;
use super::redirect::receive_redirect;
use super::{Challenge, OAuth, OAuthError, Session, ShowUrl, protocol, random_token, strings};
use crate::sync::lock;

/// Refuses an authorization server that lists PKCE methods without S256.
pub(super) fn require_pkce_s256(metadata: &Value) -> Result<(), OAuthError> {
    let challenges = strings(&metadata["code_challenge_methods_supported"]);
    if !challenges.is_empty() && !challenges.iter().any(|m| m == "S256") {
        return Err(protocol(
            "the authorization server does not support PKCE S256",
        ));
    }
    Ok(())
}

impl OAuth {
    /// Runs the grant: the client, the authorization request, its response (from `user`'s
    /// browser through the listener, else headless), and the code's exchange for tokens.
    pub(super) async fn authorization_code(
        &self,
        found: &Discovered,
        challenge: &Challenge,
        redirect_uri: &str,
        user: Option<(tokio::net::TcpListener, &ShowUrl<'_>)>,
    ) -> Result<(), OAuthError> {
        let client = self.client(&found.metadata, redirect_uri).await?;
        let scopes = self.authorization_scopes(found, challenge);
        let verifier = random_token();
        let state = random_token();
        let authorize = authorization_request(AuthorizationRequest {
            endpoint: &found.authorization_endpoint,
            client_id: &client.id,
            redirect_uri,
            verifier: &verifier,
            state: &state,
            resource: &found.resource,
            scopes: &scopes,
        });
        let callback = match user {
            Some((listener, show)) => {
                show(&authorize);
                receive_redirect(listener, redirect_uri).await?
            }
            None => self.approve(&authorize).await?,
        };
        let code = authorization_response(&callback, &state, found)?;
        let session = Session {
            token_endpoint: found.token_endpoint.to_string(),
            resource: found.resource.clone(),
            client,
        };
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code),
            ("redirect_uri", redirect_uri.to_owned()),
            ("code_verifier", verifier),
            ("resource", found.resource.clone()),
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

    /// The scopes to ask for: the requested ones, plus those granted before (a step-up adds to
    /// them), plus `offline_access` where that yields a refresh token.
    fn authorization_scopes(&self, found: &Discovered, challenge: &Challenge) -> Vec<String> {
        let mut scopes = self.requested_scopes(challenge, &found.resource_metadata);
        if let Some(previous) = lock(&self.tokens).as_ref() {
            for scope in &previous.scopes {
                if !scopes.contains(scope) {
                    scopes.insert(0, scope.clone());
                }
            }
        }
        let metadata = &found.metadata;
        if strings(&metadata["scopes_supported"]).contains(&"offline_access".to_owned())
            && strings(&metadata["grant_types_supported"]).contains(&"refresh_token".to_owned())
            && !scopes.is_empty()
            && !scopes.iter().any(|s| s == "offline_access")
        {
            scopes.push("offline_access".into());
        }
        scopes
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
}

/// What goes into the authorization request.
struct AuthorizationRequest<'a> {
    endpoint: &'a Url,
    client_id: &'a str,
    redirect_uri: &'a str,
    /// The PKCE code verifier; the request carries its S256 challenge.
    verifier: &'a str,
    state: &'a str,
    resource: &'a str,
    scopes: &'a [String],
}

/// The URL the user (or the headless approval) opens.
fn authorization_request(request: AuthorizationRequest<'_>) -> Url {
    let mut authorize = request.endpoint.clone();
    {
        let mut query = authorize.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", request.client_id)
            .append_pair("redirect_uri", request.redirect_uri)
            .append_pair("code_challenge", &pkce_challenge(request.verifier))
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", request.state)
            .append_pair("resource", request.resource);
        if !request.scopes.is_empty() {
            query.append_pair("scope", &request.scopes.join(" "));
        }
    }
    authorize
}

/// Checks the authorization response the redirect carried; its code.
fn authorization_response(
    callback: &Url,
    state: &str,
    found: &Discovered,
) -> Result<String, OAuthError> {
    let params: HashMap<String, String> = callback.query_pairs().into_owned().collect();
    if let Some(error) = params.get("error") {
        return Err(protocol(format!("the authorization was refused: {error}")));
    }
    if params.get("state").map(String::as_str) != Some(state) {
        return Err(protocol(
            "the authorization response's state does not match",
        ));
    }
    // RFC 9207: an `iss` present must be the issuer; advertised support makes it required.
    let issuer = &found.issuer;
    match params.get("iss") {
        Some(iss) if iss != issuer => {
            return Err(protocol(format!(
                "the authorization response comes from issuer {iss}, not {issuer}"
            )));
        }
        None if found.metadata["authorization_response_iss_parameter_supported"] == true => {
            return Err(protocol(
                "the authorization response lacks the iss its server advertises",
            ));
        }
        _ => {}
    }
    params
        .get("code")
        .cloned()
        .ok_or_else(|| protocol("the authorization response has no code"))
}

/// The PKCE S256 code challenge of `verifier` (RFC 7636 §4.2).
fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc7636_example() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
