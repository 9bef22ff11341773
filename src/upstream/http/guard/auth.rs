//! Bearer auth and the session's owner. Tokens are kept as SHA-256 digests and compared in
//! constant time; with `--require-api-auth` a request needs a known token unless every message
//! in it is the handshake or liveness, and a session belongs to the first token that uses it
//! (the owner itself is kept in the session's entry, `sessions`). The same token rules decide
//! the JSON API's access and how much `/health` shows.

use axum::http::{HeaderMap, Method, StatusCode, header};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Guard;
use super::refusals::{self, Refused};
use crate::upstream::http::sessions::{Binding, TokenHash};

/// What `/health` shows a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HealthView {
    /// `{"status": "ok", "transport": …}`: what health checks read.
    Minimal,
    /// Servers, states, errors, sessions, counters.
    Details,
}

pub(super) fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Methods anyone may call without a token: the handshake and liveness.
fn needs_no_auth(method: &str) -> bool {
    matches!(
        method,
        "initialize" | "ping" | "server/discover" | "notifications/initialized"
    )
}

impl Guard {
    /// The console's rules for its JSON API (`api.rs`), stricter than `/mcp`'s: a browser's
    /// request comes from a page this proxy served (its `Origin` is the `Host` it was sent to)
    /// or from an origin `--allowed-origin` names — never from any other page, even on
    /// loopback, and `*` does not open it; a POST carries JSON (a form posted from another page
    /// cannot); and a known bearer token (or the console's sign-in cookie) when auth is required.
    pub(crate) fn check_api(
        &self,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<(), (StatusCode, String)> {
        self.check_page(method, headers)?;
        if self.config.require_auth {
            match self.token_of(headers) {
                Ok(Some(_)) => {}
                Ok(None) if self.signed_in(headers) => {}
                Ok(None) => {
                    return Err((
                        StatusCode::UNAUTHORIZED,
                        "a bearer token is required (or the console's sign-in)".into(),
                    ));
                }
                Err(why) => return Err((StatusCode::UNAUTHORIZED, why.to_owned())),
            }
        }
        Ok(())
    }

    /// The console's rules without the token: what its pages (HTML, script, style, which hold
    /// no data) are served under, so a browser can load the sign-in form.
    pub(crate) fn check_page(
        &self,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<(), (StatusCode, String)> {
        let refused = |message: String| Err((StatusCode::FORBIDDEN, message));
        let mut origins = headers.get_all(header::ORIGIN).iter();
        let origin = match (origins.next(), origins.next()) {
            (Some(_), Some(_)) => {
                return refused("several Origin headers: a request carries one at most".into());
            }
            (origin, _) => origin.map(|origin| origin.to_str().unwrap_or("")),
        };
        let named = origin
            .is_some_and(|origin| super::hosts::origin_listed(&self.config.named_origins, origin));
        if let Some(origin) = origin
            && !named
        {
            let host = headers
                .get(header::HOST)
                .and_then(|host| host.to_str().ok())
                .unwrap_or("");
            if !super::hosts::same_origin(origin, host) {
                return refused(format!(
                    "origin {origin} is not this proxy's: the console's API answers its own \
                     pages and the origins --allowed-origin names"
                ));
            }
        }
        // A browser says where a request without an `Origin` (a GET) comes from.
        let site = headers
            .get("sec-fetch-site")
            .and_then(|site| site.to_str().ok());
        if !named && matches!(site, Some("cross-site" | "same-site")) {
            return refused(format!(
                "a {} request: the console's API answers its own pages",
                site.unwrap_or_default()
            ));
        }
        // A form can POST across sites without asking; any other method needs a preflight,
        // which the API never approves (no CORS).
        if *method == Method::POST {
            let json = headers
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.split(';').next())
                .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
            if !json {
                return Err((
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "a POST to the API carries application/json".into(),
                ));
            }
        }
        Ok(())
    }

    /// Who may see what of `/health`: the same `Host` and `Origin` rules as `/mcp` (IP addresses
    /// and `localhost` pass, for probes); with `--require-api-auth`, the details only with a
    /// valid token (a wrong one is 401), the minimal answer without one. Without auth, anyone
    /// who may call `/mcp` — which tells more — sees the details.
    pub(crate) fn health_access(&self, headers: &HeaderMap) -> Result<HealthView, Refused> {
        self.check_host_and_origin(headers, true)?;
        if !self.config.require_auth {
            return Ok(HealthView::Details);
        }
        match self.token_of(headers) {
            Ok(Some(_)) => Ok(HealthView::Details),
            Ok(None) => Ok(HealthView::Minimal),
            Err(_) => Err(refusals::unauthorized(Value::Null)),
        }
    }

    /// Whether a request may read `/metrics`: as `/health`'s details, but without a token under
    /// `--require-api-auth` it is refused (the page names servers and tools).
    pub(crate) fn metrics_access(&self, headers: &HeaderMap) -> Result<(), Refused> {
        match self.health_access(headers)? {
            HealthView::Details => Ok(()),
            HealthView::Minimal => Err(refusals::unauthorized(Value::Null)),
        }
    }

    /// The request's token, and whether it may make this request and use the session it names
    /// (nothing is changed yet: an unowned session is bound only once the request passed the
    /// rate limit, [`Guard::bind_session`]). Without `--require-api-auth` a bad token is no token.
    pub(super) fn authenticate(
        &self,
        method: &Method,
        headers: &HeaderMap,
        methods: &[String],
        session: Option<&str>,
        id: &Value,
    ) -> Result<Option<TokenHash>, Refused> {
        let token = match self.token_of(headers) {
            Ok(token) => token,
            Err(reason) if self.config.require_auth => {
                tracing::debug!("request refused: {reason}");
                return Err(refusals::unauthorized(id.clone()));
            }
            Err(_) => None,
        };
        if !self.config.require_auth {
            return Ok(token);
        }
        let exempt = *method == Method::POST
            && !methods.is_empty()
            && methods.iter().all(|m| needs_no_auth(m));
        if token.is_none() && !exempt {
            return Err(refusals::unauthorized(id.clone()));
        }
        // Another token's session is not there for this one.
        if let (Some(session), Some(token), Some(sessions)) = (session, &token, &self.sessions)
            && sessions.owned_by_another(session, token)
        {
            return Err(refusals::session_not_found(id.clone()));
        }
        Ok(token)
    }

    /// A session used with a token for the first time becomes that token's. Only a session that
    /// exists is bound: an id a client made up is not remembered.
    pub(super) async fn bind_session(
        &self,
        session: Option<&str>,
        token: Option<&TokenHash>,
        id: &Value,
    ) -> Result<(), Refused> {
        if self.config.require_auth
            && let (Some(session), Some(token), Some(sessions)) = (session, token, &self.sessions)
            && sessions.bind(session, token).await == Binding::Foreign
        {
            return Err(refusals::session_not_found(id.clone()));
        }
        Ok(())
    }

    pub(super) fn token_of(&self, headers: &HeaderMap) -> Result<Option<TokenHash>, &'static str> {
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let value = match (values.next(), values.next()) {
            (None, _) => return Ok(None),
            (Some(value), None) => value,
            (Some(_), Some(_)) => {
                return Err("several Authorization headers: a request carries exactly one");
            }
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

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::upstream::http::guard::tests::guard;

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
        // Two Authorization headers: neither is taken, whichever a server behind would read.
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer secret-token"),
        );
        headers.append(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer wrong"),
        );
        assert_eq!(
            guard.token_of(&headers),
            Err("several Authorization headers: a request carries exactly one")
        );
    }
}
