//! Discovery: the protected-resource metadata (RFC 9728: the challenge's `resource_metadata`, else
//! the path-based then the root well-known URL), checked to name this server, and its authorization
//! server's metadata (RFC 8414 and OpenID Connect discovery, path-aware), checked to name its
//! issuer. What it finds drives the rest of the flow; nothing here is stored.

use serde_json::Value;
use url::Url;

use super::{Challenge, OAuth, OAuthError, protocol, strings};

/// What discovery found for a server: its resource, the authorization server and its endpoints.
pub(super) struct Discovered {
    /// The protected-resource metadata (RFC 9728).
    pub(super) resource_metadata: Value,
    /// The resource the tokens are for (the `resource` parameter, RFC 8707).
    pub(super) resource: String,
    /// The authorization server's issuer identifier, as the resource names it.
    pub(super) issuer: String,
    /// The authorization server's metadata (RFC 8414).
    pub(super) metadata: Value,
    pub(super) authorization_endpoint: Url,
    pub(super) token_endpoint: Url,
}

impl OAuth {
    /// Discovers the resource (from `challenge`, else the well-known URLs) and its first
    /// authorization server.
    pub(super) async fn discover(&self, challenge: &Challenge) -> Result<Discovered, OAuthError> {
        let (resource_metadata, resource) = self.protected_resource(challenge).await?;
        let issuer = strings(&resource_metadata["authorization_servers"])
            .into_iter()
            .next()
            .ok_or_else(|| protocol("the resource names no authorization server"))?;
        let metadata = self.authorization_server(&issuer).await?;
        let endpoint = |name: &str| -> Result<Url, OAuthError> {
            metadata[name]
                .as_str()
                .and_then(|url| Url::parse(url).ok())
                .ok_or_else(|| protocol(format!("the authorization server has no {name}")))
        };
        let authorization_endpoint = endpoint("authorization_endpoint")?;
        let token_endpoint = endpoint("token_endpoint")?;
        Ok(Discovered {
            resource_metadata,
            resource,
            issuer,
            metadata,
            authorization_endpoint,
            token_endpoint,
        })
    }

    /// The protected-resource metadata (RFC 9728) and the resource it names, which must be this
    /// server.
    async fn protected_resource(
        &self,
        challenge: &Challenge,
    ) -> Result<(Value, String), OAuthError> {
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
        Ok((prm, resource))
    }

    /// The authorization server's metadata (RFC 8414, else OpenID Connect discovery), which must
    /// name `issuer` as its issuer.
    async fn authorization_server(&self, issuer: &str) -> Result<Value, OAuthError> {
        let issuer_url = Url::parse(issuer)
            .map_err(|e| protocol(format!("the authorization server is no URL: {e}")))?;
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
        if metadata["issuer"].as_str() != Some(issuer) {
            return Err(protocol(format!(
                "the authorization server's metadata names issuer {}, not {issuer}",
                metadata["issuer"]
            )));
        }
        Ok(metadata)
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
