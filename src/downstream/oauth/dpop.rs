//! DPoP (RFC 9449): the server's ES256 key, made once an authorization server offers DPoP, the
//! proofs signed with it, and the resource server's nonce. `credentials` decides how a request
//! carries the token: the `DPoP` scheme and a fresh proof for a DPoP-bound token, else Bearer.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use super::{OAuth, OAuthError, protocol, random_token, unix_now};
use crate::sync::lock;

impl OAuth {
    /// Makes a DPoP key (ES256) unless there is one.
    pub(super) fn ensure_dpop_key(&self) -> Result<(), OAuthError> {
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
    pub(super) fn dpop_proof(
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
    pub(super) async fn credentials(
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
    pub(super) async fn fetch_resource_nonce(
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OAuthConfig;
    use crate::downstream::oauth::Challenge;

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
}
