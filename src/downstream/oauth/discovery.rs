//! Discovery: the protected-resource metadata (RFC 9728: the challenge's `resource_metadata`, else
//! the path-based then the root well-known URL), checked to name this server, and its authorization
//! server's metadata (RFC 8414 and OpenID Connect discovery, path-aware), checked to name its
//! issuer. What it finds drives the rest of the flow; nothing here is stored.

use serde_json::Value;
use url::Url;

use super::{OAuth, OAuthError};

/// `origin + /.well-known/<name> + path` (RFC 8414 §3.1 / RFC 9728 §3.1 path insertion).
pub(super) fn well_known(base: &Url, name: &str, path: &str) -> Option<Url> {
    let path = path.trim_end_matches('/');
    base.join(&format!("/.well-known/{name}{path}")).ok()
}

/// Whether the resource a server's metadata names is the server we talk to: the same origin,
/// and the server's path at or under the resource's.
pub(super) fn resource_matches(resource: &str, server: &Url) -> bool {
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
    /// GETs each URL in turn; the first that answers a JSON object.
    pub(super) async fn first_json(
        &self,
        urls: &[Url],
    ) -> Result<Option<(Url, Value)>, OAuthError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_must_be_the_server() {
        let server = Url::parse("http://localhost:3000/mcp").unwrap();
        assert!(resource_matches("http://localhost:3000/mcp", &server));
        assert!(resource_matches("http://localhost:3000", &server));
        assert!(!resource_matches("https://evil.example.com/mcp", &server));
        assert!(!resource_matches("http://localhost:3000/other", &server));
    }
}
