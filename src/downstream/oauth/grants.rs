//! The token endpoint and the grants that need no user: the token request itself (client
//! authentication by basic, post, none or `private_key_jwt`; a DPoP proof and the server's nonce),
//! refresh, client credentials (a secret or an ES256 client assertion), and the JWT bearer grant
//! (RFC 7523) with a workload token or an ID-JAG from an RFC 8693 token exchange at an identity
//! provider.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;

use super::discovery::Discovered;
use super::registration::Client;
use super::{
    Challenge, OAuth, OAuthError, Session, Tokens, protocol, random_token, strings, unix_now,
};
use crate::sync::lock;

/// The JWT-bearer grant type (RFC 7523).
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A grant that needs no user.
pub(super) enum GrantWithoutUser {
    ClientCredentials,
    JwtBearer,
}

/// The grant without a user to take: where the authorization server lists its grants, offers no
/// authorization code and offers client credentials (preferred) or the JWT bearer grant.
pub(super) fn grant_without_user(metadata: &Value) -> Option<GrantWithoutUser> {
    let grants = strings(&metadata["grant_types_supported"]);
    let offers = |grant: &str| grants.iter().any(|g| g == grant);
    if grants.is_empty() || offers("authorization_code") {
        None
    } else if offers("client_credentials") {
        Some(GrantWithoutUser::ClientCredentials)
    } else if offers(JWT_BEARER) {
        Some(GrantWithoutUser::JwtBearer)
    } else {
        None
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

impl OAuth {
    pub(super) async fn refresh(&self, tokens: &Tokens) -> Result<String, OAuthError> {
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

    /// The client-credentials grant (no user: a machine client), authenticated with the
    /// configured secret or a signed assertion.
    pub(super) async fn client_credentials(
        &self,
        found: &Discovered,
        challenge: &Challenge,
    ) -> Result<(), OAuthError> {
        let id = self.config.client_id.clone().ok_or_else(|| {
            protocol(
                "the authorization server grants client credentials only; configure oauth.clientId",
            )
        })?;
        let auth_method = self.client_credentials_auth(&found.metadata)?;
        let scopes = self.requested_scopes(challenge, &found.resource_metadata);
        let session = Session {
            token_endpoint: found.token_endpoint.to_string(),
            resource: found.resource.clone(),
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
            ("resource", found.resource.clone()),
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
                client_assertion(pem.expose(), &id, &found.issuer)?,
            ));
        }
        let tokens = self.token_request(&session, &mut form, scopes).await?;
        *lock(&self.session) = Some(session);
        *lock(&self.tokens) = Some(tokens);
        self.save();
        tracing::info!(server = %self.server, "authorized (client credentials)");
        Ok(())
    }

    /// How a machine client authenticates: a configured private key signs an assertion, else the
    /// secret goes by basic auth, or in the form where the server takes only that.
    fn client_credentials_auth(&self, metadata: &Value) -> Result<&'static str, OAuthError> {
        let methods = strings(&metadata["token_endpoint_auth_methods_supported"]);
        if self.config.private_key_pem.is_some() {
            Ok("private_key_jwt")
        } else if self.config.client_secret.is_some()
            && !methods.is_empty()
            && !methods.iter().any(|m| m == "client_secret_basic")
            && methods.iter().any(|m| m == "client_secret_post")
        {
            Ok("client_secret_post")
        } else if self.config.client_secret.is_some() {
            Ok("client_secret_basic")
        } else {
            Err(protocol(
                "client credentials need oauth.clientSecret or oauth.privateKeyFile",
            ))
        }
    }

    /// The JWT-bearer grant (RFC 7523) with the workload's identity token as the assertion.
    pub(super) async fn jwt_bearer(
        &self,
        found: &Discovered,
        challenge: &Challenge,
    ) -> Result<(), OAuthError> {
        let scopes = self.requested_scopes(challenge, &found.resource_metadata);
        let assertion = self
            .bearer_assertion(&found.issuer, &found.resource, &scopes)
            .await?;
        let session = Session {
            token_endpoint: found.token_endpoint.to_string(),
            resource: found.resource.clone(),
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
            ("resource", found.resource.clone()),
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

    /// The JWT-bearer grant's assertion: the configured one (`oauth.assertion`, or its file read
    /// now), else an ID-JAG the identity provider issues for the configured ID token.
    async fn bearer_assertion(
        &self,
        issuer: &str,
        resource: &str,
        scopes: &[String],
    ) -> Result<String, OAuthError> {
        let read =
            |file: &Option<PathBuf>, value: &Option<crate::secret::Secret>| match (file, value) {
                (Some(path), _) => std::fs::read_to_string(path)
                    .map(|text| Some(text.trim().to_owned()))
                    .map_err(|e| protocol(format!("cannot read {}: {e}", path.display()))),
                (None, value) => Ok(value.as_ref().map(|value| value.expose().to_owned())),
            };
        match (
            read(&self.config.assertion_file, &self.config.assertion)?,
            &self.config.idp_token_endpoint,
            read(&self.config.id_token_file, &self.config.id_token)?,
        ) {
            (Some(assertion), _, _) => Ok(assertion),
            (None, Some(idp), Some(id_token)) => {
                self.identity_assertion(idp, &id_token, issuer, resource, scopes)
                    .await
            }
            _ => Err(protocol(
                "the authorization server grants JWT bearer only; configure oauth.assertionFile \
                 or an identity provider (oauth.idpTokenEndpoint, oauth.idTokenFile)",
            )),
        }
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

    /// A token endpoint request with the client's authentication; the issued tokens.
    pub(super) async fn token_request(
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
