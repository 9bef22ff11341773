//! The client the proxy authorizes as: pre-registered (`oauth.clientId`, with or without a secret),
//! a client-ID metadata document URL where the authorization server accepts those, or registered
//! now by dynamic client registration (RFC 7591). Each comes with the token endpoint authentication
//! method it uses; the grants use it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::{OAuth, OAuthError, protocol, strings};

/// The client's identity at the authorization server, and how it authenticates at the token
/// endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Client {
    pub(super) id: String,
    pub(super) secret: Option<String>,
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt` or `none`.
    pub(super) auth_method: String,
}

impl OAuth {
    /// The client to authorize as: pre-registered, a metadata document URL, or registered now.
    pub(super) async fn client(
        &self,
        metadata: &Value,
        redirect_uri: &str,
    ) -> Result<Client, OAuthError> {
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
}
