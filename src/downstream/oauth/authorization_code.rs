//! The authorization code grant with PKCE S256 (the grant a user approves): the authorization
//! request with the `resource` indicator (RFC 8707), the redirect it comes back with (taken from
//! the authorization endpoint's answer when headless, from the loopback listener with a user),
//! and the checks of that response (`state`, and `iss` per RFC 9207).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::LOCATION;
use sha2::{Digest, Sha256};
use url::Url;

use super::{OAuth, OAuthError, protocol};

pub(super) fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl OAuth {
    pub(super) fn redirect_uri(&self, port: u16) -> String {
        format!(
            "http://127.0.0.1:{}/callback",
            if port == 0 { 8976 } else { port }
        )
    }

    /// The authorization step without a user (`headless`): the redirect the authorization
    /// endpoint answers with.
    pub(super) async fn approve(&self, authorize: &Url) -> Result<Url, OAuthError> {
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
