//! `"authTokens"`: the bearer tokens `--require-api-auth` accepts, each a string or an object
//! `{"token", "toolExposure"}` that also says what a session using the token sees in
//! `tools/list`. The tokens stay [`Secret`]s; what the exposures are looked up by is digests
//! of them, the ones the HTTP guard and the router already hold for a request.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::ToolExposure;
use crate::secret::Secret;

/// The tool exposure each token asks for, by digests of the token (never the token itself).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TokenExposures {
    /// By the SHA-256 of the token: the digest the HTTP guard checks a request's token against
    /// and binds a session to.
    by_token: HashMap<[u8; 32], ToolExposure>,
    /// By the principal the router knows a request over HTTP by (`http:` and the hex SHA-256 of
    /// the whole `Authorization` header), for both spellings of the scheme the guard accepts.
    by_principal: HashMap<String, ToolExposure>,
}

/// Shows how many tokens ask for an exposure, not their digests.
impl fmt::Debug for TokenExposures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenExposures({} tokens)", self.by_token.len())
    }
}

impl TokenExposures {
    /// The exposure the token with this SHA-256 asks for (the guard's digest of a request's
    /// bearer token, and the owner a session is bound to).
    pub fn of_token_hash(&self, digest: &[u8; 32]) -> Option<ToolExposure> {
        self.by_token.get(digest).copied()
    }

    /// The exposure the token in an `Authorization` header value (`Bearer <token>`) asks for.
    pub fn of_authorization(&self, header: &str) -> Option<ToolExposure> {
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))?
            .trim();
        self.of_token_hash(&Sha256::digest(token.as_bytes()).into())
    }

    /// The exposure the token of the request a router `Caller`'s principal names asks for
    /// (`http:<hex SHA-256 of the Authorization header>`; a stdio session's principal names none).
    pub fn of_principal(&self, principal: &str) -> Option<ToolExposure> {
        self.by_principal.get(principal).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }

    fn insert(&mut self, token: &str, exposure: ToolExposure) {
        self.by_token
            .insert(Sha256::digest(token.as_bytes()).into(), exposure);
        for scheme in ["Bearer ", "bearer "] {
            self.by_principal
                .insert(principal(&format!("{scheme}{token}")), exposure);
        }
    }
}

/// The principal a request with this `Authorization` header value has (as the HTTP transport
/// computes it for the router's callers).
fn principal(authorization: &str) -> String {
    use std::fmt::Write;
    let digest = Sha256::digest(authorization.as_bytes());
    let mut text = String::with_capacity(5 + 2 * digest.len());
    text.push_str("http:");
    for byte in digest {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// The `"authTokens"` array: the tokens, and the exposures some of them ask for. The error is
/// the field at fault and why.
pub(super) fn parse_auth_tokens(
    value: Option<&Value>,
) -> Result<(Vec<Secret>, TokenExposures), (String, String)> {
    let mut tokens = Vec::new();
    let mut exposures = TokenExposures::default();
    let items = match value {
        None | Some(Value::Null) => return Ok((tokens, exposures)),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err((
                "authTokens".into(),
                "must be an array of tokens (strings, or {\"token\", \"toolExposure\"} objects)"
                    .into(),
            ));
        }
    };
    for (index, item) in items.iter().enumerate() {
        let field = format!("authTokens[{index}]");
        match item {
            Value::String(token) => tokens.push(Secret::new(token.clone())),
            Value::Object(entry) => {
                if let Some(unknown) = entry
                    .keys()
                    .find(|key| !matches!(key.as_str(), "token" | "toolExposure"))
                {
                    return Err((
                        format!("{field}.{unknown}"),
                        "unknown field; expected \"token\" and \"toolExposure\"".into(),
                    ));
                }
                let token = match entry.get("token") {
                    Some(Value::String(token)) if !token.trim().is_empty() => token.trim(),
                    _ => {
                        return Err((
                            format!("{field}.token"),
                            "must be a non-empty string".into(),
                        ));
                    }
                };
                match entry.get("toolExposure") {
                    None | Some(Value::Null) => {}
                    Some(Value::String(exposure)) => {
                        let exposure: ToolExposure = exposure
                            .parse()
                            .map_err(|message| (format!("{field}.toolExposure"), message))?;
                        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
                        if exposures
                            .of_token_hash(&digest)
                            .is_some_and(|earlier| earlier != exposure)
                        {
                            return Err((
                                format!("{field}.toolExposure"),
                                "the same token is listed earlier with another toolExposure".into(),
                            ));
                        }
                        exposures.insert(token, exposure);
                    }
                    Some(_) => {
                        return Err((
                            format!("{field}.toolExposure"),
                            "must be \"all\" or \"search\"".into(),
                        ));
                    }
                }
                tokens.push(Secret::new(token));
            }
            _ => {
                return Err((
                    field,
                    "must be a string or a {\"token\", \"toolExposure\"} object".into(),
                ));
            }
        }
    }
    Ok((tokens, exposures))
}
